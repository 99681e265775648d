//! Storage internals: content addresses, the record codec, the metadata key
//! layout, pack files and the failure-injection seam.

pub(crate) mod codec;
pub(crate) mod fault;
pub(crate) mod hash;
pub(crate) mod keys;
pub(crate) mod meta;
pub(crate) mod pack;
pub(crate) mod readonly;
pub(crate) mod records;

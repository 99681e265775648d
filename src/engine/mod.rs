//! The engine: one file per user operation, all as `impl Store` blocks.

pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod gc;
pub(crate) mod identity;
pub(crate) mod incremental;
pub(crate) mod operations;
pub(crate) mod pages;
pub(crate) mod query;
pub(crate) mod repair;
pub(crate) mod restore;
pub(crate) mod tags;
pub(crate) mod verify;

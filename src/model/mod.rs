//! Lightsail wire shapes: the JSON that blocksnap reads and writes.
//!
//! The types mirror shapes of the AWS Lightsail API (version 2016-11-28) as
//! botocore's service model defines them, with the same member names and
//! enum values, so their JSON is what the Lightsail JSON protocol carries.
//! `tests/lightsail/validate_shape.py` checks serialized values against that
//! model.
//!
//! - Enums: [`RegionName`], [`ResourceType`], [`OperationType`],
//!   [`OperationStatus`] and [`DiskSnapshotState`], generated from botocore.
//! - [`Timestamp`], written as epoch seconds with a fraction.
//! - Structures: [`Operation`], [`DiskSnapshot`] and the response bodies,
//!   such as [`GetDiskSnapshotsResult`].

mod enums;
mod shapes;
mod timestamp;

pub use enums::{
    DiskSnapshotState, OperationStatus, OperationType, RegionName, ResourceType, UnknownEnumValue,
};
pub use shapes::{
    CreateDiskFromSnapshotResult, CreateDiskSnapshotResult, DeleteDiskSnapshotResult, DiskSnapshot,
    GetDiskSnapshotResult, GetDiskSnapshotsResult, GetOperationResult,
    GetOperationsForResourceResult, GetOperationsResult, Operation, ResourceLocation, Tag,
    TagResourceResult, UntagResourceResult,
};
pub use timestamp::Timestamp;

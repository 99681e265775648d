//! blocksnap stores incremental, block-level snapshots of disks.
//!
//! Each snapshot stores only the blocks that changed since any earlier snapshot:
//! blocks are addressed by their blake3 hash and stored once per store, each
//! snapshot's root lists pages of 1,024 block hashes, and pages are themselves
//! content-addressed and shared. Pages and blocks carry reference counts, so
//! [`Store::delete_disk_snapshot`] frees exactly the data no surviving snapshot
//! needs, and every surviving snapshot still restores byte for byte.
//!
//! Every change returns operation records shaped like Lightsail's `Operation`
//! (see [`model`]), errors are the Lightsail exceptions (see [`ErrorKind`]), and
//! an IAM-style policy (see [`access`]) can allow or deny each call by the
//! snapshot's tags.
//!
//! The design as built, with the metadata key layout, the commit and fsync order
//! and the invariants, is in `docs/architecture.md`.
//!
//! ```
//! use blocksnap::Store;
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path())?;
//! let version_1 = vec![5u8; 4 * 65536];
//! let mut version_2 = version_1.clone();
//! version_2[65536] = 6; // change block 1
//!
//! store.create_disk_snapshot("disk-1", "monday", &version_1[..], &[])?;
//! store.create_disk_snapshot("disk-1", "tuesday", &version_2[..], &[])?;
//! store.delete_disk_snapshot("monday")?;
//!
//! let mut restored = Vec::new();
//! store.create_disk_from_snapshot("tuesday", "disk-2", &mut restored)?;
//! assert_eq!(restored, version_2);
//! assert!(store.verify()?.is_clean());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod access;
mod engine;
mod error;
pub mod model;
mod names;
mod storage;
mod store;

pub use engine::create::{ProgressFn, PAGE_ENTRIES};
pub use engine::incremental::SnapshotBlock;
pub use engine::query::{Page, StoreStats, OPERATIONS_PER_PAGE, SNAPSHOTS_PER_PAGE};
pub use engine::repair::{DamagedSnapshot, RepairReport};
pub use engine::verify::VerifyReport;
pub use error::{BoxedCause, Error, ErrorKind, Result};
pub use names::{
    validate_resource_name, validate_tag_key, validate_tags, MAX_NAME_LEN, MAX_TAGS,
    MAX_TAG_KEY_LEN, MAX_TAG_VALUE_LEN,
};
pub use storage::fault::{FaultInjector, PersistStep};
pub use storage::hash::{BlockHash, PageHash};
pub use store::{
    RecoveryReport, Store, StoreOptions, DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE,
};

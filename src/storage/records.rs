//! Records persisted in the metadata database, one struct per key family.
//!
//! Enum values of the Lightsail shapes are stored as their wire strings, so the
//! order of variants in the Rust enums never changes what is on disk.

use serde::{Deserialize, Serialize};

use super::hash::{BlockHash, PageHash};

/// Store-wide settings fixed at creation (key `c`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoreConfig {
    /// Block size in bytes: a power of two from 4 KiB to 1 MiB.
    pub block_size: u32,
    /// Lightsail region name, as on the wire.
    pub region: String,
    /// Twelve-digit account id used in ARNs and support codes.
    pub account_id: String,
    /// Creation time, Unix nanoseconds.
    pub created_at: i64,
}

/// Location and reference count of a stored block (key `b` + hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BlockRecord {
    pub pack: u32,
    /// Byte offset in the pack; a multiple of 4 KiB. The length is the block size.
    pub offset: u64,
    /// Number of places the block occurs in stored pages.
    pub refcount: u64,
}

impl BlockRecord {
    /// Returns the place of the block's bytes.
    pub(crate) fn extent(&self) -> Extent {
        Extent {
            pack: self.pack,
            offset: self.offset,
        }
    }
}

/// The block hashes of one page (key `P` + page hash). Its reference count lives
/// under its own key so that referencing a page again rewrites eight bytes, not
/// the whole page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PageBody {
    pub entries: Vec<BlockHash>,
}

/// A page stored as its difference from another stored page (key `D` + page
/// hash). The page's hash is still the hash of its full [`PageBody`] encoding,
/// so a page can change between the full and the delta form without changing
/// its address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PageDelta {
    /// The page this one is expressed against.
    pub base: PageHash,
    /// Number of entries of the page: the base's entries are cut or padded
    /// with zero hashes to this length before `changes` apply.
    pub len: u32,
    /// The positions where this page differs from `base` and its entries
    /// there, in increasing position order.
    pub changes: Vec<(u32, BlockHash)>,
}

/// Reference count of a stored page (key `p` + page hash): the number of places
/// it occurs in the roots of live snapshots and of creates in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PageCount {
    pub refcount: u64,
}

/// A committed snapshot (key `s` + name). Its root lives under keys `r` + id +
/// page index, one per page that is not all zeros.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotRecord {
    pub id: u64,
    pub name: String,
    pub disk_name: String,
    /// Exact byte length of the source.
    pub length: u64,
    /// Number of pages in the root, including all-zero pages that have no key.
    pub page_count: u64,
    pub created_at: i64,
    pub tags: Vec<(String, String)>,
    /// Sequence number of the create operation.
    pub operation_seq: u64,
}

/// Marker of a create that has started but not committed (key `w` + snapshot id).
/// Recovery turns it into a [`GcItem::DropRoot`] and fails its operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingCreate {
    pub snapshot_name: String,
    pub operation_seqs: Vec<u64>,
}

/// A pack file's bookkeeping (key `k` + pack id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PackRecord {
    /// Bytes of the pack that committed metadata may reference; anything past
    /// this is an uncommitted append and is truncated on open.
    pub committed_len: u64,
    /// Number of block records that point into this pack.
    pub live_blocks: u64,
}

/// One step of garbage collection still to do (key `q` + sequence number).
/// bincode stores a variant's position, so new variants go at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum GcItem {
    /// Drop every root entry of snapshot `snapshot_id`, decrementing each page.
    DropRoot { snapshot_id: u64 },
    /// Decrement each block by the given count.
    ReleaseBlocks { blocks: Vec<(BlockHash, u32)> },
    /// Punch these pack ranges, one entry per block. Builds before `FreeRuns`
    /// queued this form, and it is still drained so that their items finish.
    FreeExtents { extents: Vec<Extent> },
    /// Punch these runs of consecutive blocks: their blocks are gone from the
    /// index.
    FreeRuns { runs: Vec<ExtentRun> },
    /// Remove these pages, whose counts reached zero: re-express each delta
    /// page based on one of them, then release the blocks they alone held.
    FreePages { pages: Vec<PageHash> },
}

/// A block-sized range in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Extent {
    pub pack: u32,
    pub offset: u64,
}

/// `blocks` consecutive blocks of one pack, the first at byte `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExtentRun {
    pub pack: u32,
    pub offset: u64,
    pub blocks: u64,
}

impl From<Extent> for ExtentRun {
    fn from(extent: Extent) -> ExtentRun {
        ExtentRun {
            pack: extent.pack,
            offset: extent.offset,
            blocks: 1,
        }
    }
}

/// A persisted Lightsail operation (key `o` + sequence number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OperationRecord {
    pub id: String,
    pub resource_name: String,
    pub resource_type: String,
    pub created_at: i64,
    pub availability_zone: String,
    pub is_terminal: bool,
    pub operation_details: String,
    pub operation_type: String,
    pub status: String,
    pub status_changed_at: i64,
    pub error_code: Option<String>,
    pub error_details: Option<String>,
}

/// Marker of a delete whose garbage collection has not finished (key `d` +
/// operation sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingDelete {
    pub snapshot_id: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::codec::{decode, encode};

    fn round_trip<T>(value: &T)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let bytes = encode(value).unwrap();
        assert_eq!(&decode::<T>("test", &bytes).unwrap(), value);
    }

    #[test]
    fn every_record_round_trips() {
        round_trip(&StoreConfig {
            block_size: 65536,
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            created_at: 1_700_000_000_000_000_000,
        });
        round_trip(&BlockRecord {
            pack: 3,
            offset: 1 << 40,
            refcount: u64::MAX,
        });
        round_trip(&PageBody {
            entries: vec![BlockHash::ZERO, BlockHash::of(b"x")],
        });
        round_trip(&PageDelta {
            base: PageHash::of(b"base"),
            len: 1024,
            changes: vec![(3, BlockHash::of(b"y"))],
        });
        round_trip(&PageCount { refcount: 5 });
        round_trip(&SnapshotRecord {
            id: 9,
            name: "snap-1".into(),
            disk_name: "disk".into(),
            length: 12345,
            page_count: 1,
            created_at: -5,
            tags: vec![("env".into(), "prod".into())],
            operation_seq: 4,
        });
        round_trip(&PendingCreate {
            snapshot_name: "s".into(),
            operation_seqs: vec![1, 2],
        });
        round_trip(&PackRecord {
            committed_len: 4096,
            live_blocks: 1,
        });
        round_trip(&GcItem::DropRoot { snapshot_id: 1 });
        round_trip(&GcItem::ReleaseBlocks {
            blocks: vec![(BlockHash::of(b"a"), 2)],
        });
        round_trip(&GcItem::FreeExtents {
            extents: vec![Extent {
                pack: 1,
                offset: 8192,
            }],
        });
        round_trip(&GcItem::FreeRuns {
            runs: vec![ExtentRun {
                pack: 2,
                offset: 1 << 30,
                blocks: 16_384,
            }],
        });
        round_trip(&GcItem::FreePages {
            pages: vec![PageHash::of(b"page")],
        });
        round_trip(&OperationRecord {
            id: "id".into(),
            resource_name: "snap".into(),
            resource_type: "DiskSnapshot".into(),
            created_at: 1,
            availability_zone: "all".into(),
            is_terminal: true,
            operation_details: "disk".into(),
            operation_type: "CreateDiskSnapshot".into(),
            status: "Succeeded".into(),
            status_changed_at: 2,
            error_code: None,
            error_details: Some("x".into()),
        });
        round_trip(&PendingDelete { snapshot_id: 3 });
        round_trip(&PageHash::of(b"root"));
    }

    /// Bytes of a `FreeExtents` item as the build before `FreeRuns` wrote
    /// them: version 1, variant 2, two extents (pack 1 at 8 KiB, pack 300 at
    /// 8 GiB) in bincode's variable-length integers.
    #[test]
    fn free_extents_bytes_still_decode() {
        let bytes = [
            1, 2, 2, 1, 251, 0, 32, 251, 44, 1, 253, 0, 0, 0, 0, 2, 0, 0, 0,
        ];
        let item = decode::<GcItem>("test", &bytes).unwrap();
        assert_eq!(
            item,
            GcItem::FreeExtents {
                extents: vec![
                    Extent {
                        pack: 1,
                        offset: 8192
                    },
                    Extent {
                        pack: 300,
                        offset: 1 << 33
                    },
                ],
            }
        );
        assert_eq!(encode(&item).unwrap(), bytes);
    }

    #[test]
    fn free_runs_is_variant_three() {
        let bytes = encode(&GcItem::FreeRuns {
            runs: vec![ExtentRun {
                pack: 1,
                offset: 8192,
                blocks: 3,
            }],
        })
        .unwrap();
        assert_eq!(bytes, [1, 3, 1, 1, 251, 0, 32, 3]);
    }
}

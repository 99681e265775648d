//! Command-line arguments, named after the `aws lightsail` commands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Incremental, block-level disk snapshots with exact garbage collection.
///
/// Output is JSON on stdout in the Lightsail response shapes; errors go to
/// stderr with the Lightsail exception name and a non-zero exit status.
#[derive(Debug, Parser)]
#[command(name = "blocksnap", version)]
pub struct Cli {
    /// Store directory. create-disk-snapshot creates it if it is missing, and
    /// every other command requires an existing store.
    #[arg(
        long,
        env = "BLOCKSNAP_STORE",
        default_value = "./blocksnap-store",
        global = true
    )]
    pub store: PathBuf,

    /// Block size in bytes for a new store: a power of two from 4096 to 1048576
    /// (default 65536). For an existing store it must match the recorded size.
    #[arg(long, global = true)]
    pub block_size: Option<u32>,

    /// Region recorded in a new store (default us-east-1), such as eu-west-1.
    /// For an existing store it must match the recorded region.
    #[arg(long, global = true)]
    pub region: Option<String>,

    /// IAM-style policy (JSON file) that every call is checked against. Without
    /// it the caller is the account owner and may do everything.
    #[arg(long, global = true)]
    pub policy: Option<PathBuf>,

    /// Open the store without changing it, for a store on read-only media or
    /// under inspection. Reads, restores and verify work on a private copy of
    /// the metadata; changes are refused. A missing store is not created.
    #[arg(long, global = true)]
    pub read_only: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Snapshot a disk image or block device.
    CreateDiskSnapshot {
        /// Name of the source disk; snapshots of one disk share unchanged pages.
        #[arg(long, allow_hyphen_values = true)]
        disk_name: String,
        /// Name of the new snapshot.
        #[arg(long, allow_hyphen_values = true)]
        disk_snapshot_name: String,
        /// Image file or block device to read; `-` reads standard input.
        #[arg(long)]
        source: PathBuf,
        /// Tag as KEY=VALUE (or KEY for an empty value); repeat for more tags.
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// File listing the indices of the blocks changed since the parent
        /// snapshot (decimal, separated by white space or commas). Only those
        /// blocks are read; the rest come from the parent.
        #[arg(long, value_name = "FILE")]
        changed_blocks: Option<PathBuf>,
        /// Parent for --changed-blocks; defaults to the disk's newest snapshot.
        #[arg(long, allow_hyphen_values = true, requires = "changed_blocks")]
        parent_disk_snapshot_name: Option<String>,
    },
    /// List the indices of the blocks that differ between two snapshots of a disk.
    ListChangedBlocks {
        /// The older snapshot.
        #[arg(long, allow_hyphen_values = true)]
        first_disk_snapshot_name: String,
        /// The newer snapshot.
        #[arg(long, allow_hyphen_values = true)]
        second_disk_snapshot_name: String,
    },
    /// Read one block of a snapshot, checked against its hash.
    GetSnapshotBlock {
        /// Name of the snapshot.
        #[arg(long, allow_hyphen_values = true)]
        disk_snapshot_name: String,
        /// Index of the block (byte offset divided by the block size).
        #[arg(long)]
        block_index: u64,
        /// File to write the block's bytes to; without it only the hash is printed.
        #[arg(long)]
        target: Option<PathBuf>,
    },
    /// Delete a snapshot and free the data no other snapshot needs.
    DeleteDiskSnapshot {
        /// Name of the snapshot to delete.
        #[arg(long, allow_hyphen_values = true)]
        disk_snapshot_name: String,
    },
    /// Restore a snapshot's exact bytes into a file.
    CreateDiskFromSnapshot {
        /// Name of the snapshot to restore.
        #[arg(long, allow_hyphen_values = true)]
        disk_snapshot_name: String,
        /// Name of the new disk, recorded in the operation.
        #[arg(long, allow_hyphen_values = true)]
        disk_name: String,
        /// File to write (created or truncated); zero blocks become holes.
        #[arg(long)]
        target: PathBuf,
    },
    /// Show one snapshot.
    GetDiskSnapshot {
        /// Name of the snapshot.
        #[arg(long, allow_hyphen_values = true)]
        disk_snapshot_name: String,
    },
    /// List snapshots in name order, a page at a time.
    GetDiskSnapshots {
        /// The nextPageToken of the previous page.
        #[arg(long)]
        page_token: Option<String>,
    },
    /// Show one operation.
    GetOperation {
        /// The operation id.
        #[arg(long, allow_hyphen_values = true)]
        operation_id: String,
    },
    /// List operations from oldest to newest, a page at a time.
    GetOperations {
        /// The nextPageToken of the previous page.
        #[arg(long)]
        page_token: Option<String>,
    },
    /// List the operations on one snapshot or disk.
    GetOperationsForResource {
        /// Name of the snapshot or disk.
        #[arg(long, allow_hyphen_values = true)]
        resource_name: String,
        /// The nextPageToken of the previous page.
        #[arg(long)]
        page_token: Option<String>,
    },
    /// Add tags to a snapshot, replacing the values of keys it already has.
    TagResource {
        /// Name of the snapshot.
        #[arg(long, allow_hyphen_values = true)]
        resource_name: String,
        /// Tag as KEY=VALUE (or KEY for an empty value); repeat for more tags.
        #[arg(long = "tag", value_name = "KEY=VALUE", required = true)]
        tags: Vec<String>,
    },
    /// Remove tags from a snapshot by key.
    UntagResource {
        /// Name of the snapshot.
        #[arg(long, allow_hyphen_values = true)]
        resource_name: String,
        /// Key of a tag to remove; repeat for more keys.
        #[arg(long = "tag-key", value_name = "KEY", required = true)]
        tag_keys: Vec<String>,
    },
    /// Recount every reference and re-hash every block; exits non-zero on any problem.
    Verify {
        /// Repair what can be repaired without losing data (recount reference
        /// counts, drop leaked blocks and unreferenced pages) and report what
        /// cannot be (missing or corrupt blocks, by snapshot and block index).
        #[arg(long)]
        repair: bool,
    },
    /// Count snapshots, pages and blocks and measure the store's size on disk.
    Stats,
}

//! Command-line arguments, named after the `aws lightsail` commands.

use std::path::PathBuf;

use blocksnap::model::RegionName;
use clap::{Parser, Subcommand};

/// Incremental, block-level disk snapshots with exact garbage collection.
///
/// Output is JSON on stdout in the Lightsail response shapes; errors go to
/// stderr with the Lightsail exception name and a non-zero exit status.
#[derive(Debug, Parser)]
#[command(name = "blocksnap", version)]
pub struct Cli {
    /// Store directory, created on first use.
    #[arg(
        long,
        env = "BLOCKSNAP_STORE",
        default_value = "./blocksnap-store",
        global = true
    )]
    pub store: PathBuf,

    /// Block size in bytes for a new store: a power of two from 4096 to 1048576
    /// (default 65536). An existing store keeps the size it was created with.
    #[arg(long, global = true)]
    pub block_size: Option<u32>,

    /// Region recorded in a new store (default us-east-1).
    #[arg(long, global = true)]
    pub region: Option<RegionName>,

    /// IAM-style policy (JSON file) that every call is checked against. Without
    /// it the caller is the account owner and may do everything.
    #[arg(long, global = true)]
    pub policy: Option<PathBuf>,

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
    /// Recount every reference and re-hash every block; exits non-zero on any problem.
    Verify,
    /// Count snapshots, pages and blocks and measure the store's size on disk.
    Stats,
}

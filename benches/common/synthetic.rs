//! The synthetic disks and change layouts that the scaling benches share.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use blocksnap::{Store, StoreOptions};
use tempfile::TempDir;

/// Block size of the scaling stores: small, so that a disk of 2^20 blocks
/// takes 4 GiB rather than 64 GiB.
pub const BLOCK: u64 = 4096;

/// Opens a store in `dir` with [`BLOCK`]-sized blocks.
fn open_store(dir: &Path) -> Store {
    Store::open_with(
        dir,
        StoreOptions {
            block_size: Some(BLOCK as u32),
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

/// Returns the disk sizes in blocks: 2^14, 2^16, ... up to 2^20, or up to
/// 2^`BLOCKSNAP_SCALING_MAX_LOG2` when that variable is set.
pub fn disk_sizes() -> impl Iterator<Item = u64> {
    let max_log2: u32 = std::env::var("BLOCKSNAP_SCALING_MAX_LOG2")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20);
    (14..=max_log2).step_by(2).map(|log2| 1u64 << log2)
}

/// Opens a store in a new temporary directory and snapshots version 0 of a
/// disk of `blocks` blocks in it as `base` of disk `disk`. The store lives as
/// long as the returned directory.
pub fn store_with_base(blocks: u64) -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    store
        .create_disk_snapshot("disk", "base", SyntheticDisk::base(blocks), &[])
        .unwrap();
    (dir, store)
}

/// A synthetic disk of `blocks` blocks in which block `i` starts with `i` and
/// the version of its last change, so every block is unique and non-zero while
/// generating it costs almost nothing. The `changed` blocks `first`,
/// `first + stride`, `first + 2 × stride`, ... carry `version`; the others
/// carry version 0.
pub struct SyntheticDisk {
    pub blocks: u64,
    pub version: u64,
    pub first: u64,
    pub changed: u64,
    pub stride: u64,
    pub position: u64,
}

impl SyntheticDisk {
    /// Version 0 of a disk of `blocks` blocks.
    pub fn base(blocks: u64) -> SyntheticDisk {
        SyntheticDisk {
            blocks,
            version: 0,
            first: 0,
            changed: 0,
            stride: 1,
            position: 0,
        }
    }

    fn is_changed(&self, index: u64) -> bool {
        self.version != 0
            && index >= self.first
            && (index - self.first).is_multiple_of(self.stride)
            && (index - self.first) / self.stride < self.changed
    }

    pub fn changed_indices(&self) -> Vec<u64> {
        (0..self.changed)
            .map(|k| self.first + k * self.stride)
            .collect()
    }
}

impl Read for SyntheticDisk {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let length = self.blocks * BLOCK;
        let mut written = 0;
        while written < buffer.len() && self.position < length {
            let index = self.position / BLOCK;
            let within = (self.position % BLOCK) as usize;
            let mut block = [0u8; 16];
            block[..8].copy_from_slice(&(index + 1).to_le_bytes());
            let version = if self.is_changed(index) {
                self.version
            } else {
                0
            };
            block[8..].copy_from_slice(&version.to_le_bytes());
            let step = (BLOCK as usize - within).min(buffer.len() - written);
            for (offset, byte) in buffer[written..written + step].iter_mut().enumerate() {
                *byte = block.get(within + offset).copied().unwrap_or(0);
            }
            written += step;
            self.position += step as u64;
        }
        Ok(written)
    }
}

impl Seek for SyntheticDisk {
    fn seek(&mut self, target: SeekFrom) -> io::Result<u64> {
        let length = self.blocks * BLOCK;
        self.position = match target {
            SeekFrom::Start(offset) => offset,
            SeekFrom::End(delta) => length.saturating_add_signed(delta),
            SeekFrom::Current(delta) => self.position.saturating_add_signed(delta),
        };
        Ok(self.position)
    }
}

/// One size and layout of change between neighbouring snapshots.
pub struct ChangeCase {
    /// The case's name in criterion's ids, such as `scattered-d=1%`.
    pub label: &'static str,
    /// Number of blocks that differ from the neighbour: d.
    pub changed: u64,
    /// Spread evenly over the disk rather than one run of consecutive blocks.
    pub scattered: bool,
}

impl ChangeCase {
    /// Returns the five cases for a disk of `blocks` blocks: d = 1, 1 % and
    /// 10 % as one run, and 1 % and 10 % spread evenly.
    pub fn all(blocks: u64) -> [ChangeCase; 5] {
        let case = |label, changed, scattered| ChangeCase {
            label,
            changed,
            scattered,
        };
        [
            case("d=1", 1, false),
            case("d=1%", blocks / 100, false),
            case("d=10%", blocks / 10, false),
            case("scattered-d=1%", blocks / 100, true),
            case("scattered-d=10%", blocks / 10, true),
        ]
    }

    /// `clustered` or `scattered`, as the CSV lines name the layout.
    pub fn layout(&self) -> &'static str {
        if self.scattered {
            "scattered"
        } else {
            "clustered"
        }
    }

    /// Version `version` of a disk of `blocks` blocks that differs from
    /// version 0 in this case's blocks. Versions 1 and 2 differ from each
    /// other in about d blocks too. Clustered, the run of version 1 starts at
    /// N/2 and that of version 2 at N/4. Scattered, both spread over the
    /// whole disk, half a stride apart.
    pub fn version(&self, blocks: u64, version: u64) -> SyntheticDisk {
        let (stride, first) = match (self.scattered, version) {
            (true, 1) => (blocks / self.changed, 0),
            (true, _) => (blocks / self.changed, blocks / self.changed / 2),
            (false, 1) => (1, blocks / 2),
            (false, _) => (1, blocks / 4),
        };
        SyntheticDisk {
            blocks,
            version,
            first,
            changed: self.changed,
            stride,
            position: 0,
        }
    }
}

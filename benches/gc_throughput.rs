//! Garbage-collection throughput: blocks freed per second by the delete of a
//! snapshot whose 64 KiB blocks are all unique, reported by criterion as
//! elements (blocks) per second.
//!
//! Each iteration creates the snapshot in a fresh store (not timed), then times
//! `delete_disk_snapshot`, which drains the whole collection and flushes. Two
//! cases:
//!
//! - `whole_pack`: the snapshot is alone in the store, so its packs are cut to
//!   zero bytes and unlinked;
//! - `shared_pack`: a 64 MiB snapshot that stays was created first, so its
//!   pack also holds most of the deleted blocks, which are freed by one hole
//!   punch.
//!
//! Each case also has a `_cold` variant. The plain one deletes with the pack's
//! pages still in the page cache, as right after the create. The `_cold` one
//! first evicts
//! them (`posix_fadvise` with `DONTNEED`, not timed), as time and memory
//! pressure have done by the time an old snapshot is deleted. Dropping 1 GiB
//! of cached pages is part of the file system's freeing, and on some file
//! systems it is most of it.
//!
//! Environment:
//!
//! - `BLOCKSNAP_BENCH_DIR`: directory in which each store's temporary directory
//!   is made (default: the system's temporary directory). Point it at a tmpfs,
//!   or an ext4 mounted with or without `discard`, to compare file systems.
//! - `BLOCKSNAP_GC_BENCH_MIB`: size of the deleted snapshot in MiB (default
//!   1024, that is 16,384 blocks and one full pack).
//!
//! Run: `BLOCKSNAP_BENCH_DIR=/dev/shm cargo bench --bench gc_throughput`. Each
//! case takes 11 creates and deletes, about a minute with the default size.
//! Criterion then warns that 10 samples do not fit in the 1 s target, which
//! is expected: a sample is a single delete, so that the creates stay few.
//! Criterion compares each run with the previous one of the same name, so
//! name runs on different file systems with `--save-baseline NAME`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};

use blocksnap::Store;

/// Block size of the stores: the default of a new store.
const BLOCK: u64 = 64 << 10;
/// Size of the snapshot that stays in the `shared_pack` case.
const KEPT_BYTES: u64 = 64 << 20;

/// A synthetic disk of `blocks` blocks in which every block starts with its
/// index and `seed` and is zero after that, so every block is unique and none
/// is all zeros. Generating them costs little next to hashing them.
struct UniqueBlocks {
    blocks: u64,
    seed: u64,
    position: u64,
}

impl UniqueBlocks {
    fn new(bytes: u64, seed: u64) -> UniqueBlocks {
        UniqueBlocks {
            blocks: bytes / BLOCK,
            seed,
            position: 0,
        }
    }
}

impl Read for UniqueBlocks {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let start = self.position;
        let end = (self.blocks * BLOCK).min(start + buffer.len() as u64);
        if start == end {
            return Ok(0);
        }
        let filled = &mut buffer[..usize::try_from(end - start).unwrap()];
        filled.fill(0);
        for index in start / BLOCK..=(end - 1) / BLOCK {
            let mut header = [0u8; 16];
            header[..8].copy_from_slice(&index.to_le_bytes());
            header[8..].copy_from_slice(&self.seed.to_le_bytes());
            for (offset, byte) in (index * BLOCK..).zip(header) {
                if (start..end).contains(&offset) {
                    filled[usize::try_from(offset - start).unwrap()] = byte;
                }
            }
        }
        self.position = end;
        Ok(filled.len())
    }
}

/// Parent directory of the benchmark stores.
fn bench_dir() -> PathBuf {
    std::env::var_os("BLOCKSNAP_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn deleted_bytes() -> u64 {
    let mib: u64 = std::env::var("BLOCKSNAP_GC_BENCH_MIB").map_or(1024, |value| {
        value
            .parse()
            .expect("BLOCKSNAP_GC_BENCH_MIB must be a whole number of MiB")
    });
    mib << 20
}

/// Evicts the pack files of the store in `dir` from the page cache. Their
/// pages are clean, since a create syncs its packs before it returns.
fn evict_packs(dir: &Path) {
    for entry in std::fs::read_dir(dir.join("packs")).unwrap() {
        let file = std::fs::File::open(entry.unwrap().path()).unwrap();
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    }
}

/// Creates a store in a new temporary directory with the snapshot `victim` of
/// `bytes` unique bytes, after a snapshot `kept` of [`KEPT_BYTES`] when
/// `shared` is set.
fn store_with_victim(bytes: u64, shared: bool) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let store = Store::open(dir.path()).unwrap();
    if shared {
        store
            .create_disk_snapshot("kept-disk", "kept", UniqueBlocks::new(KEPT_BYTES, 1), &[])
            .unwrap();
    }
    store
        .create_disk_snapshot("disk", "victim", UniqueBlocks::new(bytes, 2), &[])
        .unwrap();
    (dir, store)
}

fn delete_unique(c: &mut Criterion) {
    let bytes = deleted_bytes();
    let mut group = c.benchmark_group("gc_throughput");
    // One delete per sample: each needs a create of `bytes` first.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(bytes / BLOCK));

    for (name, shared, cold) in [
        ("whole_pack", false, false),
        ("shared_pack", true, false),
        ("whole_pack_cold", false, true),
        ("shared_pack_cold", true, true),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let (dir, store) = store_with_victim(bytes, shared);
                    if cold {
                        evict_packs(dir.path());
                    }
                    (dir, store)
                },
                |(dir, store)| {
                    store.delete_disk_snapshot("victim").unwrap();
                    (dir, store)
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, delete_unique);
criterion_main!(benches);

//! The cost of the changed-block API against the disk size N (in blocks) and
//! the number d of changed blocks:
//!
//! - `create_incremental`: `create_disk_snapshot_incremental` of a child from
//!   a base snapshot with a list of d changed blocks;
//! - `list_changed_blocks`: the list of blocks that differ between that base
//!   and that child.
//!
//! The disks, sizes and change layouts are those of the `delete_scaling`
//! bench: N in 2^14, 2^16, 2^18, 2^20 blocks of 4 KiB, d in 1, 1 % and 10 %
//! of N, as one run of blocks or spread evenly. Alongside criterion's
//! timings, the bench prints one CSV line per case with the metadata writes
//! of one create, the bytes the create read from its source and the number
//! of blocks the list returned. `benches/plot_change_scaling.py` fits their
//! slopes against N.
//!
//! Run: `cargo bench --bench change_scaling` (the largest case writes 4 GiB
//! of block data once); `BLOCKSNAP_SCALING_MAX_LOG2=18` stops earlier.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    missing_docs
)]

use std::io::{self, Read, Seek, SeekFrom};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};

#[path = "common/synthetic.rs"]
mod synthetic;

use synthetic::{disk_sizes, store_with_base, ChangeCase, SyntheticDisk};

/// A source that counts the bytes read from it, to show that an incremental
/// create reads the listed blocks and nothing else.
struct Counted<'a> {
    inner: SyntheticDisk,
    bytes: &'a mut u64,
}

impl Read for Counted<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        *self.bytes += read as u64;
        Ok(read)
    }
}

impl Seek for Counted<'_> {
    fn seek(&mut self, target: SeekFrom) -> io::Result<u64> {
        self.inner.seek(target)
    }
}

fn change_scaling(c: &mut Criterion) {
    println!("csv-change,layout,blocks,changed,metadata_writes_of_create,source_bytes_read,blocks_listed");
    for blocks in disk_sizes() {
        let (_dir, store) = store_with_base(blocks);

        for case in ChangeCase::all(blocks) {
            let changes = case.version(blocks, 1).changed_indices();
            let create_child = || {
                store
                    .create_disk_snapshot_incremental(
                        "disk",
                        "child",
                        "base",
                        &changes,
                        case.version(blocks, 1),
                        &[],
                    )
                    .unwrap();
            };

            let writes_before = store.metadata_writes();
            let mut bytes_read = 0;
            let source = Counted {
                inner: case.version(blocks, 1),
                bytes: &mut bytes_read,
            };
            store
                .create_disk_snapshot_incremental("disk", "child", "base", &changes, source, &[])
                .unwrap();
            let writes = store.metadata_writes() - writes_before;
            let listed = store.list_changed_blocks("base", "child").unwrap();
            assert_eq!(
                listed, changes,
                "the list must name exactly the changed blocks"
            );
            println!(
                "csv-change,{},{blocks},{},{writes},{bytes_read},{}",
                case.layout(),
                case.changed,
                listed.len()
            );

            let mut group = c.benchmark_group("list_changed_blocks");
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(3));
            group.bench_function(BenchmarkId::new(case.label, blocks), |b| {
                b.iter(|| store.list_changed_blocks("base", "child").unwrap());
            });
            group.finish();

            let mut group = c.benchmark_group("create_incremental");
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(3));
            group.bench_function(BenchmarkId::new(case.label, blocks), |b| {
                b.iter_batched(
                    || store.delete_disk_snapshot("child").unwrap(),
                    |_| create_child(),
                    BatchSize::PerIteration,
                );
            });
            group.finish();
            store.delete_disk_snapshot("child").unwrap();
        }
    }
}

criterion_group!(benches, change_scaling);
criterion_main!(benches);

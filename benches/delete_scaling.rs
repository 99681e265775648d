//! How the cost of `delete_disk_snapshot` grows with the disk size N (in
//! blocks) and with the change d between neighbouring snapshots.
//!
//! For each N in 2^14, 2^16, 2^18, 2^20 blocks of 4 KiB and each d in 1, 1% and
//! 10% of N, a store holds a chain base → middle → top where each snapshot
//! differs from the previous one in d blocks. Two layouts of the change are
//! measured: one run of d consecutive blocks (as a file system's writes tend to
//! cluster), and d blocks spread evenly over the disk, which touches
//! min(d, N / 1,024) pages. The measured step deletes the middle snapshot
//! (which frees exactly its d unique blocks), and the setup recreates it from
//! the base with the changed-block API. Alongside the criterion timings, the
//! bench prints one CSV line per case with the number of metadata writes the
//! delete made, which `benches/plot_delete_scaling.py` turns into the plot in
//! `docs/`.
//!
//! Run: `cargo bench --bench delete_scaling` (the largest case writes 4 GiB of
//! block data once); `BLOCKSNAP_SCALING_MAX_LOG2=18` stops earlier.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    missing_docs
)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};

#[path = "common/synthetic.rs"]
mod synthetic;

use synthetic::{disk_sizes, store_with_base, ChangeCase};

fn delete_scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("delete_middle");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    println!("csv,layout,blocks,changed,metadata_writes_of_delete");

    for blocks in disk_sizes() {
        let (_dir, store) = store_with_base(blocks);

        for case in ChangeCase::all(blocks) {
            let middle_changes = case.version(blocks, 1).changed_indices();
            let create_middle = || {
                store
                    .create_disk_snapshot_incremental(
                        "disk",
                        "middle",
                        "base",
                        &middle_changes,
                        case.version(blocks, 1),
                        &[],
                    )
                    .unwrap();
            };
            create_middle();
            // The top reverts the middle's blocks and changes its own.
            let top = case.version(blocks, 2);
            let mut top_list = middle_changes.clone();
            top_list.extend(top.changed_indices());
            store
                .create_disk_snapshot_incremental("disk", "top", "middle", &top_list, top, &[])
                .unwrap();

            let writes_before = store.metadata_writes();
            store.delete_disk_snapshot("middle").unwrap();
            println!(
                "csv,{},{blocks},{},{}",
                case.layout(),
                case.changed,
                store.metadata_writes() - writes_before
            );

            group.bench_function(BenchmarkId::new(case.label, blocks), |b| {
                b.iter_batched(
                    create_middle,
                    |()| store.delete_disk_snapshot("middle").unwrap(),
                    BatchSize::PerIteration,
                );
            });
            store.delete_disk_snapshot("top").unwrap();
        }
    }
    group.finish();
}

criterion_group!(benches, delete_scaling);
criterion_main!(benches);

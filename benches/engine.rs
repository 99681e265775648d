//! Criterion benchmarks of the engine's main paths on a 64 MiB image with 64 KiB
//! blocks (1,024 blocks, one page): a full create of fresh data, a re-snapshot
//! of unchanged data, a restore, and the delete of a snapshot whose blocks are
//! all unique (the garbage-collection path).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use blocksnap::Store;

const IMAGE_BYTES: usize = 64 << 20;

/// Fresh pseudo-random bytes (blake3 in extendable-output mode), so no block
/// repeats and none is zero.
fn random_image(seed: u64) -> Vec<u8> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&seed.to_le_bytes());
    let mut bytes = vec![0u8; IMAGE_BYTES];
    hasher.finalize_xof().fill(&mut bytes);
    bytes
}

fn create(c: &mut Criterion) {
    let image = random_image(1);
    let mut group = c.benchmark_group("create");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(IMAGE_BYTES as u64));

    group.bench_function("full_64MiB", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let store = Store::open(dir.path()).unwrap();
                store
                    .create_disk_snapshot("disk", "snap", &image[..], &[])
                    .unwrap();
                dir
            },
            BatchSize::PerIteration,
        );
    });

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .create_disk_snapshot("disk", "base", &image[..], &[])
        .unwrap();
    let mut round = 0u64;
    group.bench_function("unchanged_64MiB", |b| {
        b.iter(|| {
            round += 1;
            let name = format!("again-{round}");
            store
                .create_disk_snapshot("disk", &name, &image[..], &[])
                .unwrap();
            store.delete_disk_snapshot(&name).unwrap();
        });
    });
    group.finish();
}

fn restore(c: &mut Criterion) {
    let image = random_image(2);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .create_disk_snapshot("disk", "snap", &image[..], &[])
        .unwrap();
    let mut group = c.benchmark_group("restore");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(IMAGE_BYTES as u64));
    group.bench_function("to_memory_64MiB", |b| {
        let mut target = Vec::with_capacity(IMAGE_BYTES);
        b.iter(|| {
            target.clear();
            store
                .create_disk_from_snapshot("snap", "copy", &mut target)
                .unwrap();
        });
    });
    group.finish();
}

fn delete(c: &mut Criterion) {
    let image = random_image(3);
    let mut group = c.benchmark_group("delete");
    group.sample_size(10);
    group.throughput(Throughput::Elements((IMAGE_BYTES / 65536) as u64));
    group.bench_function("unique_blocks_1024", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path()).unwrap();
                store
                    .create_disk_snapshot("disk", "snap", &image[..], &[])
                    .unwrap();
                (dir, store)
            },
            |(dir, store)| {
                store.delete_disk_snapshot("snap").unwrap();
                (dir, store)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, create, restore, delete);
criterion_main!(benches);

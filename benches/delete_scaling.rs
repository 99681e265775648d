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

use std::io::{self, Read, Seek, SeekFrom};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};

use blocksnap::{Store, StoreOptions};

const BLOCK: u64 = 4096;

/// A synthetic disk of `blocks` blocks in which block `i` starts with `i` and
/// the version of its last change, so every block is unique and non-zero while
/// generating it costs almost nothing. The `changed` blocks `first`,
/// `first + stride`, `first + 2 × stride`, ... carry `version`; the others
/// carry version 0.
struct SyntheticDisk {
    blocks: u64,
    version: u64,
    first: u64,
    changed: u64,
    stride: u64,
    position: u64,
}

impl SyntheticDisk {
    fn is_changed(&self, index: u64) -> bool {
        self.version != 0
            && index >= self.first
            && (index - self.first).is_multiple_of(self.stride)
            && (index - self.first) / self.stride < self.changed
    }

    fn changed_indices(&self) -> Vec<u64> {
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

fn delete_scaling(c: &mut Criterion) {
    let max_log2: u32 = std::env::var("BLOCKSNAP_SCALING_MAX_LOG2")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20);
    let mut group = c.benchmark_group("delete_middle");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    println!("csv,layout,blocks,changed,metadata_writes_of_delete");

    for log2 in (14..=max_log2).step_by(2) {
        let blocks = 1u64 << log2;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(
            dir.path(),
            StoreOptions {
                block_size: Some(BLOCK as u32),
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let base = SyntheticDisk {
            blocks,
            version: 0,
            first: 0,
            changed: 0,
            stride: 1,
            position: 0,
        };
        store
            .create_disk_snapshot("disk", "base", base, &[])
            .unwrap();

        let cases = [
            ("d=1", 1, false),
            ("d=1%", blocks / 100, false),
            ("d=10%", blocks / 10, false),
            ("scattered-d=1%", blocks / 100, true),
            ("scattered-d=10%", blocks / 10, true),
        ];
        for (label, changed, scattered) in cases {
            // Clustered: the middle's run starts at N/2 and the top's at N/4.
            // Scattered: both spread over the whole disk, half a stride apart.
            // Either way each snapshot differs from its neighbours in about d
            // blocks.
            let (stride, middle_first, top_first) = if scattered {
                let stride = blocks / changed;
                (stride, 0, stride / 2)
            } else {
                (1, blocks / 2, blocks / 4)
            };
            let middle = |position| SyntheticDisk {
                blocks,
                version: 1,
                first: middle_first,
                changed,
                stride,
                position,
            };
            let top = SyntheticDisk {
                blocks,
                version: 2,
                first: top_first,
                changed,
                stride,
                position: 0,
            };
            let middle_changes = middle(0).changed_indices();
            let create_middle = || {
                store
                    .create_disk_snapshot_incremental(
                        "disk",
                        "middle",
                        "base",
                        &middle_changes,
                        middle(0),
                        &[],
                    )
                    .unwrap();
            };
            create_middle();
            // The top reverts the middle's run and changes its own.
            let mut top_list = middle_changes.clone();
            top_list.extend(top.changed_indices());
            store
                .create_disk_snapshot_incremental("disk", "top", "middle", &top_list, top, &[])
                .unwrap();

            let writes_before = store.metadata_writes();
            store.delete_disk_snapshot("middle").unwrap();
            let layout = if scattered { "scattered" } else { "clustered" };
            println!(
                "csv,{layout},{blocks},{changed},{}",
                store.metadata_writes() - writes_before
            );

            group.bench_function(BenchmarkId::new(label, blocks), |b| {
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

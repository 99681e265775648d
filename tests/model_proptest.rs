#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Random histories of two disks checked against an in-memory model.
//!
//! The model keeps the current bytes of each disk and the bytes of each live
//! snapshot. Every disk stays under one page (at most 41 blocks of 4 KiB), so
//! the model can also predict the store's exact size. The store holds one
//! block per distinct non-zero block of the live snapshots, and one page per
//! distinct zero-padded image that is not all zeros. Any leak or early free
//! breaks that count, so garbage collection is checked after every operation.
//!
//! `BLOCKSNAP_PROPTEST_CASES` sets the number of cases (32 by default).
//! Shrunk failures are not persisted; turn one into a named regression test
//! in `tests/field_cases.rs` instead.

mod common;

use std::collections::{BTreeMap, HashSet};

use blocksnap::Store;
use common::{
    assert_bytes_equal, assert_verify_clean, open_store, padded, random_bytes, restore, BLOCK,
};
use proptest::prelude::*;
use proptest::sample::Index;

const DISKS: usize = 2;
/// Maximum disk length: 40 blocks and a partial block.
const MAX_LEN: usize = 40 * BLOCK + BLOCK - 1;
/// Number of distinct block contents a write picks from. It is small, so that
/// blocks repeat within and across disks and snapshots.
const PATTERNS: u64 = 6;
/// Interval, in operations, at which every live snapshot is restored, not only
/// the one that a `Restore` operation picked.
const FULL_CHECK_EVERY: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    /// Overwrites `count` blocks from block `first` with one pattern, or with
    /// zeros for `None`. Blocks past the end of the disk are not written.
    WriteBlocks {
        disk: usize,
        first: usize,
        count: usize,
        pattern: Option<u64>,
    },
    /// Truncates or zero-extends the disk to `len` bytes.
    Resize {
        disk: usize,
        len: usize,
    },
    Snapshot {
        disk: usize,
    },
    Delete {
        pick: Index,
    },
    Restore {
        pick: Index,
    },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..DISKS, 0..41usize, 1..6usize, prop::option::weighted(0.8, 0..PATTERNS))
            .prop_map(|(disk, first, count, pattern)| Op::WriteBlocks { disk, first, count, pattern }),
        1 => (0..DISKS, 1..=MAX_LEN).prop_map(|(disk, len)| Op::Resize { disk, len }),
        3 => (0..DISKS).prop_map(|disk| Op::Snapshot { disk }),
        2 => any::<Index>().prop_map(|pick| Op::Delete { pick }),
        2 => any::<Index>().prop_map(|pick| Op::Restore { pick }),
    ]
}

fn initial_lengths() -> impl Strategy<Value = [usize; DISKS]> {
    [1..=MAX_LEN, 1..=MAX_LEN]
}

/// The expected state of the store.
struct Model {
    disks: [Vec<u8>; DISKS],
    snapshots: BTreeMap<String, Vec<u8>>,
    next_snapshot: usize,
}

impl Model {
    fn new(lengths: [usize; DISKS]) -> Self {
        let disks = lengths.map(|len| random_bytes(len as u64, len));
        Model {
            disks,
            snapshots: BTreeMap::new(),
            next_snapshot: 0,
        }
    }

    fn pick(&self, pick: Index) -> Option<String> {
        common::pick_snapshot(&self.snapshots, pick)
    }

    /// Blocks the store must hold: the distinct non-zero blocks of the live
    /// snapshots, a partial last block counted as if zero-padded.
    fn expected_blocks(&self) -> u64 {
        let mut blocks: HashSet<Vec<u8>> = HashSet::new();
        for image in self.snapshots.values() {
            for block in padded(image).chunks(BLOCK) {
                if block.iter().any(|byte| *byte != 0) {
                    blocks.insert(block.to_vec());
                }
            }
        }
        blocks.len() as u64
    }

    /// Pages the store must hold: every image fits one page, and images equal
    /// once zero-padded to whole blocks share their page.
    fn expected_pages(&self) -> u64 {
        let pages: HashSet<Vec<u8>> = self
            .snapshots
            .values()
            .map(|image| padded(image))
            .filter(|image| image.iter().any(|byte| *byte != 0))
            .collect();
        pages.len() as u64
    }
}

fn disk_name(disk: usize) -> String {
    format!("disk-{disk}")
}

/// Applies `op` to the store and the model, checking the store's result.
fn apply(store: &Store, model: &mut Model, op: &Op) {
    match op {
        Op::WriteBlocks {
            disk,
            first,
            count,
            pattern,
        } => {
            let image = &mut model.disks[*disk];
            let fill =
                pattern.map_or_else(|| vec![0u8; BLOCK], |seed| random_bytes(1000 + seed, BLOCK));
            for block in *first..first + count {
                let start = block * BLOCK;
                if start >= image.len() {
                    break;
                }
                let end = image.len().min(start + BLOCK);
                image[start..end].copy_from_slice(&fill[..end - start]);
            }
        }
        Op::Resize { disk, len } => model.disks[*disk].resize(*len, 0),
        Op::Snapshot { disk } => {
            let name = format!("snap-{}", model.next_snapshot);
            model.next_snapshot += 1;
            let image = model.disks[*disk].clone();
            store
                .create_disk_snapshot(&disk_name(*disk), &name, &image[..], &[])
                .unwrap_or_else(|error| panic!("create {name}: {error}"));
            model.snapshots.insert(name, image);
        }
        Op::Delete { pick } => common::delete_picked(store, &mut model.snapshots, *pick),
        Op::Restore { pick } => {
            if let Some(name) = model.pick(*pick) {
                assert_bytes_equal(&restore(store, &name), &model.snapshots[&name], &name);
            }
        }
    }
}

/// Checks the store against the model: counts always, bytes of every live
/// snapshot when `restore_all`.
fn check(store: &Store, model: &Model, restore_all: bool) {
    let stats = store.stats().unwrap();
    assert_eq!(stats.snapshots, model.snapshots.len() as u64, "snapshots");
    assert_eq!(stats.blocks, model.expected_blocks(), "blocks");
    assert_eq!(stats.pages, model.expected_pages(), "pages");
    let logical: usize = model.snapshots.values().map(Vec::len).sum();
    assert_eq!(stats.logical_bytes, logical as u64, "logical bytes");
    assert_verify_clean(store);
    if restore_all {
        for (name, image) in &model.snapshots {
            assert_bytes_equal(&restore(store, name), image, name);
        }
    }
}

fn run_history(lengths: [usize; DISKS], ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let mut model = Model::new(lengths);

    for (step, op) in ops.iter().enumerate() {
        apply(&store, &mut model, op);
        check(
            &store,
            &model,
            step % FULL_CHECK_EVERY == FULL_CHECK_EVERY - 1,
        );
    }
    check(&store, &model, true);

    let names: Vec<String> = model.snapshots.keys().cloned().collect();
    for name in names {
        store.delete_disk_snapshot(&name).unwrap();
        model.snapshots.remove(&name);
    }
    check(&store, &model, true);
    common::assert_store_emptied(&store, dir.path());
}

proptest! {
    #![proptest_config(common::proptest_config(32))]

    #[test]
    fn histories_match_model(
        lengths in initial_lengths(),
        ops in prop::collection::vec(op_strategy(), 1..40),
    ) {
        run_history(lengths, &ops);
    }
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::cast_possible_truncation)]
//! Random histories of three disks of up to three pages, checked against an
//! in-memory model after every operation.
//!
//! `tests/model_proptest.rs` keeps every disk under one page. Here disks span
//! several pages, start from one shared image and are copied onto each other,
//! so pages are shared across disks and one page becomes the base of several
//! delta pages. Bursts of small changes build chains longer than the 16 deltas
//! a chain may have. Snapshots are made by full and incremental creates, and
//! the history ends by deleting every snapshot in one of several orders.
//!
//! After every operation: every live snapshot restores byte for byte,
//! `verify` is clean, and the store holds exactly the distinct non-zero blocks
//! and pages of the live snapshots. `BLOCKSNAP_PROPTEST_CASES` sets the number
//! of cases (16 by default).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{Cursor, Write};

use blocksnap::Store;
use common::{assert_verify_clean, open_store, padded, random_bytes, BLOCK};
use proptest::prelude::*;
use proptest::sample::Index;

const DISKS: usize = 3;
const PAGE: usize = 1024;
/// Largest disk: two full pages and part of a third.
const MAX_BLOCKS: usize = 2 * PAGE + 40;
/// Block contents that writes repeat, so blocks recur within and across disks.
const PATTERNS: u64 = 8;

#[derive(Debug, Clone)]
enum Op {
    /// Overwrites `count` blocks from `first` with one pattern (zeros for
    /// `None`); blocks past the end are not written.
    Write {
        disk: usize,
        first: usize,
        count: usize,
        pattern: Option<u64>,
    },
    /// Overwrites `count` scattered blocks with new contents, or with zeros
    /// when `zero`; only in one page when `page` is set.
    Scatter {
        disk: usize,
        seed: u64,
        count: usize,
        zero: bool,
        page: Option<Index>,
    },
    /// Snapshots every disk; disks with equal pages then share them.
    SnapshotAll,
    /// Truncates or zero-extends the disk to `len` bytes.
    Resize {
        disk: usize,
        len: usize,
    },
    /// Replaces disk `to`'s bytes with disk `from`'s.
    Copy {
        from: usize,
        to: usize,
    },
    /// Replaces disk `to`'s bytes with disk `from`'s moved by whole pages:
    /// `pages` pages of zeros put in front, or the first `pages` pages cut
    /// off when `cut`. A page then recurs at another index of another disk.
    Shift {
        from: usize,
        to: usize,
        pages: usize,
        cut: bool,
    },
    /// Copies page `from` of a disk over its page `to`, so that one snapshot
    /// names a page twice and two pages of the next snapshot are delta pages
    /// based on the same page.
    DuplicatePage {
        disk: usize,
        from: Index,
        to: Index,
    },
    Snapshot {
        disk: usize,
    },
    /// An incremental create from a live snapshot of the disk, listing the
    /// blocks that differ (plus a few that do not when `extra`).
    Incremental {
        disk: usize,
        parent: Index,
        extra: bool,
    },
    /// `versions` rounds of a few scattered changes and a snapshot.
    Burst {
        disk: usize,
        seed: u64,
        versions: usize,
    },
    Delete {
        pick: Index,
    },
    /// Compares `list_changed_blocks` and `read_block` with the model.
    Query {
        first: Index,
        second: Index,
        block: Index,
    },
}

#[derive(Debug, Clone, Copy)]
enum Teardown {
    OldestFirst,
    NewestFirst,
    MiddleFirst,
    EveryOther,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..DISKS, 0..MAX_BLOCKS, prop_oneof![4 => 1..8usize, 1 => 400..1100usize], prop::option::weighted(0.8, 0..PATTERNS))
            .prop_map(|(disk, first, count, pattern)| Op::Write { disk, first, count, pattern }),
        5 => (0..DISKS, any::<u64>(), 1..40usize, prop::bool::weighted(0.2), prop::option::weighted(0.7, any::<Index>()))
            .prop_map(|(disk, seed, count, zero, page)| Op::Scatter { disk, seed, count, zero, page }),
        2 => Just(Op::SnapshotAll),
        1 => (0..DISKS, 1..=MAX_BLOCKS * BLOCK).prop_map(|(disk, len)| Op::Resize { disk, len }),
        1 => (0..DISKS, 0..DISKS).prop_map(|(from, to)| Op::Copy { from, to }),
        1 => (0..DISKS, 0..DISKS, 1..3usize, any::<bool>())
            .prop_map(|(from, to, pages, cut)| Op::Shift { from, to, pages, cut }),
        2 => (0..DISKS, any::<Index>(), any::<Index>())
            .prop_map(|(disk, from, to)| Op::DuplicatePage { disk, from, to }),
        3 => (0..DISKS).prop_map(|disk| Op::Snapshot { disk }),
        2 => (0..DISKS, any::<Index>(), any::<bool>())
            .prop_map(|(disk, parent, extra)| Op::Incremental { disk, parent, extra }),
        1 => (0..DISKS, any::<u64>(), 2..20usize)
            .prop_map(|(disk, seed, versions)| Op::Burst { disk, seed, versions }),
        3 => any::<Index>().prop_map(|pick| Op::Delete { pick }),
        1 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(first, second, block)| Op::Query { first, second, block }),
    ]
}

fn teardown_strategy() -> impl Strategy<Value = Teardown> {
    prop_oneof![
        Just(Teardown::OldestFirst),
        Just(Teardown::NewestFirst),
        Just(Teardown::MiddleFirst),
        Just(Teardown::EveryOther),
    ]
}

struct Snapshot {
    disk: usize,
    image: Vec<u8>,
}

struct Model {
    disks: [Vec<u8>; DISKS],
    /// Live snapshots by name; names sort in creation order.
    snapshots: BTreeMap<String, Snapshot>,
    next_snapshot: usize,
}

fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|byte| *byte == 0)
}

fn pattern_block(seed: u64) -> Vec<u8> {
    random_bytes(1_000 + seed, BLOCK)
}

impl Model {
    fn new(base_blocks: usize, zero_every: usize) -> Self {
        // One base image shared by every disk: their first snapshots share
        // pages.
        let mut base = Vec::with_capacity(base_blocks * BLOCK);
        for index in 0..base_blocks {
            if zero_every > 0 && index % zero_every == 0 {
                base.extend_from_slice(&[0u8; BLOCK]);
            } else {
                base.extend_from_slice(&random_bytes(50_000 + index as u64, BLOCK));
            }
        }
        Model {
            disks: [base.clone(), base.clone(), base],
            snapshots: BTreeMap::new(),
            next_snapshot: 0,
        }
    }

    fn pick(&self, pick: Index) -> Option<String> {
        common::pick_snapshot(&self.snapshots, pick)
    }

    fn new_name(&mut self) -> String {
        let name = format!("s-{:05}", self.next_snapshot);
        self.next_snapshot += 1;
        name
    }

    fn expected_blocks(&self) -> u64 {
        let mut blocks: HashSet<Vec<u8>> = HashSet::new();
        for snapshot in self.snapshots.values() {
            for block in padded(&snapshot.image).chunks(BLOCK) {
                if !is_zero(block) {
                    blocks.insert(block.to_vec());
                }
            }
        }
        blocks.len() as u64
    }

    fn expected_pages(&self) -> u64 {
        let mut pages: HashSet<Vec<u8>> = HashSet::new();
        for snapshot in self.snapshots.values() {
            for page in padded(&snapshot.image).chunks(PAGE * BLOCK) {
                if !is_zero(page) {
                    pages.insert(page.to_vec());
                }
            }
        }
        pages.len() as u64
    }
}

fn disk_name(disk: usize) -> String {
    format!("disk-{disk}")
}

fn write_block(image: &mut [u8], index: usize, bytes: &[u8]) {
    let start = index * BLOCK;
    if start >= image.len() {
        return;
    }
    let end = image.len().min(start + BLOCK);
    image[start..end].copy_from_slice(&bytes[..end - start]);
}

fn scatter(image: &mut [u8], seed: u64, count: usize, zero: bool, page: Option<Index>) {
    let blocks = image.len().div_ceil(BLOCK);
    let (first, span) = match page {
        Some(page) => {
            let first = page.index(blocks.div_ceil(PAGE)) * PAGE;
            (first, (blocks - first).min(PAGE))
        }
        None => (0, blocks),
    };
    scatter_in_range(image, seed, count, zero, first, span);
}

/// Overwrites `count` blocks of page `page` (which must exist).
fn scatter_in_page(image: &mut [u8], seed: u64, count: usize, zero: bool, page: usize) {
    let blocks = image.len().div_ceil(BLOCK);
    let first = page * PAGE;
    scatter_in_range(image, seed, count, zero, first, (blocks - first).min(PAGE));
}

fn scatter_in_range(
    image: &mut [u8],
    seed: u64,
    count: usize,
    zero: bool,
    first: usize,
    span: usize,
) {
    let positions = random_bytes(seed, count * 8);
    for (number, chunk) in positions.chunks(8).enumerate() {
        let index = first + (u64::from_le_bytes(chunk.try_into().unwrap()) % span as u64) as usize;
        let bytes = if zero {
            vec![0u8; BLOCK]
        } else {
            random_bytes(seed ^ (number as u64 + 1).wrapping_mul(0x9E37), BLOCK)
        };
        write_block(image, index, &bytes);
    }
}

/// Copies page `from` of `image` over its page `to`, cut to the image.
fn duplicate_page(image: &mut [u8], from: usize, to: usize) {
    let start = from * PAGE * BLOCK;
    let page = image[start..image.len().min(start + PAGE * BLOCK)].to_vec();
    let target = to * PAGE * BLOCK;
    let len = page.len().min(image.len() - target);
    image[target..target + len].copy_from_slice(&page[..len]);
}

/// Compares restored bytes with the expected image as they arrive.
struct CompareWriter<'a> {
    expected: &'a [u8],
    offset: usize,
    mismatch: Option<usize>,
}

impl Write for CompareWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.mismatch.is_none() {
            let end = self.offset + bytes.len();
            match self.expected.get(self.offset..end) {
                Some(expected) if expected == bytes => {}
                Some(expected) => {
                    let at = expected
                        .iter()
                        .zip(bytes)
                        .position(|(a, b)| a != b)
                        .unwrap();
                    self.mismatch = Some(self.offset + at);
                }
                None => self.mismatch = Some(self.expected.len()),
            }
        }
        self.offset += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_restores(store: &Store, name: &str, expected: &[u8], context: &str) {
    let mut writer = CompareWriter {
        expected,
        offset: 0,
        mismatch: None,
    };
    store
        .create_disk_from_snapshot(name, "restored", &mut writer)
        .unwrap_or_else(|error| panic!("{context}: restore {name}: {error}"));
    assert_eq!(
        writer.mismatch,
        None,
        "{context}: restore {name}: first wrong byte (block {:?})",
        writer.mismatch.map(|offset| offset / BLOCK)
    );
    assert_eq!(
        writer.offset,
        expected.len(),
        "{context}: restore {name}: length"
    );
}

/// The blocks `list_changed_blocks(first, second)` must return.
fn expected_changed(first: &[u8], second: &[u8]) -> Vec<u64> {
    let (first, second) = (padded(first), padded(second));
    let first_blocks = first.len() / BLOCK;
    let second_blocks = second.len() / BLOCK;
    let mut changed = Vec::new();
    for index in 0..first_blocks.max(second_blocks) {
        let range = index * BLOCK..(index + 1) * BLOCK;
        if first.get(range.clone()) != second.get(range) {
            changed.push(index as u64);
        }
    }
    changed
}

fn create(store: &Store, model: &mut Model, disk: usize) -> String {
    let name = model.new_name();
    let image = model.disks[disk].clone();
    store
        .create_disk_snapshot(&disk_name(disk), &name, &image[..], &[])
        .unwrap_or_else(|error| panic!("create {name}: {error}"));
    model
        .snapshots
        .insert(name.clone(), Snapshot { disk, image });
    name
}

/// Snapshots `disk` by an incremental create from `parent`, listing the
/// blocks that differ (plus every 97th block when `extra`).
fn incremental(store: &Store, model: &mut Model, disk: usize, parent: &str, extra: bool) {
    let image = model.disks[disk].clone();
    let blocks = image.len().div_ceil(BLOCK);
    let parent_image = padded(&model.snapshots[parent].image);
    let current = padded(&image);
    let mut changed: Vec<u64> = (0..blocks)
        .filter(|index| {
            let range = index * BLOCK..(index + 1) * BLOCK;
            parent_image.get(range.clone()) != current.get(range)
        })
        .map(|index| index as u64)
        .collect();
    if extra {
        changed.extend((0..blocks as u64).step_by(97));
    }
    let name = model.new_name();
    store
        .create_disk_snapshot_incremental(
            &disk_name(disk),
            &name,
            parent,
            &changed,
            Cursor::new(&image),
            &[],
        )
        .unwrap_or_else(|error| panic!("incremental create {name} from {parent}: {error}"));
    model.snapshots.insert(name, Snapshot { disk, image });
}

fn apply(store: &Store, model: &mut Model, op: &Op) {
    match op {
        Op::Write {
            disk,
            first,
            count,
            pattern,
        } => {
            let fill = pattern.map_or_else(|| vec![0u8; BLOCK], pattern_block);
            for index in *first..first + count {
                write_block(&mut model.disks[*disk], index, &fill);
            }
        }
        Op::Scatter {
            disk,
            seed,
            count,
            zero,
            page,
        } => scatter(&mut model.disks[*disk], *seed, *count, *zero, *page),
        Op::SnapshotAll => {
            for disk in 0..DISKS {
                create(store, model, disk);
            }
        }
        Op::Resize { disk, len } => model.disks[*disk].resize(*len, 0),
        Op::Copy { from, to } => {
            let image = model.disks[*from].clone();
            model.disks[*to] = image;
        }
        Op::Shift {
            from,
            to,
            pages,
            cut,
        } => model.disks[*to] = shifted(&model.disks[*from], *pages, *cut),
        Op::DuplicatePage { disk, from, to } => {
            let image = &mut model.disks[*disk];
            let pages = image.len().div_ceil(PAGE * BLOCK);
            duplicate_page(image, from.index(pages), to.index(pages));
        }
        Op::Snapshot { disk } => {
            create(store, model, *disk);
        }
        Op::Incremental {
            disk,
            parent,
            extra,
        } => {
            let parents: Vec<String> = model
                .snapshots
                .iter()
                .filter(|(_, snapshot)| snapshot.disk == *disk)
                .map(|(name, _)| name.clone())
                .collect();
            if parents.is_empty() {
                create(store, model, *disk);
                return;
            }
            let parent = parents[parent.index(parents.len())].clone();
            incremental(store, model, *disk, &parent, *extra);
        }
        Op::Burst {
            disk,
            seed,
            versions,
        } => {
            for version in 0..*versions {
                let seed = seed.wrapping_add(version as u64 * 7919);
                scatter(&mut model.disks[*disk], seed, 3, version % 5 == 4, None);
                create(store, model, *disk);
            }
        }
        Op::Delete { pick } => common::delete_picked(store, &mut model.snapshots, *pick),
        Op::Query {
            first,
            second,
            block,
        } => check_query(store, model, *first, *second, *block),
    }
}

/// Returns `source` moved by `pages` whole pages, with zeros put in front or
/// the first pages cut off when `cut`. The result is at most [`MAX_BLOCKS`]
/// long and never empty.
fn shifted(source: &[u8], pages: usize, cut: bool) -> Vec<u8> {
    let bytes = pages * PAGE * BLOCK;
    let mut image = if cut {
        source.get(bytes..).unwrap_or_default().to_vec()
    } else {
        let mut image = vec![0u8; bytes];
        image.extend_from_slice(source);
        image
    };
    image.truncate(MAX_BLOCKS * BLOCK);
    if image.is_empty() {
        image = vec![1u8; 1];
    }
    image
}

/// Compares `list_changed_blocks` of two picked snapshots (when they are of
/// one disk) and `read_block` of the first with the model.
fn check_query(store: &Store, model: &Model, first: Index, second: Index, block: Index) {
    let (Some(first), Some(second)) = (model.pick(first), model.pick(second)) else {
        return;
    };
    let (first_snapshot, second_snapshot) = (&model.snapshots[&first], &model.snapshots[&second]);
    if first_snapshot.disk == second_snapshot.disk {
        let mut expected = expected_changed(&first_snapshot.image, &second_snapshot.image);
        if first_snapshot.image.len() != second_snapshot.image.len() {
            for image in [&first_snapshot.image, &second_snapshot.image] {
                let last = (image.len().div_ceil(BLOCK) - 1) as u64;
                if let Err(position) = expected.binary_search(&last) {
                    expected.insert(position, last);
                }
            }
        }
        let listed = store
            .list_changed_blocks(&first, &second)
            .unwrap_or_else(|error| panic!("list_changed_blocks {first} {second}: {error}"));
        assert_eq!(listed, expected, "list_changed_blocks {first} {second}");
    }
    let blocks = first_snapshot.image.len().div_ceil(BLOCK);
    let index = block.index(blocks);
    let read = store
        .read_block(&first, index as u64)
        .unwrap_or_else(|error| panic!("read_block {first} {index}: {error}"));
    let end = first_snapshot.image.len().min((index + 1) * BLOCK);
    assert_eq!(
        read.data,
        first_snapshot.image[index * BLOCK..end],
        "read_block {first} {index}"
    );
}

fn check(store: &Store, model: &Model, context: &str) {
    let stats = store.stats().unwrap();
    assert_eq!(
        stats.snapshots,
        model.snapshots.len() as u64,
        "{context}: snapshots"
    );
    assert_verify_clean(store);
    assert_eq!(stats.blocks, model.expected_blocks(), "{context}: blocks");
    assert_eq!(stats.pages, model.expected_pages(), "{context}: pages");
    for (name, snapshot) in &model.snapshots {
        assert_restores(store, name, &snapshot.image, context);
    }
}

fn run_history(base_blocks: usize, zero_every: usize, ops: &[Op], teardown: Teardown) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let mut model = Model::new(base_blocks, zero_every);
    // Every disk starts from the same image, so these snapshots share pages
    // that the next snapshots of each disk are based on.
    apply(&store, &mut model, &Op::SnapshotAll);

    for (step, op) in ops.iter().enumerate() {
        apply(&store, &mut model, op);
        check(&store, &model, &format!("after step {step} ({op:?})"));
    }

    let mut names: Vec<String> = model.snapshots.keys().cloned().collect();
    match teardown {
        Teardown::OldestFirst => {}
        Teardown::NewestFirst => names.reverse(),
        Teardown::MiddleFirst => {
            let middle = names.len() / 2;
            names.rotate_left(middle);
        }
        Teardown::EveryOther => {
            let (even, odd): (Vec<_>, Vec<_>) = names
                .iter()
                .cloned()
                .enumerate()
                .partition(|(i, _)| i % 2 == 0);
            names = even.into_iter().chain(odd).map(|(_, name)| name).collect();
        }
    }
    for name in names {
        store.delete_disk_snapshot(&name).unwrap();
        model.snapshots.remove(&name);
        check(
            &store,
            &model,
            &format!("teardown ({teardown:?}) after deleting {name}"),
        );
    }
    common::assert_store_emptied(&store, dir.path());
}

proptest! {
    #![proptest_config(common::proptest_config(16))]

    #[test]
    fn multi_page_histories_match_model(
        base_blocks in 1..=MAX_BLOCKS,
        zero_every in prop_oneof![Just(0usize), 2..50usize],
        ops in prop::collection::vec(op_strategy(), 1..30),
        teardown in teardown_strategy(),
    ) {
        run_history(base_blocks, zero_every, &ops, teardown);
    }
}

/// One version in a forked history: a few blocks of one page of one disk
/// change (or a page is copied over another), then the disk is snapshotted.
#[derive(Debug, Clone)]
struct Version {
    disk: usize,
    /// The page that changes: the first page when `None`, so that its chain
    /// grows past 16 deltas.
    page: Option<Index>,
    /// A second page that changes in the same version.
    also: Option<Index>,
    count: usize,
    zero: bool,
    duplicate_to: Option<Index>,
    incremental: bool,
}

fn version_strategy(disks: usize) -> impl Strategy<Value = Version> {
    (
        0..disks,
        prop::option::weighted(0.5, any::<Index>()),
        prop::option::weighted(0.3, any::<Index>()),
        1..6usize,
        prop::bool::weighted(0.2),
        prop::option::weighted(0.15, any::<Index>()),
        any::<bool>(),
    )
        .prop_map(
            |(disk, page, also, count, zero, duplicate_to, incremental)| Version {
                disk,
                page,
                also,
                count,
                zero,
                duplicate_to,
                incremental,
            },
        )
}

/// Disks that start from one image and each grow a chain of small changes,
/// so that every page of the first snapshots is the base of delta pages on
/// several disks and chains pass 16 deltas. Then every snapshot is deleted
/// in a random order, with a full check after each delete.
fn run_forked(disks: usize, blocks: usize, versions: &[Version], order: &[Index]) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let mut model = Model::new(blocks, 0);
    // A quarter of the blocks are non-zero, which keeps restores cheap.
    for (index, block) in model.disks[0].chunks_mut(BLOCK).enumerate() {
        if index % 4 != 0 {
            block.fill(0);
        }
    }
    let base = model.disks[0].clone();
    model.disks = [base.clone(), base.clone(), base];
    for disk in 0..disks {
        create(&store, &mut model, disk);
    }

    for (number, version) in versions.iter().enumerate() {
        let image = &mut model.disks[version.disk];
        let pages = image.len().div_ceil(PAGE * BLOCK);
        let page = version.page.map_or(0, |page| page.index(pages));
        if let Some(to) = version.duplicate_to {
            duplicate_page(image, page, to.index(pages));
        } else {
            scatter_in_page(
                image,
                number as u64 * 7_777 + 1,
                version.count,
                version.zero,
                page,
            );
            if let Some(also) = version.also {
                scatter_in_page(
                    image,
                    number as u64 * 7_777 + 2,
                    2,
                    false,
                    also.index(pages),
                );
            }
        }
        let newest = model
            .snapshots
            .iter()
            .rev()
            .find(|(_, snapshot)| snapshot.disk == version.disk)
            .map(|(name, _)| name.clone());
        if let (true, Some(parent)) = (version.incremental, newest) {
            incremental(&store, &mut model, version.disk, &parent, false);
        } else {
            create(&store, &mut model, version.disk);
        }
    }

    check(&store, &model, "after the creates");
    let repaired = store.repair().unwrap();
    assert!(
        repaired.changed_nothing(),
        "repair of a sound store: {repaired:?}"
    );
    assert!(
        repaired.is_fully_repaired(),
        "repair of a sound store: {repaired:?}"
    );

    for (step, pick) in order.iter().enumerate() {
        let Some(name) = model.pick(*pick) else {
            break;
        };
        store
            .delete_disk_snapshot(&name)
            .unwrap_or_else(|error| panic!("delete {name}: {error}"));
        model.snapshots.remove(&name);
        check(&store, &model, &format!("delete {step} ({name})"));
    }
}

proptest! {
    #![proptest_config(common::proptest_config(16))]

    #[test]
    fn forked_chains_delete_in_any_order(
        (disks, versions) in (2..=DISKS).prop_flat_map(|disks| {
            (Just(disks), prop::collection::vec(version_strategy(disks), 4..60))
        }),
        blocks in prop_oneof![1..PAGE, PAGE..=MAX_BLOCKS],
        order in prop::collection::vec(any::<Index>(), 60),
    ) {
        run_forked(disks, blocks, &versions, &order);
    }
}

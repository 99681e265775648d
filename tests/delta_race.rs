#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::cast_possible_truncation)]
//! Readers racing the GC steps that re-express delta pages.
//!
//! A writer keeps a chain of two snapshots of one disk. Each new snapshot's
//! pages are delta pages based on its parent's full pages. Deleting the
//! parent then turns each of those delta pages into a full page in place.
//! Reader threads meanwhile read the newest snapshot, which stays live for as
//! long as it is the newest, and go on reading it while it is deleted.
//!
//! A read of a live snapshot must return the right content. A read of a
//! snapshot that is deleted during the call must return the right content or
//! fail with `NotFoundException`.
//!
//! `BLOCKSNAP_RACE_ROUNDS` sets the number of parent deletes of the four-block
//! disk (400 by default); the 64-page disk gets a quarter of them.

mod common;
mod sparse_image;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use blocksnap::{ErrorKind, Store};
use common::{open_store, random_bytes, BLOCK};
use sparse_image::SparseImage;

const PAGE: u64 = 1024;

fn rounds() -> u64 {
    std::env::var("BLOCKSNAP_RACE_ROUNDS").map_or(400, |value| value.parse().unwrap())
}

/// One read that returned wrong content or an error other than
/// `NotFoundException`.
struct Failure {
    /// Whether the snapshot still existed after the call returned.
    live: bool,
    text: String,
}

/// Failures of the reader threads, shared between them.
#[derive(Default)]
struct Failures(Mutex<Vec<Failure>>);

impl Failures {
    /// Records the outcome of a read of `name`: `Ok(true)` for the right
    /// content, `Ok(false)` for wrong content.
    fn record(&self, store: &Store, call: &str, name: &str, outcome: blocksnap::Result<bool>) {
        let text = match outcome {
            Ok(true) => return,
            Err(error) if error.kind() == ErrorKind::NotFound => return,
            Ok(false) => format!("{call} of {name}: wrong content"),
            Err(error) => format!("{call} of {name}: {error}"),
        };
        let live = store.get_disk_snapshot(name).is_ok();
        self.0.lock().unwrap().push(Failure { live, text });
    }

    /// Prints the failures, with a count and an example per kind, and returns
    /// them split into those of live and of deleted snapshots.
    fn report(self) -> (Vec<String>, Vec<String>) {
        let mut live = Vec::new();
        let mut deleted = Vec::new();
        for failure in self.0.into_inner().unwrap() {
            if failure.live {
                live.push(failure.text);
            } else {
                deleted.push(failure.text);
            }
        }
        for (what, failures) in [("live", &live), ("deleted", &deleted)] {
            let mut kinds: BTreeMap<String, (usize, &String)> = BTreeMap::new();
            for text in failures {
                let kind = text
                    .split(':')
                    .next()
                    .unwrap()
                    .split(" of ")
                    .next()
                    .unwrap();
                kinds.entry(kind.to_owned()).or_insert((0, text)).0 += 1;
            }
            for (kind, (count, example)) in kinds {
                eprintln!("{count} failed {kind} calls on {what} snapshots, such as: {example}");
            }
        }
        (live, deleted)
    }
}

/// A read that a reader thread makes over and over: given the name of the
/// newest snapshot and its expected image, it returns the call's name and
/// whether the call returned the right content.
type Reader<'a, I> =
    Box<dyn FnMut(&str, &I) -> (&'static str, blocksnap::Result<bool>) + Send + 'a>;

/// Races `readers` against the GC steps that rebase delta pages, then fails if
/// any read failed or `verify` finds a problem. Snapshot `x-0`, with image
/// `first`, must already exist. In each round from 1 to `rounds`, this thread
/// calls `create_version(round, parent, name)`, which creates snapshot
/// `x-<round>` and returns its image, and then deletes the parent. Each reader
/// runs in its own thread on the newest snapshot until the rounds end.
fn race_reads_with_rebase<I: Clone + Send>(
    store: &Store,
    first: I,
    rounds: u64,
    readers: Vec<Reader<'_, I>>,
    mut create_version: impl FnMut(u64, &str, &str) -> I,
) {
    let current = Mutex::new(("x-0".to_owned(), first));
    let done = AtomicBool::new(false);
    let failures = Failures::default();

    std::thread::scope(|scope| {
        for mut reader in readers {
            let (current, done, failures) = (&current, &done, &failures);
            scope.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let (name, expected) = current.lock().unwrap().clone();
                    let (call, outcome) = reader(&name, &expected);
                    failures.record(store, call, &name, outcome);
                }
            });
        }

        for round in 1..=rounds {
            let parent = format!("x-{}", round - 1);
            let name = format!("x-{round}");
            let image = create_version(round, &parent, &name);
            *current.lock().unwrap() = (name, image);
            store.delete_disk_snapshot(&parent).unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });

    let (live, deleted) = failures.report();
    assert!(
        live.is_empty(),
        "{} reads of live snapshots failed",
        live.len()
    );
    assert!(
        deleted.is_empty(),
        "{} reads of snapshots being deleted failed",
        deleted.len()
    );
    common::assert_verify_clean(store);
}

/// A disk of four blocks: resolving its one page is cheap, so a reader is
/// often between the two reads of a page's stored form when the GC step turns
/// the page from a delta into a full page.
#[test]
fn small_disk_reads_race_rebase() {
    const BLOCKS: u64 = 4;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let len = BLOCKS as usize * BLOCK;
    let mut image = random_bytes(1, len);
    store
        .create_disk_snapshot("disk", "x-0", &image[..], &[])
        .unwrap();

    let readers: Vec<Reader<'_, Vec<u8>>> = vec![
        Box::new(|name, expected| {
            let outcome = store
                .read_block(name, 1)
                .map(|block| block.data == expected[BLOCK..2 * BLOCK]);
            ("read_block", outcome)
        }),
        Box::new(|name, expected| {
            let mut restored = Vec::new();
            let outcome = store
                .create_disk_from_snapshot(name, "restored", &mut restored)
                .map(|_| restored == *expected);
            ("restore", outcome)
        }),
    ];
    let first = image.clone();
    race_reads_with_rebase(&store, first, rounds(), readers, |round, _, name| {
        let changed = (round % BLOCKS) as usize;
        image[changed * BLOCK..(changed + 1) * BLOCK]
            .copy_from_slice(&random_bytes(1_000 + round, BLOCK));
        store
            .create_disk_snapshot("disk", name, &image[..], &[])
            .unwrap();
        image.clone()
    });
}

/// A disk of 64 pages with one or two non-zero blocks each, built by
/// incremental creates. A GC step turns 16 of its delta pages into full pages.
#[test]
fn many_page_reads_race_rebase() {
    const PAGES: u64 = 64;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let len = PAGES * PAGE * BLOCK as u64;

    // Comparing a snapshot with an all-zero one resolves every stored page.
    let zeros = SparseImage::new(len, BTreeMap::new());
    store
        .create_disk_snapshot("disk", "zeros", zeros, &[])
        .unwrap();
    let mut image = SparseImage::new(
        len,
        (0..PAGES).map(|page| (page * PAGE, 1_000 + page)).collect(),
    );
    store
        .create_disk_snapshot("disk", "x-0", image.clone(), &[])
        .unwrap();

    // The second reader moves its page counter in, so it takes the store by
    // reference.
    let store = &store;
    let mut page = 0;
    let readers: Vec<Reader<'_, SparseImage>> = vec![
        Box::new(|name, expected| {
            let expected: Vec<u64> = expected.blocks.keys().copied().collect();
            let outcome = store
                .list_changed_blocks("zeros", name)
                .map(|changed| changed == expected);
            ("list_changed_blocks", outcome)
        }),
        Box::new(move |name, expected| {
            page = (page + 1) % PAGES;
            // The block that the newest version changed in this page.
            let index = expected
                .blocks
                .range(page * PAGE + 1..(page + 1) * PAGE)
                .next()
                .map_or(page * PAGE, |(index, _)| *index);
            let outcome = store
                .read_block(name, index)
                .map(|block| block.data == expected.block_at(index));
            ("read_block", outcome)
        }),
    ];
    let first = image.clone();
    let rounds = rounds().div_ceil(4);
    race_reads_with_rebase(store, first, rounds, readers, |round, parent, name| {
        let position = 1 + (round % (PAGE - 1));
        let mut blocks: BTreeMap<u64, u64> = image
            .blocks
            .iter()
            .filter(|(index, _)| *index % PAGE == 0)
            .map(|(index, seed)| (*index, *seed))
            .collect();
        let mut changed = Vec::new();
        for page in 0..PAGES {
            let index = page * PAGE + position;
            blocks.insert(index, 1_000_000 * round + page);
            changed.push(index);
            // The block that the parent changed goes back to zero.
            let previous = image
                .blocks
                .range(page * PAGE + 1..(page + 1) * PAGE)
                .next();
            if let Some((old, _)) = previous.filter(|(old, _)| **old != index) {
                changed.push(*old);
            }
        }
        image = SparseImage::new(len, blocks);
        store
            .create_disk_snapshot_incremental("disk", name, parent, &changed, image.clone(), &[])
            .unwrap();
        image.clone()
    });
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::cast_possible_truncation)]
//! `kill -9` of the CLI while it deletes a snapshot in the middle of a long
//! chain of delta pages, then a reopen and a full check.
//!
//! The store holds 24 versions of a disk of 40 pages, and each page has a
//! handful of non-zero blocks. Every version's pages are delta pages based on
//! the previous version's, so a delete has dozens of pages to rebase over
//! several GC steps. A second disk starts from the same image, so the first
//! version's pages have dependents on both disks.
//!
//! The CLI deletes a snapshot and is killed after a random delay. The library
//! then opens the store, which finishes the collection. Every listed snapshot
//! must restore exactly, `verify` must be clean and the block count must
//! match the listed snapshots.
//!
//! `BLOCKSNAP_DELTA_CRASH_ITERATIONS` sets the number of kills (24 by
//! default) and `BLOCKSNAP_DELTA_CRASH_SEED` the seed of the delays.

mod common;
mod sparse_image;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use blocksnap::Store;
use common::{open_store, random_bytes, BLOCK};
use sparse_image::{CompareWriter, SparseImage};

const PAGE: u64 = 1024;
const PAGES: u64 = 40;
/// Non-zero blocks per page of the first version.
const FILLED: u64 = 8;
const VERSIONS: u64 = 24;

fn len() -> u64 {
    // A partial last block and a short last page.
    (PAGES - 1) * PAGE * BLOCK as u64 + 300 * BLOCK as u64 + 123
}

/// Builds the catalog: name to (disk, image).
fn catalog() -> BTreeMap<String, (String, SparseImage)> {
    let blocks_total = len().div_ceil(BLOCK as u64);
    let mut blocks = BTreeMap::new();
    for page in 0..PAGES {
        for slot in 0..FILLED {
            let index = page * PAGE + slot * 37;
            if index < blocks_total {
                blocks.insert(index, 10_000 + index);
            }
        }
    }
    let mut catalog = BTreeMap::new();
    let mut image = SparseImage::new(len(), blocks);
    catalog.insert("b-00".to_owned(), ("disk-b".to_owned(), image.clone()));
    let mut second = image.clone();
    for page in 0..PAGES {
        let index = page * PAGE + 200;
        if index < blocks_total {
            second.blocks.insert(index, 20_000 + page);
        }
    }
    catalog.insert("b-01".to_owned(), ("disk-b".to_owned(), second));
    for version in 0..VERSIONS {
        if version > 0 {
            for page in 0..PAGES {
                // One new block and one block back to zero in every page.
                let index = page * PAGE + 500 + version;
                if index < blocks_total {
                    image.blocks.insert(index, version * 1_000_000 + page);
                }
                let zeroed = page * PAGE + (version % FILLED) * 37;
                image.blocks.remove(&zeroed);
            }
        }
        catalog.insert(
            format!("v-{version:02}"),
            ("disk-a".to_owned(), image.clone()),
        );
    }
    catalog
}

fn build(path: &Path, catalog: &BTreeMap<String, (String, SparseImage)>) {
    let store = open_store(path);
    // disk-b's snapshot first, so that disk-a's first version shares its pages.
    let (disk, image) = &catalog["b-00"];
    store
        .create_disk_snapshot(disk, "b-00", image.clone(), &[])
        .unwrap();
    let mut parent: Option<&SparseImage> = None;
    for version in 0..VERSIONS {
        let name = format!("v-{version:02}");
        let (disk, image) = &catalog[&name];
        match parent {
            None => {
                store
                    .create_disk_snapshot(disk, &name, image.clone(), &[])
                    .unwrap();
            }
            Some(previous) => {
                let mut changed: Vec<u64> = previous.blocks.keys().copied().collect();
                changed.extend(image.blocks.keys().copied());
                changed.sort_unstable();
                changed.dedup();
                store
                    .create_disk_snapshot_incremental(
                        disk,
                        &name,
                        &format!("v-{:02}", version - 1),
                        &changed,
                        image.clone(),
                        &[],
                    )
                    .unwrap();
            }
        }
        parent = Some(image);
    }
    // A second version of disk-b, whose pages are delta pages based on the
    // pages disk-b shares with v-00.
    let (disk, image) = &catalog["b-01"];
    store
        .create_disk_snapshot(disk, "b-01", image.clone(), &[])
        .unwrap();
}

fn listed(store: &Store) -> Vec<String> {
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store.get_disk_snapshots(token.as_deref()).unwrap();
        names.extend(page.items.into_iter().map(|snapshot| snapshot.name));
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => return names,
        }
    }
}

/// Opens the store, checks it, and returns the GC steps the open resumed.
fn check(path: &Path, catalog: &BTreeMap<String, (String, SparseImage)>, context: &str) -> u64 {
    let store = open_store(path);
    let resumed = store.recovery_report().gc_steps_resumed;
    let names = listed(&store);
    let report = store.verify().unwrap();
    assert!(
        report.is_clean(),
        "{context}: verify: {report:?}\n{}",
        report.problems.join("\n")
    );
    let mut blocks: HashSet<u64> = HashSet::new();
    for name in &names {
        let (_, image) = catalog
            .get(name)
            .unwrap_or_else(|| panic!("{context}: unexpected snapshot {name}"));
        blocks.extend(image.blocks.values().copied());
        let mut writer = CompareWriter::new(image);
        store
            .create_disk_from_snapshot(name, "restored", &mut writer)
            .unwrap_or_else(|error| panic!("{context}: restore {name}: {error}"));
        assert_eq!(writer.mismatch, None, "{context}: restore {name}");
        assert_eq!(writer.offset, image.len, "{context}: restore {name} length");
    }
    assert_eq!(
        store.stats().unwrap().blocks,
        blocks.len() as u64,
        "{context}: stored blocks"
    );
    resumed
}

/// Runs the CLI's delete of `name`, killing it after `kill_after`; returns
/// whether it finished on its own.
fn cli_delete(path: &Path, name: &str, kill_after: Option<Duration>) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_blocksnap"))
        .args(["--store"])
        .arg(path)
        .args(["delete-disk-snapshot", "--disk-snapshot-name", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    if let Some(delay) = kill_after {
        std::thread::sleep(delay);
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    status.success()
}

#[test]
fn kill_during_middle_delete() {
    let iterations: u64 = std::env::var("BLOCKSNAP_DELTA_CRASH_ITERATIONS")
        .map_or(24, |value| value.parse().unwrap());
    let seed: u64 = std::env::var("BLOCKSNAP_DELTA_CRASH_SEED").map_or_else(
        |_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        },
        |value| value.parse().unwrap(),
    );
    eprintln!("seed {seed}");
    let catalog = catalog();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    build(&path, &catalog);
    check(&path, &catalog, "after build");

    // How long an uninterrupted delete takes, on a copy.
    let copy = dir.path().join("copy");
    let status = Command::new("cp")
        .args(["-a", "--sparse=always"])
        .arg(&path)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    assert!(cli_delete(&copy, "v-12", None));
    let full = started.elapsed();
    eprintln!("an uninterrupted delete of v-12 takes {full:?}");
    std::fs::remove_dir_all(&copy).unwrap();

    let randoms = random_bytes(seed, iterations as usize * 8);
    let mut kills = 0;
    let mut resumed_collections = 0;
    for iteration in 0..iterations {
        let names = {
            let store = open_store(&path);
            listed(&store)
        };
        let candidates: Vec<&String> = names.iter().filter(|name| name.starts_with("v-")).collect();
        if candidates.len() < 3 {
            break;
        }
        // The middle of what is left of the chain, or its oldest or newest.
        let victim = match iteration % 4 {
            0 | 1 => candidates[candidates.len() / 2],
            2 => candidates[0],
            _ => candidates[candidates.len() - 1],
        };
        let word = u64::from_le_bytes(
            randoms[iteration as usize * 8..iteration as usize * 8 + 8]
                .try_into()
                .unwrap(),
        );
        let delay = Duration::from_micros(word % (full.as_micros() as u64 + 1));
        let finished = cli_delete(&path, victim, Some(delay));
        if !finished {
            kills += 1;
        }
        let context = format!(
            "iteration {iteration}: delete {victim} killed after {delay:?} (finished: {finished})"
        );
        if check(&path, &catalog, &context) > 0 {
            resumed_collections += 1;
        }
    }
    eprintln!("{kills} deletes killed, {resumed_collections} in the middle of their collection");
}

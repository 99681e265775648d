#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Pages stored as differences from the parent's page: deletes cost the
//! changed blocks, and every surviving snapshot still restores exactly.

mod common;

use blocksnap::Store;
use common::{
    assert_restores, assert_verify_clean, distinct_blocks, open_store, random_bytes, BLOCK,
};

/// Block hashes per page, as the store lays them out.
const PAGE: usize = 1024;

/// Overwrites block `index` of `image` with bytes drawn from `seed`.
fn overwrite(image: &mut [u8], index: usize, seed: usize) {
    image[index * BLOCK..(index + 1) * BLOCK].copy_from_slice(&random_bytes(seed as u64, BLOCK));
}

fn snapshot(store: &Store, disk: &str, name: &str, image: &[u8]) {
    store
        .create_disk_snapshot(disk, name, image, &[])
        .unwrap_or_else(|error| panic!("create {name}: {error}"));
}

/// Deletes `name` and returns the metadata writes the delete made.
fn delete_counting(store: &Store, name: &str) -> u64 {
    let before = store.metadata_writes();
    store
        .delete_disk_snapshot(name)
        .unwrap_or_else(|error| panic!("delete {name}: {error}"));
    store.metadata_writes() - before
}

#[test]
fn scattered_change_costs_the_change() {
    const PAGES: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let v0 = distinct_blocks(1, PAGES * PAGE);
    // One changed block in every page per version: the worst case for pages
    // that store full hash lists, since every page of every version is new.
    let mut v1 = v0.clone();
    let mut v2 = v0.clone();
    for page in 0..PAGES {
        overwrite(&mut v1, page * PAGE + 7, 100 + page);
        v2[(page * PAGE + 7) * BLOCK..(page * PAGE + 8) * BLOCK]
            .copy_from_slice(&v1[(page * PAGE + 7) * BLOCK..(page * PAGE + 8) * BLOCK]);
        overwrite(&mut v2, page * PAGE + 500, 200 + page);
    }
    snapshot(&store, "disk-a", "v0", &v0);
    snapshot(&store, "disk-a", "v1", &v1);
    snapshot(&store, "disk-a", "v2", &v2);
    assert_eq!(
        store.stats().unwrap().blocks,
        (PAGES * PAGE + 2 * PAGES) as u64
    );

    // The middle version's pages are deltas that v2's pages are based on.
    let middle = delete_counting(&store, "v1");
    assert!(
        middle < 40 * PAGES as u64,
        "deleting the middle of three versions with {PAGES} changed blocks made {middle} metadata writes"
    );
    assert_eq!(
        store.stats().unwrap().blocks,
        (PAGES * PAGE + 2 * PAGES) as u64
    );
    assert_restores(&store, "v0", &v0);
    assert_restores(&store, "v2", &v2);
    assert_verify_clean(&store);

    // The oldest version's full pages pass their entries on to v2's pages.
    let oldest = delete_counting(&store, "v0");
    assert!(
        oldest < 40 * PAGES as u64,
        "deleting the oldest version made {oldest} metadata writes"
    );
    assert_eq!(store.stats().unwrap().blocks, (PAGES * PAGE) as u64);
    assert_restores(&store, "v2", &v2);
    assert_verify_clean(&store);

    let last = delete_counting(&store, "v2");
    assert!(
        last >= (PAGES * PAGE) as u64,
        "the last delete frees every block"
    );
    assert_eq!(store.stats().unwrap().blocks, 0);
    assert_eq!(store.stats().unwrap().pages, 0);
    assert_verify_clean(&store);
}

#[test]
fn full_page_with_two_dependents() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let base = distinct_blocks(2, PAGE);
    // Two disks start from the same image, so their first snapshots share the
    // page, and each next snapshot is a delta page based on it.
    snapshot(&store, "disk-a", "a0", &base);
    snapshot(&store, "disk-b", "b0", &base);
    let mut a1 = base.clone();
    overwrite(&mut a1, 3, 30);
    overwrite(&mut a1, 900, 31);
    let mut b1 = base.clone();
    overwrite(&mut b1, 3, 40);
    overwrite(&mut b1, 10, 41);
    snapshot(&store, "disk-a", "a1", &a1);
    snapshot(&store, "disk-b", "b1", &b1);

    delete_counting(&store, "a0");
    assert_verify_clean(&store);
    delete_counting(&store, "b0");
    assert_restores(&store, "a1", &a1);
    assert_restores(&store, "b1", &b1);
    assert_verify_clean(&store);
    // Block 3 of the base image is gone; a1 and b1 share the rest.
    assert_eq!(store.stats().unwrap().blocks, (PAGE - 1 + 4) as u64);

    delete_counting(&store, "a1");
    assert_restores(&store, "b1", &b1);
    assert_verify_clean(&store);
    assert_eq!(store.stats().unwrap().blocks, PAGE as u64);
}

#[test]
fn delta_page_with_two_dependents() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let base = distinct_blocks(3, PAGE);
    let mut middle = base.clone();
    overwrite(&mut middle, 5, 50);
    overwrite(&mut middle, 6, 51);
    snapshot(&store, "disk-a", "a0", &base);
    snapshot(&store, "disk-a", "a1", &middle);
    // disk-b's first snapshot shares a1's delta page; both disks then change it.
    snapshot(&store, "disk-b", "b0", &middle);
    let mut a2 = middle.clone();
    overwrite(&mut a2, 5, 60);
    let mut b1 = middle.clone();
    overwrite(&mut b1, 6, 70);
    overwrite(&mut b1, 1000, 71);
    snapshot(&store, "disk-a", "a2", &a2);
    snapshot(&store, "disk-b", "b1", &b1);

    delete_counting(&store, "a1");
    delete_counting(&store, "b0");
    assert_restores(&store, "a0", &base);
    assert_restores(&store, "a2", &a2);
    assert_restores(&store, "b1", &b1);
    assert_verify_clean(&store);
    // a0's page plus: a2's block 5 and middle's block 6 (both in a2), b1's
    // blocks 6 and 1000, and middle's block 5 (in b1).
    assert_eq!(store.stats().unwrap().blocks, (PAGE + 5) as u64);

    delete_counting(&store, "a0");
    assert_restores(&store, "a2", &a2);
    assert_restores(&store, "b1", &b1);
    assert_verify_clean(&store);
}

#[test]
fn long_chain_restores_after_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let mut image = distinct_blocks(4, 2 * PAGE + 17);
    let mut versions = Vec::new();
    for version in 0..40usize {
        // Changes in both full pages and the partial last page.
        overwrite(&mut image, (version * 37) % (2 * PAGE + 17), 1000 + version);
        overwrite(&mut image, 2 * PAGE + (version % 17), 2000 + version);
        let name = format!("v{version}");
        snapshot(&store, "disk-a", &name, &image);
        versions.push((name, image.clone()));
    }
    // Delete every third version, then the oldest half, checking the rest.
    for (name, _) in versions.iter().step_by(3) {
        delete_counting(&store, name);
    }
    assert_verify_clean(&store);
    for (index, (name, expected)) in versions.iter().enumerate() {
        if index % 3 != 0 {
            assert_restores(&store, name, expected);
        }
    }
    for (index, (name, _)) in versions.iter().enumerate().take(20) {
        if index % 3 != 0 {
            delete_counting(&store, name);
        }
    }
    assert_verify_clean(&store);
    for (index, (name, expected)) in versions.iter().enumerate().skip(20) {
        if index % 3 != 0 {
            assert_restores(&store, name, expected);
        }
    }
}

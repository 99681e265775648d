#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Frees where the pages of one GC step share a base or depend on each
//! other, so that the step stops early and queues the rest. The cases are a
//! snapshot whose two pages are delta pages based on one page, and a snapshot
//! that names a page and a delta page based on it. Each case is deleted in
//! every order.

mod common;

use std::collections::HashSet;

use blocksnap::Store;
use common::{
    assert_restores, assert_verify_clean, distinct_blocks, open_store, random_bytes, BLOCK,
};

const PAGE: usize = 1024;

fn overwrite(image: &mut [u8], index: usize, seed: u64) {
    image[index * BLOCK..(index + 1) * BLOCK].copy_from_slice(&random_bytes(seed, BLOCK));
}

/// Returns an image of two equal pages.
fn doubled(seed: u64) -> Vec<u8> {
    let page = distinct_blocks(seed, PAGE);
    let mut image = page.clone();
    image.extend_from_slice(&page);
    image
}

fn distinct_nonzero_blocks(images: &[&Vec<u8>]) -> u64 {
    let mut blocks = HashSet::new();
    for image in images {
        for block in image.chunks(BLOCK) {
            if block.iter().any(|byte| *byte != 0) {
                blocks.insert(block.to_vec());
            }
        }
    }
    blocks.len() as u64
}

fn check(store: &Store, live: &[(&str, &Vec<u8>)]) {
    assert_verify_clean(store);
    for (name, image) in live {
        assert_restores(store, name, image);
    }
    let images: Vec<&Vec<u8>> = live.iter().map(|(_, image)| *image).collect();
    assert_eq!(
        store.stats().unwrap().blocks,
        distinct_nonzero_blocks(&images),
        "stored blocks with {:?} live",
        live.iter().map(|(name, _)| *name).collect::<Vec<_>>()
    );
}

/// Creates the snapshots in order, then deletes them in `order`, checking the
/// store after each delete.
fn run(snapshots: &[(&str, Vec<u8>)], order: &[usize]) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    for (name, image) in snapshots {
        store
            .create_disk_snapshot("disk-a", name, &image[..], &[])
            .unwrap();
    }
    let mut live: Vec<usize> = (0..snapshots.len()).collect();
    let listed = |live: &[usize]| -> Vec<(&str, &Vec<u8>)> {
        live.iter()
            .map(|index| (snapshots[*index].0, &snapshots[*index].1))
            .collect()
    };
    check(&store, &listed(&live));
    for index in order {
        store.delete_disk_snapshot(snapshots[*index].0).unwrap();
        live.retain(|other| other != index);
        check(&store, &listed(&live));
    }
}

/// Returns every order of `count` items.
fn orders(count: usize) -> Vec<Vec<usize>> {
    let mut all = vec![Vec::new()];
    for _ in 0..count {
        let mut next = Vec::new();
        for prefix in &all {
            for item in 0..count {
                if !prefix.contains(&item) {
                    let mut longer = prefix.clone();
                    longer.push(item);
                    next.push(longer);
                }
            }
        }
        all = next;
    }
    all
}

#[test]
fn two_pages_based_on_one_page() {
    // `snap-twice` names page X at both indices, so both pages of `snap-split`
    // are delta pages based on X. `snap-again` changes both pages again.
    let twice = doubled(1);
    let mut split = twice.clone();
    overwrite(&mut split, 3, 30);
    overwrite(&mut split, PAGE + 5, 31);
    let mut again = split.clone();
    overwrite(&mut again, 9, 40);
    overwrite(&mut again, PAGE + 9, 41);
    let snapshots = [
        ("snap-twice", twice),
        ("snap-split", split),
        ("snap-again", again),
    ];
    for order in orders(snapshots.len()) {
        run(&snapshots, &order);
    }
}

#[test]
fn page_and_its_dependent_together() {
    // `snap-twice` names X at both indices. `snap-half` names X at index 0
    // and Y, a delta page based on X, at index 1. Once `snap-twice` is gone,
    // deleting `snap-half` frees X and Y in one step.
    let twice = doubled(2);
    let mut half = twice.clone();
    overwrite(&mut half, PAGE + 7, 50);
    let mut again = half.clone();
    overwrite(&mut again, PAGE + 8, 51);
    overwrite(&mut again, 8, 52);
    let snapshots = [
        ("snap-twice", twice),
        ("snap-half", half),
        ("snap-again", again),
    ];
    for order in orders(snapshots.len()) {
        run(&snapshots, &order);
    }
}

#[test]
fn base_named_at_other_index() {
    // `snap-swapped` has the pages of `snap-straight` in the other order, so
    // page 1 of `snap-changed` is based on a page that `snap-straight` names
    // at index 0. `snap-straight-2` changes `snap-straight`'s first page.
    let first = distinct_blocks(3, PAGE);
    let second = distinct_blocks(4, PAGE);
    let mut straight = first.clone();
    straight.extend_from_slice(&second);
    let mut swapped = second.clone();
    swapped.extend_from_slice(&first);
    let mut changed = swapped.clone();
    overwrite(&mut changed, PAGE + 1, 60);
    overwrite(&mut changed, 2, 61);
    let mut straight_2 = straight.clone();
    overwrite(&mut straight_2, 4, 62);
    let snapshots = [
        ("snap-straight", straight),
        ("snap-swapped", swapped),
        ("snap-changed", changed),
        ("snap-straight-2", straight_2),
    ];
    for order in orders(snapshots.len()) {
        run(&snapshots, &order);
    }
}

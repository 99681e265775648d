//! The changed-block API: incremental creates from a parent and a block list,
//! `list_changed_blocks` and `read_block`, checked against full snapshots of
//! the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::Cursor;

use blocksnap::{ErrorKind, Store, PAGE_ENTRIES};
use common::{open_store, BLOCK};

/// Distinct, non-zero pseudo-random bytes derived from `seed`.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&seed.to_le_bytes());
    let mut bytes = vec![0u8; len];
    hasher.finalize_xof().fill(&mut bytes);
    bytes
}

fn restore(store: &Store, name: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    store
        .create_disk_from_snapshot(name, "restored", &mut bytes)
        .unwrap();
    bytes
}

fn overwrite_block(image: &mut [u8], index: usize, seed: u64) {
    let start = index * BLOCK;
    let end = (start + BLOCK).min(image.len());
    let fresh = random_bytes(seed, end - start);
    image[start..end].copy_from_slice(&fresh);
}

#[test]
fn incremental_equals_full_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    // Three pages, so untouched pages are reused whole.
    let blocks = 3 * PAGE_ENTRIES;
    let mut image = random_bytes(1, blocks * BLOCK);
    store
        .create_disk_snapshot("disk", "base", &image[..], &[])
        .unwrap();

    let changed = [5usize, 6, 2000, 2001, 3071];
    for (round, index) in changed.iter().enumerate() {
        overwrite_block(&mut image, *index, 100 + round as u64);
    }
    let list: Vec<u64> = changed.iter().map(|index| *index as u64).collect();
    let blocks_before = store.stats().unwrap().blocks;
    store
        .create_disk_snapshot_incremental("disk", "next", "base", &list, Cursor::new(&image), &[])
        .unwrap();
    assert_eq!(
        store.stats().unwrap().blocks,
        blocks_before + changed.len() as u64
    );
    assert_eq!(restore(&store, "next"), image);

    store
        .create_disk_snapshot("disk", "full", &image[..], &[])
        .unwrap();
    assert!(
        store
            .list_changed_blocks("next", "full")
            .unwrap()
            .is_empty(),
        "same bytes, same pages"
    );
    assert_eq!(store.list_changed_blocks("base", "next").unwrap(), list);
    assert_eq!(store.list_changed_blocks("next", "base").unwrap(), list);
    assert!(store.verify().unwrap().is_clean());

    for name in ["base", "full", "next"] {
        store.delete_disk_snapshot(name).unwrap();
        assert!(store.verify().unwrap().is_clean());
    }
    assert_eq!(store.stats().unwrap().blocks, 0);
    assert_eq!(store.stats().unwrap().pages, 0);
}

#[test]
fn pages_taken_again_keep_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    // Twelve pages with one content, except page 5, which has a second
    // non-zero block. The base stores two pages, one of them 11 times.
    let pages = 12;
    let mut image = vec![0u8; pages * PAGE_ENTRIES * BLOCK];
    for page in 0..pages {
        image[page * PAGE_ENTRIES * BLOCK] = 7;
    }
    let odd = 5 * PAGE_ENTRIES + 1;
    image[odd * BLOCK] = 9;
    store
        .create_disk_snapshot("disk", "base", &image[..], &[])
        .unwrap();
    assert_eq!(store.stats().unwrap().pages, 2);

    // The child clears that block. The other pages are taken unchanged, so
    // the shared page's count rises once per page, and page 5 becomes that
    // page too, after five of those rises and before six.
    image[odd * BLOCK] = 0;
    let list = [odd as u64];
    store
        .create_disk_snapshot_incremental("disk", "child", "base", &list, Cursor::new(&image), &[])
        .unwrap();
    assert!(store.verify().unwrap().is_clean());
    assert_eq!(restore(&store, "child"), image);
    assert_eq!(store.list_changed_blocks("base", "child").unwrap(), list);

    store.delete_disk_snapshot("base").unwrap();
    assert!(store.verify().unwrap().is_clean());
    assert_eq!(store.stats().unwrap().pages, 1);
    assert_eq!(restore(&store, "child"), image);
    store.delete_disk_snapshot("child").unwrap();
    assert_eq!(store.stats().unwrap().pages, 0);
    assert_eq!(store.stats().unwrap().blocks, 0);
}

#[test]
fn growing_and_shrinking_sources() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let base = random_bytes(2, 10 * BLOCK + 100);
    store
        .create_disk_snapshot("disk", "base", &base[..], &[])
        .unwrap();

    let mut grown = base.clone();
    grown.extend_from_slice(&random_bytes(3, 5 * BLOCK));
    store
        .create_disk_snapshot_incremental("disk", "grown", "base", &[], Cursor::new(&grown), &[])
        .unwrap();
    assert_eq!(restore(&store, "grown"), grown);

    let shrunk = base[..7 * BLOCK + 9].to_vec();
    store
        .create_disk_snapshot_incremental("disk", "shrunk", "base", &[], Cursor::new(&shrunk), &[])
        .unwrap();
    assert_eq!(restore(&store, "shrunk"), shrunk);

    let changed = store.list_changed_blocks("base", "shrunk").unwrap();
    assert_eq!(
        changed,
        vec![7, 8, 9, 10],
        "the cut block and every block past the new end"
    );
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn unlisted_change_keeps_parent_content() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let base = random_bytes(4, 8 * BLOCK);
    store
        .create_disk_snapshot("disk", "base", &base[..], &[])
        .unwrap();
    let mut changed = base.clone();
    overwrite_block(&mut changed, 1, 7);
    overwrite_block(&mut changed, 6, 8);

    store
        .create_disk_snapshot_incremental(
            "disk",
            "partial",
            "base",
            &[6],
            Cursor::new(&changed),
            &[],
        )
        .unwrap();
    let mut expected = base.clone();
    expected[6 * BLOCK..7 * BLOCK].copy_from_slice(&changed[6 * BLOCK..7 * BLOCK]);
    assert_eq!(
        restore(&store, "partial"),
        expected,
        "the caller's list is trusted"
    );
}

#[test]
fn listed_block_equal_to_parent_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let base = random_bytes(5, 8 * BLOCK);
    store
        .create_disk_snapshot("disk", "base", &base[..], &[])
        .unwrap();
    let blocks = store.stats().unwrap().blocks;
    store
        .create_disk_snapshot_incremental(
            "disk",
            "same",
            "base",
            &[0, 3, 7],
            Cursor::new(&base),
            &[],
        )
        .unwrap();
    assert_eq!(store.stats().unwrap().blocks, blocks);
    assert_eq!(store.stats().unwrap().pages, 1, "an equal page is shared");
    assert!(store
        .list_changed_blocks("base", "same")
        .unwrap()
        .is_empty());
}

#[test]
fn read_block_returns_checked_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let mut image = random_bytes(6, 5 * BLOCK + 10);
    image[2 * BLOCK..3 * BLOCK].fill(0);
    store
        .create_disk_snapshot("disk", "snap", &image[..], &[])
        .unwrap();

    let block = store.read_block("snap", 1).unwrap();
    assert_eq!(block.data, &image[BLOCK..2 * BLOCK]);
    assert_eq!(
        block.hash,
        blocksnap::BlockHash::of(&image[BLOCK..2 * BLOCK])
    );
    let zero = store.read_block("snap", 2).unwrap();
    assert!(zero.hash.is_zero());
    assert_eq!(zero.data, vec![0u8; BLOCK]);
    let last = store.read_block("snap", 5).unwrap();
    assert_eq!(last.data, &image[5 * BLOCK..]);
    let error = store.read_block("snap", 6).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.message().contains("block 6"), "{error}");
}

#[test]
fn bad_incremental_requests_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let image = random_bytes(7, 4 * BLOCK);
    store
        .create_disk_snapshot("disk", "base", &image[..], &[])
        .unwrap();
    store
        .create_disk_snapshot("other-disk", "elsewhere", &image[..], &[])
        .unwrap();
    let operations = store.get_operations(None).unwrap().items.len();
    let stats = store.stats().unwrap();

    let past_end = store.create_disk_snapshot_incremental(
        "disk",
        "next",
        "base",
        &[4],
        Cursor::new(&image),
        &[],
    );
    assert_eq!(past_end.unwrap_err().kind(), ErrorKind::InvalidInput);
    let wrong_disk = store.create_disk_snapshot_incremental(
        "disk",
        "next",
        "elsewhere",
        &[0],
        Cursor::new(&image),
        &[],
    );
    assert_eq!(wrong_disk.unwrap_err().kind(), ErrorKind::InvalidInput);
    let missing = store.create_disk_snapshot_incremental(
        "disk",
        "next",
        "nothing",
        &[0],
        Cursor::new(&image),
        &[],
    );
    assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);
    let empty = store.create_disk_snapshot_incremental(
        "disk",
        "next",
        "base",
        &[],
        Cursor::new(Vec::new()),
        &[],
    );
    assert_eq!(empty.unwrap_err().kind(), ErrorKind::InvalidInput);
    let across = store.list_changed_blocks("base", "elsewhere");
    assert_eq!(across.unwrap_err().kind(), ErrorKind::InvalidInput);

    assert_eq!(store.get_operations(None).unwrap().items.len(), operations);
    assert_eq!(store.stats().unwrap().blocks, stats.blocks);
    assert!(store.get_disk_snapshot("next").is_err());
}

#[test]
fn unseekable_source_rejected_with_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(dir.path());
    store
        .create_disk_snapshot("disk-1", "base", &vec![7u8; 4 * BLOCK][..], &[])
        .unwrap();
    let (reader, mut writer) = std::io::pipe().unwrap();
    std::io::Write::write_all(&mut writer, &[1u8; 16]).unwrap();
    let pipe = std::fs::File::from(std::os::fd::OwnedFd::from(reader));

    let error = store
        .create_disk_snapshot_incremental("disk-1", "next", "base", &[0], pipe, &[])
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
    assert!(error.message().contains("cannot seek"), "{error}");
    assert_eq!(
        store.get_disk_snapshot("next").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

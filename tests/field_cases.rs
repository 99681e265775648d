#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Named field cases. The doc comment of each test describes a disk history
//! that a snapshot store has to get exactly right, and the test checks the
//! bytes restored, the blocks and pages kept, and the space returned.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use blocksnap::{Store, PAGE_ENTRIES};
use common::{
    assert_bytes_equal, assert_restores, assert_verify_clean, distinct_blocks, open_store,
    pack_allocated_bytes, pack_files, random_bytes, restore, BLOCK,
};

/// Bytes of disk that one page of block hashes covers.
const PAGE_BYTES: usize = PAGE_ENTRIES * BLOCK;

/// Returns `image` with block `index` replaced by fresh random bytes from `seed`.
fn with_block_changed(image: &[u8], index: usize, seed: u64) -> Vec<u8> {
    let mut changed = image.to_vec();
    changed[index * BLOCK..(index + 1) * BLOCK].copy_from_slice(&random_bytes(seed, BLOCK));
    changed
}

/// Story: a nightly chain A, B, C of one 16-block disk, where B changes block 2
/// of A and C changes block 9 of B. Retention deletes the oldest first. A's
/// original block 2 is used by A alone, so deleting A frees exactly one block.
/// B's original block 9 is then used by B alone (A is gone), so deleting B
/// frees exactly one more. C must restore byte for byte throughout.
///
/// The space check measures the pack files alone: `stats().disk_bytes` also
/// counts the metadata database, whose log grows by about a block on each
/// delete, so it does not shrink when a single block is freed.
#[test]
fn chain_base_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let a = distinct_blocks(1, 16);
    let b = with_block_changed(&a, 2, 100);
    let c = with_block_changed(&b, 9, 101);
    for (name, image) in [("snap-a", &a), ("snap-b", &b), ("snap-c", &c)] {
        store
            .create_disk_snapshot("disk-1", name, &image[..], &[])
            .unwrap();
    }
    let start = store.stats().unwrap();
    assert_eq!(
        start.blocks, 18,
        "16 blocks of A plus one new block each in B and C"
    );
    assert_eq!(start.pages, 3, "each snapshot has its own one-page list");

    let packs_before_a = pack_allocated_bytes(dir.path());
    store.delete_disk_snapshot("snap-a").unwrap();
    let after_a = store.stats().unwrap();
    assert_eq!(after_a.blocks, 17, "deleting A frees only A's block 2");
    assert_eq!(after_a.pages, 2);
    assert_eq!(after_a.snapshots, 2);
    let packs_after_a = pack_allocated_bytes(dir.path());
    assert_eq!(
        packs_before_a - packs_after_a,
        BLOCK as u64,
        "deleting A punches exactly one block out of the pack"
    );
    assert_restores(&store, "snap-b", &b);
    assert_restores(&store, "snap-c", &c);
    assert_verify_clean(&store);

    store.delete_disk_snapshot("snap-b").unwrap();
    let after_b = store.stats().unwrap();
    println!(
        "disk_bytes {} -> {}",
        after_a.disk_bytes, after_b.disk_bytes
    );
    assert_eq!(after_b.blocks, 16, "deleting B frees only B's block 9");
    assert_eq!(after_b.pages, 1);
    assert_eq!(after_b.snapshots, 1);
    let packs_after_b = pack_allocated_bytes(dir.path());
    assert_eq!(
        packs_after_a - packs_after_b,
        BLOCK as u64,
        "deleting B punches exactly one block out of the pack"
    );
    assert_restores(&store, "snap-c", &c);
    assert_verify_clean(&store);
}

/// Story: a disk image of 10 blocks and 123 bytes, written by a tool that
/// left its last four blocks and the partial tail as zeros. Nothing of the
/// tail is stored, yet the restore, to a writer or to a sparse file, must
/// have exactly the original length and bytes.
#[test]
fn odd_length_sparse_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let mut image = random_bytes(2, 6 * BLOCK);
    image.resize(10 * BLOCK + 123, 0);
    store
        .create_disk_snapshot("disk-1", "odd", &image[..], &[])
        .unwrap();

    assert_eq!(store.stats().unwrap().blocks, 6);
    assert_eq!(store.stats().unwrap().logical_bytes, image.len() as u64);
    assert_restores(&store, "odd", &image);

    let target = dir.path().join("restored.img");
    fs::write(&target, random_bytes(3, 20 * BLOCK)).unwrap();
    store
        .create_disk_from_snapshot_to_file("odd", "disk-2", &target, None)
        .unwrap();
    let metadata = fs::metadata(&target).unwrap();
    assert_eq!(metadata.len(), image.len() as u64, "restored file length");
    assert_bytes_equal(&fs::read(&target).unwrap(), &image, "restored file");
    assert!(
        metadata.blocks() * 512 < image.len() as u64,
        "the zero tail should be a hole, but {} bytes are allocated",
        metadata.blocks() * 512
    );
}

/// Story: the same as `odd_length_sparse_tail`, but the data sits in the
/// partial last block and the blocks before it are zeros.
#[test]
fn odd_length_data_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let mut image = vec![0u8; 10 * BLOCK];
    image.extend_from_slice(&random_bytes(4, 123));
    store
        .create_disk_snapshot("disk-1", "odd", &image[..], &[])
        .unwrap();

    assert_eq!(store.stats().unwrap().blocks, 1);
    assert_restores(&store, "odd", &image);
    let target = dir.path().join("restored.img");
    store
        .create_disk_from_snapshot_to_file("odd", "disk-2", &target, None)
        .unwrap();
    assert_bytes_equal(&fs::read(&target).unwrap(), &image, "restored file");
}

/// Story: a block X appears twice in snapshot S1 (a file copied inside the
/// disk) and once in snapshot S2 of another disk. X's count is three, and X
/// must be freed exactly once, when the last of the three references goes.
#[test]
fn block_twice_once_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let x = random_bytes(10, BLOCK);
    let y = random_bytes(11, BLOCK);
    let z = random_bytes(12, BLOCK);
    let w = random_bytes(13, BLOCK);
    let s1 = [x.clone(), y, x.clone(), z].concat();
    let s2 = [w, x].concat();
    store
        .create_disk_snapshot("disk-1", "s1", &s1[..], &[])
        .unwrap();
    store
        .create_disk_snapshot("disk-2", "s2", &s2[..], &[])
        .unwrap();
    assert_eq!(store.stats().unwrap().blocks, 4, "X, Y, Z and W");
    assert_verify_clean(&store);

    store.delete_disk_snapshot("s1").unwrap();
    assert_eq!(store.stats().unwrap().blocks, 2, "X and W remain");
    assert_restores(&store, "s2", &s2);
    assert_verify_clean(&store);

    store.delete_disk_snapshot("s2").unwrap();
    let end = store.stats().unwrap();
    assert_eq!(end.blocks, 0);
    assert_eq!(end.pages, 0);
    assert_eq!(end.snapshots, 0);
    assert_verify_clean(&store);
}

/// Image lengths around the block and page boundaries, for block size `B`.
fn boundary_lengths() -> [usize; 8] {
    [
        1,
        BLOCK - 1,
        BLOCK,
        BLOCK + 1,
        2 * BLOCK,
        PAGE_BYTES - 1,
        PAGE_BYTES,
        PAGE_BYTES + 1,
    ]
}

/// Story: images whose lengths sit on either side of a block or a page
/// boundary. Each round-trips, and snapshotting the same bytes again (the
/// next night, nothing changed) adds no block and no page.
#[test]
fn boundary_lengths_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());

    for (seed, len) in (20..).zip(boundary_lengths()) {
        let image = random_bytes(seed, len);
        let first = format!("len-{len}-a");
        let second = format!("len-{len}-b");
        store
            .create_disk_snapshot("disk-1", &first, &image[..], &[])
            .unwrap();
        let before = store.stats().unwrap();

        store
            .create_disk_snapshot("disk-1", &second, &image[..], &[])
            .unwrap();

        let after = store.stats().unwrap();
        assert_eq!(
            after.blocks, before.blocks,
            "length {len}: the repeat added blocks"
        );
        assert_eq!(
            after.pages, before.pages,
            "length {len}: the repeat added pages"
        );
        assert_restores(&store, &first, &image);
        assert_restores(&store, &second, &image);
    }
    assert_verify_clean(&store);
}

/// One change from a first image to a second, for the differential check.
struct Change {
    name: &'static str,
    first: fn() -> Vec<u8>,
    second: fn(&[u8]) -> Vec<u8>,
}

/// Returns the changes the differential test applies, each with its own first image.
fn changes() -> [Change; 8] {
    [
        Change {
            name: "one block rewritten",
            first: || random_bytes(300, 3 * BLOCK),
            second: |first| with_block_changed(first, 1, 200),
        },
        Change {
            name: "partial tail rewritten",
            first: || random_bytes(300, 2 * BLOCK + 500),
            second: |first| {
                let mut second = first.to_vec();
                second[2 * BLOCK + 10] ^= 0xff;
                second
            },
        },
        Change {
            name: "grown past a page",
            first: || random_bytes(300, PAGE_BYTES - 1),
            second: |first| [first, &random_bytes(201, 2 * BLOCK + 2)].concat(),
        },
        Change {
            name: "shrunk below a page",
            first: || random_bytes(300, PAGE_BYTES + 1),
            second: |first| first[..PAGE_BYTES - BLOCK - 1].to_vec(),
        },
        Change {
            name: "shrunk inside a block",
            first: || random_bytes(300, 3 * BLOCK),
            second: |first| {
                let mut second = first.to_vec();
                second.truncate(2 * BLOCK + 1);
                second
            },
        },
        Change {
            name: "block zeroed",
            first: || random_bytes(300, 4 * BLOCK),
            second: |first| {
                let mut second = first.to_vec();
                second[BLOCK..2 * BLOCK].fill(0);
                second
            },
        },
        Change {
            name: "blocks swapped",
            first: || random_bytes(300, 4 * BLOCK),
            second: |first| {
                [
                    &first[BLOCK..2 * BLOCK],
                    &first[..BLOCK],
                    &first[2 * BLOCK..],
                ]
                .concat()
            },
        },
        Change {
            name: "zeroed tail made non-zero",
            first: || {
                let mut first = random_bytes(300, PAGE_BYTES + 3 * BLOCK);
                first[PAGE_BYTES..].fill(0);
                first
            },
            second: |first| {
                let mut second = first.to_vec();
                second[PAGE_BYTES..].copy_from_slice(&random_bytes(202, 3 * BLOCK));
                second
            },
        },
    ]
}

/// Story: the same bytes must restore the same way whether they were stored
/// as a full snapshot in an empty store or as an increment on top of an
/// earlier snapshot of the disk, whose pages the increment compares against.
#[test]
fn incremental_matches_full() {
    for change in &changes() {
        let first = (change.first)();
        let second = (change.second)(&first);
        let incremental_dir = tempfile::tempdir().unwrap();
        let incremental = open_store(incremental_dir.path());
        incremental
            .create_disk_snapshot("disk-1", "first", &first[..], &[])
            .unwrap();
        incremental
            .create_disk_snapshot("disk-1", "second", &second[..], &[])
            .unwrap();
        let full_dir = tempfile::tempdir().unwrap();
        let full = open_store(full_dir.path());
        full.create_disk_snapshot("disk-1", "second", &second[..], &[])
            .unwrap();

        let from_incremental = restore(&incremental, "second");
        let from_full = restore(&full, "second");

        assert_bytes_equal(
            &from_incremental,
            &second,
            &format!("{}: incremental", change.name),
        );
        assert_bytes_equal(&from_full, &second, &format!("{}: full", change.name));
        assert_restores(&incremental, "first", &first);
        incremental.delete_disk_snapshot("first").unwrap();
        assert_eq!(
            incremental.stats().unwrap().blocks,
            full.stats().unwrap().blocks,
            "{}: the increment alone holds as many blocks as the full snapshot",
            change.name
        );
        assert_eq!(
            incremental.stats().unwrap().pages,
            full.stats().unwrap().pages,
            "{}: pages",
            change.name
        );
        assert_restores(&incremental, "second", &second);
        assert_verify_clean(&incremental);
    }
}

/// Story: two disks cloned from the same golden image. The store keeps one
/// copy of each block and one copy of the page listing them.
#[test]
fn dedup_across_disks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let image = distinct_blocks(5, 12);
    store
        .create_disk_snapshot("web-1", "web-1-snap", &image[..], &[])
        .unwrap();
    let one = store.stats().unwrap();

    store
        .create_disk_snapshot("web-2", "web-2-snap", &image[..], &[])
        .unwrap();

    let two = store.stats().unwrap();
    assert_eq!(one.blocks, 12);
    assert_eq!(two.blocks, 12);
    assert_eq!(two.pages, 1);
    assert_eq!(two.logical_bytes, 2 * image.len() as u64);
    assert_restores(&store, "web-1-snap", &image);
    assert_restores(&store, "web-2-snap", &image);

    store.delete_disk_snapshot("web-1-snap").unwrap();
    assert_eq!(
        store.stats().unwrap().blocks,
        12,
        "web-2 still needs every block"
    );
    assert_restores(&store, "web-2-snap", &image);
    assert_verify_clean(&store);
}

/// Story: a freshly provisioned, never written disk of two pages and a bit.
/// It costs no block and no page, and restores to zeros of its exact length.
#[test]
fn all_zero_image() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let len = 2 * PAGE_BYTES + 52 * BLOCK + 17;
    let image = vec![0u8; len];

    store
        .create_disk_snapshot("disk-1", "blank", &image[..], &[])
        .unwrap();

    let stats = store.stats().unwrap();
    assert_eq!(stats.blocks, 0);
    assert_eq!(stats.pages, 0);
    assert_eq!(stats.logical_bytes, len as u64);
    assert!(
        pack_files(dir.path()).is_empty(),
        "{:?}",
        pack_files(dir.path())
    );
    assert_restores(&store, "blank", &image);
    let target = dir.path().join("blank.img");
    store
        .create_disk_from_snapshot_to_file("blank", "disk-2", &target, None)
        .unwrap();
    let metadata = fs::metadata(&target).unwrap();
    assert_eq!(metadata.len(), len as u64);
    assert_eq!(metadata.blocks(), 0, "the restored file should be one hole");
    assert_verify_clean(&store);
}

/// Five versions of a disk of about one and a half pages, each changing it
/// the way a week of use would.
fn evolving_versions() -> Vec<Vec<u8>> {
    let v1 = random_bytes(40, 1600 * BLOCK + 100);
    // Page 1 changes; page 0 is shared with v1.
    let v2 = with_block_changed(&with_block_changed(&v1, 1100, 41), 1500, 42);
    // Blocks zeroed in page 0, and the disk grows by a partial block.
    let mut v3 = v2.clone();
    v3[10 * BLOCK..20 * BLOCK].fill(0);
    v3.extend_from_slice(&random_bytes(43, 3000));
    // The disk shrinks below one page.
    let v4 = v3[..1000 * BLOCK + 7].to_vec();
    // Grows again, with block 5 back to its v1 content and a copy of block 0.
    let mut v5 = [&v4[..], &v1[1000 * BLOCK..1200 * BLOCK]].concat();
    v5[5 * BLOCK..6 * BLOCK].copy_from_slice(&v1[5 * BLOCK..6 * BLOCK]);
    v5[7 * BLOCK..8 * BLOCK].copy_from_slice(&v1[..BLOCK]);
    vec![v1, v2, v3, v4, v5]
}

/// Snapshots every version, deletes them in `order` (indexes into the
/// versions), and after each delete checks every survivor and the store.
fn delete_in_order(label: &str, order: [usize; 5]) {
    let versions = evolving_versions();
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let names: Vec<String> = (1..=versions.len()).map(|n| format!("v{n}")).collect();
    for (name, image) in names.iter().zip(&versions) {
        store
            .create_disk_snapshot("disk-1", name, &image[..], &[])
            .unwrap();
    }
    assert_verify_clean(&store);
    let full = store.stats().unwrap();

    let mut alive = vec![true; versions.len()];
    for index in order {
        store.delete_disk_snapshot(&names[index]).unwrap();
        alive[index] = false;
        for (survivor, image) in versions.iter().enumerate().filter(|(i, _)| alive[*i]) {
            assert_restores_labelled(&store, label, &names[survivor], image);
        }
        assert_verify_clean(&store);
    }

    let end = store.stats().unwrap();
    assert_eq!(end.snapshots, 0, "{label}");
    assert_eq!(end.pages, 0, "{label}");
    assert_eq!(end.blocks, 0, "{label}");
    assert_eq!(
        pack_files(dir.path()),
        Vec::<std::path::PathBuf>::new(),
        "{label}: packs left"
    );
    assert_eq!(pack_allocated_bytes(dir.path()), 0, "{label}");
    assert!(
        end.disk_bytes + full.stored_bytes / 2 < full.disk_bytes,
        "{label}: the store occupies {} bytes after the last delete, {} with {} bytes of blocks",
        end.disk_bytes,
        full.disk_bytes,
        full.stored_bytes
    );
}

fn assert_restores_labelled(store: &Store, label: &str, name: &str, image: &[u8]) {
    let restored = restore(store, name);
    assert_bytes_equal(&restored, image, &format!("{label}: snapshot {name}"));
}

/// Story: five snapshots of a disk that grows, shrinks and rewrites blocks,
/// deleted by retention policies that remove the oldest first, the newest
/// first, or one from the middle first. Every survivor restores after every
/// delete, and the last delete leaves no block, page or pack file behind.
#[test]
fn delete_orders() {
    delete_in_order("base first", [0, 1, 2, 3, 4]);
    delete_in_order("newest first", [4, 3, 2, 1, 0]);
    delete_in_order("middle first", [2, 1, 3, 0, 4]);
}

/// Story: a disk of 12 pages, each holding one data block among zeros, is
/// snapshot on three nights, and the middle snapshot is deleted. As with the
/// CLI, every step opens the store afresh. Each night stores 12 new page
/// bodies of 32 KiB. They must stay in sled's log rather than in files of
/// `metadata/blobs`: sled 0.34.7 never syncs a blob file, and it never deletes
/// one that was replaced shortly before the process exited.
#[test]
fn page_bodies_stay_in_log() {
    let dir = tempfile::tempdir().unwrap();
    let pages = 12;
    for night in 0..3u64 {
        let mut image = vec![0u8; pages * PAGE_BYTES];
        for page in 0..pages {
            let seed = night * 100 + page as u64;
            image[page * PAGE_BYTES..page * PAGE_BYTES + BLOCK]
                .copy_from_slice(&random_bytes(seed, BLOCK));
        }
        let store = open_store(dir.path());
        store
            .create_disk_snapshot("disk-1", &format!("night-{night}"), &image[..], &[])
            .unwrap();
    }
    let store = open_store(dir.path());
    store.delete_disk_snapshot("night-1").unwrap();
    assert_verify_clean(&store);
    drop(store);

    let blobs: Vec<_> = fs::read_dir(dir.path().join("metadata/blobs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(blobs.is_empty(), "blob files: {blobs:?}");
}

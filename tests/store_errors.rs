#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Bad requests get the right `ErrorKind` and leave the store as it was;
//! damaged stores are reported as errors, never as panics or wrong bytes.

mod common;

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use blocksnap::model::{OperationStatus, Tag};
use blocksnap::{ErrorKind, Store, StoreOptions, StoreStats};
use common::{
    assert_restores, assert_verify_clean, distinct_blocks, open_store, operation_count,
    random_bytes, BLOCK,
};

/// Names that break Lightsail's resource name rules, each with the reason.
const INVALID_NAMES: &[(&str, &str)] = &[
    ("", "empty"),
    ("a", "one character"),
    ("-snap", "leading hyphen"),
    ("snap-", "trailing hyphen"),
    ("my snap", "contains a space"),
    ("snap.1", "contains a dot"),
];

fn too_long_name() -> String {
    "a".repeat(256)
}

/// The observable state a rejected request must not change.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    snapshots: u64,
    pages: u64,
    blocks: u64,
    operations: usize,
}

fn observe(store: &Store) -> Observed {
    let StoreStats {
        snapshots,
        pages,
        blocks,
        ..
    } = store.stats().unwrap();
    Observed {
        snapshots,
        pages,
        blocks,
        operations: operation_count(store),
    }
}

/// A store holding one snapshot, `base` of disk `disk-1`, of eight distinct blocks.
fn store_with_base(path: &Path) -> (Store, Vec<u8>) {
    let store = open_store(path);
    let image = distinct_blocks(1, 8);
    store
        .create_disk_snapshot("disk-1", "base", &image[..], &[])
        .unwrap();
    (store, image)
}

fn tag(key: &str, value: &str) -> Tag {
    Tag {
        key: key.to_owned(),
        value: Some(value.to_owned()),
    }
}

#[test]
fn invalid_names_rejected_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (store, image) = store_with_base(dir.path());
    let before = observe(&store);
    let long = too_long_name();
    let names = INVALID_NAMES
        .iter()
        .copied()
        .chain([(long.as_str(), "256 characters")]);

    for (name, reason) in names {
        let create_snapshot = store.create_disk_snapshot("disk-1", name, &image[..], &[]);
        assert_eq!(
            create_snapshot.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "create with snapshot name {name:?} ({reason})"
        );
        let create_disk = store.create_disk_snapshot(name, "snap-x", &image[..], &[]);
        assert_eq!(
            create_disk.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "create with disk name {name:?} ({reason})"
        );
        assert_eq!(
            store.delete_disk_snapshot(name).unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "delete of {name:?} ({reason})"
        );
        assert_eq!(
            store.get_disk_snapshot(name).unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "get of {name:?} ({reason})"
        );
        let restore_from = store.create_disk_from_snapshot(name, "disk-2", &mut Vec::new());
        assert_eq!(
            restore_from.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "restore from snapshot {name:?} ({reason})"
        );
        let restore_to = store.create_disk_from_snapshot("base", name, &mut Vec::new());
        assert_eq!(
            restore_to.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "restore to disk name {name:?} ({reason})"
        );
        let for_resource = store.get_operations_for_resource(name, None);
        assert_eq!(
            for_resource.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "operations of resource {name:?} ({reason})"
        );
    }

    assert_eq!(observe(&store), before);
    assert_restores(&store, "base", &image);
    assert_verify_clean(&store);
}

#[test]
fn longest_valid_name_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let name = "a".repeat(255);
    let image = random_bytes(3, BLOCK);

    store.create_disk_snapshot(&name, &name, &image[..], &[]).unwrap();

    assert_restores(&store, &name, &image);
    assert_eq!(store.get_disk_snapshot(&name).unwrap().name, name);
}

#[test]
fn duplicate_snapshot_name_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (store, image) = store_with_base(dir.path());
    let before = observe(&store);
    let other = random_bytes(2, 3 * BLOCK);

    let same_disk = store.create_disk_snapshot("disk-1", "base", &other[..], &[]);
    assert_eq!(same_disk.unwrap_err().kind(), ErrorKind::InvalidInput);
    // Snapshot names are unique in the whole store, not per disk.
    let other_disk = store.create_disk_snapshot("disk-2", "base", &other[..], &[]);
    assert_eq!(other_disk.unwrap_err().kind(), ErrorKind::InvalidInput);

    assert_eq!(observe(&store), before);
    assert_restores(&store, "base", &image);
    assert_verify_clean(&store);
}

#[test]
fn unknown_snapshot_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let (store, image) = store_with_base(dir.path());
    let before = observe(&store);

    assert_eq!(
        store.delete_disk_snapshot("missing").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.get_disk_snapshot("missing").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let mut target = Vec::new();
    let restore = store.create_disk_from_snapshot("missing", "disk-2", &mut target);
    assert_eq!(restore.unwrap_err().kind(), ErrorKind::NotFound);
    assert!(target.is_empty(), "a failed restore wrote {} bytes", target.len());
    assert_eq!(
        store.get_operation("no-such-operation").unwrap_err().kind(),
        ErrorKind::NotFound
    );

    assert_eq!(observe(&store), before);
    assert_restores(&store, "base", &image);
}

/// A restore to a file of a snapshot that does not exist must fail before it
/// touches the target: the path could be a disk image the caller still needs.
#[test]
fn restore_to_file_unknown_keeps_target() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_base(dir.path());
    let target = dir.path().join("precious.img");
    let precious = random_bytes(4, 3 * BLOCK);
    fs::write(&target, &precious).unwrap();

    let unknown = store.create_disk_from_snapshot_to_file("missing", "disk-2", &target, None);
    assert_eq!(unknown.unwrap_err().kind(), ErrorKind::NotFound);
    let invalid = store.create_disk_from_snapshot_to_file("-bad", "disk-2", &target, None);
    assert_eq!(invalid.unwrap_err().kind(), ErrorKind::InvalidInput);

    let after = fs::read(&target).unwrap();
    assert_eq!(
        after.len(),
        precious.len(),
        "a rejected restore changed the length of the existing target file"
    );
    assert!(after == precious, "a rejected restore changed the bytes of the existing target file");
}

#[test]
fn empty_source_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_base(dir.path());
    let before = observe(&store);

    let empty = store.create_disk_snapshot("disk-1", "empty", io::empty(), &[]);

    assert_eq!(empty.unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(
        store.get_disk_snapshot("empty").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(observe(&store), before);
    assert_verify_clean(&store);
}

/// A source that yields `data` and then fails with an I/O error once
/// `fail_after` bytes have been read.
struct FailingReader {
    data: Vec<u8>,
    position: usize,
    fail_after: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.position >= self.fail_after {
            return Err(io::Error::other("simulated device read error"));
        }
        let end = self.fail_after.min(self.data.len()).min(self.position + buffer.len());
        let count = end - self.position;
        buffer[..count].copy_from_slice(&self.data[self.position..end]);
        self.position = end;
        Ok(count)
    }
}

/// Bytes the engine reads before it hashes and commits anything (its private
/// `CHUNK_BYTES`). A read error past this point has to roll back pages that
/// were already committed.
const ENGINE_CHUNK: usize = 8 << 20;

/// Creates a snapshot from a source that fails after `fail_after` bytes and
/// checks the create left nothing behind but `Failed` operation records.
fn check_failed_read_rolls_back(fail_after: usize, expect_operation_records: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    // The failing source shares its first half with `base`, so the rollback
    // has to decrement shared pages and blocks, not free them.
    let source = random_bytes(10, ENGINE_CHUNK + 64 * BLOCK);
    let base = source[..ENGINE_CHUNK / 2].to_vec();
    store
        .create_disk_snapshot("disk-1", "base", &base[..], &[])
        .unwrap();
    let before = observe(&store);
    let packs_before = common::pack_allocated_bytes(dir.path());

    let reader = FailingReader {
        data: source.clone(),
        position: 0,
        fail_after,
    };
    let error = store
        .create_disk_snapshot("disk-1", "broken", reader, &[])
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::OperationFailure, "{error}");
    assert_eq!(
        store.get_disk_snapshot("broken").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_verify_clean(&store);
    let after = observe(&store);
    assert_eq!(after.snapshots, before.snapshots);
    assert_eq!(after.pages, before.pages);
    assert_eq!(after.blocks, before.blocks);
    let records = store.get_operations(None).unwrap().items;
    let new_records = &records[before.operations..];
    if expect_operation_records {
        assert_eq!(new_records.len(), 2, "{new_records:?}");
        for record in new_records {
            assert_eq!(record.status, OperationStatus::Failed, "{record:?}");
            assert_eq!(
                record.error_code.as_deref(),
                Some("OperationFailureException")
            );
        }
    } else {
        assert!(new_records.is_empty(), "{new_records:?}");
    }
    // Hole punching can leave a file-system block for the extent tree behind,
    // so allow 64 KiB more than before but not the megabytes written.
    let packs_after = common::pack_allocated_bytes(dir.path());
    assert!(
        packs_after <= packs_before + 64 * 1024,
        "pack files grew from {packs_before} to {packs_after} allocated bytes"
    );
    assert_restores(&store, "base", &base);

    store
        .create_disk_snapshot("disk-1", "broken", &source[..], &[])
        .unwrap();
    assert_restores(&store, "broken", &source);
    assert_verify_clean(&store);
}

#[test]
fn read_error_early_rolls_back() {
    check_failed_read_rolls_back(5 * BLOCK + 100, false);
}

#[test]
fn read_error_after_commit_rolls_back() {
    check_failed_read_rolls_back(ENGINE_CHUNK + 3 * BLOCK + 7, true);
}

#[test]
fn invalid_block_size_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for block_size in [3000, 2048, 2 << 20, 0, 4095] {
        let path = dir.path().join(format!("store-{block_size}"));
        let options = StoreOptions {
            block_size: Some(block_size),
            ..StoreOptions::default()
        };
        let error = Store::open_with(&path, options).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "block size {block_size}");
        assert!(
            error.message().contains(&block_size.to_string()),
            "message does not name {block_size}: {error}"
        );
        assert!(!path.exists(), "a rejected open created {}", path.display());
    }
}

#[test]
fn reopen_other_block_size_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let image = random_bytes(5, 5 * BLOCK + 9);
    {
        let store = open_store(dir.path());
        store
            .create_disk_snapshot("disk-1", "kept", &image[..], &[])
            .unwrap();
    }

    for block_size in [8192, 65536] {
        let options = StoreOptions {
            block_size: Some(block_size),
            ..StoreOptions::default()
        };
        let error = Store::open_with(dir.path(), options).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "block size {block_size}");
    }

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.block_size(), BLOCK as u32);
    assert_restores(&store, "kept", &image);
    drop(store);
    let store = open_store(dir.path());
    assert_restores(&store, "kept", &image);
    assert_verify_clean(&store);
}

#[test]
fn bad_page_tokens_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_base(dir.path());

    for token in ["not a name", "-x", ""] {
        let listing = store.get_disk_snapshots(Some(token));
        assert_eq!(
            listing.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "snapshot token {token:?}"
        );
    }
    for token in ["abc", "-1", "1.5", "", "99999999999999999999999"] {
        let all = store.get_operations(Some(token));
        assert_eq!(
            all.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "operation token {token:?}"
        );
        let for_disk = store.get_operations_for_resource("disk-1", Some(token));
        assert_eq!(
            for_disk.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "resource operation token {token:?}"
        );
    }
}

#[test]
fn invalid_tags_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_base(dir.path());
    let before = observe(&store);
    let image = random_bytes(6, 2 * BLOCK);
    let fifty_one: Vec<Tag> = (0..51).map(|i| tag(&format!("key-{i}"), "v")).collect();
    let cases: Vec<(&str, Vec<Tag>)> = vec![
        ("key of 129 characters", vec![tag(&"k".repeat(129), "v")]),
        ("empty key", vec![tag("", "v")]),
        ("51 tags", fifty_one),
        ("duplicate keys", vec![tag("env", "a"), tag("env", "b")]),
        ("value of 257 characters", vec![tag("env", &"v".repeat(257))]),
        ("reserved aws: prefix", vec![tag("aws:owner", "v")]),
        ("key with a comma", vec![tag("a,b", "v")]),
    ];

    for (reason, tags) in &cases {
        let create = store.create_disk_snapshot("disk-1", "tagged", &image[..], tags);
        assert_eq!(create.unwrap_err().kind(), ErrorKind::InvalidInput, "{reason}");
    }

    assert_eq!(observe(&store), before);
    assert_verify_clean(&store);
}

/// Story: one bit rots inside a pack file. The restore must refuse to write
/// wrong bytes and say which snapshot and block are damaged, and verify must
/// count exactly that block.
#[test]
fn corrupt_pack_byte_detected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    // Blocks 0 and 1 are zeros and not stored, so block 2 is the first block
    // written: offset 0 of the first pack.
    let mut image = vec![0u8; 2 * BLOCK];
    let known = random_bytes(7, BLOCK);
    image.extend_from_slice(&known);
    store
        .create_disk_snapshot("disk-1", "rotten", &image[..], &[])
        .unwrap();
    let pack = dir.path().join("packs").join("pack-00000001.dat");
    let mut pack_bytes = fs::read(&pack).unwrap();
    assert_eq!(pack_bytes, known, "pack 1 does not hold exactly the one block");
    pack_bytes[100] ^= 0x01;
    fs::write(&pack, &pack_bytes).unwrap();

    let mut target = Vec::new();
    let error = store
        .create_disk_from_snapshot("rotten", "disk-2", &mut target)
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Corruption, "{error}");
    assert!(error.message().contains("\"rotten\""), "no snapshot name in: {error}");
    assert!(error.message().contains("block 2 "), "no block index in: {error}");
    let failed = store.get_operations_for_resource("disk-2", None).unwrap().items;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].status, OperationStatus::Failed);
    assert_eq!(failed[0].error_code.as_deref(), Some("DataCorruption"));

    let report = store.verify().unwrap();
    assert_eq!(report.corrupt_blocks, 1, "{report:?}");
    assert_eq!(report.missing_blocks, 0, "{report:?}");
    assert_eq!(report.blocks_checked, 1, "{report:?}");
    assert!(!report.is_clean());
}

/// Overwrites every regular file under `dir` with garbage of the same length
/// (at least 4 KiB).
fn scribble_over(dir: &Path, seed: u64) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            scribble_over(&path, seed + 1);
        } else {
            let len = fs::metadata(&path).unwrap().len().max(4096);
            fs::write(&path, random_bytes(seed, usize::try_from(len).unwrap())).unwrap();
        }
    }
}

#[test]
fn garbage_metadata_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = store_with_base(dir.path());
        store
            .create_disk_snapshot("disk-1", "second", &random_bytes(8, 3 * BLOCK)[..], &[])
            .unwrap();
    }
    scribble_over(&dir.path().join("metadata"), 11);

    let opened = std::panic::catch_unwind(|| Store::open(dir.path()));

    let result = opened.unwrap_or_else(|_| panic!("Store::open panicked on garbage metadata"));
    match result {
        Ok(store) => panic!(
            "Store::open accepted garbage metadata and returned a store with {:?}",
            store.stats()
        ),
        Err(error) => println!("open failed as expected: {:?}: {error}", error.kind()),
    }
}

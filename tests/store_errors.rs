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
    random_bytes, BLOCK, BLOCK_SIZE,
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

/// Opens a store at `path` with one snapshot, `base` of disk `disk-1`, of
/// eight distinct blocks.
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

    store
        .create_disk_snapshot(&name, &name, &image[..], &[])
        .unwrap();

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
    assert!(
        target.is_empty(),
        "a failed restore wrote {} bytes",
        target.len()
    );
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
    assert!(
        after == precious,
        "a rejected restore changed the bytes of the existing target file"
    );
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
        let end = self
            .fail_after
            .min(self.data.len())
            .min(self.position + buffer.len());
        let count = end - self.position;
        buffer[..count].copy_from_slice(&self.data[self.position..end]);
        self.position = end;
        Ok(count)
    }
}

/// Bytes of two full pages (1,024 blocks each). The engine reads the source in
/// chunks of 1 MiB or more and commits each page once it is full, so a read error
/// past this point has to roll back pages that were already committed.
const TWO_PAGES: usize = 2 * 1024 * BLOCK;

/// Creates a snapshot from a source that fails after `fail_after` bytes and
/// checks the create left nothing behind but `Failed` operation records.
fn check_failed_read_rolls_back(fail_after: usize, expect_operation_records: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    // The failing source shares its first half with `base`, so the rollback
    // has to decrement shared pages and blocks, not free them.
    let source = random_bytes(10, TWO_PAGES + 64 * BLOCK);
    let base = source[..TWO_PAGES / 2].to_vec();
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
    // On ext4, punching holes can split the pack into more extents than the
    // inode has room for, which costs an extent-tree block. So allow 64 KiB
    // more than before, far less than the megabytes the failed create wrote.
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
    check_failed_read_rolls_back(TWO_PAGES + 3 * BLOCK + 7, true);
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
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidInput,
            "block size {block_size}"
        );
        assert!(
            error.message().contains(&block_size.to_string()),
            "message does not name {block_size}: {error}"
        );
        assert!(!path.exists(), "a rejected open created {}", path.display());
    }
}

#[test]
fn open_without_create_needs_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let options = StoreOptions {
        block_size: Some(BLOCK_SIZE),
        create_if_missing: false,
        ..StoreOptions::default()
    };

    let error = Store::open_with(&path, options.clone()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert!(
        error.message().contains(&path.display().to_string()),
        "message does not name the path: {error}"
    );
    assert!(!path.exists(), "the open created {}", path.display());

    let file = dir.path().join("not-a-store");
    std::fs::write(&file, b"data").unwrap();
    let error = Store::open_with(&file, options.clone()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert_eq!(std::fs::read(&file).unwrap(), b"data");

    // A first open killed before it wrote the configuration record leaves a
    // database without one, which is still no store.
    let half_created = dir.path().join("half-created");
    std::fs::create_dir_all(half_created.join("metadata")).unwrap();
    std::fs::write(half_created.join("metadata").join("db"), b"").unwrap();
    let error = Store::open_with(&half_created, options.clone()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert!(
        !half_created.join("packs").exists(),
        "the open went on to create the packs directory"
    );

    let image = random_bytes(6, 3 * BLOCK);
    {
        let store = open_store(&path);
        store
            .create_disk_snapshot("disk-1", "snap-1", &image[..], &[])
            .unwrap();
    }
    let store = Store::open_with(&path, options).unwrap();
    assert_eq!(store.get_disk_snapshots(None).unwrap().items.len(), 1);
}

#[test]
fn store_path_not_directory_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"data").unwrap();
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();

    for path in [&file, &dangling] {
        let error = Store::open(path).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
        assert!(
            error.message().contains(&path.display().to_string()),
            "message does not name {}: {error}",
            path.display()
        );
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"data");
    assert!(!dir.path().join("nowhere").exists());
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
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidInput,
            "block size {block_size}"
        );
    }

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.block_size(), BLOCK_SIZE);
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
    // Numbers in another spelling, and numbers that name no operation, were
    // never issued either.
    let never_issued = u64::MAX.to_string();
    for token in [
        "abc",
        "-1",
        "1.5",
        "",
        "99999999999999999999999",
        "+5",
        "007",
        &never_issued,
    ] {
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
        (
            "value of 257 characters",
            vec![tag("env", &"v".repeat(257))],
        ),
        ("reserved aws: prefix", vec![tag("aws:owner", "v")]),
        ("key with a comma", vec![tag("a,b", "v")]),
    ];

    for (reason, tags) in &cases {
        let create = store.create_disk_snapshot("disk-1", "tagged", &image[..], tags);
        assert_eq!(
            create.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "{reason}"
        );
    }

    assert_eq!(observe(&store), before);
    assert_verify_clean(&store);
}

/// Story: one bit rots inside a pack file. The restore must fail instead of
/// writing wrong bytes, and its error must name the damaged snapshot and
/// block. Verify must count exactly that block.
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
    assert_eq!(
        pack_bytes, known,
        "pack 1 does not hold exactly the one block"
    );
    pack_bytes[100] ^= 0x01;
    fs::write(&pack, &pack_bytes).unwrap();

    let mut target = Vec::new();
    let error = store
        .create_disk_from_snapshot("rotten", "disk-2", &mut target)
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Corruption, "{error}");
    assert!(
        error.message().contains("\"rotten\""),
        "no snapshot name in: {error}"
    );
    assert!(
        error.message().contains("block 2 "),
        "no block index in: {error}"
    );
    let failed = store
        .get_operations_for_resource("disk-2", None)
        .unwrap()
        .items;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].status, OperationStatus::Failed);
    assert_eq!(failed[0].error_code.as_deref(), Some("DataCorruption"));

    let report = store.verify().unwrap();
    assert_eq!(report.corrupt_blocks, 1, "{report:?}");
    assert_eq!(report.missing_blocks, 0, "{report:?}");
    assert_eq!(report.blocks_checked, 1, "{report:?}");
    assert!(!report.is_clean());
}

#[test]
fn missing_pack_file_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let image = distinct_blocks(3, 4);
    {
        let store = open_store(dir.path());
        store
            .create_disk_snapshot("disk-1", "packless", &image[..], &[])
            .unwrap();
    }
    fs::remove_file(dir.path().join("packs").join("pack-00000001.dat")).unwrap();
    let store = open_store(dir.path());

    let error = store
        .create_disk_from_snapshot("packless", "disk-2", &mut Vec::new())
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Corruption, "{error}");
    assert!(error.message().contains("\"packless\""), "{error}");
    let error = store.read_block("packless", 0).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Corruption, "{error}");
    assert!(
        error.message().contains("pack-00000001.dat is missing"),
        "{error}"
    );

    let report = store.verify().unwrap();
    assert_eq!(report.missing_blocks, 4, "{report:?}");
    assert!(!report.is_clean());
}

#[test]
fn create_after_lost_pack_stores_blocks_again() {
    let dir = tempfile::tempdir().unwrap();
    let image = distinct_blocks(3, 8);
    // Half of the later image is new, so the second create writes a page
    // that is not stored yet and lists both new and lost blocks.
    let mut changed = image.clone();
    changed[..4 * BLOCK].copy_from_slice(&distinct_blocks(4, 4));
    {
        let store = open_store(dir.path());
        store
            .create_disk_snapshot("disk-1", "lost", &image[..], &[])
            .unwrap();
    }
    fs::remove_file(dir.path().join("packs").join("pack-00000001.dat")).unwrap();
    let store = open_store(dir.path());

    // The same bytes again: the page is stored, and its blocks must be
    // written anew rather than taken from the lost pack.
    store
        .create_disk_snapshot("disk-1", "again", &image[..], &[])
        .unwrap();
    store
        .create_disk_snapshot("disk-1", "changed", &changed[..], &[])
        .unwrap();

    assert_restores(&store, "again", &image);
    assert_restores(&store, "changed", &changed);
    // The lost snapshot names the same blocks, whose records now point at
    // the new copies, so it restores again too.
    assert_restores(&store, "lost", &image);
    assert_verify_clean(&store);

    for name in ["lost", "again", "changed"] {
        store.delete_disk_snapshot(name).unwrap();
    }
    let stats = store.stats().unwrap();
    assert_eq!((stats.blocks, stats.stored_bytes), (0, 0), "{stats:?}");
    assert_verify_clean(&store);
}

/// Ways to damage the metadata database files.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Every file overwritten with random bytes of the same length.
    GarbageEverywhere,
    /// Only sled's `conf` file overwritten with random bytes.
    GarbageConf,
    /// Only sled's `db` log overwritten with random bytes.
    GarbageLog,
    /// The `db` log overwritten with zeros.
    ZeroedLog,
    /// The `db` log cut to this percentage of its length.
    TruncatedLog(usize),
    /// Random bytes over the `db` log from this percentage of its length on.
    GarbageLogFrom(usize),
}

fn damage_file(path: &Path, damage: Damage, seed: u64) {
    let len = usize::try_from(fs::metadata(path).unwrap().len()).unwrap();
    match damage {
        Damage::GarbageEverywhere | Damage::GarbageConf | Damage::GarbageLog => {
            fs::write(path, random_bytes(seed, len.max(4096))).unwrap();
        }
        Damage::ZeroedLog => fs::write(path, vec![0u8; len]).unwrap(),
        Damage::TruncatedLog(percent) => {
            let file = fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(u64::try_from(len * percent / 100).unwrap())
                .unwrap();
        }
        Damage::GarbageLogFrom(percent) => {
            let mut bytes = fs::read(path).unwrap();
            let start = len * percent / 100;
            bytes[start..].copy_from_slice(&random_bytes(seed, len - start));
            fs::write(path, bytes).unwrap();
        }
    }
}

fn damage_metadata(dir: &Path, damage: Damage) {
    let mut seed = 11;
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        seed += 1;
        if path.is_dir() {
            if matches!(damage, Damage::GarbageEverywhere) {
                damage_metadata(&path, damage);
            }
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let selected = match damage {
            Damage::GarbageEverywhere => true,
            Damage::GarbageConf => name == "conf",
            _ => name == "db",
        };
        if selected {
            damage_file(&path, damage, seed);
        }
    }
}

/// Builds a store with snapshots `base` and `second` in pack 1, damages its
/// metadata files with `damage`, opens it again, and returns what went wrong
/// (empty when the open behaved).
///
/// With `require_error`, only a failed open that leaves pack 1 on disk is
/// good: metadata the store cannot read is no proof that the block bytes are
/// garbage, and they are what a recovery from a copy needs. Otherwise the
/// open may also succeed, with whatever earlier state the database recovered,
/// as long as that state verifies and each of its snapshots restores.
fn open_damaged(damage: Damage, require_error: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = store_with_base(dir.path());
        let second = random_bytes(8, 3 * BLOCK);
        store
            .create_disk_snapshot("disk-1", "second", &second[..], &[])
            .unwrap();
    }
    damage_metadata(&dir.path().join("metadata"), damage);

    let opened = std::panic::catch_unwind(|| Store::open(dir.path()));

    let mut failures = Vec::new();
    match opened {
        Err(_) => failures.push(format!("{damage:?}: Store::open panicked")),
        Ok(Err(error)) => {
            println!("{damage:?}: open failed as expected: {error}");
            if common::pack_files(dir.path()).is_empty() {
                failures.push(format!(
                    "{damage:?}: the failed open deleted pack 1 and every block in it"
                ));
            }
        }
        Ok(Ok(store)) => {
            let stats = store.stats().unwrap();
            println!("{damage:?}: open succeeded with {stats:?}");
            if require_error {
                failures.push(format!(
                    "{damage:?}: Store::open returned a store ({stats:?}) instead of an error"
                ));
            }
            let report = store.verify().unwrap();
            if !report.is_clean() {
                failures.push(format!(
                    "{damage:?}: the opened store does not verify: {report:?}"
                ));
            }
            for snapshot in store.get_disk_snapshots(None).unwrap().items {
                let restored =
                    store.create_disk_from_snapshot(&snapshot.name, "disk-2", &mut io::sink());
                if let Err(error) = restored {
                    failures.push(format!(
                        "{damage:?}: snapshot {} fails to restore: {error}",
                        snapshot.name
                    ));
                }
            }
        }
    }
    failures
}

/// Story: the metadata database is overwritten (a bad disk, a stray `dd`).
/// Opening the store must fail instead of starting over with empty metadata,
/// and the pack files must survive for a recovery from a copy.
#[test]
fn garbage_metadata_fails_open() {
    let mut failures = Vec::new();
    for damage in [
        Damage::GarbageEverywhere,
        Damage::GarbageConf,
        Damage::GarbageLog,
        Damage::ZeroedLog,
    ] {
        failures.extend(open_damaged(damage, true));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Story: the metadata log loses its tail, to truncation or to random bytes.
/// In runs with sled 0.34.7 the database then came back in states from before
/// the last flush, some with no snapshot at all. Opening may fail, or succeed
/// with such a state and finish what it finds half done, but the store it
/// returns must verify and every snapshot in it must restore.
#[test]
fn torn_metadata_log_consistent() {
    let mut failures = Vec::new();
    for percent in [10, 25, 40, 50, 60, 75, 90] {
        failures.extend(open_damaged(Damage::TruncatedLog(percent), false));
        failures.extend(open_damaged(Damage::GarbageLogFrom(percent), false));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Unmounts the file system at the path when dropped.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn create_leaves_room_to_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    fs::create_dir(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(&small)
        .status();
    if !mounted.is_ok_and(|status| status.success()) {
        eprintln!("skipped: this environment cannot mount a 48 MiB tmpfs");
        return;
    }
    let _unmount = Unmount(small.clone());
    let store_dir = small.join("store");

    // Each create runs in a store opened anew, as a CLI call does, until the
    // file system is too full for one more.
    let mut created = Vec::new();
    let error = loop {
        assert!(created.len() < 12, "the 48 MiB file system never filled");
        let name = format!("fill-{}", created.len());
        let image = distinct_blocks(40 + created.len() as u64, 1024);
        match open_store(&store_dir).create_disk_snapshot("disk-1", &name, &image[..], &[]) {
            Ok(_) => created.push((name, image)),
            Err(error) => break error,
        }
    };
    assert_eq!(error.kind(), ErrorKind::OperationFailure, "{error}");
    assert!(error.message().contains("can still open"), "{error}");
    assert!(!created.is_empty());
    // A create whose blocks are all stored writes only metadata, which can
    // fill the disk as well, so it is refused too.
    let (_, stored) = &created[0];
    let error = open_store(&store_dir)
        .create_disk_snapshot("disk-1", "metadata-only", &stored[..], &[])
        .unwrap_err();
    assert!(error.message().contains("can still open"), "{error}");

    // The store opens again, restores, and gives space back.
    let store = open_store(&store_dir);
    let (last, image) = created.last().unwrap();
    assert_restores(&store, last, image);
    store.delete_disk_snapshot(&created[0].0).unwrap();
    assert_verify_clean(&store);
}

/// Snapshots 8 distinct blocks as `cut` into a new store in `dir`, cuts
/// pack 1 to `len` bytes while the store is closed, and reopens the store.
fn store_with_short_pack(dir: &Path, seed: u64, len: u64) -> (Store, Vec<u8>) {
    let image = distinct_blocks(seed, 8);
    {
        let store = open_store(dir);
        store
            .create_disk_snapshot("disk-1", "cut", &image[..], &[])
            .unwrap();
    }
    let pack = fs::OpenOptions::new()
        .write(true)
        .open(dir.join("packs").join("pack-00000001.dat"))
        .unwrap();
    pack.set_len(len).unwrap();
    drop(pack);
    (open_store(dir), image)
}

#[test]
fn create_after_short_pack_stores_blocks_again() {
    let dir = tempfile::tempdir().unwrap();
    // Only the first block is still in the pack.
    let (store, image) = store_with_short_pack(dir.path(), 5, BLOCK as u64);

    // A create with a changed-block list would take unread blocks from the
    // damaged parent, so it is refused and points at a full create.
    let error = store
        .create_disk_snapshot_incremental(
            "disk-1",
            "partial",
            "cut",
            &[0],
            std::io::Cursor::new(&image),
            &[],
        )
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OperationFailure, "{error}");
    assert!(
        error.message().contains("without a changed-block list"),
        "{error}"
    );

    store
        .create_disk_snapshot("disk-1", "again", &image[..], &[])
        .unwrap();
    assert_restores(&store, "again", &image);
    assert_restores(&store, "cut", &image);
    assert_verify_clean(&store);

    // Every block that stays now lies within what the file still holds, so a
    // repair ends the pack's record there and the pack is whole again.
    let repair = store.repair().unwrap();
    assert!(repair.is_fully_repaired(), "{repair:?}");
    assert_eq!(repair.pack_records_fixed, 1, "{repair:?}");
    store
        .create_disk_snapshot_incremental(
            "disk-1",
            "partial",
            "again",
            &[0],
            std::io::Cursor::new(&image),
            &[],
        )
        .unwrap();
    assert_restores(&store, "partial", &image);
    assert!(store.repair().unwrap().changed_nothing());
}

#[test]
fn short_pack_cut_mid_block_realigned() {
    let dir = tempfile::tempdir().unwrap();
    // The file keeps its first block and 100 bytes of the second.
    let (store, image) = store_with_short_pack(dir.path(), 6, BLOCK as u64 + 100);
    store
        .create_disk_snapshot("disk-1", "again", &image[..], &[])
        .unwrap();

    // The record ends at the last whole block, and the next writer call cuts
    // the partial one, so every later append starts on a block boundary.
    let repair = store.repair().unwrap();
    assert!(repair.is_fully_repaired(), "{repair:?}");
    assert_eq!(repair.pack_records_fixed, 1, "{repair:?}");
    let more = distinct_blocks(7, 3);
    store
        .create_disk_snapshot("disk-2", "more", &more[..], &[])
        .unwrap();
    for file in common::pack_files(dir.path()) {
        let len = fs::metadata(&file).unwrap().len();
        assert_eq!(len % BLOCK as u64, 0, "{} is {len} bytes", file.display());
    }
    assert_restores(&store, "cut", &image);
    assert_restores(&store, "more", &more);
    assert_verify_clean(&store);
}

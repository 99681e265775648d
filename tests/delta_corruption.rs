#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Damaged delta-page metadata: a flipped byte in a base page or a delta
//! record, a removed edge key or a removed base page. The store is closed, the
//! metadata is changed through sled directly, and the store is opened again.
//!
//! In every case the process must not panic or abort, and restores of the
//! damaged snapshots must fail with a corruption error. `verify` must report
//! the damage, and `repair` must succeed and leave every undamaged snapshot
//! restorable. Deleting a snapshot whose pages touch the damage must not leave
//! the store unable to open or to collect garbage.

mod common;

use std::path::Path;

use blocksnap::{ErrorKind, Store};
use common::{assert_bytes_equal, distinct_blocks, open_store, random_bytes, BLOCK};
use tempfile::TempDir;

/// Block hashes per page, as the store lays them out.
const PAGE: usize = 1024;

/// The images of the test store: `v0` and `v1` of disk-a, where `v1`'s page is
/// a delta based on `v0`'s, and `other` of disk-b, which shares nothing.
struct Images {
    v0: Vec<u8>,
    v1: Vec<u8>,
    other: Vec<u8>,
}

fn images() -> Images {
    let v0 = distinct_blocks(1, PAGE);
    let mut v1 = v0.clone();
    v1[7 * BLOCK..8 * BLOCK].copy_from_slice(&random_bytes(77, BLOCK));
    let other = distinct_blocks(2, PAGE);
    Images { v0, v1, other }
}

fn build(path: &Path, images: &Images) {
    let store = open_store(path);
    store
        .create_disk_snapshot("disk-a", "v0", &images.v0[..], &[])
        .unwrap();
    store
        .create_disk_snapshot("disk-a", "v1", &images.v1[..], &[])
        .unwrap();
    store
        .create_disk_snapshot("disk-b", "other", &images.other[..], &[])
        .unwrap();
}

/// Keys of one family tag, with their values.
fn family(db: &sled::Db, tag: u8) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.scan_prefix([tag])
        .map(|entry| {
            let (key, value) = entry.unwrap();
            (key.to_vec(), value.to_vec())
        })
        .collect()
}

/// Returns the only delta record as (key, value, base page hash bytes).
fn the_delta(db: &sled::Db) -> (Vec<u8>, Vec<u8>, [u8; 32]) {
    let deltas = family(db, b'D');
    assert_eq!(deltas.len(), 1, "the test store holds one delta page");
    let (key, value) = deltas.into_iter().next().unwrap();
    // A record is a version byte, then bincode: the base hash comes first.
    let base: [u8; 32] = value[1..33].try_into().unwrap();
    (key, value, base)
}

fn page_body_key(page: &[u8; 32]) -> Vec<u8> {
    let mut key = vec![b'P'];
    key.extend_from_slice(page);
    key
}

/// Builds the test store in a new temporary directory, then changes its
/// metadata with `change` while no store handle has it open.
fn damaged_store(change: impl FnOnce(&sled::Db)) -> (TempDir, Images) {
    let dir = tempfile::tempdir().unwrap();
    let images = images();
    build(dir.path(), &images);
    let db = common::open_metadata(dir.path());
    change(&db);
    db.flush().unwrap();
    (dir, images)
}

fn restore(store: &Store, name: &str) -> blocksnap::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    store
        .create_disk_from_snapshot(name, "restored-disk", &mut bytes)
        .map(|_| bytes)
}

fn assert_restores(store: &Store, name: &str, expected: &[u8]) {
    let bytes = restore(store, name).unwrap_or_else(|error| panic!("restore {name}: {error}"));
    assert_bytes_equal(&bytes, expected, name);
}

fn assert_corrupt(store: &Store, name: &str) {
    match restore(store, name) {
        Ok(_) => panic!("restore of damaged snapshot {name} succeeded"),
        Err(error) => assert_eq!(
            error.kind(),
            ErrorKind::Corruption,
            "restore {name}: {error}"
        ),
    }
}

/// Checks a store whose delta page of `v1` is damaged while its base page is
/// intact: `v0` restores and `v1` fails as corrupt, `verify` reports the
/// damage, and after `repair` both `v0` and `other` still restore.
fn assert_delta_damage_repaired(path: &Path, images: &Images) {
    let store = open_store(path);
    assert_restores(&store, "v0", &images.v0);
    assert_corrupt(&store, "v1");
    assert!(!store.verify().unwrap().is_clean());
    store.repair().unwrap();
    assert_restores(&store, "v0", &images.v0);
    assert_restores(&store, "other", &images.other);
}

/// Deletes `name`, then checks that the store still opens, that garbage
/// collection and `repair` finish, and that `other` restores throughout.
fn delete_and_reopen(path: &Path, images: &Images, name: &str) {
    {
        let store = open_store(path);
        let deleted = store.delete_disk_snapshot(name);
        eprintln!("delete {name}: {deleted:?}");
        assert_restores(&store, "other", &images.other);
    }
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_blocksnap"))
        .arg("--store")
        .arg(path)
        .args(["verify", "--repair"])
        .output()
        .unwrap();
    eprintln!(
        "blocksnap verify --repair: {}\n{}",
        cli.status,
        String::from_utf8_lossy(&cli.stderr)
    );
    let store = Store::open_with(
        path,
        blocksnap::StoreOptions {
            block_size: Some(common::BLOCK_SIZE),
            ..blocksnap::StoreOptions::default()
        },
    )
    .unwrap_or_else(|error| panic!("open after deleting damaged snapshot {name}: {error}"));
    let repaired = store
        .repair()
        .unwrap_or_else(|error| panic!("repair after deleting {name}: {error}"));
    eprintln!("repair: {repaired:?}");
    store
        .collect_garbage()
        .unwrap_or_else(|error| panic!("collect garbage after repair: {error}"));
    assert_restores(&store, "other", &images.other);
    store
        .create_disk_snapshot("disk-b", "after", &images.other[..], &[])
        .unwrap_or_else(|error| panic!("create after repair: {error}"));
    assert_restores(&store, "after", &images.other);
}

#[test]
fn flipped_base_page_byte() {
    let (dir, images) = damaged_store(|db| {
        let (_, _, base) = the_delta(db);
        let key = page_body_key(&base);
        let mut body = db.get(&key).unwrap().unwrap().to_vec();
        let middle = body.len() / 2;
        body[middle] ^= 0x40;
        db.insert(key, body).unwrap();
    });

    let store = open_store(dir.path());
    assert_corrupt(&store, "v0");
    assert_corrupt(&store, "v1");
    assert_restores(&store, "other", &images.other);
    let report = store.verify().unwrap();
    assert!(!report.is_clean(), "verify missed the damaged base page");
    let repaired = store.repair().unwrap();
    let damaged: Vec<&str> = repaired
        .damaged_snapshots
        .iter()
        .map(|snapshot| snapshot.snapshot_name.as_str())
        .collect();
    assert_eq!(damaged, ["v0", "v1"]);
    assert_restores(&store, "other", &images.other);
    drop(store);

    delete_and_reopen(dir.path(), &images, "v0");
}

#[test]
fn flipped_delta_change_byte() {
    // The last byte belongs to the hash of the last change.
    let (dir, images) = damaged_store(damage_delta_change);

    let store = open_store(dir.path());
    assert_restores(&store, "v0", &images.v0);
    assert_corrupt(&store, "v1");
    assert_restores(&store, "other", &images.other);
    assert!(!store.verify().unwrap().is_clean());
    let repaired = store.repair().unwrap();
    assert_restores(&store, "v0", &images.v0);
    assert_restores(&store, "other", &images.other);
    assert_eq!(repaired.damaged_snapshots.len(), 1, "{repaired:?}");
    drop(store);

    // Deleting the base's snapshot rebases the damaged delta page.
    delete_and_reopen(dir.path(), &images, "v0");
}

#[test]
fn truncated_delta_record() {
    let (dir, images) = damaged_store(|db| {
        let (key, mut value, _) = the_delta(db);
        value.truncate(value.len() - 5);
        db.insert(key, value).unwrap();
    });

    assert_delta_damage_repaired(dir.path(), &images);

    delete_and_reopen(dir.path(), &images, "v0");
}

#[test]
fn removed_base_page() {
    let (dir, images) = damaged_store(|db| {
        let (_, _, base) = the_delta(db);
        db.remove(page_body_key(&base)).unwrap().unwrap();
    });

    let store = open_store(dir.path());
    assert_corrupt(&store, "v0");
    assert_corrupt(&store, "v1");
    assert!(!store.verify().unwrap().is_clean());
    store.repair().unwrap();
    assert_restores(&store, "other", &images.other);
    drop(store);

    delete_and_reopen(dir.path(), &images, "v0");
}

#[test]
fn removed_edge_key() {
    let (dir, images) = damaged_store(|db| {
        let edges = family(db, b'e');
        assert_eq!(edges.len(), 1);
        db.remove(&edges[0].0).unwrap().unwrap();
    });

    let store = open_store(dir.path());
    // The edge is only needed when the base is freed.
    assert_restores(&store, "v0", &images.v0);
    assert_restores(&store, "v1", &images.v1);
    assert!(
        !store.verify().unwrap().is_clean(),
        "verify missed a missing edge"
    );
    let repaired = store.repair().unwrap();
    assert!(repaired.is_fully_repaired(), "{repaired:?}");
    common::assert_verify_clean(&store);
    store.delete_disk_snapshot("v0").unwrap();
    assert_restores(&store, "v1", &images.v1);
    common::assert_verify_clean(&store);
}

#[test]
fn delta_based_on_itself() {
    let (dir, images) = damaged_store(|db| {
        let (key, mut value, _) = the_delta(db);
        value[1..33].copy_from_slice(&key[1..33]);
        db.insert(key, value).unwrap();
    });

    assert_delta_damage_repaired(dir.path(), &images);
    delete_and_reopen(dir.path(), &images, "v1");
}

/// For comparison, without delta pages involved: a block record removed
/// under a snapshot that is then deleted.
#[test]
fn removed_block_record_then_delete() {
    // v1's own block 7 is named only by its delta page.
    let block = blocksnap::BlockHash::of(&images().v1[7 * BLOCK..8 * BLOCK]);
    let (dir, images) = damaged_store(|db| {
        let mut key = vec![b'b'];
        key.extend_from_slice(block.as_bytes());
        db.remove(key)
            .unwrap()
            .expect("block record of v1's block 7");
    });
    delete_and_reopen(dir.path(), &images, "v1");
}

/// Flips a byte in the only delta record, so that its page fails its hash.
fn damage_delta_change(db: &sled::Db) {
    let (key, mut value, _) = the_delta(db);
    let last = value.len() - 1;
    value[last] ^= 0x01;
    db.insert(key, value).unwrap();
}

/// Deletes the undamaged snapshot `v0`, whose page is the base of the damaged
/// delta page, so the rebase of the dependent fails. With the store still
/// open, repair must finish or clear the stuck collection.
#[test]
fn repair_after_failed_rebase() {
    let (dir, images) = damaged_store(damage_delta_change);

    let store = open_store(dir.path());
    let deleted = store.delete_disk_snapshot("v0");
    eprintln!("delete v0: {deleted:?}");
    let repaired = store.repair();
    assert!(repaired.is_ok(), "repair failed: {:?}", repaired.err());
    assert_restores(&store, "other", &images.other);
}

/// After the failed rebase above, a create stores `v0`'s page again while
/// the page still waits in the queue to be freed. Block counts must stay
/// right.
#[test]
fn create_reuses_page_awaiting_free() {
    let (dir, images) = damaged_store(damage_delta_change);

    let store = open_store(dir.path());
    let deleted = store.delete_disk_snapshot("v0");
    eprintln!("delete v0: {deleted:?}");
    store
        .create_disk_snapshot("disk-c", "c0", &images.v0[..], &[])
        .unwrap();
    assert_restores(&store, "c0", &images.v0);
    assert_restores(&store, "other", &images.other);
    let report = store.verify().unwrap();
    let miscounted: Vec<&String> = report
        .problems
        .iter()
        .filter(|problem| problem.contains("has count"))
        .collect();
    assert_eq!(
        report.refcount_mismatches,
        0,
        "{} miscounted, such as {:?}",
        report.refcount_mismatches,
        miscounted.first()
    );
}

const ENV_CHILD_STORE: &str = "BLOCKSNAP_DELTA_CORRUPTION_CHILD_STORE";
const ENV_CHILD_CALL: &str = "BLOCKSNAP_DELTA_CORRUPTION_CHILD_CALL";

/// Sets the entry count of the only delta record to `u32::MAX`. The record
/// still decodes: the count is a bincode varint (251 and a `u16` for 1,024,
/// 252 and a `u32` for `u32::MAX`) right after the 32 bytes of the base hash.
fn set_huge_delta_len(db: &sled::Db) {
    let (key, value, _) = the_delta(db);
    assert_eq!(value[33..36], [251, 0x00, 0x04], "length 1,024 as a varint");
    let mut changed = value[..33].to_vec();
    changed.extend_from_slice(&[252, 0xFF, 0xFF, 0xFF, 0xFF]);
    changed.extend_from_slice(&value[36..]);
    db.insert(key, changed).unwrap();
}

/// Runs one call on the store named by the environment; only does something
/// when run as a child of `huge_delta_length`.
#[test]
fn huge_delta_length_child() {
    let (Ok(path), Ok(call)) = (
        std::env::var(ENV_CHILD_STORE),
        std::env::var(ENV_CHILD_CALL),
    ) else {
        return;
    };
    let store = open_store(Path::new(&path));
    match call.as_str() {
        "restore" => println!(
            "restore v1: {:?}",
            restore(&store, "v1").map(|bytes| bytes.len())
        ),
        "verify" => println!("verify: {:?}", store.verify().map(|report| report.problems)),
        "repair" => println!("repair: {:?}", store.repair().map(|report| report.problems)),
        other => panic!("unknown call {other}"),
    }
    println!("CHILD DONE");
}

/// A delta record whose entry count is `u32::MAX` must be reported as
/// corrupt by restore, verify and repair, not end the process while the
/// reader builds 4 billion entries. Each call runs in a child limited to
/// 8 GiB of address space.
#[test]
fn huge_delta_length() {
    let (dir, _images) = damaged_store(set_huge_delta_len);
    let mut failures = Vec::new();
    for call in ["restore", "verify", "repair"] {
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg("ulimit -v 8388608 && exec \"$0\" --exact huge_delta_length_child --nocapture")
            .arg(std::env::current_exe().unwrap())
            .env(ENV_CHILD_STORE, dir.path())
            .env(ENV_CHILD_CALL, call)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !(output.status.success() && stdout.contains("CHILD DONE")) {
            failures.push(format!(
                "{call}: the child ended with {}: {}",
                output.status,
                stderr.lines().next().unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Removes `v0`'s snapshot record but not its root entries. Repair removes
/// the orphan root entries, and `v0`'s page, which `v1`'s delta page is based
/// on, must be freed by rebasing `v1`'s page first.
#[test]
fn removed_snapshot_record_of_base() {
    let (dir, images) = damaged_store(|db| {
        db.remove(b"sv0").unwrap().expect("snapshot record of v0");
    });

    let store = open_store(dir.path());
    assert!(!store.verify().unwrap().is_clean());
    let repaired = store.repair().unwrap();
    assert!(repaired.is_fully_repaired(), "{repaired:?}");
    assert_eq!(repaired.orphan_root_entries_removed, 1, "{repaired:?}");
    assert_restores(&store, "v1", &images.v1);
    assert_restores(&store, "other", &images.other);
    common::assert_verify_clean(&store);
    assert_eq!(store.stats().unwrap().pages, 2);
}

//! Helpers shared by the integration tests: deterministic bytes, stores with
//! small blocks, restores into memory and store-wide checks.

// Each test crate compiles this module and uses only some of the helpers.
#![allow(dead_code)]

pub mod sandbox;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use blocksnap::{Store, StoreOptions};
use proptest::sample::Index;
use proptest::test_runner::Config as ProptestConfig;

/// Block size of the stores the tests open, the smallest a store accepts.
pub const BLOCK_SIZE: u32 = 4096;
/// [`BLOCK_SIZE`] as a length.
pub const BLOCK: usize = BLOCK_SIZE as usize;

/// Returns `len` pseudo-random bytes determined by `seed` (xorshift64*).
/// Different seeds give different streams, so blocks cut from them are
/// distinct with overwhelming probability.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    // Scramble the seed so that small neighbouring seeds start far apart. The
    // state of xorshift must never be zero.
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    if state == 0 {
        state = 1;
    }
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let word = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Returns an image of `blocks` full blocks, block `i` filled from seed
/// `seed * 1_000_003 + i`, so every block is distinct.
pub fn distinct_blocks(seed: u64, blocks: usize) -> Vec<u8> {
    let mut image = Vec::with_capacity(blocks * BLOCK);
    for index in 0..blocks as u64 {
        image.extend_from_slice(&random_bytes(seed * 1_000_003 + index, BLOCK));
    }
    image
}

/// Opens (creating if needed) a store with 4 KiB blocks at `path`.
pub fn open_store(path: &Path) -> Store {
    let options = StoreOptions {
        block_size: Some(BLOCK_SIZE),
        ..StoreOptions::default()
    };
    Store::open_with(path, options).expect("open a store with 4 KiB blocks")
}

/// Restores snapshot `name` into memory.
pub fn restore(store: &Store, name: &str) -> Vec<u8> {
    let mut restored = Vec::new();
    store
        .create_disk_from_snapshot(name, "restored-disk", &mut restored)
        .unwrap_or_else(|error| panic!("restore of snapshot {name:?} failed: {error}"));
    restored
}

/// Asserts that snapshot `name` restores to exactly `expected`, naming the
/// first differing byte instead of printing both images.
pub fn assert_restores(store: &Store, name: &str, expected: &[u8]) {
    let restored = restore(store, name);
    assert_bytes_equal(&restored, expected, &format!("snapshot {name:?}"));
}

/// Asserts `actual == expected` with a short message: the lengths, or the
/// offset and block index of the first difference.
pub fn assert_bytes_equal(actual: &[u8], expected: &[u8], what: &str) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: length {} differs from the expected {}",
        actual.len(),
        expected.len()
    );
    if let Some(offset) = actual.iter().zip(expected).position(|(a, b)| a != b) {
        panic!(
            "{what}: byte {offset} (block {} of {BLOCK} bytes) is {:#04x}, expected {:#04x}",
            offset / BLOCK,
            actual[offset],
            expected[offset]
        );
    }
}

/// Runs `verify` and fails with its problem list unless the store is clean.
pub fn assert_verify_clean(store: &Store) {
    let report = store.verify().expect("verify runs");
    assert!(
        report.is_clean(),
        "verify found problems: {report:?}\n{}",
        report.problems.join("\n")
    );
}

/// Counts every operation the store has recorded, following page tokens.
pub fn operation_count(store: &Store) -> usize {
    let mut count = 0;
    let mut token: Option<String> = None;
    loop {
        let page = store
            .get_operations(token.as_deref())
            .expect("list operations");
        count += page.items.len();
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => return count,
        }
    }
}

/// Bytes allocated on disk (`st_blocks` × 512) by `path` and everything
/// below it, so punched holes do not count. A missing path counts as 0.
pub fn allocated_bytes(path: &Path) -> u64 {
    let Ok(metadata) = fs::symlink_metadata(path) else {
        return 0;
    };
    let mut total = metadata.blocks() * 512;
    if metadata.is_dir() {
        for entry in fs::read_dir(path).expect("list a directory") {
            total += allocated_bytes(&entry.expect("read a directory entry").path());
        }
    }
    total
}

/// Bytes allocated by the pack files of the store at `store_path`, without
/// the `packs` directory itself.
pub fn pack_allocated_bytes(store_path: &Path) -> u64 {
    pack_files(store_path)
        .iter()
        .map(|path| allocated_bytes(path))
        .sum()
}

/// Paths of the pack files of the store at `store_path`.
pub fn pack_files(store_path: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = fs::read_dir(store_path.join("packs")) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|entry| entry.expect("read a directory entry").path())
        .collect();
    files.sort();
    files
}

/// Asserts that the store at `store_path` contains no snapshot, page, block or
/// pack file, as it must once every snapshot has been deleted.
pub fn assert_store_emptied(store: &Store, store_path: &Path) {
    let end = store.stats().expect("read the store's stats");
    assert_eq!((end.snapshots, end.pages, end.blocks), (0, 0, 0));
    assert!(
        pack_files(store_path).is_empty(),
        "pack files left after deleting everything"
    );
}

/// Returns the proptest configuration of the model tests: the number of cases
/// comes from `BLOCKSNAP_PROPTEST_CASES`, else `default_cases`, and shrunk
/// failures are not persisted.
pub fn proptest_config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("BLOCKSNAP_PROPTEST_CASES").map_or(default_cases, |value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("BLOCKSNAP_PROPTEST_CASES={value:?} is not a number"))
    });
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Returns a copy of `image` with zeros appended up to a whole number of
/// blocks, the form in which the store keeps a partial last block.
pub fn padded(image: &[u8]) -> Vec<u8> {
    let mut padded = image.to_vec();
    padded.resize(image.len().div_ceil(BLOCK) * BLOCK, 0);
    padded
}

/// Returns the name that `pick` selects among the keys of `snapshots`, or
/// `None` when there is no snapshot.
pub fn pick_snapshot<V>(snapshots: &BTreeMap<String, V>, pick: Index) -> Option<String> {
    if snapshots.is_empty() {
        return None;
    }
    snapshots.keys().nth(pick.index(snapshots.len())).cloned()
}

/// Deletes the snapshot that `pick` selects from both the store and
/// `snapshots`, a model's live snapshots, and does nothing when there is none.
pub fn delete_picked<V>(store: &Store, snapshots: &mut BTreeMap<String, V>, pick: Index) {
    if let Some(name) = pick_snapshot(snapshots, pick) {
        store
            .delete_disk_snapshot(&name)
            .unwrap_or_else(|error| panic!("delete {name}: {error}"));
        snapshots.remove(&name);
    }
}

/// Opens the sled database of the closed store at `path` directly, retrying
/// for up to 5 s while a store handle dropped a moment ago still holds its
/// lock (sled's I/O threads keep it until they finish).
pub fn open_metadata(path: &Path) -> sled::Db {
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new()
            .path(path.join("metadata"))
            .segment_size(4 << 20)
            .open()
        {
            Ok(db) => return db,
            Err(_) if started.elapsed() < std::time::Duration::from_secs(5) => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(error) => panic!("open the metadata of {} directly: {error}", path.display()),
        }
    }
}

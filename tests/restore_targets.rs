//! Restore targets that are not plain files, and targets inside the store:
//! a device keeps its node and gets every byte, and the store's own files can
//! never be overwritten by a restore.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::Cursor;
use std::os::unix::fs::FileTypeExt;

use std::path::{Path, PathBuf};

use blocksnap::{ErrorKind, Store};
use common::{open_store, BLOCK};

fn image(blocks: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; blocks * BLOCK];
    blake3::Hasher::new()
        .update(b"restore targets")
        .finalize_xof()
        .fill(&mut bytes[..BLOCK * blocks / 2]);
    bytes
}

/// Opens a store in `dir/store` with snapshot `snap` of an 8-block image,
/// and returns the store's directory, the store and the image.
fn store_with_snapshot(dir: &Path) -> (PathBuf, Store, Vec<u8>) {
    let store_dir = dir.join("store");
    let store = open_store(&store_dir);
    let bytes = image(8);
    store
        .create_disk_snapshot("disk", "snap", &bytes[..], &[])
        .unwrap();
    (store_dir, store, bytes)
}

/// Asserts that snapshot `snap` of `store` still restores to `bytes` and that
/// verify finds nothing wrong.
fn assert_store_intact(store: &Store, bytes: &[u8]) {
    let mut restored = Vec::new();
    store
        .create_disk_from_snapshot("snap", "copy", &mut restored)
        .unwrap();
    assert_eq!(restored, bytes);
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn restore_to_device_keeps_node() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("store"));
    store
        .create_disk_snapshot("disk", "snap", &image(8)[..], &[])
        .unwrap();

    let null = std::path::Path::new("/dev/null");
    store
        .create_disk_from_snapshot_to_file("snap", "copy", null, None)
        .unwrap();
    let kind = std::fs::metadata(null).unwrap().file_type();
    assert!(
        kind.is_char_device(),
        "/dev/null is still a character device"
    );
}

#[test]
fn restore_into_store_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (store_dir, store, bytes) = store_with_snapshot(dir.path());

    for target in [
        store_dir.join("packs/pack-00000001.dat"),
        store_dir.join("metadata/db"),
    ] {
        let error = store
            .create_disk_from_snapshot_to_file("snap", "copy", &target, None)
            .unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidInput,
            "{}: {error}",
            target.display()
        );
        assert!(
            error.message().contains("into the store's own directory"),
            "{error}"
        );
    }
    assert_store_intact(&store, &bytes);
}

#[test]
fn hard_link_to_store_file_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (store_dir, store, bytes) = store_with_snapshot(dir.path());

    for (own, link) in [
        ("packs/pack-00000001.dat", "pack-link"),
        ("metadata/db", "db-link"),
    ] {
        let own = store_dir.join(own);
        let link = dir.path().join(link);
        std::fs::hard_link(&own, &link).unwrap();
        let length = std::fs::metadata(&own).unwrap().len();
        let error = store
            .create_disk_from_snapshot_to_file("snap", "copy", &link, None)
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
        assert!(error.message().contains("under another name"), "{error}");
        assert_eq!(std::fs::metadata(&own).unwrap().len(), length);
    }
    assert_store_intact(&store, &bytes);
}

#[test]
fn links_and_binds_into_store_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (store_dir, store, bytes) = store_with_snapshot(dir.path());

    // A dangling symbolic link whose target would be a new file in packs/,
    // and one to a new file in metadata/.
    for (name, inside) in [
        ("dangling-pack", store_dir.join("packs/pack-00000009.dat")),
        ("dangling-meta", store_dir.join("metadata/extra")),
    ] {
        let link = dir.path().join(name);
        std::os::unix::fs::symlink(&inside, &link).unwrap();
        let error = store
            .create_disk_from_snapshot_to_file("snap", "copy", &link, None)
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
        assert!(!inside.exists(), "{} was created", inside.display());
    }
    // A symbolic link to the packs directory itself.
    let packs_link = dir.path().join("packs-link");
    std::os::unix::fs::symlink(store_dir.join("packs"), &packs_link).unwrap();
    let error = store
        .create_disk_from_snapshot_to_file("snap", "copy", &packs_link.join("new.img"), None)
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");

    // The store still opens: no file without a record appeared in packs/.
    drop(store);
    assert_store_intact(&open_store(&store_dir), &bytes);
}

/// A loop device backed by a pack writes into the store, so a restore to it
/// is rejected like a path inside the store. It needs root and a free loop
/// device, and prints why on stderr when it cannot get one.
#[test]
fn loop_device_on_pack_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (store_dir, store, bytes) = store_with_snapshot(dir.path());
    let pack = store_dir.join("packs").join("pack-00000001.dat");
    let attached = std::process::Command::new("losetup")
        .args(["--find", "--show"])
        .arg(&pack)
        .output();
    let device = match attached {
        Ok(output) if output.status.success() => {
            PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
        }
        other => {
            eprintln!(
                "skipped: cannot attach a loop device to {}: {other:?}",
                pack.display()
            );
            return;
        }
    };

    let restored = store.create_disk_from_snapshot_to_file("snap", "copy", &device, None);
    let detached = std::process::Command::new("losetup")
        .arg("--detach")
        .arg(&device)
        .status();
    let error = restored.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
    assert!(error.message().contains("pack-00000001.dat"), "{error}");
    assert!(
        detached.unwrap().success(),
        "{} stays attached",
        device.display()
    );
    assert_store_intact(&store, &bytes);
}

#[test]
fn incremental_long_tail_past_parent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let small = image(1);
    store
        .create_disk_snapshot("disk", "small", &small[..], &[])
        .unwrap();

    // 3,000 blocks past the parent's single block, none of them listed.
    let mut large = small.clone();
    large.extend(image(3000));
    store
        .create_disk_snapshot_incremental("disk", "large", "small", &[], Cursor::new(&large), &[])
        .unwrap();
    let mut restored = Vec::new();
    store
        .create_disk_from_snapshot("large", "copy", &mut restored)
        .unwrap();
    assert_eq!(restored, large);
    assert!(store.verify().unwrap().is_clean());
}

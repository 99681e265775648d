//! Restore targets that are not plain files, and targets inside the store:
//! a device keeps its node and gets every byte, and the store's own files can
//! never be overwritten by a restore.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::Cursor;
use std::os::unix::fs::FileTypeExt;

use blocksnap::ErrorKind;
use common::{open_store, BLOCK};

fn image(blocks: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; blocks * BLOCK];
    blake3::Hasher::new()
        .update(b"restore targets")
        .finalize_xof()
        .fill(&mut bytes[..BLOCK * blocks / 2]);
    bytes
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
    let store_dir = dir.path().join("store");
    let store = open_store(&store_dir);
    let bytes = image(8);
    store
        .create_disk_snapshot("disk", "snap", &bytes[..], &[])
        .unwrap();

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
    let mut restored = Vec::new();
    store
        .create_disk_from_snapshot("snap", "copy", &mut restored)
        .unwrap();
    assert_eq!(restored, bytes);
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn hard_link_to_store_file_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = open_store(&store_dir);
    let bytes = image(8);
    store
        .create_disk_snapshot("disk", "snap", &bytes[..], &[])
        .unwrap();

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
    let mut restored = Vec::new();
    store
        .create_disk_from_snapshot("snap", "copy", &mut restored)
        .unwrap();
    assert_eq!(restored, bytes);
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn links_and_binds_into_store_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = open_store(&store_dir);
    store
        .create_disk_snapshot("disk", "snap", &image(8)[..], &[])
        .unwrap();

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

    drop(store);
    let store = open_store(&store_dir);
    assert!(store.verify().unwrap().is_clean());
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

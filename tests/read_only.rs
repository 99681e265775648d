//! Read-only opening: every read works, every change is rejected before it
//! starts, and no byte under the store's directory changes, even when the
//! store contains work that a failed delete left undone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blocksnap::model::Tag;
use blocksnap::{ErrorKind, FaultInjector, PersistStep, Store, StoreOptions};

use common::sandbox::{assert_run_succeeded, create_args, restore_args, Sandbox};
use common::{assert_restores, distinct_blocks, open_store, random_bytes, BLOCK, BLOCK_SIZE};

/// Blocks in each test image.
const BLOCKS: usize = 48;

/// Length and blake3 hash of every file under `root`, by relative path, with
/// directories listed as such: a change to any byte, a new file or a removed
/// one changes the result.
fn fingerprint(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            if path.is_dir() {
                entries.insert(relative, "directory".to_owned());
                pending.push(path);
            } else {
                let bytes = fs::read(&path).unwrap();
                entries.insert(
                    relative,
                    format!("{} bytes, {}", bytes.len(), blake3::hash(&bytes)),
                );
            }
        }
    }
    entries
}

fn open_read_only(path: &Path) -> blocksnap::Result<Store> {
    Store::open_with(
        path,
        StoreOptions {
            read_only: true,
            ..StoreOptions::default()
        },
    )
}

/// `image` with blocks `indices` replaced by fresh bytes from `seed`.
fn with_blocks_changed(image: &[u8], indices: &[u64], seed: u64) -> Vec<u8> {
    let mut changed = image.to_vec();
    for &index in indices {
        let start = usize::try_from(index).unwrap() * BLOCK;
        changed[start..start + BLOCK].copy_from_slice(&random_bytes(seed + index, BLOCK));
    }
    changed
}

fn assert_rejected_as_read_only(result: blocksnap::Result<impl std::fmt::Debug>, call: &str) {
    let error = result.expect_err(call);
    assert_eq!(error.kind(), ErrorKind::OperationFailure, "{call}: {error}");
    assert!(
        error.message().contains("read-only"),
        "{call} should say the store is read-only: {error}"
    );
}

#[test]
fn handle_reads_all_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = distinct_blocks(1, BLOCKS);
    let changed_indices = [3, 17, 40];
    let second = with_blocks_changed(&first, &changed_indices, 500);
    let third = with_blocks_changed(&second, &[5], 900);
    {
        let store = open_store(dir.path());
        store
            .create_disk_snapshot("disk-a", "first", &first[..], &[])
            .unwrap();
        store
            .create_disk_snapshot_incremental(
                "disk-a",
                "second",
                "first",
                &changed_indices,
                Cursor::new(&second),
                &[],
            )
            .unwrap();
        store
            .create_disk_snapshot("disk-a", "third", &third[..], &[])
            .unwrap();
        store.delete_disk_snapshot("third").unwrap();
    }
    let before = fingerprint(dir.path());

    let store = open_read_only(dir.path()).unwrap();
    assert!(store.is_read_only());
    assert_eq!(store.block_size(), BLOCK_SIZE);
    let names: Vec<String> = store
        .get_disk_snapshots(None)
        .unwrap()
        .items
        .into_iter()
        .map(|snapshot| snapshot.name)
        .collect();
    assert_eq!(names, ["first", "second"]);
    assert_restores(&store, "first", &first);
    assert_restores(&store, "second", &second);
    assert_eq!(
        store.list_changed_blocks("first", "second").unwrap(),
        changed_indices
    );
    let block = store.read_block("second", 17).unwrap();
    assert_eq!(block.data, &second[17 * BLOCK..18 * BLOCK]);
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(
        store.get_disk_snapshot("third").unwrap_err().kind(),
        ErrorKind::NotFound
    );

    let tag = Tag {
        key: "team".to_owned(),
        value: Some("storage".to_owned()),
    };
    assert_rejected_as_read_only(
        store.create_disk_snapshot("disk-a", "fourth", &third[..], &[]),
        "create",
    );
    assert_rejected_as_read_only(
        store.create_disk_snapshot_incremental(
            "disk-a",
            "fourth",
            "second",
            &[5],
            Cursor::new(&third),
            &[],
        ),
        "incremental create",
    );
    assert_rejected_as_read_only(store.delete_disk_snapshot("first"), "delete");
    assert_rejected_as_read_only(store.tag_resource("first", &[tag]), "tag");
    assert_rejected_as_read_only(store.untag_resource("first", &["team".to_owned()]), "untag");
    assert_rejected_as_read_only(store.collect_garbage(), "collect_garbage");
    assert_rejected_as_read_only(store.repair(), "repair");
    assert_restores(&store, "first", &first);
    drop(store);

    assert_eq!(fingerprint(dir.path()), before);
    // The rejected calls changed nothing in the store either.
    let store = open_store(dir.path());
    assert_restores(&store, "first", &first);
    assert!(store.get_disk_snapshot("first").unwrap().tags.is_empty());
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn missing_store_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-store-here");
    let error = open_read_only(&path).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert!(error.message().contains("does not create"), "{error}");
    assert!(!path.exists());
}

#[test]
fn readers_share_and_exclude_writers() {
    let dir = tempfile::tempdir().unwrap();
    let image = distinct_blocks(2, BLOCKS);
    {
        let store = open_store(dir.path());
        store
            .create_disk_snapshot("disk-b", "only", &image[..], &[])
            .unwrap();
    }

    let reader = open_read_only(dir.path()).unwrap();
    let second_reader = open_read_only(dir.path()).unwrap();
    assert_restores(&second_reader, "only", &image);
    let error = Store::open(dir.path()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OperationFailure, "{error}");
    assert!(error.message().contains("in use"), "{error}");
    drop(second_reader);
    drop(reader);

    let writer = open_store(dir.path());
    let error = open_read_only(dir.path()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OperationFailure, "{error}");
    assert!(error.message().contains("in use"), "{error}");
    drop(writer);
    assert_restores(&open_read_only(dir.path()).unwrap(), "only", &image);
}

/// Fails every hole punch and pack truncation while armed, so that a delete
/// stops with its collection queued.
#[derive(Debug, Default)]
struct FailFreeing(AtomicBool);

impl FaultInjector for FailFreeing {
    fn before(&self, step: PersistStep) -> io::Result<()> {
        let freeing = matches!(step, PersistStep::HolePunch | PersistStep::PackTruncate);
        if freeing && self.0.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected failure"));
        }
        Ok(())
    }
}

#[test]
fn failed_delete_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let surviving_image = distinct_blocks(3, BLOCKS);
    let deleted = distinct_blocks(4, BLOCKS);
    let faults = Arc::new(FailFreeing::default());
    {
        let store = Store::open_with(
            dir.path(),
            StoreOptions {
                block_size: Some(BLOCK_SIZE),
                fault_injector: Some(Arc::clone(&faults) as Arc<dyn FaultInjector>),
                ..StoreOptions::default()
            },
        )
        .unwrap();
        store
            .create_disk_snapshot("disk-c", "kept", &surviving_image[..], &[])
            .unwrap();
        store
            .create_disk_snapshot("disk-c", "deleted", &deleted[..], &[])
            .unwrap();
        faults.0.store(true, Ordering::SeqCst);
        store.delete_disk_snapshot("deleted").unwrap_err();
    }
    let before = fingerprint(dir.path());

    let store = open_read_only(dir.path()).unwrap();
    assert_eq!(
        *store.recovery_report(),
        blocksnap::RecoveryReport::default()
    );
    assert_restores(&store, "kept", &surviving_image);
    assert_eq!(
        store.get_disk_snapshot("deleted").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // verify cannot finish the work, so it fails, twice, changing nothing.
    for _ in 0..2 {
        let error = store.verify().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::OperationFailure, "{error}");
        assert!(error.message().contains("left undone"), "{error}");
    }
    drop(store);
    assert_eq!(fingerprint(dir.path()), before);

    // A writable open still finds the queued work and finishes it.
    let store = open_store(dir.path());
    assert!(store.recovery_report().gc_steps_resumed > 0);
    assert_restores(&store, "kept", &surviving_image);
    assert!(store.verify().unwrap().is_clean());
}

/// Creates a FIFO at `path` with `mkfifo`.
fn make_fifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Waits up to 30 s for `child` to exit and returns its status. Kills it and
/// fails the test after that, naming `waiting_for`.
fn exit_within_deadline(child: &mut Child, waiting_for: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("{waiting_for}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn cli_restores_and_rejects_changes() {
    let sandbox = Sandbox::new();
    let store_dir = sandbox.store();
    let image = distinct_blocks(5, BLOCKS);
    let source = sandbox.write("image.bin", &image);
    let created = sandbox.run(&create_args("disk-d", "only", &source));
    assert_run_succeeded(&["create-disk-snapshot"], &created);
    let before = fingerprint(&store_dir);

    let target = sandbox.path("restored.bin");
    let mut args = vec!["--read-only"];
    args.extend(restore_args("only", "restored", &target));
    let restored = sandbox.run(&args);
    assert_run_succeeded(&args, &restored);
    assert!(fs::read(&target).unwrap() == image);

    let deleted = sandbox.run(&[
        "--read-only",
        "delete-disk-snapshot",
        "--disk-snapshot-name",
        "only",
    ]);
    assert_eq!(deleted.status.code(), Some(1), "{deleted:?}");
    let stderr = String::from_utf8_lossy(&deleted.stderr);
    assert!(stderr.contains("OperationFailureException"), "{stderr}");
    assert!(stderr.contains("read-only"), "{stderr}");

    // A FIFO source with no writer would block the open of the source, so the
    // rejection must come first.
    let fifo = sandbox.path("source-fifo");
    make_fifo(Path::new(&fifo));
    let mut args = vec!["--read-only"];
    args.extend(create_args("disk-d", "second", &fifo));
    let mut create = sandbox
        .command(&args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = exit_within_deadline(&mut create, "a read-only create waited on its FIFO source");
    assert_eq!(status.code(), Some(1));
    assert_eq!(fingerprint(&store_dir), before);
}

/// Lists the metadata copy directories in `tmp`.
fn copies_in(tmp: &Path) -> Vec<PathBuf> {
    fs::read_dir(tmp)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("blocksnap-read-only-"))
        })
        .collect()
}

/// Sets the modification time of `path` to two minutes ago, past the age
/// under which a copy directory is never taken for a leftover.
fn age(path: &Path) {
    let status = Command::new("touch")
        .args(["-d", "2 minutes ago"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn killed_session_copy_removed_later() {
    let sandbox = Sandbox::new();
    let tmp = sandbox.dir.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let image = distinct_blocks(6, BLOCKS);
    let created = sandbox.run(&create_args(
        "disk-e",
        "only",
        &sandbox.write("image.bin", &image),
    ));
    assert_run_succeeded(&["create-disk-snapshot"], &created);
    let read_only = |args: &[&str]| {
        let mut command = sandbox.command(&[&["--read-only"], args].concat());
        command.env("TMPDIR", &tmp);
        command
    };
    // A restore into a FIFO without a reader blocks after the open, so the
    // session and its copy stay until the process is killed.
    let fifo = sandbox.path("fifo");
    make_fifo(Path::new(&fifo));
    let mut session = read_only(&restore_args("only", "restored", &fifo))
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !copies_in(&tmp)
        .iter()
        .any(|copy| copy.join("owner.lock").exists())
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no copy appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let copy = copies_in(&tmp).remove(0);
    age(&copy);

    // A live session's copy stays, however old.
    let listed = read_only(&["get-disk-snapshots"]).output().unwrap();
    assert!(listed.status.success(), "{listed:?}");
    assert!(copy.exists());

    session.kill().unwrap();
    session.wait().unwrap();
    assert!(copy.exists(), "a killed process cannot remove its copy");
    let listed = read_only(&["get-disk-snapshots"]).output().unwrap();
    assert!(listed.status.success(), "{listed:?}");
    assert_eq!(copies_in(&tmp), Vec::<PathBuf>::new());
}

#[test]
fn symlinked_log_is_copied() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let image = distinct_blocks(7, BLOCKS);
    open_store(&store_dir)
        .create_disk_snapshot("disk-f", "only", &image[..], &[])
        .unwrap();
    let log = store_dir.join("metadata").join("db");
    let moved = dir.path().join("db-elsewhere");
    fs::rename(&log, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &log).unwrap();

    assert_restores(&open_read_only(&store_dir).unwrap(), "only", &image);
}

#[test]
fn unusable_tmpdir_is_named() {
    let sandbox = Sandbox::new();
    let source = sandbox.write("image.bin", &distinct_blocks(8, 4));
    let created = sandbox.run(&create_args("disk-g", "only", &source));
    assert_run_succeeded(&["create-disk-snapshot"], &created);
    let missing = sandbox.dir.path().join("no-such-tmp");

    let output = sandbox
        .command(&["--read-only", "get-disk-snapshots"])
        .env("TMPDIR", &missing)
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OperationFailureException"), "{stderr}");
    assert!(stderr.contains("Set TMPDIR"), "{stderr}");
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");
}

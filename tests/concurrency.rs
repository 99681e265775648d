#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Threads sharing one store: restores, creates and deletes at once see exact
//! data or a clear error, never wrong bytes. A second process that opens the
//! same store gets an error saying it is in use.

mod reliability;

use std::env;
use std::io::{self, Write};
use std::process::Command;
use std::sync::mpsc;
use std::sync::Barrier;
use std::time::Duration;

use blocksnap::{ErrorKind, Store};
use reliability::{
    assert_clean, assert_exact, image, open, restore, with_block_changed, Rng, BLOCK,
};

const ENV_IN_USE_DIR: &str = "BLOCKSNAP_IN_USE_DIR";
const ENV_IN_USE_EXPECT: &str = "BLOCKSNAP_IN_USE_EXPECT";

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

/// Snapshot `a` is deleted while other threads restore `b` (which shares most
/// of `a`'s blocks) and `c`, and create new snapshots from `a`'s and `b`'s
/// blocks. Every restore and every new snapshot is exact.
#[test]
fn restores_and_creates_during_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), None);
    for round in 0..3u64 {
        let a = image(100 + round, 1200);
        let mut b = with_block_changed(&a, 3, 1000 + round);
        b = with_block_changed(&b, 1100, 1100 + round);
        let c = image(200 + round, 300);
        let names = [
            format!("a-{round}"),
            format!("b-{round}"),
            format!("c-{round}"),
        ];
        store
            .create_disk_snapshot("disk-a", &names[0], &a[..], &[])
            .unwrap();
        store
            .create_disk_snapshot("disk-a", &names[1], &b[..], &[])
            .unwrap();
        store
            .create_disk_snapshot("disk-c", &names[2], &c[..], &[])
            .unwrap();
        // New images made of `a`'s blocks (freed by the delete unless the
        // create takes a reference first) and `b`'s.
        let mut from_a = a[..600 * BLOCK].to_vec();
        from_a.extend_from_slice(&image(300 + round, 10));
        let from_b = b[500 * BLOCK..].to_vec();

        let barrier = Barrier::new(4);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                barrier.wait();
                store.delete_disk_snapshot(&names[0]).unwrap();
            });
            scope.spawn(|| {
                barrier.wait();
                for _ in 0..3 {
                    assert_exact(&store, &names[1], &b, "restore of b during the delete");
                }
            });
            scope.spawn(|| {
                barrier.wait();
                for _ in 0..3 {
                    assert_exact(&store, &names[2], &c, "restore of c during the delete");
                }
            });
            scope.spawn(|| {
                barrier.wait();
                let first = format!("from-a-{round}");
                let second = format!("from-b-{round}");
                store
                    .create_disk_snapshot("disk-n", &first, &from_a[..], &[])
                    .unwrap();
                store
                    .create_disk_snapshot("disk-m", &second, &from_b[..], &[])
                    .unwrap();
                assert_exact(&store, &first, &from_a, "new snapshot from a's blocks");
                assert_exact(&store, &second, &from_b, "new snapshot from b's blocks");
            });
        });
        assert!(store.get_disk_snapshot(&names[0]).is_err());
        assert_exact(
            &store,
            &format!("from-a-{round}"),
            &from_a,
            "after the delete",
        );
        assert_clean(&store, "after the delete");
    }
}

/// A create whose blocks all exist in a snapshot that another thread is
/// deleting: whichever runs first, the new snapshot keeps every block.
#[test]
fn create_keeps_blocks_a_delete_frees() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), None);
    let mut rng = Rng::new(7);
    for round in 0..12u64 {
        let doomed = image(400 + round, 200);
        let mut reuse = doomed.clone();
        reuse.extend_from_slice(&image(500 + round, 5));
        let doomed_name = format!("doomed-{round}");
        let reuse_name = format!("reuse-{round}");
        store
            .create_disk_snapshot("disk-d", &doomed_name, &doomed[..], &[])
            .unwrap();
        let jitter = [
            Duration::from_micros(rng.below(2000)),
            Duration::from_micros(rng.below(2000)),
        ];
        let barrier = Barrier::new(2);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                barrier.wait();
                std::thread::sleep(jitter[0]);
                store.delete_disk_snapshot(&doomed_name).unwrap();
            });
            scope.spawn(|| {
                barrier.wait();
                std::thread::sleep(jitter[1]);
                store
                    .create_disk_snapshot("disk-r", &reuse_name, &reuse[..], &[])
                    .unwrap();
            });
        });
        assert_exact(&store, &reuse_name, &reuse, &format!("round {round}"));
    }
    assert_clean(&store, "after every round");
    // Only the new snapshots' blocks remain: 5 of every 7 blocks are data.
    let data_blocks = |blocks: u64| (0..blocks).filter(|index| index % 7 != 3).count() as u64;
    let stats = store.stats().unwrap();
    assert_eq!(
        stats.blocks,
        12 * (data_blocks(200) + data_blocks(5)),
        "{stats:?}"
    );
}

/// A restore target that pauses at its first write until the test resumes it,
/// and keeps the bytes written.
struct GatedTarget {
    written: Vec<u8>,
    started: Option<mpsc::Sender<()>>,
    resume: mpsc::Receiver<()>,
}

impl Write for GatedTarget {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if let Some(started) = self.started.take() {
            started.send(()).unwrap();
            self.resume.recv().unwrap();
        }
        self.written.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Checks a restore that raced a delete: it finished exact, or it failed with
/// `NotFoundException` after writing only a correct prefix.
fn check_raced_restore(result: blocksnap::Result<()>, written: &[u8], image: &[u8], context: &str) {
    match result {
        Ok(()) => assert!(
            written == image,
            "{context}: a finished restore is not exact"
        ),
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::NotFound, "{context}: {error}");
            assert!(error.message().contains("deleted"), "{context}: {error}");
            assert!(written.len() <= image.len(), "{context}: wrote too much");
            assert!(
                written == &image[..written.len()],
                "{context}: the bytes written before the error are wrong"
            );
        }
    }
}

/// The snapshot is deleted while its restore is paused after the first
/// batch: the restore then fails with `NotFoundException`, and every byte it
/// wrote before is correct.
#[test]
fn restore_paused_across_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), None);
    let victim = image(600, 2100);
    store
        .create_disk_snapshot("disk-v", "victim", &victim[..], &[])
        .unwrap();

    let (started_sender, started) = mpsc::channel();
    let (resume_sender, resume) = mpsc::channel();
    let mut target = GatedTarget {
        written: Vec::new(),
        started: Some(started_sender),
        resume,
    };
    let result = std::thread::scope(|scope| {
        let restore = scope.spawn(|| {
            store
                .create_disk_from_snapshot("victim", "disk-x", &mut target)
                .map(|_| ())
        });
        started.recv().unwrap();
        store.delete_disk_snapshot("victim").unwrap();
        resume_sender.send(()).unwrap();
        restore.join().unwrap()
    });
    let error = result.as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert!(
        !target.written.is_empty(),
        "the first batch was not written"
    );
    check_raced_restore(result, &target.written, &victim, "paused restore");
    assert_clean(&store, "after the paused restore");
}

/// Restores and deletes of the same snapshot race freely, many times: each
/// restore is exact or fails with `NotFoundException`, never wrong bytes.
#[test]
fn restore_racing_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), None);
    let mut rng = Rng::new(11);
    let mut outcomes = [0u32; 2];
    for round in 0..16u64 {
        let victim = image(700 + round, 1500);
        let name = format!("victim-{round}");
        store
            .create_disk_snapshot("disk-v", &name, &victim[..], &[])
            .unwrap();
        let delay = Duration::from_micros(rng.below(20_000));
        let barrier = Barrier::new(2);
        let (result, written) = std::thread::scope(|scope| {
            let restore = scope.spawn(|| {
                barrier.wait();
                let mut written = Vec::new();
                let result = store
                    .create_disk_from_snapshot(&name, "disk-x", &mut written)
                    .map(|_| ());
                (result, written)
            });
            barrier.wait();
            std::thread::sleep(delay);
            store.delete_disk_snapshot(&name).unwrap();
            restore.join().unwrap()
        });
        outcomes[usize::from(result.is_err())] += 1;
        check_raced_restore(
            result,
            &written,
            &victim,
            &format!("round {round}, delay {delay:?}"),
        );
    }
    println!(
        "restore racing delete: {} exact, {} not found",
        outcomes[0], outcomes[1]
    );
    assert_clean(&store, "after the races");
}

/// The child side of `second_process_is_rejected`: opens the store named by
/// the environment and reports. Does nothing when run on its own.
#[test]
fn in_use_child() {
    let Ok(dir) = env::var(ENV_IN_USE_DIR) else {
        return;
    };
    let expect_open = env::var(ENV_IN_USE_EXPECT).unwrap() == "open";
    match Store::open_with(&dir, reliability::options(None)) {
        Ok(store) => {
            assert!(expect_open, "a second process opened a store in use");
            assert_eq!(
                reliability::snapshot_names(&store),
                vec!["shared".to_owned()]
            );
            println!("CHILD OPENED");
        }
        Err(error) => {
            assert!(!expect_open, "open failed: {error}");
            assert_eq!(error.kind(), ErrorKind::OperationFailure, "{error}");
            assert!(error.message().contains("in use"), "{error}");
            // sled's cause prints the OS error in Rust's debug form, which
            // the CLI would show after the message.
            assert!(
                std::error::Error::source(&error).is_none(),
                "the in-use error carries sled's cause: {error:?}"
            );
            println!("CHILD IN USE: {error}");
        }
    }
}

fn run_in_use_child(dir: &std::path::Path, expect: &str) -> String {
    let output = Command::new(env::current_exe().unwrap())
        .args(["--exact", "in_use_child", "--nocapture", "--test-threads=1"])
        .env(ENV_IN_USE_DIR, dir)
        .env(ENV_IN_USE_EXPECT, expect)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "child failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A second process gets a clear "in use" error while this one has the store
/// open, and opens it once this one has closed it.
#[test]
fn second_process_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), None);
    let shared = image(800, 20);
    store
        .create_disk_snapshot("disk-s", "shared", &shared[..], &[])
        .unwrap();

    let stdout = run_in_use_child(dir.path(), "in-use");
    assert!(stdout.contains("CHILD IN USE"), "{stdout}");
    assert!(stdout.contains("is in use by another process"), "{stdout}");
    // The refused open changed nothing.
    assert_exact(&store, "shared", &shared, "after the refused open");
    assert_eq!(restore(&store, "shared").unwrap(), shared);

    drop(store);
    let stdout = run_in_use_child(dir.path(), "open");
    assert!(stdout.contains("CHILD OPENED"), "{stdout}");
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Crash harness: a child process runs a workload against a store and dies at
//! a chosen persistence step (or is killed at a random instant). The parent
//! then reopens the store and checks the guarantees:
//!
//! - every listed snapshot restores exactly;
//! - a snapshot whose create did not commit is absent and its bytes are
//!   reclaimed;
//! - a snapshot whose delete committed is absent, and its collection finished
//!   during the open;
//! - verify is clean, no operation is left `Started`, and a second collection
//!   pass and a second open find nothing to do.
//!
//! A second crash during the recovery itself, at each of its steps, must end
//! in the same state after the next open.
//!
//! Each crash is checked twice over. An abort keeps whatever the process had
//! written, and sled has by then written all but its last commits. A power
//! cut is modelled harsher: the metadata goes back to its state at the last
//! completed flush, while every hole punch, truncation and unlink stays done.
//! That is the case the commit-order rules exist for (see
//! `docs/reliability.md`). Pack bytes are never rolled back in either model.
//!
//! The child is this test binary run again with `--exact crash_child`, told
//! what to do through environment variables; without them `crash_child` does
//! nothing. `crash_random` runs seeded random crashes: `BLOCKSNAP_CRASH_SEED`
//! replays a seed and `BLOCKSNAP_CRASH_ITERATIONS` sets how many run.

mod reliability;

use std::collections::BTreeSet;
use std::env;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use blocksnap::model::{OperationStatus, OperationType};
use blocksnap::{PersistStep, RecoveryReport, Store, StoreOptions};
use reliability::{
    all_operations, assert_clean, assert_exact, assert_nothing_left, assert_space_reclaimed, image,
    open, pack_files, snapshot_names, with_block_changed, FaultPlan, Rng, BLOCK, EIO,
};

const ENV_DIR: &str = "BLOCKSNAP_CRASH_CHILD_DIR";
const ENV_WORKLOAD: &str = "BLOCKSNAP_CRASH_CHILD_WORKLOAD";
const ENV_PHASE: &str = "BLOCKSNAP_CRASH_CHILD_PHASE";
const ENV_CRASH: &str = "BLOCKSNAP_CRASH_CHILD_CRASH";
const ENV_LOSS: &str = "BLOCKSNAP_CRASH_CHILD_LOSS";

/// Random crashes run by default: enough for CI to stay well under two
/// minutes for the whole file on 2 cores.
const DEFAULT_RANDOM_ITERATIONS: u64 = 30;

/// Occurrences tried per step: every one up to this many, else this many
/// spread from the first to the last.
const EXHAUSTIVE_UP_TO: u64 = 12;

// ---------------------------------------------------------------------------
// Workloads

/// What the child does to the store, and what the parent may find after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// Create a two-page snapshot sharing blocks with a stored one.
    Create,
    /// Create the first snapshot of an empty store (its pack is new).
    CreateFresh,
    /// Delete `snap-a`; `snap-b` shares all but one of its blocks.
    Delete,
    /// Delete the only snapshot, so its pack is emptied and unlinked.
    DeleteLast,
    /// Delete 4 of 5 snapshots while every hole punch fails, then crash: the
    /// snapshots are gone and no block is freed yet.
    DeleteFourOfFive,
    /// Delete `snap-a` while punches fail, so its collection stays queued,
    /// then create `snap-c` from the same blocks plus new ones.
    CreateWhileGcQueued,
    /// Creates and deletes in turn, for the random runs.
    Mixed,
}

const WORKLOADS: &[Workload] = &[
    Workload::Create,
    Workload::CreateFresh,
    Workload::Delete,
    Workload::DeleteLast,
    Workload::DeleteFourOfFive,
    Workload::CreateWhileGcQueued,
    Workload::Mixed,
];

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::CreateFresh => "create-fresh",
            Workload::Delete => "delete",
            Workload::DeleteLast => "delete-last",
            Workload::DeleteFourOfFive => "delete-four-of-five",
            Workload::CreateWhileGcQueued => "create-while-gc-queued",
            Workload::Mixed => "mixed",
        }
    }

    fn from_name(name: &str) -> Workload {
        WORKLOADS
            .iter()
            .copied()
            .find(|workload| workload.name() == name)
            .unwrap_or_else(|| panic!("unknown workload {name:?}"))
    }

    /// Returns every snapshot the workload's store can hold, with its disk and
    /// image.
    fn catalog(self) -> Vec<(&'static str, &'static str, Vec<u8>)> {
        match self {
            Workload::Create => {
                let base = image(1, 600);
                let mut target = base[..300 * BLOCK].to_vec();
                target.extend_from_slice(&image(3, 1200));
                vec![
                    ("base", "disk-1", base),
                    ("other", "disk-2", image(2, 300)),
                    ("target", "disk-1", target),
                ]
            }
            Workload::CreateFresh => vec![("target", "disk-1", image(4, 1100))],
            Workload::Delete | Workload::CreateWhileGcQueued => {
                let a = image(10, 40);
                let b = with_block_changed(&a, 5, 501);
                let mut c = a.clone();
                c.extend_from_slice(&image(12, 1030));
                vec![
                    ("snap-a", "disk-1", a),
                    ("snap-b", "disk-1", b),
                    ("other", "disk-2", image(11, 30)),
                    ("snap-c", "disk-3", c),
                ]
            }
            Workload::DeleteLast => vec![("only", "disk-1", image(20, 60))],
            Workload::DeleteFourOfFive => {
                let mut versions = vec![image(30, 50)];
                for version in 1..5 {
                    let previous = versions[version - 1].clone();
                    let changed =
                        with_block_changed(&previous, version * 7 + 1, 3000 + version as u64);
                    versions.push(with_block_changed(
                        &changed,
                        version * 9,
                        3100 + version as u64,
                    ));
                }
                ["v1", "v2", "v3", "v4", "v5"]
                    .into_iter()
                    .zip(versions)
                    .map(|(name, image)| (name, "disk-1", image))
                    .collect()
            }
            Workload::Mixed => {
                let m1 = image(40, 300);
                let m2 = image(41, 200);
                let m3 = with_block_changed(&with_block_changed(&m1, 10, 4001), 200, 4002);
                let mut m4 = m2.clone();
                m4.extend_from_slice(&m1[..100 * BLOCK]);
                m4.extend_from_slice(&image(42, 50));
                let m5 = image(43, 1100);
                vec![
                    ("mix-1", "disk-1", m1),
                    ("mix-2", "disk-2", m2),
                    ("mix-3", "disk-1", m3),
                    ("mix-4", "disk-2", m4),
                    ("mix-5", "disk-3", m5),
                ]
            }
        }
    }

    /// Snapshots stored before the child starts.
    fn initial(self) -> &'static [&'static str] {
        match self {
            Workload::Create => &["base", "other"],
            Workload::CreateFresh => &[],
            Workload::Delete | Workload::CreateWhileGcQueued => &["snap-a", "snap-b", "other"],
            Workload::DeleteLast => &["only"],
            Workload::DeleteFourOfFive => &["v1", "v2", "v3", "v4", "v5"],
            Workload::Mixed => &["mix-1", "mix-2"],
        }
    }

    /// Snapshots that must be listed whatever the crash point.
    fn survivors(self) -> &'static [&'static str] {
        match self {
            Workload::Create => &["base", "other"],
            Workload::CreateFresh | Workload::DeleteLast => &[],
            Workload::Delete | Workload::CreateWhileGcQueued => &["snap-b", "other"],
            Workload::DeleteFourOfFive => &["v5"],
            Workload::Mixed => &["mix-2"],
        }
    }

    fn create(self, store: &Store, name: &str) {
        let (_, disk, image) = self
            .catalog()
            .into_iter()
            .find(|(candidate, _, _)| *candidate == name)
            .unwrap();
        store
            .create_disk_snapshot(disk, name, &image[..], &[])
            .unwrap();
    }

    /// Builds the store the child starts from.
    fn prepare(self, path: &Path) {
        let store = open(path, None);
        for name in self.initial() {
            self.create(&store, name);
        }
    }

    /// Runs the child's work. `plan` is the store's injector, for workloads
    /// that need failing steps of their own.
    fn run(self, store: &Store, plan: &FaultPlan) {
        match self {
            Workload::Create | Workload::CreateFresh => self.create(store, "target"),
            Workload::Delete => {
                store.delete_disk_snapshot("snap-a").unwrap();
            }
            Workload::DeleteLast => {
                store.delete_disk_snapshot("only").unwrap();
            }
            Workload::DeleteFourOfFive => {
                plan.fail_from(PersistStep::HolePunch, 1, EIO);
                for name in ["v1", "v2", "v3", "v4"] {
                    let error = store.delete_disk_snapshot(name).unwrap_err();
                    assert!(error.message().contains("Input/output error"), "{error}");
                }
                // The crash: every snapshot is gone, no block is freed yet.
                plan.refresh_durable_copy();
                std::process::abort();
            }
            Workload::CreateWhileGcQueued => {
                plan.fail_from(PersistStep::HolePunch, 1, EIO);
                store.delete_disk_snapshot("snap-a").unwrap_err();
                self.create(store, "snap-c");
            }
            Workload::Mixed => {
                self.create(store, "mix-3");
                store.delete_disk_snapshot("mix-1").unwrap();
                self.create(store, "mix-4");
                store.delete_disk_snapshot("mix-3").unwrap();
                self.create(store, "mix-5");
                store.delete_disk_snapshot("mix-4").unwrap();
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The child

/// Where the child dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// Never by itself (the parent may kill it).
    None,
    /// At occurrence `n` of `step`, counted from the start of the phase.
    At(PersistStep, u64),
    /// At the `n`th persistence step of any kind.
    AtAny(u64),
}

impl Crash {
    fn encode(self) -> String {
        match self {
            Crash::None => "none".to_owned(),
            Crash::At(step, n) => format!("{} {n}", step.name()),
            Crash::AtAny(n) => format!("any {n}"),
        }
    }

    fn decode(text: &str) -> Crash {
        let mut parts = text.split(' ');
        let (Some(kind), Some(n)) = (parts.next(), parts.next()) else {
            return Crash::None;
        };
        let n: u64 = n.parse().unwrap();
        if kind == "any" {
            return Crash::AtAny(n);
        }
        let step = PersistStep::ALL
            .iter()
            .copied()
            .find(|step| step.name() == kind)
            .unwrap_or_else(|| panic!("unknown step {kind:?}"));
        Crash::At(step, n)
    }

    fn arm(self, plan: &FaultPlan) {
        match self {
            Crash::None => {}
            Crash::At(step, n) => {
                plan.abort_at(step, n);
            }
            Crash::AtAny(n) => {
                plan.abort_at_any(n);
            }
        }
    }
}

/// What survives the crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// Everything the process wrote, as after `abort` or `SIGKILL`.
    Abort,
    /// Metadata as of the last completed flush; pack files as they are.
    PowerCut,
}

impl Loss {
    fn name(self) -> &'static str {
        match self {
            Loss::Abort => "abort",
            Loss::PowerCut => "power-cut",
        }
    }
}

/// Returns where the child keeps the metadata as of its last flush.
fn durable_copy_of(path: &Path) -> std::path::PathBuf {
    path.parent().unwrap().join("durable-metadata")
}

/// What the child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Open the store, then run the workload with the crash armed.
    Workload,
    /// Open the store with the crash armed: it dies inside recovery.
    Recover,
}

/// The child's entry point. Does nothing unless the harness set it up.
#[test]
fn crash_child() {
    let Ok(dir) = env::var(ENV_DIR) else {
        return;
    };
    let workload = Workload::from_name(&env::var(ENV_WORKLOAD).unwrap());
    let crash = Crash::decode(&env::var(ENV_CRASH).unwrap());
    let phase = env::var(ENV_PHASE).unwrap();
    let power_cut = env::var(ENV_LOSS).unwrap() == Loss::PowerCut.name();
    let plan = FaultPlan::new();
    let path = Path::new(&dir);
    if phase == "recover" {
        if power_cut {
            plan.keep_durable_copy(&path.join("metadata"), &durable_copy_of(path));
        }
        crash.arm(&plan);
        let _store = open(path, Some(&plan));
        println!("CHILD DONE");
        return;
    }
    let store = open(path, Some(&plan));
    plan.reset();
    if power_cut {
        plan.keep_durable_copy(&path.join("metadata"), &durable_copy_of(path));
    }
    crash.arm(&plan);
    println!("CHILD READY");
    io::stdout().flush().unwrap();
    workload.run(&store, &plan);
    println!("CHILD DONE");
}

/// How a child run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The child aborted or was killed.
    Crashed,
    /// The child finished its phase.
    Completed,
}

/// Runs the child on the store at `path`. With `kill_after`, kills it that
/// long after it reports that its workload started. After a crash, leaves the
/// store as `loss` describes.
fn run_child(
    path: &Path,
    workload: Workload,
    phase: Phase,
    crash: Crash,
    loss: Loss,
    kill_after: Option<Duration>,
) -> Ending {
    let mut child = Command::new(env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(ENV_DIR, path)
        .env(ENV_WORKLOAD, workload.name())
        .env(ENV_CRASH, crash.encode())
        .env(ENV_LOSS, loss.name())
        .env(
            ENV_PHASE,
            match phase {
                Phase::Workload => "workload",
                Phase::Recover => "recover",
            },
        )
        // A core dump, where the system writes one, lands in the temporary
        // directory and goes with it.
        .current_dir(path.parent().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut output = String::new();
    if let Some(delay) = kill_after {
        let mut line = String::new();
        while stdout.read_line(&mut line).unwrap() > 0 {
            output.push_str(&line);
            if line.contains("CHILD READY") {
                break;
            }
            line.clear();
        }
        std::thread::sleep(delay);
        // Killing a child that already exited is harmless: wait() still
        // returns its own exit status.
        let _ = child.kill();
    }
    stdout.read_to_string(&mut output).unwrap();
    let mut errors = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut errors)
        .unwrap();
    let status = child.wait().unwrap();

    if status.success() && output.contains("CHILD DONE") {
        return Ending::Completed;
    }
    // SIGABRT from the fault plan, SIGKILL from the parent.
    if matches!(status.signal(), Some(6 | 9)) {
        if loss == Loss::PowerCut {
            reliability::copy_dir(&durable_copy_of(path), &path.join("metadata"));
        }
        return Ending::Crashed;
    }
    panic!(
        "child {} {phase:?} {crash:?} failed with {status}\nstdout:\n{output}\nstderr:\n{errors}",
        workload.name()
    );
}

// ---------------------------------------------------------------------------
// The checks

/// Opens the crashed store without faults and checks every guarantee.
fn check_after_crash(path: &Path, workload: Workload, context: &str) {
    let catalog = workload.catalog();
    let store = open(path, None);
    let listed = snapshot_names(&store);
    for name in workload.survivors() {
        assert!(
            listed.iter().any(|listed| listed == name),
            "{context}: survivor {name} is missing"
        );
    }
    for name in &listed {
        let (_, _, image) = catalog
            .iter()
            .find(|(candidate, _, _)| candidate == name)
            .unwrap_or_else(|| panic!("{context}: unexpected snapshot {name}"));
        assert_exact(&store, name, image, context);
    }

    // Operations agree with what is listed: a committed delete's snapshot is
    // absent, a failed create's too, a succeeded create's is present unless
    // deleted later. No operation is left in flight.
    for operation in all_operations(&store) {
        if operation.resource_type != blocksnap::model::ResourceType::DiskSnapshot {
            continue;
        }
        assert_ne!(
            operation.status,
            OperationStatus::Started,
            "{context}: {operation:?}"
        );
        let name = &operation.resource_name;
        let is_listed = listed.contains(name);
        let deleted_later = all_operations(&store).iter().any(|later| {
            later.resource_name == *name
                && later.operation_type == OperationType::DeleteDiskSnapshot
                && later.created_at >= operation.created_at
        });
        match (operation.operation_type, operation.status) {
            (OperationType::DeleteDiskSnapshot, _) => {
                assert!(
                    !is_listed,
                    "{context}: {name} is listed after its delete committed"
                );
            }
            (OperationType::CreateDiskSnapshot, OperationStatus::Failed) => {
                assert!(
                    !is_listed,
                    "{context}: {name} is listed but its create failed"
                );
            }
            (OperationType::CreateDiskSnapshot, OperationStatus::Succeeded) => {
                assert!(
                    is_listed || deleted_later,
                    "{context}: {name} is missing but its create succeeded"
                );
            }
            _ => {}
        }
    }

    assert_clean(&store, context);
    assert_space_reclaimed(&store, path, context);
    let store = assert_nothing_left(store, path, context);
    assert_clean(&store, context);
}

/// Counts each step the workload takes, run in this process.
fn count_steps(workload: Workload) -> (FaultPlan, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    workload.prepare(&path);
    let plan = FaultPlan::new();
    let store = open(&path, Some(&plan));
    plan.reset();
    let started = Instant::now();
    if workload == Workload::DeleteFourOfFive {
        // Its run ends in an abort; count everything before it.
        plan.fail_from(PersistStep::HolePunch, 1, EIO);
        for name in ["v1", "v2", "v3", "v4"] {
            store.delete_disk_snapshot(name).unwrap_err();
        }
        plan.clear();
    } else {
        workload.run(&store, &plan);
        plan.clear();
    }
    (plan, started.elapsed())
}

/// Returns the occurrences of a step seen `count` times that a sweep crashes
/// at.
fn occurrences(count: u64) -> Vec<u64> {
    if count <= EXHAUSTIVE_UP_TO {
        return (1..=count).collect();
    }
    let spread =
        (0..EXHAUSTIVE_UP_TO - 2).map(|index| 1 + index * (count - 1) / (EXHAUSTIVE_UP_TO - 3));
    spread
        .chain([2, count - 1])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Crashes the workload at `crash`, then checks. With `recovery_crash`, a
/// second child dies inside the recovery before the check.
fn crash_case(workload: Workload, crash: Crash, recovery_crash: Option<u64>, loss: Loss) -> Ending {
    let context = format!(
        "{} crashed ({}) at {crash:?}, recovery crash {recovery_crash:?}",
        workload.name(),
        loss.name()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    workload.prepare(&path);
    let ending = run_child(&path, workload, Phase::Workload, crash, loss, None);
    if let Some(k) = recovery_crash {
        run_child(&path, workload, Phase::Recover, Crash::AtAny(k), loss, None);
    }
    check_after_crash(&path, workload, &context);
    ending
}

/// Crashes the workload at every step it takes (a spread of occurrences for
/// frequent steps) and checks each time. Returns the number of crashes.
fn sweep(workload: Workload, required: &[PersistStep]) -> u64 {
    let (plan, _) = count_steps(workload);
    let counts = plan.counts();
    for step in required {
        assert!(
            counts.get(step).copied().unwrap_or(0) > 0,
            "{} takes no {step} step: {counts:?}",
            workload.name()
        );
    }
    let mut crashes = 0;
    for step in PersistStep::ALL {
        for n in occurrences(counts.get(step).copied().unwrap_or(0)) {
            for loss in [Loss::Abort, Loss::PowerCut] {
                let ending = crash_case(workload, Crash::At(*step, n), None, loss);
                assert_eq!(
                    ending,
                    Ending::Crashed,
                    "{} did not reach {step} {n}",
                    workload.name()
                );
                crashes += 1;
            }
        }
    }
    println!(
        "{}: {crashes} crash points over {counts:?}",
        workload.name()
    );
    crashes
}

/// Crashes the workload at `first`, then crashes the recovery at each of its
/// steps in turn. Returns the number of recovery crashes.
fn sweep_recovery(workload: Workload, first: Crash, loss: Loss) -> u64 {
    // How many steps the recovery takes after this crash.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    workload.prepare(&path);
    run_child(&path, workload, Phase::Workload, first, loss, None);
    let plan = FaultPlan::new();
    plan.record();
    drop(open(&path, Some(&plan)));
    let trace = plan.trace();
    assert!(
        !trace.is_empty(),
        "{} crashed at {first:?} left no recovery work",
        workload.name()
    );

    let steps = trace.len() as u64;
    let points: Vec<u64> = if steps <= 2 * EXHAUSTIVE_UP_TO {
        (1..=steps).collect()
    } else {
        occurrences(steps)
    };
    for k in &points {
        crash_case(workload, first, Some(*k), loss);
    }
    let mut kinds: Vec<(PersistStep, usize)> = PersistStep::ALL
        .iter()
        .map(|kind| (*kind, trace.iter().filter(|step| *step == kind).count()))
        .filter(|(_, count)| *count > 0)
        .collect();
    kinds.sort_by_key(|(kind, _)| kind.name());
    println!(
        "{} crashed ({}) at {first:?}: recovery of {steps} steps {kinds:?}, crashed at steps {points:?}",
        workload.name(),
        loss.name()
    );
    points.len() as u64
}

// ---------------------------------------------------------------------------
// Sweeps over every step

#[test]
fn crash_every_step_of_create() {
    sweep(
        Workload::Create,
        &[
            PersistStep::PackAppend,
            PersistStep::PackSync,
            PersistStep::MetadataCommit,
            PersistStep::MetadataFlush,
        ],
    );
    sweep(
        Workload::CreateFresh,
        &[
            PersistStep::PackAppend,
            PersistStep::PackSync,
            PersistStep::MetadataCommit,
            PersistStep::MetadataFlush,
        ],
    );
}

#[test]
fn crash_every_step_of_delete() {
    // The last snapshot's pack ends up with no live block, so the delete cuts
    // the whole file instead of punching holes; `Workload::Delete` punches.
    sweep(
        Workload::DeleteLast,
        &[
            PersistStep::MetadataCommit,
            PersistStep::MetadataFlush,
            PersistStep::PackTruncate,
            PersistStep::PackUnlink,
        ],
    );
}

/// Field case: deleting `snap-a`, of which `snap-b` shares all but one block,
/// crashed at every durable step in turn: `snap-a` is whole or gone and
/// `snap-b` exact every time.
#[test]
fn crash_delete_with_shared_blocks() {
    sweep(
        Workload::Delete,
        &[
            PersistStep::MetadataCommit,
            PersistStep::MetadataFlush,
            PersistStep::HolePunch,
            PersistStep::PackSync,
        ],
    );
}

/// Crashes during the recovery of a crashed create, delete and rollback, at
/// every step the recovery takes.
#[test]
fn crash_during_recovery() {
    let mut crashes = 0;
    for loss in [Loss::Abort, Loss::PowerCut] {
        // Uncommitted appends to cut and committed pages to collect.
        crashes += sweep_recovery(
            Workload::Create,
            Crash::At(PersistStep::PackAppend, 1029),
            loss,
        );
        // A new pack to empty and unlink.
        crashes += sweep_recovery(
            Workload::CreateFresh,
            Crash::At(PersistStep::PackSync, 1),
            loss,
        );
        // A delete whose collection had just started to free space.
        crashes += sweep_recovery(
            Workload::DeleteLast,
            Crash::At(PersistStep::PackTruncate, 1),
            loss,
        );
        // Four deletes' collections queued at once.
        crashes += sweep_recovery(Workload::DeleteFourOfFive, Crash::None, loss);
    }
    println!("recovery: {crashes} second crashes");
}

// ---------------------------------------------------------------------------
// Field cases

/// Five versions of a disk; four are deleted while every punch fails, then
/// the process dies. After reopening nothing is leaked, the survivor is
/// exact, and a second collection does nothing.
#[test]
fn crash_after_deleting_four_of_five() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let workload = Workload::DeleteFourOfFive;
    workload.prepare(&path);
    let blocks_before = open(&path, None).stats().unwrap().blocks;
    let ending = run_child(
        &path,
        workload,
        Phase::Workload,
        Crash::None,
        Loss::PowerCut,
        None,
    );
    assert_eq!(ending, Ending::Crashed);

    let store = open(&path, None);
    let report = store.recovery_report().clone();
    assert!(report.gc_steps_resumed > 0, "{report:?}");
    assert_eq!(snapshot_names(&store), vec!["v5".to_owned()]);
    let catalog = workload.catalog();
    assert_exact(&store, "v5", &catalog[4].2, "four of five");
    let stats = store.stats().unwrap();
    assert!(stats.blocks < blocks_before, "{stats:?}");
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.leaked_blocks, 0);
    for operation in all_operations(&store) {
        if operation.operation_type == OperationType::DeleteDiskSnapshot {
            assert_eq!(operation.status, OperationStatus::Failed, "{operation:?}");
        }
    }
    assert_space_reclaimed(&store, &path, "four of five");
    assert_eq!(store.collect_garbage().unwrap(), RecoveryReport::default());
    drop(store);
    check_after_crash(&path, workload, "four of five");
}

/// Field case: a delete's collection is still queued (its punches failed)
/// while a create stores the very blocks it is freeing, plus a page's worth
/// more. The create commits exact, and the queued collection then frees only
/// the old copies. Crashing that create at any step also ends consistent.
#[test]
fn create_while_gc_queued() {
    // Without a crash.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let workload = Workload::CreateWhileGcQueued;
    workload.prepare(&path);
    let plan = FaultPlan::new();
    let store = open(&path, Some(&plan));
    workload.run(&store, &plan);
    let catalog = workload.catalog();
    assert_exact(&store, "snap-c", &catalog[3].2, "create while GC queued");
    plan.clear();
    let finished = store.collect_garbage().unwrap();
    assert!(finished.gc_steps_resumed > 0, "{finished:?}");
    assert_exact(&store, "snap-c", &catalog[3].2, "after the queued GC");
    assert_exact(&store, "snap-b", &catalog[1].2, "after the queued GC");
    assert_clean(&store, "after the queued GC");
    drop(store);
    check_after_crash(&path, workload, "create while GC queued");

    // Crashed at every step of the create.
    let (plan, _) = count_steps(workload);
    let mut crashes = 0;
    for step in [
        PersistStep::PackAppend,
        PersistStep::MetadataCommit,
        PersistStep::MetadataFlush,
        PersistStep::PackSync,
    ] {
        for n in occurrences(plan.count(step)) {
            for loss in [Loss::Abort, Loss::PowerCut] {
                crash_case(workload, Crash::At(step, n), None, loss);
                crashes += 1;
            }
        }
    }
    println!(
        "create while GC queued: {crashes} crash points over {:?}",
        plan.counts()
    );
}

/// A source of `len` bytes that are zero except for a few data blocks,
/// produced without allocating.
struct SparseSource {
    len: u64,
    position: u64,
    block_size: u64,
    /// (block index, seed) of each data block.
    data: Vec<(u64, u64)>,
}

impl SparseSource {
    fn new(len: u64, block_size: u64, data: &[(u64, u64)]) -> Self {
        SparseSource {
            len,
            position: 0,
            block_size,
            data: data.to_vec(),
        }
    }

    /// Returns the byte at `offset` of data block `seed`.
    fn data_byte(seed: u64, offset: u64) -> u8 {
        let mixed =
            (seed ^ offset.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        // Never zero, so a data block is never mistaken for a zero block.
        ((mixed >> 56) as u8) | 1
    }

    fn byte_at(&self, offset: u64) -> u8 {
        let block = offset / self.block_size;
        match self.data.iter().find(|(index, _)| *index == block) {
            Some((_, seed)) => Self::data_byte(*seed, offset % self.block_size),
            None => 0,
        }
    }

    /// Fills `buffer` with the bytes at `offset..`.
    fn fill(&self, offset: u64, buffer: &mut [u8]) {
        let first_block = offset / self.block_size;
        let last_block = (offset + buffer.len() as u64).div_ceil(self.block_size);
        buffer.fill(0);
        for (index, _) in &self.data {
            if (first_block..last_block).contains(index) {
                for (at, byte) in buffer.iter_mut().enumerate() {
                    let position = offset + at as u64;
                    if position / self.block_size == *index {
                        *byte = self.byte_at(position);
                    }
                }
            }
        }
    }
}

impl Read for SparseSource {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let remaining = usize::try_from(self.len - self.position).unwrap_or(usize::MAX);
        let count = buffer.len().min(remaining);
        self.fill(self.position, &mut buffer[..count]);
        self.position += count as u64;
        Ok(count)
    }
}

/// A megabyte of zeros to compare restored zero runs with.
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

/// A restore target that compares every byte with a [`SparseSource`] and
/// keeps nothing.
struct CheckingTarget {
    expected: SparseSource,
    position: u64,
    scratch: Vec<u8>,
}

impl Write for CheckingTarget {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let block_size = self.expected.block_size;
        let first_block = self.position / block_size;
        let end_block = (self.position + bytes.len() as u64).div_ceil(block_size);
        let has_data = self
            .expected
            .data
            .iter()
            .any(|(index, _)| (first_block..end_block).contains(index));
        let matches = if has_data {
            self.scratch.resize(bytes.len(), 0);
            self.expected.fill(self.position, &mut self.scratch);
            self.scratch == bytes
        } else {
            // Comparing slices is a `memcmp`, many times faster than a loop
            // at the test profile's optimization level.
            bytes
                .chunks(ZEROS.len())
                .all(|chunk| chunk == &ZEROS[..chunk.len()])
        };
        if !matches {
            return Err(io::Error::other(format!(
                "restored bytes differ in {} bytes from offset {}",
                bytes.len(),
                self.position
            )));
        }
        self.position += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A sparse disk: snapshot name, disk name, length, and (block index, seed) of
/// its data blocks.
type SparseDisk = (&'static str, &'static str, u64, Vec<(u64, u64)>);

/// Field case: disks of several GiB that are almost all zeros, with lengths
/// past 4 GiB and not a multiple of the block size, in 1 MiB blocks. Nothing
/// overflows, every snapshot restores exactly, and deleting them all leaves
/// an empty store.
#[test]
fn huge_sparse_disks() {
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        block_size: Some(u32::try_from(MIB).unwrap()),
        ..StoreOptions::default()
    };
    let store = Store::open_with(dir.path(), options).unwrap();
    let long = 4 * GIB + MIB + 5;
    let last = long / MIB;
    let disks: [SparseDisk; 3] = [
        (
            "huge-1",
            "disk-1",
            long,
            vec![(0, 1), (2048, 2), (4095, 3), (last, 4)],
        ),
        (
            "huge-2",
            "disk-1",
            long,
            vec![(0, 1), (2048, 5), (4096, 6), (last, 4)],
        ),
        ("tail", "disk-2", GIB / 4 + 7, vec![(GIB / 4 / MIB, 7)]),
    ];
    let started = Instant::now();
    for (name, disk, len, data) in &disks {
        store
            .create_disk_snapshot(disk, name, SparseSource::new(*len, MIB, data), &[])
            .unwrap();
    }
    let created = started.elapsed();
    let stats = store.stats().unwrap();
    assert_eq!(stats.snapshots, 3);
    // Seven distinct data blocks: equal seeds give equal blocks.
    assert_eq!(stats.blocks, 7, "{stats:?}");
    assert_eq!(stats.logical_bytes, 2 * long + GIB / 4 + 7);
    assert_eq!(store.get_disk_snapshot("huge-1").unwrap().size_in_gb, 5);

    for (name, _, len, data) in &disks {
        let mut target = CheckingTarget {
            expected: SparseSource::new(*len, MIB, data),
            position: 0,
            scratch: Vec::new(),
        };
        store
            .create_disk_from_snapshot(name, "restored", &mut target)
            .unwrap_or_else(|error| panic!("restore of {name}: {error}"));
        assert_eq!(target.position, *len, "{name} restored short");
    }
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{report:?}");

    for (name, _, _, _) in &disks {
        store.delete_disk_snapshot(name).unwrap();
    }
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.snapshots, stats.pages, stats.blocks),
        (0, 0, 0),
        "{stats:?}"
    );
    assert!(pack_files(dir.path()).is_empty(), "packs left behind");
    assert_clean(&store, "huge sparse disks");
    println!(
        "huge sparse disks: {} GiB of sources created in {created:?}, all in {:?}",
        (2 * long + GIB / 4) / GIB,
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Random crashes

/// Seeded random crashes: a random workload, crashed at a random step or
/// killed after a random delay, sometimes crashed again during recovery.
#[test]
fn crash_random() {
    let seed = env::var("BLOCKSNAP_CRASH_SEED").map_or_else(
        |_| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            now.as_secs().wrapping_mul(1_000_000_007) ^ u64::from(now.subsec_nanos())
        },
        |text| text.parse().expect("BLOCKSNAP_CRASH_SEED is a number"),
    );
    let iterations =
        env::var("BLOCKSNAP_CRASH_ITERATIONS").map_or(DEFAULT_RANDOM_ITERATIONS, |text| {
            text.parse()
                .expect("BLOCKSNAP_CRASH_ITERATIONS is a number")
        });
    println!("crash_random: seed {seed}, {iterations} iterations (replay with BLOCKSNAP_CRASH_SEED={seed})");
    let mut rng = Rng::new(seed);

    // Step counts and durations of each workload, measured once.
    let profiles: Vec<(Workload, FaultPlan, Duration)> = WORKLOADS
        .iter()
        .map(|workload| {
            let (plan, elapsed) = count_steps(*workload);
            (*workload, plan, elapsed)
        })
        .collect();

    let (mut at_step, mut killed, mut completed, mut second, mut power_cuts) = (0, 0, 0, 0, 0);
    for iteration in 0..iterations {
        let (workload, plan, elapsed) =
            &profiles[usize::try_from(rng.below(profiles.len() as u64)).unwrap()];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        workload.prepare(&path);
        let (crash, kill_after) = if *workload != Workload::DeleteFourOfFive && rng.below(3) == 0 {
            // Kill at a random instant within (a little past) the workload.
            let window = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX / 2) * 3 / 2 + 1;
            (Crash::None, Some(Duration::from_micros(rng.below(window))))
        } else {
            let total = plan.any_count();
            (Crash::AtAny(1 + rng.below(total.max(1))), None)
        };
        // A kill leaves no flush record behind to roll back to.
        let loss = if kill_after.is_none() && rng.below(2) == 0 {
            Loss::PowerCut
        } else {
            Loss::Abort
        };
        let ending = run_child(&path, *workload, Phase::Workload, crash, loss, kill_after);
        let recovery_crash = (rng.below(3) == 0).then(|| 1 + rng.below(12));
        if let Some(k) = recovery_crash {
            if run_child(
                &path,
                *workload,
                Phase::Recover,
                Crash::AtAny(k),
                loss,
                None,
            ) == Ending::Crashed
            {
                second += 1;
            }
        }
        match (kill_after, ending) {
            (_, Ending::Completed) => completed += 1,
            (Some(_), Ending::Crashed) => killed += 1,
            (None, Ending::Crashed) => at_step += 1,
        }
        if loss == Loss::PowerCut {
            power_cuts += 1;
        }
        let context = format!(
            "seed {seed} iteration {iteration}: {} {crash:?} ({}) kill {kill_after:?} recovery crash {recovery_crash:?} ({ending:?})",
            workload.name(),
            loss.name()
        );
        check_after_crash(&path, *workload, &context);
    }
    println!(
        "crash_random: seed {seed}: {iterations} iterations, {at_step} crashed at a step, {killed} killed, \
         {completed} finished first, {power_cuts} as power cuts, {second} crashed again in recovery"
    );
}

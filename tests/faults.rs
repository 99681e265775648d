#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! I/O errors, a full disk and corrupt data, injected at every persistence step
//! of create, delete and garbage collection.
//!
//! Each case fails the Nth occurrence of one step with `ENOSPC` or `EIO`. It
//! checks that the call fails with `OperationFailureException` naming the
//! cause and that its operation ends `Failed` with `errorCode` and
//! `errorDetails`. No other snapshot may change, and the store must verify
//! clean with the space freed. Once the fault clears the work completes: a
//! retried create succeeds, and a failed delete's collection is finished by
//! the next writer call or open.

mod common;
mod reliability;

use std::collections::BTreeSet;
use std::path::Path;

use blocksnap::model::{OperationStatus, OperationType};
use blocksnap::{BlockHash, ErrorKind, PersistStep, RecoveryReport, RepairReport, Store};
use reliability::{
    all_operations, assert_clean, assert_exact, assert_failed, assert_none_started,
    assert_nothing_left, assert_space_reclaimed, image, open, operations_of, pack_files,
    with_block_changed, FaultPlan, BLOCK, EIO, ENOSPC,
};

/// Occurrences tried per step: every one up to this many, else a spread.
const EXHAUSTIVE_UP_TO: u64 = 12;

/// Returns the occurrences of a step seen `count` times that a sweep tries.
fn occurrences(count: u64) -> Vec<u64> {
    if count <= EXHAUSTIVE_UP_TO {
        return (1..=count).collect();
    }
    let picks = [
        1,
        2,
        3,
        count / 4,
        count / 2,
        count * 3 / 4,
        count - 1,
        count,
    ];
    picks
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Runs `call` with `faults` armed on `plan`, each fault as (step,
/// occurrence, errno) with occurrences counted from this call on. Returns
/// the call's result and the number of faults that fired, and disarms the
/// faults so that later calls succeed.
fn with_faults<T>(
    plan: &FaultPlan,
    faults: &[(PersistStep, u64, i32)],
    call: impl FnOnce() -> T,
) -> (T, u64) {
    plan.reset();
    for (step, n, errno) in faults {
        plan.fail_nth(*step, *n, *errno);
    }
    let result = call();
    let fired = plan.fired();
    plan.clear();
    (result, fired)
}

/// Returns the error of `result`, asserting that the call failed with
/// `OperationFailureException`, the kind an injected fault must give.
fn expect_operation_failure<T: std::fmt::Debug>(
    result: blocksnap::Result<T>,
    context: &str,
) -> blocksnap::Error {
    let error = result.expect_err(context);
    assert_eq!(
        error.kind(),
        ErrorKind::OperationFailure,
        "{context}: {error}"
    );
    error
}

/// The text a failure message must contain for `errno`.
fn cause_text(errno: i32) -> &'static str {
    match errno {
        ENOSPC => "file system is full",
        EIO => "Input/output error",
        _ => unreachable!("no cause text for errno {errno}"),
    }
}

// ---------------------------------------------------------------------------
// Create

/// The store a create runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CreateSetup {
    /// Two snapshots already stored; the new one shares 300 blocks with one.
    Shared,
    /// An empty store, so the create's rollback empties and unlinks its pack.
    Fresh,
}

struct CreateImages {
    base: Vec<u8>,
    other: Vec<u8>,
    /// 1,500 blocks: two pages, so a page commits before the source ends.
    target: Vec<u8>,
}

fn create_images() -> CreateImages {
    let base = image(1, 600);
    let other = image(2, 300);
    let mut target = base[..300 * BLOCK].to_vec();
    target.extend_from_slice(&image(3, 1200));
    CreateImages {
        base,
        other,
        target,
    }
}

fn prepare_create(
    path: &Path,
    plan: &FaultPlan,
    setup: CreateSetup,
    images: &CreateImages,
) -> Store {
    let store = open(path, Some(plan));
    if setup == CreateSetup::Shared {
        store
            .create_disk_snapshot("disk-1", "base", &images.base[..], &[])
            .unwrap();
        store
            .create_disk_snapshot("disk-2", "other", &images.other[..], &[])
            .unwrap();
    }
    store
}

fn assert_create_survivors(
    store: &Store,
    setup: CreateSetup,
    images: &CreateImages,
    context: &str,
) {
    if setup == CreateSetup::Shared {
        assert_exact(store, "base", &images.base, context);
        assert_exact(store, "other", &images.other, context);
    }
}

/// Counts each step of the target create, run with `faults`.
fn count_create_steps(setup: CreateSetup, faults: &[(PersistStep, u64)]) -> FaultPlan {
    let images = create_images();
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let store = prepare_create(dir.path(), &plan, setup, &images);
    plan.reset();
    for (step, n) in faults {
        plan.fail_nth(*step, *n, ENOSPC);
    }
    let _ = store.create_disk_snapshot("disk-1", "target", &images.target[..], &[]);
    plan
}

/// Runs the target create with `faults` (step, occurrence, errno) and checks
/// every guarantee. Returns false if no fault fired (the occurrence was past
/// the last one).
fn check_create_fault(setup: CreateSetup, faults: &[(PersistStep, u64, i32)]) -> bool {
    let context = format!("{setup:?} create, faults {faults:?}");
    let images = create_images();
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let store = prepare_create(dir.path(), &plan, setup, &images);
    let blocks_before = store.stats().unwrap().blocks;

    let (result, fired) = with_faults(&plan, faults, || {
        store.create_disk_snapshot("disk-1", "target", &images.target[..], &[])
    });
    if fired == 0 {
        result.unwrap_or_else(|error| panic!("{context}: create failed without a fault: {error}"));
        return false;
    }

    let error = expect_operation_failure(result, &context);
    let first_errno = faults[0].2;
    assert!(
        error.message().contains(cause_text(first_errno)) || faults.len() > 1,
        "{context}: the message does not name the cause: {error}"
    );
    // With one fault the rollback runs clean, so the operations are final now.
    if faults.len() == 1 {
        for operation in operations_of(&store, "target", OperationType::CreateDiskSnapshot) {
            assert_failed(&operation, "OperationFailureException", &context);
            let details = operation.error_details.as_deref().unwrap_or_default();
            assert!(
                details.contains(cause_text(first_errno)),
                "{context}: {details}"
            );
        }
    }

    // The next writer call (verify) finishes what a failed rollback left.
    assert_clean(&store, &context);
    assert_none_started(&store, &context);
    assert_eq!(
        store.get_disk_snapshot("target").unwrap_err().kind(),
        ErrorKind::NotFound,
        "{context}: the failed snapshot is listed"
    );
    assert_eq!(
        store.stats().unwrap().blocks,
        blocks_before,
        "{context}: blocks leaked"
    );
    assert_space_reclaimed(&store, dir.path(), &context);
    assert_create_survivors(&store, setup, &images, &context);

    // Retry after the fault cleared.
    store
        .create_disk_snapshot("disk-1", "target", &images.target[..], &[])
        .unwrap_or_else(|error| panic!("{context}: retry failed: {error}"));
    assert_exact(&store, "target", &images.target, &context);
    let store = assert_nothing_left(store, dir.path(), &context);
    assert_clean(&store, &context);
    assert_exact(&store, "target", &images.target, &context);
    assert_create_survivors(&store, setup, &images, &context);
    assert_space_reclaimed(&store, dir.path(), &context);
    true
}

/// Sweeps one fault over every step a clean create of `setup` takes.
fn sweep_create(setup: CreateSetup, steps: &[PersistStep]) {
    let counts = count_create_steps(setup, &[]).counts();
    let mut cases = 0;
    for step in steps {
        let count = counts.get(step).copied().unwrap_or(0);
        assert!(count > 0, "a {setup:?} create takes no {step} step");
        for n in occurrences(count) {
            assert!(check_create_fault(setup, &[(*step, n, ENOSPC)]));
            cases += 1;
        }
        assert!(check_create_fault(setup, &[(*step, 1, EIO)]));
        assert!(
            !check_create_fault(setup, &[(*step, count + 1, ENOSPC)]),
            "{step} occurrence {} failed although a clean create has {count}",
            count + 1
        );
        cases += 2;
    }
    println!("{setup:?} create: {cases} single-fault cases over {counts:?}");
}

#[test]
fn create_fault_data_steps() {
    sweep_create(
        CreateSetup::Shared,
        &[PersistStep::PackAppend, PersistStep::PackSync],
    );
}

#[test]
fn create_fault_metadata_steps() {
    sweep_create(
        CreateSetup::Shared,
        &[PersistStep::MetadataCommit, PersistStep::MetadataFlush],
    );
}

#[test]
fn create_fault_fresh_store() {
    sweep_create(
        CreateSetup::Fresh,
        &[
            PersistStep::PackAppend,
            PersistStep::PackSync,
            PersistStep::MetadataCommit,
            PersistStep::MetadataFlush,
        ],
    );
}

/// A second fault during the rollback of a failed create, at every step the
/// rollback takes: the create still fails cleanly and the store recovers on
/// the next call.
#[test]
fn create_fault_during_rollback() {
    let mut cases = 0;
    // The final pack sync fails after every page committed, so the rollback
    // collects committed pages; an append failing mid-page also leaves
    // uncommitted bytes to cut.
    for first in [(PersistStep::PackSync, 1), (PersistStep::PackAppend, 1100)] {
        let clean = count_create_steps(CreateSetup::Fresh, &[]).counts();
        let with_rollback = count_create_steps(CreateSetup::Fresh, &[first]).counts();
        for step in PersistStep::ALL {
            let before = clean.get(step).copied().unwrap_or(0);
            let total = with_rollback.get(step).copied().unwrap_or(0);
            let rollback: Vec<u64> = (1..=total).filter(|n| *n > before.min(total)).collect();
            let rollback = if rollback.len() as u64 > EXHAUSTIVE_UP_TO {
                occurrences(rollback.len() as u64)
                    .into_iter()
                    .map(|index| rollback[usize::try_from(index - 1).unwrap()])
                    .collect()
            } else {
                rollback
            };
            for n in rollback {
                let faults = [(first.0, first.1, ENOSPC), (*step, n, EIO)];
                check_create_fault(CreateSetup::Fresh, &faults);
                cases += 1;
            }
        }
        println!("rollback after {first:?}: {with_rollback:?}");
    }
    assert!(cases >= 10, "only {cases} rollback cases ran");
    println!("create rollback: {cases} double-fault cases");
}

/// A disk that stays full from the 100th append on: the create fails, and
/// succeeds once space is back.
#[test]
fn create_on_full_disk() {
    let images = create_images();
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let store = prepare_create(dir.path(), &plan, CreateSetup::Shared, &images);
    plan.reset();
    plan.fail_from(PersistStep::PackAppend, 100, ENOSPC);
    let error = store
        .create_disk_snapshot("disk-1", "target", &images.target[..], &[])
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OperationFailure);
    assert!(error.message().contains("file system is full"), "{error}");
    // Still full: a second attempt fails the same way and leaves nothing.
    let error = store
        .create_disk_snapshot("disk-1", "target", &images.target[..], &[])
        .unwrap_err();
    assert!(error.message().contains("file system is full"), "{error}");
    let failed = operations_of(&store, "target", OperationType::CreateDiskSnapshot);
    // One operation per attempt is on the snapshot, the other on the disk.
    assert_eq!(failed.len(), 2, "{failed:?}");
    for operation in &failed {
        assert_failed(operation, "OperationFailureException", "full disk");
    }
    plan.clear();
    assert_clean(&store, "full disk");
    assert_space_reclaimed(&store, dir.path(), "full disk");
    store
        .create_disk_snapshot("disk-1", "target", &images.target[..], &[])
        .unwrap();
    assert_exact(&store, "target", &images.target, "full disk");
    assert_create_survivors(&store, CreateSetup::Shared, &images, "full disk");
}

// ---------------------------------------------------------------------------
// Delete

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeleteSetup {
    /// Delete `a`; `b` shares all but three of its blocks, `c` is another disk.
    Shared,
    /// Delete the only snapshot, so its pack empties and is unlinked.
    Last,
}

/// How the test lets the store finish a failed delete's collection.
#[derive(Debug, Clone, Copy)]
enum Resume {
    CollectGarbage,
    NextCreate,
    Reopen,
}

struct DeleteImages {
    a: Vec<u8>,
    b: Vec<u8>,
    c: Vec<u8>,
}

fn delete_images() -> DeleteImages {
    let a = image(10, 40);
    let mut b = with_block_changed(&a, 5, 501);
    b = with_block_changed(&b, 12, 502);
    b = with_block_changed(&b, 20, 503);
    DeleteImages {
        a,
        b,
        c: image(11, 30),
    }
}

fn prepare_delete(
    path: &Path,
    plan: &FaultPlan,
    setup: DeleteSetup,
    images: &DeleteImages,
) -> Store {
    let store = open(path, Some(plan));
    store
        .create_disk_snapshot("disk-1", "snap-a", &images.a[..], &[])
        .unwrap();
    if setup == DeleteSetup::Shared {
        store
            .create_disk_snapshot("disk-1", "snap-b", &images.b[..], &[])
            .unwrap();
        store
            .create_disk_snapshot("disk-2", "snap-c", &images.c[..], &[])
            .unwrap();
    }
    store
}

fn assert_delete_survivors(
    store: &Store,
    setup: DeleteSetup,
    images: &DeleteImages,
    context: &str,
) {
    if setup == DeleteSetup::Shared {
        assert_exact(store, "snap-b", &images.b, context);
        assert_exact(store, "snap-c", &images.c, context);
    }
}

/// Counts the steps of a clean delete of `a`, and the blocks left after it.
fn count_delete_steps(setup: DeleteSetup) -> (FaultPlan, u64) {
    let images = delete_images();
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let store = prepare_delete(dir.path(), &plan, setup, &images);
    plan.reset();
    store.delete_disk_snapshot("snap-a").unwrap();
    let blocks = store.stats().unwrap().blocks;
    (plan, blocks)
}

/// Deletes `a` with `faults` and checks every guarantee. Returns false if no
/// fault fired.
fn check_delete_fault(
    setup: DeleteSetup,
    faults: &[(PersistStep, u64, i32)],
    blocks_after: u64,
    resume: Resume,
) -> bool {
    let context = format!("{setup:?} delete, faults {faults:?}, {resume:?}");
    let images = delete_images();
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let store = prepare_delete(dir.path(), &plan, setup, &images);

    let (result, fired) = with_faults(&plan, faults, || store.delete_disk_snapshot("snap-a"));
    if fired == 0 {
        let operations = result.unwrap_or_else(|error| panic!("{context}: {error}"));
        assert_eq!(
            operations[0].status,
            OperationStatus::Succeeded,
            "{context}"
        );
        return false;
    }

    let error = expect_operation_failure(result, &context);
    let errno = faults[0].2;
    assert!(
        error.message().contains(cause_text(errno)),
        "{context}: the message does not name the cause: {error}"
    );
    let operations = operations_of(&store, "snap-a", OperationType::DeleteDiskSnapshot);
    assert_eq!(operations.len(), 1, "{context}: {operations:?}");
    assert_failed(&operations[0], "OperationFailureException", &context);
    let details = operations[0].error_details.clone().unwrap_or_default();
    assert!(details.contains(cause_text(errno)), "{context}: {details}");
    let still_listed = store.get_disk_snapshot("snap-a").is_ok();
    if still_listed {
        // Only a failure of the first commit leaves the snapshot, whole.
        assert_exact(&store, "snap-a", &images.a, &context);
    }
    assert_delete_survivors(&store, setup, &images, &context);

    // The fault has cleared: the next writer call or open finishes the work.
    let store = match resume {
        Resume::CollectGarbage => {
            store.collect_garbage().unwrap();
            store
        }
        Resume::NextCreate => {
            store
                .create_disk_snapshot("disk-9", "later", &images.c[..BLOCK], &[])
                .unwrap();
            store.delete_disk_snapshot("later").unwrap();
            store
        }
        Resume::Reopen => {
            drop(store);
            open(dir.path(), None)
        }
    };
    if still_listed {
        store.delete_disk_snapshot("snap-a").unwrap();
    }
    assert!(
        store.get_disk_snapshot("snap-a").is_err(),
        "{context}: a is still listed"
    );
    assert_eq!(
        store.stats().unwrap().blocks,
        blocks_after,
        "{context}: blocks left"
    );
    assert_space_reclaimed(&store, dir.path(), &context);
    if setup == DeleteSetup::Last {
        assert!(
            pack_files(dir.path()).is_empty(),
            "{context}: the empty pack is still there"
        );
    }
    assert_clean(&store, &context);
    assert_none_started(&store, &context);
    // A recorded failure stays a failure.
    let first = operations_of(&store, "snap-a", OperationType::DeleteDiskSnapshot)
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(
        first.status,
        OperationStatus::Failed,
        "{context}: {first:?}"
    );

    let store = assert_nothing_left(store, dir.path(), &context);
    assert_clean(&store, &context);
    assert_delete_survivors(&store, setup, &images, &context);
    true
}

fn sweep_delete(setup: DeleteSetup) {
    let (plan, blocks_after) = count_delete_steps(setup);
    let counts = plan.counts();
    let resumes = [Resume::CollectGarbage, Resume::NextCreate, Resume::Reopen];
    let mut cases = 0;
    for step in PersistStep::ALL {
        let count = counts.get(step).copied().unwrap_or(0);
        for n in occurrences(count) {
            let resume = resumes[usize::try_from(cases).unwrap() % resumes.len()];
            assert!(check_delete_fault(
                setup,
                &[(*step, n, ENOSPC)],
                blocks_after,
                resume
            ));
            cases += 1;
        }
        if count > 0 {
            assert!(check_delete_fault(
                setup,
                &[(*step, 1, EIO)],
                blocks_after,
                Resume::Reopen
            ));
            assert!(!check_delete_fault(
                setup,
                &[(*step, count + 1, ENOSPC)],
                blocks_after,
                Resume::CollectGarbage
            ));
            cases += 2;
        }
    }
    println!("{setup:?} delete: {cases} single-fault cases over {counts:?}");
}

#[test]
fn delete_fault_shared_blocks() {
    let (plan, _) = count_delete_steps(DeleteSetup::Shared);
    for step in [
        PersistStep::MetadataCommit,
        PersistStep::MetadataFlush,
        PersistStep::HolePunch,
        PersistStep::PackSync,
    ] {
        assert!(plan.count(step) > 0, "a delete takes no {step} step");
    }
    sweep_delete(DeleteSetup::Shared);
}

#[test]
fn delete_fault_last_snapshot() {
    let (plan, _) = count_delete_steps(DeleteSetup::Last);
    for step in [PersistStep::PackTruncate, PersistStep::PackUnlink] {
        assert!(
            plan.count(step) > 0,
            "deleting the last snapshot takes no {step} step"
        );
    }
    sweep_delete(DeleteSetup::Last);
}

/// A crash after a pack with no live block is cut to zero bytes, but before
/// the removal of its record is durable, leaves an empty file and a record
/// that still gives the old length. The next open finishes the cut. It must
/// not count the pack as lost, which would reject incremental creates.
#[test]
fn interrupted_cut_is_not_lost() {
    let images = delete_images();

    // The commit that removes the record of the pack cut whole is the first
    // commit after the cut.
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let store = prepare_delete(dir.path(), &plan, DeleteSetup::Last, &images);
    plan.reset();
    plan.record();
    store.delete_disk_snapshot("snap-a").unwrap();
    let trace = plan.trace();
    let cut = trace
        .iter()
        .position(|step| *step == PersistStep::PackTruncate)
        .expect("deleting the last snapshot cuts its pack");
    let commits_before_cut = trace[..cut]
        .iter()
        .filter(|step| **step == PersistStep::MetadataCommit)
        .count() as u64;
    drop(store);

    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let store = prepare_delete(dir.path(), &plan, DeleteSetup::Last, &images);
    plan.reset();
    plan.fail_nth(PersistStep::MetadataCommit, commits_before_cut + 1, EIO);
    expect_operation_failure(store.delete_disk_snapshot("snap-a"), "the delete");
    drop(store);
    let packs = pack_files(dir.path());
    assert_eq!(packs.len(), 1, "the cut pack's file is still there");
    assert_eq!(std::fs::metadata(&packs[0]).unwrap().len(), 0);

    let store = open(dir.path(), None);
    store
        .create_disk_snapshot("disk-1", "snap-d", &images.b[..], &[])
        .unwrap();
    let changed = with_block_changed(&images.b, 7, 900);
    store
        .create_disk_snapshot_incremental(
            "disk-1",
            "snap-e",
            "snap-d",
            &[7],
            std::io::Cursor::new(&changed),
            &[],
        )
        .expect("an incremental create after the interrupted cut");
    assert_exact(&store, "snap-e", &changed, "after the interrupted cut");
    assert_clean(&store, "after the interrupted cut");
    assert!(
        !packs[0].exists(),
        "the open removed the file of the pack cut whole"
    );
}

/// The disk stays full while the delete fails and while it records the
/// failure. The operation stays `Started` then; once space is back the next
/// call finishes the collection and the operation ends `Succeeded`.
#[test]
fn delete_on_full_disk() {
    let images = delete_images();
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan::new();
    let store = prepare_delete(dir.path(), &plan, DeleteSetup::Shared, &images);
    let (_, blocks_after) = count_delete_steps(DeleteSetup::Shared);
    plan.reset();
    plan.fail_from(PersistStep::MetadataCommit, 2, ENOSPC);
    let error = store.delete_disk_snapshot("snap-a").unwrap_err();
    assert!(error.message().contains("file system is full"), "{error}");
    assert!(store.get_disk_snapshot("snap-a").is_err());
    let operations = operations_of(&store, "snap-a", OperationType::DeleteDiskSnapshot);
    assert_eq!(operations[0].status, OperationStatus::Started);
    // Still full: verify fails to finish the collection and reports it.
    // (Restores fail too meanwhile, as they record an operation.)
    assert_eq!(
        store.verify().unwrap_err().kind(),
        ErrorKind::OperationFailure
    );

    plan.clear();
    let finished = store.collect_garbage().unwrap();
    assert!(finished.gc_steps_resumed > 0, "{finished:?}");
    let operations = operations_of(&store, "snap-a", OperationType::DeleteDiskSnapshot);
    assert_eq!(
        operations[0].status,
        OperationStatus::Succeeded,
        "{operations:?}"
    );
    assert_eq!(store.stats().unwrap().blocks, blocks_after);
    assert_clean(&store, "full disk");
    assert_space_reclaimed(&store, dir.path(), "full disk");
    assert_delete_survivors(&store, DeleteSetup::Shared, &images, "full disk");
}

// ---------------------------------------------------------------------------
// Corruption

/// Flips one bit at `offset` of pack 1 of the store at `path`.
fn flip_pack_bit(path: &Path, offset: usize) {
    let pack = path.join("packs").join("pack-00000001.dat");
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[offset] ^= 0x10;
    std::fs::write(&pack, &bytes).unwrap();
}

/// A block whose bytes rot is never returned: restore names the snapshot and
/// block index, verify counts it, and repair names every snapshot it affects
/// while the others stay exact.
#[test]
fn corrupt_block_is_reported_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), None);
    // Block 2 of `first` is the first block stored, at offset 0 of pack 1.
    let shared = image(20, 1);
    let mut first = vec![0u8; 2 * BLOCK];
    first.extend_from_slice(&shared);
    first.extend_from_slice(&image(21, 3));
    let mut second = shared.clone();
    second.extend_from_slice(&image(22, 2));
    let bystander = image(23, 10);
    create_snapshots(
        &store,
        &[
            ("disk-1", "first", &first),
            ("disk-2", "second", &second),
            ("disk-3", "bystander", &bystander),
        ],
    );
    flip_pack_bit(dir.path(), 100);

    for (name, index) in [("first", 2), ("second", 0)] {
        let error = reliability::restore(&store, name).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Corruption, "{error}");
        assert!(error.message().contains(&format!("{name:?}")), "{error}");
        assert!(
            error.message().contains(&format!("block {index} ")),
            "{error}"
        );
    }
    let report = store.verify().unwrap();
    assert_eq!(report.corrupt_blocks, 1, "{report:?}");
    assert_eq!(report.missing_blocks, 0, "{report:?}");

    let repair = store.repair().unwrap();
    assert!(!repair.is_fully_repaired(), "{repair:?}");
    assert_eq!(repair.corrupt_blocks, 1, "{repair:?}");
    assert_eq!(repair.damaged_copies_marked, 1, "{repair:?}");
    assert_eq!(
        damaged_blocks(&repair),
        vec![
            ("first".to_owned(), vec![2]),
            ("second".to_owned(), vec![0])
        ],
        "{repair:?}"
    );
    assert_exact(&store, "bystander", &bystander, "corrupt block");
}

/// A repair marks a rotten copy, and the next create that reads the same
/// bytes stores them again: every snapshot that names the block restores
/// again, and the rotten copy is punched.
#[test]
fn create_after_repair_heals_corrupt_block() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), None);
    // The shared block is the first block stored, at offset 0 of pack 1.
    let shared = image(30, 1);
    let mut first = shared.clone();
    first.extend_from_slice(&image(31, 3));
    let mut second = image(32, 2);
    second.extend_from_slice(&shared);
    create_snapshots(
        &store,
        &[("disk-1", "first", &first), ("disk-2", "second", &second)],
    );
    flip_pack_bit(dir.path(), 100);

    // Without a repair, a create trusts the index and takes the rotten copy.
    store
        .create_disk_snapshot("disk-3", "trusting", &shared[..], &[])
        .unwrap();
    assert!(reliability::restore(&store, "trusting").is_err());
    store.delete_disk_snapshot("trusting").unwrap();

    let repair = store.repair().unwrap();
    assert_eq!(repair.corrupt_blocks, 1, "{repair:?}");
    assert_eq!(repair.damaged_copies_marked, 1, "{repair:?}");
    let again = store.repair().unwrap();
    assert_eq!(again.damaged_copies_marked, 0, "{again:?}");
    assert!(again.changed_nothing(), "{again:?}");

    // Until a create reads the block again, an incremental create, which
    // would take it from its parent unread, is rejected.
    let partial = store.create_disk_snapshot_incremental(
        "disk-1",
        "partial",
        "first",
        &[1],
        std::io::Cursor::new(&first),
        &[],
    );
    let error = partial.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OperationFailure, "{error}");
    assert!(error.message().contains("damaged"), "{error}");

    let allocated_before = reliability::pack_allocated_bytes(dir.path());
    store
        .create_disk_snapshot("disk-3", "healer", &shared[..], &[])
        .unwrap();
    for (name, expected) in [("first", &first), ("second", &second), ("healer", &shared)] {
        assert_exact(&store, name, expected, "after the healing create");
    }
    assert_clean(&store, "after the healing create");
    assert!(
        reliability::pack_allocated_bytes(dir.path()) <= allocated_before,
        "the rotten copy was not punched"
    );
    assert_space_reclaimed(&store, dir.path(), "after the healing create");

    // The create removed the mark, so a repair finds nothing to do.
    let after = store.repair().unwrap();
    assert!(after.is_fully_repaired(), "{after:?}");
    assert!(after.changed_nothing(), "{after:?}");
    let store = assert_nothing_left(store, dir.path(), "after the healing create");
    assert_exact(&store, "first", &first, "after a reopen");
    store
        .create_disk_snapshot_incremental(
            "disk-1",
            "partial",
            "first",
            &[1],
            std::io::Cursor::new(&first),
            &[],
        )
        .unwrap();
    assert_exact(&store, "partial", &first, "after the healing create");
}

/// Returns each snapshot that `report` lists as damaged, with the indices of
/// its lost blocks.
fn damaged_blocks(report: &RepairReport) -> Vec<(String, Vec<u64>)> {
    report
        .damaged_snapshots
        .iter()
        .map(|snapshot| {
            (
                snapshot.snapshot_name.clone(),
                snapshot.block_indices.clone(),
            )
        })
        .collect()
}

/// Creates each (disk, snapshot, image) of `snapshots` in order, so their
/// snapshot ids follow that order.
fn create_snapshots(store: &Store, snapshots: &[(&str, &str, &[u8])]) {
    for (disk, name, image) in snapshots {
        store
            .create_disk_snapshot(disk, name, *image, &[])
            .unwrap_or_else(|error| panic!("create {name}: {error}"));
    }
}

/// Opens the metadata database of the closed store at `path` directly,
/// changes it with `change` and flushes it. A store created by this build
/// has sled log segments of 4 MiB, and sled rejects any other segment size.
fn change_metadata(path: &Path, change: impl FnOnce(&sled::Db)) {
    let db = common::open_metadata(path);
    change(&db);
    db.flush().unwrap();
}

/// Root keys in key order: snapshot ids are allocated in creation order.
fn root_entries(db: &sled::Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.scan_prefix(b"r")
        .map(|entry| {
            let (key, value) = entry.unwrap();
            (key.to_vec(), value.to_vec())
        })
        .collect()
}

/// Counts that drifted, a snapshot whose record vanished and a stray root
/// entry: repair recounts, drops what no snapshot needs, frees its space, and
/// a second repair finds nothing.
#[test]
fn repair_fixes_counts_and_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let p = image(30, 30);
    let q = image(31, 30);
    let r = with_block_changed(&with_block_changed(&p, 4, 601), 9, 602);
    create_snapshots(
        &open(dir.path(), None),
        &[
            ("disk-1", "snap-p", &p),
            ("disk-2", "snap-q", &q),
            ("disk-1", "snap-r", &r),
        ],
    );
    let q_blocks = (0..30).filter(|index| index % 7 != 3).count() as u64;
    change_metadata(dir.path(), |db| {
        let roots = root_entries(db);
        assert_eq!(roots.len(), 3, "one page per snapshot");
        let p_page = roots[0].1.clone();
        // `q` loses its record: its root, page and blocks are left behind.
        db.remove(b"ssnap-q").unwrap().unwrap();
        // `p`'s page loses its count.
        let mut count_key = b"p".to_vec();
        count_key.extend_from_slice(&p_page);
        db.remove(&count_key).unwrap().unwrap();
        // A root entry of a snapshot that never existed.
        let mut stray = b"r".to_vec();
        stray.extend_from_slice(&999_999u64.to_be_bytes());
        stray.extend_from_slice(&0u64.to_be_bytes());
        db.insert(stray, p_page).unwrap();
    });

    let store = open(dir.path(), None);
    assert!(!store.verify().unwrap().is_clean());
    let report = store.repair().unwrap();
    assert!(report.is_fully_repaired(), "{report:?}");
    assert_eq!(report.orphan_root_entries_removed, 2, "{report:?}");
    assert_eq!(report.unreferenced_pages_removed, 1, "{report:?}");
    assert_eq!(report.page_counts_fixed, 1, "{report:?}");
    assert_eq!(report.leaked_blocks_removed, q_blocks, "{report:?}");
    assert_eq!(report.pack_records_fixed, 1, "{report:?}");
    assert!(report.damaged_snapshots.is_empty(), "{report:?}");
    assert_clean(&store, "after repair");
    assert_exact(&store, "snap-p", &p, "after repair");
    assert_exact(&store, "snap-r", &r, "after repair");
    assert_space_reclaimed(&store, dir.path(), "after repair");

    let again = store.repair().unwrap();
    assert!(again.changed_nothing(), "{again:?}");
    let store = assert_nothing_left(store, dir.path(), "after repair");
    assert_clean(&store, "after repair and reopen");
}

/// Metadata values that no longer decode give errors, never a panic, and
/// repair names the snapshots that lost the block.
#[test]
fn corrupt_metadata_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = image(40, 20);
    let r = with_block_changed(&p, 4, 701);
    let q = image(41, 20);
    create_snapshots(
        &open(dir.path(), None),
        &[
            ("disk-1", "snap-p", &p),
            ("disk-1", "snap-r", &r),
            ("disk-2", "snap-q", &q),
        ],
    );
    change_metadata(dir.path(), |db| {
        let mut block_key = b"b".to_vec();
        block_key.extend_from_slice(BlockHash::of(&p[BLOCK..2 * BLOCK]).as_bytes());
        db.insert(block_key, vec![0xFF; 7]).unwrap().unwrap();
    });

    let store = open(dir.path(), None);
    for name in ["snap-p", "snap-r"] {
        let error = reliability::restore(&store, name).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Corruption, "{error}");
    }
    assert_exact(&store, "snap-q", &q, "corrupt block record");
    assert_eq!(store.verify().unwrap_err().kind(), ErrorKind::Corruption);

    let report = store.repair().unwrap();
    assert_eq!(report.missing_blocks, 1, "{report:?}");
    assert_eq!(
        damaged_blocks(&report),
        vec![
            ("snap-p".to_owned(), vec![1]),
            ("snap-r".to_owned(), vec![1])
        ],
        "{report:?}"
    );
    let verify = store.verify().unwrap();
    assert_eq!(verify.missing_blocks, 1, "{verify:?}");
    assert_eq!(
        verify.leaked_blocks + verify.refcount_mismatches + verify.corrupt_blocks,
        0
    );
    assert_exact(&store, "snap-q", &q, "after repair");

    // A snapshot record that does not decode.
    drop(store);
    change_metadata(dir.path(), |db| {
        db.insert(b"ssnap-q", vec![1, 0xFF, 0xFF]).unwrap().unwrap();
    });
    let store = open(dir.path(), None);
    assert_eq!(
        store.get_disk_snapshot("snap-q").unwrap_err().kind(),
        ErrorKind::Corruption
    );
    assert_eq!(
        store.get_disk_snapshots(None).unwrap_err().kind(),
        ErrorKind::Corruption
    );
    assert_eq!(store.repair().unwrap_err().kind(), ErrorKind::Corruption);
    assert!(
        all_operations(&store).len() >= 3,
        "operation records are readable while a snapshot record is not"
    );
}

/// The recovery report of a store closed cleanly is empty.
#[test]
fn clean_store_reopens_without_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), None);
    store
        .create_disk_snapshot("disk-1", "snap-s", &image(50, 10)[..], &[])
        .unwrap();
    store.delete_disk_snapshot("snap-s").unwrap();
    drop(store);
    let store = open(dir.path(), None);
    assert_eq!(store.recovery_report(), &RecoveryReport::default());
}

// ---------------------------------------------------------------------------
// Queued hole punches across formats

/// Returns the persistence step that frees the deleted blocks: a punch when
/// `kept` shares their pack, or a cut when the pack has no live block left.
fn freeing_step(last: bool) -> PersistStep {
    if last {
        PersistStep::PackTruncate
    } else {
        PersistStep::HolePunch
    }
}

/// Stores the snapshots `kept` (unless `last`) and `gone`, then deletes `gone`
/// with its first punch or cut failing, which leaves its freed ranges queued.
fn leave_free_item(
    path: &Path,
    plan: &FaultPlan,
    last: bool,
    kept_image: &[u8],
    gone_image: &[u8],
) -> Store {
    let store = open(path, Some(plan));
    if !last {
        store
            .create_disk_snapshot("disk-1", "kept", kept_image, &[])
            .unwrap();
    }
    store
        .create_disk_snapshot("disk-2", "gone", gone_image, &[])
        .unwrap();
    let step = freeing_step(last);
    plan.fail_nth(step, plan.count(step) + 1, EIO);
    store.delete_disk_snapshot("gone").unwrap_err();
    plan.clear();
    store
}

/// Asserts that `gone` is collected, so its space is back and an emptied
/// pack is unlinked, that `kept` is exact and that nothing is left to do.
fn assert_collected(store: Store, path: &Path, last: bool, kept_image: &[u8], context: &str) {
    assert!(
        store.get_disk_snapshot("gone").is_err(),
        "{context}: gone is still listed"
    );
    if last {
        assert!(
            pack_files(path).is_empty(),
            "{context}: the emptied pack is still there"
        );
    } else {
        assert_exact(&store, "kept", kept_image, context);
    }
    assert_space_reclaimed(&store, path, context);
    assert_clean(&store, context);
    assert_none_started(&store, context);
    let store = assert_nothing_left(store, path, context);
    assert_clean(&store, context);
}

/// Reads one bincode variable-length integer off the front of `bytes`.
fn take_varint(bytes: &mut &[u8]) -> u64 {
    let (&first, rest) = bytes.split_first().expect("the item ends inside a varint");
    let width = match first {
        251 => 2,
        252 => 4,
        253 => 8,
        _ => {
            *bytes = rest;
            return u64::from(first);
        }
    };
    let mut value = [0u8; 8];
    value[..width].copy_from_slice(&rest[..width]);
    *bytes = &rest[width..];
    u64::from_le_bytes(value)
}

/// Appends `value` as a bincode variable-length integer.
fn put_varint(out: &mut Vec<u8>, value: u64) {
    if value < 251 {
        out.push(u8::try_from(value).unwrap());
    } else if let Ok(value) = u16::try_from(value) {
        out.push(251);
        out.extend_from_slice(&value.to_le_bytes());
    } else if let Ok(value) = u32::try_from(value) {
        out.push(252);
        out.extend_from_slice(&value.to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// Rewrites a queued `FreeRuns` item (format version 1, variant 3, runs of
/// pack, offset and block count) as the `FreeExtents` item (variant 2, one
/// pack and offset per block) that builds before `FreeRuns` queued.
fn per_block_form(value: &[u8]) -> Vec<u8> {
    let mut bytes = value;
    assert_eq!(take_varint(&mut bytes), 1, "record format version");
    assert_eq!(take_varint(&mut bytes), 3, "GC item variant FreeRuns");
    let mut extents = Vec::new();
    for _ in 0..take_varint(&mut bytes) {
        let pack = take_varint(&mut bytes);
        let offset = take_varint(&mut bytes);
        let blocks = take_varint(&mut bytes);
        extents.extend((0..blocks).map(|index| (pack, offset + index * BLOCK as u64)));
    }
    assert!(bytes.is_empty(), "trailing bytes after the runs");
    assert!(extents.len() > 1, "the item frees {} blocks", extents.len());

    let mut out = vec![1, 2];
    put_varint(&mut out, extents.len() as u64);
    for (pack, offset) in extents {
        put_varint(&mut out, pack);
        put_varint(&mut out, offset);
    }
    out
}

/// A queued `FreeExtents` item, the one-entry-per-block form that builds
/// before `FreeRuns` wrote, is collected by the next open: punched where the
/// pack keeps live blocks, cut whole where it has none left.
#[test]
fn per_block_free_item_collects_on_open() {
    let kept_image = image(40, 30);
    let gone_image = image(41, 30);
    for last in [false, true] {
        let context = format!("per-block item, last snapshot {last}");
        let dir = tempfile::tempdir().unwrap();
        drop(leave_free_item(
            dir.path(),
            &FaultPlan::new(),
            last,
            &kept_image,
            &gone_image,
        ));
        change_metadata(dir.path(), |db| {
            let items: Vec<_> = db.scan_prefix(b"q").map(Result::unwrap).collect();
            assert_eq!(items.len(), 1, "{context}: queue {items:?}");
            let (key, value) = &items[0];
            db.insert(key, per_block_form(value)).unwrap();
        });
        let store = open(dir.path(), None);
        assert_eq!(
            store.recovery_report().gc_steps_resumed,
            1,
            "{context}: {:?}",
            store.recovery_report()
        );
        assert_collected(store, dir.path(), last, &kept_image, &context);
    }
}

/// Repair replaces a queued `FreeRuns` item that a collection failed to
/// finish, and the item it queues in its place frees the same ranges.
#[test]
fn repair_requeues_free_runs() {
    let kept_image = image(42, 30);
    let gone_image = image(43, 30);
    for last in [false, true] {
        let context = format!("repair, last snapshot {last}");
        let dir = tempfile::tempdir().unwrap();
        let plan = FaultPlan::new();
        let store = leave_free_item(dir.path(), &plan, last, &kept_image, &gone_image);
        // The collection at the start of the repair fails once more.
        plan.reset();
        plan.fail_nth(freeing_step(last), 1, EIO);
        let report = store.repair().unwrap();
        assert_eq!(report.gc_items_replaced, 1, "{context}: {report:?}");
        assert_collected(store, dir.path(), last, &kept_image, &context);
    }
}

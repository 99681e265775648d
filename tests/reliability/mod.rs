//! Helpers shared by the reliability tests (`faults`, `crash`, `concurrency`):
//! a fault plan to hand to the store's failure-injection seam, deterministic
//! disk images, and the checks every run ends with.
//!
//! Kept apart from `tests/common` so these files depend only on blocksnap's
//! public API and on each other.

// Each test crate compiles this module and uses only some of the helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use blocksnap::model::{Operation, OperationStatus, OperationType};
use blocksnap::{FaultInjector, PersistStep, RecoveryReport, Store, StoreOptions};

/// Block size of every store these tests open: the smallest a store accepts,
/// so that a page of 1,024 blocks is 4 MiB.
pub const BLOCK: usize = 4096;

/// `ENOSPC`: the file system is full.
pub const ENOSPC: i32 = 28;
/// `EIO`: an I/O error of the device.
pub const EIO: i32 = 5;

/// Space a hole punch may leave allocated per pack for extent-tree blocks, and
/// the sled files' growth never counts here: only pack files are measured.
pub const PUNCH_SLACK: u64 = 64 * 1024;

/// What a rule does when its step comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Fail the step with this OS error number.
    Fail(i32),
    /// End the process at once, as a crash or power cut would.
    Abort,
}

/// One planned fault.
#[derive(Debug, Clone, Copy)]
struct Rule {
    /// The step it applies to; `None` counts every step.
    step: Option<PersistStep>,
    /// The 1-based occurrence of that step (counted since the last reset)
    /// at which the rule fires.
    occurrence: u64,
    action: Action,
    /// Keep firing on every later occurrence too (a disk that stays full).
    sticky: bool,
}

#[derive(Debug, Default)]
struct PlanState {
    counts: HashMap<PersistStep, u64>,
    any_count: u64,
    rules: Vec<Rule>,
    fired: u64,
    /// Every step seen, in order, while recording is on.
    trace: Option<Vec<PersistStep>>,
    /// (metadata directory, copy): the copy is refreshed after every
    /// completed metadata flush, so it contains what a power cut would keep.
    durable_copy: Option<(PathBuf, PathBuf)>,
    /// The previous step was a metadata flush, which has completed by now.
    after_flush: bool,
}

/// A fault injector driven by rules: fail or abort at the Nth occurrence of a
/// step. Counting starts when the plan is made and again at each
/// [`FaultPlan::reset`].
#[derive(Debug, Default, Clone)]
pub struct FaultPlan {
    state: Arc<Mutex<PlanState>>,
}

impl FaultPlan {
    pub fn new() -> Self {
        FaultPlan::default()
    }

    /// Fails occurrence `n` of `step` with OS error `errno`, once.
    pub fn fail_nth(&self, step: PersistStep, n: u64, errno: i32) -> &Self {
        self.add(Some(step), n, Action::Fail(errno), false)
    }

    /// Fails occurrence `n` of `step` and every later one until [`FaultPlan::clear`].
    pub fn fail_from(&self, step: PersistStep, n: u64, errno: i32) -> &Self {
        self.add(Some(step), n, Action::Fail(errno), true)
    }

    /// Aborts the process at occurrence `n` of `step`.
    pub fn abort_at(&self, step: PersistStep, n: u64) -> &Self {
        self.add(Some(step), n, Action::Abort, false)
    }

    /// Aborts the process at the `n`th persistence step of any kind.
    pub fn abort_at_any(&self, n: u64) -> &Self {
        self.add(None, n, Action::Abort, false)
    }

    fn add(
        &self,
        step: Option<PersistStep>,
        occurrence: u64,
        action: Action,
        sticky: bool,
    ) -> &Self {
        self.lock().rules.push(Rule {
            step,
            occurrence,
            action,
            sticky,
        });
        self
    }

    /// Removes every rule; counting goes on.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Restarts counting from zero.
    pub fn reset(&self) {
        let mut state = self.lock();
        state.counts.clear();
        state.any_count = 0;
        state.fired = 0;
    }

    /// Occurrences of each step since the last reset.
    pub fn counts(&self) -> HashMap<PersistStep, u64> {
        self.lock().counts.clone()
    }

    /// Occurrences of `step` since the last reset.
    pub fn count(&self, step: PersistStep) -> u64 {
        self.lock().counts.get(&step).copied().unwrap_or(0)
    }

    /// Steps of any kind since the last reset.
    pub fn any_count(&self) -> u64 {
        self.lock().any_count
    }

    /// Returns how many times a rule fired since the last reset.
    pub fn fired(&self) -> u64 {
        self.lock().fired
    }

    /// Starts recording every step in order.
    pub fn record(&self) {
        self.lock().trace = Some(Vec::new());
    }

    /// Keeps `copy` equal to the metadata directory `metadata` as of the last
    /// completed flush, starting now. A metadata flush is followed by another
    /// step before any further commit, so refreshing the copy at the first step
    /// after a flush captures exactly the flushed state.
    pub fn keep_durable_copy(&self, metadata: &Path, copy: &Path) {
        copy_dir(metadata, copy);
        let mut state = self.lock();
        state.durable_copy = Some((metadata.to_path_buf(), copy.to_path_buf()));
        state.after_flush = false;
    }

    /// Brings the durable copy up to date if the last step was a flush; call
    /// before ending the process other than at a step.
    pub fn refresh_durable_copy(&self) {
        let state = self.lock();
        if state.after_flush {
            if let Some((metadata, copy)) = &state.durable_copy {
                copy_dir(metadata, copy);
            }
        }
    }

    /// Returns the steps recorded since [`FaultPlan::record`].
    pub fn trace(&self) -> Vec<PersistStep> {
        self.lock().trace.clone().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PlanState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl FaultInjector for FaultPlan {
    fn before(&self, step: PersistStep) -> io::Result<()> {
        let mut state = self.lock();
        let count = {
            let count = state.counts.entry(step).or_insert(0);
            *count += 1;
            *count
        };
        state.any_count += 1;
        let any_count = state.any_count;
        if let Some(trace) = state.trace.as_mut() {
            trace.push(step);
        }
        if state.after_flush {
            if let Some((metadata, copy)) = &state.durable_copy {
                copy_dir(metadata, copy);
            }
        }
        state.after_flush = step == PersistStep::MetadataFlush;
        let hit = state.rules.iter().copied().find(|rule| {
            let seen = match rule.step {
                Some(wanted) if wanted == step => count,
                Some(_) => return false,
                None => any_count,
            };
            seen == rule.occurrence || (rule.sticky && seen > rule.occurrence)
        });
        let Some(rule) = hit else {
            return Ok(());
        };
        state.fired += 1;
        match rule.action {
            Action::Fail(errno) => Err(io::Error::from_raw_os_error(errno)),
            Action::Abort => {
                eprintln!("fault plan: aborting at {step} (occurrence {count}, step {any_count})");
                std::process::abort();
            }
        }
    }
}

/// Replaces `to` with a copy of the directory tree `from`.
pub fn copy_dir(from: &Path, to: &Path) {
    if to.exists() {
        fs::remove_dir_all(to).unwrap_or_else(|error| panic!("removing {}: {error}", to.display()));
    }
    fs::create_dir_all(to).unwrap_or_else(|error| panic!("creating {}: {error}", to.display()));
    for entry in
        fs::read_dir(from).unwrap_or_else(|error| panic!("listing {}: {error}", from.display()))
    {
        let entry = entry.expect("read a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("read a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target)
                .unwrap_or_else(|error| panic!("copying {}: {error}", entry.path().display()));
        }
    }
}

/// Options for a store with 4 KiB blocks and `plan` as its injector.
pub fn options(plan: Option<&FaultPlan>) -> StoreOptions {
    StoreOptions {
        block_size: Some(u32::try_from(BLOCK).unwrap()),
        fault_injector: plan.map(|plan| Arc::new(plan.clone()) as Arc<dyn FaultInjector>),
        ..StoreOptions::default()
    }
}

/// Opens the store at `path` with 4 KiB blocks and `plan`, panicking on error.
pub fn open(path: &Path, plan: Option<&FaultPlan>) -> Store {
    Store::open_with(path, options(plan))
        .unwrap_or_else(|error| panic!("open of {} failed: {error}", path.display()))
}

/// Returns `len` pseudo-random bytes determined by `seed` (splitmix64).
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Returns a deterministic disk image of `blocks` blocks: block `i` is
/// distinct random data from `seed` and `i`, except that every 7th block is
/// zeros.
pub fn image(seed: u64, blocks: usize) -> Vec<u8> {
    let mut image = Vec::with_capacity(blocks * BLOCK);
    for index in 0..blocks {
        if index % 7 == 3 {
            image.resize(image.len() + BLOCK, 0);
        } else {
            image.extend_from_slice(&random_bytes(
                seed.wrapping_mul(1_000_003) + index as u64,
                BLOCK,
            ));
        }
    }
    image
}

/// `base` with block `index` replaced by fresh data from `seed`.
pub fn with_block_changed(base: &[u8], index: usize, seed: u64) -> Vec<u8> {
    let mut changed = base.to_vec();
    changed[index * BLOCK..(index + 1) * BLOCK].copy_from_slice(&random_bytes(seed, BLOCK));
    changed
}

/// A small splitmix64 generator for seeded test choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a value in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// Restores snapshot `name` into memory.
pub fn restore(store: &Store, name: &str) -> blocksnap::Result<Vec<u8>> {
    let mut restored = Vec::new();
    store.create_disk_from_snapshot(name, "restored-disk", &mut restored)?;
    Ok(restored)
}

/// Asserts that snapshot `name` restores to exactly `expected`, naming the
/// first differing block instead of printing both images.
pub fn assert_exact(store: &Store, name: &str, expected: &[u8], context: &str) {
    let restored = restore(store, name)
        .unwrap_or_else(|error| panic!("{context}: restore of {name:?} failed: {error}"));
    assert_eq!(
        restored.len(),
        expected.len(),
        "{context}: snapshot {name:?} restored {} bytes, expected {}",
        restored.len(),
        expected.len()
    );
    if let Some(offset) = restored.iter().zip(expected).position(|(a, b)| a != b) {
        panic!(
            "{context}: snapshot {name:?} differs at byte {offset} (block {})",
            offset / BLOCK
        );
    }
}

/// Runs `verify` and fails with its problem list unless the store is clean.
pub fn assert_clean(store: &Store, context: &str) {
    let report = store
        .verify()
        .unwrap_or_else(|error| panic!("{context}: verify failed: {error}"));
    assert!(
        report.is_clean(),
        "{context}: verify found problems: {report:?}\n{}",
        report.problems.join("\n")
    );
}

/// Asserts that the store has nothing left to finish: a collection pass and
/// a fresh open both find no work.
pub fn assert_nothing_left(store: Store, path: &Path, context: &str) -> Store {
    let again = store
        .collect_garbage()
        .unwrap_or_else(|error| panic!("{context}: collect_garbage failed: {error}"));
    assert_eq!(
        again,
        RecoveryReport::default(),
        "{context}: a second GC pass found work"
    );
    drop(store);
    let store = open(path, None);
    assert_eq!(
        store.recovery_report(),
        &RecoveryReport::default(),
        "{context}: a clean reopen found work"
    );
    store
}

/// Names of the listed snapshots.
pub fn snapshot_names(store: &Store) -> Vec<String> {
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store
            .get_disk_snapshots(token.as_deref())
            .expect("list snapshots");
        names.extend(page.items.into_iter().map(|snapshot| snapshot.name));
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => return names,
        }
    }
}

/// Returns every recorded operation, oldest first.
pub fn all_operations(store: &Store) -> Vec<Operation> {
    let mut operations = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store
            .get_operations(token.as_deref())
            .expect("list operations");
        operations.extend(page.items);
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => return operations,
        }
    }
}

/// Operations of `kind` on snapshot `name`.
pub fn operations_of(store: &Store, name: &str, kind: OperationType) -> Vec<Operation> {
    all_operations(store)
        .into_iter()
        .filter(|operation| operation.resource_name == name && operation.operation_type == kind)
        .collect()
}

/// Asserts `operation` ended `Failed` with an error code and details.
pub fn assert_failed(operation: &Operation, code: &str, context: &str) {
    assert_eq!(
        operation.status,
        OperationStatus::Failed,
        "{context}: {operation:?}"
    );
    assert!(operation.is_terminal, "{context}: {operation:?}");
    assert_eq!(
        operation.error_code.as_deref(),
        Some(code),
        "{context}: {operation:?}"
    );
    assert!(
        operation
            .error_details
            .as_deref()
            .is_some_and(|details| !details.is_empty()),
        "{context}: no errorDetails in {operation:?}"
    );
}

/// Asserts that no operation is left `Started`.
pub fn assert_none_started(store: &Store, context: &str) {
    for operation in all_operations(store) {
        assert_ne!(
            operation.status,
            OperationStatus::Started,
            "{context}: operation left Started: {operation:?}"
        );
    }
}

/// Bytes allocated on disk (`st_blocks` × 512) by the pack files of the store
/// at `path`, so punched holes do not count.
pub fn pack_allocated_bytes(path: &Path) -> u64 {
    pack_files(path)
        .iter()
        .map(|file| fs::metadata(file).map_or(0, |metadata| metadata.blocks() * 512))
        .sum()
}

/// Paths of the pack files of the store at `path`.
pub fn pack_files(path: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(path.join("packs")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("read a directory entry").path())
        .collect();
    files.sort();
    files
}

/// Asserts that the pack files hold no more than the stored blocks need: every
/// freed or uncommitted block was punched or cut.
pub fn assert_space_reclaimed(store: &Store, path: &Path, context: &str) {
    let stats = store.stats().expect("stats");
    let packs = pack_files(path).len() as u64;
    let allocated = pack_allocated_bytes(path);
    let needed = stats.blocks * BLOCK as u64;
    assert!(
        allocated <= needed + packs * PUNCH_SLACK,
        "{context}: packs allocate {allocated} bytes for {} blocks ({needed} bytes) in {packs} packs",
        stats.blocks
    );
}

//! The store handle: opening, configuration, recovery and the writer lock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Instant;

use crate::access::Policy;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{OperationStatus, RegionName, Timestamp};
use crate::storage::fault::{FaultInjector, Faults};
use crate::storage::keys;
use crate::storage::meta::{Batch, Meta};
use crate::storage::pack::PackStore;
use crate::storage::readonly::MetadataCopy;
use crate::storage::records::{GcItem, PackRecord, PendingCreate, StoreConfig};

/// Default block size: 64 KiB.
pub const DEFAULT_BLOCK_SIZE: u32 = 64 * 1024;
/// Smallest block size a store accepts: 4 KiB.
pub const MIN_BLOCK_SIZE: u32 = 4 * 1024;
/// Largest block size a store accepts: 1 MiB.
pub const MAX_BLOCK_SIZE: u32 = 1024 * 1024;

/// Settings for [`Store::open_with`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Block size for a new store, in bytes: a power of two from 4 KiB to 1 MiB.
    /// `None` means 64 KiB for a new store and "whatever it has" for an existing
    /// one; a value that differs from an existing store's is rejected.
    pub block_size: Option<u32>,
    /// Region recorded in a new store; `None` means `us-east-1` for a new store.
    /// A value that differs from an existing store's is rejected.
    pub region: Option<RegionName>,
    /// Test seam: consulted before every persistence step (see [`FaultInjector`]).
    pub fault_injector: Option<Arc<dyn FaultInjector>>,
    /// Opens the store without changing a byte under its directory, for a
    /// store on read-only media or one under inspection after a failure.
    ///
    /// sled cannot open a database read-only, so the open copies `metadata/`
    /// into a private directory under the system's temporary directory
    /// (`TMPDIR`) and works on the copy. The copy is about 1 % of the stored
    /// bytes at 64 KiB blocks, and the handle removes it when dropped. Reads, restores, listings and `verify` work, and work left
    /// undone by an interrupted call is left alone. Creates, deletes, tag
    /// changes, garbage collection and repair fail with
    /// `OperationFailureException`. The operation record of a restore goes to
    /// the copy and is not kept. While the handle is open, a writable open of
    /// the same store waits, then fails as for any other process holding it.
    /// A missing store is not created: the open fails with `NotFoundException`.
    pub read_only: bool,
    /// Creates the store if the directory contains none yet (the default).
    /// When unset, opening a directory without a metadata database fails with
    /// `NotFoundException` and creates nothing, so that a mistyped path is
    /// reported instead of becoming a new, empty store.
    pub create_if_missing: bool,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            block_size: None,
            region: None,
            fault_injector: None,
            read_only: false,
            create_if_missing: true,
        }
    }
}

/// A blocksnap store: a directory holding the metadata database (`metadata/`)
/// and pack files of block bytes (`packs/`).
///
/// The handle is `Send + Sync`; share it between threads with an `Arc`. Mutations
/// (create, delete, tag changes, garbage collection) take one writer lock in turn;
/// reads (restore, get, list) run concurrently with them and with each other. Only
/// one process can open a store at a time.
#[derive(Debug)]
pub struct Store {
    pub(crate) path: PathBuf,
    pub(crate) meta: Meta,
    pub(crate) packs: PackStore,
    pub(crate) config: StoreConfig,
    pub(crate) region: RegionName,
    pub(crate) writer: Mutex<()>,
    pub(crate) policy: RwLock<Option<Arc<Policy>>>,
    /// Work the open found and finished.
    recovery: RecoveryReport,
    /// The private metadata copy of a read-only handle. Declared last so that
    /// it is dropped after the database that uses it.
    read_only: Option<MetadataCopy>,
}

/// Proof that the caller holds the writer lock.
pub(crate) struct WriterGuard<'a>(#[allow(dead_code)] MutexGuard<'a, ()>);

/// Work that opening a store (or [`Store::collect_garbage`]) found and
/// finished, logged at open and returned by [`Store::recovery_report`]. All
/// zeros means nothing was left over.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Creates that had not committed when the store was last closed; their
    /// snapshots are absent and their blocks were collected.
    pub abandoned_creates: usize,
    /// Uncommitted bytes cut off the end of pack files.
    pub truncated_bytes: u64,
    /// Pack files that no record named, removed.
    pub orphan_packs_removed: usize,
    /// Garbage-collection steps that were still queued and have now run.
    pub gc_steps_resumed: u64,
    /// Packs holding bytes past their committed length that no interrupted
    /// create explains; the bytes were kept and the packs get no more appends.
    pub packs_with_kept_bytes: usize,
}

impl Store {
    /// Opens the store at `path` with default options, creating it (64 KiB blocks,
    /// region `us-east-1`) if the directory holds no store yet.
    ///
    /// Opening resumes any garbage collection a crash interrupted and reclaims
    /// bytes of creates that never committed, before it returns.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = blocksnap::Store::open(dir.path().join("store"))?;
    /// assert_eq!(store.block_size(), 64 * 1024);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Returns true if `path` contains a store's metadata database, which a
    /// store has from its first open on. It does not open the database, so a
    /// store created part way by an interrupted first open also counts.
    pub fn exists_at(path: impl AsRef<Path>) -> Result<bool> {
        let path = path.as_ref();
        match path.join("metadata").join("db").try_exists() {
            Ok(exists) => Ok(exists),
            // A regular file where a directory of the path should be.
            Err(error) if error.kind() == std::io::ErrorKind::NotADirectory => Ok(false),
            Err(error) => Err(crate::error::io_failure(
                format_args!("checking for a store at {}", path.display()),
                error,
            )),
        }
    }

    /// Opens or creates the store at `path` with `options`.
    ///
    /// Returns `InvalidInputException` if the block size is not a power of two
    /// from 4 KiB to 1 MiB, or differs from the one the store was created with;
    /// `NotFoundException` if there is no store at `path` and the options
    /// forbid creating one; `OperationFailureException` if another process has
    /// the store open.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let StoreOptions {
            block_size,
            region,
            fault_injector,
            read_only,
            create_if_missing,
        } = options;
        let path = path.as_ref().to_path_buf();
        let started = Instant::now();
        if let Some(block_size) = block_size {
            validate_block_size(block_size)?;
        }
        let faults = Faults::new(fault_injector);
        let (meta, metadata_copy) = if read_only {
            let copy = MetadataCopy::take(&path.join("metadata"))?;
            (Meta::open(&copy.path(), faults.clone())?, Some(copy))
        } else {
            if !create_if_missing {
                ensure_store_exists(&path)?;
            }
            check_store_directory(&path)?;
            std::fs::create_dir_all(&path).map_err(|error| {
                crate::error::io_failure(
                    format_args!("creating store directory {}", path.display()),
                    error,
                )
            })?;
            (Meta::open(&path.join("metadata"), faults.clone())?, None)
        };
        if (read_only || !create_if_missing)
            && !meta.contains("store configuration", keys::CONFIG)?
        {
            let fix = if read_only {
                "A writable open that may create a store finishes creating it"
            } else {
                "Open it with create_if_missing set to create it"
            };
            return Err(Error::not_found(format!(
                "the store at {} has no configuration record: it was never fully created. {fix}",
                path.display()
            )));
        }
        let config = load_or_create_config(&meta, &path, block_size, region)?;
        let region: RegionName = config.region.parse().map_err(|_| {
            Error::corruption(format!(
                "store {} records region {:?}, which this build does not know",
                path.display(),
                config.region
            ))
        })?;
        let packs = PackStore::open(
            &path.join("packs"),
            config.block_size,
            faults,
            meta.clone(),
            read_only,
        )?;

        let mut store = Store {
            path,
            meta,
            packs,
            config,
            region,
            writer: Mutex::new(()),
            policy: RwLock::new(None),
            recovery: RecoveryReport::default(),
            read_only: metadata_copy,
        };
        // A read-only handle leaves interrupted work alone: it concerns only
        // data that no listed snapshot reads.
        let report = if read_only {
            RecoveryReport::default()
        } else {
            let guard = store.lock_writer_only();
            store.finish_interrupted_work(&guard, true)?
        };
        tracing::info!(
            path = %store.path.display(),
            block_size = store.config.block_size,
            abandoned_creates = report.abandoned_creates,
            truncated_bytes = report.truncated_bytes,
            orphan_packs_removed = report.orphan_packs_removed,
            gc_steps_resumed = report.gc_steps_resumed,
            elapsed_ms = started.elapsed().as_millis(),
            "opened store"
        );
        store.recovery = report;
        Ok(store)
    }

    /// Returns the work the open of this handle found and finished:
    /// interrupted creates, uncommitted pack bytes, orphan pack files and
    /// queued collection.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The store's block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.config.block_size
    }

    /// The region recorded when the store was created.
    pub fn region(&self) -> RegionName {
        self.region
    }

    /// The directory of the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True if the handle was opened with [`StoreOptions::read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only.is_some()
    }

    /// Fails with `OperationFailureException` naming `action` (such as
    /// "delete a disk snapshot") if the handle is read-only.
    ///
    /// Every call that changes the store checks this before it starts. A
    /// caller that prepares a change first, by opening its source for example,
    /// can call it earlier to fail before that work.
    pub fn check_writable(&self, action: &str) -> Result<()> {
        if self.read_only.is_none() {
            return Ok(());
        }
        Err(Error::operation_failure(format!(
            "cannot {action}: the store at {} is open read-only. To change it, open it \
             without --read-only on the command line, or with StoreOptions::read_only unset",
            self.path.display()
        )))
    }

    /// Metadata key writes and removals committed since this handle was opened.
    ///
    /// A diagnostic counter for benchmarks and tests of how the cost of a call
    /// grows: a delete's writes should follow the change it frees plus one per
    /// page of the snapshot's root, not the size of the disk.
    pub fn metadata_writes(&self) -> u64 {
        self.meta.writes()
    }

    /// The twelve-digit account id used in this store's ARNs.
    pub fn account_id(&self) -> &str {
        &self.config.account_id
    }

    /// Sets the policy that every later call is checked against; `None` makes the
    /// caller the account owner, allowed everything.
    pub fn set_policy(&self, policy: Option<Policy>) {
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = policy.map(Arc::new);
    }

    /// Takes the writer lock, then finishes work an earlier call left undone: the
    /// collection of a delete that failed part way, the rollback of a failed
    /// create, pack bytes a failed cleanup left behind. A failure there is
    /// logged, not returned: the caller's own work does not depend on it, and the
    /// next writer call or open retries it.
    pub(crate) fn lock_writer(&self) -> WriterGuard<'_> {
        let guard = self.lock_writer_only();
        self.packs.begin_writer_call();
        match self.has_interrupted_work() {
            Ok(false) => {}
            Ok(true) => match self.finish_interrupted_work(&guard, false) {
                Ok(report) => tracing::info!(
                    abandoned_creates = report.abandoned_creates,
                    truncated_bytes = report.truncated_bytes,
                    orphan_packs_removed = report.orphan_packs_removed,
                    gc_steps_resumed = report.gc_steps_resumed,
                    "finished work an earlier call left undone"
                ),
                Err(error) => tracing::warn!(
                    %error,
                    "could not finish work an earlier call left undone; the next call or open retries"
                ),
            },
            Err(error) => tracing::warn!(%error, "could not look for unfinished work"),
        }
        guard
    }

    /// Takes the writer lock and nothing else.
    pub(crate) fn lock_writer_only(&self) -> WriterGuard<'_> {
        WriterGuard(self.writer.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// True if a pending-create marker, a GC queue item or a pending-delete
    /// marker exists, or the packs need reconciling. Under the writer lock no
    /// create is under way, so each of these is left over from a failed call.
    pub(crate) fn has_interrupted_work(&self) -> Result<bool> {
        if self.packs.needs_reconcile() {
            return Ok(true);
        }
        for prefix in [keys::PENDING_CREATE, keys::GC_QUEUE, keys::PENDING_DELETE] {
            if self
                .meta
                .scan("unfinished work", &[prefix])
                .next()
                .transpose()?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Brings the store back to a consistent state after a crash or a failed
    /// call: reconciles the packs with their records (always when
    /// `reconcile_packs`, else only if a failed step asked for it), turns
    /// creates that never committed into collection, drains the GC queue and
    /// unlinks empty packs, then makes it all durable.
    ///
    /// At open this runs before the handle is returned, so nothing else can
    /// observe the half-done state. Every step is idempotent, so a crash in the
    /// middle of it is finished by the next open.
    pub(crate) fn finish_interrupted_work(
        &self,
        guard: &WriterGuard<'_>,
        reconcile_packs: bool,
    ) -> Result<RecoveryReport> {
        let mut report = RecoveryReport::default();
        // A read-only handle leaves the work for the next writable open.
        if self.is_read_only() {
            return Ok(report);
        }

        // ORDER: packs first, before any create can append again: bytes past a
        // pack's committed length and files without a record belong to no
        // committed record.
        if reconcile_packs || self.packs.needs_reconcile() {
            let mut committed = BTreeMap::new();
            for entry in self.meta.scan_records::<PackRecord>("pack", &[keys::PACK]) {
                let (key, record) = entry?;
                let id = keys::trailing_u32(&key).ok_or_else(|| bad_key("pack", &key))?;
                committed.insert(id, record);
            }
            // Bytes past a committed length are an interrupted create's only
            // if its marker is durable (see `PackStore::recover`).
            let interrupted_create = self
                .meta
                .scan("pending create", &[keys::PENDING_CREATE])
                .next()
                .transpose()?
                .is_some();
            let packs = self.packs.recover(&committed, interrupted_create)?;
            report.truncated_bytes = packs.truncated_bytes;
            report.orphan_packs_removed = packs.orphan_files_removed;
            report.packs_with_kept_bytes = packs.kept_packs.len();
            for pack in &packs.missing_packs {
                tracing::warn!(
                    pack,
                    "pack file is missing; `blocksnap verify` lists the damage"
                );
            }
        }

        // A create that never committed: queue its root for collection and fail
        // its operations, in one commit.
        let pending: Vec<(u64, PendingCreate)> = self
            .meta
            .scan_records::<PendingCreate>("pending create", &[keys::PENDING_CREATE])
            .map(|entry| {
                let (key, record) = entry?;
                let id = keys::trailing_u64(&key).ok_or_else(|| bad_key("pending create", &key))?;
                Ok((id, record))
            })
            .collect::<Result<_>>()?;
        for (snapshot_id, create) in pending {
            let reason = Error::operation_failure(format!(
                "the create of snapshot {:?} stopped before it committed, because the process ended or its rollback failed. \
                 Create it again",
                create.snapshot_name
            ));
            let mut batch = Batch::default();
            self.fail_operations(&mut batch, &create.operation_seqs, &reason)?;
            batch.remove(keys::pending_create(snapshot_id));
            self.queue_gc_item(&mut batch, &GcItem::DropRoot { snapshot_id })?;
            self.meta.commit(batch)?;
            report.abandoned_creates += 1;
            tracing::warn!(snapshot = %create.snapshot_name, "collected an interrupted create");
        }

        match self.drain_gc(guard) {
            Ok(steps) => report.gc_steps_resumed = steps,
            // At open (the only caller that reconciles packs), a damaged
            // record in the queue must not keep the store closed, or `verify`,
            // `repair` and the restores of undamaged snapshots could not run.
            // The queued work stays for the next writer call.
            Err(error) if reconcile_packs && error.kind() == ErrorKind::Corruption => {
                tracing::warn!(%error, "could not finish the queued collection; run `blocksnap verify`");
                return Ok(report);
            }
            Err(error) => return Err(error),
        }
        self.remove_empty_packs(guard)?;
        self.meta.flush_if_needed()?;
        Ok(report)
    }

    /// Marks the operations `seqs` failed with `error`.
    pub(crate) fn fail_operations(
        &self,
        batch: &mut Batch,
        seqs: &[u64],
        error: &Error,
    ) -> Result<()> {
        for seq in seqs {
            if let Some(mut operation) = self.load_operation(*seq)? {
                if operation.record.status == OperationStatus::Started.as_str() {
                    operation.fail(error);
                    batch.put(keys::operation(operation.seq), &operation.record)?;
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn bad_key(what: &str, key: &[u8]) -> Error {
    Error::corruption(format!(
        "a {what} key in the metadata database is malformed ({} bytes). Restore the store directory from a copy",
        key.len()
    ))
}

/// Fails with `NotFoundException` unless `path` contains a metadata database.
fn ensure_store_exists(path: &Path) -> Result<()> {
    if Store::exists_at(path)? {
        return Ok(());
    }
    Err(Error::not_found(format!(
        "there is no store at {}: {} does not exist, and this open does not create one. \
         Check the store path, or create the store first",
        path.display(),
        path.join("metadata").join("db").display()
    )))
}

/// Rejects a store path that exists as something other than a directory,
/// or is a symbolic link to nothing, which `create_dir_all` would report only
/// as "File exists".
fn check_store_directory(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(metadata) if !metadata.is_dir() => Err(Error::invalid_input(format!(
            "store path {} is not a directory. Give the path of a store directory, or of a \
             directory to create",
            path.display()
        ))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            match std::fs::read_link(path) {
                Ok(target) => Err(Error::invalid_input(format!(
                    "store path {} is a symbolic link to {}, which does not exist. Create that \
                     directory or give another path",
                    path.display(),
                    target.display()
                ))),
                Err(_) => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

fn validate_block_size(block_size: u32) -> Result<()> {
    if block_size.is_power_of_two() && (MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "block size {block_size} is not supported. Use a power of two from {MIN_BLOCK_SIZE} to {MAX_BLOCK_SIZE} bytes, for example 65536"
        )))
    }
}

fn load_or_create_config(
    meta: &Meta,
    path: &Path,
    block_size: Option<u32>,
    region: Option<RegionName>,
) -> Result<StoreConfig> {
    if let Some(config) = meta.get::<StoreConfig>("store configuration", keys::CONFIG)? {
        validate_block_size(config.block_size).map_err(|_| {
            Error::corruption(format!(
                "store {} records block size {}, which is invalid. Restore the store directory from a copy",
                path.display(),
                config.block_size
            ))
        })?;
        if let Some(requested) = block_size {
            if requested != config.block_size {
                return Err(Error::invalid_input(format!(
                    "store {} was created with block size {}, not {requested}. \
                     Omit the block size or pass {}",
                    path.display(),
                    config.block_size,
                    config.block_size
                )));
            }
        }
        if let Some(requested) = region {
            if requested.as_str() != config.region {
                return Err(Error::invalid_input(format!(
                    "store {} was created in region {}, not {requested}. Omit the region or pass {}",
                    path.display(),
                    config.region,
                    config.region
                )));
            }
        }
        return Ok(config);
    }

    // A store without a configuration is new, so its packs directory must hold
    // no pack: if it does, the metadata was lost or damaged, and starting over
    // would delete every pack as an orphan.
    let packs_found = count_pack_files(&path.join("packs"))?;
    if packs_found > 0 {
        return Err(Error::corruption(format!(
            "the metadata database of store {} holds no store configuration, but {}/packs holds {packs_found} pack files, \
             so the metadata is lost or damaged. Restore the store directory from a copy; \
             blocksnap does not start a new store over existing pack files",
            path.display(),
            path.display()
        )));
    }

    let config = StoreConfig {
        block_size: block_size.unwrap_or(DEFAULT_BLOCK_SIZE),
        region: region.unwrap_or_default().as_str().to_owned(),
        account_id: new_account_id(),
        created_at: Timestamp::now().unix_nanos(),
    };
    let mut batch = Batch::default();
    batch.put(keys::CONFIG.to_vec(), &config)?;
    meta.commit(batch)?;
    meta.flush()?;
    tracing::info!(path = %path.display(), block_size = config.block_size, region = %config.region, "created store");
    Ok(config)
}

/// Counts the `pack-*.dat` files in `dir`; a missing directory has none.
fn count_pack_files(dir: &Path) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => {
            return Err(crate::error::io_failure(
                format_args!("listing {}", dir.display()),
                error,
            ))
        }
    };
    let mut count = 0;
    for entry in entries {
        let entry = entry.map_err(|error| {
            crate::error::io_failure(format_args!("listing {}", dir.display()), error)
        })?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("pack-") && name.ends_with(".dat") {
            count += 1;
        }
    }
    Ok(count)
}

/// A random twelve-digit account id, as AWS account ids look.
fn new_account_id() -> String {
    let random = uuid::Uuid::new_v4().as_u128();
    format!("{:012}", random % 1_000_000_000_000)
}

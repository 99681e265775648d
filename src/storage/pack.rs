//! Pack files: append-only files of block bytes, the embedded default block store.
//!
//! Blocks are written whole at offsets that are multiples of the block size (and so
//! of 4 KiB). Freeing a block punches its range out of the file
//! (`FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`), which returns the space to the
//! file system at once; a pack with no live block left is unlinked.
//!
//! The metadata records for each pack how many bytes committed records may point
//! at (`PackRecord::committed_len`); bytes past that were appended by a create that
//! never committed and are cut off when the store opens.
//!
//! A pack's record is durable before its file exists, and an empty pack is cut
//! to zero bytes before its record is removed. So a pack file that no record
//! names is empty unless the metadata lost committed records, and the open
//! removes only empty ones.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use super::fault::{Faults, PersistStep};
use super::keys;
use super::meta::{Batch, Meta};
use super::records::{Extent, PackRecord};
use crate::error::{io_failure, Error, Result};

/// A pack is closed for appends once it reaches this size. Smaller packs let a
/// file system without hole punching still get space back by unlinking packs.
pub(crate) const MAX_PACK_BYTES: u64 = 1 << 30;
/// Free space that appends leave on the file system of the packs, so that the
/// store can still be opened to delete snapshots once a create has filled the
/// disk. sled 0.34.7's open may write zeros up to the end of its current 4 MiB
/// log segment and writes a snapshot file that grows with the database. This
/// is an estimate with room to spare, not a measured bound.
const OPEN_RESERVE_BYTES: u64 = 32 << 20;
/// Bytes appended between two checks of the free space, at most.
const BYTES_PER_SPACE_CHECK: u64 = 4 << 20;

/// Block storage: the narrow interface the engine uses, so that a
/// back end other than local pack files can be put behind it.
pub(crate) trait BlockStore: Send + Sync {
    /// Appends one block and returns where it went. Not durable until [`BlockStore::sync`].
    fn put(&self, bytes: &[u8]) -> Result<Extent>;
    /// Makes every `put` so far durable.
    fn sync(&self) -> Result<()>;
    /// Reads the block at `extent` into `buffer` (exactly one block long).
    fn get(&self, extent: Extent, buffer: &mut [u8]) -> Result<()>;
    /// Gives back the space of `blocks` consecutive blocks starting at `extent`.
    /// Freeing a range twice is harmless.
    fn free(&self, extent: Extent, blocks: u64) -> Result<()>;
}

/// The local pack-file block store.
#[derive(Debug)]
pub(crate) struct PackStore {
    dir: PathBuf,
    block_size: u64,
    faults: Faults,
    /// Metadata database in which a new pack's record is committed before its
    /// file is created.
    meta: Meta,
    files: RwLock<HashMap<u32, Arc<File>>>,
    writer: Mutex<Writer>,
    /// Set when a failed append, truncation or unlink may have left bytes past a
    /// pack's committed length or a file without a record; [`PackStore::recover`]
    /// clears it.
    needs_reconcile: AtomicBool,
    /// Set for a store opened read-only: pack files are opened for reading
    /// only, so that no code path can change them.
    read_only: bool,
}

#[derive(Debug, Default)]
struct Writer {
    /// Pack receiving appends, with its current length.
    active: Option<(u32, u64)>,
    /// Highest pack id ever seen; new packs take the next one.
    last_id: u32,
    /// Packs appended to since the last sync.
    dirty: BTreeSet<u32>,
    /// A pack file was created since the last sync, so the directory needs a sync too.
    directory_dirty: bool,
    /// The metadata was flushed since the current writer call began, so the
    /// call's pending-create marker is durable.
    metadata_durable: bool,
    /// Packs whose bytes past the committed length were kept at open; later
    /// reconciles keep them too.
    kept: BTreeSet<u32>,
    /// Packs whose file the last reconcile found missing or shorter than its
    /// committed length, each with the length that is still readable.
    lost: BTreeMap<u32, u64>,
    /// Appends since free space was last checked. At 0 the next append checks.
    appends_since_space_check: u64,
}

/// Findings of the recovery that reconciles pack files with their records.
#[derive(Debug, Default)]
pub(crate) struct PackRecovery {
    /// Uncommitted bytes cut off the end of packs.
    pub truncated_bytes: u64,
    /// Pack files without a record, removed.
    pub orphan_files_removed: usize,
    /// Packs that have a record but no file.
    pub missing_packs: Vec<u32>,
    /// Packs holding bytes past their committed length that were kept, because
    /// no interrupted create explains them.
    pub kept_packs: Vec<u32>,
}

impl PackStore {
    pub(crate) fn open(
        dir: &Path,
        block_size: u32,
        faults: Faults,
        meta: Meta,
        read_only: bool,
    ) -> Result<PackStore> {
        if !read_only {
            fs::create_dir_all(dir)
                .map_err(|error| io_failure(format_args!("creating {}", dir.display()), error))?;
        }
        Ok(PackStore {
            dir: dir.to_path_buf(),
            block_size: u64::from(block_size),
            faults,
            meta,
            files: RwLock::new(HashMap::new()),
            writer: Mutex::new(Writer::default()),
            needs_reconcile: AtomicBool::new(false),
            read_only,
        })
    }

    /// Returns the packs whose file the last reconcile found missing or short,
    /// each with the length still readable. A create stores the blocks
    /// recorded past that length again (see `CreateRun::store_block`).
    pub(crate) fn lost_packs(&self) -> BTreeMap<u32, u64> {
        self.writer().lost.clone()
    }

    /// Appends between two checks of the free space: [`BYTES_PER_SPACE_CHECK`]
    /// worth of blocks, at least one.
    fn appends_per_space_check(&self) -> u64 {
        (BYTES_PER_SPACE_CHECK / self.block_size).max(1)
    }

    /// Fails with `OperationFailureException` if the file system of the packs,
    /// or that of the metadata, has less room than [`OPEN_RESERVE_BYTES`] plus
    /// the appends until the next check. A create calls it before it starts,
    /// every few page commits and every [`BYTES_PER_SPACE_CHECK`] of appends.
    /// A create that stops here rolls back, which gives its bytes back.
    pub(crate) fn check_free_space(&self) -> Result<()> {
        let needed = OPEN_RESERVE_BYTES + self.appends_per_space_check() * self.block_size;
        for dir in [self.dir.as_path(), self.meta.path()] {
            let stats = rustix::fs::statvfs(dir).map_err(|errno| {
                io_failure(
                    format_args!("reading the free space of {}", dir.display()),
                    io::Error::from(errno),
                )
            })?;
            let free = stats.f_bavail.saturating_mul(stats.f_frsize);
            if free < needed {
                return Err(Error::operation_failure(format!(
                    "the file system of {} has {free} bytes free, and a create keeps at least \
                     {OPEN_RESERVE_BYTES} free, with room for its next appends, so that the \
                     store can still open to delete snapshots. Free space or delete snapshots, \
                     then retry",
                    dir.display()
                )));
            }
        }
        Ok(())
    }

    /// Fails if the store is open read-only. Every method that changes a pack
    /// file calls it first, behind the check that the writer calls make.
    fn check_writable(&self, action: &str) -> Result<()> {
        if self.read_only {
            return Err(Error::service(format!(
                "a read-only handle tried to {action} in {}. This is a bug in blocksnap",
                self.dir.display()
            )));
        }
        Ok(())
    }

    fn path_of(&self, pack: u32) -> PathBuf {
        self.dir.join(format!("pack-{pack:08}.dat"))
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists the pack ids of the files in the directory.
    fn pack_files(&self) -> Result<BTreeMap<u32, PathBuf>> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|error| io_failure(format_args!("listing {}", self.dir.display()), error))?;
        let mut packs = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(|error| {
                io_failure(format_args!("listing {}", self.dir.display()), error)
            })?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|name| name.strip_prefix("pack-"))
                .and_then(|name| name.strip_suffix(".dat"))
                .and_then(|digits| digits.parse::<u32>().ok())
            else {
                continue;
            };
            packs.insert(id, entry.path());
        }
        Ok(packs)
    }

    /// True when a failed step may have left bytes or files that no record
    /// names, so that [`PackStore::recover`] should run before the next create.
    pub(crate) fn needs_reconcile(&self) -> bool {
        self.needs_reconcile.load(Ordering::SeqCst)
    }

    /// Asks for [`PackStore::recover`] before the next create, after a step
    /// failed part way through removing or cutting a pack.
    pub(crate) fn mark_needs_reconcile(&self) {
        self.needs_reconcile.store(true, Ordering::SeqCst);
    }

    /// Reconciles pack files with the committed pack records: removes empty
    /// files no record names, cuts bytes past each pack's committed length when
    /// `cut_uncommitted`, and picks the pack that receives the next appends.
    ///
    /// The caller holds the store's writer lock and no create is under way.
    /// Bytes past a committed length belong to a create that never committed,
    /// and the caller passes `cut_uncommitted` when it knows that: at open when
    /// a pending-create marker is durable (the first append of a writer call
    /// waits for it, see [`PackStore::put`]), and within a process after a
    /// failed step set [`PackStore::needs_reconcile`]. Otherwise the bytes may
    /// be committed blocks that a rolled-back metadata database no longer
    /// names: they are kept and reported, and the pack gets no more appends.
    ///
    /// A file shorter than its committed length, or missing, makes its pack
    /// lost, unless the record counts no live block. Then the file is one
    /// whose cut to zero bytes was interrupted before the removal of its
    /// record became durable, and the collection that follows removes both.
    ///
    /// Returns a corruption error for a file that no record names but that
    /// holds bytes: only lost metadata leaves one (see the module
    /// documentation).
    pub(crate) fn recover(
        &self,
        records: &BTreeMap<u32, PackRecord>,
        cut_uncommitted: bool,
    ) -> Result<PackRecovery> {
        self.check_writable("reconcile the pack files")?;
        let mut writer = self.writer();
        // Cleared first: a step below that fails sets it again.
        let cut_uncommitted = cut_uncommitted || self.needs_reconcile.swap(false, Ordering::SeqCst);
        let result = self.reconcile(&mut writer, records, cut_uncommitted);
        if result.is_err() {
            self.mark_needs_reconcile();
        }
        result
    }

    fn reconcile(
        &self,
        writer: &mut Writer,
        records: &BTreeMap<u32, PackRecord>,
        cut_uncommitted: bool,
    ) -> Result<PackRecovery> {
        let mut report = PackRecovery::default();
        let files = self.pack_files()?;
        // Pack ids are never reused within a process, so a queued free of a
        // removed pack can never punch a newer pack of the same id.
        writer.last_id = files
            .keys()
            .chain(records.keys())
            .copied()
            .max()
            .unwrap_or(0)
            .max(writer.last_id);
        writer.active = None;
        writer.metadata_durable = false;

        // Packs whose file ends before their committed length, with that end.
        let mut short = Vec::new();
        // Packs with no live block whose file is short: cuts to be finished.
        let mut emptying = BTreeSet::new();
        for (id, path) in &files {
            let len = fs::metadata(path)
                .map_err(|error| io_failure(format_args!("reading {}", path.display()), error))?
                .len();
            let Some(record) = records.get(id) else {
                self.remove_orphan(writer, *id, path, len)?;
                report.orphan_files_removed += 1;
                continue;
            };
            let committed_len = record.committed_len;
            if len < committed_len && record.live_blocks == 0 {
                emptying.insert(*id);
                continue;
            }
            if len < committed_len {
                tracing::warn!(
                    pack = id,
                    committed_len,
                    len,
                    "pack file is shorter than its committed length; `blocksnap verify` lists the damage"
                );
                short.push((*id, len));
                continue;
            }
            if len == committed_len {
                continue;
            }
            if !cut_uncommitted || writer.kept.contains(id) {
                tracing::warn!(
                    pack = id,
                    committed_len,
                    len,
                    "pack holds bytes past its committed length and no create was interrupted; \
                     keeping them, because the metadata may have lost committed records"
                );
                report.kept_packs.push(*id);
                writer.kept.insert(*id);
                continue;
            }
            let file = self.file(*id)?;
            self.faults
                .check(PersistStep::PackTruncate)
                .and_then(|()| file.set_len(committed_len))
                .and_then(|()| file.sync_all())
                .map_err(|error| {
                    io_failure(format_args!("truncating {}", path.display()), error)
                })?;
            report.truncated_bytes += len - committed_len;
        }
        for (id, record) in records {
            // A record without a file and without committed bytes is a pack
            // whose creation was interrupted; it is collected as an empty pack.
            // So is one without a file and without live blocks.
            if !files.contains_key(id) && record.committed_len > 0 && record.live_blocks > 0 {
                report.missing_packs.push(*id);
            }
        }
        writer.lost = report.missing_packs.iter().map(|id| (*id, 0)).collect();
        writer.lost.extend(short.iter().copied());

        writer.active = records
            .iter()
            .next_back()
            .filter(|(id, record)| {
                record.committed_len < MAX_PACK_BYTES
                    && files.contains_key(id)
                    && !report.kept_packs.contains(id)
                    && !writer.lost.contains_key(id)
                    && !emptying.contains(id)
            })
            .map(|(id, record)| (*id, record.committed_len));
        Ok(report)
    }

    /// Removes the file of pack `id`, which no record names, if it is empty.
    /// A file with bytes is a corruption error, because only lost metadata
    /// leaves one.
    fn remove_orphan(&self, writer: &mut Writer, id: u32, path: &Path, len: u64) -> Result<()> {
        if len > 0 {
            return Err(Error::corruption(format!(
                "pack file {} holds {len} bytes, but no pack record names it, so the metadata database \
                 lost committed records. Restore the store directory from a copy, or move the file out \
                 of the packs directory to give up the blocks in it",
                path.display()
            )));
        }
        self.files
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        writer.dirty.remove(&id);
        self.faults
            .check(PersistStep::PackUnlink)
            .and_then(|()| fs::remove_file(path))
            .map_err(|error| {
                io_failure(
                    format_args!("removing orphan pack {}", path.display()),
                    error,
                )
            })
    }

    /// Notes that a writer call begins: its first append makes the metadata
    /// durable first (see [`PackStore::put`]).
    pub(crate) fn begin_writer_call(&self) {
        self.writer().metadata_durable = false;
    }

    fn file(&self, pack: u32) -> Result<Arc<File>> {
        if let Some(file) = self
            .files
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&pack)
        {
            return Ok(Arc::clone(file));
        }
        let path = self.path_of(pack);
        let file = OpenOptions::new()
            .read(true)
            .write(!self.read_only)
            .open(&path)
            .map_err(|error| io_failure(format_args!("opening pack {}", path.display()), error))?;
        let file = Arc::new(file);
        self.files
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(pack, Arc::clone(&file));
        Ok(file)
    }

    fn create_pack(&self, writer: &mut Writer) -> Result<(u32, u64)> {
        let id = writer.last_id.checked_add(1).ok_or_else(|| {
            Error::operation_failure(
                "the store has used every pack id. Copy the snapshots into a new store",
            )
        })?;
        // ORDER: the record is durable before the file exists, so that a pack
        // file without a record never holds a committed block (see the module
        // documentation). An empty record is collected like any empty pack.
        let mut batch = Batch::default();
        batch.put(
            keys::pack(id),
            &PackRecord {
                committed_len: 0,
                live_blocks: 0,
            },
        )?;
        self.meta.commit(batch)?;
        writer.last_id = id;
        self.meta.flush()?;
        let path = self.path_of(id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|error| io_failure(format_args!("creating pack {}", path.display()), error))?;
        self.files
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::new(file));
        writer.last_id = id;
        writer.directory_dirty = true;
        Ok((id, 0))
    }

    /// Cuts `pack` back to `committed_len` after a create that failed before its
    /// appends were committed.
    pub(crate) fn discard_uncommitted(&self, pack: u32, committed_len: u64) -> Result<()> {
        self.check_writable("cut uncommitted bytes off a pack")?;
        let mut writer = self.writer();
        // The next append goes to the committed end even if the truncation
        // fails: it overwrites the discarded bytes instead of leaving them
        // below a later committed length, where nothing would reclaim them.
        if let Some((active, len)) = writer.active.as_mut() {
            if *active == pack {
                *len = committed_len;
            }
        }
        let truncated = self.file(pack).and_then(|file| {
            self.faults
                .check(PersistStep::PackTruncate)
                .and_then(|()| file.set_len(committed_len))
                .map_err(|error| io_failure(format_args!("truncating pack {pack}"), error))
        });
        if truncated.is_err() {
            self.mark_needs_reconcile();
        }
        truncated
    }

    /// Cuts a pack that no live block uses to zero bytes and makes that
    /// durable, before its record is removed. Returns false, and changes
    /// nothing, if the file holds bytes past `committed_len` that were kept
    /// (see [`PackStore::recover`]). A missing file counts as emptied.
    pub(crate) fn empty_pack(&self, pack: u32, committed_len: u64) -> Result<bool> {
        self.check_writable("empty a pack")?;
        let _writer = self.writer();
        let file = match self.file(pack) {
            Ok(file) => file,
            Err(_) if !self.path_of(pack).exists() => return Ok(true),
            Err(error) => return Err(error),
        };
        let len = file
            .metadata()
            .map_err(|error| io_failure(format_args!("reading pack {pack}"), error))?
            .len();
        if len > committed_len {
            return Ok(false);
        }
        let emptied = self
            .faults
            .check(PersistStep::PackTruncate)
            .and_then(|()| file.set_len(0))
            .and_then(|()| file.sync_all());
        if let Err(error) = emptied {
            self.mark_needs_reconcile();
            return Err(io_failure(format_args!("emptying pack {pack}"), error));
        }
        Ok(true)
    }

    /// Unlinks a pack that no live block uses.
    pub(crate) fn remove_pack(&self, pack: u32) -> Result<()> {
        self.check_writable("remove a pack")?;
        let mut writer = self.writer();
        if writer.active.is_some_and(|(active, _)| active == pack) {
            writer.active = None;
        }
        writer.dirty.remove(&pack);
        self.files
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&pack);
        let path = self.path_of(pack);
        match self
            .faults
            .check(PersistStep::PackUnlink)
            .and_then(|()| fs::remove_file(&path))
        {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => {
                self.mark_needs_reconcile();
                Err(io_failure(
                    format_args!("removing {}", path.display()),
                    error,
                ))
            }
        }
    }

    /// Makes the hole punches in `packs` durable, so that a freed range whose
    /// queue item is then removed cannot come back after a power loss. A pack
    /// already unlinked is skipped.
    pub(crate) fn sync_punched(&self, packs: &BTreeSet<u32>) -> Result<()> {
        self.check_writable("sync punched packs")?;
        for pack in packs {
            let file = match self.file(*pack) {
                Ok(file) => file,
                Err(_) if !self.path_of(*pack).exists() => continue,
                Err(error) => return Err(error),
            };
            self.faults
                .check(PersistStep::PackSync)
                .and_then(|()| file.sync_all())
                .map_err(|error| io_failure(format_args!("syncing pack {pack}"), error))?;
        }
        Ok(())
    }
}

impl BlockStore for PackStore {
    fn put(&self, bytes: &[u8]) -> Result<Extent> {
        self.check_writable("append a block")?;
        debug_assert_eq!(bytes.len() as u64, self.block_size);
        let mut writer = self.writer();
        if !writer.metadata_durable {
            // ORDER: a create commits its pending-create marker before its
            // first append, and this flush makes that marker durable before any
            // uncommitted byte reaches a pack. So at open, bytes past a committed
            // length without a durable marker are not an interrupted create's,
            // and they are kept instead of cut.
            self.meta.flush_if_needed()?;
            writer.metadata_durable = true;
        }
        if writer.appends_since_space_check == 0 {
            self.check_free_space()?;
        }
        writer.appends_since_space_check =
            (writer.appends_since_space_check + 1) % self.appends_per_space_check();
        let (pack, offset) = match writer.active {
            Some((id, len)) if len < MAX_PACK_BYTES => (id, len),
            _ => self.create_pack(&mut writer)?,
        };
        // A failed append leaves the pack active at the same offset, so the next
        // append overwrites whatever part of the block was written; bytes past
        // the committed length are cut when the packs are next reconciled.
        writer.active = Some((pack, offset));
        let file = self.file(pack)?;
        let appended = self
            .faults
            .check(PersistStep::PackAppend)
            .and_then(|()| file.write_all_at(bytes, offset));
        if let Err(error) = appended {
            self.mark_needs_reconcile();
            return Err(io_failure(
                format_args!("appending a block to pack {pack}"),
                error,
            ));
        }
        writer.active = Some((pack, offset + self.block_size));
        writer.dirty.insert(pack);
        Ok(Extent { pack, offset })
    }

    fn sync(&self) -> Result<()> {
        self.check_writable("sync the packs")?;
        let mut writer = self.writer();
        for pack in writer.dirty.clone() {
            let file = self.file(pack)?;
            self.faults
                .check(PersistStep::PackSync)
                .and_then(|()| file.sync_data())
                .map_err(|error| io_failure(format_args!("syncing pack {pack}"), error))?;
            writer.dirty.remove(&pack);
        }
        if writer.directory_dirty {
            self.faults
                .check(PersistStep::PackSync)
                .and_then(|()| File::open(&self.dir)?.sync_all())
                .map_err(|error| {
                    io_failure(
                        format_args!("syncing directory {}", self.dir.display()),
                        error,
                    )
                })?;
            writer.directory_dirty = false;
        }
        Ok(())
    }

    fn get(&self, extent: Extent, buffer: &mut [u8]) -> Result<()> {
        let file = match self.file(extent.pack) {
            Ok(file) => file,
            // A block record names the pack, so its file must exist. The
            // failed open adds nothing to that, so it is not kept as a cause.
            Err(_) if !self.path_of(extent.pack).exists() => {
                return Err(Error::corruption(format!(
                    "pack file {} is missing, so the blocks stored in it are lost. \
                     Run `blocksnap verify` to list every damaged block",
                    self.path_of(extent.pack).display()
                )))
            }
            Err(error) => return Err(error),
        };
        file.read_exact_at(buffer, extent.offset).map_err(|error| {
            if error.kind() == io::ErrorKind::UnexpectedEof {
                Error::corruption(format!(
                    "pack {} ends before offset {}, so a block stored there is missing. \
                     Run `blocksnap verify` to list every damaged block",
                    extent.pack, extent.offset
                ))
                .with_source(error)
            } else {
                io_failure(
                    format_args!("reading pack {} at offset {}", extent.pack, extent.offset),
                    error,
                )
            }
        })
    }

    fn free(&self, extent: Extent, blocks: u64) -> Result<()> {
        self.check_writable("free blocks")?;
        let file = match self.file(extent.pack) {
            Ok(file) => file,
            // A pack already unlinked has nothing left to free.
            Err(_) if !self.path_of(extent.pack).exists() => return Ok(()),
            Err(error) => return Err(error),
        };
        let punched = self.faults.check(PersistStep::HolePunch).and_then(|()| {
            rustix::fs::fallocate(
                &*file,
                rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
                extent.offset,
                self.block_size * blocks,
            )
            .map_err(io::Error::from)
        });
        match punched {
            Ok(()) => Ok(()),
            Err(error)
                if error.raw_os_error() == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error()) =>
            {
                // NOTE: without hole punching the bytes stay allocated until every
                // block of the pack is freed and the pack is unlinked.
                tracing::warn!(
                    pack = extent.pack,
                    "file system cannot punch holes; space returns when the pack empties"
                );
                Ok(())
            }
            Err(error) => Err(io_failure(
                format_args!(
                    "punching offset {} out of pack {}",
                    extent.offset, extent.pack
                ),
                error,
            )),
        }
    }
}

/// Bytes allocated on disk (`st_blocks` × 512) by `path` and everything below it,
/// so punched holes count as freed.
pub(crate) fn allocated_bytes(path: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let metadata = fs::symlink_metadata(path)
        .map_err(|error| io_failure(format_args!("measuring {}", path.display()), error))?;
    let mut total = metadata.blocks() * 512;
    if metadata.is_dir() {
        let entries = fs::read_dir(path)
            .map_err(|error| io_failure(format_args!("listing {}", path.display()), error))?;
        for entry in entries {
            let entry = entry
                .map_err(|error| io_failure(format_args!("listing {}", path.display()), error))?;
            total += allocated_bytes(&entry.path())?;
        }
    }
    Ok(total)
}

//! `create_disk_from_snapshot`: stream a snapshot's exact bytes, checking every
//! block against its hash.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use rayon::prelude::*;

use crate::error::{io_failure, Error, ErrorKind, Result};
use crate::model::{Operation, OperationStatus, OperationType, ResourceType};
use crate::names::validate_resource_name;
use crate::storage::hash::BlockHash;
use crate::storage::keys;
use crate::storage::meta::Batch;
use crate::storage::pack::BlockStore;
use crate::storage::records::{BlockRecord, Extent, SnapshotRecord};
use crate::Store;

use super::create::{ProgressFn, PAGE_ENTRIES};
use super::delete::not_found;

/// Blocks read and verified in parallel before they are written out in order.
const BLOCKS_PER_BATCH: usize = 64;

/// Source of zero bytes for writers that cannot seek over holes.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Converts a length already bounded by a block or buffer size.
fn to_usize(len: u64) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
}

/// Destination of restored bytes.
trait Target {
    fn write_block(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// Writes `len` zero bytes (a file target seeks over them instead).
    fn write_zeros(&mut self, len: u64) -> std::io::Result<()>;
    /// Completes a target of `length` bytes and makes it durable where it can.
    fn finish(&mut self, length: u64) -> std::io::Result<()>;
}

struct WriterTarget<'w, W: Write>(&'w mut W);

impl<W: Write> Target for WriterTarget<'_, W> {
    fn write_block(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_all(bytes)
    }

    fn write_zeros(&mut self, mut len: u64) -> std::io::Result<()> {
        while len > 0 {
            let step = to_usize(len).min(ZEROS.len());
            self.0.write_all(ZEROS.get(..step).unwrap_or_default())?;
            len -= step as u64;
        }
        Ok(())
    }

    fn finish(&mut self, _length: u64) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A file written sparsely: runs of zero blocks become holes.
struct SparseFileTarget {
    file: File,
}

impl Target for SparseFileTarget {
    fn write_block(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)
    }

    fn write_zeros(&mut self, len: u64) -> std::io::Result<()> {
        let offset = i64::try_from(len).map_err(std::io::Error::other)?;
        self.file.seek(SeekFrom::Current(offset)).map(|_| ())
    }

    /// Sets the exact length, which a trailing hole would otherwise leave short.
    fn finish(&mut self, length: u64) -> std::io::Result<()> {
        self.file.set_len(length)?;
        self.file.sync_all()
    }
}

impl Store {
    /// Writes the exact bytes of snapshot `snapshot_name` to `target` and records a
    /// `CreateDiskFromSnapshot` operation for the new disk `disk_name`.
    ///
    /// Every block is checked against its blake3 hash before it is written, so the
    /// call either writes exactly the snapshot's bytes or fails with an error: a
    /// corruption error naming the block index if stored bytes are damaged, or
    /// `NotFoundException` if the snapshot is deleted while it is being read.
    /// Memory use does not grow with the size of the snapshot.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = blocksnap::Store::open(dir.path())?;
    /// let image: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    /// store.create_disk_snapshot("disk-1", "snap-1", &image[..], &[])?;
    /// let mut restored = Vec::new();
    /// store.create_disk_from_snapshot("snap-1", "disk-2", &mut restored)?;
    /// assert_eq!(restored, image);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_disk_from_snapshot<W: Write>(
        &self,
        snapshot_name: &str,
        disk_name: &str,
        target: &mut W,
    ) -> Result<Vec<Operation>> {
        self.restore(snapshot_name, disk_name, &mut WriterTarget(target), None)
    }

    /// Restores snapshot `snapshot_name` into the file at `path` (created or
    /// truncated), leaving runs of zero blocks as holes, and syncs the file.
    pub fn create_disk_from_snapshot_to_file(
        &self,
        snapshot_name: &str,
        disk_name: &str,
        path: &Path,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Vec<Operation>> {
        // Check the request before the target is created or truncated.
        let snapshot = self.prepare_restore(snapshot_name, disk_name)?;
        self.check_target_outside_store(path)?;

        // Only a regular file is truncated, written with holes and removed on
        // failure. A device or FIFO gets every byte, zeros included, and stays.
        let existing = std::fs::metadata(path).ok();
        let regular = existing.as_ref().is_none_or(std::fs::Metadata::is_file);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(regular)
            .open(path)
            .map_err(|error| {
                io_failure(
                    format_args!("creating restore target {}", path.display()),
                    error,
                )
            })?;
        if !regular {
            let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
            let mut target = WriterTarget(&mut writer);
            return self.run_restore(&snapshot, disk_name, &mut target, progress);
        }
        let mut target = SparseFileTarget { file };
        let result = self.run_restore(&snapshot, disk_name, &mut target, progress);
        if result.is_err() {
            // A partial image must not pass for a restored disk.
            if let Err(error) = std::fs::remove_file(path) {
                tracing::warn!(path = %path.display(), %error, "could not remove the partial restore target");
            }
        }
        result
    }

    /// Returns `InvalidInputException` if writing a disk image to `path` could
    /// change a file of the store. That is a path inside its `metadata/` or
    /// `packs/` directory, reached by any name (a symbolic link, even a
    /// dangling one, or a bind mount). It is also an existing file of the store
    /// under another name (a hard link), or a loop device, or a partition of
    /// one, whose backing file is a file of the store. Restores call it before
    /// they create or truncate the target. A caller that writes snapshot data
    /// to a file itself, as the CLI's `get-snapshot-block --target` does,
    /// calls it first too.
    ///
    /// NOTE: a device stacked on a loop device another way (device-mapper,
    /// say) is not followed to its backing file.
    pub fn check_target_outside_store(&self, path: &Path) -> Result<()> {
        let inside = |own: &Path| {
            Error::invalid_input(format!(
                "target {} would write into the store's own directory {}. \
                 Write the restored disk outside it",
                path.display(),
                own.display()
            ))
        };
        let own_dirs = store_directories(&self.path);
        let final_path = follow_links(path);
        let parent = match final_path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        if let Ok(parent) = std::fs::metadata(&parent) {
            if let Some(own) = own_dirs.iter().find(|(_, dir)| same_inode(dir, &parent)) {
                return Err(inside(&own.0));
            }
        }
        // A hard link to a store file lives outside the store's directories,
        // so compare the file itself too, and for a loop device the file
        // behind it.
        if let Ok(existing) = std::fs::metadata(path) {
            let backing = loop_backing_file(&existing)
                .and_then(|file| Some((std::fs::metadata(&file).ok()?, file)));
            if let Some((backing, file)) = backing {
                for own in ["metadata", "packs"] {
                    if let Some(linked) = same_file_below(&self.path.join(own), &backing) {
                        return Err(Error::invalid_input(format!(
                            "target {} is a loop device backed by {}, which is the store's own \
                             file {}. Detach the loop device or write the restored disk elsewhere",
                            path.display(),
                            file.display(),
                            linked.display()
                        )));
                    }
                }
            }
            for own in ["metadata", "packs"] {
                if let Some(linked) = same_file_below(&self.path.join(own), &existing) {
                    return Err(Error::invalid_input(format!(
                        "target {} is the store's own file {} under another name. \
                         Write the restored disk to a new file outside the store",
                        path.display(),
                        linked.display()
                    )));
                }
            }
        }
        Ok(())
    }

    fn restore(
        &self,
        snapshot_name: &str,
        disk_name: &str,
        target: &mut dyn Target,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Vec<Operation>> {
        let snapshot = self.prepare_restore(snapshot_name, disk_name)?;
        self.run_restore(&snapshot, disk_name, target, progress)
    }

    /// Validates a restore request and loads its snapshot.
    fn prepare_restore(&self, snapshot_name: &str, disk_name: &str) -> Result<SnapshotRecord> {
        validate_resource_name("disk snapshot name", snapshot_name)?;
        validate_resource_name("disk name", disk_name)?;
        let snapshot = self.load_snapshot(snapshot_name)?;
        self.check_snapshot_access("lightsail:CreateDiskFromSnapshot", &snapshot)?;
        Ok(snapshot)
    }

    /// Streams `snapshot` into `target` and records the operation.
    fn run_restore(
        &self,
        snapshot: &SnapshotRecord,
        disk_name: &str,
        target: &mut dyn Target,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Vec<Operation>> {
        let mut operation = self.new_operation(
            disk_name,
            ResourceType::Disk,
            OperationType::CreateDiskFromSnapshot,
            &snapshot.name,
        )?;
        let result = self
            .stream_snapshot(snapshot, target, progress)
            .and_then(|()| {
                target
                    .finish(snapshot.length)
                    .map_err(|error| write_failure(snapshot, error))
            });
        match &result {
            Ok(()) => operation.set_status(OperationStatus::Succeeded),
            Err(error) => operation.fail(error),
        }
        let mut batch = Batch::default();
        operation.stage(&mut batch)?;
        self.meta.commit(batch)?;
        self.meta.flush()?;
        result?;
        Ok(vec![self.operation_shape(&operation.record)?])
    }

    pub(crate) fn get_snapshot_record(
        &self,
        snapshot_name: &str,
    ) -> Result<Option<SnapshotRecord>> {
        self.meta.get("snapshot", &keys::snapshot(snapshot_name))
    }

    /// Loads snapshot `snapshot_name`. Returns `NotFoundException` if it does
    /// not exist.
    pub(crate) fn load_snapshot(&self, snapshot_name: &str) -> Result<SnapshotRecord> {
        self.get_snapshot_record(snapshot_name)?
            .ok_or_else(|| not_found(snapshot_name))
    }

    fn stream_snapshot(
        &self,
        snapshot: &SnapshotRecord,
        target: &mut dyn Target,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<()> {
        let block_size = u64::from(self.config.block_size);
        let total_blocks = snapshot.length.div_ceil(block_size);
        let mut written: u64 = 0;
        let mut buffer = vec![0u8; BLOCKS_PER_BATCH * self.config.block_size as usize];

        for page_index in 0..snapshot.page_count {
            let first_block = page_index * PAGE_ENTRIES as u64;
            let blocks_in_page = (total_blocks - first_block).min(PAGE_ENTRIES as u64);
            let entries = self.load_root_page(snapshot, page_index, blocks_in_page)?;

            let mut run_start = 0usize;
            let entries_len = entries.as_ref().map_or(to_usize(blocks_in_page), Vec::len);
            while run_start < entries_len {
                let batch_len = (entries_len - run_start).min(BLOCKS_PER_BATCH);
                let slice = entries
                    .as_ref()
                    .and_then(|entries| entries.get(run_start..run_start + batch_len));
                match slice {
                    None => {
                        let remaining = snapshot.length - written;
                        let len = (batch_len as u64 * block_size).min(remaining);
                        target
                            .write_zeros(len)
                            .map_err(|error| write_failure(snapshot, error))?;
                        written += len;
                    }
                    Some(hashes) => {
                        let first = first_block + run_start as u64;
                        self.read_blocks(snapshot, first, hashes, &mut buffer)?;
                        for (offset, hash) in hashes.iter().enumerate() {
                            let remaining = snapshot.length - written;
                            let len = block_size.min(remaining);
                            if hash.is_zero() {
                                target
                                    .write_zeros(len)
                                    .map_err(|error| write_failure(snapshot, error))?;
                            } else {
                                let start = offset * to_usize(block_size);
                                let bytes =
                                    buffer.get(start..start + to_usize(len)).unwrap_or_default();
                                target
                                    .write_block(bytes)
                                    .map_err(|error| write_failure(snapshot, error))?;
                            }
                            written += len;
                        }
                    }
                }
                run_start += batch_len;
                if let Some(report) = progress {
                    report(written);
                }
            }
        }
        debug_assert_eq!(written, snapshot.length);
        Ok(())
    }

    /// Loads the entries of page `page_index` of `snapshot`, or `None` for an
    /// all-zero page, checking the page against its hash and expected length.
    fn load_root_page(
        &self,
        snapshot: &SnapshotRecord,
        page_index: u64,
        expected_len: u64,
    ) -> Result<Option<Vec<BlockHash>>> {
        let root_key = keys::root(snapshot.id, page_index);
        let Some(value) = self.meta.get_raw("root", &root_key)? else {
            self.ensure_still_live(snapshot)?;
            return Ok(None);
        };
        let page = super::gc::page_hash_from(&root_key, &value)?;
        let resolved = match self.resolve_page(&page) {
            Ok(Some(resolved)) => resolved,
            Ok(None) => {
                self.ensure_still_live(snapshot)?;
                return Err(Error::corruption(format!(
                    "page {page_index} ({page}) of snapshot {:?} is missing from the store. Run `blocksnap verify`",
                    snapshot.name
                )));
            }
            Err(error) => {
                // A delete that freed the page meanwhile is reported as such.
                self.ensure_still_live(snapshot)?;
                return Err(error);
            }
        };
        if resolved.entries.len() as u64 != expected_len {
            return Err(Error::corruption(format!(
                "page {page_index} of snapshot {:?} has {} entries, expected {expected_len}. Run `blocksnap verify`",
                snapshot.name,
                resolved.entries.len()
            )));
        }
        Ok(Some(resolved.entries))
    }

    /// Reads and verifies `hashes` (blocks `first..`) into `buffer` in parallel.
    fn read_blocks(
        &self,
        snapshot: &SnapshotRecord,
        first: u64,
        hashes: &[BlockHash],
        buffer: &mut [u8],
    ) -> Result<()> {
        let block_size = self.config.block_size as usize;
        let results: Vec<Result<()>> = buffer
            .par_chunks_mut(block_size)
            .zip(hashes.par_iter())
            .enumerate()
            .map(|(offset, (slot, hash))| {
                if hash.is_zero() {
                    return Ok(());
                }
                self.read_block_into(snapshot, first + offset as u64, hash, slot)
            })
            .collect();
        for result in results {
            if let Err(error) = result {
                // A block that vanished or changed under a concurrent delete is
                // reported as the delete, not as corruption.
                self.ensure_still_live(snapshot)?;
                return Err(error);
            }
        }
        Ok(())
    }

    /// Reads one block and checks it against `hash`.
    pub(crate) fn read_block_into(
        &self,
        snapshot: &SnapshotRecord,
        index: u64,
        hash: &BlockHash,
        slot: &mut [u8],
    ) -> Result<()> {
        let record = self.meta.get::<BlockRecord>("block", &keys::block(hash))?.ok_or_else(|| {
            Error::corruption(format!(
                "block {index} ({hash}) of snapshot {:?} is missing from the block index. Run `blocksnap verify`",
                snapshot.name
            ))
        })?;
        self.packs
            .get(
                Extent {
                    pack: record.pack,
                    offset: record.offset,
                },
                slot,
            )
            .map_err(|error| {
                if error.kind() != ErrorKind::Corruption {
                    return error;
                }
                // The message repeats the pack error's, so it is not chained.
                Error::corruption(format!(
                    "block {index} of snapshot {:?} cannot be read: {}",
                    snapshot.name,
                    error.message()
                ))
            })?;
        if BlockHash::of(slot) != *hash {
            return Err(Error::corruption(format!(
                "block {index} of snapshot {:?} does not match its hash {hash}: the stored bytes in pack {} at offset {} are damaged. \
                 Run `blocksnap verify` to list every damaged snapshot. After `blocksnap verify \
                 --repair`, a new snapshot of the original data stores the block again",
                snapshot.name, record.pack, record.offset
            )));
        }
        Ok(())
    }

    /// Returns `NotFoundException` if `snapshot` was deleted since it was read.
    pub(crate) fn ensure_still_live(&self, snapshot: &SnapshotRecord) -> Result<()> {
        match self.get_snapshot_record(&snapshot.name)? {
            Some(current) if current.id == snapshot.id => Ok(()),
            _ => Err(Error::not_found(format!(
                "disk snapshot {:?} was deleted while it was being read. Nothing more can be restored from it",
                snapshot.name
            ))),
        }
    }
}

fn write_failure(snapshot: &SnapshotRecord, error: std::io::Error) -> Error {
    io_failure(
        format_args!("writing the restored bytes of snapshot {:?}", snapshot.name),
        error,
    )
}

/// Returns the path of a file under `dir` (searched recursively) that is the
/// same file as `target`: the same device and inode.
fn same_file_below(dir: &Path, target: &std::fs::Metadata) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        // Follows a symbolic link to a file, but never into a directory, so
        // that the search cannot loop.
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        if metadata.is_dir() {
            if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                continue;
            }
            if let Some(found) = same_file_below(&path, target) {
                return Some(found);
            }
        } else if same_inode(&metadata, target) {
            return Some(path);
        }
    }
    None
}

/// Returns the file behind `device` if it is a loop device or a partition of
/// one, as Linux reports it in sysfs (`loop/backing_file` of the device, or of
/// the disk that contains the partition).
fn loop_backing_file(device: &std::fs::Metadata) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    if !device.file_type().is_block_device() {
        return None;
    }
    let rdev = device.rdev();
    let sysfs = format!(
        "/sys/dev/block/{}:{}",
        rustix::fs::major(rdev),
        rustix::fs::minor(rdev)
    );
    ["loop/backing_file", "../loop/backing_file"]
        .iter()
        .find_map(|name| std::fs::read_to_string(Path::new(&sysfs).join(name)).ok())
        .map(|text| {
            let name = text.trim_end_matches('\n');
            // The kernel appends this when the file was unlinked.
            std::path::PathBuf::from(name.strip_suffix(" (deleted)").unwrap_or(name))
        })
}

/// Returns the store's `metadata/` and `packs/` directories and the
/// directories below them, each with its metadata, skipping any that cannot
/// be read.
fn store_directories(store: &Path) -> Vec<(std::path::PathBuf, std::fs::Metadata)> {
    let mut found = Vec::new();
    let mut pending: Vec<std::path::PathBuf> = ["metadata", "packs"]
        .iter()
        .map(|own| store.join(own))
        .collect();
    while let Some(dir) = pending.pop() {
        let Ok(metadata) = std::fs::metadata(&dir) else {
            continue;
        };
        if !metadata.is_dir() || found.len() > 64 {
            continue;
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                    pending.push(entry.path());
                }
            }
        }
        found.push((dir, metadata));
    }
    found
}

/// Follows `path` through symbolic links, dangling ones included, to the
/// name a write would create or open. Stops after 40 links, as the kernel
/// does, and returns the last name reached.
fn follow_links(path: &Path) -> std::path::PathBuf {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        let Ok(link) = std::fs::read_link(&current) else {
            break;
        };
        current = match current.parent() {
            Some(parent) if link.is_relative() => parent.join(link),
            _ => link,
        };
    }
    current
}

/// True if `left` and `right` are the same file: the same device and inode.
fn same_inode(left: &std::fs::Metadata, right: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;

    left.dev() == right.dev() && left.ino() == right.ino()
}

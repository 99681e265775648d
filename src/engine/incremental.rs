//! The changed-block API: snapshots built from a parent plus a list of changed
//! blocks, the list of blocks that differ between two snapshots, and random
//! access to one block (as the EBS direct APIs and qcow2 dirty bitmaps offer).

use std::collections::BTreeSet;
use std::io::{self, Read, Seek, SeekFrom};

use crate::error::{io_failure, Error, Result};
use crate::model::{Operation, Tag};
use crate::names::validate_resource_name;
use crate::storage::hash::{BlockHash, PageHash};
use crate::storage::keys;
use crate::storage::records::SnapshotRecord;
use crate::Store;

use super::create::{hash_block, validate_create, CreateRun, ProgressFn, PAGE_ENTRIES};

/// One block of a snapshot, as [`Store::read_block`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotBlock {
    /// Index of the block in the snapshot (offset / block size).
    pub index: u64,
    /// blake3 of the block as stored: zero-padded to the block size for a last
    /// partial block, and [`BlockHash::ZERO`] for a block of zeros.
    pub hash: BlockHash,
    /// The block's bytes within the snapshot's length (shorter than the block
    /// size only for a last partial block).
    pub data: Vec<u8>,
}

impl Store {
    /// Creates snapshot `snapshot_name` of disk `disk_name` from snapshot `parent`
    /// of the same disk plus the blocks listed in `changed_blocks`, which are read
    /// from `source` at their offsets; every other block is taken from the parent.
    ///
    /// The snapshot's length is `source`'s length. Blocks past the parent's length
    /// and, when the length changed, the parent's and the new last block are read
    /// as well, whether listed or not. A page with no changed block is referenced
    /// again at the cost of one count, so the call costs time in proportion to the
    /// changed blocks plus one metadata update per 1,024 blocks.
    ///
    /// The caller vouches for the list: a changed block left out of it keeps the
    /// parent's content. Durability and errors are as for
    /// [`Store::create_disk_snapshot`]; in addition `InvalidInputException` is
    /// returned if `parent` belongs to another disk or a listed index lies past
    /// the end of `source`, and `NotFoundException` if `parent` does not exist.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Cursor;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = blocksnap::Store::open(dir.path())?;
    /// let mut image = vec![3u8; 8 * 65536];
    /// store.create_disk_snapshot("disk-1", "monday", &image[..], &[])?;
    /// image[5 * 65536] = 4;
    /// store.create_disk_snapshot_incremental("disk-1", "tuesday", "monday", &[5], Cursor::new(&image), &[])?;
    /// assert_eq!(store.list_changed_blocks("monday", "tuesday")?, vec![5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_disk_snapshot_incremental<R: Read + Seek>(
        &self,
        disk_name: &str,
        snapshot_name: &str,
        parent: &str,
        changed_blocks: &[u64],
        source: R,
        tags: &[Tag],
    ) -> Result<Vec<Operation>> {
        self.create_disk_snapshot_incremental_with_progress(
            disk_name,
            snapshot_name,
            parent,
            changed_blocks,
            source,
            tags,
            None,
        )
    }

    /// [`Store::create_disk_snapshot_incremental`] that calls `progress` with the
    /// number of bytes read so far.
    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors the create call plus the parent and the block list"
    )]
    pub fn create_disk_snapshot_incremental_with_progress<R: Read + Seek>(
        &self,
        disk_name: &str,
        snapshot_name: &str,
        parent: &str,
        changed_blocks: &[u64],
        mut source: R,
        tags: &[Tag],
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Vec<Operation>> {
        let request = validate_create(disk_name, snapshot_name, tags)?;
        validate_resource_name("parent disk snapshot name", parent)?;

        self.check_writable("create a disk snapshot")?;
        let guard = self.lock_writer();
        self.ensure_name_free(snapshot_name)?;
        let parent_record = self.load_snapshot(parent)?;
        // The new snapshot takes the parent's unlisted blocks, and a restore of
        // it returns them, so using a parent needs the right to restore it.
        // Checked first, so that a denied caller learns nothing of the parent.
        self.check_snapshot_access("lightsail:CreateDiskFromSnapshot", &parent_record)?;
        if parent_record.disk_name != disk_name {
            return Err(Error::invalid_input(format!(
                "parent snapshot {parent:?} is of disk {:?}, not {disk_name:?}. Name a snapshot of the same disk",
                parent_record.disk_name
            )));
        }
        let length = source.seek(SeekFrom::End(0)).map_err(|error| {
            if error.raw_os_error() == Some(rustix::io::Errno::SPIPE.raw_os_error()) {
                return Error::invalid_input(format!(
                    "the source of snapshot {snapshot_name:?} cannot seek, as a pipe or FIFO \
                     cannot. A create with a changed-block list reads only the listed blocks, \
                     so give it a file or block device"
                ));
            }
            io_failure(
                format_args!("measuring the source of snapshot {snapshot_name:?}"),
                error,
            )
        })?;
        if length == 0 {
            return Err(Error::invalid_input(format!(
                "the source of snapshot {snapshot_name:?} is empty. Give a disk image or device with at least one byte"
            )));
        }
        let block_size = u64::from(self.config.block_size);
        let total_blocks = length.div_ceil(block_size);
        let mut changed: BTreeSet<u64> = BTreeSet::new();
        for index in changed_blocks {
            if *index >= total_blocks {
                return Err(Error::invalid_input(format!(
                    "changed block {index} lies past the end of the source, which has {total_blocks} blocks of {block_size} bytes. \
                     List only indices below {total_blocks}"
                )));
            }
            changed.insert(*index);
        }
        // Blocks past the parent's end are always read; `run_incremental` adds
        // them page by page so that the set stays the size of the list.
        let parent_blocks = parent_record.length.div_ceil(block_size);
        if length != parent_record.length {
            changed.insert(total_blocks - 1);
            if parent_blocks > 0 && parent_blocks <= total_blocks {
                changed.insert(parent_blocks - 1);
            }
        }

        let snapshot_id = self.authorize_create(&request)?;
        self.packs.check_free_space()?;
        let lost = self.packs.lost_packs();
        if !lost.is_empty() {
            let ids: Vec<String> = lost.keys().map(u32::to_string).collect();
            let packs = if ids.len() == 1 {
                format!("pack file {} is", ids.join(""))
            } else {
                format!("pack files {} are", ids.join(", "))
            };
            return Err(Error::operation_failure(format!(
                "{packs} missing or shorter than recorded, so blocks that snapshot \
                 {snapshot_name:?} would take from {parent:?} without reading them may be lost. \
                 Create it without a changed-block list, which reads every block and stores \
                 lost ones again"
            )));
        }
        let damaged = self.damaged_copies_in_use()?;
        if damaged > 0 {
            let blocks = if damaged == 1 {
                "1 block is".to_owned()
            } else {
                format!("{damaged} blocks are")
            };
            return Err(Error::operation_failure(format!(
                "{blocks} stored only as copies that a repair found damaged, and snapshot \
                 {snapshot_name:?} could take such a block from {parent:?} without reading it. \
                 Create it without a changed-block list, or first snapshot again, without a \
                 list, the data of the snapshots that `blocksnap verify` reports damaged. \
                 Either stores the damaged blocks again"
            )));
        }

        let mut run = CreateRun::new(
            self,
            &guard,
            snapshot_id,
            snapshot_name,
            disk_name,
            Some(parent_record),
        )?;
        let result = run_incremental(
            &mut run,
            &mut source,
            &changed,
            length,
            progress,
            &request.tag_pairs,
        );
        result.inspect_err(|error| run.abort(error))
    }

    /// Returns the indices of the blocks whose content differs between snapshots
    /// `first` and `second` of the same disk, in increasing order. Blocks that only
    /// one of the two has (the snapshots differ in length) count as changed.
    ///
    /// Pages the two snapshots share are skipped whole, so the cost is one root
    /// entry per 1,024 blocks plus the changed pages.
    pub fn list_changed_blocks(&self, first: &str, second: &str) -> Result<Vec<u64>> {
        validate_resource_name("first disk snapshot name", first)?;
        validate_resource_name("second disk snapshot name", second)?;
        let first = self.load_snapshot(first)?;
        let second = self.load_snapshot(second)?;
        for snapshot in [&first, &second] {
            self.check_snapshot_access("lightsail:GetDiskSnapshot", snapshot)?;
        }
        if first.disk_name != second.disk_name {
            return Err(Error::invalid_input(format!(
                "snapshots {:?} and {:?} are of different disks ({:?} and {:?}). Compare snapshots of one disk",
                first.name, second.name, first.disk_name, second.disk_name
            )));
        }

        // A delete that runs meanwhile removes root entries, which would read
        // as zero pages, so the result counts only if both snapshots remain.
        let changed = self.changed_blocks_between(&first, &second);
        self.ensure_still_live(&first)?;
        self.ensure_still_live(&second)?;
        changed
    }

    /// Compares the roots of `first` and `second` page by page.
    fn changed_blocks_between(
        &self,
        first: &SnapshotRecord,
        second: &SnapshotRecord,
    ) -> Result<Vec<u64>> {
        let block_size = u64::from(self.config.block_size);
        let first_blocks = first.length.div_ceil(block_size);
        let second_blocks = second.length.div_ceil(block_size);
        let mut changed = Vec::new();
        for page_index in 0..first.page_count.max(second.page_count) {
            let first_page = self.root_entry(first, page_index)?;
            let second_page = self.root_entry(second, page_index)?;
            let start = page_index * PAGE_ENTRIES as u64;
            let first_len = first_blocks.saturating_sub(start).min(PAGE_ENTRIES as u64);
            let second_len = second_blocks.saturating_sub(start).min(PAGE_ENTRIES as u64);
            if first_page == second_page && first_len == second_len {
                continue;
            }
            let first_entries = self.page_entries(first_page, first_len)?;
            let second_entries = self.page_entries(second_page, second_len)?;
            for offset in 0..first_len.max(second_len) {
                let position = usize::try_from(offset).unwrap_or(usize::MAX);
                if first_entries.get(position) != second_entries.get(position) {
                    changed.push(start + offset);
                }
            }
        }
        // The last block of a snapshot whose length changed differs in its
        // length even when its padded content does not.
        if first.length != second.length {
            for last in [first_blocks, second_blocks] {
                if let Some(index) = last.checked_sub(1) {
                    if let Err(position) = changed.binary_search(&index) {
                        changed.insert(position, index);
                    }
                }
            }
        }
        Ok(changed)
    }

    /// Reads block `index` of snapshot `snapshot_name`, checked against its hash.
    ///
    /// Returns `InvalidInputException` if the index lies past the snapshot's end,
    /// and a corruption error naming the block if its bytes are damaged.
    pub fn read_block(&self, snapshot_name: &str, index: u64) -> Result<SnapshotBlock> {
        validate_resource_name("disk snapshot name", snapshot_name)?;
        let snapshot = self.load_snapshot(snapshot_name)?;
        // The block's bytes are the snapshot's data, so reading one needs the
        // same right as a restore.
        self.check_snapshot_access("lightsail:CreateDiskFromSnapshot", &snapshot)?;
        let block_size = u64::from(self.config.block_size);
        let blocks = snapshot.length.div_ceil(block_size);
        if index >= blocks {
            return Err(Error::invalid_input(format!(
                "block {index} lies past the end of snapshot {snapshot_name:?}, which has {blocks} blocks. Use an index below {blocks}"
            )));
        }
        let page_index = index / PAGE_ENTRIES as u64;
        let start = page_index * PAGE_ENTRIES as u64;
        let page_len = (blocks - start).min(PAGE_ENTRIES as u64);
        let entries = match self
            .root_entry(&snapshot, page_index)
            .and_then(|page| self.page_entries(page, page_len))
        {
            Ok(entries) => entries,
            Err(error) => {
                self.ensure_still_live(&snapshot)?;
                return Err(error);
            }
        };
        let position = usize::try_from(index - start).unwrap_or(usize::MAX);
        let hash = entries.get(position).copied().unwrap_or(BlockHash::ZERO);

        let len = usize::try_from(block_size.min(snapshot.length - index * block_size))
            .unwrap_or(usize::MAX);
        let mut data = vec![0u8; self.config.block_size as usize];
        let read = if hash.is_zero() {
            Ok(())
        } else {
            self.read_block_into(&snapshot, index, &hash, &mut data)
        };
        // A delete that runs meanwhile can remove the root entry (read as a
        // zero page) or the block, so the result counts only if the snapshot
        // remains.
        self.ensure_still_live(&snapshot)?;
        read?;
        data.truncate(len);
        Ok(SnapshotBlock { index, hash, data })
    }

    /// The page hash at `page_index` of `snapshot`, `None` for a zero page.
    fn root_entry(&self, snapshot: &SnapshotRecord, page_index: u64) -> Result<Option<PageHash>> {
        let key = keys::root(snapshot.id, page_index);
        self.meta
            .get_raw("root", &key)?
            .map(|value| super::gc::page_hash_from(&key, &value))
            .transpose()
    }

    /// The entries of page `page` (zeros for `None`), exactly `len` long.
    fn page_entries(&self, page: Option<PageHash>, len: u64) -> Result<Vec<BlockHash>> {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let Some(page) = page else {
            return Ok(vec![BlockHash::ZERO; len]);
        };
        let resolved = self
            .resolve_page(&page)?
            .ok_or_else(|| missing_page(&page))?;
        let mut entries = resolved.entries;
        entries.resize(len, BlockHash::ZERO);
        Ok(entries)
    }
}

/// Builds the snapshot page by page: unchanged pages are referenced again, the
/// others start from the parent's entries with the changed blocks read in.
fn run_incremental<R: Read + Seek>(
    run: &mut CreateRun<'_>,
    source: &mut R,
    changed: &BTreeSet<u64>,
    length: u64,
    progress: Option<ProgressFn<'_>>,
    tags: &[(String, String)],
) -> Result<Vec<Operation>> {
    let store = run.store;
    let block_size = u64::from(store.config.block_size);
    let total_blocks = length.div_ceil(block_size);
    let page_count = total_blocks.div_ceil(PAGE_ENTRIES as u64);
    let parent = run.parent.clone().ok_or_else(|| {
        Error::service("an incremental create has no parent. This is a bug in blocksnap")
    })?;
    let parent_blocks = parent.length.div_ceil(block_size);
    let mut buffer = vec![0u8; store.config.block_size as usize];
    let mut bytes_read: u64 = 0;

    run.start()?;
    for page_index in 0..page_count {
        let start = page_index * PAGE_ENTRIES as u64;
        let len = (total_blocks - start).min(PAGE_ENTRIES as u64);
        let parent_len = parent_blocks.saturating_sub(start).min(PAGE_ENTRIES as u64);
        let parent_page = store.root_entry(&parent, page_index)?;
        let mut to_read: Vec<u64> = changed.range(start..start + len).copied().collect();
        let tail_from = parent_blocks.max(start);
        if tail_from < start + len {
            to_read.extend(tail_from..start + len);
            to_read.sort_unstable();
            to_read.dedup();
        }

        if to_read.is_empty() && parent_len == len {
            match parent_page {
                Some(page) => run.reuse_page(page)?,
                None => run.page_index += 1,
            }
            continue;
        }

        let parent_resolved = match parent_page {
            Some(page) => Some(
                store
                    .resolve_page(&page)?
                    .ok_or_else(|| missing_page(&page))?,
            ),
            None => None,
        };
        let mut entries = parent_resolved
            .as_ref()
            .map(|parent| parent.entries.clone())
            .unwrap_or_default();
        entries.resize(usize::try_from(len).unwrap_or(usize::MAX), BlockHash::ZERO);
        run.parent_page = parent_resolved;
        run.entries = entries;
        for index in to_read {
            let block_len =
                usize::try_from(block_size.min(length - index * block_size)).unwrap_or(usize::MAX);
            let block = buffer.get_mut(..block_len).unwrap_or_default();
            source
                .seek(SeekFrom::Start(index * block_size))
                .and_then(|_| source.read_exact(block))
                .map_err(|error| read_failure(run.snapshot_name, index, error))?;
            let hash = hash_block(block, store.config.block_size as usize);
            let position = usize::try_from(index - start).unwrap_or(usize::MAX);
            run.store_block(position, block, hash)?;
            if let Some(entry) = run.entries.get_mut(position) {
                *entry = hash;
            }
            bytes_read += block_len as u64;
        }
        run.commit_page()?;
        if let Some(report) = progress {
            report(bytes_read);
        }
    }
    run.length = length;
    run.commit_snapshot(tags)
}

fn missing_page(page: &PageHash) -> Error {
    Error::corruption(format!(
        "page {page} is referenced by a snapshot but not stored. Run `blocksnap verify`"
    ))
}

fn read_failure(snapshot_name: &str, index: u64, error: io::Error) -> Error {
    io_failure(
        format_args!("reading changed block {index} of the source of snapshot {snapshot_name:?}"),
        error,
    )
}

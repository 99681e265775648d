//! Garbage collection: draining the durable queue of decrements.
//!
//! Each step takes the oldest queue item and applies it in one atomic commit that
//! also removes (or shrinks) the item, so a crash neither loses nor repeats a
//! decrement. Punching a freed range and unlinking an empty pack are the only
//! steps outside the metadata commit. Both wait until the commit that removed
//! the last reference is durable, since a crash that lost that commit would
//! otherwise bring back a record pointing at punched or unlinked bytes. A
//! punch is idempotent, and the `FreeRuns` item stays queued until its
//! punches are durable, so a crash just punches again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rayon::prelude::*;

use crate::error::{Error, ErrorKind, Result};
use crate::model::OperationStatus;
use crate::storage::codec;
use crate::storage::hash::{BlockHash, PageHash, HASH_LEN};
use crate::storage::keys;
use crate::storage::meta::Batch;
use crate::storage::pack::BlockStore;
use crate::storage::records::{
    BlockRecord, Extent, ExtentRun, GcItem, PackRecord, PageCount, PendingDelete, SnapshotRecord,
};
use crate::store::RecoveryReport;
use crate::store::{bad_key, WriterGuard};
use crate::Store;

/// Root entries dropped per step at most. Most entries of a snapshot's root
/// name pages that other snapshots share, and dropping one changes a count.
const ROOT_ENTRIES_PER_STEP: usize = 1024;
/// Pages whose count reaches zero per step at most. Each can free 1,024
/// blocks.
const FREED_PAGES_PER_STEP: usize = 16;
/// Block decrements per queue item: every block one step can free, so the
/// freed ranges of a step land in one `FreeRuns` item and merge into long
/// hole-punch runs. Split by hash order, they would interleave and each punch
/// would cover a block or two.
const BLOCKS_PER_ITEM: usize = FREED_PAGES_PER_STEP * crate::engine::create::PAGE_ENTRIES;

impl Store {
    /// Finishes whatever garbage collection and cleanup earlier calls left
    /// undone: a delete whose collection failed part way, the rollback of a
    /// failed create, bytes a failed append left past a pack's committed length.
    /// Every writer call and every open does this first, so calling it is only
    /// needed to free the space at once or to check that nothing is left.
    ///
    /// Returns what was done; [`RecoveryReport::default()`] means nothing was
    /// left to do. Fails with `OperationFailureException` if a step fails again,
    /// leaving the rest queued.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = blocksnap::Store::open(dir.path())?;
    /// store.create_disk_snapshot("disk-1", "snap-1", &[1u8; 65536][..], &[])?;
    /// store.delete_disk_snapshot("snap-1")?;
    /// assert_eq!(store.collect_garbage()?, blocksnap::RecoveryReport::default());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn collect_garbage(&self) -> Result<RecoveryReport> {
        self.check_writable("collect garbage")?;
        let guard = self.lock_writer_only();
        self.finish_interrupted_work(&guard, false)
    }

    /// Adds `item` to the GC queue in `batch`. Its key is a new id, so the
    /// queue runs it after every item queued before.
    pub(crate) fn queue_gc_item(&self, batch: &mut Batch, item: &GcItem) -> Result<()> {
        batch.put(keys::gc_item(self.meta.next_id()?), item)
    }

    /// Runs queued garbage collection to completion and returns the number of
    /// steps it took. When the queue empties, every delete waiting on it is
    /// marked `Succeeded` in one commit after the last step.
    ///
    /// The files of the packs cut whole are unlinked at the end, after one
    /// flush that makes their records' removal and the `Succeeded` marks
    /// durable together. Cutting the files already freed their bytes, so no
    /// space comes back later for the wait, and the caller's own flush then
    /// has nothing left to write.
    pub(crate) fn drain_gc(&self, guard: &WriterGuard<'_>) -> Result<u64> {
        let mut emptied = Vec::new();
        let drained = self
            .drain_queue(guard, &mut emptied)
            .and_then(|steps| self.finish_pending_deletes().map(|()| steps));
        // Also after a failed step: the packs cut before it are empty, and
        // their records are gone once the flush in `unlink_packs` succeeds.
        let unlinked = self.unlink_packs(emptied);
        let steps = drained?;
        unlinked?;
        Ok(steps)
    }

    /// Runs queue items until the queue is empty; adds the packs that steps
    /// cut whole, whose files are still to be unlinked, to `emptied`.
    fn drain_queue(&self, guard: &WriterGuard<'_>, emptied: &mut Vec<u32>) -> Result<u64> {
        let mut steps = 0;
        // Snapshot ids whose DropRoot item was already checked against the live
        // snapshot records in this drain.
        let mut checked: HashSet<u64> = HashSet::new();
        loop {
            let next = self
                .meta
                .scan("GC queue", &[keys::GC_QUEUE])
                .next()
                .transpose()?;
            let Some((key, value)) = next else {
                break;
            };
            let item: GcItem = codec::decode("GC queue item", &value)?;
            match item {
                GcItem::DropRoot { snapshot_id } => {
                    if checked.insert(snapshot_id) {
                        self.retire_live_record(snapshot_id)?;
                    }
                    self.drop_root_step(&key, snapshot_id)?;
                }
                GcItem::ReleaseBlocks { blocks } => self.release_blocks_step(&key, &blocks)?,
                GcItem::FreeExtents { extents } => {
                    let runs = extents.into_iter().map(ExtentRun::from).collect();
                    emptied.extend(self.free_extents_step(guard, &key, runs)?);
                }
                GcItem::FreeRuns { runs } => {
                    emptied.extend(self.free_extents_step(guard, &key, runs)?);
                }
                GcItem::FreePages { pages } => self.free_pages_step(&key, &pages)?,
            }
            steps += 1;
        }
        Ok(steps)
    }

    /// Removes the live snapshot record with id `snapshot_id`, if there is one,
    /// before its root is dropped: a root is only collected once its snapshot is
    /// gone, and a listed snapshot without its root would restore as zeros.
    ///
    /// A delete removes the record in the commit that queues the root, and
    /// recovery queues only roots whose create never committed. So a record
    /// exists here only when a create failed after its snapshot commit (the
    /// final flush failed) and its rollback queued the root. The create has
    /// reported failure, so the snapshot goes too.
    fn retire_live_record(&self, snapshot_id: u64) -> Result<()> {
        for entry in self
            .meta
            .scan_records::<SnapshotRecord>("snapshot", &[keys::SNAPSHOT])
        {
            let (key, snapshot) = entry?;
            if snapshot.id != snapshot_id {
                continue;
            }
            tracing::warn!(
                snapshot = %snapshot.name,
                id = snapshot_id,
                "the root of a listed snapshot is queued for collection; removing the snapshot first"
            );
            let mut batch = Batch::default();
            batch.remove(key.to_vec());
            return self.meta.commit(batch);
        }
        Ok(())
    }

    /// Drops a run of root entries of one snapshot and decrements their pages.
    /// The run ends at [`ROOT_ENTRIES_PER_STEP`] entries or at the entry that
    /// brings the [`FREED_PAGES_PER_STEP`]th page to zero, whichever comes
    /// first.
    fn drop_root_step(&self, queue_key: &[u8], snapshot_id: u64) -> Result<()> {
        let mut batch = Batch::default();
        // Per page: its stored count and its count after this step's drops.
        let mut counts: BTreeMap<PageHash, (u64, u64)> = BTreeMap::new();
        let mut freed = Vec::new();
        let mut reached_end = true;
        let root = self.meta.scan("root", &keys::root_prefix(snapshot_id));
        for (entries, entry) in root.enumerate() {
            if entries == ROOT_ENTRIES_PER_STEP || freed.len() == FREED_PAGES_PER_STEP {
                reached_end = false;
                break;
            }
            let (key, value) = entry?;
            let page = page_hash_from(&key, &value)?;
            let (stored, remaining) = match counts.entry(page) {
                std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::btree_map::Entry::Vacant(entry) => {
                    let stored = self
                        .meta
                        .get::<PageCount>("page count", &keys::page_count(&page))?
                        .ok_or_else(|| missing_page(&page))?
                        .refcount;
                    entry.insert((stored, stored))
                }
            };
            *remaining = remaining.checked_sub(1).ok_or_else(|| {
                Error::corruption(format!(
                    "page {page} has reference count {stored} but more references to it are being \
                     dropped. Run `blocksnap verify` and restore the store from a copy"
                ))
            })?;
            if *remaining == 0 {
                freed.push(page);
            }
            batch.remove(key.to_vec());
        }
        // The step that reaches the end of the root removes the item in the
        // same commit.
        if reached_end {
            batch.remove(queue_key.to_vec());
        }

        for (page, (_, remaining)) in counts {
            if remaining > 0 {
                batch.put(
                    keys::page_count(&page),
                    &PageCount {
                        refcount: remaining,
                    },
                )?;
            } else {
                batch.remove(keys::page_count(&page));
            }
        }
        if !freed.is_empty() {
            self.queue_gc_item(&mut batch, &GcItem::FreePages { pages: freed })?;
        }
        self.meta.commit(batch)
    }

    /// Removes pages whose counts reached zero, re-expressing the delta pages
    /// based on them, and applies the block decrements in the same commit. It
    /// queues them instead when they are more than one step may apply. Pages
    /// that cannot join this step go back into the queue as a new item.
    fn free_pages_step(&self, queue_key: &[u8], pages: &[PageHash]) -> Result<()> {
        let mut batch = Batch::default();
        let mut block_changes: HashMap<BlockHash, i64> = HashMap::new();
        let done = self.free_pages_batch(&mut batch, pages, &mut block_changes)?;
        batch.remove(queue_key.to_vec());
        if let Some(rest) = pages.get(done..).filter(|rest| !rest.is_empty()) {
            self.queue_gc_item(
                &mut batch,
                &GcItem::FreePages {
                    pages: rest.to_vec(),
                },
            )?;
        }

        let mut releases: Vec<(BlockHash, u32)> = Vec::new();
        for (block, change) in block_changes {
            if change > 0 {
                // A re-expressed dependent now also references a block that
                // the freed page referenced, so the block has a record: the
                // freed page's reference still counts in it.
                let record = self
                    .meta
                    .get::<BlockRecord>("block", &keys::block(&block))?
                    .ok_or_else(|| missing_block(&block))?;
                let refcount = record
                    .refcount
                    .checked_add(change.unsigned_abs())
                    .ok_or_else(|| {
                        Error::corruption(format!(
                            "block {block} has reference count {} and cannot take {change} more. \
                             Run `blocksnap verify`",
                            record.refcount
                        ))
                    })?;
                batch.put(keys::block(&block), &BlockRecord { refcount, ..record })?;
            } else if change < 0 {
                let decrement = u32::try_from(change.unsigned_abs()).unwrap_or(u32::MAX);
                releases.push((block, decrement));
            }
        }
        releases.sort_unstable();
        if releases.len() <= BLOCKS_PER_ITEM {
            // One step may release them all, so they are released in this
            // commit. A queued item would be written, read back and removed
            // again: 36 bytes of log per block, and one more commit.
            self.stage_block_releases(&mut batch, &releases)?;
        } else {
            for chunk in releases.chunks(BLOCKS_PER_ITEM) {
                self.queue_gc_item(
                    &mut batch,
                    &GcItem::ReleaseBlocks {
                        blocks: chunk.to_vec(),
                    },
                )?;
            }
        }
        self.meta.commit(batch)
    }

    /// Decrements blocks; those that reach zero leave the index and their
    /// ranges are queued for punching, merged into runs.
    fn release_blocks_step(&self, queue_key: &[u8], blocks: &[(BlockHash, u32)]) -> Result<()> {
        let mut batch = Batch::default();
        batch.remove(queue_key.to_vec());
        self.stage_block_releases(&mut batch, blocks)?;
        self.meta.commit(batch)
    }

    /// Stages into `batch` the decrement of each block of `blocks` by its
    /// count. Blocks that reach zero leave the index, and their ranges are
    /// queued in one `FreeRuns` item.
    fn stage_block_releases(&self, batch: &mut Batch, blocks: &[(BlockHash, u32)]) -> Result<()> {
        let records = self.read_block_records(blocks)?;
        let mut freed = Vec::new();
        let mut packs: BTreeMap<u32, PackRecord> = BTreeMap::new();
        let mut unreadable = 0u64;
        for ((hash, decrement), entry) in blocks.iter().zip(records) {
            let Some((key, record)) = entry else {
                // Nothing is left to free for a block the index lost; the
                // pages that still name it are `verify`'s to report.
                unreadable += 1;
                continue;
            };
            let remaining = record.refcount.checked_sub(u64::from(*decrement)).ok_or_else(|| {
                Error::corruption(format!(
                    "block {hash} has reference count {} but {decrement} references are being dropped. \
                     Run `blocksnap verify`",
                    record.refcount
                ))
            })?;
            if remaining > 0 {
                batch.put(
                    key,
                    &BlockRecord {
                        refcount: remaining,
                        ..record
                    },
                )?;
                continue;
            }
            batch.remove(key);
            freed.push(ExtentRun::from(Extent {
                pack: record.pack,
                offset: record.offset,
            }));
            let pack = match packs.entry(record.pack) {
                std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::btree_map::Entry::Vacant(entry) => entry.insert(
                    self.meta
                        .get::<PackRecord>("pack", &keys::pack(record.pack))?
                        .ok_or_else(|| missing_pack_record(record.pack))?,
                ),
            };
            pack.live_blocks = pack.live_blocks.saturating_sub(1);
        }
        if unreadable > 0 {
            tracing::warn!(
                blocks = unreadable,
                "blocks being released are missing from the block index or do not decode; \
                 skipped them. Run `blocksnap verify`"
            );
        }
        for (id, record) in &packs {
            batch.put(keys::pack(*id), record)?;
        }
        if !freed.is_empty() {
            self.queue_gc_item(
                batch,
                &GcItem::FreeRuns {
                    runs: merge_runs(freed, u64::from(self.config.block_size)),
                },
            )?;
        }
        Ok(())
    }

    /// Reads the index records of `blocks`, in order, each with its key. The
    /// lookups are independent, so they run on every core.
    fn read_block_records(
        &self,
        blocks: &[(BlockHash, u32)],
    ) -> Result<Vec<Option<KeyedBlockRecord>>> {
        blocks
            .par_iter()
            .map(|(hash, _)| {
                let key = keys::block(hash);
                match self.meta.get::<BlockRecord>("block", &key) {
                    Ok(record) => Ok(record.map(|record| (key, record))),
                    // An undecodable record is left for `repair`, like a
                    // missing one.
                    Err(error) if error.kind() == ErrorKind::Corruption => Ok(None),
                    Err(error) => Err(error),
                }
            })
            .collect()
    }

    /// Punches freed runs, then retires the item and any pack left empty.
    /// Returns the packs cut whole, whose records are removed but whose
    /// files the caller still has to unlink with [`Store::unlink_packs`].
    fn free_extents_step(
        &self,
        guard: &WriterGuard<'_>,
        queue_key: &[u8],
        runs: Vec<ExtentRun>,
    ) -> Result<Vec<u32>> {
        // ORDER: the commit that removed these blocks from the index must be
        // durable before their bytes are punched. Otherwise a crash could bring
        // the block records back, pointing at zeros.
        self.meta.flush_if_needed()?;
        let runs = merge_runs(runs, u64::from(self.config.block_size));
        let (to_punch, emptied) = self.punch_runs(&runs)?;
        let mut punched_packs = BTreeSet::new();
        for run in to_punch {
            let start = Extent {
                pack: run.pack,
                offset: run.offset,
            };
            self.packs.free(start, run.blocks)?;
            punched_packs.insert(run.pack);
        }
        // ORDER: the punches must be durable before the item that requests them
        // is removed, or a power loss could leave the ranges allocated with
        // nothing left to free them.
        self.packs.sync_punched(&punched_packs)?;
        // ORDER: the records of the packs cut whole are removed in this
        // commit, after `empty_pack` made each cut durable, so that a file a
        // crash leaves without a record is empty.
        let mut batch = Batch::default();
        batch.remove(queue_key.to_vec());
        for pack in &emptied {
            batch.remove(keys::pack(*pack));
        }
        self.meta.commit(batch)?;
        self.remove_empty_packs(guard)?;
        Ok(emptied)
    }

    /// Splits `runs`, sorted and merged by [`merge_runs`], into the runs to
    /// punch and the packs cut whole. A pack with no live block left is cut to
    /// zero bytes here instead of punched, and its id is returned so that its
    /// record can go and its file be unlinked.
    fn punch_runs(&self, runs: &[ExtentRun]) -> Result<(Vec<ExtentRun>, Vec<u32>)> {
        let mut to_punch = Vec::new();
        let mut emptied = Vec::new();
        for pack_runs in runs.chunk_by(|left, right| left.pack == right.pack) {
            let Some(pack) = pack_runs.first().map(|run| run.pack) else {
                continue;
            };
            let record = self.meta.get::<PackRecord>("pack", &keys::pack(pack))?;
            if let Some(record) = record.filter(|record| record.live_blocks == 0) {
                // Cutting the whole file frees every range at once.
                if self.packs.empty_pack(pack, record.committed_len)? {
                    emptied.push(pack);
                    continue;
                }
            }
            to_punch.extend_from_slice(pack_runs);
        }
        Ok((to_punch, emptied))
    }

    /// Unlinks every pack whose record shows no live block left in it.
    pub(crate) fn remove_empty_packs(&self, _guard: &WriterGuard<'_>) -> Result<()> {
        let mut candidates = Vec::new();
        for entry in self.meta.scan_records::<PackRecord>("pack", &[keys::PACK]) {
            let (key, record) = entry?;
            if record.live_blocks == 0 {
                let pack = keys::trailing_u32(&key).ok_or_else(|| bad_key("pack", &key))?;
                candidates.push((pack, record.committed_len));
            }
        }
        // ORDER: each file is emptied durably first, so that the file a crash
        // can leave without a record is empty, which is what the open removes.
        let mut empty = Vec::new();
        for (pack, committed_len) in candidates {
            if self.packs.empty_pack(pack, committed_len)? {
                empty.push(pack);
            }
        }
        if empty.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::default();
        for pack in &empty {
            batch.remove(keys::pack(*pack));
        }
        self.meta.commit(batch)?;
        self.unlink_packs(empty)
    }

    /// Unlinks the files of `packs`, whose records' removal is committed.
    fn unlink_packs(&self, packs: Vec<u32>) -> Result<()> {
        if packs.is_empty() {
            return Ok(());
        }
        // ORDER: the records' removal must be durable before the files are
        // unlinked, because a file unlinked while its record's removal is not
        // yet durable could come back as a missing pack with live blocks.
        let removed = self.meta.flush().and_then(|()| {
            for pack in packs {
                self.packs.remove_pack(pack)?;
            }
            Ok(())
        });
        if removed.is_err() {
            // The files whose records are gone are removed by the next
            // reconcile: at the next writer call or open.
            self.packs.mark_needs_reconcile();
        }
        removed
    }

    /// Marks every delete that was waiting on the queue `Succeeded`, unless its
    /// call already recorded it `Failed`. The caller flushes before it reports
    /// success.
    fn finish_pending_deletes(&self) -> Result<()> {
        let mut batch = Batch::default();
        for entry in self
            .meta
            .scan_records::<PendingDelete>("pending delete", &[keys::PENDING_DELETE])
        {
            let (key, _) = entry?;
            let seq = keys::trailing_u64(&key).ok_or_else(|| bad_key("pending delete", &key))?;
            if let Some(mut operation) = self.load_operation(seq)? {
                if operation.record.status == OperationStatus::Started.as_str() {
                    operation.set_status(OperationStatus::Succeeded);
                    batch.put(keys::operation(seq), &operation.record)?;
                }
            }
            batch.remove(key.to_vec());
        }
        if batch.len() > 0 {
            self.meta.commit(batch)?;
        }
        Ok(())
    }
}

/// Sorts `runs` by pack and offset and merges the runs that touch or overlap,
/// so that each range is punched once. Offsets are multiples of `block_size`,
/// as every block is appended whole.
pub(crate) fn merge_runs(mut runs: Vec<ExtentRun>, block_size: u64) -> Vec<ExtentRun> {
    let end_of = |run: &ExtentRun| {
        run.offset
            .saturating_add(run.blocks.saturating_mul(block_size))
    };
    runs.retain(|run| run.blocks > 0);
    runs.sort_unstable_by_key(|run| (run.pack, run.offset));
    let mut merged: Vec<ExtentRun> = Vec::with_capacity(runs.len());
    for run in runs {
        if let Some(last) = merged.last_mut() {
            if last.pack == run.pack && run.offset <= end_of(last) {
                let end = end_of(last).max(end_of(&run));
                last.blocks = (end - last.offset) / block_size;
                continue;
            }
        }
        merged.push(run);
    }
    merged
}

/// Decodes a root entry's value.
pub(crate) fn page_hash_from(key: &[u8], value: &[u8]) -> Result<PageHash> {
    let bytes: [u8; HASH_LEN] = value.try_into().map_err(|_| bad_key("root entry", key))?;
    Ok(PageHash::from_bytes(bytes))
}

fn missing_page(page: &PageHash) -> Error {
    Error::corruption(format!(
        "page {page} is referenced by a snapshot root but is not stored. Run `blocksnap verify`"
    ))
}

/// A block record with its key; `None` where the index has no readable one.
type KeyedBlockRecord = (Vec<u8>, BlockRecord);

fn missing_block(block: &BlockHash) -> Error {
    Error::corruption(format!(
        "block {block} is referenced by a page being collected but is not in the block index. \
         Run `blocksnap verify`"
    ))
}

fn missing_pack_record(pack: u32) -> Error {
    Error::corruption(format!(
        "pack {pack} contains a live block but has no pack record. Run `blocksnap verify`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pack: u32, offset: u64, blocks: u64) -> ExtentRun {
        ExtentRun {
            pack,
            offset,
            blocks,
        }
    }

    #[test]
    fn merge_runs_joins_adjacent_blocks() {
        let blocks = [3, 0, 1, 2, 5].map(|index| run(1, index * 4096, 1));
        let merged = merge_runs(blocks.to_vec(), 4096);
        assert_eq!(merged, vec![run(1, 0, 4), run(1, 5 * 4096, 1)]);
    }

    #[test]
    fn merge_runs_keeps_packs_apart() {
        let runs = vec![run(2, 0, 1), run(1, 4096, 1), run(1, 0, 1), run(2, 4096, 2)];
        let merged = merge_runs(runs, 4096);
        assert_eq!(merged, vec![run(1, 0, 2), run(2, 0, 3)]);
    }

    #[test]
    fn merge_runs_absorbs_overlaps_and_repeats() {
        let runs = vec![
            run(1, 0, 4),
            run(1, 4096, 1),
            run(1, 2 * 4096, 4),
            run(1, 0, 4),
            run(1, 9 * 4096, 0),
        ];
        let merged = merge_runs(runs, 4096);
        assert_eq!(merged, vec![run(1, 0, 6)]);
    }

    #[test]
    fn merge_runs_of_nothing_is_empty() {
        assert_eq!(merge_runs(Vec::new(), 65536), Vec::new());
    }
}

//! Garbage collection: draining the durable queue of decrements.
//!
//! Each step takes the oldest queue item and applies it in one atomic commit that
//! also removes (or shrinks) the item, so a crash neither loses nor repeats a
//! decrement. Punching a freed range is the only step outside the metadata
//! commit; it is idempotent, and the `FreeExtents` item stays queued until the
//! punches are done, so a crash just punches again.

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Result};
use crate::model::OperationStatus;
use crate::storage::codec;
use crate::storage::hash::{BlockHash, PageHash, HASH_LEN};
use crate::storage::keys;
use crate::storage::meta::Batch;
use crate::storage::pack::BlockStore;
use crate::storage::records::{
    BlockRecord, Extent, GcItem, PackRecord, PageBody, PageCount, PendingDelete,
};
use crate::store::{bad_key, WriterGuard};
use crate::Store;

/// Root entries dropped per step. Each can free a page of 1,024 blocks.
const ROOT_ENTRIES_PER_STEP: usize = 16;
/// Block decrements per queue item.
const BLOCKS_PER_ITEM: usize = 4096;

impl Store {
    /// Runs queued garbage collection to completion and returns the number of
    /// steps it took. When the queue empties, every delete waiting on it is
    /// marked `Succeeded` in the same commit as the last step.
    pub(crate) fn drain_gc(&self, guard: &WriterGuard<'_>) -> Result<u64> {
        let mut steps = 0;
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
                GcItem::DropRoot { snapshot_id } => self.drop_root_step(&key, snapshot_id)?,
                GcItem::ReleaseBlocks { blocks } => self.release_blocks_step(&key, &blocks)?,
                GcItem::FreeExtents { extents } => self.free_extents_step(guard, &key, &extents)?,
            }
            steps += 1;
        }
        self.finish_pending_deletes()?;
        Ok(steps)
    }

    /// Drops a run of root entries of one snapshot and decrements their pages.
    fn drop_root_step(&self, queue_key: &[u8], snapshot_id: u64) -> Result<()> {
        let mut batch = Batch::default();
        let mut page_decrements: BTreeMap<PageHash, u64> = BTreeMap::new();
        let mut entries = 0;
        for entry in self.meta.scan("root", &keys::root_prefix(snapshot_id)) {
            let (key, value) = entry?;
            page_decrements
                .entry(page_hash_from(&key, &value)?)
                .and_modify(|count| *count += 1)
                .or_insert(1);
            batch.remove(key.to_vec());
            entries += 1;
            if entries == ROOT_ENTRIES_PER_STEP {
                break;
            }
        }
        if entries == 0 {
            batch.remove(queue_key.to_vec());
            return self.meta.commit(batch);
        }

        let mut block_releases: HashMap<BlockHash, u32> = HashMap::new();
        for (page, decrement) in page_decrements {
            let count = self
                .meta
                .get::<PageCount>("page count", &keys::page_count(&page))?
                .ok_or_else(|| missing_page(&page))?;
            let remaining = count.refcount.checked_sub(decrement).ok_or_else(|| {
                Error::corruption(format!(
                    "page {page} has reference count {} but {decrement} references are being dropped. \
                     Run `blocksnap verify` and restore the store from a copy",
                    count.refcount
                ))
            })?;
            if remaining > 0 {
                batch.put(
                    keys::page_count(&page),
                    &PageCount {
                        refcount: remaining,
                    },
                )?;
                continue;
            }
            let body = self
                .meta
                .get::<PageBody>("page", &keys::page_body(&page))?
                .ok_or_else(|| missing_page(&page))?;
            for block in body.entries.iter().filter(|block| !block.is_zero()) {
                *block_releases.entry(*block).or_insert(0) += 1;
            }
            batch.remove(keys::page_count(&page));
            batch.remove(keys::page_body(&page));
        }

        let mut releases: Vec<(BlockHash, u32)> = block_releases.into_iter().collect();
        releases.sort_unstable();
        for chunk in releases.chunks(BLOCKS_PER_ITEM) {
            batch.put(
                keys::gc_item(self.meta.next_id()?),
                &GcItem::ReleaseBlocks {
                    blocks: chunk.to_vec(),
                },
            )?;
        }
        self.meta.commit(batch)
    }

    /// Decrements blocks; those that reach zero leave the index and their
    /// ranges are queued for punching.
    fn release_blocks_step(&self, queue_key: &[u8], blocks: &[(BlockHash, u32)]) -> Result<()> {
        let mut batch = Batch::default();
        let mut freed = Vec::new();
        let mut packs: BTreeMap<u32, PackRecord> = BTreeMap::new();
        for (hash, decrement) in blocks {
            let record = self
                .meta
                .get::<BlockRecord>("block", &keys::block(hash))?
                .ok_or_else(|| {
                    Error::corruption(format!(
                        "block {hash} is referenced by a page being collected but is not in the block index. \
                         Run `blocksnap verify`"
                    ))
                })?;
            let remaining = record.refcount.checked_sub(u64::from(*decrement)).ok_or_else(|| {
                Error::corruption(format!(
                    "block {hash} has reference count {} but {decrement} references are being dropped. \
                     Run `blocksnap verify`",
                    record.refcount
                ))
            })?;
            if remaining > 0 {
                batch.put(
                    keys::block(hash),
                    &BlockRecord {
                        refcount: remaining,
                        ..record
                    },
                )?;
                continue;
            }
            batch.remove(keys::block(hash));
            freed.push(Extent {
                pack: record.pack,
                offset: record.offset,
            });
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
        for (id, record) in &packs {
            batch.put(keys::pack(*id), record)?;
        }
        batch.remove(queue_key.to_vec());
        if !freed.is_empty() {
            batch.put(
                keys::gc_item(self.meta.next_id()?),
                &GcItem::FreeExtents { extents: freed },
            )?;
        }
        self.meta.commit(batch)
    }

    /// Punches freed ranges, then retires the item and any pack left empty.
    fn free_extents_step(
        &self,
        guard: &WriterGuard<'_>,
        queue_key: &[u8],
        extents: &[Extent],
    ) -> Result<()> {
        for extent in extents {
            self.packs.free(*extent)?;
        }
        let mut batch = Batch::default();
        batch.remove(queue_key.to_vec());
        self.meta.commit(batch)?;
        self.remove_empty_packs(guard)
    }

    /// Unlinks every pack whose records say no live block remains in it.
    pub(crate) fn remove_empty_packs(&self, _guard: &WriterGuard<'_>) -> Result<()> {
        let mut empty = Vec::new();
        for entry in self.meta.scan_records::<PackRecord>("pack", &[keys::PACK]) {
            let (key, record) = entry?;
            if record.live_blocks == 0 {
                empty.push(keys::trailing_u32(&key).ok_or_else(|| bad_key("pack", &key))?);
            }
        }
        if empty.is_empty() {
            return Ok(());
        }
        // The record goes first: a crash after this commit leaves a file that no
        // record names, which the next open removes.
        let mut batch = Batch::default();
        for pack in &empty {
            batch.remove(keys::pack(*pack));
        }
        self.meta.commit(batch)?;
        for pack in empty {
            self.packs.remove_pack(pack)?;
        }
        Ok(())
    }

    /// Marks every delete that was waiting on the queue `Succeeded`.
    fn finish_pending_deletes(&self) -> Result<()> {
        let mut batch = Batch::default();
        for entry in self
            .meta
            .scan_records::<PendingDelete>("pending delete", &[keys::PENDING_DELETE])
        {
            let (key, _) = entry?;
            let seq = keys::trailing_u64(&key).ok_or_else(|| bad_key("pending delete", &key))?;
            if let Some(mut operation) = self.load_operation(seq)? {
                operation.set_status(OperationStatus::Succeeded);
                batch.put(keys::operation(seq), &operation.record)?;
            }
            batch.remove(key.to_vec());
        }
        if batch.len() > 0 {
            self.meta.commit(batch)?;
        }
        Ok(())
    }
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

fn missing_pack_record(pack: u32) -> Error {
    Error::corruption(format!(
        "pack {pack} holds a live block but has no pack record. Run `blocksnap verify`"
    ))
}

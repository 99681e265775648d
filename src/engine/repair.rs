//! `repair`: rebuild every reference count from the roots and remove what no
//! live snapshot references, without touching anything a snapshot needs.
//!
//! Repair reads the whole store like [`Store::verify`], then applies every fix
//! in one atomic commit that also replaces the GC queue, so a crash leaves
//! either the old state or the repaired one. Bytes of removed blocks are
//! punched afterwards through the GC queue, which makes the commit durable
//! first. Missing or damaged pages and blocks cannot be rebuilt from anything
//! in the store; repair names the snapshots and block indices they affect.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::error::Result;
use crate::storage::codec;
use crate::storage::hash::{BlockHash, PageHash, HASH_LEN};
use crate::storage::keys;
use crate::storage::meta::Batch;
use crate::storage::pack::BlockStore;
use crate::storage::pack::MAX_PACK_BYTES;
use crate::storage::records::{
    BlockRecord, Extent, ExtentRun, GcItem, PackRecord, PageBody, PageCount, PageDelta,
    PendingCreate, SnapshotRecord,
};
use crate::store::bad_key;
use crate::Store;

use super::create::PAGE_ENTRIES;
use super::gc::merge_runs;
use super::pages::StoredPage;

/// Maximum number of problem descriptions kept in a [`RepairReport`]. The
/// counters go on past it.
const MAX_PROBLEMS: usize = 100;
/// Marks the copy of `hash` at `extent` damaged unless `marks` has that mark
/// already. Removes the mark from `marks`, so that the marks left there once
/// every block is checked are the stale ones.
fn mark_damaged(
    marks: &mut HashMap<BlockHash, Extent>,
    hash: BlockHash,
    extent: Extent,
    plan: &mut Plan,
    report: &mut RepairReport,
) -> Result<()> {
    if marks.remove(&hash) != Some(extent) {
        plan.batch.put(keys::damaged_block(&hash), &extent)?;
        report.damaged_copies_marked += 1;
    }
    Ok(())
}

/// Maximum number of block indices listed per damaged snapshot. The count goes
/// on past it.
const MAX_LISTED_INDICES: usize = 100;
/// Maximum number of runs per `FreeRuns` item that repair queues.
const RUNS_PER_ITEM: usize = 4096;

/// The result of [`Store::repair`]: what was fixed, and what could not be.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairReport {
    /// Live snapshots whose roots were walked.
    pub snapshots_checked: u64,
    /// Stored blocks read back and re-hashed.
    pub blocks_checked: u64,
    /// Root entries that belong to no live snapshot, removed.
    pub orphan_root_entries_removed: u64,
    /// Stored pages that no root entry names, removed with their counts.
    pub unreferenced_pages_removed: u64,
    /// Page counts set to the number of root entries that name the page.
    pub page_counts_fixed: u64,
    /// Block counts set to the number of page entries that name the block.
    pub block_counts_fixed: u64,
    /// Stored blocks that no page names, removed from the index and punched out
    /// of their packs.
    pub leaked_blocks_removed: u64,
    /// Blocks that no readable page names but that were kept, because a page
    /// some snapshot needs is missing or damaged and might name them.
    pub leaked_blocks_kept: u64,
    /// Pack records whose live-block count or committed length was set to match
    /// the block records, or that were created for blocks pointing into a pack
    /// without one.
    pub pack_records_fixed: u64,
    /// GC queue items replaced by the recount.
    pub gc_items_replaced: u64,
    /// Distinct pages and blocks that live snapshots need but the store does
    /// not have, or whose record does not decode. Not repairable.
    pub missing_blocks: u64,
    /// Distinct pages and blocks whose stored bytes no longer match their hash.
    /// Not repairable.
    pub corrupt_blocks: u64,
    /// Copies of missing or corrupt blocks newly marked as damaged. The next
    /// create that reads the same bytes stores them again, and every snapshot
    /// that names the block restores again.
    pub damaged_copies_marked: u64,
    /// Damage marks removed because their block is gone or was stored again.
    pub stale_damage_marks_removed: u64,
    /// The snapshots that cannot be restored in full, with the block indices
    /// affected.
    pub damaged_snapshots: Vec<DamagedSnapshot>,
    /// Descriptions of the first problems found.
    #[serde(skip)]
    pub problems: Vec<String>,
}

/// A snapshot that lost data: [`Store::create_disk_from_snapshot`] fails on it
/// with a corruption error at the first of these blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DamagedSnapshot {
    /// Name of the snapshot, or of the create that was under way.
    pub snapshot_name: String,
    /// Number of the snapshot's blocks that are missing or damaged.
    pub damaged_blocks: u64,
    /// The first of those block indices (offset / block size), in increasing
    /// order; at most 100 are listed.
    pub block_indices: Vec<u64>,
}

impl RepairReport {
    /// True when no missing or damaged data was found: after the repair the
    /// store verifies clean.
    pub fn is_fully_repaired(&self) -> bool {
        self.missing_blocks == 0 && self.corrupt_blocks == 0
    }

    /// True when the repair changed nothing.
    pub fn changed_nothing(&self) -> bool {
        self.orphan_root_entries_removed == 0
            && self.unreferenced_pages_removed == 0
            && self.page_counts_fixed == 0
            && self.block_counts_fixed == 0
            && self.leaked_blocks_removed == 0
            && self.pack_records_fixed == 0
            && self.gc_items_replaced == 0
            && self.damaged_copies_marked == 0
            && self.stale_damage_marks_removed == 0
    }

    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        }
    }
}

/// A snapshot or a create under way whose root is counted.
struct Owner {
    name: String,
    /// Number of blocks, when known (a create under way has no length yet).
    blocks: Option<u64>,
}

/// Pages and blocks that a live root needs and that cannot be read.
#[derive(Default)]
struct Damage {
    /// Pages that are missing, do not decode or fail their hash.
    pages: HashSet<PageHash>,
    /// Root entries whose value is not a page hash: (snapshot id, page index).
    roots: HashSet<(u64, u64)>,
    /// Blocks that are missing, unreadable or fail their hash.
    blocks: HashSet<BlockHash>,
}

impl Damage {
    fn is_empty(&self) -> bool {
        self.pages.is_empty() && self.roots.is_empty() && self.blocks.is_empty()
    }
}

/// Everything repair decided from the first, read-only pass.
#[derive(Default)]
struct Plan {
    batch: Batch,
    /// Ranges to punch once the batch is durable.
    free: Vec<Extent>,
    damage: Damage,
}

impl Store {
    /// Repairs what can be repaired without losing data and reports the rest.
    ///
    /// Recounts every page and block reference from the roots of the live
    /// snapshots and sets every count that differs. Sets each pack's
    /// live-block count and committed length from the block records. Removes
    /// root entries of no live snapshot, pages no root names and blocks no page
    /// names, and punches the removed blocks out of their packs. Replaces the
    /// GC queue by the result. Blocks are only removed when every page a live
    /// snapshot needs could be read, since a page that cannot be read might
    /// name them.
    ///
    /// Missing and corrupt pages and blocks are not repairable from the
    /// store: the report counts them and names each snapshot they affect with
    /// its block indices. Those snapshots keep failing to restore with a
    /// corruption error, and every other snapshot restores exactly, before
    /// and after. Each damaged block copy is marked, so that the next create
    /// that reads the same bytes stores them again and heals every snapshot
    /// that names the block.
    ///
    /// Takes the writer lock and reads every stored block once, as
    /// [`Store::verify`] does. Restores may run meanwhile. Fails with
    /// `OperationFailureException` if a write fails; the repair commits
    /// atomically, so running it again after the fault clears finishes it.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = blocksnap::Store::open(dir.path())?;
    /// store.create_disk_snapshot("disk-1", "snap-1", &[1u8; 65536][..], &[])?;
    /// let report = store.repair()?;
    /// assert!(report.is_fully_repaired());
    /// assert!(report.changed_nothing());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn repair(&self) -> Result<RepairReport> {
        self.check_writable("repair the store")?;
        let guard = self.lock_writer_only();
        // Queued work is finished the normal way where it can be. A step that
        // fails (on a damaged page, say) is replaced by the recount below.
        if let Err(error) = self.finish_interrupted_work(&guard, false) {
            tracing::warn!(%error, "queued collection failed; repair replaces it with a recount");
        }

        let mut report = RepairReport::default();
        let mut plan = Plan::default();
        let owners = self.repair_owners(&mut report)?;
        let expected_pages = self.repair_roots(&owners, &mut plan, &mut report)?;
        let expected_blocks = self.repair_pages(&expected_pages, &mut plan, &mut report)?;
        let keep_leaked = !plan.damage.pages.is_empty() || !plan.damage.roots.is_empty();
        let live = self.repair_blocks(&expected_blocks, keep_leaked, &mut plan, &mut report)?;
        self.repair_packs(&live, &mut plan, &mut report)?;
        self.replace_gc_queue(&live.positions, &mut plan, &mut report)?;

        // The punches go through the queue, in the same commit as the removal
        // of their blocks; the queue flushes that commit before it punches.
        let Plan {
            mut batch,
            free,
            damage,
        } = plan;
        let block_size = u64::from(self.config.block_size);
        let runs = merge_runs(free.into_iter().map(ExtentRun::from).collect(), block_size);
        for runs in runs.chunks(RUNS_PER_ITEM) {
            self.queue_gc_item(
                &mut batch,
                &GcItem::FreeRuns {
                    runs: runs.to_vec(),
                },
            )?;
        }
        if batch.len() > 0 {
            self.meta.commit(batch)?;
        }
        self.drain_gc(&guard)?;
        self.remove_empty_packs(&guard)?;
        self.meta.flush_if_needed()?;

        if !damage.is_empty() {
            report.damaged_snapshots = self.damaged_snapshots(&owners, &damage)?;
        }
        tracing::info!(
            orphan_root_entries_removed = report.orphan_root_entries_removed,
            unreferenced_pages_removed = report.unreferenced_pages_removed,
            page_counts_fixed = report.page_counts_fixed,
            block_counts_fixed = report.block_counts_fixed,
            leaked_blocks_removed = report.leaked_blocks_removed,
            pack_records_fixed = report.pack_records_fixed,
            missing_blocks = report.missing_blocks,
            corrupt_blocks = report.corrupt_blocks,
            damaged_copies_marked = report.damaged_copies_marked,
            stale_damage_marks_removed = report.stale_damage_marks_removed,
            damaged_snapshots = report.damaged_snapshots.len(),
            "repaired store"
        );
        Ok(report)
    }

    /// Lists the owners of roots: live snapshots, plus creates whose marker is
    /// still there (their rollback failed and has not been retried yet).
    fn repair_owners(&self, report: &mut RepairReport) -> Result<HashMap<u64, Owner>> {
        let block_size = u64::from(self.config.block_size);
        let mut owners = HashMap::new();
        for entry in self
            .meta
            .scan_records::<SnapshotRecord>("snapshot", &[keys::SNAPSHOT])
        {
            let (_, snapshot) = entry?;
            report.snapshots_checked += 1;
            owners.insert(
                snapshot.id,
                Owner {
                    name: snapshot.name,
                    blocks: Some(snapshot.length.div_ceil(block_size)),
                },
            );
        }
        for entry in self
            .meta
            .scan_records::<PendingCreate>("pending create", &[keys::PENDING_CREATE])
        {
            let (key, create) = entry?;
            let id = keys::trailing_u64(&key).ok_or_else(|| bad_key("pending create", &key))?;
            owners.entry(id).or_insert(Owner {
                name: create.snapshot_name,
                blocks: None,
            });
        }
        Ok(owners)
    }

    /// Counts the root entries of owners per page and removes the others.
    fn repair_roots(
        &self,
        owners: &HashMap<u64, Owner>,
        plan: &mut Plan,
        report: &mut RepairReport,
    ) -> Result<HashMap<PageHash, u64>> {
        let mut expected_pages: HashMap<PageHash, u64> = HashMap::new();
        for entry in self.meta.scan("root", &[keys::ROOT]) {
            let (key, value) = entry?;
            let Some((snapshot_id, page_index)) = keys::parse_root(&key) else {
                // A key of the root family that is not a root key names no
                // snapshot that could need it.
                plan.batch.remove(key.to_vec());
                report.orphan_root_entries_removed += 1;
                continue;
            };
            if !owners.contains_key(&snapshot_id) {
                plan.batch.remove(key.to_vec());
                report.orphan_root_entries_removed += 1;
                continue;
            }
            let Ok(bytes) = <[u8; HASH_LEN]>::try_from(value.as_ref()) else {
                plan.damage.roots.insert((snapshot_id, page_index));
                report.missing_blocks += 1;
                report.problem(format!(
                    "root entry {page_index} of snapshot id {snapshot_id} is {} bytes long instead of {HASH_LEN}",
                    value.len()
                ));
                continue;
            };
            *expected_pages
                .entry(PageHash::from_bytes(bytes))
                .or_insert(0) += 1;
        }
        Ok(expected_pages)
    }

    /// Fixes page counts and delta-page edges, removes pages that no root
    /// needs, and returns the number of references each block should have.
    ///
    /// A page is needed when a root entry names it or a needed delta page is
    /// based on it. A needed page that no root entry names is queued for
    /// freeing, which re-expresses the delta pages based on it.
    fn repair_pages(
        &self,
        expected_pages: &HashMap<PageHash, u64>,
        plan: &mut Plan,
        report: &mut RepairReport,
    ) -> Result<HashMap<BlockHash, u64>> {
        let stored = self.repair_scan_pages(plan, report)?;

        // Needed pages: the closure of the root-named pages over delta bases.
        let mut needed: HashSet<PageHash> = HashSet::new();
        let mut pending: Vec<PageHash> = expected_pages.keys().copied().collect();
        while let Some(page) = pending.pop() {
            if !needed.insert(page) {
                continue;
            }
            if let Some(Some(form)) = stored.get(&page) {
                pending.extend(form.base());
            }
        }

        let mut expected_blocks: HashMap<BlockHash, u64> = HashMap::new();
        let mut expected_edges: HashSet<(PageHash, PageHash)> = HashSet::new();
        let mut unnamed = Vec::new();
        for (page, form) in &stored {
            if !needed.contains(page) {
                plan.batch.remove(keys::page_body(page));
                plan.batch.remove(keys::page_delta(page));
                plan.batch.remove(keys::page_count(page));
                report.unreferenced_pages_removed += 1;
                continue;
            }
            if let Some(form) = form {
                // A damaged page that still decodes keeps every block it
                // names: which of its entries are wrong is unknown.
                for block in form.block_refs() {
                    *expected_blocks.entry(*block).or_insert(0) += 1;
                }
                if let Some(base) = form.base() {
                    expected_edges.insert((base, *page));
                }
            }
            if form.is_none() || self.resolve_page(page).is_err() {
                plan.damage.pages.insert(*page);
                report.corrupt_blocks += 1;
                report.problem(format!(
                    "page {page} does not decode, does not match its hash or misses a base"
                ));
            }

            let expected = expected_pages.get(page).copied().unwrap_or(0);
            if expected == 0 {
                unnamed.push(*page);
            }
            let stored_count = self
                .meta
                .get::<PageCount>("page count", &keys::page_count(page))
                .ok()
                .flatten()
                .map(|count| count.refcount);
            if expected == 0 && stored_count.is_some() {
                plan.batch.remove(keys::page_count(page));
                report.page_counts_fixed += 1;
                report.problem(format!(
                    "page {page} had count {stored_count:?}; no root entry names it, only delta pages"
                ));
            } else if expected > 0 && stored_count != Some(expected) {
                plan.batch
                    .put(keys::page_count(page), &PageCount { refcount: expected })?;
                report.page_counts_fixed += 1;
                report.problem(format!(
                    "page {page} had count {stored_count:?}; {expected} root entries name it"
                ));
            }
        }
        if !unnamed.is_empty() {
            self.queue_gc_item(&mut plan.batch, &GcItem::FreePages { pages: unnamed })?;
        }
        self.repair_page_edges(&expected_edges, plan, report)?;

        for entry in self.meta.scan("page count", &[keys::PAGE_COUNT]) {
            let (key, _) = entry?;
            let Some(hash) = keys::trailing_hash(&key) else {
                plan.batch.remove(key.to_vec());
                report.page_counts_fixed += 1;
                continue;
            };
            let page = PageHash::from_bytes(hash);
            if !stored.contains_key(&page) && !expected_pages.contains_key(&page) {
                plan.batch.remove(key.to_vec());
                report.page_counts_fixed += 1;
            }
        }
        for (page, expected) in expected_pages {
            if !stored.contains_key(page) {
                plan.damage.pages.insert(*page);
                report.missing_blocks += 1;
                report.problem(format!(
                    "page {page} is named by {expected} root entries but is not stored"
                ));
            }
        }
        Ok(expected_blocks)
    }

    /// Reads every stored page in both forms. A page that does not decode maps
    /// to `None`. Keys that are not page keys, and the delta form of a page
    /// that is also stored full, are removed.
    fn repair_scan_pages(
        &self,
        plan: &mut Plan,
        report: &mut RepairReport,
    ) -> Result<HashMap<PageHash, Option<StoredPage>>> {
        let mut stored: HashMap<PageHash, Option<StoredPage>> = HashMap::new();
        // Full pages come first, so a page also stored as a delta keeps its
        // full form.
        for family in [keys::PAGE_BODY, keys::PAGE_DELTA] {
            for entry in self.meta.scan("page", &[family]) {
                let (key, encoded) = entry?;
                let Some(hash) = keys::trailing_hash(&key).filter(|_| key.len() == 1 + HASH_LEN)
                else {
                    plan.batch.remove(key.to_vec());
                    report.unreferenced_pages_removed += 1;
                    continue;
                };
                let page = PageHash::from_bytes(hash);
                if stored.contains_key(&page) {
                    plan.batch.remove(key.to_vec());
                    report.problem(format!("page {page} was stored both full and as a delta"));
                    continue;
                }
                let form = if family == keys::PAGE_BODY {
                    codec::decode::<PageBody>("page", &encoded).map(StoredPage::Full)
                } else {
                    codec::decode::<PageDelta>("delta page", &encoded).map(StoredPage::Delta)
                };
                if let Err(error) = &form {
                    report.problem(format!("page {page}: {error}"));
                }
                stored.insert(page, form.ok());
            }
        }
        Ok(stored)
    }

    /// Makes the edge keys exactly `expected`: (base, delta page) pairs.
    fn repair_page_edges(
        &self,
        expected: &HashSet<(PageHash, PageHash)>,
        plan: &mut Plan,
        report: &mut RepairReport,
    ) -> Result<()> {
        let mut present = HashSet::new();
        for entry in self.meta.scan("page edge", &[keys::PAGE_EDGE]) {
            let (key, _) = entry?;
            if let Some(edge) = keys::parse_page_edge(&key).filter(|edge| expected.contains(edge)) {
                present.insert(edge);
            } else {
                plan.batch.remove(key.to_vec());
                report.page_counts_fixed += 1;
                report.problem("an edge key named no stored delta page".to_owned());
            }
        }
        for (base, delta) in expected.difference(&present) {
            plan.batch.put_raw(keys::page_edge(base, delta), &[]);
            report.page_counts_fixed += 1;
            report.problem(format!(
                "delta page {delta} had no edge from its base {base}"
            ));
        }
        Ok(())
    }

    /// Fixes block counts, removes blocks no page names (unless
    /// `keep_leaked`), re-hashes every block, and returns what stays.
    fn repair_blocks(
        &self,
        expected_blocks: &HashMap<BlockHash, u64>,
        keep_leaked: bool,
        plan: &mut Plan,
        report: &mut RepairReport,
    ) -> Result<LiveBlocks> {
        let block_size = u64::from(self.config.block_size);
        let mut live = LiveBlocks::default();
        let mut seen: HashSet<BlockHash> = HashSet::new();
        let mut buffer = vec![0u8; self.config.block_size as usize];
        // Marks that the scan below does not find damaged again are stale.
        let mut marks = self.read_damage_marks(plan, report)?;
        for entry in self.meta.scan("block", &[keys::BLOCK]) {
            let (key, value) = entry?;
            let Some(hash) = keys::trailing_hash(&key) else {
                plan.batch.remove(key.to_vec());
                report.leaked_blocks_removed += 1;
                continue;
            };
            let hash = BlockHash::from_bytes(hash);
            let expected = expected_blocks.get(&hash).copied().unwrap_or(0);
            let record: BlockRecord = match codec::decode("block", &value) {
                Ok(record) => record,
                Err(error) => {
                    // The block's place is unknown, so its bytes are lost.
                    report.problem(format!("block {hash}: {error}"));
                    plan.batch.remove(key.to_vec());
                    if expected == 0 {
                        report.leaked_blocks_removed += 1;
                    }
                    continue;
                }
            };
            seen.insert(hash);
            report.blocks_checked += 1;
            let extent = Extent {
                pack: record.pack,
                offset: record.offset,
            };
            let readable = match self.packs.get(extent, &mut buffer) {
                Ok(()) if BlockHash::of(&buffer) == hash => true,
                Ok(()) => {
                    if expected > 0 {
                        plan.damage.blocks.insert(hash);
                        mark_damaged(&mut marks, hash, extent, plan, report)?;
                        report.corrupt_blocks += 1;
                    }
                    report.problem(format!(
                        "block {hash} in pack {} at offset {} does not match its hash",
                        record.pack, record.offset
                    ));
                    false
                }
                Err(error) => {
                    if expected > 0 {
                        plan.damage.blocks.insert(hash);
                        mark_damaged(&mut marks, hash, extent, plan, report)?;
                        report.missing_blocks += 1;
                    }
                    report.problem(format!("block {hash} cannot be read: {error}"));
                    false
                }
            };

            if expected == 0 && (!keep_leaked || !readable) {
                // Nothing names the block (or it is unreadable and so worth
                // nothing to a page that might): remove it and free its range.
                plan.batch.remove(key.to_vec());
                plan.free.push(extent);
                report.leaked_blocks_removed += 1;
                continue;
            }
            if expected == 0 {
                report.leaked_blocks_kept += 1;
            } else if record.refcount != expected {
                plan.batch.put(
                    key.to_vec(),
                    &BlockRecord {
                        refcount: expected,
                        ..record
                    },
                )?;
                report.block_counts_fixed += 1;
                report.problem(format!(
                    "block {hash} had count {}; pages name it {expected} times",
                    record.refcount
                ));
            }
            *live.per_pack.entry(record.pack).or_insert(0) += 1;
            let end = live.end_per_pack.entry(record.pack).or_insert(0);
            *end = (*end).max(record.offset.saturating_add(block_size));
            live.positions.insert((record.pack, record.offset));
        }
        for hash in marks.into_keys() {
            plan.batch.remove(keys::damaged_block(&hash));
            report.stale_damage_marks_removed += 1;
        }
        for (hash, count) in expected_blocks {
            if !seen.contains(hash) {
                plan.damage.blocks.insert(*hash);
                report.missing_blocks += 1;
                report.problem(format!(
                    "block {hash} is named {count} times by pages but is not stored"
                ));
            }
        }
        Ok(live)
    }

    /// Reads the damage marks, by block. A mark whose key or value does not
    /// decode is removed in `plan`.
    fn read_damage_marks(
        &self,
        plan: &mut Plan,
        report: &mut RepairReport,
    ) -> Result<HashMap<BlockHash, Extent>> {
        let mut marks = HashMap::new();
        for entry in self.meta.scan("damaged block", &[keys::DAMAGED_BLOCK]) {
            let (key, value) = entry?;
            let hash = keys::trailing_hash(&key).map(BlockHash::from_bytes);
            if let (Some(hash), Ok(extent)) =
                (hash, codec::decode::<Extent>("damaged block", &value))
            {
                marks.insert(hash, extent);
            } else {
                plan.batch.remove(key.to_vec());
                report.stale_damage_marks_removed += 1;
            }
        }
        Ok(marks)
    }

    /// Sets each pack record's live count and committed length from the block
    /// records that stay, creating records that are missing.
    fn repair_packs(
        &self,
        live: &LiveBlocks,
        plan: &mut Plan,
        report: &mut RepairReport,
    ) -> Result<()> {
        let block_size = u64::from(self.config.block_size);
        let mut unrecorded = live.per_pack.clone();
        // Packs whose file is missing or short, with the length it still has.
        let lost = self.packs.lost_packs();
        for entry in self.meta.scan("pack", &[keys::PACK]) {
            let (key, value) = entry?;
            let Some(pack) = keys::trailing_u32(&key).filter(|_| key.len() == 5) else {
                plan.batch.remove(key.to_vec());
                report.pack_records_fixed += 1;
                continue;
            };
            let live_blocks = unrecorded.remove(&pack).unwrap_or(0);
            let end = live.end_per_pack.get(&pack).copied().unwrap_or(0);
            let fixed = match codec::decode::<PackRecord>("pack", &value) {
                Ok(record) => {
                    let mut committed_len = record.committed_len.max(end);
                    // A short file that still contains every block that
                    // stays, because a create stored its lost blocks again,
                    // is whole once its record ends at the file's last whole
                    // block. The reconcile requested here cuts a partial
                    // block past that end, so appends stay aligned.
                    if let Some(&readable) = lost.get(&pack) {
                        let whole = readable - readable % block_size;
                        if end <= whole && committed_len > whole {
                            committed_len = whole;
                            self.packs.mark_needs_reconcile();
                        }
                    }
                    if record.live_blocks == live_blocks && record.committed_len == committed_len {
                        continue;
                    }
                    PackRecord {
                        committed_len,
                        live_blocks,
                    }
                }
                Err(_) => PackRecord {
                    committed_len: end,
                    live_blocks,
                },
            };
            report.problem(format!(
                "pack {pack} record set to {} live blocks and committed length {}",
                fixed.live_blocks, fixed.committed_len
            ));
            plan.batch.put(key.to_vec(), &fixed)?;
            report.pack_records_fixed += 1;
        }
        for (pack, live_blocks) in unrecorded {
            let committed_len = live.end_per_pack.get(&pack).copied().unwrap_or(0);
            report.problem(format!(
                "{live_blocks} blocks point into pack {pack}, which had no record"
            ));
            plan.batch.put(
                keys::pack(pack),
                &PackRecord {
                    committed_len,
                    live_blocks,
                },
            )?;
            report.pack_records_fixed += 1;
        }
        Ok(())
    }

    /// Removes every queued GC item: the recount supersedes the decrements.
    /// Ranges that queued items still had to punch are punched with the
    /// removed blocks' ranges, unless a block that stays lies there.
    fn replace_gc_queue(
        &self,
        live_positions: &HashSet<(u32, u64)>,
        plan: &mut Plan,
        report: &mut RepairReport,
    ) -> Result<()> {
        let block_size = u64::from(self.config.block_size);
        let mut pending: HashSet<Extent> = HashSet::new();
        for entry in self.meta.scan("GC queue", &[keys::GC_QUEUE]) {
            let (key, value) = entry?;
            match codec::decode::<GcItem>("GC queue item", &value) {
                Ok(GcItem::FreeExtents { extents }) => pending.extend(extents),
                Ok(GcItem::FreeRuns { runs }) => {
                    pending.extend(runs.iter().flat_map(|run| run_extents(run, block_size)));
                }
                Ok(
                    GcItem::DropRoot { .. }
                    | GcItem::ReleaseBlocks { .. }
                    | GcItem::FreePages { .. },
                ) => {}
                Err(error) => report.problem(format!("a GC queue item was dropped: {error}")),
            }
            plan.batch.remove(key.to_vec());
            report.gc_items_replaced += 1;
        }
        pending.extend(plan.free.drain(..));
        plan.free = pending
            .into_iter()
            .filter(|extent| !live_positions.contains(&(extent.pack, extent.offset)))
            .collect();
        plan.free
            .sort_unstable_by_key(|extent| (extent.pack, extent.offset));
        Ok(())
    }

    /// Walks the roots of the owners to name the block indices that `damage`
    /// makes unrestorable.
    fn damaged_snapshots(
        &self,
        owners: &HashMap<u64, Owner>,
        damage: &Damage,
    ) -> Result<Vec<DamagedSnapshot>> {
        let page_entries = PAGE_ENTRIES as u64;
        let mut damaged: BTreeMap<String, DamagedSnapshot> = BTreeMap::new();
        for entry in self.meta.scan("root", &[keys::ROOT]) {
            let (key, value) = entry?;
            let Some((snapshot_id, page_index)) = keys::parse_root(&key) else {
                continue;
            };
            let Some(owner) = owners.get(&snapshot_id) else {
                continue;
            };
            let first = page_index.saturating_mul(page_entries);
            let whole_page = || {
                let end = first.saturating_add(page_entries);
                first..owner.blocks.map_or(end, |blocks| blocks.min(end))
            };
            let indices: Vec<u64> = match <[u8; HASH_LEN]>::try_from(value.as_ref()) {
                Err(_) => whole_page().collect(),
                Ok(bytes) => {
                    let page = PageHash::from_bytes(bytes);
                    if damage.pages.contains(&page) {
                        whole_page().collect()
                    } else if damage.blocks.is_empty() {
                        Vec::new()
                    } else {
                        let resolved = self.resolve_page(&page).ok().flatten();
                        resolved
                            .map(|resolved| {
                                (first..)
                                    .zip(resolved.entries)
                                    .filter(|(_, block)| damage.blocks.contains(block))
                                    .map(|(index, _)| index)
                                    .collect()
                            })
                            .unwrap_or_default()
                    }
                }
            };
            if indices.is_empty() {
                continue;
            }
            let snapshot = damaged
                .entry(owner.name.clone())
                .or_insert_with(|| DamagedSnapshot {
                    snapshot_name: owner.name.clone(),
                    ..DamagedSnapshot::default()
                });
            snapshot.damaged_blocks += indices.len() as u64;
            // Root keys of one snapshot come in page order, so the indices do too.
            let room = MAX_LISTED_INDICES.saturating_sub(snapshot.block_indices.len());
            snapshot
                .block_indices
                .extend(indices.into_iter().take(room));
        }
        Ok(damaged.into_values().collect())
    }
}

/// The block records that stay after repair.
#[derive(Default)]
struct LiveBlocks {
    /// Per pack: how many block records point into it.
    per_pack: BTreeMap<u32, u64>,
    /// Per pack: the end of the last block a record points at.
    end_per_pack: BTreeMap<u32, u64>,
    /// Every (pack, offset) a record points at.
    positions: HashSet<(u32, u64)>,
}

/// Lists the blocks of `run`. A run never spans more than one pack, so a
/// longer one, which only a damaged item can hold, is cut at that length.
fn run_extents(run: &ExtentRun, block_size: u64) -> impl Iterator<Item = Extent> + '_ {
    let blocks = run.blocks.min(MAX_PACK_BYTES / block_size);
    (0..blocks).map(move |index| Extent {
        pack: run.pack,
        offset: run.offset.saturating_add(index * block_size),
    })
}

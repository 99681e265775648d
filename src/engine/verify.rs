//! `verify`: recompute every reference count from the roots and re-hash every block.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::storage::codec;
use crate::storage::hash::{BlockHash, PageHash, HASH_LEN};
use crate::storage::keys;
use crate::storage::pack::BlockStore;
use crate::storage::records::{
    BlockRecord, Extent, PackRecord, PageCount, PendingCreate, SnapshotRecord,
};
use crate::store::bad_key;
use crate::Store;

/// Most problem descriptions kept in a [`VerifyReport`]; the counters go on.
const MAX_PROBLEMS: usize = 100;

/// The result of [`Store::verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Live snapshots whose roots were walked.
    pub snapshots_checked: u64,
    /// Stored blocks read back and re-hashed.
    pub blocks_checked: u64,
    /// Blocks a stored page references that the index or the packs do not have.
    pub missing_blocks: u64,
    /// Blocks (and pages) whose stored bytes no longer match their hash.
    pub corrupt_blocks: u64,
    /// Stored blocks that no stored page references.
    pub leaked_blocks: u64,
    /// Pages and blocks whose stored count differs from the recount, pages no
    /// root references, packs whose live-block count is wrong, and blocks that
    /// lie past their pack's committed length.
    pub refcount_mismatches: u64,
    /// Descriptions of the first problems found.
    #[serde(skip)]
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True when nothing is missing, corrupt, leaked or miscounted.
    pub fn is_clean(&self) -> bool {
        self.missing_blocks == 0
            && self.corrupt_blocks == 0
            && self.leaked_blocks == 0
            && self.refcount_mismatches == 0
    }

    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        }
    }
}

impl Store {
    /// Checks the store's invariants: every page count equals the number of root
    /// entries that name the page, every block count equals the number of entries
    /// in stored pages that name the block, every referenced block is present and
    /// matches its hash, and nothing is stored that nothing references.
    ///
    /// Takes the writer lock, so it sees no half-done create or delete; it first
    /// finishes any queued garbage collection and cleanup (see
    /// [`Store::collect_garbage`]) and fails if that fails. A read-only handle
    /// cannot finish that work, so there verify fails with
    /// `OperationFailureException` when any is left. Reads every stored block
    /// once.
    pub fn verify(&self) -> Result<VerifyReport> {
        let guard = self.lock_writer_only();
        if self.is_read_only() && self.has_interrupted_work()? {
            // The counts of a half-done delete or create differ from those
            // the live snapshots imply, and verify would report them as damage.
            return Err(Error::operation_failure(format!(
                "the store at {} has work that a failed create or delete left undone, and a \
                 read-only handle cannot finish it, so verify would report its half-done \
                 counts as damage. Listings and restores of the listed snapshots are \
                 unaffected. Open the store without --read-only to finish the work, then verify",
                self.path.display()
            )));
        }
        self.finish_interrupted_work(&guard, false)?;
        let mut report = VerifyReport::default();

        // Owners of roots: live snapshots, plus creates whose rollback is pending.
        let mut owners: HashSet<u64> = HashSet::new();
        for entry in self
            .meta
            .scan_records::<SnapshotRecord>("snapshot", &[keys::SNAPSHOT])
        {
            let (_, snapshot) = entry?;
            owners.insert(snapshot.id);
            report.snapshots_checked += 1;
        }
        for entry in self.meta.scan("pending create", &[keys::PENDING_CREATE]) {
            let (key, value) = entry?;
            codec::decode::<PendingCreate>("pending create", &value)?;
            owners.insert(keys::trailing_u64(&key).ok_or_else(|| bad_key("pending create", &key))?);
        }

        let mut expected_pages: HashMap<PageHash, u64> = HashMap::new();
        for entry in self.meta.scan("root", &[keys::ROOT]) {
            let (key, value) = entry?;
            let (snapshot_id, page_index) =
                keys::parse_root(&key).ok_or_else(|| bad_key("root", &key))?;
            let bytes: [u8; HASH_LEN] = value
                .as_ref()
                .try_into()
                .map_err(|_| bad_key("root entry", &key))?;
            if !owners.contains(&snapshot_id) {
                report.refcount_mismatches += 1;
                report.problem(format!(
                    "root entry {page_index} of snapshot id {snapshot_id} belongs to no snapshot"
                ));
                continue;
            }
            *expected_pages
                .entry(PageHash::from_bytes(bytes))
                .or_insert(0) += 1;
        }

        let expected_blocks = self.check_pages(&expected_pages, &mut report)?;
        self.check_blocks(&expected_blocks, &mut report)?;
        drop(guard);
        Ok(report)
    }

    /// Compares page counts with the recount, checks every page against its
    /// hash and every delta page's edge, and returns the block recount.
    fn check_pages(
        &self,
        expected_pages: &HashMap<PageHash, u64>,
        report: &mut VerifyReport,
    ) -> Result<HashMap<BlockHash, u64>> {
        let mut expected_blocks: HashMap<BlockHash, u64> = HashMap::new();
        let mut seen_pages: HashSet<PageHash> = HashSet::new();
        let mut expected_edges: HashSet<(PageHash, PageHash)> = HashSet::new();
        for family in [keys::PAGE_BODY, keys::PAGE_DELTA] {
            for entry in self.meta.scan("page", &[family]) {
                let (key, _) = entry?;
                let page = PageHash::from_bytes(
                    keys::trailing_hash(&key).ok_or_else(|| bad_key("page", &key))?,
                );
                if !seen_pages.insert(page) {
                    report.refcount_mismatches += 1;
                    report.problem(format!("page {page} is stored both full and as a delta"));
                    continue;
                }
                self.check_page(
                    &page,
                    expected_pages,
                    &mut expected_blocks,
                    &mut expected_edges,
                    report,
                )?;
            }
        }
        for (page, expected) in expected_pages {
            if !seen_pages.contains(page) {
                report.missing_blocks += 1;
                report.problem(format!(
                    "page {page} is named by {expected} root entries but is not stored"
                ));
            }
        }
        for entry in self.meta.scan("page count", &[keys::PAGE_COUNT]) {
            let (key, _) = entry?;
            let page = PageHash::from_bytes(
                keys::trailing_hash(&key).ok_or_else(|| bad_key("page count", &key))?,
            );
            if !seen_pages.contains(&page) {
                report.refcount_mismatches += 1;
                report.problem(format!("page {page} has a count but no body"));
            }
        }
        let mut seen_edges = HashSet::new();
        for entry in self.meta.scan("page edge", &[keys::PAGE_EDGE]) {
            let (key, _) = entry?;
            let edge = keys::parse_page_edge(&key).ok_or_else(|| bad_key("page edge", &key))?;
            if !expected_edges.contains(&edge) {
                report.refcount_mismatches += 1;
                report.problem(format!(
                    "an edge names page {} as based on {}, which it is not",
                    edge.1, edge.0
                ));
            }
            seen_edges.insert(edge);
        }
        for (base, delta) in expected_edges.difference(&seen_edges) {
            report.refcount_mismatches += 1;
            report.problem(format!(
                "delta page {delta} has no edge from its base {base}"
            ));
        }
        Ok(expected_blocks)
    }

    /// Checks one stored page: its form decodes, its entries match its hash and
    /// its count matches the root entries. A page that no root entry names is
    /// a mismatch even when a delta page is based on it, since freeing a page
    /// re-expresses those first.
    fn check_page(
        &self,
        page: &PageHash,
        expected_pages: &HashMap<PageHash, u64>,
        expected_blocks: &mut HashMap<BlockHash, u64>,
        expected_edges: &mut HashSet<(PageHash, PageHash)>,
        report: &mut VerifyReport,
    ) -> Result<()> {
        match self.load_stored_page(page) {
            Ok(Some(form)) => {
                for block in form.block_refs() {
                    *expected_blocks.entry(*block).or_insert(0) += 1;
                }
                if let Some(base) = form.base() {
                    expected_edges.insert((base, *page));
                }
            }
            Ok(None) => {}
            Err(error) => {
                report.corrupt_blocks += 1;
                report.problem(format!("page {page}: {error}"));
                return Ok(());
            }
        }
        if let Err(error) = self.resolve_page(page) {
            report.corrupt_blocks += 1;
            report.problem(format!("page {page}: {error}"));
        }
        let stored = self
            .meta
            .get::<PageCount>("page count", &keys::page_count(page))?
            .map_or(0, |count| count.refcount);
        let expected = expected_pages.get(page).copied().unwrap_or(0);
        if stored != expected || expected == 0 {
            report.refcount_mismatches += 1;
            report.problem(format!(
                "page {page} has count {stored}, but {expected} root entries name it"
            ));
        }
        Ok(())
    }

    /// Compares block counts with the recount, re-hashes every block and checks
    /// the packs' live-block counts.
    fn check_blocks(
        &self,
        expected_blocks: &HashMap<BlockHash, u64>,
        report: &mut VerifyReport,
    ) -> Result<()> {
        let mut live_per_pack: BTreeMap<u32, u64> = BTreeMap::new();
        // Per pack: the end of the last block that a record points at.
        let mut end_per_pack: BTreeMap<u32, u64> = BTreeMap::new();
        let block_size = u64::from(self.config.block_size);
        let mut seen_blocks: HashSet<BlockHash> = HashSet::new();
        let mut buffer = vec![0u8; self.config.block_size as usize];
        for entry in self.meta.scan("block", &[keys::BLOCK]) {
            let (key, value) = entry?;
            let hash = BlockHash::from_bytes(
                keys::trailing_hash(&key).ok_or_else(|| bad_key("block", &key))?,
            );
            let record: BlockRecord = codec::decode("block", &value)?;
            seen_blocks.insert(hash);
            report.blocks_checked += 1;
            *live_per_pack.entry(record.pack).or_insert(0) += 1;
            let end = end_per_pack.entry(record.pack).or_insert(0);
            *end = (*end).max(record.offset.saturating_add(block_size));

            let expected = expected_blocks.get(&hash).copied().unwrap_or(0);
            if expected == 0 {
                report.leaked_blocks += 1;
                report.problem(format!("block {hash} is stored but no page names it"));
            } else if record.refcount != expected {
                report.refcount_mismatches += 1;
                report.problem(format!(
                    "block {hash} has count {}, but pages name it {expected} times",
                    record.refcount
                ));
            }
            match self.packs.get(
                Extent {
                    pack: record.pack,
                    offset: record.offset,
                },
                &mut buffer,
            ) {
                Ok(()) if BlockHash::of(&buffer) == hash => {}
                Ok(()) => {
                    report.corrupt_blocks += 1;
                    report.problem(format!(
                        "block {hash} in pack {} at offset {} does not match its hash",
                        record.pack, record.offset
                    ));
                }
                Err(error) => {
                    report.missing_blocks += 1;
                    report.problem(format!("block {hash} cannot be read: {error}"));
                }
            }
        }
        for (hash, count) in expected_blocks {
            if !seen_blocks.contains(hash) {
                report.missing_blocks += 1;
                report.problem(format!(
                    "block {hash} is named {count} times by pages but is not in the index"
                ));
            }
        }
        for entry in self.meta.scan_records::<PackRecord>("pack", &[keys::PACK]) {
            let (key, record) = entry?;
            let pack = keys::trailing_u32(&key).ok_or_else(|| bad_key("pack", &key))?;
            let actual = live_per_pack.remove(&pack).unwrap_or(0);
            if record.live_blocks != actual {
                report.refcount_mismatches += 1;
                report.problem(format!(
                    "pack {pack} records {} live blocks but holds {actual}",
                    record.live_blocks
                ));
            }
            let end = end_per_pack.get(&pack).copied().unwrap_or(0);
            if end > record.committed_len {
                // The next open would truncate these blocks away.
                report.refcount_mismatches += 1;
                report.problem(format!(
                    "pack {pack} has committed length {}, but a block record points up to byte {end}",
                    record.committed_len
                ));
            }
        }
        for (pack, count) in live_per_pack {
            report.refcount_mismatches += 1;
            report.problem(format!(
                "{count} blocks point into pack {pack}, which has no record"
            ));
        }
        Ok(())
    }
}

//! `create_disk_snapshot`: stream a source, store the blocks the store does not have yet,
//! build and share pages, and commit the snapshot atomically.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::sync::mpsc;

use rayon::prelude::*;

use crate::error::{io_failure, Error, Result};
use crate::model::{Operation, OperationStatus, OperationType, ResourceType, Tag, Timestamp};
use crate::names::{validate_resource_name, validate_tags};
use crate::storage::hash::{BlockHash, PageHash};
use crate::storage::keys;
use crate::storage::meta::Batch;
use crate::storage::pack::BlockStore;
use crate::storage::records::{
    BlockRecord, Extent, ExtentRun, GcItem, PackRecord, PageCount, PendingCreate, SnapshotRecord,
};
use crate::store::{bad_key, WriterGuard};
use crate::Store;

use super::gc::merge_runs;
use super::operations::PendingOperation;
use super::pages::{page_hash, stage_stored_page, stored_form, ResolvedPage};

/// Number of block hashes in a full page.
pub const PAGE_ENTRIES: usize = 1024;
/// Page commits of a create between two checks of the free space, each page
/// about 33 KB of metadata at most.
const PAGES_PER_SPACE_CHECK: u64 = 64;
/// Pages an incremental create takes unchanged from its parent per commit.
/// Each needs only a root entry and a count, and a sled commit per page cost
/// several times what those two writes did.
const REUSED_PAGES_PER_COMMIT: usize = 256;

/// Smallest number of bytes read from the source per chunk. Chunks are hashed
/// in parallel while the reader thread fills the next one. A chunk of 1 MiB is
/// still in the CPU cache when it is hashed. Re-snapshots of a page-cached
/// 1 GiB image took about 10 % less CPU time than with 8 MiB chunks (AMD EPYC,
/// 2 cores, 64 KiB blocks).
const CHUNK_BYTES: usize = 1 << 20;

/// Smallest number of blocks per hashing thread in a chunk, so that every
/// thread has work and one slow block delays the chunk little.
const CHUNK_BLOCKS_PER_THREAD: usize = 4;

/// Reports progress as the number of source bytes read so far.
pub type ProgressFn<'a> = &'a (dyn Fn(u64) + Sync);

impl Store {
    /// Creates snapshot `snapshot_name` of disk `disk_name` from `source`, which is
    /// read once, sequentially, to its end.
    ///
    /// Blocks of zeros are not stored. Every other block is stored once in the
    /// whole store, whichever snapshot or disk it came from; a page of 1,024 block
    /// hashes equal to one already stored (the same slice in the previous snapshot,
    /// say) is referenced again at the cost of one count. A last partial block is
    /// zero-padded in storage and the exact byte length is recorded.
    ///
    /// Durability: the call returns `Succeeded` operations only after the pack bytes
    /// are synced and the metadata flushed. Until then the snapshot is invisible,
    /// and if the process dies the next open reclaims what was written.
    ///
    /// Concurrency: the call holds the store's writer lock from start to end, so
    /// a delete or another create waits for it; restores and reads go on.
    ///
    /// Returns `InvalidInputException` for a malformed name or tag, a name already
    /// in use, or an empty source; `OperationFailureException` if the source or the
    /// store fails to read or write. On any error nothing stays changed except an
    /// operation record marked `Failed`.
    ///
    /// # Examples
    ///
    /// ```
    /// use blocksnap::{model::Tag, Store};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path())?;
    /// let image = vec![1u8; 200_000];
    /// let tags = [Tag { key: "env".into(), value: Some("dev".into()) }];
    /// let operations = store.create_disk_snapshot("disk-1", "snap-1", &image[..], &tags)?;
    /// assert_eq!(operations.len(), 2);
    /// let snapshot = store.get_disk_snapshot("snap-1")?;
    /// assert_eq!(snapshot.from_disk_name.as_deref(), Some("disk-1"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_disk_snapshot<R: Read + Send>(
        &self,
        disk_name: &str,
        snapshot_name: &str,
        source: R,
        tags: &[Tag],
    ) -> Result<Vec<Operation>> {
        self.create_disk_snapshot_with_progress(disk_name, snapshot_name, source, tags, None)
    }

    /// [`Store::create_disk_snapshot`] that calls `progress` with the number of
    /// bytes read after each chunk of the source.
    pub fn create_disk_snapshot_with_progress<R: Read + Send>(
        &self,
        disk_name: &str,
        snapshot_name: &str,
        source: R,
        tags: &[Tag],
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Vec<Operation>> {
        let request = validate_create(disk_name, snapshot_name, tags)?;

        self.check_writable("create a disk snapshot")?;
        let guard = self.lock_writer();
        self.ensure_name_free(snapshot_name)?;
        let snapshot_id = self.authorize_create(&request)?;
        self.packs.check_free_space()?;

        let block_size = self.config.block_size as usize;
        std::thread::scope(|scope| {
            let (chunks, receiver) = mpsc::sync_channel::<io::Result<Chunk>>(2);
            let (recycle, recycled) = mpsc::channel::<Chunk>();
            scope.spawn(move || {
                read_chunks(source, chunk_bytes(block_size), &chunks, &recycled);
            });

            let parent = self.latest_snapshot_of(disk_name)?;
            let mut run =
                CreateRun::new(self, &guard, snapshot_id, snapshot_name, disk_name, parent)?;
            let result = run.ingest(&receiver, &recycle, progress, &request.tag_pairs);
            // Dropping the receiver stops the reader thread if the run ended early.
            drop(receiver);
            result.inspect_err(|error| run.abort(error))
        })
    }

    /// Returns `InvalidInputException` if a snapshot named `snapshot_name`
    /// exists. Call it with the writer lock held.
    pub(super) fn ensure_name_free(&self, snapshot_name: &str) -> Result<()> {
        if self
            .meta
            .contains("snapshot", &keys::snapshot(snapshot_name))?
        {
            return Err(Error::invalid_input(format!(
                "disk snapshot {snapshot_name:?} already exists. Choose another name or delete the existing snapshot first"
            )));
        }
        Ok(())
    }

    /// Allocates the id of the snapshot that `request` creates and checks that
    /// the policy allows `lightsail:CreateDiskSnapshot` on it with the
    /// request's tags. Call it with the writer lock held.
    pub(super) fn authorize_create(&self, request: &CreateRequest) -> Result<u64> {
        let snapshot_id = self.meta.next_id()?;
        self.check_access(
            "lightsail:CreateDiskSnapshot",
            &self.snapshot_arn(snapshot_id),
            &[],
            Some(&request.request_tags),
        )?;
        Ok(snapshot_id)
    }

    /// Loads the damage marks that repair left on block copies, by block.
    /// The map is empty unless a repair found damage that no create has
    /// replaced yet.
    pub(super) fn damaged_blocks(&self) -> Result<HashMap<BlockHash, Extent>> {
        let mut damaged = HashMap::new();
        for entry in self
            .meta
            .scan_records::<Extent>("damaged block", &[keys::DAMAGED_BLOCK])
        {
            let (key, extent) = entry?;
            let hash = keys::trailing_hash(&key).ok_or_else(|| bad_key("damaged block", &key))?;
            damaged.insert(BlockHash::from_bytes(hash), extent);
        }
        Ok(damaged)
    }

    /// Counts the damage marks whose block's record still points at the marked
    /// copy, that is, the damaged blocks no create has stored again.
    pub(super) fn damaged_copies_in_use(&self) -> Result<usize> {
        let mut in_use = 0;
        for (hash, extent) in self.damaged_blocks()? {
            let record = self.meta.get::<BlockRecord>("block", &keys::block(&hash))?;
            if record.is_some_and(|record| record.extent() == extent) {
                in_use += 1;
            }
        }
        Ok(in_use)
    }

    /// The live snapshot of `disk_name` created last, whose pages a new snapshot
    /// compares against to skip index lookups for unchanged blocks.
    pub(super) fn latest_snapshot_of(&self, disk_name: &str) -> Result<Option<SnapshotRecord>> {
        let mut latest: Option<SnapshotRecord> = None;
        for entry in self
            .meta
            .scan_records::<SnapshotRecord>("snapshot", &[keys::SNAPSHOT])
        {
            let (_, snapshot) = entry?;
            if snapshot.disk_name == disk_name
                && latest
                    .as_ref()
                    .is_none_or(|best| snapshot.created_at > best.created_at)
            {
                latest = Some(snapshot);
            }
        }
        Ok(latest)
    }
}

/// A validated create request's tags, as stored and as the policy evaluates them.
pub(super) struct CreateRequest {
    pub(super) tag_pairs: Vec<(String, String)>,
    pub(super) request_tags: BTreeMap<String, String>,
}

/// Checks the names and tags of a create request.
pub(super) fn validate_create(
    disk_name: &str,
    snapshot_name: &str,
    tags: &[Tag],
) -> Result<CreateRequest> {
    validate_resource_name("disk name", disk_name)?;
    validate_resource_name("disk snapshot name", snapshot_name)?;
    validate_tags(tags)?;
    let tag_pairs: Vec<(String, String)> = tags
        .iter()
        .map(|tag| (tag.key.clone(), tag.value.clone().unwrap_or_default()))
        .collect();
    let request_tags = tag_pairs.iter().cloned().collect();
    Ok(CreateRequest {
        tag_pairs,
        request_tags,
    })
}

/// Returns the number of bytes to read from the source per chunk.
fn chunk_bytes(block_size: usize) -> usize {
    CHUNK_BYTES.max(block_size * CHUNK_BLOCKS_PER_THREAD * rayon::current_num_threads())
}

/// Alignment of the start of a [`Chunk`]'s bytes, the page size on x86-64.
const CHUNK_ALIGN: usize = 4096;

/// Bytes of the source read in one piece, in a buffer whose first byte is
/// aligned to [`CHUNK_ALIGN`].
///
/// The alignment speeds up the kernel's copy out of the page cache. On an AMD
/// EPYC (Linux 6.18, 2 cores), reading 1 GiB took 0.13 s of system time into a
/// page-aligned buffer and 0.84 s into one that starts 16 bytes past a page
/// boundary. glibc's `malloc` returns such addresses for the large allocations
/// that it maps with `mmap`.
struct Chunk {
    /// Allocation of `capacity + CHUNK_ALIGN` bytes. It never grows, so `start`
    /// stays aligned.
    buffer: Vec<u8>,
    /// Offset of the first aligned byte in `buffer`.
    start: usize,
    /// Number of bytes the chunk can hold.
    capacity: usize,
    /// Number of source bytes in the chunk.
    len: usize,
}

impl Chunk {
    fn new(capacity: usize) -> Chunk {
        let buffer = vec![0u8; capacity + CHUNK_ALIGN];
        let start = buffer.as_ptr().align_offset(CHUNK_ALIGN).min(CHUNK_ALIGN);
        Chunk {
            buffer,
            start,
            capacity,
            len: 0,
        }
    }

    /// Returns the source bytes of the chunk.
    fn bytes(&self) -> &[u8] {
        self.buffer
            .get(self.start..self.start + self.len)
            .unwrap_or_default()
    }

    /// Returns the part of the chunk not filled yet.
    fn unfilled(&mut self) -> &mut [u8] {
        self.buffer
            .get_mut(self.start + self.len..self.start + self.capacity)
            .unwrap_or_default()
    }
}

/// Fills chunks of `chunk_bytes` from `source` (the last may be shorter) and
/// sends them until the end of the source, an error, or a hung-up receiver.
/// Chunks that come back on `recycled` are filled again without being cleared.
fn read_chunks<R: Read>(
    mut source: R,
    chunk_bytes: usize,
    chunks: &mpsc::SyncSender<io::Result<Chunk>>,
    recycled: &mpsc::Receiver<Chunk>,
) {
    loop {
        let mut chunk = recycled
            .try_recv()
            .unwrap_or_else(|_| Chunk::new(chunk_bytes));
        chunk.len = 0;
        while chunk.len < chunk.capacity {
            match source.read(chunk.unfilled()) {
                Ok(0) => break,
                Ok(read) => chunk.len += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    let _ = chunks.send(Err(error));
                    return;
                }
            }
        }
        let at_end = chunk.len < chunk.capacity;
        if chunks.send(Ok(chunk)).is_err() || at_end {
            return;
        }
    }
}

/// The state of one create while it streams the source.
pub(super) struct CreateRun<'a> {
    pub(super) store: &'a Store,
    pub(super) guard: &'a WriterGuard<'a>,
    pub(super) snapshot_id: u64,
    pub(super) snapshot_name: &'a str,
    pub(super) disk_name: &'a str,
    pub(super) parent: Option<SnapshotRecord>,
    /// Index of the page being filled.
    pub(super) page_index: u64,
    /// Block hashes of the page being filled.
    pub(super) entries: Vec<BlockHash>,
    /// The parent's page at the same index, when it has that page.
    pub(super) parent_page: Option<ResolvedPage>,
    /// Blocks appended for the page being filled and not yet committed.
    pub(super) new_blocks: HashMap<BlockHash, Extent>,
    /// Per pack: end offset of the uncommitted appends and how many blocks they are.
    pub(super) appended: BTreeMap<u32, (u64, u64)>,
    /// Packs whose file is missing or short, each with the length still
    /// readable. A block recorded past that length is stored again, and its
    /// record moves to the new copy.
    pub(super) lost_packs: BTreeMap<u32, u64>,
    /// Copies of blocks that repair found damaged. A block whose record
    /// still points at such a copy is stored again like a lost one, and the
    /// damaged copy is punched.
    damaged: HashMap<BlockHash, Extent>,
    /// True once a commit of the run queued the punch of a damaged copy.
    queued_punch: std::cell::Cell<bool>,
    /// Pages taken unchanged from the parent and not yet committed.
    reused: ReusedPages,
    pub(super) length: u64,
    pub(super) operations: Vec<PendingOperation>,
    /// True once the pending-create marker is committed.
    pub(super) started: bool,
    /// True once the snapshot record is committed (it may not be durable yet).
    pub(super) committed: bool,
}

/// Root entries and counts of the pages an incremental create took unchanged
/// from its parent since its last commit.
#[derive(Default)]
struct ReusedPages {
    /// The root entries.
    batch: Batch,
    /// The new count of each page, which a page taken twice has raised twice.
    counts: HashMap<PageHash, u64>,
    /// Number of pages taken.
    pages: usize,
}

impl<'a> CreateRun<'a> {
    pub(super) fn new(
        store: &'a Store,
        guard: &'a WriterGuard<'a>,
        snapshot_id: u64,
        snapshot_name: &'a str,
        disk_name: &'a str,
        parent: Option<SnapshotRecord>,
    ) -> Result<Self> {
        Ok(CreateRun {
            store,
            guard,
            snapshot_id,
            snapshot_name,
            disk_name,
            parent,
            page_index: 0,
            entries: Vec::with_capacity(PAGE_ENTRIES),
            parent_page: None,
            new_blocks: HashMap::new(),
            appended: BTreeMap::new(),
            lost_packs: store.packs.lost_packs(),
            damaged: store.damaged_blocks()?,
            queued_punch: std::cell::Cell::new(false),
            reused: ReusedPages::default(),
            length: 0,
            operations: Vec::new(),
            started: false,
            committed: false,
        })
    }

    fn ingest(
        &mut self,
        receiver: &mpsc::Receiver<io::Result<Chunk>>,
        recycle: &mpsc::Sender<Chunk>,
        progress: Option<ProgressFn<'_>>,
        tags: &[(String, String)],
    ) -> Result<Vec<Operation>> {
        let block_size = self.store.config.block_size as usize;
        for message in receiver {
            let chunk = message.map_err(|error| {
                io_failure(
                    format_args!(
                        "reading the source of snapshot {:?} at byte {}",
                        self.snapshot_name, self.length
                    ),
                    error,
                )
            })?;
            let bytes = chunk.bytes();
            if bytes.is_empty() {
                break;
            }
            if !self.started {
                self.start()?;
            }

            // Hashing is the CPU-bound step: do it for the whole chunk in parallel.
            let hashes: Vec<BlockHash> = bytes
                .par_chunks(block_size)
                .map(|block| hash_block(block, block_size))
                .collect();
            for (block, hash) in bytes.chunks(block_size).zip(hashes) {
                self.add_block(block, hash)?;
            }
            self.length += bytes.len() as u64;
            if let Some(report) = progress {
                report(self.length);
            }
            let _ = recycle.send(chunk);
        }

        if self.length == 0 {
            return Err(Error::invalid_input(format!(
                "the source of snapshot {:?} is empty. Give a disk image or device with at least one byte",
                self.snapshot_name
            )));
        }
        if !self.entries.is_empty() {
            self.commit_page()?;
        }
        self.commit_snapshot(tags)
    }

    /// Records the create as started: its operations and the marker that lets
    /// recovery collect whatever it commits if the process dies.
    pub(super) fn start(&mut self) -> Result<()> {
        let store = self.store;
        let snapshot_operation = store.new_operation(
            self.snapshot_name,
            ResourceType::DiskSnapshot,
            OperationType::CreateDiskSnapshot,
            self.disk_name,
        )?;
        let disk_operation = store.new_operation(
            self.disk_name,
            ResourceType::Disk,
            OperationType::CreateDiskSnapshot,
            self.snapshot_name,
        )?;
        self.operations = vec![snapshot_operation, disk_operation];

        let mut batch = Batch::default();
        for operation in &self.operations {
            operation.stage(&mut batch)?;
        }
        batch.put(
            keys::pending_create(self.snapshot_id),
            &PendingCreate {
                snapshot_name: self.snapshot_name.to_owned(),
                operation_seqs: self
                    .operations
                    .iter()
                    .map(|operation| operation.seq)
                    .collect(),
            },
        )?;
        store.meta.commit(batch)?;
        self.started = true;
        tracing::info!(
            snapshot = self.snapshot_name,
            disk = self.disk_name,
            id = self.snapshot_id,
            "creating snapshot"
        );
        Ok(())
    }

    fn add_block(&mut self, block: &[u8], hash: BlockHash) -> Result<()> {
        if self.entries.is_empty() {
            self.load_parent_page()?;
        }
        self.store_block(self.entries.len(), block, hash)?;
        self.entries.push(hash);
        if self.entries.len() == PAGE_ENTRIES {
            self.commit_page()?;
        }
        Ok(())
    }

    /// Makes sure the block at `position` of the current page is stored: a zero
    /// block, a block equal to the parent's at the same position, or one already
    /// in the index costs nothing; any other block is appended to the pack.
    pub(super) fn store_block(
        &mut self,
        position: usize,
        block: &[u8],
        hash: BlockHash,
    ) -> Result<()> {
        // With a pack missing or a copy damaged, the parent's block may be
        // lost too, so every block goes through the index check below.
        let known = hash.is_zero()
            || (self.lost_packs.is_empty()
                && self.damaged.is_empty()
                && self
                    .parent_page
                    .as_ref()
                    .and_then(|page| page.entries.get(position))
                    .is_some_and(|parent| *parent == hash))
            || self.new_blocks.contains_key(&hash)
            || self.is_readable_in_index(&hash)?;
        if known {
            return Ok(());
        }
        let block_size = self.store.config.block_size as usize;
        let extent = if block.len() == block_size {
            self.store.packs.put(block)?
        } else {
            let mut padded = block.to_vec();
            padded.resize(block_size, 0);
            self.store.packs.put(&padded)?
        };
        let end = extent.offset + u64::from(self.store.config.block_size);
        let appended = self.appended.entry(extent.pack).or_insert((end, 0));
        appended.0 = appended.0.max(end);
        appended.1 += 1;
        self.new_blocks.insert(hash, extent);
        Ok(())
    }

    /// Returns true if the index records `hash` at a copy that is neither in
    /// a lost pack nor damaged.
    fn is_readable_in_index(&self, hash: &BlockHash) -> Result<bool> {
        if self.lost_packs.is_empty() && self.damaged.is_empty() {
            return self.store.meta.contains("block", &keys::block(hash));
        }
        let record = self
            .store
            .meta
            .get::<BlockRecord>("block", &keys::block(hash))?;
        Ok(record.is_some_and(|record| !self.is_unusable(hash, &record)))
    }

    /// Returns the index record of `hash` if its copy lies in a lost pack or
    /// is damaged.
    fn unusable_record(&self, hash: &BlockHash) -> Result<Option<BlockRecord>> {
        if self.lost_packs.is_empty() && self.damaged.is_empty() {
            return Ok(None);
        }
        let record = self
            .store
            .meta
            .get::<BlockRecord>("block", &keys::block(hash))?;
        Ok(record.filter(|record| self.is_unusable(hash, record)))
    }

    fn is_unusable(&self, hash: &BlockHash, record: &BlockRecord) -> bool {
        self.is_lost(record) || self.is_damaged(hash, record)
    }

    /// True if repair found the copy that `record` points at damaged. A
    /// mark on an earlier copy no longer applies once the record moved.
    fn is_damaged(&self, hash: &BlockHash, record: &BlockRecord) -> bool {
        self.damaged
            .get(hash)
            .is_some_and(|extent| *extent == record.extent())
    }

    /// True if `record`'s bytes end past what its pack file still holds.
    fn is_lost(&self, record: &BlockRecord) -> bool {
        let end = record
            .offset
            .saturating_add(u64::from(self.store.config.block_size));
        self.lost_packs
            .get(&record.pack)
            .is_some_and(|readable| end > *readable)
    }

    /// References an already stored page again at the current page index: one
    /// count and one root entry, whatever the page holds. They are committed
    /// with the next pages taken unchanged, at most
    /// [`REUSED_PAGES_PER_COMMIT`] together, or before the next commit of
    /// the run, whichever comes first.
    pub(super) fn reuse_page(&mut self, page: PageHash) -> Result<()> {
        let refcount = match self.reused.counts.get(&page) {
            Some(refcount) => *refcount,
            None => {
                self.store
                    .meta
                    .get::<PageCount>("page count", &keys::page_count(&page))?
                    .ok_or_else(|| {
                        Error::corruption(format!(
                        "page {page} of the parent snapshot is not stored. Run `blocksnap verify`"
                    ))
                    })?
                    .refcount
            }
        };
        let refcount = refcount
            .checked_add(1)
            .ok_or_else(|| count_overflow(&page.to_hex()))?;
        self.reused.counts.insert(page, refcount);
        self.reused.batch.put_raw(
            keys::root(self.snapshot_id, self.page_index),
            page.as_bytes(),
        );
        self.reused.pages += 1;
        self.page_index += 1;
        if self.reused.pages == REUSED_PAGES_PER_COMMIT {
            self.commit_reused_pages()?;
        }
        Ok(())
    }

    /// Commits the root entries and counts of the pages taken unchanged since
    /// the last commit. Every other commit of the run calls this first, since
    /// it reads counts that these writes change.
    fn commit_reused_pages(&mut self) -> Result<()> {
        if self.reused.pages == 0 {
            return Ok(());
        }
        let ReusedPages {
            mut batch, counts, ..
        } = std::mem::take(&mut self.reused);
        for (page, refcount) in counts {
            batch.put(keys::page_count(&page), &PageCount { refcount })?;
        }
        self.store.meta.commit(batch)
    }

    fn load_parent_page(&mut self) -> Result<()> {
        self.parent_page = None;
        let Some(parent) = &self.parent else {
            return Ok(());
        };
        let Some(value) = self
            .store
            .meta
            .get_raw("root", &keys::root(parent.id, self.page_index))?
        else {
            return Ok(());
        };
        let page = super::gc::page_hash_from(&keys::root(parent.id, self.page_index), &value)?;
        self.parent_page = self.store.resolve_page(&page)?;
        Ok(())
    }

    /// Commits the filled page: its body and counts if it is new, one count if
    /// an equal page is already stored, nothing if it is all zeros.
    pub(super) fn commit_page(&mut self) -> Result<()> {
        self.commit_reused_pages()?;
        // Pages and root entries fill the metadata's file system even when
        // every block is already stored, so they are checked too.
        if self.page_index % PAGES_PER_SPACE_CHECK == PAGES_PER_SPACE_CHECK - 1 {
            self.store.packs.check_free_space()?;
        }
        let entries = std::mem::take(&mut self.entries);
        let page_index = self.page_index;
        self.page_index += 1;
        if entries.iter().all(BlockHash::is_zero) {
            debug_assert!(self.new_blocks.is_empty());
            return Ok(());
        }

        let store = self.store;
        let (page, _) = page_hash(&entries)?;
        let mut batch = Batch::default();
        let count = match store
            .meta
            .get::<PageCount>("page count", &keys::page_count(&page))?
        {
            Some(count) => Some(count),
            // A page whose count is gone but whose form is still stored waits
            // in the GC queue (its free failed). Naming it again keeps it.
            None if store.meta.contains("page", &keys::page_body(&page))?
                || store
                    .meta
                    .contains("delta page", &keys::page_delta(&page))? =>
            {
                Some(PageCount { refcount: 0 })
            }
            None => None,
        };
        if let Some(count) = count {
            // Blocks stored again for a stored page replace copies in a missing
            // pack: their records move, and their counts stay.
            self.stage_block_references(&mut batch, std::iter::empty())?;
            let refcount = count
                .refcount
                .checked_add(1)
                .ok_or_else(|| count_overflow(&page.to_hex()))?;
            batch.put(keys::page_count(&page), &PageCount { refcount })?;
        } else {
            let form = stored_form(&entries, self.parent_page.as_ref());
            stage_stored_page(&mut batch, &page, &form)?;
            batch.put(keys::page_count(&page), &PageCount { refcount: 1 })?;
            self.stage_block_references(&mut batch, form.block_refs())?;
        }
        batch.put_raw(keys::root(self.snapshot_id, page_index), page.as_bytes());
        store.meta.commit(batch)?;
        self.new_blocks.clear();
        self.appended.clear();
        Ok(())
    }

    /// Adds the block references of a newly stored page's form, one per
    /// occurrence, inserting the index entries of blocks appended for it.
    fn stage_block_references<'b>(
        &self,
        batch: &mut Batch,
        refs: impl Iterator<Item = &'b BlockHash>,
    ) -> Result<()> {
        let store = self.store;
        let mut occurrences: HashMap<BlockHash, u64> = HashMap::new();
        for hash in refs {
            *occurrences.entry(*hash).or_insert(0) += 1;
        }
        // Blocks moved out of a missing pack or off a damaged copy, counted
        // per pack, and the damaged copies to punch.
        let mut moved_out: BTreeMap<u32, u64> = BTreeMap::new();
        let mut damaged_copies: Vec<ExtentRun> = Vec::new();
        for (&hash, &extent) in &self.new_blocks {
            if occurrences.contains_key(&hash) {
                continue;
            }
            // The page's stored form does not list this block, so the page it
            // is based on already counts it.
            let lost = self.unusable_record(&hash)?.ok_or_else(|| {
                Error::corruption(format!(
                    "block {hash} was stored for a page that is already stored or does not \
                     list it, and the index has no record of it. Run `blocksnap verify`"
                ))
            })?;
            self.stage_move(batch, &hash, &lost, &mut moved_out, &mut damaged_copies);
            let moved = BlockRecord {
                pack: extent.pack,
                offset: extent.offset,
                ..lost
            };
            batch.put(keys::block(&hash), &moved)?;
        }
        for (hash, count) in occurrences {
            let record = if let Some(extent) = self.new_blocks.get(&hash) {
                let earlier = match self.unusable_record(&hash)? {
                    Some(lost) => {
                        self.stage_move(batch, &hash, &lost, &mut moved_out, &mut damaged_copies);
                        lost.refcount
                    }
                    None => 0,
                };
                BlockRecord {
                    pack: extent.pack,
                    offset: extent.offset,
                    refcount: earlier
                        .checked_add(count)
                        .ok_or_else(|| count_overflow(&hash.to_hex()))?,
                }
            } else {
                let existing = store.meta.get::<BlockRecord>("block", &keys::block(&hash))?.ok_or_else(|| {
                    Error::corruption(format!(
                        "block {hash} was in the index a moment ago and is gone, although the writer lock is held. \
                         Run `blocksnap verify`"
                    ))
                })?;
                let refcount = existing
                    .refcount
                    .checked_add(count)
                    .ok_or_else(|| count_overflow(&hash.to_hex()))?;
                BlockRecord {
                    refcount,
                    ..existing
                }
            };
            batch.put(keys::block(&hash), &record)?;
        }
        // One write per pack: a pack can both gain appends and lose moved
        // blocks, and the batch keeps only the last write of a key.
        let packs: std::collections::BTreeSet<u32> = moved_out
            .keys()
            .chain(self.appended.keys())
            .copied()
            .collect();
        for pack in packs {
            let stored = store.meta.get::<PackRecord>("pack", &keys::pack(pack))?;
            let appended = self.appended.get(&pack);
            if stored.is_none() && appended.is_none() {
                continue;
            }
            let mut record = stored.unwrap_or(PackRecord {
                committed_len: 0,
                live_blocks: 0,
            });
            if let Some((end, blocks)) = appended {
                record.committed_len = record.committed_len.max(*end);
                record.live_blocks += blocks;
            }
            let moved = moved_out.get(&pack).copied().unwrap_or(0);
            record.live_blocks = record.live_blocks.saturating_sub(moved);
            batch.put(keys::pack(pack), &record)?;
        }
        if !damaged_copies.is_empty() {
            // Punched by the collection at the end of the create, once this
            // commit, which moves the records away, is durable.
            let block_size = u64::from(store.config.block_size);
            store.queue_gc_item(
                batch,
                &GcItem::FreeRuns {
                    runs: merge_runs(damaged_copies, block_size),
                },
            )?;
            self.queued_punch.set(true);
        }
        Ok(())
    }

    /// Records that the record of `hash`, `old`, moves to a new copy: its
    /// pack loses a live block, and a damaged copy in a pack that still has
    /// its file is punched and loses its mark.
    fn stage_move(
        &self,
        batch: &mut Batch,
        hash: &BlockHash,
        old: &BlockRecord,
        moved_out: &mut BTreeMap<u32, u64>,
        damaged_copies: &mut Vec<ExtentRun>,
    ) {
        *moved_out.entry(old.pack).or_insert(0) += 1;
        if self.is_damaged(hash, old) {
            batch.remove(keys::damaged_block(hash));
            if !self.is_lost(old) {
                damaged_copies.push(ExtentRun::from(old.extent()));
            }
        }
    }

    /// Makes the pack bytes durable, then commits the snapshot record and the
    /// operations' success, then flushes.
    pub(super) fn commit_snapshot(&mut self, tags: &[(String, String)]) -> Result<Vec<Operation>> {
        let store = self.store;
        let block_size = u64::from(store.config.block_size);
        let blocks = self.length.div_ceil(block_size);
        let record = SnapshotRecord {
            id: self.snapshot_id,
            name: self.snapshot_name.to_owned(),
            disk_name: self.disk_name.to_owned(),
            length: self.length,
            page_count: blocks.div_ceil(PAGE_ENTRIES as u64),
            created_at: Timestamp::now().unix_nanos(),
            tags: tags.to_vec(),
            operation_seq: self.operations.first().map_or(0, |operation| operation.seq),
        };
        debug_assert_eq!(record.page_count, self.page_index);
        self.commit_reused_pages()?;

        // ORDER: pack bytes must be durable before any metadata that makes them
        // reachable from a live snapshot is.
        store.packs.sync()?;
        let mut batch = Batch::default();
        batch.put(keys::snapshot(self.snapshot_name), &record)?;
        batch.remove(keys::pending_create(self.snapshot_id));
        for operation in &mut self.operations {
            operation.set_status(OperationStatus::Succeeded);
            operation.stage(&mut batch)?;
        }
        store.meta.commit(batch)?;
        self.committed = true;
        // ORDER: `Succeeded` is reported only once this flush has returned.
        store.meta.flush()?;
        tracing::info!(
            snapshot = self.snapshot_name,
            id = self.snapshot_id,
            bytes = self.length,
            "created snapshot"
        );
        if self.queued_punch.get() {
            // The snapshot is durable, so a failure here only delays the
            // punch of the damaged copies to the next writer call.
            if let Err(error) = store.drain_gc(self.guard) {
                tracing::warn!(%error, "could not punch damaged block copies; the next writer call will");
            }
        }
        self.operations
            .iter()
            .map(|operation| store.operation_shape(&operation.record))
            .collect()
    }

    /// Undoes a failed create: cuts uncommitted appends, queues what was
    /// committed for collection, fails the operations, and collects. If this
    /// fails too, the pending-create marker stays and the next open finishes it.
    /// Records the operations as `Failed` when the create failed before its
    /// marker was committed; a failure here is only logged.
    fn record_failure_without_marker(&mut self, error: &Error) {
        if self.operations.is_empty() {
            return;
        }
        let mut batch = Batch::default();
        let staged = self.operations.iter_mut().try_for_each(|operation| {
            operation.fail(error);
            operation.stage(&mut batch)
        });
        let recorded = staged
            .and_then(|()| self.store.meta.commit(batch))
            .and_then(|()| self.store.meta.flush());
        if let Err(record_error) = recorded {
            tracing::warn!(snapshot = self.snapshot_name, %error, %record_error, "could not record the failed create");
        }
    }

    pub(super) fn abort(&mut self, error: &Error) {
        let store = self.store;
        for pack in self.appended.keys() {
            let committed = store.meta.get::<PackRecord>("pack", &keys::pack(*pack));
            let result = match committed {
                Ok(Some(record)) => store.packs.discard_uncommitted(*pack, record.committed_len),
                Ok(None) => store.packs.remove_pack(*pack),
                Err(error) => Err(error),
            };
            if let Err(cleanup) = result {
                tracing::warn!(pack, error = %cleanup, "could not cut uncommitted bytes; the next open will");
            }
        }
        if !self.started {
            self.record_failure_without_marker(error);
            return;
        }
        let mut cleanup = || -> Result<()> {
            let mut batch = Batch::default();
            // A snapshot whose final flush failed is listed but not durable;
            // it goes with the rest of the create.
            if self.committed {
                batch.remove(keys::snapshot(self.snapshot_name));
            }
            batch.remove(keys::pending_create(self.snapshot_id));
            store.queue_gc_item(
                &mut batch,
                &GcItem::DropRoot {
                    snapshot_id: self.snapshot_id,
                },
            )?;
            for operation in &mut self.operations {
                operation.fail(error);
                operation.stage(&mut batch)?;
            }
            store.meta.commit(batch)?;
            store.drain_gc(self.guard)?;
            store.meta.flush()
        };
        match cleanup() {
            Ok(()) => {
                tracing::warn!(snapshot = self.snapshot_name, %error, "create failed and was rolled back");
            }
            Err(cleanup) => tracing::warn!(
                snapshot = self.snapshot_name,
                %error,
                cleanup_error = %cleanup,
                "create failed and its rollback failed too; the next open of the store finishes it"
            ),
        }
    }
}

/// Hashes one block, returning the zero marker for a block of zeros. A last
/// partial block is hashed as if zero-padded to the full block size.
pub(super) fn hash_block(block: &[u8], block_size: usize) -> BlockHash {
    if is_zero(block) {
        return BlockHash::ZERO;
    }
    if block.len() == block_size {
        return BlockHash::of(block);
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(block);
    let padding = [0u8; 4096];
    let mut missing = block_size - block.len();
    while missing > 0 {
        let step = missing.min(padding.len());
        hasher.update(padding.get(..step).unwrap_or_default());
        missing -= step;
    }
    BlockHash::from_bytes(*hasher.finalize().as_bytes())
}

/// Returns true if every byte of `bytes` is zero.
///
/// The OR over 4 KiB pieces compiles to SIMD code, unlike an early-exit loop
/// over bytes. On an AMD EPYC that loop took 1.0 s per GiB of zeros, three
/// times as long as hashing it, and this takes 0.03 s.
fn is_zero(bytes: &[u8]) -> bool {
    bytes
        .chunks(4096)
        .all(|piece| piece.iter().fold(0u8, |bits, byte| bits | byte) == 0)
}

fn count_overflow(what: &str) -> Error {
    Error::operation_failure(format!(
        "the reference count of {what} would exceed 2^64. Delete some snapshots first"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns at most `step` bytes per read, as pipes and some devices do.
    struct ShortReads<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for ShortReads<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            let count = self.step.min(buffer.len()).min(self.data.len());
            let (head, tail) = self.data.split_at(count);
            buffer[..count].copy_from_slice(head);
            self.data = tail;
            Ok(count)
        }
    }

    #[test]
    fn chunk_bytes_start_page_aligned() {
        for capacity in [1, 4096, 100_000, CHUNK_BYTES] {
            let mut chunk = Chunk::new(capacity);
            assert_eq!(chunk.unfilled().len(), capacity);
            assert_eq!(chunk.unfilled().as_ptr().addr() % CHUNK_ALIGN, 0);
        }
    }

    #[test]
    fn read_chunks_refills_recycled_chunk() {
        let data: Vec<u8> = (0..10_000u32)
            .map(|value| (value % 251) as u8 + 1)
            .collect();
        let source = ShortReads {
            data: &data,
            step: 700,
        };
        let (chunks, receiver) = mpsc::sync_channel(8);
        let (recycle, recycled) = mpsc::channel();
        // A recycled chunk is not cleared, so its stale bytes must all be overwritten.
        let mut stale = Chunk::new(4096);
        stale.unfilled().fill(0xee);
        stale.len = 4096;
        recycle.send(stale).unwrap();

        read_chunks(source, 4096, &chunks, &recycled);
        drop(chunks);

        let sent: Vec<Chunk> = receiver.iter().map(Result::unwrap).collect();
        let lengths: Vec<usize> = sent.iter().map(|chunk| chunk.bytes().len()).collect();
        assert_eq!(lengths, vec![4096, 4096, 1808]);
        let joined: Vec<u8> = sent
            .iter()
            .flat_map(|chunk| chunk.bytes().to_vec())
            .collect();
        assert_eq!(joined, data);
    }

    #[test]
    fn read_chunks_sends_one_short_chunk_at_end() {
        let data = vec![7u8; 4096];
        let (chunks, receiver) = mpsc::sync_channel(8);
        let (_recycle, recycled) = mpsc::channel();
        read_chunks(&data[..], 4096, &chunks, &recycled);
        drop(chunks);
        let lengths: Vec<usize> = receiver
            .iter()
            .map(|chunk| chunk.unwrap().bytes().len())
            .collect();
        // The source ends exactly at a chunk boundary, so an empty chunk marks the end.
        assert_eq!(lengths, vec![4096, 0]);
    }

    #[test]
    fn is_zero_finds_any_set_byte() {
        for length in [1, 4095, 4096, 4097, 65_536, 65_537] {
            let mut bytes = vec![0u8; length];
            assert!(is_zero(&bytes), "length {length}");
            for position in [0, length / 2, length - 1] {
                bytes[position] = 0x80;
                assert!(!is_zero(&bytes), "length {length}, byte {position}");
                bytes[position] = 0;
            }
        }
        assert!(is_zero(&[]));
    }

    #[test]
    fn hash_block_pads_partial_block() {
        let block_size = 65_536;
        let mut padded = vec![0u8; block_size];
        padded[..5000].fill(3);
        assert_eq!(
            hash_block(&padded[..5000], block_size),
            BlockHash::of(&padded)
        );
        assert_eq!(hash_block(&padded[5000..], block_size), BlockHash::ZERO);
    }
}

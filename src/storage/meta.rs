//! Typed access to the metadata database (one sled tree, see `keys`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec;
use super::fault::{Faults, PersistStep};
use crate::error::{io_failure, metadata_failure, Error, Result};

/// How long [`Meta::open`] retries a lock conflict before it reports the
/// store in use.
const LOCK_WAIT: Duration = Duration::from_secs(1);
/// Upper bound of sled's page cache, in bytes.
const CACHE_BYTES: u64 = 64 << 20;
/// Pause between two attempts to take the lock.
const LOCK_RETRY: Duration = Duration::from_millis(20);
/// Size of sled's log segments in a new store.
///
/// sled 0.34.7 writes a tree node larger than a quarter of a segment to a file
/// of its own in `blobs/`, and it never fsyncs that file. It deletes a replaced
/// blob file only when the log segment in use fills up, so a process that exits
/// before then leaves the file behind for good. With sled's default 512 KiB
/// segments, every leaf of four or more page bodies (32 KiB each) was such a
/// file. Every CLI create or delete left some behind, and the metadata of a
/// 1 GiB disk grew by about 2 MB per snapshot taken and deleted. sled splits a
/// leaf at 17 entries and merges one below 4 into its neighbour, so a leaf of
/// page bodies stays under 640 KB, below a quarter of 4 MiB.
///
/// NOTE: a queued garbage-collection item lists up to 16,384 blocks (about
/// 540 KB), so a leaf of two or more still becomes a blob file. A delete queues
/// two or more when the pages it drops list more than 16,384 distinct blocks.
const SEGMENT_BYTES: usize = 4 << 20;
/// sled 0.34.7's default segment size, used by stores created before
/// [`SEGMENT_BYTES`] was set. sled rejects a change of segment size.
const SLED_DEFAULT_SEGMENT_BYTES: usize = 512 << 10;

/// The metadata database of a store. Clones share the database.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    db: sled::Db,
    faults: Faults,
    /// Number of commits applied since the database was opened.
    commits: Arc<AtomicU64>,
    /// Number of key writes and removals in those commits.
    writes: Arc<AtomicU64>,
    /// Value of `commits` when the last successful flush began: every commit up
    /// to that count is durable.
    durable_commits: Arc<AtomicU64>,
    /// The database directory, whose log and blob files `flush` syncs.
    path: Arc<std::path::PathBuf>,
    /// Names of the blob files already synced.
    synced_blobs: Arc<Mutex<HashSet<OsString>>>,
}

/// A set of writes that commit together or not at all.
#[derive(Default)]
pub(crate) struct Batch {
    inner: sled::Batch,
    writes: usize,
}

impl Batch {
    pub(crate) fn put<T: Serialize>(&mut self, key: Vec<u8>, record: &T) -> Result<()> {
        self.inner.insert(key, codec::encode(record)?);
        self.writes += 1;
        Ok(())
    }

    pub(crate) fn put_raw(&mut self, key: Vec<u8>, value: &[u8]) {
        self.inner.insert(key, value);
        self.writes += 1;
    }

    pub(crate) fn remove(&mut self, key: Vec<u8>) {
        self.inner.remove(key);
        self.writes += 1;
    }

    /// Number of writes in the batch, for the metadata-update counters.
    pub(crate) fn len(&self) -> usize {
        self.writes
    }
}

impl Meta {
    /// Opens the database at `path`, or fails with `OperationFailureException`
    /// if another process holds it.
    ///
    /// A lock conflict is retried for up to [`LOCK_WAIT`]: a handle of this
    /// process that was just dropped keeps the lock until sled's background I/O
    /// threads finish with the file, and a child process forked meanwhile holds
    /// it until it executes its program.
    pub(crate) fn open(path: &std::path::Path, faults: Faults) -> Result<Meta> {
        let started = Instant::now();
        remove_empty_snapshot_temporaries(path);
        let recorded_segment_bytes = recorded_segment_size(path);
        let is_new = recorded_segment_bytes.is_none() && !has_log(path);
        let segment_bytes = match recorded_segment_bytes {
            Some(bytes) => bytes,
            None if is_new => SEGMENT_BYTES,
            None => SLED_DEFAULT_SEGMENT_BYTES,
        };
        let db = loop {
            let opened = sled::Config::new()
                .path(path)
                .segment_size(segment_bytes)
                // Commits are made durable explicitly with `flush` at the points the
                // protocol needs; background flushes only add earlier durability.
                .flush_every_ms(Some(1000))
                // sled caches up to 1 GiB by default. The metadata of a store
                // is small and hot, so a bounded cache keeps a create's memory
                // flat however many blocks it writes.
                .cache_capacity(CACHE_BYTES)
                .open();
            match opened {
                Ok(db) => break db,
                Err(sled::Error::Io(io)) if is_lock_conflict(&io) => {
                    if started.elapsed() < LOCK_WAIT {
                        std::thread::sleep(LOCK_RETRY);
                        continue;
                    }
                    // sled's error text shows the OS error in Rust's debug
                    // form, so it is left out. The message names the store
                    // and the fix.
                    return Err(Error::operation_failure(format!(
                        "the store metadata at {} is in use by another process. \
                         Stop the other blocksnap process or use another --store directory",
                        path.display()
                    )));
                }
                Err(other) => {
                    return Err(metadata_failure(
                        format_args!("opening {}", path.display()),
                        other,
                    ))
                }
            }
        };
        if is_new {
            sync_new_database(path)?;
        }
        Ok(Meta {
            db,
            faults,
            commits: Arc::new(AtomicU64::new(0)),
            writes: Arc::new(AtomicU64::new(0)),
            durable_commits: Arc::new(AtomicU64::new(0)),
            path: Arc::new(path.to_path_buf()),
            synced_blobs: Arc::new(Mutex::new(HashSet::new())),
        })
    }

    pub(crate) fn get<T: DeserializeOwned>(&self, what: &str, key: &[u8]) -> Result<Option<T>> {
        let value = self
            .db
            .get(key)
            .map_err(|error| metadata_failure(format_args!("reading a {what} record"), error))?;
        value.map(|bytes| codec::decode(what, &bytes)).transpose()
    }

    pub(crate) fn get_raw(&self, what: &str, key: &[u8]) -> Result<Option<sled::IVec>> {
        self.db
            .get(key)
            .map_err(|error| metadata_failure(format_args!("reading a {what} record"), error))
    }

    pub(crate) fn contains(&self, what: &str, key: &[u8]) -> Result<bool> {
        self.db
            .contains_key(key)
            .map_err(|error| metadata_failure(format_args!("looking up a {what} record"), error))
    }

    /// Iterates the raw entries whose key starts with `prefix`, in key order.
    pub(crate) fn scan<'a>(
        &'a self,
        what: &'a str,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> + 'a {
        self.db.scan_prefix(prefix).map(move |entry| {
            entry.map_err(|error| metadata_failure(format_args!("scanning {what} records"), error))
        })
    }

    /// Iterates raw entries with keys in `[start, end)`.
    pub(crate) fn range<'a>(
        &'a self,
        what: &'a str,
        start: &[u8],
        end: &[u8],
    ) -> impl DoubleEndedIterator<Item = Result<(sled::IVec, sled::IVec)>> + 'a {
        self.db
            .range(start.to_vec()..end.to_vec())
            .map(move |entry| {
                entry.map_err(|error| {
                    metadata_failure(format_args!("scanning {what} records"), error)
                })
            })
    }

    /// Decodes every record under `prefix`.
    pub(crate) fn scan_records<'a, T: DeserializeOwned + 'a>(
        &'a self,
        what: &'a str,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(sled::IVec, T)>> + 'a {
        self.scan(what, prefix).map(move |entry| {
            let (key, value) = entry?;
            Ok((key, codec::decode(what, &value)?))
        })
    }

    /// A fresh, never reused 64-bit id (sled keeps it monotonic across restarts).
    pub(crate) fn next_id(&self) -> Result<u64> {
        self.db
            .generate_id()
            .map_err(|error| metadata_failure("allocating an id", error))
    }

    /// Commits `batch` atomically. Not durable until [`Meta::flush`].
    pub(crate) fn commit(&self, batch: Batch) -> Result<()> {
        self.faults
            .check(PersistStep::MetadataCommit)
            .map_err(|error| io_failure("committing metadata", error))?;
        let writes = batch.writes as u64;
        self.db
            .apply_batch(batch.inner)
            .map_err(|error| metadata_failure("committing a batch", error))?;
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.writes.fetch_add(writes, Ordering::Relaxed);
        Ok(())
    }

    /// Key writes and removals committed since the database was opened.
    pub(crate) fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Returns the directory of the database.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every commit so far durable.
    pub(crate) fn flush(&self) -> Result<()> {
        let commits = self.commits.load(Ordering::SeqCst);
        self.faults
            .check(PersistStep::MetadataFlush)
            .map_err(|error| io_failure("flushing metadata to disk", error))?;
        self.db
            .flush()
            .map_err(|error| metadata_failure("flushing to disk", error))?;
        self.sync_log_files()
            .map_err(|error| io_failure("syncing the metadata log to disk", error))?;
        self.durable_commits.fetch_max(commits, Ordering::SeqCst);
        Ok(())
    }

    /// Syncs sled's log file and the blob files it wrote since the last call.
    ///
    /// sled 0.34.7's `flush` makes log writes stable with `sync_file_range`
    /// on Linux (`pagecache/iobuf.rs`). That call persists neither a grown
    /// file size nor the drive's write cache. sled also never syncs the files
    /// under `blobs/`, which hold nodes larger than a quarter of a log segment
    /// (`pagecache/blob_io.rs`). Only its background flusher calls `sync_all`,
    /// once per interval.
    fn sync_log_files(&self) -> io::Result<()> {
        File::open(self.path.join("db"))?.sync_data()?;

        let blobs = self.path.join("blobs");
        let entries = match std::fs::read_dir(&blobs) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        };
        let mut synced = self
            .synced_blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut present = HashSet::new();
        let mut added = false;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if !synced.contains(&name) {
                match File::open(entry.path()).and_then(|file| file.sync_all()) {
                    Ok(()) => added = true,
                    // sled removed a replaced blob meanwhile.
                    Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                    Err(error) => return Err(error),
                }
            }
            present.insert(name);
        }
        *synced = present;
        if added {
            File::open(&blobs)?.sync_all()?;
        }
        Ok(())
    }

    /// Flushes unless every commit made through this handle is durable already,
    /// which saves an fsync where a step needs durability and an earlier step
    /// has just provided it.
    pub(crate) fn flush_if_needed(&self) -> Result<()> {
        if self.durable_commits.load(Ordering::SeqCst) < self.commits.load(Ordering::SeqCst) {
            self.flush()?;
        }
        Ok(())
    }
}

/// Removes empty `snap.*.generating` files from the database directory.
///
/// sled 0.34.7 writes its snapshot to such a temporary file and renames it
/// when complete. An open that runs out of disk space can leave it empty, and
/// every later open then reports "empty/corrupt snapshot file" although the
/// log is intact. An empty temporary holds nothing, so removing it is safe.
///
/// It is removed only while no process has the database open, because that
/// process may have just created the temporary it is about to fill. The check
/// takes the lock sled itself takes, a `flock` on `db`, and releases it when
/// `log` closes, before sled opens the database.
fn remove_empty_snapshot_temporaries(path: &std::path::Path) {
    let Ok(log) = File::open(path.join("db")) else {
        return;
    };
    if rustix::fs::flock(&log, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let empty = entry
            .metadata()
            .is_ok_and(|metadata| metadata.is_file() && metadata.len() == 0);
        if name.starts_with("snap.") && name.ends_with(".generating") && empty {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::warn!(file = %entry.path().display(), "removed an empty sled snapshot left by an interrupted open");
                }
                Err(error) => {
                    tracing::warn!(file = %entry.path().display(), %error, "could not remove an empty sled snapshot");
                }
            }
        }
    }
}

/// Reads the segment size from sled 0.34.7's `conf` file, whose first line is
/// `segment_size: N`. Returns `None` if the file is missing or has no such line.
fn recorded_segment_size(path: &Path) -> Option<usize> {
    let bytes = std::fs::read(path.join("conf")).ok()?;
    String::from_utf8_lossy(&bytes)
        .lines()
        .find_map(|line| line.strip_prefix("segment_size: ")?.trim().parse().ok())
}

/// Returns true if the database at `path` has a non-empty log file.
///
/// NOTE: a log without a readable `conf` is taken to be from a store created
/// with sled's default segment size. A crash during the first open of a new
/// store, before [`sync_new_database`], can leave a log with 4 MiB segments and
/// no `conf`. That log holds no blocksnap record yet.
fn has_log(path: &Path) -> bool {
    std::fs::metadata(path.join("db")).is_ok_and(|metadata| metadata.len() > 0)
}

/// Makes the `conf` file that sled wrote for a new database durable, with its
/// directory entry, so that every later open reads the same segment size. sled
/// 0.34.7 does not sync either.
fn sync_new_database(path: &Path) -> Result<()> {
    let sync = |target: &Path| {
        std::fs::File::open(target)
            .and_then(|file| file.sync_all())
            .map_err(|error| io_failure(format_args!("syncing {}", target.display()), error))
    };
    sync(&path.join("conf"))?;
    sync(path)
}

fn is_lock_conflict(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::WouldBlock
        || error.to_string().contains("could not acquire lock")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(meta: &Meta, key: &[u8], value: &[u8]) {
        let mut batch = Batch::default();
        batch.put_raw(key.to_vec(), value);
        meta.commit(batch).unwrap();
        meta.flush().unwrap();
    }

    /// Creates a database holding one entry with sled's default configuration,
    /// like those of stores created before `SEGMENT_BYTES`.
    fn create_default_database(path: &Path) {
        let db = sled::Config::new().path(path).open().unwrap();
        db.insert(b"key", b"value").unwrap();
        db.flush().unwrap();
    }

    #[test]
    fn new_database_gets_segment_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata");
        let meta = Meta::open(&path, Faults::new(None)).unwrap();
        put(&meta, b"key", b"value");
        drop(meta);

        assert_eq!(recorded_segment_size(&path), Some(SEGMENT_BYTES));
        let meta = Meta::open(&path, Faults::new(None)).unwrap();
        let value = meta.get_raw("test", b"key").unwrap().unwrap();
        assert_eq!(&value[..], b"value");
    }

    #[test]
    fn existing_database_keeps_segment_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata");
        create_default_database(&path);

        let meta = Meta::open(&path, Faults::new(None)).unwrap();
        let value = meta.get_raw("test", b"key").unwrap().unwrap();
        assert_eq!(&value[..], b"value");
        put(&meta, b"other", b"value");
        drop(meta);

        assert_eq!(
            recorded_segment_size(&path),
            Some(SLED_DEFAULT_SEGMENT_BYTES)
        );
    }

    #[test]
    fn log_without_conf_opens_with_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata");
        create_default_database(&path);
        std::fs::write(path.join("conf"), b"").unwrap();

        let meta = Meta::open(&path, Faults::new(None)).unwrap();
        let value = meta.get_raw("test", b"key").unwrap().unwrap();
        assert_eq!(&value[..], b"value");
        drop(meta);

        assert_eq!(
            recorded_segment_size(&path),
            Some(SLED_DEFAULT_SEGMENT_BYTES)
        );
    }

    #[test]
    fn empty_snapshot_temporary_removed_unless_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata");
        create_default_database(&path);
        let temporary = path.join("snap.00000000000000FF.generating");

        // While another process has the database open, its temporary stays.
        std::fs::write(&temporary, b"").unwrap();
        let holder = File::open(path.join("db")).unwrap();
        rustix::fs::flock(&holder, rustix::fs::FlockOperation::LockExclusive).unwrap();
        remove_empty_snapshot_temporaries(&path);
        assert!(temporary.exists(), "removed while the database was held");
        drop(holder);

        let meta = Meta::open(&path, Faults::new(None)).unwrap();
        assert!(!temporary.exists(), "left in place by the open");
        let value = meta.get_raw("test", b"key").unwrap().unwrap();
        assert_eq!(&value[..], b"value");
    }
}

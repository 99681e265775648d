//! Read-only opening: a private copy of the metadata database.
//!
//! sled 0.34.7 cannot open a database without writing to it: it takes its lock
//! through a writable handle, rewrites `conf` and snapshot files, and fills the
//! rest of the open log segment with zeros. So a read-only open copies
//! `metadata/` into a temporary directory and opens the copy. The copy is
//! removed when the store handle is dropped, along with anything written to it,
//! such as the operation record of a restore.
//!
//! Each copy lives in a directory of its own, next to an `owner.lock` file
//! that the handle keeps under an exclusive `flock`. A process killed before
//! it could remove its copy leaves that lock free, and the next read-only open
//! removes the leftover directory.
//!
//! While the copy is in use, a shared `flock` on the original `metadata/db`
//! keeps writers out. sled takes an exclusive `flock` on that file, so a
//! writable open waits for the read-only handles to close, and a read-only open
//! waits for a writable handle to close. Pack files are only read: the calls
//! that would change them are refused before they start.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{io_failure, Error, Result};

/// How long a read-only open waits for a writer to close the store.
const LOCK_WAIT: Duration = Duration::from_secs(1);
/// Pause between two attempts to take the shared lock.
const LOCK_RETRY: Duration = Duration::from_millis(20);
/// Prefix of the names of the copy directories in the temporary directory.
const COPY_PREFIX: &str = "blocksnap-read-only-";
/// File in a copy directory whose exclusive lock marks the copy in use.
const OWNER_LOCK: &str = "owner.lock";
/// Age under which a copy directory is never taken for a leftover, so that a
/// directory whose open has not locked its owner file yet is left alone.
const MIN_LEFTOVER_AGE: Duration = Duration::from_secs(60);

/// A private, temporary copy of a store's metadata directory. Dropping it
/// removes the copy and releases the shared lock on the original.
#[derive(Debug)]
pub(crate) struct MetadataCopy {
    /// The original `metadata/db`, open so that its shared lock lasts.
    _lock: File,
    /// The copy directory's `owner.lock`, open so that its exclusive lock
    /// lasts.
    _owner: File,
    /// The copy directory, holding `owner.lock` and `metadata/`.
    dir: PathBuf,
}

impl MetadataCopy {
    /// Locks the metadata directory `original` against writers and copies it
    /// into a new temporary directory.
    ///
    /// Returns `NotFoundException` if `original` contains no metadata database,
    /// and `OperationFailureException` if a writer keeps the store open or a
    /// copy step fails.
    pub(crate) fn take(original: &Path) -> Result<MetadataCopy> {
        let log = original.join("db");
        let lock = match File::open(&log) {
            Ok(file) => file,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Err(Error::not_found(format!(
                    "there is no store at {}: {} does not exist. A read-only open does not \
                     create one. Check the store directory (--store)",
                    original.parent().unwrap_or(original).display(),
                    log.display()
                )));
            }
            Err(error) => return Err(io_failure(format_args!("opening {}", log.display()), error)),
        };
        lock_shared(&lock, &log)?;

        remove_leftover_copies();
        let dir = new_private_dir()?;
        let owner = match lock_owner_file(&dir) {
            Ok(owner) => owner,
            Err(error) => {
                // Best effort: the directory is empty but for the lock file.
                let _ = fs::remove_dir_all(&dir);
                return Err(error);
            }
        };
        // On failure the partial copy is removed by `Drop`.
        let copy = MetadataCopy {
            _lock: lock,
            _owner: owner,
            dir,
        };

        let metadata = copy.path();
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&metadata)
            .map_err(|error| {
                copy_step_failed(format_args!("creating {}", metadata.display()), error)
            })?;
        copy_tree(original, &metadata, 0)?;
        Ok(copy)
    }

    /// Returns the directory of the copied metadata database.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join("metadata")
    }
}

impl Drop for MetadataCopy {
    fn drop(&mut self) {
        if let Err(error) = fs::remove_dir_all(&self.dir) {
            tracing::warn!(
                path = %self.dir.display(),
                %error,
                "could not remove the metadata copy of a read-only store; remove it by hand"
            );
        }
    }
}

/// Takes a shared `flock` on `file`, retrying for up to [`LOCK_WAIT`]: a writer
/// that just closed the store may hold its lock for a moment longer.
fn lock_shared(file: &File, path: &Path) -> Result<()> {
    let started = Instant::now();
    loop {
        match rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockShared) {
            Ok(()) => return Ok(()),
            Err(errno) if errno == rustix::io::Errno::WOULDBLOCK => {
                if started.elapsed() >= LOCK_WAIT {
                    return Err(Error::operation_failure(format!(
                        "the store metadata at {} is in use by another process. \
                         Wait for it to finish, then retry the read-only open",
                        path.parent().unwrap_or(path).display()
                    )));
                }
                std::thread::sleep(LOCK_RETRY);
            }
            Err(errno) if errno == rustix::io::Errno::INTR => {}
            Err(errno) => {
                return Err(io_failure(
                    format_args!("locking {}", path.display()),
                    io::Error::from(errno),
                ))
            }
        }
    }
}

/// Creates the owner lock file in the copy directory `dir` and takes its
/// exclusive lock, which lasts as long as the returned file is open.
fn lock_owner_file(dir: &Path) -> Result<File> {
    let path = dir.join(OWNER_LOCK);
    let file = File::create(&path)
        .map_err(|error| copy_step_failed(format_args!("creating {}", path.display()), error))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |errno| {
            copy_step_failed(
                format_args!("locking {}", path.display()),
                io::Error::from(errno),
            )
        },
    )?;
    Ok(file)
}

/// Removes the copy directories that processes killed during a read-only
/// session left in the temporary directory. A directory counts as left over
/// when it is older than [`MIN_LEFTOVER_AGE`] and its owner lock file is
/// missing or unlocked. Failures are logged and skipped, since the open does
/// not depend on them.
fn remove_leftover_copies() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let is_copy = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(COPY_PREFIX));
        if !is_copy || !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age > MIN_LEFTOVER_AGE));
        if !old {
            continue;
        }
        let dir = entry.path();
        // Another user's copy cannot be opened, so it is never taken.
        let unowned = match File::open(dir.join(OWNER_LOCK)) {
            Ok(owner) => {
                rustix::fs::flock(&owner, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                    .is_ok()
            }
            Err(error) => error.kind() == io::ErrorKind::NotFound,
        };
        if !unowned {
            continue;
        }
        match fs::remove_dir_all(&dir) {
            Ok(()) => {
                tracing::info!(path = %dir.display(), "removed a leftover read-only metadata copy");
            }
            Err(error) => tracing::warn!(
                path = %dir.display(),
                %error,
                "could not remove a leftover read-only metadata copy"
            ),
        }
    }
}

/// Creates a new directory that only this user can read, under the system's
/// temporary directory.
fn new_private_dir() -> Result<PathBuf> {
    let parent = std::env::temp_dir();
    let mut attempt = 0u32;
    loop {
        let dir = parent.join(format!("{COPY_PREFIX}{}-{attempt}", std::process::id()));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempt < 10_000 => {
                attempt += 1;
            }
            Err(error) => {
                return Err(copy_step_failed(
                    format_args!(
                        "creating a directory for the metadata copy in {}",
                        parent.display()
                    ),
                    error,
                ))
            }
        }
    }
}

/// Deepest directory nesting that [`copy_tree`] follows. sled's database has
/// one level (`blobs/`), so a deeper tree means a loop of symbolic links.
const MAX_COPY_DEPTH: usize = 8;

/// Copies the files and directories under `from` into the existing directory
/// `to`, following symbolic links, since an operator may have moved a file
/// of the database elsewhere and linked it back. Anything that is neither a
/// file nor a directory (a socket, a dangling link) is not part of a
/// metadata database and is skipped.
fn copy_tree(from: &Path, to: &Path, depth: usize) -> Result<()> {
    if depth > MAX_COPY_DEPTH {
        return Err(Error::operation_failure(format!(
            "{} is nested more than {MAX_COPY_DEPTH} directories deep in the metadata \
             directory, which suggests a loop of symbolic links. Remove the loop",
            from.display()
        )));
    }
    let listing_failed =
        |error| io_failure(format_args!("listing {} to copy it", from.display()), error);
    for entry in fs::read_dir(from).map_err(listing_failed)? {
        let entry = entry.map_err(listing_failed)?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let Ok(metadata) = fs::metadata(&source) else {
            continue;
        };
        if metadata.is_dir() {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&target)
                .map_err(|error| {
                    copy_step_failed(format_args!("creating {}", target.display()), error)
                })?;
            copy_tree(&source, &target, depth + 1)?;
        } else if metadata.is_file() {
            fs::copy(&source, &target).map_err(|error| {
                copy_step_failed(
                    format_args!("copying {} to {}", source.display(), target.display()),
                    error,
                )
            })?;
        }
    }
    Ok(())
}

/// Converts an I/O error met while `action` made the metadata copy into an
/// `OperationFailureException` that names the temporary directory, which the
/// caller may not know a read-only open writes to.
fn copy_step_failed(action: impl std::fmt::Display, error: io::Error) -> Error {
    Error::operation_failure(format!(
        "{action} failed ({error}). A read-only open copies the store's metadata into the \
         temporary directory {}. Set TMPDIR to a writable directory with room for the copy",
        std::env::temp_dir().display()
    ))
    .with_source(error)
}

//! Read-only opening: a private copy of the metadata database.
//!
//! sled 0.34.7 cannot open a database without writing to it: it takes its lock
//! through a writable handle, rewrites `conf` and snapshot files, and fills the
//! rest of the open log segment with zeros. So a read-only open copies
//! `metadata/` into a temporary directory and opens the copy. The copy is
//! removed when the store handle is dropped, along with anything written to it,
//! such as the operation record of a restore.
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

/// A private, temporary copy of a store's metadata directory. Dropping it
/// removes the copy and releases the shared lock on the original.
#[derive(Debug)]
pub(crate) struct MetadataCopy {
    /// The original `metadata/db`, open so that its shared lock lasts.
    _lock: File,
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
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
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
        let dir = new_private_dir()?;
        let copy = MetadataCopy { _lock: lock, dir };
        // On failure the partial copy is removed by `Drop`.
        copy_tree(original, &copy.dir)?;
        Ok(copy)
    }

    /// Returns the directory of the copy.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
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

/// Creates a new directory that only this user can read, under the system's
/// temporary directory.
fn new_private_dir() -> Result<PathBuf> {
    let parent = std::env::temp_dir();
    let mut attempt = 0u32;
    loop {
        let dir = parent.join(format!(
            "blocksnap-read-only-{}-{attempt}",
            std::process::id()
        ));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempt < 10_000 => {
                attempt += 1;
            }
            Err(error) => {
                return Err(io_failure(
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

/// Copies the regular files and directories under `from` into the existing
/// directory `to`. Anything else (a socket, a symbolic link) is not part of a
/// metadata database and is skipped.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let listing_failed =
        |error| io_failure(format_args!("listing {} to copy it", from.display()), error);
    for entry in fs::read_dir(from).map_err(listing_failed)? {
        let entry = entry.map_err(listing_failed)?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(listing_failed)?;
        if kind.is_dir() {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&target)
                .map_err(|error| {
                    io_failure(format_args!("creating {}", target.display()), error)
                })?;
            copy_tree(&source, &target)?;
        } else if kind.is_file() {
            fs::copy(&source, &target).map_err(|error| {
                io_failure(
                    format_args!("copying {} to {}", source.display(), target.display()),
                    error,
                )
            })?;
        }
    }
    Ok(())
}

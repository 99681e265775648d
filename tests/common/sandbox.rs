//! Helpers for the tests that run the `blocksnap` binary: a temporary
//! directory with a store in it, argument lists and deterministic bytes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// A temporary directory holding a store (`store/`) and the test's files.
pub struct Sandbox {
    pub dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("create a temporary directory"),
        }
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Creates the sandbox store, empty, through the library, because
    /// `create-disk-snapshot` is the only command that creates a store.
    pub fn create_empty_store(&self) {
        drop(super::open_store(&self.store()));
    }

    /// Writes `bytes` to the file `name` in the sandbox and returns its path as text.
    pub fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write a file in the sandbox");
        path_text(&path)
    }

    pub fn path(&self, name: &str) -> String {
        path_text(&self.dir.path().join(name))
    }

    /// Returns a command that runs blocksnap on the sandbox store with 4 KiB
    /// blocks.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_blocksnap"));
        command
            .arg("--store")
            .arg(self.store())
            .args(["--block-size", "4096"])
            .args(args);
        command
    }

    /// Runs blocksnap on the sandbox store with 4 KiB blocks.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|error| panic!("failed to run blocksnap {args:?}: {error}"))
    }

    /// Runs blocksnap on the sandbox store without `--block-size`.
    pub fn run_without_block_size(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_blocksnap"))
            .arg("--store")
            .arg(self.store())
            .args(args)
            .output()
            .unwrap_or_else(|error| panic!("failed to run blocksnap {args:?}: {error}"))
    }
}

pub fn path_text(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// Asserts that the run of blocksnap with `args` exited with success, and
/// shows its stderr otherwise.
pub fn assert_run_succeeded(args: &[&str], output: &Output) {
    assert!(
        output.status.success(),
        "blocksnap {args:?} failed with {}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Returns the arguments of `create-disk-snapshot` of disk `disk` as
/// `snapshot`, read from `source`.
pub fn create_args<'a>(disk: &'a str, snapshot: &'a str, source: &'a str) -> Vec<&'a str> {
    vec![
        "create-disk-snapshot",
        "--disk-name",
        disk,
        "--disk-snapshot-name",
        snapshot,
        "--source",
        source,
    ]
}

/// Returns the arguments of `create-disk-from-snapshot` that restore
/// `snapshot` as disk `disk` into the file `target`.
pub fn restore_args<'a>(snapshot: &'a str, disk: &'a str, target: &'a str) -> Vec<&'a str> {
    vec![
        "create-disk-from-snapshot",
        "--disk-snapshot-name",
        snapshot,
        "--disk-name",
        disk,
        "--target",
        target,
    ]
}

/// Returns `len` pseudo-random bytes from a splitmix64 sequence started at `seed`.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        bytes.extend_from_slice(&z.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

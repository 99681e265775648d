#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! A chain of snapshots of a real ext4 file system.
//!
//! `mkfs.ext4 -d` builds a 32 MiB image from a few MiB of files found on this
//! machine, and `debugfs -w` then changes files inside the image, the way a
//! running system would between two nightly snapshots. Each of the four
//! versions is snapshotted into stores of 4 KiB and 64 KiB blocks, the
//! snapshots are deleted in several orders, and every survivor must restore
//! to the saved image bytes. A restored image must also pass `e2fsck -fn`.
//!
//! The test needs e2fsprogs (`mkfs.ext4`, `debugfs`, `e2fsck`) and fails,
//! rather than skips, when they are missing.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use blocksnap::{Store, StoreOptions};
use common::{
    allocated_bytes, assert_bytes_equal, assert_verify_clean, pack_files, random_bytes, restore,
};

const IMAGE_SIZE: &str = "32M";
/// Fixed file system UUID and directory hash seed, so that `mkfs.ext4` builds
/// the same image from the same files.
const FS_UUID: &str = "6a8f3b1e-0c52-4d8e-9a39-2f0c6b1f4e77";
const HASH_SEED: &str = "1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4051";
/// Seconds since the epoch that e2fsprogs writes as the current time.
const FAKE_TIME: &str = "1700000000";
/// Bytes copied into the staging directory from each source tree.
const BYTES_PER_SOURCE: u64 = 3 << 20;
/// Files larger than this are left out, so that many small files are copied.
const MAX_FILE_BYTES: u64 = 256 << 10;

/// Finds an e2fsprogs tool in `PATH`, `/sbin` or `/usr/sbin` (where Debian
/// installs them, often outside a normal user's `PATH`).
fn find_tool(name: &str) -> PathBuf {
    let path_dirs = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let system_dirs = [PathBuf::from("/sbin"), PathBuf::from("/usr/sbin")];
    path_dirs
        .into_iter()
        .chain(system_dirs)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found in PATH, /sbin or /usr/sbin. This test needs e2fsprogs: \
                 install it (Debian and Ubuntu: apt-get install e2fsprogs) and run the test again"
            )
        })
}

/// The e2fsprogs tools the test runs.
struct Tools {
    mkfs: PathBuf,
    debugfs: PathBuf,
    e2fsck: PathBuf,
}

impl Tools {
    fn find() -> Tools {
        Tools {
            mkfs: find_tool("mkfs.ext4"),
            debugfs: find_tool("debugfs"),
            e2fsck: find_tool("e2fsck"),
        }
    }
}

/// Runs `command` and panics with its output unless it exits with status 0.
fn run(command: &mut Command) -> std::process::Output {
    let output = command
        .env("E2FSPROGS_FAKE_TIME", FAKE_TIME)
        .output()
        .unwrap_or_else(|error| panic!("failed to start {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} exited with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Copies up to `budget` bytes of regular files under `source` into
/// `target`, in sorted path order, skipping files that cannot be read.
/// Returns the relative paths copied.
fn copy_tree(
    source: &Path,
    target: &Path,
    budget: &mut u64,
    copied: &mut Vec<PathBuf>,
    root: &Path,
) {
    let Ok(entries) = fs::read_dir(source) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    paths.sort();
    for path in paths {
        if *budget == 0 {
            return;
        }
        let Ok(metadata) = fs::symlink_metadata(&path) else {
            continue;
        };
        if metadata.is_dir() {
            copy_tree(&path, target, budget, copied, root);
        } else if metadata.is_file()
            && metadata.len() <= MAX_FILE_BYTES
            && metadata.len() <= *budget
        {
            let Ok(bytes) = fs::read(&path) else {
                continue;
            };
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            let destination = target.join(&relative);
            fs::create_dir_all(destination.parent().unwrap()).unwrap();
            fs::write(&destination, &bytes).unwrap();
            *budget -= bytes.len() as u64;
            copied.push(relative);
        }
    }
}

/// Lists the directories whose files fill the image: documentation and the
/// Python standard library, which a Debian system has.
fn source_trees() -> Vec<(PathBuf, &'static str)> {
    let mut trees = vec![(PathBuf::from("/usr/share/doc"), "doc")];
    let mut pythons: Vec<PathBuf> = fs::read_dir("/usr/lib")
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| {
                    path.file_name()
                        .and_then(|name| name.to_str())
                        .is_some_and(|name| name.starts_with("python3."))
                })
                .collect()
        })
        .unwrap_or_default();
    pythons.sort();
    if let Some(python) = pythons.pop() {
        trees.push((python, "python"));
    }
    trees
}

/// Fills `staging` with real files and returns their paths inside the image.
fn build_staging(staging: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for (tree, prefix) in source_trees() {
        let mut budget = BYTES_PER_SOURCE;
        let mut copied = Vec::new();
        copy_tree(
            &tree,
            &staging.join(prefix),
            &mut budget,
            &mut copied,
            &tree,
        );
        files.extend(
            copied
                .iter()
                .map(|relative| format!("/{prefix}/{}", relative.display())),
        );
    }
    assert!(
        files.len() >= 20,
        "found only {} readable files under /usr/share/doc and /usr/lib/python3.*",
        files.len()
    );
    files
}

/// Runs the debugfs `commands` against `image` in write mode. debugfs exits
/// with status 0 even when a command fails, so its error output is checked:
/// anything beyond the version banner is a failed command.
fn debugfs_write(tools: &Tools, work: &Path, image: &Path, commands: &[String]) {
    let script = work.join("debugfs-commands");
    fs::write(&script, commands.join("\n") + "\n").unwrap();
    let output = run(Command::new(&tools.debugfs)
        .arg("-w")
        .arg("-f")
        .arg(&script)
        .arg(image));
    let errors: Vec<String> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| !line.starts_with("debugfs ") && !line.trim().is_empty())
        .map(str::to_owned)
        .collect();
    assert!(
        errors.is_empty(),
        "debugfs commands {commands:?} failed:\n{}",
        errors.join("\n")
    );
}

/// Reads file `path` out of `image` with debugfs.
fn debugfs_read(tools: &Tools, work: &Path, image: &Path, path: &str) -> Vec<u8> {
    let out = work.join("dumped");
    let _ = fs::remove_file(&out);
    run(Command::new(&tools.debugfs)
        .arg("-R")
        .arg(format!("dump {path} {}", out.display()))
        .arg(image));
    fs::read(&out).unwrap_or_else(|error| panic!("debugfs did not dump {path}: {error}"))
}

/// Builds the four versions of the image and returns their bytes.
///
/// 1. `mkfs.ext4 -d` of the staged files.
/// 2. A new directory with a new 512 KiB file.
/// 3. One staged file rewritten with different contents, and another removed.
/// 4. The 512 KiB file replaced by a new 1 MiB file.
fn build_versions(tools: &Tools, work: &Path) -> Vec<Vec<u8>> {
    let staging = work.join("staging");
    let files = build_staging(&staging);
    let image = work.join("image.img");
    run(Command::new(&tools.mkfs)
        .args(["-q", "-F", "-b", "4096", "-U", FS_UUID, "-E"])
        .arg(format!("hash_seed={HASH_SEED}"))
        .arg("-d")
        .arg(&staging)
        .arg(&image)
        .arg(IMAGE_SIZE));
    let mut versions = vec![fs::read(&image).unwrap()];

    let blob_1 = work.join("blob-1.bin");
    fs::write(&blob_1, random_bytes(1, 512 << 10)).unwrap();
    debugfs_write(
        tools,
        work,
        &image,
        &[
            "mkdir /added".to_owned(),
            format!("write {} /added/blob-1.bin", blob_1.display()),
        ],
    );
    assert_eq!(
        debugfs_read(tools, work, &image, "/added/blob-1.bin"),
        fs::read(&blob_1).unwrap()
    );
    versions.push(fs::read(&image).unwrap());

    // debugfs splits its commands at spaces, so change only plainly named files.
    let plain: Vec<&String> = files
        .iter()
        .filter(|path| {
            path.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+/".contains(c))
        })
        .collect();
    assert!(plain.len() >= 3, "too few plainly named files: {files:?}");
    let rewritten = plain[plain.len() / 2];
    let removed = plain[plain.len() / 3];
    let mut contents = debugfs_read(tools, work, &image, rewritten);
    contents.extend_from_slice(b"\n# changed between snapshots\n");
    contents.extend_from_slice(&random_bytes(2, 20_000));
    let replacement = work.join("rewritten.bin");
    fs::write(&replacement, &contents).unwrap();
    debugfs_write(
        tools,
        work,
        &image,
        &[
            format!("rm {rewritten}"),
            format!("write {} {rewritten}", replacement.display()),
            format!("rm {removed}"),
        ],
    );
    assert_eq!(debugfs_read(tools, work, &image, rewritten), contents);
    versions.push(fs::read(&image).unwrap());

    let blob_2 = work.join("blob-2.bin");
    fs::write(&blob_2, random_bytes(3, 1 << 20)).unwrap();
    debugfs_write(
        tools,
        work,
        &image,
        &[
            "rm /added/blob-1.bin".to_owned(),
            format!("write {} /added/blob-2.bin", blob_2.display()),
        ],
    );
    assert_eq!(
        debugfs_read(tools, work, &image, "/added/blob-2.bin"),
        fs::read(&blob_2).unwrap()
    );
    versions.push(fs::read(&image).unwrap());

    for (index, pair) in versions.windows(2).enumerate() {
        assert!(
            pair[0] != pair[1],
            "version {} equals version {}",
            index + 2,
            index + 1
        );
    }
    versions
}

/// Snapshots `versions` into a new store with `block_size`, deletes the
/// snapshots in `order`, and checks the survivors, the counts and the space
/// after every step.
fn check_chain(work: &Path, versions: &[Vec<u8>], block_size: u32, order: [usize; 4], label: &str) {
    let store_dir = work.join(format!("store-{block_size}-{label}"));
    let options = StoreOptions {
        block_size: Some(block_size),
        ..StoreOptions::default()
    };
    let store = Store::open_with(&store_dir, options).unwrap();
    let empty_bytes = allocated_bytes(&store_dir);
    let names: Vec<String> = (1..=versions.len()).map(|n| format!("ext4-v{n}")).collect();

    let mut added = Vec::new();
    for (name, image) in names.iter().zip(versions) {
        let before = store.stats().unwrap().blocks;
        store
            .create_disk_snapshot("ext4-disk", name, &image[..], &[])
            .unwrap();
        added.push(store.stats().unwrap().blocks - before);
    }
    println!("{label}, {block_size}-byte blocks: blocks added per snapshot {added:?}");
    for (version, count) in added.iter().enumerate().skip(1) {
        assert!(
            count * 4 < added[0],
            "{label}: snapshot {} added {count} blocks, not far fewer than the {} of the first",
            version + 1,
            added[0]
        );
    }
    assert_verify_clean(&store);
    let full_bytes = allocated_bytes(&store_dir);
    let full_pack_bytes = common::pack_allocated_bytes(&store_dir);

    let mut alive = [true; 4];
    for index in order {
        store.delete_disk_snapshot(&names[index]).unwrap();
        alive[index] = false;
        for survivor in (0..versions.len()).filter(|i| alive[*i]) {
            let restored = restore(&store, &names[survivor]);
            assert_bytes_equal(
                &restored,
                &versions[survivor],
                &format!(
                    "{label}, {block_size}-byte blocks: {} after deleting {}",
                    names[survivor], names[index]
                ),
            );
        }
        assert_verify_clean(&store);
    }

    let end = store.stats().unwrap();
    assert_eq!((end.snapshots, end.pages, end.blocks), (0, 0, 0), "{label}");
    assert!(
        pack_files(&store_dir).is_empty(),
        "{label}: pack files left: {:?}",
        pack_files(&store_dir)
    );
    let end_bytes = allocated_bytes(&store_dir);
    let metadata_bytes = allocated_bytes(&store_dir.join("metadata"));
    println!(
        "{label}, {block_size}-byte blocks: allocated bytes when empty {empty_bytes}, \
         with 4 snapshots {full_bytes} ({full_pack_bytes} in packs), after the deletes {end_bytes}"
    );
    assert!(
        end_bytes <= metadata_bytes + 64 * 1024,
        "{label}: {end_bytes} bytes allocated, of which only {metadata_bytes} are metadata"
    );
    // NOTE: sled keeps the log segments it has written while the store is
    // open and reuses them instead of shrinking, so the metadata does not
    // return to its empty size. The deletes' own records grew it by up to
    // 1.3 MiB in runs with sled 0.34.7, hence the 2 MiB margin.
    assert!(
        end_bytes <= full_bytes - full_pack_bytes + (2 << 20),
        "{label}: {end_bytes} bytes allocated after the deletes, {full_bytes} before them, \
         of which {full_pack_bytes} were pack bytes that should all be free"
    );
}

#[test]
fn ext4_snapshot_chain() {
    let tools = Tools::find();
    let work = tempfile::tempdir().unwrap();
    let versions = build_versions(&tools, work.path());

    let orders = [
        ("base first", [0, 1, 2, 3]),
        ("newest first", [3, 2, 1, 0]),
        ("middle first", [1, 2, 0, 3]),
    ];
    for block_size in [4096, 65536] {
        for (label, order) in orders {
            check_chain(work.path(), &versions, block_size, order, label);
        }
    }
}

/// A restored image is a file system that `e2fsck` finds clean, which proves
/// the restore at the level a user cares about.
#[test]
fn ext4_restored_image_fscks_clean() {
    let tools = Tools::find();
    let work = tempfile::tempdir().unwrap();
    let versions = build_versions(&tools, work.path());
    let store_dir = work.path().join("store");
    let store = Store::open_with(
        &store_dir,
        StoreOptions {
            block_size: Some(4096),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    for (n, image) in versions.iter().enumerate() {
        store
            .create_disk_snapshot("ext4-disk", &format!("ext4-v{}", n + 1), &image[..], &[])
            .unwrap();
    }
    store.delete_disk_snapshot("ext4-v1").unwrap();
    store.delete_disk_snapshot("ext4-v3").unwrap();

    let restored = work.path().join("restored.img");
    store
        .create_disk_from_snapshot_to_file("ext4-v4", "ext4-restored", &restored, None)
        .unwrap();

    assert_bytes_equal(
        &fs::read(&restored).unwrap(),
        &versions[3],
        "restored ext4-v4",
    );
    let output = run(Command::new(&tools.e2fsck).arg("-fn").arg(&restored));
    println!("{}", String::from_utf8_lossy(&output.stdout));
}

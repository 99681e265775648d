#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Runs the `blocksnap` binary: its main flows, where it finds the store, and
//! how it reports errors. On every error the exit status is non-zero, stdout is
//! empty, and one line of stderr names the Lightsail exception and the
//! offending value.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::sandbox::{
    assert_run_succeeded, create_args, path_text, pseudo_random_bytes, restore_args, Sandbox,
};
use serde_json::Value;

const BLOCK_SIZE: usize = 4096;

/// Exit status of `verify` when it finds a problem.
const EXIT_VERIFY_FAILED: i32 = 3;

impl Sandbox {
    /// Runs blocksnap, asserts that it succeeded, and returns stdout as JSON.
    fn run_ok(&self, args: &[&str]) -> Value {
        parse_success(args, &self.run(args))
    }

    /// Snapshots `image` of disk `disk` as `snapshot` through a file.
    fn create(&self, disk: &str, snapshot: &str, image: &[u8]) -> Value {
        let source = self.write(&format!("{snapshot}.img"), image);
        self.run_ok(&create_args(disk, snapshot, &source))
    }

    /// Restores `snapshot` into the file `name` and returns the restored bytes.
    fn restore(&self, snapshot: &str, name: &str) -> Vec<u8> {
        let target = self.path(name);
        self.run_ok(&restore_args(snapshot, "restored", &target));
        std::fs::read(&target).unwrap()
    }

    fn stats(&self) -> Value {
        self.run_ok(&["stats"])
    }

    /// Runs blocksnap with `input` written to its stdin through a pipe.
    /// Returns the result of that write with the output: blocksnap may exit
    /// before it reads everything, which closes the pipe.
    fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> (std::io::Result<()>, Output) {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let written = stdin.write_all(input);
        drop(stdin);
        (written, child.wait_with_output().unwrap())
    }
}

fn parse_success(args: &[&str], output: &Output) -> Value {
    assert_run_succeeded(args, output);
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Asserts that a run failed, printed nothing on stdout, and has a stderr line
/// that names both `exception` and `value`.
fn assert_error(output: &Output, exception: &str, value: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "blocksnap succeeded, expected {exception}\nstderr:\n{stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "stdout is not empty on {exception}:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        stderr
            .lines()
            .any(|line| line.contains(exception) && line.contains(value)),
        "no stderr line names {exception} and {value:?}\nstderr:\n{stderr}"
    );
}

/// Opens `/dev/full`, where every write fails with ENOSPC, to stand for a
/// stdout that cannot be written.
fn dev_full() -> std::fs::File {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap()
}

fn assert_not_listed(sandbox: &Sandbox, snapshot: &str) {
    let output = sandbox.run(&["get-disk-snapshot", "--disk-snapshot-name", snapshot]);
    assert_error(&output, "NotFoundException", snapshot);
}

#[test]
fn invalid_snapshot_names_rejected() {
    let sandbox = Sandbox::new();
    sandbox.create_empty_store();
    let source = sandbox.write("image", &pseudo_random_bytes(1, 10_000));
    let target = sandbox.path("restored");
    let long_name = "a".repeat(256);

    for name in ["-bad", "a", long_name.as_str()] {
        let calls: [Vec<&str>; 4] = [
            create_args("disk-1", name, &source),
            vec!["delete-disk-snapshot", "--disk-snapshot-name", name],
            vec!["get-disk-snapshot", "--disk-snapshot-name", name],
            restore_args(name, "disk-2", &target),
        ];
        for args in calls {
            let output = sandbox.run(&args);
            assert_error(&output, "InvalidInputException", name);
        }
    }

    let listed = sandbox.run_ok(&["get-disk-snapshots"]);
    assert_eq!(
        listed["diskSnapshots"].as_array().unwrap().len(),
        0,
        "{listed}"
    );
}

#[test]
fn unknown_snapshot_not_found() {
    let sandbox = Sandbox::new();
    sandbox.create("disk-1", "snap-1", &pseudo_random_bytes(2, 10_000));
    let target = sandbox.path("restored");

    let calls: [Vec<&str>; 3] = [
        vec![
            "delete-disk-snapshot",
            "--disk-snapshot-name",
            "snap-missing",
        ],
        vec!["get-disk-snapshot", "--disk-snapshot-name", "snap-missing"],
        restore_args("snap-missing", "disk-2", &target),
    ];
    for args in calls {
        let output = sandbox.run(&args);
        assert_error(&output, "NotFoundException", "snap-missing");
    }

    let output = sandbox.run(&[
        "get-operation",
        "--operation-id",
        "00000000-0000-4000-8000-000000000000",
    ]);
    assert_error(
        &output,
        "NotFoundException",
        "00000000-0000-4000-8000-000000000000",
    );

    let kept = sandbox.run_ok(&["get-disk-snapshot", "--disk-snapshot-name", "snap-1"]);
    assert_eq!(kept["diskSnapshot"]["name"], "snap-1");
}

#[test]
fn missing_store_not_created() {
    let sandbox = Sandbox::new();
    let store = path_text(&sandbox.store());
    let target = sandbox.path("restored");

    let calls: [Vec<&str>; 6] = [
        vec!["get-disk-snapshots"],
        vec!["stats"],
        vec!["verify"],
        vec!["delete-disk-snapshot", "--disk-snapshot-name", "snap-1"],
        restore_args("snap-1", "disk-2", &target),
        vec![
            "tag-resource",
            "--resource-name",
            "snap-1",
            "--tag",
            "team=storage",
        ],
    ];
    for args in calls {
        let output = sandbox.run(&args);
        assert_error(&output, "NotFoundException", &store);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("create-disk-snapshot"),
            "{args:?}: {stderr}"
        );
        assert!(!sandbox.store().exists(), "{args:?} created the store");
    }
    assert!(
        !Path::new(&target).exists(),
        "the restore created its target"
    );

    // A create still makes the store, and the same calls then find it.
    sandbox.create("disk-1", "snap-1", &pseudo_random_bytes(4, 10_000));
    let listed = sandbox.run_ok(&["get-disk-snapshots"]);
    assert_eq!(listed["diskSnapshots"][0]["name"], "snap-1");
}

#[test]
fn rejected_create_leaves_no_store() {
    let sandbox = Sandbox::new();
    let source = sandbox.write("image", &pseudo_random_bytes(9, 10_000));
    let list = sandbox.write("changed.txt", b"0");
    let missing = sandbox.path("missing.img");

    let mut bad_tag = create_args("disk-1", "snap-1", &source);
    bad_tag.extend(["--tag", "=value"]);
    let mut no_parent = create_args("disk-1", "snap-1", &source);
    no_parent.extend(["--changed-blocks", &list]);
    let directory = path_text(sandbox.dir.path());
    let empty = sandbox.write("empty.img", b"");
    let calls: [(Vec<&str>, &str, &str); 7] = [
        (
            create_args("d", "snap-1", &source),
            "InvalidInputException",
            "\"d\"",
        ),
        (
            create_args("disk-1", "-bad", &source),
            "InvalidInputException",
            "-bad",
        ),
        (
            create_args("disk-1", "snap-1", &missing),
            "InvalidInputException",
            &missing,
        ),
        (
            create_args("disk-1", "snap-1", &directory),
            "InvalidInputException",
            &directory,
        ),
        (
            create_args("disk-1", "snap-1", &empty),
            "InvalidInputException",
            &empty,
        ),
        (bad_tag, "InvalidInputException", "=value"),
        (no_parent, "NotFoundException", "disk-1"),
    ];
    for (args, exception, value) in calls {
        let output = sandbox.run(&args);
        assert_error(&output, exception, value);
        assert!(!sandbox.store().exists(), "{args:?} created the store");
    }
}

#[test]
fn restore_of_unknown_snapshot_keeps_target() {
    let sandbox = Sandbox::new();
    sandbox.create("disk-1", "snap-1", &pseudo_random_bytes(3, 10_000));
    let contents = b"bytes that a mistyped snapshot name must not destroy";
    let existing = sandbox.write("existing.img", contents);
    let absent = sandbox.path("absent.img");

    let output = sandbox.run(&restore_args("snap-mistyped", "disk-2", &existing));
    assert_error(&output, "NotFoundException", "snap-mistyped");
    assert_eq!(
        std::fs::read(&existing).unwrap(),
        contents,
        "the failed restore changed the target file"
    );

    let output = sandbox.run(&restore_args("-bad", "disk-2", &absent));
    assert_error(&output, "InvalidInputException", "-bad");
    assert!(
        !Path::new(&absent).exists(),
        "the rejected restore created its target file"
    );
}

#[test]
fn duplicate_snapshot_name_rejected() {
    let sandbox = Sandbox::new();
    sandbox.create("disk-1", "snap-1", &pseudo_random_bytes(4, 20_000));
    let source = sandbox.write("other.img", &pseudo_random_bytes(5, 30_000));

    let output = sandbox.run(&create_args("disk-2", "snap-1", &source));
    assert_error(&output, "InvalidInputException", "snap-1");

    let kept = sandbox.run_ok(&["get-disk-snapshot", "--disk-snapshot-name", "snap-1"]);
    assert_eq!(kept["diskSnapshot"]["fromDiskName"], "disk-1");
    assert_eq!(sandbox.stats()["logicalBytes"], 20_000);
}

#[test]
fn bad_sources_rejected() {
    let sandbox = Sandbox::new();
    sandbox.create_empty_store();
    let missing = sandbox.path("missing.img");
    let directory = sandbox.path("a-directory");
    std::fs::create_dir(&directory).unwrap();
    let empty = sandbox.write("empty.img", &[]);

    let create_from = |source: &str| sandbox.run(&create_args("disk-1", "snap-1", source));
    assert_error(&create_from(&missing), "InvalidInputException", &missing);
    assert_error(
        &create_from(&directory),
        "InvalidInputException",
        &directory,
    );
    // NOTE: the message for an empty source names the snapshot, not the file.
    assert_error(&create_from(&empty), "InvalidInputException", "snap-1");

    assert_not_listed(&sandbox, "snap-1");
    assert_eq!(sandbox.stats()["blocks"], 0);
}

#[test]
fn bad_block_size_rejected() {
    let sandbox = Sandbox::new();
    let output = sandbox.run_without_block_size(&["--block-size", "3000", "stats"]);
    assert_error(&output, "InvalidInputException", "3000");
    assert!(
        !sandbox.store().exists(),
        "a rejected block size still created the store"
    );
}

#[test]
fn reopen_with_other_block_size_rejected() {
    let sandbox = Sandbox::new();
    sandbox.create("disk-1", "snap-1", &pseudo_random_bytes(6, 10_000));

    let output = sandbox.run_without_block_size(&["--block-size", "8192", "stats"]);
    assert_error(&output, "InvalidInputException", "8192");

    let reopened = sandbox.run_without_block_size(&["stats"]);
    assert_eq!(parse_success(&["stats"], &reopened)["snapshots"], 1);
}

#[test]
fn unknown_region_rejected() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&["--region", "mars-north-1", "stats"]);
    assert_error(&output, "InvalidInputException", "mars-north-1");
}

#[test]
fn other_region_on_reopen_rejected() {
    let sandbox = Sandbox::new();
    let source = sandbox.write("image", &pseudo_random_bytes(8, 10_000));
    let mut create = vec!["--region", "us-east-1"];
    create.extend(create_args("disk-1", "snap-1", &source));
    sandbox.run_ok(&create);
    let output = sandbox.run(&["--region", "eu-west-1", "stats"]);
    assert_error(&output, "InvalidInputException", "eu-west-1");
}

#[test]
fn bad_page_tokens_rejected() {
    let sandbox = Sandbox::new();
    sandbox.create("disk-1", "snap-1", &pseudo_random_bytes(7, 10_000));

    let calls: [(&str, Vec<&str>); 4] = [
        ("-x", vec!["get-disk-snapshots", "--page-token=-x"]),
        (
            "not a name",
            vec!["get-disk-snapshots", "--page-token", "not a name"],
        ),
        ("abc", vec!["get-operations", "--page-token", "abc"]),
        (
            "-1",
            vec![
                "get-operations-for-resource",
                "--resource-name",
                "snap-1",
                "--page-token=-1",
            ],
        ),
    ];
    for (token, args) in calls {
        let output = sandbox.run(&args);
        assert_error(&output, "InvalidInputException", token);
    }
}

#[test]
fn bad_tags_rejected() {
    let sandbox = Sandbox::new();
    sandbox.create_empty_store();
    let source = sandbox.write("image", &pseudo_random_bytes(8, 10_000));
    let long_key = format!("{}=v", "k".repeat(129));

    for (tag, value) in [
        ("=v", "=v"),
        (long_key.as_str(), &long_key[..129]),
        ("aws:owner=me", "aws:owner"),
    ] {
        let output = sandbox.run(&[
            "create-disk-snapshot",
            "--disk-name",
            "disk-1",
            "--disk-snapshot-name",
            "snap-1",
            "--source",
            &source,
            "--tag",
            tag,
        ]);
        assert_error(&output, "InvalidInputException", value);
    }
    assert_not_listed(&sandbox, "snap-1");
}

#[test]
fn bad_policy_files_rejected() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path("missing-policy.json");
    let not_json = sandbox.write("not-json.json", b"{ \"Version\": ");
    let not_policy = sandbox.write("not-policy.json", b"[1, 2, 3]");

    for policy in [&missing, &not_json, &not_policy] {
        let output = sandbox.run(&["--policy", policy, "get-disk-snapshots"]);
        assert_error(&output, "InvalidInputException", policy);
    }
}

#[test]
fn error_messages_state_cause_once() {
    let sandbox = Sandbox::new();
    sandbox.create("disk-1", "snap-1", &pseudo_random_bytes(9, 10_000));
    let missing_source = sandbox.path("missing.img");
    let missing_policy = sandbox.path("missing-policy.json");
    let target = sandbox.path("no-such-directory/restored.img");

    let calls: [Vec<&str>; 3] = [
        create_args("disk-1", "snap-2", &missing_source),
        vec!["--policy", &missing_policy, "stats"],
        restore_args("snap-1", "disk-2", &target),
    ];
    for args in calls {
        let output = sandbox.run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.matches("os error 2").count(),
            1,
            "blocksnap {args:?} repeats its cause:\n{stderr}"
        );
    }
}

#[test]
fn restore_into_missing_directory_fails() {
    let sandbox = Sandbox::new();
    sandbox.create("disk-1", "snap-1", &pseudo_random_bytes(10, 10_000));
    let target = sandbox.path("no-such-directory/restored.img");

    let output = sandbox.run(&restore_args("snap-1", "disk-2", &target));
    assert_error(&output, "OperationFailureException", &target);
}

#[test]
fn verify_clean_store_succeeds() {
    let sandbox = Sandbox::new();
    sandbox.create("disk-1", "snap-1", &pseudo_random_bytes(11, 40_000));

    let output = sandbox.run(&["verify"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["snapshotsChecked"], 1);
    assert_eq!(report["blocksChecked"], 10);
    assert_eq!(report["corruptBlocks"], 0);
}

#[test]
fn verify_reports_corrupt_pack_byte() {
    let sandbox = Sandbox::new();
    let image = [0x5Au8; BLOCK_SIZE];
    sandbox.create("disk-1", "snap-1", &image);

    let pack = sandbox.store().join("packs/pack-00000001.dat");
    let mut bytes = std::fs::read(&pack).unwrap();
    assert_eq!(
        bytes.len(),
        BLOCK_SIZE,
        "the pack should hold the one block"
    );
    assert_eq!(bytes[0], 0x5A, "the block should start at offset 0");
    bytes[0] ^= 0xFF;
    std::fs::write(&pack, &bytes).unwrap();

    // Damage keeps its exit status when the report cannot be printed.
    let full = dev_full();
    let unprinted = sandbox.command(&["verify"]).stdout(full).output().unwrap();
    assert_eq!(unprinted.status.code(), Some(EXIT_VERIFY_FAILED));
    let stderr = String::from_utf8_lossy(&unprinted.stderr);
    assert!(
        stderr.contains("found the problems listed above"),
        "{stderr}"
    );

    let output = sandbox.run(&["verify"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(EXIT_VERIFY_FAILED),
        "stderr:\n{stderr}"
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["snapshotsChecked"], 1, "{report}");
    assert_eq!(report["blocksChecked"], 1, "{report}");
    assert_eq!(report["corruptBlocks"], 1, "{report}");
    assert_eq!(report["missingBlocks"], 0, "{report}");
    assert_eq!(report["leakedBlocks"], 0, "{report}");
    assert_eq!(report["refcountMismatches"], 0, "{report}");
    assert!(
        stderr
            .lines()
            .any(|line| line.contains("verify") && line.contains("pack 1 at offset 0")),
        "stderr does not locate the damaged block:\n{stderr}"
    );

    // A restore checks every block, so it fails rather than write damaged bytes.
    let target = sandbox.path("restored.img");
    let output = sandbox.run(&restore_args("snap-1", "disk-2", &target));
    assert_error(&output, "ServiceException", "snap-1");
    let operations = sandbox.run_ok(&["get-operations-for-resource", "--resource-name", "disk-2"]);
    let operation = &operations["operations"][0];
    assert_eq!(operation["status"], "Failed", "{operation}");
    assert_eq!(operation["errorCode"], "DataCorruption", "{operation}");
}

#[test]
fn snapshot_delete_restore_flow() {
    let sandbox = Sandbox::new();
    // Version 1: 96 random blocks with 4 zero blocks at 90..94.
    let mut version_1 = pseudo_random_bytes(12, 100 * BLOCK_SIZE);
    version_1[90 * BLOCK_SIZE..94 * BLOCK_SIZE].fill(0);
    // Version 2 rewrites blocks 0..60. Version 3 rewrites blocks 60..80 and grows by 1,000 bytes.
    let mut version_2 = version_1.clone();
    version_2[..60 * BLOCK_SIZE].copy_from_slice(&pseudo_random_bytes(13, 60 * BLOCK_SIZE));
    let mut version_3 = version_2.clone();
    version_3[60 * BLOCK_SIZE..80 * BLOCK_SIZE]
        .copy_from_slice(&pseudo_random_bytes(14, 20 * BLOCK_SIZE));
    version_3.extend(pseudo_random_bytes(15, 1000));

    sandbox.create("disk-1", "snap-1", &version_1);
    sandbox.create("disk-1", "snap-2", &version_2);
    sandbox.create("disk-1", "snap-3", &version_3);

    let before = sandbox.stats();
    assert_eq!(before["snapshots"], 3, "{before}");
    assert_eq!(before["blocks"], 96 + 60 + 20 + 1, "{before}");
    assert_eq!(
        before["logicalBytes"],
        version_1.len() + version_2.len() + version_3.len(),
        "{before}"
    );

    let deleted = sandbox.run_ok(&["delete-disk-snapshot", "--disk-snapshot-name", "snap-1"]);
    assert_eq!(deleted["operations"][0]["status"], "Succeeded", "{deleted}");

    let after = sandbox.stats();
    assert_eq!(after["snapshots"], 2, "{after}");
    assert_eq!(
        after["blocks"],
        96 + 20 + 1,
        "only the 60 blocks unique to snap-1 are freed: {after}"
    );
    assert_eq!(
        after["logicalBytes"],
        version_2.len() + version_3.len(),
        "{after}"
    );
    assert!(
        after["diskBytes"].as_u64().unwrap() < before["diskBytes"].as_u64().unwrap(),
        "diskBytes did not drop: before {before}, after {after}"
    );

    assert!(
        sandbox.restore("snap-2", "restored-2.img") == version_2,
        "snap-2 restored different bytes"
    );
    assert!(
        sandbox.restore("snap-3", "restored-3.img") == version_3,
        "snap-3 restored different bytes"
    );
    assert_not_listed(&sandbox, "snap-1");

    let report = sandbox.run_ok(&["verify"]);
    assert_eq!(report["snapshotsChecked"], 2, "{report}");
    assert_eq!(report["blocksChecked"], 96 + 20 + 1, "{report}");
}

#[test]
fn source_dash_reads_stdin() {
    let sandbox = Sandbox::new();
    let image = pseudo_random_bytes(16, 123_456);

    let args = [
        "create-disk-snapshot",
        "--disk-name",
        "disk-1",
        "--disk-snapshot-name",
        "snap-stdin",
        "--source",
        "-",
    ];
    let (written, output) = sandbox.run_with_stdin(&args, &image);
    written.unwrap();
    let created = parse_success(&args, &output);
    assert_eq!(created["operations"][0]["status"], "Succeeded", "{created}");

    let snapshot = sandbox.run_ok(&["get-disk-snapshot", "--disk-snapshot-name", "snap-stdin"]);
    assert_eq!(snapshot["diskSnapshot"]["fromDiskName"], "disk-1");
    assert_eq!(sandbox.stats()["logicalBytes"], image.len());
    assert!(
        sandbox.restore("snap-stdin", "restored.img") == image,
        "the restore differs from stdin"
    );
}

#[test]
fn changed_blocks_from_stdin() {
    let sandbox = Sandbox::new();
    let base = pseudo_random_bytes(17, 8 * BLOCK_SIZE);
    sandbox.create("disk-1", "base", &base);
    let mut next = base.clone();
    next[3 * BLOCK_SIZE..4 * BLOCK_SIZE].copy_from_slice(&pseudo_random_bytes(18, BLOCK_SIZE));
    let next_path = sandbox.write("next.img", &next);
    let list = sandbox.write("changed.txt", b"3\n");
    let args = |snapshot: &'static str| {
        vec![
            "create-disk-snapshot",
            "--disk-name",
            "disk-1",
            "--disk-snapshot-name",
            snapshot,
            "--source",
            "-",
            "--changed-blocks",
            list.as_str(),
        ]
    };

    // Redirected from a file, standard input can seek to the listed block.
    let from_file = args("next");
    let output = sandbox
        .command(&from_file)
        .stdin(std::fs::File::open(&next_path).unwrap())
        .output()
        .unwrap();
    let created = parse_success(&from_file, &output);
    assert_eq!(created["operations"][0]["status"], "Succeeded", "{created}");
    assert!(
        sandbox.restore("next", "next-restored.img") == next,
        "the restore differs from the redirected source"
    );

    // A pipe cannot seek, and the error names that reason.
    // The create fails before it reads anything, so the write may fail.
    let (_, output) = sandbox.run_with_stdin(&args("piped"), &next);
    assert_error(&output, "InvalidInputException", "cannot seek");
    let listed = sandbox.run_ok(&["get-disk-snapshots"]);
    assert_eq!(
        listed["diskSnapshots"].as_array().unwrap().len(),
        2,
        "{listed}"
    );
}

/// Creates snapshot `snapshot` of disk-1 from `source` with blocksnap run in
/// `working_dir` without `--store`. With `Some` store, `BLOCKSNAP_STORE` names
/// it. With `None` the variable is unset, so the default store is used.
fn create_without_store_option(
    working_dir: &Path,
    env_store: Option<&Path>,
    snapshot: &str,
    source: &str,
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_blocksnap"));
    command.current_dir(working_dir);
    match env_store {
        Some(store) => command.env("BLOCKSNAP_STORE", store),
        None => command.env_remove("BLOCKSNAP_STORE"),
    };
    command
        .args(["--block-size", "4096"])
        .args(create_args("disk-1", snapshot, source))
        .output()
        .unwrap()
}

#[test]
fn store_from_environment_variable() {
    let sandbox = Sandbox::new();
    let source = sandbox.write("image", &pseudo_random_bytes(17, 10_000));
    let env_store = sandbox.dir.path().join("env-store");
    let working_dir = sandbox.dir.path().join("cwd");
    std::fs::create_dir(&working_dir).unwrap();

    let output = create_without_store_option(&working_dir, Some(&env_store), "snap-env", &source);
    parse_success(&["create-disk-snapshot"], &output);
    assert!(
        env_store.join("packs").is_dir(),
        "no store at BLOCKSNAP_STORE"
    );
    assert!(
        !working_dir.join("blocksnap-store").exists(),
        "the default store was used despite BLOCKSNAP_STORE"
    );

    // --store takes precedence over the environment variable.
    let output = Command::new(env!("CARGO_BIN_EXE_blocksnap"))
        .env("BLOCKSNAP_STORE", sandbox.dir.path().join("unused"))
        .arg("--store")
        .arg(&env_store)
        .args(["get-disk-snapshot", "--disk-snapshot-name", "snap-env"])
        .output()
        .unwrap();
    assert_eq!(
        parse_success(&["get-disk-snapshot"], &output)["diskSnapshot"]["name"],
        "snap-env"
    );
    assert!(
        !sandbox.dir.path().join("unused").exists(),
        "BLOCKSNAP_STORE was used despite --store"
    );
}

#[test]
fn default_store_in_current_directory() {
    let sandbox = Sandbox::new();
    let source = sandbox.write("image", &pseudo_random_bytes(18, 10_000));
    let working_dir = sandbox.dir.path().join("cwd");
    std::fs::create_dir(&working_dir).unwrap();

    let output = create_without_store_option(&working_dir, None, "snap-default", &source);
    parse_success(&["create-disk-snapshot"], &output);

    let default_store = working_dir.join("blocksnap-store");
    assert!(
        default_store.join("packs").is_dir(),
        "no store at ./blocksnap-store"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_blocksnap"))
        .arg("--store")
        .arg(&default_store)
        .args(["get-disk-snapshot", "--disk-snapshot-name", "snap-default"])
        .output()
        .unwrap();
    assert_eq!(
        parse_success(&["get-disk-snapshot"], &output)["diskSnapshot"]["name"],
        "snap-default"
    );
}

#[test]
fn bare_command_prints_help() {
    let sandbox = Sandbox::new();
    for store_in_environment in [false, true] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_blocksnap"));
        command.env_remove("BLOCKSNAP_STORE");
        if store_in_environment {
            command.env("BLOCKSNAP_STORE", sandbox.store());
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let context = format!("BLOCKSNAP_STORE set: {store_in_environment}");
        assert_eq!(output.status.code(), Some(2), "{context}\n{stderr}");
        assert!(output.stdout.is_empty(), "{context}");
        assert!(stderr.contains("Usage: blocksnap"), "{context}\n{stderr}");
        assert!(stderr.contains("Commands:"), "{context}\n{stderr}");
        assert!(!stderr.contains("Exception"), "{context}\n{stderr}");
    }
    assert!(
        !sandbox.store().exists(),
        "printing the help must not create the store"
    );
}

#[test]
fn malformed_number_names_exception() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&[
        "create-disk-snapshot",
        "--disk-name",
        "disk-1",
        "--disk-snapshot-name",
        "snap-1",
        "--source",
        "/dev/null",
        "--block-size",
        "abc",
    ]);
    assert_error(&output, "InvalidInputException", "abc");
    assert_eq!(output.status.code(), Some(2), "usage errors exit 2");
    assert!(
        !sandbox.store().join("metadata").exists(),
        "a usage error must not create the store"
    );
}

#[test]
fn unprintable_result_names_committed_operation() {
    let sandbox = Sandbox::new();
    let source = sandbox.write("disk.img", &pseudo_random_bytes(3, 4 * BLOCK_SIZE));
    let full = dev_full();

    let output = sandbox
        .command(&create_args("disk-1", "snap-1", &source))
        .stdout(full)
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OperationFailureException"), "{stderr}");
    assert!(stderr.contains("is committed"), "{stderr}");
    let marker = "CreateDiskSnapshot of snap-1 (operation ";
    let start = stderr.find(marker).expect("the operation is named") + marker.len();
    let id = &stderr[start..start + stderr[start..].find(')').unwrap()];
    let operation = sandbox.run_ok(&["get-operation", "--operation-id", id]);
    assert_eq!(operation["operation"]["status"], "Succeeded");
    sandbox.run_ok(&["get-disk-snapshot", "--disk-snapshot-name", "snap-1"]);
}

#[test]
fn snapshot_block_target_in_store_rejected() {
    let sandbox = Sandbox::new();
    sandbox.create("disk-1", "snap-1", &pseudo_random_bytes(5, 4 * BLOCK_SIZE));
    let pack = sandbox.store().join("packs/pack-00000001.dat");
    let length = std::fs::metadata(&pack).unwrap().len();

    let output = sandbox.run(&[
        "get-snapshot-block",
        "--disk-snapshot-name",
        "snap-1",
        "--block-index",
        "0",
        "--target",
        &common::sandbox::path_text(&pack),
    ]);

    assert_error(&output, "InvalidInputException", "pack-00000001.dat");
    assert_eq!(std::fs::metadata(&pack).unwrap().len(), length);
}

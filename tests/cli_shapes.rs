#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Runs the `blocksnap` binary and checks that the JSON of every command fits
//! the botocore Lightsail shape it names, with no unknown member, and that the
//! values in it are the ones the command should report.
//!
//! Needs python3 with botocore (`pip install botocore`). Without them these
//! tests fail.

mod common;
mod lightsail;

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use blocksnap::{Store, StoreOptions};
use common::sandbox::{
    assert_run_succeeded, create_args, pseudo_random_bytes, restore_args, Sandbox,
};
use lightsail::assert_valid_shape;
use serde_json::{json, Value};

const BLOCK_SIZE: usize = 4096;

/// Largest accepted distance between a timestamp and the test's clock, in seconds.
const CLOCK_TOLERANCE_SECONDS: f64 = 120.0;

impl Sandbox {
    /// Runs blocksnap, asserts that it succeeded, and returns stdout as text.
    fn run_ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_run_succeeded(args, &output);
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs a command, checks its stdout against `shape` and returns the parsed JSON.
    fn run_shape(&self, shape: &str, args: &[&str]) -> Value {
        let stdout = self.run_ok(args);
        assert_valid_shape(shape, &stdout);
        serde_json::from_str(&stdout).unwrap()
    }

    /// Snapshots `image` of disk `disk` as `snapshot` and returns the output.
    fn create(&self, disk: &str, snapshot: &str, image: &[u8], tags: &[&str]) -> Value {
        let source = self.write(&format!("{snapshot}.img"), image);
        let mut args = create_args(disk, snapshot, &source);
        for tag in tags {
            args.extend(["--tag", tag]);
        }
        self.run_shape("CreateDiskSnapshotResult", &args)
    }
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Asserts that `value` is epoch seconds written with a decimal point and close to now.
fn assert_recent_timestamp(field: &str, value: &Value) {
    assert!(
        value.is_f64(),
        "{field} is {value}, expected epoch seconds with a fractional part"
    );
    let seconds = value.as_f64().unwrap();
    let distance = (seconds - now_seconds()).abs();
    assert!(
        distance < CLOCK_TOLERANCE_SECONDS,
        "{field} is {seconds}, {distance} s away from the current time"
    );
}

/// Asserts that `text` is a lowercase hyphenated UUID (8-4-4-4-12 hex digits).
fn assert_uuid(field: &str, text: &str) {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|group| group.len()).collect();
    assert_eq!(lengths, [8, 4, 4, 4, 12], "{field} {text:?} is not a UUID");
    assert!(
        text.chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{field} {text:?} is not a lowercase UUID"
    );
}

/// Asserts that `arn` is `arn:aws:lightsail:us-east-1:<12 digits>:<kind>/<uuid>`
/// and returns its account id.
fn assert_arn(arn: &str, kind: &str) -> String {
    let parts: Vec<&str> = arn.split(':').collect();
    assert_eq!(parts.len(), 6, "ARN {arn:?} does not have six fields");
    assert_eq!(
        parts[..4],
        ["arn", "aws", "lightsail", "us-east-1"],
        "ARN {arn:?}"
    );
    let account = parts[4];
    assert_eq!(account.len(), 12, "account id in ARN {arn:?}");
    assert!(
        account.chars().all(|c| c.is_ascii_digit()),
        "account id in ARN {arn:?}"
    );
    let (resource_type, id) = parts[5].split_once('/').unwrap();
    assert_eq!(resource_type, kind, "resource type in ARN {arn:?}");
    assert_uuid("resource id in ARN", id);
    account.to_owned()
}

/// Asserts that `operation` succeeded, is terminal and has the given type and resource.
fn assert_succeeded(
    operation: &Value,
    operation_type: &str,
    resource_type: &str,
    resource_name: &str,
) {
    assert_eq!(operation["status"], "Succeeded", "{operation}");
    assert_eq!(operation["isTerminal"], true, "{operation}");
    assert_eq!(operation["operationType"], operation_type, "{operation}");
    assert_eq!(operation["resourceType"], resource_type, "{operation}");
    assert_eq!(operation["resourceName"], resource_name, "{operation}");
    assert_eq!(
        operation["location"]["regionName"], "us-east-1",
        "{operation}"
    );
    assert!(operation.get("errorCode").is_none(), "{operation}");
    assert!(operation.get("errorDetails").is_none(), "{operation}");
    assert_uuid("operation id", operation["id"].as_str().unwrap());
    assert_recent_timestamp("createdAt", &operation["createdAt"]);
    assert_recent_timestamp("statusChangedAt", &operation["statusChangedAt"]);
    assert!(
        operation["statusChangedAt"].as_f64() >= operation["createdAt"].as_f64(),
        "status changed before the operation was created: {operation}"
    );
}

fn operations(output: &Value) -> &Vec<Value> {
    output["operations"].as_array().unwrap()
}

fn operation_ids(output: &Value) -> Vec<String> {
    operations(output)
        .iter()
        .map(|operation| operation["id"].as_str().unwrap().to_owned())
        .collect()
}

fn sorted_tags(tags: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| {
            (
                tag["key"].as_str().unwrap().to_owned(),
                tag["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

fn key_set(object: &Value) -> BTreeSet<&str> {
    object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn create_snapshot_fits_shape() {
    let sandbox = Sandbox::new();
    let output = sandbox.create("disk-1", "snap-1", &pseudo_random_bytes(1, 300_000), &[]);

    let operations = operations(&output);
    assert_eq!(operations.len(), 2, "{output}");
    assert_succeeded(
        &operations[0],
        "CreateDiskSnapshot",
        "DiskSnapshot",
        "snap-1",
    );
    assert_eq!(operations[0]["operationDetails"], "disk-1");
    assert_succeeded(&operations[1], "CreateDiskSnapshot", "Disk", "disk-1");
    assert_eq!(operations[1]["operationDetails"], "snap-1");

    let fractional = operations
        .iter()
        .flat_map(|operation| [&operation["createdAt"], &operation["statusChangedAt"]])
        .any(|timestamp| timestamp.as_f64().unwrap().fract() != 0.0);
    assert!(fractional, "every timestamp is a whole second: {output}");
}

#[test]
fn create_snapshot_with_tags_fits_shape() {
    let sandbox = Sandbox::new();
    let image = pseudo_random_bytes(2, 200_000);
    let output = sandbox.create(
        "disk-1",
        "snap-1",
        &image,
        &["env=dev", "team=storage ops", "empty"],
    );
    assert_eq!(operations(&output).len(), 2, "{output}");
    assert_succeeded(
        &operations(&output)[0],
        "CreateDiskSnapshot",
        "DiskSnapshot",
        "snap-1",
    );

    let snapshot = sandbox.run_shape(
        "GetDiskSnapshotResult",
        &["get-disk-snapshot", "--disk-snapshot-name", "snap-1"],
    );
    let expected = vec![
        ("empty".to_owned(), String::new()),
        ("env".to_owned(), "dev".to_owned()),
        ("team".to_owned(), "storage ops".to_owned()),
    ];
    assert_eq!(sorted_tags(&snapshot["diskSnapshot"]["tags"]), expected);

    let listed = sandbox.run_shape("GetDiskSnapshotsResult", &["get-disk-snapshots"]);
    assert_eq!(sorted_tags(&listed["diskSnapshots"][0]["tags"]), expected);
}

#[test]
fn get_disk_snapshot_fits_shape() {
    let sandbox = Sandbox::new();
    let before = now_seconds();
    sandbox.create("disk-1", "snap-1", &pseudo_random_bytes(3, 300_000), &[]);
    sandbox.create("disk-2", "snap-2", &pseudo_random_bytes(4, 5_000), &[]);

    let output = sandbox.run_shape(
        "GetDiskSnapshotResult",
        &["get-disk-snapshot", "--disk-snapshot-name", "snap-1"],
    );
    let snapshot = &output["diskSnapshot"];
    assert_eq!(snapshot["name"], "snap-1");
    assert_eq!(snapshot["resourceType"], "DiskSnapshot");
    assert_eq!(snapshot["state"], "completed");
    assert_eq!(snapshot["progress"], "100%");
    assert_eq!(snapshot["sizeInGb"], 1);
    assert_eq!(snapshot["fromDiskName"], "disk-1");
    assert_eq!(snapshot["isFromAutoSnapshot"], false);
    assert_eq!(snapshot["tags"], json!([]));
    assert_eq!(snapshot["location"]["regionName"], "us-east-1");
    assert_recent_timestamp("createdAt", &snapshot["createdAt"]);
    assert!(
        snapshot["createdAt"].as_f64().unwrap() >= before - 1.0,
        "{snapshot}"
    );

    let account = assert_arn(snapshot["arn"].as_str().unwrap(), "DiskSnapshot");
    let disk_account = assert_arn(snapshot["fromDiskArn"].as_str().unwrap(), "Disk");
    assert_eq!(disk_account, account);

    let other = sandbox.run_shape(
        "GetDiskSnapshotResult",
        &["get-disk-snapshot", "--disk-snapshot-name", "snap-2"],
    );
    let other = &other["diskSnapshot"];
    assert_eq!(other["fromDiskName"], "disk-2");
    assert_eq!(
        assert_arn(other["arn"].as_str().unwrap(), "DiskSnapshot"),
        account
    );
    assert_ne!(other["arn"], snapshot["arn"]);
    assert_ne!(other["fromDiskArn"], snapshot["fromDiskArn"]);
}

#[test]
fn delete_snapshot_fits_shape() {
    let sandbox = Sandbox::new();
    sandbox.create("disk-1", "snap-1", &pseudo_random_bytes(5, 100_000), &[]);

    let output = sandbox.run_shape(
        "DeleteDiskSnapshotResult",
        &["delete-disk-snapshot", "--disk-snapshot-name", "snap-1"],
    );
    assert_eq!(operations(&output).len(), 1, "{output}");
    let operation = &operations(&output)[0];
    assert_succeeded(operation, "DeleteDiskSnapshot", "DiskSnapshot", "snap-1");
    assert_eq!(operation["operationDetails"], "disk-1");

    let listed = sandbox.run_shape("GetDiskSnapshotsResult", &["get-disk-snapshots"]);
    assert_eq!(listed, json!({ "diskSnapshots": [] }));
}

#[test]
fn restore_fits_shape() {
    let sandbox = Sandbox::new();
    let image = pseudo_random_bytes(6, 250_000);
    sandbox.create("disk-1", "snap-1", &image, &[]);
    let target = sandbox.path("restored.img");

    let output = sandbox.run_shape(
        "CreateDiskFromSnapshotResult",
        &restore_args("snap-1", "disk-2", &target),
    );
    assert_eq!(operations(&output).len(), 1, "{output}");
    let operation = &operations(&output)[0];
    assert_succeeded(operation, "CreateDiskFromSnapshot", "Disk", "disk-2");
    assert_eq!(operation["operationDetails"], "snap-1");
    assert_eq!(std::fs::read(&target).unwrap(), image);
}

#[test]
fn get_operation_returns_create_record() {
    let sandbox = Sandbox::new();
    let created = sandbox.create(
        "disk-1",
        "snap-1",
        &pseudo_random_bytes(7, 50_000),
        &["env=dev"],
    );
    assert_eq!(operations(&created).len(), 2, "{created}");

    for operation in operations(&created) {
        let id = operation["id"].as_str().unwrap();
        let output = sandbox.run_shape(
            "GetOperationResult",
            &["get-operation", "--operation-id", id],
        );
        assert_eq!(&output["operation"], operation, "get-operation {id}");
    }
}

#[test]
fn get_operations_fits_shape() {
    let sandbox = Sandbox::new();
    sandbox.create_empty_store();
    let empty = sandbox.run_shape("GetOperationsResult", &["get-operations"]);
    assert_eq!(empty, json!({ "operations": [] }));

    let created = sandbox.create("disk-1", "snap-1", &pseudo_random_bytes(8, 60_000), &[]);
    let target = sandbox.path("restored.img");
    let restored = sandbox.run_shape(
        "CreateDiskFromSnapshotResult",
        &restore_args("snap-1", "disk-2", &target),
    );
    let deleted = sandbox.run_shape(
        "DeleteDiskSnapshotResult",
        &["delete-disk-snapshot", "--disk-snapshot-name", "snap-1"],
    );

    let output = sandbox.run_shape("GetOperationsResult", &["get-operations"]);
    assert!(output.get("nextPageToken").is_none(), "{output}");
    let mut expected = operation_ids(&created);
    expected.extend(operation_ids(&restored));
    expected.extend(operation_ids(&deleted));
    assert_eq!(
        operation_ids(&output),
        expected,
        "operations are not listed oldest first"
    );

    let types: Vec<&str> = operations(&output)
        .iter()
        .map(|operation| operation["operationType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "CreateDiskSnapshot",
            "CreateDiskSnapshot",
            "CreateDiskFromSnapshot",
            "DeleteDiskSnapshot"
        ]
    );
    for operation in operations(&output) {
        assert_eq!(operation["status"], "Succeeded", "{operation}");
        assert_eq!(operation["isTerminal"], true, "{operation}");
    }
}

#[test]
fn get_operations_for_resource_fits_shape() {
    let sandbox = Sandbox::new();
    let first = sandbox.create("disk-1", "snap-1", &pseudo_random_bytes(9, 40_000), &[]);
    let second = sandbox.create("disk-1", "snap-2", &pseudo_random_bytes(10, 40_000), &[]);
    sandbox.create("disk-9", "snap-9", &pseudo_random_bytes(11, 40_000), &[]);
    let deleted = sandbox.run_shape(
        "DeleteDiskSnapshotResult",
        &["delete-disk-snapshot", "--disk-snapshot-name", "snap-1"],
    );

    let snapshot = sandbox.run_shape(
        "GetOperationsForResourceResult",
        &["get-operations-for-resource", "--resource-name", "snap-1"],
    );
    assert!(snapshot.get("nextPageToken").is_none(), "{snapshot}");
    let expected = vec![
        operation_ids(&first)[0].clone(),
        operation_ids(&deleted)[0].clone(),
    ];
    assert_eq!(operation_ids(&snapshot), expected);
    assert_succeeded(
        &operations(&snapshot)[0],
        "CreateDiskSnapshot",
        "DiskSnapshot",
        "snap-1",
    );
    assert_succeeded(
        &operations(&snapshot)[1],
        "DeleteDiskSnapshot",
        "DiskSnapshot",
        "snap-1",
    );

    let disk = sandbox.run_shape(
        "GetOperationsForResourceResult",
        &["get-operations-for-resource", "--resource-name", "disk-1"],
    );
    let expected = vec![
        operation_ids(&first)[1].clone(),
        operation_ids(&second)[1].clone(),
    ];
    assert_eq!(operation_ids(&disk), expected);
    for operation in operations(&disk) {
        assert_succeeded(operation, "CreateDiskSnapshot", "Disk", "disk-1");
    }

    let unknown = sandbox.run_shape(
        "GetOperationsForResourceResult",
        &[
            "get-operations-for-resource",
            "--resource-name",
            "never-used",
        ],
    );
    assert_eq!(unknown, json!({ "operations": [] }));
}

#[test]
fn listings_page_through_every_item() {
    const SNAPSHOTS: usize = 201;
    let sandbox = Sandbox::new();

    // The library fills the store because one run of the debug binary takes
    // about 0.15 s (measured on a 2-core machine), so 201 runs would take half
    // a minute. The store is closed before the binary opens it.
    {
        let options = StoreOptions {
            block_size: Some(4096),
            ..StoreOptions::default()
        };
        let store = Store::open_with(sandbox.store(), options).unwrap();
        let image = pseudo_random_bytes(12, BLOCK_SIZE);
        for index in 0..SNAPSHOTS {
            store
                .create_disk_snapshot("disk-1", &format!("snap-{index:03}"), &image[..], &[])
                .unwrap();
        }
    }

    let mut names = Vec::new();
    let mut page_sizes = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut args = vec!["get-disk-snapshots"];
        if let Some(token) = &token {
            args.extend(["--page-token", token]);
        }
        let page = sandbox.run_shape("GetDiskSnapshotsResult", &args);
        let snapshots = page["diskSnapshots"].as_array().unwrap();
        page_sizes.push(snapshots.len());
        names.extend(
            snapshots
                .iter()
                .map(|snapshot| snapshot["name"].as_str().unwrap().to_owned()),
        );
        match page.get("nextPageToken") {
            Some(next) => token = Some(next.as_str().unwrap().to_owned()),
            None => break,
        }
        assert!(page_sizes.len() <= SNAPSHOTS, "paging does not end");
    }
    assert_eq!(page_sizes, [100, 100, 1]);
    let expected: Vec<String> = (0..SNAPSHOTS)
        .map(|index| format!("snap-{index:03}"))
        .collect();
    assert_eq!(
        names, expected,
        "snapshots are not each listed once in name order"
    );

    // Each create records two operations, so there are 402: pages of 200, 200 and 2.
    let mut ids = Vec::new();
    let mut page_sizes = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut args = vec!["get-operations"];
        if let Some(token) = &token {
            args.extend(["--page-token", token]);
        }
        let page = sandbox.run_shape("GetOperationsResult", &args);
        page_sizes.push(operations(&page).len());
        ids.extend(operation_ids(&page));
        match page.get("nextPageToken") {
            Some(next) => token = Some(next.as_str().unwrap().to_owned()),
            None => break,
        }
        assert!(page_sizes.len() <= 2 * SNAPSHOTS, "paging does not end");
    }
    assert_eq!(page_sizes, [200, 200, 2]);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 2 * SNAPSHOTS, "an operation is listed twice");

    // The disk has one operation per create: pages of 200 and 1.
    let first = sandbox.run_shape(
        "GetOperationsForResourceResult",
        &["get-operations-for-resource", "--resource-name", "disk-1"],
    );
    let token = first["nextPageToken"].as_str().unwrap();
    let second = sandbox.run_shape(
        "GetOperationsForResourceResult",
        &[
            "get-operations-for-resource",
            "--resource-name",
            "disk-1",
            "--page-token",
            token,
        ],
    );
    assert_eq!(operations(&first).len(), 200);
    assert_eq!(operations(&second).len(), 1);
    assert!(second.get("nextPageToken").is_none(), "{second}");
    let mut disk_ids = operation_ids(&first);
    disk_ids.extend(operation_ids(&second));
    let unique: BTreeSet<&String> = disk_ids.iter().collect();
    assert_eq!(
        unique.len(),
        SNAPSHOTS,
        "an operation of disk-1 is listed twice"
    );
}

#[test]
fn failed_operation_fits_shape() {
    let sandbox = Sandbox::new();
    sandbox.create("disk-1", "snap-1", &[0x5A; BLOCK_SIZE], &[]);

    // Damage the only stored block so that the restore fails its hash check.
    let pack = sandbox.store().join("packs/pack-00000001.dat");
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[0] ^= 0xFF;
    std::fs::write(&pack, &bytes).unwrap();
    let target = sandbox.path("restored.img");
    let output = sandbox.run(&restore_args("snap-1", "disk-2", &target));
    assert!(
        !output.status.success(),
        "the restore of a damaged block succeeded"
    );

    let listed = sandbox.run_shape(
        "GetOperationsForResourceResult",
        &["get-operations-for-resource", "--resource-name", "disk-2"],
    );
    assert_eq!(operations(&listed).len(), 1, "{listed}");
    let operation = &operations(&listed)[0];
    assert_eq!(operation["status"], "Failed", "{operation}");
    assert_eq!(operation["isTerminal"], true, "{operation}");
    assert_eq!(
        operation["operationType"], "CreateDiskFromSnapshot",
        "{operation}"
    );
    assert_eq!(operation["errorCode"], "DataCorruption", "{operation}");
    let details = operation["errorDetails"].as_str().unwrap();
    assert!(
        details.contains("snap-1"),
        "errorDetails does not name the snapshot: {details}"
    );

    let id = operation["id"].as_str().unwrap();
    let fetched = sandbox.run_shape(
        "GetOperationResult",
        &["get-operation", "--operation-id", id],
    );
    assert_eq!(&fetched["operation"], operation);
    sandbox.run_shape("GetOperationsResult", &["get-operations"]);
}

#[test]
fn verify_report_keys_and_values() {
    let sandbox = Sandbox::new();
    // Two disks with the same 12 distinct blocks, so the second snapshot stores no block of its own.
    let image = pseudo_random_bytes(13, 12 * BLOCK_SIZE);
    sandbox.create("disk-1", "snap-1", &image, &[]);
    sandbox.create("disk-2", "snap-2", &image, &[]);

    let stdout = sandbox.run_ok(&["verify"]);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let expected_keys = BTreeSet::from([
        "snapshotsChecked",
        "blocksChecked",
        "missingBlocks",
        "corruptBlocks",
        "leakedBlocks",
        "refcountMismatches",
    ]);
    assert_eq!(key_set(&report), expected_keys);
    assert_eq!(
        report,
        json!({
            "snapshotsChecked": 2,
            "blocksChecked": 12,
            "missingBlocks": 0,
            "corruptBlocks": 0,
            "leakedBlocks": 0,
            "refcountMismatches": 0,
        })
    );
}

#[test]
fn stats_keys_and_values() {
    let sandbox = Sandbox::new();
    sandbox.create_empty_store();
    let empty: Value = serde_json::from_str(&sandbox.run_ok(&["stats"])).unwrap();
    let expected_keys = BTreeSet::from([
        "snapshots",
        "pages",
        "blocks",
        "storedBytes",
        "diskBytes",
        "logicalBytes",
    ]);
    assert_eq!(key_set(&empty), expected_keys);
    assert_eq!(empty["snapshots"], 0);
    assert_eq!(empty["blocks"], 0);
    assert_eq!(empty["logicalBytes"], 0);

    // Image A: 24 distinct blocks, one zero block (not stored), a copy of
    // block 0 (stored once) and a 1,000-byte tail (stored as one padded block).
    let random = pseudo_random_bytes(14, 24 * BLOCK_SIZE + 1000);
    let (blocks, tail) = random.split_at(24 * BLOCK_SIZE);
    let mut image_a = blocks.to_vec();
    image_a.extend(vec![0u8; BLOCK_SIZE]);
    image_a.extend_from_slice(&blocks[..BLOCK_SIZE]);
    image_a.extend_from_slice(tail);
    // Image B: 10 blocks that share nothing with A.
    let image_b = pseudo_random_bytes(15, 10 * BLOCK_SIZE);

    sandbox.create("disk-1", "snap-a1", &image_a, &[]);
    sandbox.create("disk-1", "snap-a2", &image_a, &[]);
    sandbox.create("disk-2", "snap-b", &image_b, &[]);

    let stats: Value = serde_json::from_str(&sandbox.run_ok(&["stats"])).unwrap();
    assert_eq!(key_set(&stats), expected_keys);
    let stored_blocks = 25 + 10;
    let logical = 2 * image_a.len() + image_b.len();
    assert_eq!(stats["snapshots"], 3, "{stats}");
    assert_eq!(
        stats["pages"], 2,
        "identical images share one page: {stats}"
    );
    assert_eq!(stats["blocks"], stored_blocks, "{stats}");
    assert_eq!(stats["storedBytes"], stored_blocks * BLOCK_SIZE, "{stats}");
    assert_eq!(stats["logicalBytes"], logical, "{stats}");
    let disk_bytes = stats["diskBytes"].as_u64().unwrap();
    assert!(
        disk_bytes >= stats["storedBytes"].as_u64().unwrap(),
        "packs alone hold the stored bytes: {stats}"
    );
    assert_eq!(
        disk_bytes % 512,
        0,
        "allocated bytes come in 512-byte units: {stats}"
    );
}

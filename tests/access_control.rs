//! Tag-based access control end to end: policies decide create, get, restore,
//! tag, untag and, above all, delete, by the snapshot's tags.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::process::Command;

use blocksnap::access::Policy;
use blocksnap::model::{OperationType, Tag};
use blocksnap::{ErrorKind, Store};
use common::{open_store, BLOCK};

fn tag(key: &str, value: &str) -> Tag {
    Tag {
        key: key.into(),
        value: Some(value.into()),
    }
}

fn image(seed: u8) -> Vec<u8> {
    (0..4 * BLOCK)
        .map(|i| {
            u8::try_from(i % 251)
                .unwrap()
                .wrapping_mul(31)
                .wrapping_add(seed)
        })
        .collect()
}

fn restore(store: &Store, name: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    store
        .create_disk_from_snapshot(name, "restored", &mut bytes)
        .unwrap();
    bytes
}

fn operation_count(store: &Store) -> usize {
    store.get_operations(None).unwrap().items.len()
}

const DENY_PROD_DELETE: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Everything", "Effect": "Allow", "Action": "lightsail:*", "Resource": "*"},
    {"Sid": "KeepProd", "Effect": "Deny", "Action": "lightsail:DeleteDiskSnapshot", "Resource": "*",
     "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}}}
  ]
}"#;

const ALLOW_ALICE_ONLY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Reads", "Effect": "Allow", "Action": ["lightsail:Get*", "lightsail:CreateDiskSnapshot"], "Resource": "*"},
    {"Sid": "AliceDeletes", "Effect": "Allow", "Action": "lightsail:DeleteDiskSnapshot", "Resource": "*",
     "Condition": {"StringEquals": {"aws:ResourceTag/owner": "alice"}}}
  ]
}"#;

#[test]
fn deny_on_prod_tag_keeps_snapshot_exact() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    store
        .create_disk_snapshot("disk", "prod-snap", &image(1)[..], &[tag("env", "prod")])
        .unwrap();
    store
        .create_disk_snapshot("disk", "dev-snap", &image(2)[..], &[tag("env", "dev")])
        .unwrap();
    store.set_policy(Some(Policy::from_json(DENY_PROD_DELETE).unwrap()));
    let operations_before = operation_count(&store);
    let stats_before = store.stats().unwrap();

    let error = store.delete_disk_snapshot("prod-snap").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AccessDenied);
    assert!(
        error.message().contains("lightsail:DeleteDiskSnapshot"),
        "{error}"
    );
    assert!(error.message().contains("KeepProd"), "{error}");
    assert!(error.message().contains("DiskSnapshot/"), "{error}");
    assert_eq!(
        operation_count(&store),
        operations_before,
        "a denied delete records no operation"
    );
    assert_eq!(store.stats().unwrap().blocks, stats_before.blocks);
    assert_eq!(restore(&store, "prod-snap"), image(1));

    store.delete_disk_snapshot("dev-snap").unwrap();
    assert_eq!(
        store.get_disk_snapshot("dev-snap").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn allow_only_alice_denies_bob() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    store
        .create_disk_snapshot("disk", "bobs", &image(3)[..], &[tag("owner", "bob")])
        .unwrap();
    store
        .create_disk_snapshot("disk", "alices", &image(4)[..], &[tag("owner", "alice")])
        .unwrap();
    store
        .create_disk_snapshot("disk", "nobodys", &image(5)[..], &[])
        .unwrap();
    store.set_policy(Some(Policy::from_json(ALLOW_ALICE_ONLY).unwrap()));

    let error = store.delete_disk_snapshot("bobs").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AccessDenied);
    assert!(
        error.message().contains("not allowed by any statement"),
        "{error}"
    );
    let untagged = store.delete_disk_snapshot("nobodys").unwrap_err();
    assert_eq!(
        untagged.kind(),
        ErrorKind::AccessDenied,
        "a missing tag does not satisfy StringEquals"
    );
    store.delete_disk_snapshot("alices").unwrap();
    let restore_error = store
        .create_disk_from_snapshot("bobs", "copy", &mut Vec::new())
        .unwrap_err();
    assert_eq!(
        restore_error.kind(),
        ErrorKind::AccessDenied,
        "the policy allows no restore"
    );

    store.set_policy(None);
    assert_eq!(restore(&store, "bobs"), image(3));
}

#[test]
fn retagging_changes_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    store
        .create_disk_snapshot("disk", "snap", &image(6)[..], &[tag("env", "prod")])
        .unwrap();
    store.set_policy(Some(Policy::from_json(DENY_PROD_DELETE).unwrap()));
    assert_eq!(
        store.delete_disk_snapshot("snap").unwrap_err().kind(),
        ErrorKind::AccessDenied
    );

    let untagged = store.untag_resource("snap", &["env".to_owned()]).unwrap();
    assert_eq!(untagged[0].operation_type, OperationType::UntagResource);
    assert!(store.get_disk_snapshot("snap").unwrap().tags.is_empty());
    store.tag_resource("snap", &[tag("env", "prod")]).unwrap();
    assert_eq!(
        store.delete_disk_snapshot("snap").unwrap_err().kind(),
        ErrorKind::AccessDenied
    );

    let retagged = store.tag_resource("snap", &[tag("env", "dev")]).unwrap();
    assert_eq!(retagged[0].operation_type, OperationType::TagResource);
    let tags = store.get_disk_snapshot("snap").unwrap().tags;
    assert_eq!(
        tags,
        vec![tag("env", "dev")],
        "tagging an existing key replaces its value"
    );
    store.delete_disk_snapshot("snap").unwrap();
}

#[test]
fn every_call_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    store
        .create_disk_snapshot("disk", "secret", &image(7)[..], &[tag("class", "secret")])
        .unwrap();
    let policy = r#"{
      "Version": "2012-10-17",
      "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "NoSecrets", "Effect": "Deny", "NotAction": "lightsail:GetOperation*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/class": "secret"}}},
        {"Sid": "NoProdCreates", "Effect": "Deny", "Action": ["lightsail:CreateDiskSnapshot", "lightsail:TagResource"],
         "Resource": "*", "Condition": {"StringEquals": {"aws:RequestTag/env": "prod"}}},
        {"Sid": "KeepClassTag", "Effect": "Deny", "Action": "lightsail:UntagResource", "Resource": "*",
         "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": "class"}}}
      ]
    }"#;
    store.set_policy(Some(Policy::from_json(policy).unwrap()));
    let operations_before = operation_count(&store);
    let denied = |result: blocksnap::Result<Vec<blocksnap::model::Operation>>| {
        assert_eq!(result.unwrap_err().kind(), ErrorKind::AccessDenied);
    };

    assert_eq!(
        store.get_disk_snapshot("secret").unwrap_err().kind(),
        ErrorKind::AccessDenied
    );
    assert!(
        store.get_disk_snapshots(None).unwrap().items.is_empty(),
        "denied snapshots are not listed"
    );
    denied(store.create_disk_from_snapshot("secret", "copy", &mut Vec::new()));
    denied(store.tag_resource("secret", &[tag("a", "b")]));
    denied(store.untag_resource("secret", &["class".to_owned()]));
    denied(store.delete_disk_snapshot("secret"));
    denied(store.create_disk_snapshot("disk", "new", &image(8)[..], &[tag("env", "prod")]));
    assert!(store.get_disk_snapshot("new").is_err());
    assert_eq!(
        operation_count(&store),
        operations_before,
        "denied calls record no operation"
    );

    store
        .create_disk_snapshot("disk", "new", &image(8)[..], &[tag("env", "dev")])
        .unwrap();
    denied(store.tag_resource("new", &[tag("env", "prod")]));
    denied(store.untag_resource("new", &["class".to_owned(), "env".to_owned()]));
    store.untag_resource("new", &["env".to_owned()]).unwrap();

    store.set_policy(None);
    assert_eq!(
        restore(&store, "secret"),
        image(7),
        "without a policy the owner may do everything"
    );
}

#[test]
fn cli_policy_option_denies_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let source = dir.path().join("image.bin");
    std::fs::write(&source, image(9)).unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, DENY_PROD_DELETE).unwrap();
    let blocksnap = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_blocksnap"))
            .arg("--store")
            .arg(&store_dir)
            .arg("--policy")
            .arg(&policy)
            .args(args)
            .output()
            .unwrap()
    };

    let created = blocksnap(&[
        "create-disk-snapshot",
        "--disk-name",
        "disk",
        "--disk-snapshot-name",
        "snap",
        "--source",
        source.to_str().unwrap(),
        "--tag",
        "env=prod",
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let deleted = blocksnap(&["delete-disk-snapshot", "--disk-snapshot-name", "snap"]);
    assert!(!deleted.status.success());
    assert!(deleted.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&deleted.stderr);
    assert!(stderr.contains("AccessDeniedException"), "{stderr}");

    let retagged = blocksnap(&[
        "tag-resource",
        "--resource-name",
        "snap",
        "--tag",
        "env=dev",
    ]);
    assert!(
        retagged.status.success(),
        "{}",
        String::from_utf8_lossy(&retagged.stderr)
    );
    let deleted = blocksnap(&["delete-disk-snapshot", "--disk-snapshot-name", "snap"]);
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
}

#[test]
fn invalid_policy_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}]}"#).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_blocksnap"))
        .arg("--store")
        .arg(dir.path().join("store"))
        .arg("--policy")
        .arg(&policy)
        .arg("stats")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("InvalidInputException"), "{stderr}");
    assert!(stderr.contains("Principal"), "{stderr}");
}

const DENY_PROD_RESTORE: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Everything", "Effect": "Allow", "Action": "lightsail:*", "Resource": "*"},
    {"Sid": "KeepProdData", "Effect": "Deny", "Action": "lightsail:CreateDiskFromSnapshot", "Resource": "*",
     "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}}}
  ]
}"#;

#[test]
fn restore_deny_covers_parent_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    store
        .create_disk_snapshot("disk-1", "prod-snap", &image(1)[..], &[tag("env", "prod")])
        .unwrap();
    store.set_policy(Some(Policy::from_json(DENY_PROD_RESTORE).unwrap()));
    let before = operation_count(&store);

    // A snapshot built on the prod one would hand its blocks to a restore.
    let error = store
        .create_disk_snapshot_incremental(
            "disk-1",
            "copy",
            "prod-snap",
            &[],
            std::io::Cursor::new(vec![0u8; 4 * BLOCK]),
            &[],
        )
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AccessDenied, "{error}");
    assert!(
        error.message().contains("lightsail:CreateDiskFromSnapshot"),
        "{error}"
    );
    assert_eq!(
        store.get_disk_snapshot("copy").unwrap_err().kind(),
        ErrorKind::NotFound
    );

    let error = store.read_block("prod-snap", 0).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AccessDenied, "{error}");

    // Which blocks changed is not the data: that stays readable.
    assert!(store
        .list_changed_blocks("prod-snap", "prod-snap")
        .unwrap()
        .is_empty());
    assert_eq!(operation_count(&store), before);
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Checks that the JSON of `blocksnap::model` types is valid for the matching
//! shapes of botocore's Lightsail model, and that the validator rejects JSON
//! that is not.
//!
//! Needs python3 with botocore (`pip install botocore`). Without them these
//! tests fail.

mod lightsail;

use blocksnap::model::{
    CreateDiskFromSnapshotResult, CreateDiskSnapshotResult, DeleteDiskSnapshotResult, DiskSnapshot,
    DiskSnapshotState, GetDiskSnapshotResult, GetDiskSnapshotsResult, GetOperationResult,
    GetOperationsForResourceResult, GetOperationsResult, Operation, OperationStatus, OperationType,
    RegionName, ResourceLocation, ResourceType, Tag, TagResourceResult, Timestamp,
    UntagResourceResult,
};
use lightsail::{
    assert_serializes_to_shape, assert_serializes_to_shape_allowing, run_validator,
    run_validator_allowing,
};
use serde_json::{json, Value};

const ACCOUNT: &str = "123456789012";

/// `--allow-enum-value` pairs for the `OperationType` values that Lightsail
/// returns but botocore's model does not list.
const OPERATION_TYPE_EXTENSIONS: [(&str, &str); 2] = [
    ("OperationType", "TagResource"),
    ("OperationType", "UntagResource"),
];

fn location(region: RegionName) -> ResourceLocation {
    ResourceLocation {
        availability_zone: Some(format!("{region}a")),
        region_name: Some(region),
    }
}

fn arn(resource_type: ResourceType, id: &str) -> String {
    format!("arn:aws:lightsail:us-east-2:{ACCOUNT}:{resource_type}/{id}")
}

/// Returns a finished operation on the snapshot `db-disk-snap-1`.
fn succeeded_operation(operation_type: OperationType) -> Operation {
    Operation {
        id: "2c0e0f1a-3b7d-4c55-9d8e-6f1a2b3c4d5e".to_owned(),
        resource_name: "db-disk-snap-1".to_owned(),
        resource_type: ResourceType::DiskSnapshot,
        created_at: Timestamp::from_unix_nanos(1_479_816_991_349_000_000),
        location: location(RegionName::UsEast2),
        is_terminal: true,
        operation_details: Some("db-disk".to_owned()),
        operation_type,
        status: OperationStatus::Succeeded,
        status_changed_at: Timestamp::from_unix_nanos(1_479_816_993_000_000_000),
        error_code: None,
        error_details: None,
    }
}

/// Returns a failed operation that carries an error code and details.
fn failed_operation(operation_type: OperationType) -> Operation {
    Operation {
        id: "7f3e9a60-1d2c-4b8e-a5f4-0c9d8e7f6a5b".to_owned(),
        status: OperationStatus::Failed,
        operation_details: None,
        error_code: Some("OperationFailureException".to_owned()),
        error_details: Some(
            "Block 17 of disk db-disk cannot be read: input/output error.".to_owned(),
        ),
        ..succeeded_operation(operation_type)
    }
}

/// Returns an unfinished operation with the current time and no location.
fn started_operation(operation_type: OperationType) -> Operation {
    Operation {
        id: "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e".to_owned(),
        created_at: Timestamp::now(),
        status_changed_at: Timestamp::now(),
        location: ResourceLocation::default(),
        is_terminal: false,
        status: OperationStatus::Started,
        ..succeeded_operation(operation_type)
    }
}

fn operations(operation_type: OperationType) -> Vec<Operation> {
    vec![
        succeeded_operation(operation_type),
        failed_operation(operation_type),
        started_operation(operation_type),
    ]
}

/// Returns a snapshot with every member set, including tags with and without a value.
fn tagged_snapshot() -> DiskSnapshot {
    DiskSnapshot {
        name: "db-disk-snap-1".to_owned(),
        arn: Some(arn(ResourceType::DiskSnapshot, "0d4c6a2e")),
        support_code: Some(format!("{ACCOUNT}/snap-0d4c6a2e")),
        created_at: Timestamp::from_unix_nanos(1_479_816_991_349_000_000),
        location: location(RegionName::UsEast2),
        resource_type: ResourceType::DiskSnapshot,
        tags: vec![
            Tag {
                key: "env".to_owned(),
                value: Some("prod".to_owned()),
            },
            Tag {
                key: "keep-forever".to_owned(),
                value: None,
            },
            Tag {
                key: "owner".to_owned(),
                value: Some(String::new()),
            },
        ],
        size_in_gb: 32,
        state: DiskSnapshotState::Completed,
        progress: Some("100%".to_owned()),
        from_disk_name: Some("db-disk".to_owned()),
        from_disk_arn: Some(arn(ResourceType::Disk, "9a1b7c3d")),
        from_instance_name: Some("db-1".to_owned()),
        from_instance_arn: Some(arn(ResourceType::Instance, "77ef01ab")),
        is_from_auto_snapshot: false,
    }
}

/// Returns a snapshot with only the plain (non-`Option`) members set and no tags.
fn bare_snapshot() -> DiskSnapshot {
    DiskSnapshot {
        name: "scratch_2".to_owned(),
        arn: None,
        support_code: None,
        created_at: Timestamp::now(),
        location: ResourceLocation::default(),
        resource_type: ResourceType::DiskSnapshot,
        tags: Vec::new(),
        size_in_gb: 1,
        state: DiskSnapshotState::Pending,
        progress: None,
        from_disk_name: None,
        from_disk_arn: None,
        from_instance_name: None,
        from_instance_arn: None,
        is_from_auto_snapshot: true,
    }
}

/// Serializes `value`, edits the JSON with `edit`, asserts that the validator
/// rejects the result, and returns the validator's stderr.
fn assert_edit_rejected<T: serde::Serialize>(
    shape: &str,
    value: &T,
    edit: impl FnOnce(&mut Value),
) -> String {
    let mut json = serde_json::to_value(value).unwrap();
    edit(&mut json);
    let text = json.to_string();

    let validation = run_validator(shape, &text);
    assert_eq!(
        validation.exit_code,
        Some(1),
        "validator accepted invalid {shape}: {text}"
    );
    assert!(
        validation.stdout.is_empty(),
        "stdout: {}",
        validation.stdout
    );
    validation.stderr
}

#[test]
fn create_disk_snapshot_result_is_valid() {
    let result = CreateDiskSnapshotResult {
        operations: operations(OperationType::CreateDiskSnapshot),
    };
    let json = assert_serializes_to_shape("CreateDiskSnapshotResult", &result);
    assert!(json.contains("\"errorCode\""));
}

#[test]
fn delete_disk_snapshot_result_is_valid() {
    let result = DeleteDiskSnapshotResult {
        operations: operations(OperationType::DeleteDiskSnapshot),
    };
    assert_serializes_to_shape("DeleteDiskSnapshotResult", &result);
}

#[test]
fn create_disk_from_snapshot_result_is_valid() {
    let operation = Operation {
        resource_name: "restored-disk".to_owned(),
        resource_type: ResourceType::Disk,
        operation_details: Some("db-disk-snap-1".to_owned()),
        ..succeeded_operation(OperationType::CreateDiskFromSnapshot)
    };
    let result = CreateDiskFromSnapshotResult {
        operations: vec![
            operation,
            failed_operation(OperationType::CreateDiskFromSnapshot),
        ],
    };
    assert_serializes_to_shape("CreateDiskFromSnapshotResult", &result);
}

#[test]
fn tag_and_untag_results_valid_when_allowed() {
    let tag = TagResourceResult {
        operations: operations(OperationType::TagResource),
    };
    let json = assert_serializes_to_shape_allowing(
        "TagResourceResult",
        &tag,
        &[("OperationType", "TagResource")],
    );
    assert!(
        json.contains("\"operationType\": \"TagResource\""),
        "{json}"
    );

    let untag = UntagResourceResult {
        operations: operations(OperationType::UntagResource),
    };
    let json = assert_serializes_to_shape_allowing(
        "UntagResourceResult",
        &untag,
        &[("OperationType", "UntagResource")],
    );
    assert!(
        json.contains("\"operationType\": \"UntagResource\""),
        "{json}"
    );
}

#[test]
fn tag_and_untag_results_rejected_without_allowance() {
    let tag = TagResourceResult {
        operations: vec![succeeded_operation(OperationType::TagResource)],
    };
    let stderr = assert_edit_rejected("TagResourceResult", &tag, |_| {});
    assert!(
        stderr.starts_with("TagResourceResult: 1 violation\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "$.operations[0].operationType: \"TagResource\" is not a valid OperationType"
        ),
        "{stderr}"
    );

    let untag = UntagResourceResult {
        operations: vec![succeeded_operation(OperationType::UntagResource)],
    };
    let stderr = assert_edit_rejected("UntagResourceResult", &untag, |_| {});
    assert!(
        stderr.contains(
            "$.operations[0].operationType: \"UntagResource\" is not a valid OperationType"
        ),
        "{stderr}"
    );
}

#[test]
fn enum_allowance_admits_only_its_value() {
    let untag = UntagResourceResult {
        operations: vec![succeeded_operation(OperationType::UntagResource)],
    };
    let json = serde_json::to_string(&untag).unwrap();

    // Allowing TagResource does not allow UntagResource.
    let other_value = run_validator_allowing(
        "UntagResourceResult",
        &json,
        &[("OperationType", "TagResource")],
    );
    assert_eq!(other_value.exit_code, Some(1), "{}", other_value.stderr);
    assert!(
        other_value
            .stderr
            .contains("\"UntagResource\" is not a valid OperationType"),
        "{}",
        other_value.stderr
    );

    // Allowing UntagResource for ResourceType does not allow it for OperationType.
    let other_shape = run_validator_allowing(
        "UntagResourceResult",
        &json,
        &[("ResourceType", "UntagResource")],
    );
    assert_eq!(other_shape.exit_code, Some(1), "{}", other_shape.stderr);
    assert!(
        other_shape
            .stderr
            .contains("\"UntagResource\" is not a valid OperationType"),
        "{}",
        other_shape.stderr
    );
}

#[test]
fn enum_allowance_still_rejects_invalid_value() {
    let untag = UntagResourceResult {
        operations: vec![succeeded_operation(OperationType::UntagResource)],
    };
    let mut json = serde_json::to_value(&untag).unwrap();
    json["operations"][0]["status"] = json!("UntagResource");

    let validation = run_validator_allowing(
        "UntagResourceResult",
        &json.to_string(),
        &[("OperationType", "UntagResource")],
    );
    assert_eq!(validation.exit_code, Some(1), "{}", validation.stderr);
    assert!(
        validation
            .stderr
            .starts_with("UntagResourceResult: 1 violation\n"),
        "{}",
        validation.stderr
    );
    assert!(
        validation
            .stderr
            .contains("$.operations[0].status: \"UntagResource\" is not a valid OperationStatus"),
        "{}",
        validation.stderr
    );
}

#[test]
#[should_panic(expected = "Operation is not an enum shape")]
fn enum_allowance_panics_on_non_enum_shape() {
    run_validator_allowing("TagResourceResult", "{}", &[("Operation", "TagResource")]);
}

#[test]
#[should_panic(expected = "the model already lists \"CreateDisk\" in OperationType")]
fn enum_allowance_panics_on_listed_value() {
    run_validator_allowing(
        "TagResourceResult",
        "{}",
        &[("OperationType", "CreateDisk")],
    );
}

#[test]
fn empty_operation_lists_are_valid() {
    let json = assert_serializes_to_shape(
        "CreateDiskSnapshotResult",
        &CreateDiskSnapshotResult::default(),
    );
    assert_eq!(
        serde_json::from_str::<Value>(&json).unwrap(),
        json!({"operations": []})
    );

    assert_serializes_to_shape(
        "DeleteDiskSnapshotResult",
        &DeleteDiskSnapshotResult::default(),
    );
    assert_serializes_to_shape(
        "CreateDiskFromSnapshotResult",
        &CreateDiskFromSnapshotResult::default(),
    );
    assert_serializes_to_shape("TagResourceResult", &TagResourceResult::default());
    assert_serializes_to_shape("UntagResourceResult", &UntagResourceResult::default());
    assert_serializes_to_shape("GetOperationsResult", &GetOperationsResult::default());
    assert_serializes_to_shape(
        "GetOperationsForResourceResult",
        &GetOperationsForResourceResult::default(),
    );
}

#[test]
fn get_disk_snapshot_result_is_valid() {
    let tagged = GetDiskSnapshotResult {
        disk_snapshot: tagged_snapshot(),
    };
    let json = assert_serializes_to_shape("GetDiskSnapshotResult", &tagged);
    assert!(json.contains("\"keep-forever\""));

    let bare = GetDiskSnapshotResult {
        disk_snapshot: bare_snapshot(),
    };
    assert_serializes_to_shape("GetDiskSnapshotResult", &bare);
}

#[test]
fn get_disk_snapshots_result_is_valid() {
    let first_page = GetDiskSnapshotsResult {
        disk_snapshots: vec![tagged_snapshot(), bare_snapshot()],
        next_page_token: Some("ZGItZGlzay1zbmFwLTI".to_owned()),
    };
    assert_serializes_to_shape("GetDiskSnapshotsResult", &first_page);

    let last_page = GetDiskSnapshotsResult {
        disk_snapshots: vec![bare_snapshot()],
        next_page_token: None,
    };
    assert_serializes_to_shape("GetDiskSnapshotsResult", &last_page);

    assert_serializes_to_shape("GetDiskSnapshotsResult", &GetDiskSnapshotsResult::default());
}

#[test]
fn get_operation_result_is_valid() {
    for operation in operations(OperationType::DeleteDiskSnapshot) {
        assert_serializes_to_shape("GetOperationResult", &GetOperationResult { operation });
    }
}

#[test]
fn get_operations_result_is_valid() {
    let first_page = GetOperationsResult {
        operations: operations(OperationType::CreateDiskSnapshot),
        next_page_token: Some("b3AtMw".to_owned()),
    };
    assert_serializes_to_shape("GetOperationsResult", &first_page);

    let last_page = GetOperationsResult {
        operations: vec![succeeded_operation(OperationType::DeleteDiskSnapshot)],
        next_page_token: None,
    };
    assert_serializes_to_shape("GetOperationsResult", &last_page);
}

#[test]
fn get_operations_for_resource_result_is_valid() {
    let page = GetOperationsForResourceResult {
        operations: operations(OperationType::CreateDiskSnapshot),
        next_page_count: None,
        next_page_token: Some("b3AtMw".to_owned()),
    };
    assert_serializes_to_shape("GetOperationsForResourceResult", &page);

    // botocore still lists the discontinued nextPageCount, typed as a string.
    let with_page_count = GetOperationsForResourceResult {
        next_page_count: Some("2".to_owned()),
        ..page
    };
    assert_serializes_to_shape("GetOperationsForResourceResult", &with_page_count);
}

#[test]
fn every_enum_value_is_valid() {
    // The extensions are not in botocore's model, so they are checked below
    // with an explicit allowance instead.
    let model_operation_types: Vec<OperationType> = OperationType::ALL
        .iter()
        .copied()
        .filter(|value| value.is_in_service_model())
        .collect();
    let extensions: Vec<OperationType> = OperationType::ALL
        .iter()
        .copied()
        .filter(|value| !value.is_in_service_model())
        .collect();
    assert_eq!(
        extensions,
        [OperationType::TagResource, OperationType::UntagResource]
    );

    // One operation per OperationType of the model, cycling through the other
    // enums so that every value of each appears at least once.
    let all_operations: Vec<Operation> = model_operation_types
        .iter()
        .enumerate()
        .map(|(index, &operation_type)| Operation {
            resource_type: ResourceType::ALL[index % ResourceType::ALL.len()],
            status: OperationStatus::ALL[index % OperationStatus::ALL.len()],
            location: location(RegionName::ALL[index % RegionName::ALL.len()]),
            ..succeeded_operation(operation_type)
        })
        .collect();
    assert!(all_operations.len() >= ResourceType::ALL.len());
    assert!(all_operations.len() >= RegionName::ALL.len());
    let page = GetOperationsResult {
        operations: all_operations,
        next_page_token: None,
    };
    assert_serializes_to_shape("GetOperationsResult", &page);

    let extension_page = GetOperationsResult {
        operations: extensions.into_iter().map(succeeded_operation).collect(),
        next_page_token: None,
    };
    assert_serializes_to_shape_allowing(
        "GetOperationsResult",
        &extension_page,
        &OPERATION_TYPE_EXTENSIONS,
    );

    let all_states: Vec<DiskSnapshot> = DiskSnapshotState::ALL
        .iter()
        .map(|&state| DiskSnapshot {
            state,
            ..tagged_snapshot()
        })
        .collect();
    let snapshots = GetDiskSnapshotsResult {
        disk_snapshots: all_states,
        next_page_token: None,
    };
    assert_serializes_to_shape("GetDiskSnapshotsResult", &snapshots);
}

#[test]
fn validator_rejects_unknown_member_and_bad_enum() {
    let result = GetOperationResult {
        operation: succeeded_operation(OperationType::CreateDiskSnapshot),
    };
    let stderr = assert_edit_rejected("GetOperationResult", &result, |json| {
        json["operation"]["snapshotId"] = json!("snap-1");
        json["operation"]["status"] = json!("Finished");
    });

    assert!(stderr.contains("2 violations"), "{stderr}");
    assert!(
        stderr.contains("$.operation.snapshotId: unknown member"),
        "{stderr}"
    );
    assert!(
        stderr.contains("$.operation.status: \"Finished\" is not a valid OperationStatus"),
        "{stderr}"
    );
}

#[test]
fn validator_rejects_wrong_json_types() {
    let result = GetDiskSnapshotResult {
        disk_snapshot: tagged_snapshot(),
    };
    let stderr = assert_edit_rejected("GetDiskSnapshotResult", &result, |json| {
        let snapshot = &mut json["diskSnapshot"];
        snapshot["sizeInGb"] = json!("32");
        snapshot["createdAt"] = json!("2016-11-22T12:16:31Z");
        snapshot["isFromAutoSnapshot"] = json!(0);
        snapshot["tags"][0]["value"] = Value::Null;
    });

    assert!(stderr.contains("4 violations"), "{stderr}");
    assert!(
        stderr.contains("$.diskSnapshot.sizeInGb: expected a whole number"),
        "{stderr}"
    );
    assert!(
        stderr.contains("$.diskSnapshot.createdAt: expected epoch seconds"),
        "{stderr}"
    );
    assert!(
        stderr.contains("$.diskSnapshot.isFromAutoSnapshot: expected true or false"),
        "{stderr}"
    );
    assert!(
        stderr.contains("$.diskSnapshot.tags[0].value: null is not a valid"),
        "{stderr}"
    );
}

#[test]
fn validator_rejects_integer_out_of_range() {
    let result = GetDiskSnapshotResult {
        disk_snapshot: bare_snapshot(),
    };
    let stderr = assert_edit_rejected("GetDiskSnapshotResult", &result, |json| {
        json["diskSnapshot"]["sizeInGb"] = json!(2_147_483_648_i64);
    });
    assert!(
        stderr.contains("$.diskSnapshot.sizeInGb: 2147483648 is outside the integer range"),
        "{stderr}"
    );
}

#[test]
fn validator_rejects_pattern_mismatch() {
    // ResourceName's pattern \w[\w\-]*\w needs two word characters, and
    // NonEmptyString's .*\S.* needs one that is not whitespace.
    let result = GetOperationResult {
        operation: succeeded_operation(OperationType::CreateDiskSnapshot),
    };
    let stderr = assert_edit_rejected("GetOperationResult", &result, |json| {
        json["operation"]["resourceName"] = json!("x");
        json["operation"]["id"] = json!("   ");
    });
    assert!(
        stderr.contains("$.operation.resourceName: \"x\" does not match the ResourceName pattern"),
        "{stderr}"
    );
    assert!(
        stderr.contains("$.operation.id: \"   \" does not match the NonEmptyString pattern"),
        "{stderr}"
    );
}

#[test]
fn validator_rejects_missing_required_member() {
    // No result shape has required members, so use a request shape that has.
    let stderr = assert_edit_rejected(
        "TagResourceRequest",
        &json!({"resourceName": "db-disk"}),
        |_| {},
    );
    assert!(
        stderr.contains("$.tags: missing required member"),
        "{stderr}"
    );
}

#[test]
fn validator_rejects_invalid_json() {
    let validation = run_validator("GetOperationResult", "{\"operation\": ");
    assert_eq!(validation.exit_code, Some(1));
    assert!(
        validation.stderr.contains("invalid JSON"),
        "{}",
        validation.stderr
    );
}

#[test]
#[should_panic(expected = "no shape named 'NoSuchShape'")]
fn validator_run_panics_on_unknown_shape() {
    run_validator("NoSuchShape", "{}");
}

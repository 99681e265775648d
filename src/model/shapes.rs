//! Lightsail structures and response bodies that blocksnap returns.
//!
//! Each type is named after a botocore shape, and each field after one of
//! that shape's members, in camelCase on the wire. botocore marks no member
//! of these shapes as required. Here, members that every blocksnap record has
//! are plain fields, so JSON that omits one of them fails to deserialize.
//! The other members are `Option` and are left out of the JSON when `None`.
//! Lists are always written, as `[]` when empty, and read as empty when absent.

use serde::{Deserialize, Serialize};

use super::enums::{DiskSnapshotState, OperationStatus, OperationType, RegionName, ResourceType};
use super::timestamp::Timestamp;

/// Region and Availability Zone of a resource (botocore `ResourceLocation`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceLocation {
    /// Availability Zone, such as `us-east-2a`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// AWS Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_name: Option<RegionName>,
}

/// Tag key with an optional value, attached to a resource (botocore `Tag`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    /// Tag key. Lightsail documents a maximum of 128 characters.
    pub key: String,
    /// Tag value. Lightsail documents a maximum of 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Record of one API action on one resource (botocore `Operation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Operation ID.
    pub id: String,
    /// Name of the resource that the operation acts on.
    pub resource_name: String,
    /// Type of the resource that the operation acts on.
    pub resource_type: ResourceType,
    /// Time at which the operation started.
    pub created_at: Timestamp,
    /// Region and Availability Zone of the resource.
    pub location: ResourceLocation,
    /// Whether the operation has reached a final status.
    pub is_terminal: bool,
    /// Free-form details, such as the name of a related resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_details: Option<String>,
    /// Action that the operation performs.
    pub operation_type: OperationType,
    /// Current status.
    pub status: OperationStatus,
    /// Time at which `status` last changed.
    pub status_changed_at: Timestamp,
    /// Error code of a failed operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Error message of a failed operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_details: Option<String>,
}

/// Block storage disk snapshot (botocore `DiskSnapshot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskSnapshot {
    /// Snapshot name.
    pub name: String,
    /// Amazon Resource Name (ARN) of the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Code that identifies the resource in support requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_code: Option<String>,
    /// Time at which the snapshot was created.
    pub created_at: Timestamp,
    /// Region and Availability Zone in which the snapshot was created.
    pub location: ResourceLocation,
    /// Resource type, normally [`ResourceType::DiskSnapshot`].
    pub resource_type: ResourceType,
    /// Tags attached to the snapshot.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Size of the source disk in GB. The type is `i32` because botocore's
    /// `integer` is a signed 32-bit number.
    pub size_in_gb: i32,
    /// Lifecycle state.
    pub state: DiskSnapshotState,
    /// Progress of snapshot creation, such as `100%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Name of the disk that the snapshot was taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_disk_name: Option<String>,
    /// ARN of the disk that the snapshot was taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_disk_arn: Option<String>,
    /// Name of the instance whose system disk the snapshot was taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_instance_name: Option<String>,
    /// ARN of the instance whose system disk the snapshot was taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_instance_arn: Option<String>,
    /// Whether the snapshot was created from an automatic snapshot.
    pub is_from_auto_snapshot: bool,
}

/// Defines response bodies whose only member is `operations`. botocore gives
/// these shapes the same single member, so the structs differ only in name.
macro_rules! operation_list_results {
    ($($(#[$meta:meta])* $name:ident;)+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
            #[serde(rename_all = "camelCase")]
            pub struct $name {
                /// Operations that the request started.
                #[serde(default)]
                pub operations: Vec<Operation>,
            }
        )+
    };
}

operation_list_results! {
    /// Response body of `CreateDiskSnapshot`.
    CreateDiskSnapshotResult;
    /// Response body of `DeleteDiskSnapshot`.
    DeleteDiskSnapshotResult;
    /// Response body of `CreateDiskFromSnapshot`.
    CreateDiskFromSnapshotResult;
    /// Response body of `TagResource`.
    TagResourceResult;
    /// Response body of `UntagResource`.
    UntagResourceResult;
}

/// Response body of `GetDiskSnapshot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetDiskSnapshotResult {
    /// The requested snapshot.
    pub disk_snapshot: DiskSnapshot,
}

/// Response body of `GetDiskSnapshots`, one page of snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetDiskSnapshotsResult {
    /// Snapshots on this page.
    #[serde(default)]
    pub disk_snapshots: Vec<DiskSnapshot>,
    /// Token that requests the next page. `None` on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Response body of `GetOperation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetOperationResult {
    /// The requested operation.
    pub operation: Operation,
}

/// Response body of `GetOperations`, one page of operations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetOperationsResult {
    /// Operations on this page.
    #[serde(default)]
    pub operations: Vec<Operation>,
    /// Token that requests the next page. `None` on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Response body of `GetOperationsForResource`, one page of the operations on
/// one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetOperationsForResourceResult {
    /// Operations on this page.
    #[serde(default)]
    pub operations: Vec<Operation>,
    /// Discontinued count of remaining pages. botocore marks this member
    /// deprecated and types it as a string. Leave it `None` and use
    /// `next_page_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_count: Option<String>,
    /// Token that requests the next page. `None` on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::{json, Value};

    /// Serializes `value`, checks that the JSON reads back equal, and returns the JSON.
    fn round_trip<T>(value: &T) -> Value
    where
        T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let json = serde_json::to_value(value).unwrap_or(Value::Null);
        let decoded: Option<T> = serde_json::from_value(json.clone()).ok();
        assert_eq!(decoded.as_ref(), Some(value), "round trip through {json}");
        json
    }

    /// Returns the member `name` of a JSON object, or `Null` when it is absent.
    fn member(json: &Value, name: &str) -> Value {
        json.get(name).cloned().unwrap_or(Value::Null)
    }

    fn member_names(json: &Value) -> Vec<String> {
        let mut names: Vec<String> = json
            .as_object()
            .map(|object| object.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = names.iter().map(|&name| name.to_owned()).collect();
        names.sort();
        names
    }

    fn location() -> ResourceLocation {
        ResourceLocation {
            availability_zone: Some("us-east-2a".to_owned()),
            region_name: Some(RegionName::UsEast2),
        }
    }

    fn operation(error_code: Option<&str>) -> Operation {
        Operation {
            id: "2c0e0f1a-3b7d-4c55-9d8e-6f1a2b3c4d5e".to_owned(),
            resource_name: "db-disk-snap-1".to_owned(),
            resource_type: ResourceType::DiskSnapshot,
            created_at: Timestamp::from_unix_nanos(1_479_816_991_349_000_000),
            location: location(),
            is_terminal: true,
            operation_details: Some("db-disk".to_owned()),
            operation_type: OperationType::CreateDiskSnapshot,
            status: if error_code.is_some() {
                OperationStatus::Failed
            } else {
                OperationStatus::Succeeded
            },
            status_changed_at: Timestamp::from_unix_nanos(1_479_816_992_001_000_000),
            error_code: error_code.map(str::to_owned),
            error_details: error_code.map(|_| "The source disk cannot be read.".to_owned()),
        }
    }

    fn disk_snapshot() -> DiskSnapshot {
        DiskSnapshot {
            name: "db-disk-snap-1".to_owned(),
            arn: Some("arn:aws:lightsail:us-east-2:123456789012:DiskSnapshot/0d4c".to_owned()),
            support_code: Some("123456789012/snap-0d4c".to_owned()),
            created_at: Timestamp::from_unix_nanos(1_479_816_991_349_000_000),
            location: location(),
            resource_type: ResourceType::DiskSnapshot,
            tags: vec![
                Tag {
                    key: "env".to_owned(),
                    value: Some("prod".to_owned()),
                },
                Tag {
                    key: "keep".to_owned(),
                    value: None,
                },
            ],
            size_in_gb: 32,
            state: DiskSnapshotState::Completed,
            progress: Some("100%".to_owned()),
            from_disk_name: Some("db-disk".to_owned()),
            from_disk_arn: Some("arn:aws:lightsail:us-east-2:123456789012:Disk/9a1b".to_owned()),
            from_instance_name: Some("db-1".to_owned()),
            from_instance_arn: Some(
                "arn:aws:lightsail:us-east-2:123456789012:Instance/77ef".to_owned(),
            ),
            is_from_auto_snapshot: false,
        }
    }

    fn minimal_disk_snapshot() -> DiskSnapshot {
        DiskSnapshot {
            name: "scratch".to_owned(),
            arn: None,
            support_code: None,
            created_at: Timestamp::from_unix_nanos(0),
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

    #[test]
    fn resource_location_round_trips() {
        let json = round_trip(&location());
        assert_eq!(
            json,
            json!({"availabilityZone": "us-east-2a", "regionName": "us-east-2"})
        );
        assert_eq!(round_trip(&ResourceLocation::default()), json!({}));
    }

    #[test]
    fn tag_round_trips() {
        let with_value = Tag {
            key: "env".to_owned(),
            value: Some("prod".to_owned()),
        };
        assert_eq!(
            round_trip(&with_value),
            json!({"key": "env", "value": "prod"})
        );

        let without_value = Tag {
            key: "keep".to_owned(),
            value: None,
        };
        assert_eq!(round_trip(&without_value), json!({"key": "keep"}));
    }

    #[test]
    fn operation_uses_botocore_member_names() {
        let json = round_trip(&operation(Some("OperationFailureException")));
        let expected = sorted(&[
            "id",
            "resourceName",
            "resourceType",
            "createdAt",
            "location",
            "isTerminal",
            "operationDetails",
            "operationType",
            "status",
            "statusChangedAt",
            "errorCode",
            "errorDetails",
        ]);
        assert_eq!(member_names(&json), expected);
    }

    #[test]
    fn operation_wire_values() {
        let json = round_trip(&operation(Some("OperationFailureException")));
        assert_eq!(member(&json, "createdAt"), json!(1_479_816_991.349));
        assert_eq!(member(&json, "resourceType"), json!("DiskSnapshot"));
        assert_eq!(member(&json, "operationType"), json!("CreateDiskSnapshot"));
        assert_eq!(member(&json, "status"), json!("Failed"));
        assert_eq!(member(&json, "isTerminal"), json!(true));
        assert_eq!(
            member(&json, "errorCode"),
            json!("OperationFailureException")
        );
    }

    #[test]
    fn operation_omits_unset_errors() {
        let json = round_trip(&operation(None));
        let names = member_names(&json);
        assert!(!names.contains(&"errorCode".to_owned()), "{json}");
        assert!(!names.contains(&"errorDetails".to_owned()), "{json}");
        assert_eq!(member(&json, "status"), json!("Succeeded"));
    }

    #[test]
    fn disk_snapshot_uses_botocore_member_names() {
        let json = round_trip(&disk_snapshot());
        let expected = sorted(&[
            "name",
            "arn",
            "supportCode",
            "createdAt",
            "location",
            "resourceType",
            "tags",
            "sizeInGb",
            "state",
            "progress",
            "fromDiskName",
            "fromDiskArn",
            "fromInstanceName",
            "fromInstanceArn",
            "isFromAutoSnapshot",
        ]);
        assert_eq!(member_names(&json), expected);
        assert_eq!(member(&json, "state"), json!("completed"));
        assert_eq!(
            member(&json, "tags"),
            json!([{"key": "env", "value": "prod"}, {"key": "keep"}])
        );
    }

    #[test]
    fn minimal_disk_snapshot_keeps_empty_tags() {
        let json = round_trip(&minimal_disk_snapshot());
        let expected = sorted(&[
            "name",
            "createdAt",
            "location",
            "resourceType",
            "tags",
            "sizeInGb",
            "state",
            "isFromAutoSnapshot",
        ]);
        assert_eq!(member_names(&json), expected);
        assert_eq!(member(&json, "tags"), json!([]));
        assert_eq!(member(&json, "createdAt"), json!(0.0));
    }

    #[test]
    fn disk_snapshot_reads_missing_tags_as_empty() {
        let mut json = round_trip(&minimal_disk_snapshot());
        if let Some(object) = json.as_object_mut() {
            object.remove("tags");
        }
        let decoded: Option<DiskSnapshot> = serde_json::from_value(json).ok();
        assert_eq!(decoded, Some(minimal_disk_snapshot()));
    }

    #[test]
    fn disk_snapshot_requires_plain_members() {
        let mut json = round_trip(&minimal_disk_snapshot());
        if let Some(object) = json.as_object_mut() {
            object.remove("sizeInGb");
        }
        assert!(serde_json::from_value::<DiskSnapshot>(json).is_err());
    }

    #[test]
    fn operation_list_results_round_trip() {
        let operations = vec![operation(None), operation(Some("ServiceException"))];

        let create = CreateDiskSnapshotResult {
            operations: operations.clone(),
        };
        assert_eq!(member_names(&round_trip(&create)), ["operations"]);

        let delete = DeleteDiskSnapshotResult {
            operations: operations.clone(),
        };
        assert_eq!(member_names(&round_trip(&delete)), ["operations"]);

        let create_disk = CreateDiskFromSnapshotResult {
            operations: operations.clone(),
        };
        assert_eq!(member_names(&round_trip(&create_disk)), ["operations"]);

        let tag = TagResourceResult {
            operations: operations.clone(),
        };
        assert_eq!(member_names(&round_trip(&tag)), ["operations"]);

        let untag = UntagResourceResult { operations };
        assert_eq!(member_names(&round_trip(&untag)), ["operations"]);
    }

    #[test]
    fn empty_operation_list_is_written() {
        assert_eq!(
            round_trip(&CreateDiskSnapshotResult::default()),
            json!({"operations": []})
        );
        assert_eq!(
            round_trip(&TagResourceResult::default()),
            json!({"operations": []})
        );
    }

    #[test]
    fn missing_operation_list_reads_as_empty() {
        let decoded: Option<DeleteDiskSnapshotResult> = serde_json::from_str("{}").ok();
        assert_eq!(decoded, Some(DeleteDiskSnapshotResult::default()));
    }

    #[test]
    fn get_disk_snapshot_result_round_trips() {
        let result = GetDiskSnapshotResult {
            disk_snapshot: disk_snapshot(),
        };
        assert_eq!(member_names(&round_trip(&result)), ["diskSnapshot"]);
    }

    #[test]
    fn get_disk_snapshots_result_round_trips() {
        let page = GetDiskSnapshotsResult {
            disk_snapshots: vec![disk_snapshot(), minimal_disk_snapshot()],
            next_page_token: Some("c25hcC0y".to_owned()),
        };
        assert_eq!(
            member_names(&round_trip(&page)),
            ["diskSnapshots", "nextPageToken"]
        );

        let last_page = GetDiskSnapshotsResult::default();
        assert_eq!(round_trip(&last_page), json!({"diskSnapshots": []}));
    }

    #[test]
    fn get_operation_result_round_trips() {
        let result = GetOperationResult {
            operation: operation(None),
        };
        assert_eq!(member_names(&round_trip(&result)), ["operation"]);
    }

    #[test]
    fn get_operations_result_round_trips() {
        let page = GetOperationsResult {
            operations: vec![operation(None)],
            next_page_token: Some("b3AtMg".to_owned()),
        };
        assert_eq!(
            member_names(&round_trip(&page)),
            ["nextPageToken", "operations"]
        );
        assert_eq!(
            round_trip(&GetOperationsResult::default()),
            json!({"operations": []})
        );
    }

    #[test]
    fn get_operations_for_resource_result_round_trips() {
        let page = GetOperationsForResourceResult {
            operations: vec![operation(Some("NotFoundException"))],
            next_page_count: None,
            next_page_token: Some("b3AtMg".to_owned()),
        };
        assert_eq!(
            member_names(&round_trip(&page)),
            ["nextPageToken", "operations"]
        );

        let with_count = GetOperationsForResourceResult {
            next_page_count: Some("1".to_owned()),
            ..page
        };
        let json = round_trip(&with_count);
        assert_eq!(member(&json, "nextPageCount"), json!("1"));
    }
}

//! Lightsail string enumerations.
//!
//! The values come from botocore's Lightsail model. The block between the
//! `BEGIN GENERATED` and `END GENERATED` lines is written by
//! `scripts/gen_lightsail_enums.py`. Rerun it when botocore adds values, and
//! run it with `--check` to find out whether this file is out of date.
//!
//! [`OperationType`] also has two values that botocore's model (1.43.11) does
//! not list: `TagResource` and `UntagResource`. Lightsail returns them as the
//! `operationType` of the operation records of its `TagResource` and
//! `UntagResource` calls, so blocksnap's records of those calls carry the same
//! values. They come from the script's `ENUM_EXTENSIONS` table, so
//! regenerating keeps them, and [`OperationType::is_in_service_model`]
//! returns `false` for them.

use std::fmt;
use std::str::FromStr;

/// Error returned when a string is not one of an enum's wire values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{value}\" is not a valid {type_name}; expected one of: {}", expected_values(.type_name))]
pub struct UnknownEnumValue {
    /// Name of the enum, which is also the botocore shape name (for example `RegionName`).
    pub type_name: &'static str,
    /// The rejected input.
    pub value: String,
}

/// Joins the wire values of the enum named `type_name` for an error message.
fn expected_values(type_name: &str) -> String {
    match wire_values_of(type_name) {
        Some(values) => values.join(", "),
        None => format!("the values of {type_name}, which this module does not define"),
    }
}

/// Defines each listed enum with its serde wire names, `ALL`, `as_str`,
/// `is_in_service_model`, `Display` and `FromStr`, plus `wire_values_of` over
/// all of them.
///
/// Each enum lists the values of botocore's model first. After them come the
/// extensions, values that Lightsail returns but the model does not list. Each
/// extension is prefixed with `@extension` and may carry doc comments, which
/// state why it exists.
macro_rules! wire_enums {
    ($(
        $(#[$meta:meta])*
        $name:ident {
            $($variant:ident => $wire:literal,)+
            $(
                $(#[$extension_meta:meta])*
                @extension $extension:ident => $extension_wire:literal,
            )*
        }
    )+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
            pub enum $name {
                $(
                    #[doc = concat!("`", $wire, "`")]
                    #[serde(rename = $wire)]
                    $variant,
                )+
                $(
                    #[doc = concat!("`", $extension_wire, "`")]
                    #[doc = ""]
                    $(#[$extension_meta])*
                    #[serde(rename = $extension_wire)]
                    $extension,
                )*
            }

            impl $name {
                /// Every value: first those of botocore's model, in its order,
                /// then the extensions that the model does not list.
                pub const ALL: &'static [Self] = &[$(Self::$variant,)+ $(Self::$extension,)*];

                /// Returns the wire value, as Lightsail spells it in JSON.
                pub const fn as_str(self) -> &'static str {
                    match self {
                        $(Self::$variant => $wire,)+
                        $(Self::$extension => $extension_wire,)*
                    }
                }

                /// Returns whether botocore's model lists this value. Returns
                /// `false` for the extensions, which only Lightsail's responses
                /// contain.
                pub const fn is_in_service_model(self) -> bool {
                    match self {
                        $(Self::$variant)|+ => true,
                        $(Self::$extension => false,)*
                    }
                }
            }

            impl fmt::Display for $name {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str(self.as_str())
                }
            }

            impl FromStr for $name {
                type Err = UnknownEnumValue;

                /// Parses a wire value. The match is exact and case-sensitive.
                fn from_str(s: &str) -> Result<Self, Self::Err> {
                    match s {
                        $($wire => Ok(Self::$variant),)+
                        $($extension_wire => Ok(Self::$extension),)*
                        _ => Err(UnknownEnumValue {
                            type_name: stringify!($name),
                            value: s.to_owned(),
                        }),
                    }
                }
            }
        )+

        /// Returns the wire values of the enum named `type_name`, or `None` if
        /// this module defines no enum of that name.
        fn wire_values_of(type_name: &str) -> Option<Vec<&'static str>> {
            $(
                if type_name == stringify!($name) {
                    return Some($name::ALL.iter().map(|value| value.as_str()).collect());
                }
            )+
            None
        }
    };
}

// BEGIN GENERATED by scripts/gen_lightsail_enums.py from botocore 1.43.11; do not edit.
wire_enums! {
    /// AWS Region in which Lightsail runs.
    ///
    /// Mirrors botocore's `RegionName` shape, which lists 17 values.
    RegionName {
        UsEast1 => "us-east-1",
        UsEast2 => "us-east-2",
        UsWest1 => "us-west-1",
        UsWest2 => "us-west-2",
        EuWest1 => "eu-west-1",
        EuWest2 => "eu-west-2",
        EuWest3 => "eu-west-3",
        EuCentral1 => "eu-central-1",
        EuNorth1 => "eu-north-1",
        CaCentral1 => "ca-central-1",
        ApSouth1 => "ap-south-1",
        ApSoutheast1 => "ap-southeast-1",
        ApSoutheast2 => "ap-southeast-2",
        ApNortheast1 => "ap-northeast-1",
        ApNortheast2 => "ap-northeast-2",
        ApSoutheast3 => "ap-southeast-3",
        ApSoutheast5 => "ap-southeast-5",
    }

    /// Kind of Lightsail resource that a record describes.
    ///
    /// Mirrors botocore's `ResourceType` shape, which lists 20 values.
    ResourceType {
        ContainerService => "ContainerService",
        Instance => "Instance",
        StaticIp => "StaticIp",
        KeyPair => "KeyPair",
        InstanceSnapshot => "InstanceSnapshot",
        Domain => "Domain",
        PeeredVpc => "PeeredVpc",
        LoadBalancer => "LoadBalancer",
        LoadBalancerTlsCertificate => "LoadBalancerTlsCertificate",
        Disk => "Disk",
        DiskSnapshot => "DiskSnapshot",
        RelationalDatabase => "RelationalDatabase",
        RelationalDatabaseSnapshot => "RelationalDatabaseSnapshot",
        ExportSnapshotRecord => "ExportSnapshotRecord",
        CloudFormationStackRecord => "CloudFormationStackRecord",
        Alarm => "Alarm",
        ContactMethod => "ContactMethod",
        Distribution => "Distribution",
        Certificate => "Certificate",
        Bucket => "Bucket",
    }

    /// Lightsail action that an operation record tracks.
    ///
    /// Mirrors botocore's `OperationType` shape, which lists 83 values.
    /// Adds 2 values that Lightsail returns but the model does not list.
    OperationType {
        DeleteKnownHostKeys => "DeleteKnownHostKeys",
        DeleteInstance => "DeleteInstance",
        CreateInstance => "CreateInstance",
        StopInstance => "StopInstance",
        StartInstance => "StartInstance",
        RebootInstance => "RebootInstance",
        OpenInstancePublicPorts => "OpenInstancePublicPorts",
        PutInstancePublicPorts => "PutInstancePublicPorts",
        CloseInstancePublicPorts => "CloseInstancePublicPorts",
        AllocateStaticIp => "AllocateStaticIp",
        ReleaseStaticIp => "ReleaseStaticIp",
        AttachStaticIp => "AttachStaticIp",
        DetachStaticIp => "DetachStaticIp",
        UpdateDomainEntry => "UpdateDomainEntry",
        DeleteDomainEntry => "DeleteDomainEntry",
        CreateDomain => "CreateDomain",
        DeleteDomain => "DeleteDomain",
        CreateInstanceSnapshot => "CreateInstanceSnapshot",
        DeleteInstanceSnapshot => "DeleteInstanceSnapshot",
        CreateInstancesFromSnapshot => "CreateInstancesFromSnapshot",
        CreateLoadBalancer => "CreateLoadBalancer",
        DeleteLoadBalancer => "DeleteLoadBalancer",
        AttachInstancesToLoadBalancer => "AttachInstancesToLoadBalancer",
        DetachInstancesFromLoadBalancer => "DetachInstancesFromLoadBalancer",
        UpdateLoadBalancerAttribute => "UpdateLoadBalancerAttribute",
        CreateLoadBalancerTlsCertificate => "CreateLoadBalancerTlsCertificate",
        DeleteLoadBalancerTlsCertificate => "DeleteLoadBalancerTlsCertificate",
        AttachLoadBalancerTlsCertificate => "AttachLoadBalancerTlsCertificate",
        CreateDisk => "CreateDisk",
        DeleteDisk => "DeleteDisk",
        AttachDisk => "AttachDisk",
        DetachDisk => "DetachDisk",
        CreateDiskSnapshot => "CreateDiskSnapshot",
        DeleteDiskSnapshot => "DeleteDiskSnapshot",
        CreateDiskFromSnapshot => "CreateDiskFromSnapshot",
        CreateRelationalDatabase => "CreateRelationalDatabase",
        UpdateRelationalDatabase => "UpdateRelationalDatabase",
        DeleteRelationalDatabase => "DeleteRelationalDatabase",
        CreateRelationalDatabaseFromSnapshot => "CreateRelationalDatabaseFromSnapshot",
        CreateRelationalDatabaseSnapshot => "CreateRelationalDatabaseSnapshot",
        DeleteRelationalDatabaseSnapshot => "DeleteRelationalDatabaseSnapshot",
        UpdateRelationalDatabaseParameters => "UpdateRelationalDatabaseParameters",
        StartRelationalDatabase => "StartRelationalDatabase",
        RebootRelationalDatabase => "RebootRelationalDatabase",
        StopRelationalDatabase => "StopRelationalDatabase",
        EnableAddOn => "EnableAddOn",
        DisableAddOn => "DisableAddOn",
        PutAlarm => "PutAlarm",
        GetAlarms => "GetAlarms",
        DeleteAlarm => "DeleteAlarm",
        TestAlarm => "TestAlarm",
        CreateContactMethod => "CreateContactMethod",
        GetContactMethods => "GetContactMethods",
        SendContactMethodVerification => "SendContactMethodVerification",
        DeleteContactMethod => "DeleteContactMethod",
        CreateDistribution => "CreateDistribution",
        UpdateDistribution => "UpdateDistribution",
        DeleteDistribution => "DeleteDistribution",
        ResetDistributionCache => "ResetDistributionCache",
        AttachCertificateToDistribution => "AttachCertificateToDistribution",
        DetachCertificateFromDistribution => "DetachCertificateFromDistribution",
        UpdateDistributionBundle => "UpdateDistributionBundle",
        SetIpAddressType => "SetIpAddressType",
        CreateCertificate => "CreateCertificate",
        DeleteCertificate => "DeleteCertificate",
        CreateContainerService => "CreateContainerService",
        UpdateContainerService => "UpdateContainerService",
        DeleteContainerService => "DeleteContainerService",
        CreateContainerServiceDeployment => "CreateContainerServiceDeployment",
        CreateContainerServiceRegistryLogin => "CreateContainerServiceRegistryLogin",
        RegisterContainerImage => "RegisterContainerImage",
        DeleteContainerImage => "DeleteContainerImage",
        CreateBucket => "CreateBucket",
        DeleteBucket => "DeleteBucket",
        CreateBucketAccessKey => "CreateBucketAccessKey",
        DeleteBucketAccessKey => "DeleteBucketAccessKey",
        UpdateBucketBundle => "UpdateBucketBundle",
        UpdateBucket => "UpdateBucket",
        SetResourceAccessForBucket => "SetResourceAccessForBucket",
        UpdateInstanceMetadataOptions => "UpdateInstanceMetadataOptions",
        StartGuiSession => "StartGUISession",
        StopGuiSession => "StopGUISession",
        SetupInstanceHttps => "SetupInstanceHttps",
        /// Returned by Lightsail for `TagResource`; not listed in the service model.
        @extension TagResource => "TagResource",
        /// Returned by Lightsail for `UntagResource`; not listed in the service model.
        @extension UntagResource => "UntagResource",
    }

    /// Progress of an operation.
    ///
    /// Mirrors botocore's `OperationStatus` shape, which lists 5 values.
    OperationStatus {
        NotStarted => "NotStarted",
        Started => "Started",
        Failed => "Failed",
        Completed => "Completed",
        Succeeded => "Succeeded",
    }

    /// Lifecycle state of a disk snapshot.
    ///
    /// Mirrors botocore's `DiskSnapshotState` shape, which lists 4 values.
    DiskSnapshotState {
        Pending => "pending",
        Completed => "completed",
        Error => "error",
        Unknown => "unknown",
    }
}
// END GENERATED

impl Default for RegionName {
    /// Returns `us-east-1`.
    fn default() -> Self {
        Self::UsEast1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `Display`, `FromStr`, `as_str` and serde against each other for every value.
    fn check_round_trips<T>(all: &[T])
    where
        T: Copy + fmt::Debug + fmt::Display + FromStr<Err = UnknownEnumValue> + PartialEq,
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        for &value in all {
            let text = value.to_string();
            assert_eq!(text.parse::<T>(), Ok(value), "FromStr of {text:?}");

            let json = serde_json::to_string(&value).unwrap_or_default();
            assert_eq!(json, format!("\"{text}\""), "serde name of {value:?}");

            let decoded: Option<T> = serde_json::from_str(&json).ok();
            assert_eq!(decoded, Some(value), "serde round trip of {json}");
        }
    }

    fn assert_unique_wire_values(type_name: &str) {
        let mut values = wire_values_of(type_name).unwrap_or_default();
        let count = values.len();
        values.sort_unstable();
        values.dedup();
        assert_eq!(
            values.len(),
            count,
            "{type_name} has a duplicate wire value"
        );
    }

    #[test]
    fn region_name_round_trips() {
        check_round_trips(RegionName::ALL);
        assert_eq!(RegionName::ALL.len(), 17);
        assert_eq!(RegionName::UsEast1.as_str(), "us-east-1");
        assert_eq!(RegionName::ApSoutheast5.to_string(), "ap-southeast-5");
    }

    #[test]
    fn resource_type_round_trips() {
        check_round_trips(ResourceType::ALL);
        assert_eq!(ResourceType::ALL.len(), 20);
        assert_eq!(ResourceType::DiskSnapshot.as_str(), "DiskSnapshot");
    }

    #[test]
    fn operation_type_round_trips() {
        check_round_trips(OperationType::ALL);
        // 83 values from botocore's model plus the 2 extensions.
        assert_eq!(OperationType::ALL.len(), 85);
        assert_eq!(
            OperationType::CreateDiskSnapshot.as_str(),
            "CreateDiskSnapshot"
        );
        assert_eq!(OperationType::StartGuiSession.as_str(), "StartGUISession");
        assert_eq!(OperationType::TagResource.as_str(), "TagResource");
        assert_eq!(OperationType::UntagResource.as_str(), "UntagResource");
    }

    #[test]
    fn operation_type_extensions_follow_model() {
        let model_count = OperationType::ALL
            .iter()
            .filter(|value| value.is_in_service_model())
            .count();
        assert_eq!(model_count, 83);

        let extensions: Vec<OperationType> = OperationType::ALL
            .iter()
            .copied()
            .filter(|value| !value.is_in_service_model())
            .collect();
        assert_eq!(
            extensions,
            [OperationType::TagResource, OperationType::UntagResource]
        );

        // `ALL` lists the extensions after every value of the model.
        assert_eq!(OperationType::ALL.get(model_count..), Some(&extensions[..]));
    }

    #[test]
    fn operation_type_extensions_parse() {
        assert_eq!(
            "TagResource".parse::<OperationType>(),
            Ok(OperationType::TagResource)
        );
        assert_eq!(
            serde_json::from_str::<OperationType>("\"UntagResource\"").ok(),
            Some(OperationType::UntagResource)
        );
        assert!("tagResource".parse::<OperationType>().is_err());
    }

    #[test]
    fn enums_without_extensions_are_in_model() {
        assert!(RegionName::ALL
            .iter()
            .all(|value| value.is_in_service_model()));
        assert!(ResourceType::ALL
            .iter()
            .all(|value| value.is_in_service_model()));
        assert!(OperationStatus::ALL
            .iter()
            .all(|value| value.is_in_service_model()));
        assert!(DiskSnapshotState::ALL
            .iter()
            .all(|value| value.is_in_service_model()));
    }

    #[test]
    fn operation_status_round_trips() {
        check_round_trips(OperationStatus::ALL);
        assert_eq!(OperationStatus::ALL.len(), 5);
        assert_eq!(OperationStatus::NotStarted.as_str(), "NotStarted");
    }

    #[test]
    fn disk_snapshot_state_round_trips() {
        check_round_trips(DiskSnapshotState::ALL);
        assert_eq!(DiskSnapshotState::ALL.len(), 4);
        assert_eq!(DiskSnapshotState::Pending.as_str(), "pending");
    }

    #[test]
    fn wire_values_are_unique() {
        for type_name in [
            "RegionName",
            "ResourceType",
            "OperationType",
            "OperationStatus",
            "DiskSnapshotState",
        ] {
            assert_unique_wire_values(type_name);
        }
    }

    #[test]
    fn region_name_defaults_to_us_east_1() {
        assert_eq!(RegionName::default(), RegionName::UsEast1);
    }

    #[test]
    fn from_str_rejects_unknown_value() {
        let error = "mars-north-1".parse::<RegionName>().err();
        let expected = UnknownEnumValue {
            type_name: "RegionName",
            value: "mars-north-1".to_owned(),
        };
        assert_eq!(error, Some(expected));
    }

    #[test]
    fn from_str_is_case_sensitive() {
        assert!("US-EAST-1".parse::<RegionName>().is_err());
        assert!("Pending".parse::<DiskSnapshotState>().is_err());
    }

    #[test]
    fn unknown_value_message_lists_values() {
        let message = "done"
            .parse::<OperationStatus>()
            .err()
            .map(|error| error.to_string());
        let expected = "\"done\" is not a valid OperationStatus; expected one of: \
                        NotStarted, Started, Failed, Completed, Succeeded";
        assert_eq!(message.as_deref(), Some(expected));
    }

    #[test]
    fn unknown_value_message_for_foreign_type() {
        let error = UnknownEnumValue {
            type_name: "Colour",
            value: "red".to_owned(),
        };
        assert_eq!(
            error.to_string(),
            "\"red\" is not a valid Colour; expected one of: \
             the values of Colour, which this module does not define"
        );
    }

    #[test]
    fn serde_rejects_unknown_value() {
        let decoded = serde_json::from_str::<DiskSnapshotState>("\"deleted\"");
        assert!(decoded.is_err());
    }
}

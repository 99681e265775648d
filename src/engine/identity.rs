//! ARNs, support codes and the access check every call makes.

use std::collections::BTreeMap;

use crate::access::{AccessRequest, Decision};
use crate::error::{Error, Result};
use crate::storage::records::SnapshotRecord;
use crate::Store;

impl Store {
    /// A stable UUID-shaped identifier derived from the account and `seed`.
    fn derived_uuid(&self, kind: &str, seed: &[u8]) -> uuid::Uuid {
        let mut hasher = blake3::Hasher::new_derive_key("blocksnap 2026-12 resource identifier");
        hasher.update(self.config.account_id.as_bytes());
        hasher.update(kind.as_bytes());
        hasher.update(seed);
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(digest.as_bytes().get(..16).unwrap_or(&[0; 16]));
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// The ARN of snapshot `snapshot_id`.
    pub(crate) fn snapshot_arn(&self, snapshot_id: u64) -> String {
        format!(
            "arn:aws:lightsail:{}:{}:DiskSnapshot/{}",
            self.region.as_str(),
            self.config.account_id,
            self.derived_uuid("DiskSnapshot", &snapshot_id.to_be_bytes())
        )
    }

    /// The ARN of disk `disk_name`.
    pub(crate) fn disk_arn(&self, disk_name: &str) -> String {
        format!(
            "arn:aws:lightsail:{}:{}:Disk/{}",
            self.region.as_str(),
            self.config.account_id,
            self.derived_uuid("Disk", disk_name.as_bytes())
        )
    }

    /// The support code of snapshot `snapshot_id`, as Lightsail forms it: the
    /// account id, a slash, and an id of the resource.
    pub(crate) fn support_code(&self, snapshot_id: u64) -> String {
        format!(
            "{}/snap-{}",
            self.config.account_id,
            self.derived_uuid("DiskSnapshot", &snapshot_id.to_be_bytes())
                .simple()
        )
    }

    /// Checks the caller's policy for `action` on `resource_arn` with the
    /// resource's current `tags` and, for calls that send tags, `request_tags`
    /// (whose keys are also the request's `aws:TagKeys`).
    pub(crate) fn check_access(
        &self,
        action: &str,
        resource_arn: &str,
        tags: &[(String, String)],
        request_tags: Option<&BTreeMap<String, String>>,
    ) -> Result<()> {
        let tag_keys: Option<Vec<String>> = request_tags.map(|tags| tags.keys().cloned().collect());
        self.check_access_with_keys(
            action,
            resource_arn,
            tags,
            request_tags,
            tag_keys.as_deref(),
        )
    }

    /// Checks the caller's policy for `action` on `snapshot` with its current
    /// tags, for calls that send no tags.
    pub(crate) fn check_snapshot_access(
        &self,
        action: &str,
        snapshot: &SnapshotRecord,
    ) -> Result<()> {
        self.check_access(
            action,
            &self.snapshot_arn(snapshot.id),
            &snapshot.tags,
            None,
        )
    }

    /// [`Store::check_access`] with an explicit `aws:TagKeys` set, for calls such
    /// as `UntagResource` that name tag keys without values.
    pub(crate) fn check_access_with_keys(
        &self,
        action: &str,
        resource_arn: &str,
        tags: &[(String, String)],
        request_tags: Option<&BTreeMap<String, String>>,
        tag_keys: Option<&[String]>,
    ) -> Result<()> {
        let policy = self
            .policy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let Some(policy) = policy else {
            return Ok(());
        };
        let resource_tags: BTreeMap<String, String> = tags.iter().cloned().collect();
        let request = AccessRequest {
            action,
            resource_arn,
            resource_tags: &resource_tags,
            request_tags,
            tag_keys,
        };
        match policy.evaluate(&request) {
            Decision::Allow { .. } => Ok(()),
            Decision::ExplicitDeny { statement } => Err(Error::access_denied(format!(
                "{action} on {resource_arn} is denied by policy statement {}. \
                 Change the resource's tags or the policy",
                statement.map_or_else(|| "without a Sid".to_owned(), |sid| format!("{sid:?}"))
            ))),
            Decision::ImplicitDeny => Err(Error::access_denied(format!(
                "{action} on {resource_arn} is not allowed by any statement of the policy. \
                 Add an Allow statement that covers it"
            ))),
        }
    }
}

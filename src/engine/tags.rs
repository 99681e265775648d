//! `tag_resource` and `untag_resource` for disk snapshots.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::model::{Operation, OperationStatus, OperationType, ResourceType, Tag};
use crate::names::{validate_resource_name, validate_tag_key, validate_tags, MAX_TAGS};
use crate::storage::keys;
use crate::storage::meta::Batch;
use crate::storage::records::SnapshotRecord;
use crate::Store;

impl Store {
    /// Adds `tags` to snapshot `resource_name`, replacing the value of any key it
    /// already has, and records a `TagResource` operation.
    ///
    /// The policy is checked for `lightsail:TagResource` with the snapshot's
    /// current tags as `aws:ResourceTag/*`, the new tags as `aws:RequestTag/*`
    /// and their keys as `aws:TagKeys`.
    ///
    /// Returns `InvalidInputException` for a malformed name or tag, or if the
    /// snapshot would carry more than 50 tags; `NotFoundException` if there is no
    /// such snapshot; `AccessDeniedException` if the policy denies it. In those
    /// cases nothing changes and no operation is recorded.
    ///
    /// # Examples
    ///
    /// ```
    /// use blocksnap::{model::Tag, Store};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path())?;
    /// store.create_disk_snapshot("disk-1", "snap-1", &[1u8; 4096][..], &[])?;
    /// store.tag_resource("snap-1", &[Tag { key: "env".into(), value: Some("prod".into()) }])?;
    /// assert_eq!(store.get_disk_snapshot("snap-1")?.tags[0].key, "env");
    /// store.untag_resource("snap-1", &["env".to_owned()])?;
    /// assert!(store.get_disk_snapshot("snap-1")?.tags.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tag_resource(&self, resource_name: &str, tags: &[Tag]) -> Result<Vec<Operation>> {
        validate_resource_name("resource name", resource_name)?;
        validate_tags(tags)?;
        let request_tags: BTreeMap<String, String> = tags
            .iter()
            .map(|tag| (tag.key.clone(), tag.value.clone().unwrap_or_default()))
            .collect();

        self.check_writable("tag a resource")?;
        let _guard = self.lock_writer();
        let mut snapshot = self.load_snapshot(resource_name)?;
        self.check_access(
            "lightsail:TagResource",
            &self.snapshot_arn(snapshot.id),
            &snapshot.tags,
            Some(&request_tags),
        )?;

        let mut merged: BTreeMap<String, String> = snapshot.tags.iter().cloned().collect();
        merged.extend(request_tags);
        if merged.len() > MAX_TAGS {
            return Err(Error::invalid_input(format!(
                "snapshot {resource_name:?} would carry {} tags, but a resource can carry at most {MAX_TAGS}. \
                 Remove tags with untag-resource first",
                merged.len()
            )));
        }
        snapshot.tags = merged.into_iter().collect();
        let details = tags
            .iter()
            .map(|tag| tag.key.as_str())
            .collect::<Vec<_>>()
            .join(",");
        self.commit_tags(&snapshot, OperationType::TagResource, &details)
    }

    /// Removes the tags with keys `tag_keys` from snapshot `resource_name` (keys it
    /// does not carry are ignored) and records an `UntagResource` operation.
    ///
    /// The policy is checked for `lightsail:UntagResource` with the snapshot's
    /// current tags as `aws:ResourceTag/*` and `tag_keys` as `aws:TagKeys`.
    /// Errors are as for [`Store::tag_resource`].
    pub fn untag_resource(
        &self,
        resource_name: &str,
        tag_keys: &[String],
    ) -> Result<Vec<Operation>> {
        validate_resource_name("resource name", resource_name)?;
        if tag_keys.is_empty() {
            return Err(Error::invalid_input(format!(
                "no tag keys were given to remove from {resource_name:?}. Name at least one key"
            )));
        }
        for key in tag_keys {
            validate_tag_key(key)?;
        }

        self.check_writable("untag a resource")?;
        let _guard = self.lock_writer();
        let mut snapshot = self.load_snapshot(resource_name)?;
        self.check_access_with_keys(
            "lightsail:UntagResource",
            &self.snapshot_arn(snapshot.id),
            &snapshot.tags,
            None,
            Some(tag_keys),
        )?;

        snapshot.tags.retain(|(key, _)| !tag_keys.contains(key));
        self.commit_tags(&snapshot, OperationType::UntagResource, &tag_keys.join(","))
    }

    /// Stores the snapshot's new tags and a succeeded operation in one commit.
    fn commit_tags(
        &self,
        snapshot: &SnapshotRecord,
        operation_type: OperationType,
        details: &str,
    ) -> Result<Vec<Operation>> {
        let mut operation = self.new_operation(
            &snapshot.name,
            ResourceType::DiskSnapshot,
            operation_type,
            details,
        )?;
        operation.set_status(OperationStatus::Succeeded);
        let mut batch = Batch::default();
        batch.put(keys::snapshot(&snapshot.name), snapshot)?;
        operation.stage(&mut batch)?;
        self.meta.commit(batch)?;
        self.meta.flush()?;
        tracing::info!(snapshot = %snapshot.name, operation = %operation.record.id, "changed tags");
        Ok(vec![self.operation_shape(&operation.record)?])
    }
}

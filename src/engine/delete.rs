//! `delete_disk_snapshot`: remove a snapshot from the namespace and collect
//! what no other snapshot needs.

use crate::error::{Error, Result};
use crate::model::{Operation, OperationType, ResourceType};
use crate::names::validate_resource_name;
use crate::storage::keys;
use crate::storage::meta::Batch;
use crate::storage::records::{GcItem, PendingDelete, SnapshotRecord};
use crate::Store;

impl Store {
    /// Deletes snapshot `snapshot_name` and frees every block that no surviving
    /// snapshot references.
    ///
    /// In one atomic commit the snapshot leaves the namespace, its root is queued
    /// for collection and a `DeleteDiskSnapshot` operation is recorded as
    /// `Started`. The queue is then drained: pages and blocks whose count reaches
    /// zero are removed and their bytes punched out of the pack files. The
    /// operation is `Succeeded` once the queue is empty and durable, which is
    /// when this call returns. If collection fails part way (an I/O error), the
    /// snapshot stays deleted, the error is returned and the next open of the
    /// store finishes the collection.
    ///
    /// Returns `InvalidInputException` for a malformed name, `NotFoundException`
    /// if no such snapshot exists and `AccessDeniedException` if the caller's
    /// policy does not allow `lightsail:DeleteDiskSnapshot` on it; in those cases
    /// nothing changes.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = blocksnap::Store::open(dir.path())?;
    /// let image = vec![7u8; 3 * 65536];
    /// store.create_disk_snapshot("disk-1", "snap-1", &image[..], &[])?;
    /// let operations = store.delete_disk_snapshot("snap-1")?;
    /// assert_eq!(operations[0].status, blocksnap::model::OperationStatus::Succeeded);
    /// assert_eq!(store.stats()?.blocks, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn delete_disk_snapshot(&self, snapshot_name: &str) -> Result<Vec<Operation>> {
        validate_resource_name("disk snapshot name", snapshot_name)?;
        let guard = self.lock_writer();

        let snapshot: SnapshotRecord = self
            .meta
            .get("snapshot", &keys::snapshot(snapshot_name))?
            .ok_or_else(|| not_found(snapshot_name))?;
        self.check_access(
            "lightsail:DeleteDiskSnapshot",
            &self.snapshot_arn(snapshot.id),
            &snapshot.tags,
            None,
        )?;

        let operation = self.new_operation(
            snapshot_name,
            ResourceType::DiskSnapshot,
            OperationType::DeleteDiskSnapshot,
            &snapshot.disk_name,
        )?;
        let mut batch = Batch::default();
        batch.remove(keys::snapshot(snapshot_name));
        batch.put(
            keys::gc_item(self.meta.next_id()?),
            &GcItem::DropRoot {
                snapshot_id: snapshot.id,
            },
        )?;
        batch.put(
            keys::pending_delete(operation.seq),
            &PendingDelete {
                snapshot_id: snapshot.id,
            },
        )?;
        operation.stage(&mut batch)?;
        self.meta.commit(batch)?;
        tracing::info!(snapshot = snapshot_name, id = snapshot.id, operation = %operation.record.id, "deleting snapshot");

        self.drain_gc(&guard)?;
        self.meta.flush()?;

        let record = self
            .load_operation(operation.seq)?
            .ok_or_else(|| Error::service(format!(
                "operation {} of the delete of {snapshot_name} vanished. This is a bug in blocksnap",
                operation.record.id
            )))?;
        Ok(vec![self.operation_shape(&record.record)?])
    }
}

pub(crate) fn not_found(snapshot_name: &str) -> Error {
    Error::not_found(format!(
        "disk snapshot {snapshot_name:?} does not exist. Check the name with `get-disk-snapshots`"
    ))
}

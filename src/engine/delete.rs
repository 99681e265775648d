//! `delete_disk_snapshot`: remove a snapshot from the namespace and collect
//! what no other snapshot needs.

use crate::error::{Error, Result};
use crate::model::{Operation, OperationType, ResourceType};
use crate::names::validate_resource_name;
use crate::storage::keys;
use crate::storage::meta::Batch;
use crate::storage::records::{GcItem, PendingDelete};
use crate::Store;

use super::operations::PendingOperation;

impl Store {
    /// Deletes snapshot `snapshot_name` and frees every block that no surviving
    /// snapshot references.
    ///
    /// In one atomic commit the snapshot leaves the namespace, its root is queued
    /// for collection and a `DeleteDiskSnapshot` operation is recorded as
    /// `Started`. The queue is then drained: pages and blocks whose count reaches
    /// zero are removed and their bytes punched out of the pack files. The
    /// operation is `Succeeded` once the queue is empty and durable, which is
    /// when this call returns.
    ///
    /// If a step fails (an I/O error, a full disk), the call returns that error
    /// as `OperationFailureException` and records the operation `Failed` with
    /// the error's code and details. What happened until then stays. If the
    /// first commit went through, the snapshot stays deleted. Whatever is
    /// still queued is then collected by the next writer call on this store (a
    /// create, a delete, a tag change, [`Store::verify`],
    /// [`Store::collect_garbage`]) or by the next open. If the process ends
    /// before the failure is recorded, the next open finishes the collection and
    /// the operation ends `Succeeded`.
    ///
    /// Returns `InvalidInputException` for a malformed name, `NotFoundException`
    /// if no such snapshot exists and `AccessDeniedException` if the caller's
    /// policy does not allow `lightsail:DeleteDiskSnapshot` on it; in those cases
    /// nothing changes and no operation is recorded.
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
        self.check_writable("delete a disk snapshot")?;
        let guard = self.lock_writer();

        let snapshot = self.load_snapshot(snapshot_name)?;
        self.check_snapshot_access("lightsail:DeleteDiskSnapshot", &snapshot)?;

        let mut operation = self.new_operation(
            snapshot_name,
            ResourceType::DiskSnapshot,
            OperationType::DeleteDiskSnapshot,
            &snapshot.disk_name,
        )?;
        let mut batch = Batch::default();
        batch.remove(keys::snapshot(snapshot_name));
        self.queue_gc_item(
            &mut batch,
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
        if let Err(error) = self.meta.commit(batch) {
            // Nothing changed: the snapshot is still there.
            self.record_failed_delete(&mut operation, &error);
            return Err(error);
        }
        tracing::info!(snapshot = snapshot_name, id = snapshot.id, operation = %operation.record.id, "deleting snapshot");

        // ORDER: `Succeeded` (set by the drain once the queue is empty) is
        // reported only after it is durable. The drain's last flush usually
        // covers it, and then this one has nothing to do.
        if let Err(error) = self
            .drain_gc(&guard)
            .and_then(|_| self.meta.flush_if_needed())
        {
            // The snapshot stays deleted; what is still queued is collected by
            // the next writer call or open.
            self.record_failed_delete(&mut operation, &error);
            return Err(error);
        }

        let record = self
            .load_operation(operation.seq)?
            .ok_or_else(|| Error::service(format!(
                "operation {} of the delete of {snapshot_name} vanished. This is a bug in blocksnap",
                operation.record.id
            )))?;
        Ok(vec![self.operation_shape(&record.record)?])
    }

    /// Records the delete's operation `Failed` with `error` and retires its
    /// pending-delete marker, so that a later drain does not turn it into
    /// `Succeeded`. Best effort: if this fails too, the operation stays
    /// `Started` and the drain that empties the queue marks it `Succeeded`.
    fn record_failed_delete(&self, operation: &mut PendingOperation, error: &Error) {
        operation.fail(error);
        let recorded = (|| -> Result<()> {
            let mut batch = Batch::default();
            operation.stage(&mut batch)?;
            batch.remove(keys::pending_delete(operation.seq));
            self.meta.commit(batch)?;
            self.meta.flush()
        })();
        match recorded {
            Ok(()) => tracing::warn!(
                snapshot = %operation.record.resource_name,
                operation = %operation.record.id,
                %error,
                "delete failed; the next writer call or open finishes its collection"
            ),
            Err(record_error) => tracing::warn!(
                snapshot = %operation.record.resource_name,
                operation = %operation.record.id,
                %error,
                %record_error,
                "delete failed and its failure could not be recorded"
            ),
        }
    }
}

pub(crate) fn not_found(snapshot_name: &str) -> Error {
    Error::not_found(format!(
        "disk snapshot {snapshot_name:?} does not exist. Check the name with `get-disk-snapshots`"
    ))
}

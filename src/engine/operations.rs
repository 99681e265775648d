//! Operation records: creating, updating and reading them back as Lightsail shapes.

use crate::error::{Error, Result};
use crate::model::{
    Operation, OperationStatus, OperationType, ResourceLocation, ResourceType, Timestamp,
};
use crate::storage::keys;
use crate::storage::meta::{Batch, Meta};
use crate::storage::records::OperationRecord;
use crate::Store;

/// An operation record with its sequence number, ready to go into a batch.
#[derive(Debug, Clone)]
pub(crate) struct PendingOperation {
    pub seq: u64,
    pub record: OperationRecord,
}

impl PendingOperation {
    /// Writes the record and its two index entries.
    pub(crate) fn stage(&self, batch: &mut Batch) -> Result<()> {
        batch.put(keys::operation(self.seq), &self.record)?;
        batch.put_raw(keys::operation_id(&self.record.id), &self.seq.to_be_bytes());
        batch.put_raw(
            keys::resource_entry(&self.record.resource_name, self.seq),
            &[],
        );
        Ok(())
    }

    /// Moves the operation to `status`, terminal unless it is `Started`.
    pub(crate) fn set_status(&mut self, status: OperationStatus) {
        status.as_str().clone_into(&mut self.record.status);
        self.record.is_terminal = status != OperationStatus::Started;
        self.record.status_changed_at = Timestamp::now().unix_nanos();
    }

    /// Marks the operation failed with the error's code and details.
    pub(crate) fn fail(&mut self, error: &Error) {
        self.set_status(OperationStatus::Failed);
        self.record.error_code = Some(error.kind().error_code().to_owned());
        self.record.error_details = Some(error.detailed_message());
    }
}

impl Store {
    /// Builds a new operation in state `Started`.
    pub(crate) fn new_operation(
        &self,
        resource_name: &str,
        resource_type: ResourceType,
        operation_type: OperationType,
        details: &str,
    ) -> Result<PendingOperation> {
        let now = Timestamp::now().unix_nanos();
        let availability_zone = match resource_type {
            // Snapshots are regional; Lightsail reports them in zone "all".
            ResourceType::DiskSnapshot => "all".to_owned(),
            _ => format!("{}a", self.region().as_str()),
        };
        Ok(PendingOperation {
            seq: self.meta.next_id()?,
            record: OperationRecord {
                id: uuid::Uuid::new_v4().to_string(),
                resource_name: resource_name.to_owned(),
                resource_type: resource_type.as_str().to_owned(),
                created_at: now,
                availability_zone,
                is_terminal: false,
                operation_details: details.to_owned(),
                operation_type: operation_type.as_str().to_owned(),
                status: OperationStatus::Started.as_str().to_owned(),
                status_changed_at: now,
                error_code: None,
                error_details: None,
            },
        })
    }

    /// Converts a stored record into the Lightsail shape.
    pub(crate) fn operation_shape(&self, record: &OperationRecord) -> Result<Operation> {
        let corrupt = |field: &str, value: &str| {
            Error::corruption(format!(
                "operation {} stores {field} {value:?}, which this build does not know. \
                 Open the store with the blocksnap release that wrote it",
                record.id
            ))
        };
        Ok(Operation {
            id: record.id.clone(),
            resource_name: record.resource_name.clone(),
            resource_type: record
                .resource_type
                .parse()
                .map_err(|_| corrupt("resource type", &record.resource_type))?,
            created_at: Timestamp::from_unix_nanos(record.created_at),
            location: ResourceLocation {
                availability_zone: Some(record.availability_zone.clone()),
                region_name: Some(self.region()),
            },
            is_terminal: record.is_terminal,
            operation_details: Some(record.operation_details.clone()),
            operation_type: record
                .operation_type
                .parse()
                .map_err(|_| corrupt("operation type", &record.operation_type))?,
            status: record
                .status
                .parse()
                .map_err(|_| corrupt("status", &record.status))?,
            status_changed_at: Timestamp::from_unix_nanos(record.status_changed_at),
            error_code: record.error_code.clone(),
            error_details: record.error_details.clone(),
        })
    }

    /// Reads an operation by sequence number.
    pub(crate) fn load_operation(&self, seq: u64) -> Result<Option<PendingOperation>> {
        Ok(self
            .meta
            .get::<OperationRecord>("operation", &keys::operation(seq))?
            .map(|record| PendingOperation { seq, record }))
    }
}

/// Reads the sequence number stored for operation `id`.
pub(crate) fn operation_seq(meta: &Meta, id: &str) -> Result<Option<u64>> {
    let Some(bytes) = meta.get_raw("operation id", &keys::operation_id(id))? else {
        return Ok(None);
    };
    let seq: [u8; 8] = bytes.as_ref().try_into().map_err(|_| {
        Error::corruption(format!(
            "the index entry of operation {id} is {} bytes long instead of 8. Restore the store directory from a copy",
            bytes.len()
        ))
    })?;
    Ok(Some(u64::from_be_bytes(seq)))
}

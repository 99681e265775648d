//! Read-only calls: snapshots, operations and store statistics.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{
    DiskSnapshot, DiskSnapshotState, Operation, ResourceLocation, ResourceType, Tag, Timestamp,
};
use crate::names::validate_resource_name;
use crate::storage::keys;
use crate::storage::pack::allocated_bytes;
use crate::storage::records::{OperationRecord, SnapshotRecord};
use crate::store::bad_key;
use crate::Store;

use super::operations::operation_seq;

/// Snapshots returned per page by [`Store::get_disk_snapshots`].
pub const SNAPSHOTS_PER_PAGE: usize = 100;
/// Operations returned per page by [`Store::get_operations`] and
/// [`Store::get_operations_for_resource`].
pub const OPERATIONS_PER_PAGE: usize = 200;

const GIB: u64 = 1 << 30;

/// One page of results and the token for the next page, if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass this as `page_token` to get the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// Counts and sizes of a store, as `blocksnap stats` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStats {
    /// Live snapshots.
    pub snapshots: u64,
    /// Stored pages.
    pub pages: u64,
    /// Stored blocks.
    pub blocks: u64,
    /// Bytes of stored blocks: `blocks` × block size.
    pub stored_bytes: u64,
    /// Bytes the store directory occupies on disk (allocated blocks, so punched
    /// holes count as freed).
    pub disk_bytes: u64,
    /// Sum of the exact lengths of the live snapshots.
    pub logical_bytes: u64,
}

impl Store {
    /// Returns snapshot `snapshot_name` in the Lightsail `DiskSnapshot` shape.
    ///
    /// Returns `NotFoundException` if it does not exist.
    pub fn get_disk_snapshot(&self, snapshot_name: &str) -> Result<DiskSnapshot> {
        validate_resource_name("disk snapshot name", snapshot_name)?;
        let record = self.load_snapshot(snapshot_name)?;
        self.check_snapshot_access("lightsail:GetDiskSnapshot", &record)?;
        Ok(self.snapshot_shape(&record))
    }

    /// Lists snapshots in name order, [`SNAPSHOTS_PER_PAGE`] at a time. Pass the
    /// previous page's `next_page_token` to continue.
    pub fn get_disk_snapshots(&self, page_token: Option<&str>) -> Result<Page<DiskSnapshot>> {
        let start = match page_token {
            None => vec![keys::SNAPSHOT],
            Some(token) => {
                validate_resource_name("page token", token).map_err(|_| bad_token(token))?;
                keys::snapshot(token)
            }
        };
        let end = vec![keys::SNAPSHOT + 1];
        let mut items = Vec::new();
        let mut next_page_token = None;
        for entry in self.meta.range("snapshot", &start, &end) {
            let (_, value) = entry?;
            let record: SnapshotRecord = crate::storage::codec::decode("snapshot", &value)?;
            if items.len() == SNAPSHOTS_PER_PAGE {
                next_page_token = Some(record.name);
                break;
            }
            if self
                .check_snapshot_access("lightsail:GetDiskSnapshots", &record)
                .is_ok()
            {
                items.push(self.snapshot_shape(&record));
            }
        }
        Ok(Page {
            items,
            next_page_token,
        })
    }

    /// Returns operation `operation_id`.
    ///
    /// Returns `NotFoundException` if no operation has that id.
    pub fn get_operation(&self, operation_id: &str) -> Result<Operation> {
        let missing = || {
            Error::not_found(format!(
                "operation {operation_id:?} does not exist. Check the id with `get-operations`"
            ))
        };
        if operation_id.is_empty() || operation_id.len() > 128 {
            return Err(missing());
        }
        self.check_access("lightsail:GetOperation", "*", &[], None)?;
        let seq = operation_seq(&self.meta, operation_id)?.ok_or_else(missing)?;
        let record = self.load_operation(seq)?.ok_or_else(missing)?;
        self.operation_shape(&record.record)
    }

    /// Lists every operation from oldest to newest, [`OPERATIONS_PER_PAGE`] at a time.
    pub fn get_operations(&self, page_token: Option<&str>) -> Result<Page<Operation>> {
        self.check_access("lightsail:GetOperations", "*", &[], None)?;
        let first = parse_seq_token(page_token)?;
        let start = keys::operation(first.unwrap_or(0));
        let end = vec![keys::OPERATION + 1];
        self.operations_page("operation", &start, &end, first, |_, value| {
            crate::storage::codec::decode("operation", value).map(Some)
        })
    }

    /// Lists the operations on resource `resource_name` (a snapshot or a disk),
    /// oldest first, [`OPERATIONS_PER_PAGE`] at a time.
    pub fn get_operations_for_resource(
        &self,
        resource_name: &str,
        page_token: Option<&str>,
    ) -> Result<Page<Operation>> {
        validate_resource_name("resource name", resource_name)?;
        self.check_access("lightsail:GetOperationsForResource", "*", &[], None)?;
        let first = parse_seq_token(page_token)?;
        let start = keys::resource_entry(resource_name, first.unwrap_or(0));
        let mut end = keys::resource_prefix(resource_name);
        // The byte after the 0x00 separator ends this resource's range.
        if let Some(last) = end.last_mut() {
            *last = 1;
        }
        self.operations_page("operation index", &start, &end, first, |seq, _| {
            Ok(self.load_operation(seq)?.map(|operation| operation.record))
        })
    }

    /// Returns the page of operations whose `record_kind` keys lie in
    /// `start..end`. Each key ends in an operation's sequence number, and
    /// `load` reads the operation from it and the value (`None` skips it).
    /// The next page token is the sequence number of the first key left out,
    /// so a page token `first` must name the first key of the range.
    fn operations_page(
        &self,
        record_kind: &str,
        start: &[u8],
        end: &[u8],
        first: Option<u64>,
        load: impl Fn(u64, &[u8]) -> Result<Option<OperationRecord>>,
    ) -> Result<Page<Operation>> {
        let mut items = Vec::new();
        let mut next_page_token = None;
        let mut entries = self.meta.range(record_kind, start, end).peekable();
        if let Some(first) = first {
            let starts_there = match entries.peek() {
                Some(Ok((key, _))) => keys::trailing_u64(key) == Some(first),
                Some(Err(_)) => true,
                None => false,
            };
            if !starts_there {
                return Err(bad_token(&first.to_string()));
            }
        }
        for entry in entries {
            let (key, value) = entry?;
            let seq = keys::trailing_u64(&key).ok_or_else(|| bad_key(record_kind, &key))?;
            if items.len() == OPERATIONS_PER_PAGE {
                next_page_token = Some(seq.to_string());
                break;
            }
            if let Some(record) = load(seq, &value)? {
                items.push(self.operation_shape(&record)?);
            }
        }
        Ok(Page {
            items,
            next_page_token,
        })
    }

    /// Counts the store's snapshots, pages and blocks and measures its size on disk.
    pub fn stats(&self) -> Result<StoreStats> {
        let mut stats = StoreStats {
            snapshots: 0,
            pages: 0,
            blocks: 0,
            stored_bytes: 0,
            disk_bytes: 0,
            logical_bytes: 0,
        };
        for entry in self
            .meta
            .scan_records::<SnapshotRecord>("snapshot", &[keys::SNAPSHOT])
        {
            let (_, record) = entry?;
            stats.snapshots += 1;
            stats.logical_bytes += record.length;
        }
        for family in [keys::PAGE_BODY, keys::PAGE_DELTA] {
            for entry in self.meta.scan("page", &[family]) {
                entry?;
                stats.pages += 1;
            }
        }
        for entry in self.meta.scan("block", &[keys::BLOCK]) {
            entry?;
            stats.blocks += 1;
        }
        stats.stored_bytes = stats.blocks * u64::from(self.config.block_size);
        stats.disk_bytes = allocated_bytes(&self.path)?;
        Ok(stats)
    }

    pub(crate) fn snapshot_shape(&self, record: &SnapshotRecord) -> DiskSnapshot {
        DiskSnapshot {
            name: record.name.clone(),
            arn: Some(self.snapshot_arn(record.id)),
            support_code: Some(self.support_code(record.id)),
            created_at: Timestamp::from_unix_nanos(record.created_at),
            location: ResourceLocation {
                availability_zone: Some("all".to_owned()),
                region_name: Some(self.region),
            },
            resource_type: ResourceType::DiskSnapshot,
            tags: record
                .tags
                .iter()
                .map(|(key, value)| Tag {
                    key: key.clone(),
                    value: Some(value.clone()),
                })
                .collect(),
            size_in_gb: i32::try_from(record.length.div_ceil(GIB).max(1)).unwrap_or(i32::MAX),
            state: DiskSnapshotState::Completed,
            progress: Some("100%".to_owned()),
            from_disk_name: Some(record.disk_name.clone()),
            from_disk_arn: Some(self.disk_arn(&record.disk_name)),
            from_instance_name: None,
            from_instance_arn: None,
            is_from_auto_snapshot: false,
        }
    }
}

/// Parses a page token, which this store writes as a sequence number in
/// plain decimal digits. Another spelling of a number was not issued here.
fn parse_seq_token(token: Option<&str>) -> Result<Option<u64>> {
    let Some(token) = token else {
        return Ok(None);
    };
    let seq = token.parse::<u64>().map_err(|_| bad_token(token))?;
    if seq.to_string() != token {
        return Err(bad_token(token));
    }
    Ok(Some(seq))
}

fn bad_token(token: &str) -> Error {
    Error::invalid_input(format!(
        "page token {token:?} is not one this store issued. Pass the nextPageToken of the previous response, or omit it"
    ))
}

//! Key layout of the metadata database.
//!
//! All metadata lives in one sled tree so that every commit is a single atomic
//! `apply_batch`. Each key starts with a one-byte family tag; integers in keys
//! are big-endian so that sled's byte order is numeric order.
//!
//! | tag | key after the tag | value |
//! | --- | --- | --- |
//! | `c` | nothing | `StoreConfig` |
//! | `b` | block hash (32) | `BlockRecord` |
//! | `z` | block hash (32) | `Extent` of a copy that repair found damaged |
//! | `P` | page hash (32) | `PageBody` |
//! | `D` | page hash (32) | `PageDelta` |
//! | `e` | base page hash (32), delta page hash (32) | empty |
//! | `p` | page hash (32) | `PageCount` |
//! | `s` | snapshot name (UTF-8) | `SnapshotRecord` |
//! | `r` | snapshot id (8), page index (8) | page hash (32 raw bytes) |
//! | `w` | snapshot id (8) | `PendingCreate` |
//! | `k` | pack id (4) | `PackRecord` |
//! | `q` | sequence number (8) | `GcItem` |
//! | `d` | operation sequence number (8) | `PendingDelete` |
//! | `o` | operation sequence number (8) | `OperationRecord` |
//! | `i` | operation id (UTF-8) | operation sequence number (8) |
//! | `x` | resource name (UTF-8), 0x00, operation sequence number (8) | empty |

use super::hash::{BlockHash, PageHash};

pub(crate) const CONFIG: &[u8] = b"c";
pub(crate) const BLOCK: u8 = b'b';
pub(crate) const DAMAGED_BLOCK: u8 = b'z';
pub(crate) const PAGE_BODY: u8 = b'P';
pub(crate) const PAGE_DELTA: u8 = b'D';
pub(crate) const PAGE_EDGE: u8 = b'e';
pub(crate) const PAGE_COUNT: u8 = b'p';
pub(crate) const SNAPSHOT: u8 = b's';
pub(crate) const ROOT: u8 = b'r';
pub(crate) const PENDING_CREATE: u8 = b'w';
pub(crate) const PACK: u8 = b'k';
pub(crate) const GC_QUEUE: u8 = b'q';
pub(crate) const PENDING_DELETE: u8 = b'd';
pub(crate) const OPERATION: u8 = b'o';
pub(crate) const OPERATION_ID: u8 = b'i';
pub(crate) const RESOURCE_INDEX: u8 = b'x';

fn tagged(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len = 1 + parts.iter().map(|part| part.len()).sum::<usize>();
    let mut key = Vec::with_capacity(len);
    key.push(tag);
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

pub(crate) fn block(hash: &BlockHash) -> Vec<u8> {
    tagged(BLOCK, &[hash.as_bytes()])
}

/// Returns the key that marks the stored copy of `hash` as damaged, so that
/// the next create that reads the block stores it again.
pub(crate) fn damaged_block(hash: &BlockHash) -> Vec<u8> {
    tagged(DAMAGED_BLOCK, &[hash.as_bytes()])
}

pub(crate) fn page_body(hash: &PageHash) -> Vec<u8> {
    tagged(PAGE_BODY, &[hash.as_bytes()])
}

pub(crate) fn page_delta(hash: &PageHash) -> Vec<u8> {
    tagged(PAGE_DELTA, &[hash.as_bytes()])
}

/// Returns the key that records that delta page `delta` is based on page `base`.
pub(crate) fn page_edge(base: &PageHash, delta: &PageHash) -> Vec<u8> {
    tagged(PAGE_EDGE, &[base.as_bytes(), delta.as_bytes()])
}

/// Returns the prefix of the edge keys of every delta page based on `base`.
pub(crate) fn page_edge_prefix(base: &PageHash) -> Vec<u8> {
    tagged(PAGE_EDGE, &[base.as_bytes()])
}

/// Splits an edge key into (base, delta).
pub(crate) fn parse_page_edge(key: &[u8]) -> Option<(PageHash, PageHash)> {
    let rest = key.strip_prefix(&[PAGE_EDGE])?;
    let (base, delta) = rest.split_first_chunk::<32>()?;
    let delta: [u8; 32] = delta.try_into().ok()?;
    Some((PageHash::from_bytes(*base), PageHash::from_bytes(delta)))
}

pub(crate) fn page_count(hash: &PageHash) -> Vec<u8> {
    tagged(PAGE_COUNT, &[hash.as_bytes()])
}

pub(crate) fn snapshot(name: &str) -> Vec<u8> {
    tagged(SNAPSHOT, &[name.as_bytes()])
}

pub(crate) fn root_prefix(snapshot_id: u64) -> Vec<u8> {
    tagged(ROOT, &[&snapshot_id.to_be_bytes()])
}

pub(crate) fn root(snapshot_id: u64, page_index: u64) -> Vec<u8> {
    tagged(
        ROOT,
        &[&snapshot_id.to_be_bytes(), &page_index.to_be_bytes()],
    )
}

/// Splits a root key into (snapshot id, page index).
pub(crate) fn parse_root(key: &[u8]) -> Option<(u64, u64)> {
    let rest = key.strip_prefix(&[ROOT])?;
    let (id, index) = rest.split_first_chunk::<8>()?;
    let index: [u8; 8] = index.try_into().ok()?;
    Some((u64::from_be_bytes(*id), u64::from_be_bytes(index)))
}

pub(crate) fn pending_create(snapshot_id: u64) -> Vec<u8> {
    tagged(PENDING_CREATE, &[&snapshot_id.to_be_bytes()])
}

pub(crate) fn pack(pack_id: u32) -> Vec<u8> {
    tagged(PACK, &[&pack_id.to_be_bytes()])
}

pub(crate) fn gc_item(seq: u64) -> Vec<u8> {
    tagged(GC_QUEUE, &[&seq.to_be_bytes()])
}

pub(crate) fn pending_delete(operation_seq: u64) -> Vec<u8> {
    tagged(PENDING_DELETE, &[&operation_seq.to_be_bytes()])
}

pub(crate) fn operation(seq: u64) -> Vec<u8> {
    tagged(OPERATION, &[&seq.to_be_bytes()])
}

pub(crate) fn operation_id(id: &str) -> Vec<u8> {
    tagged(OPERATION_ID, &[id.as_bytes()])
}

pub(crate) fn resource_prefix(resource_name: &str) -> Vec<u8> {
    tagged(RESOURCE_INDEX, &[resource_name.as_bytes(), &[0]])
}

pub(crate) fn resource_entry(resource_name: &str, seq: u64) -> Vec<u8> {
    tagged(
        RESOURCE_INDEX,
        &[resource_name.as_bytes(), &[0], &seq.to_be_bytes()],
    )
}

/// Reads the big-endian integer that ends `key` (sequence numbers and ids).
pub(crate) fn trailing_u64(key: &[u8]) -> Option<u64> {
    let (_, tail) = key.split_last_chunk::<8>()?;
    Some(u64::from_be_bytes(*tail))
}

/// Reads the big-endian pack id that ends a pack key.
pub(crate) fn trailing_u32(key: &[u8]) -> Option<u32> {
    let (_, tail) = key.split_last_chunk::<4>()?;
    Some(u32::from_be_bytes(*tail))
}

/// Reads a 32-byte hash from the end of `key`.
pub(crate) fn trailing_hash(key: &[u8]) -> Option<[u8; 32]> {
    let (_, tail) = key.split_last_chunk::<32>()?;
    Some(*tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_keys_sort_by_page_index() {
        let first = root(7, 1);
        let second = root(7, 256);
        assert!(first < second);
        assert!(first.starts_with(&root_prefix(7)));
        assert_eq!(parse_root(&second), Some((7, 256)));
    }

    #[test]
    fn resource_prefix_does_not_match_longer_names() {
        let entry = resource_entry("snap-10", 3);
        assert!(!entry.starts_with(&resource_prefix("snap-1")));
        assert!(entry.starts_with(&resource_prefix("snap-10")));
        assert_eq!(trailing_u64(&entry), Some(3));
    }
}

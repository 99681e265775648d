//! Content addresses: the blake3 hash of a block, and of a page of block hashes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Length in bytes of every content address.
pub const HASH_LEN: usize = 32;

/// Context string that separates page addresses from block addresses, so a block
/// whose bytes happen to equal a page encoding never shares its address.
const PAGE_HASH_CONTEXT: &str = "blocksnap 2026-12 page of block hashes v1";

/// Address of a block: blake3 of its bytes. The all-zero value stands for a block
/// of zero bytes, which is never stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct BlockHash([u8; HASH_LEN]);

/// Address of a page: blake3 (in derive-key mode) of the page's encoding. The
/// all-zero value stands for a page whose blocks are all zero blocks, which is
/// never stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct PageHash([u8; HASH_LEN]);

impl BlockHash {
    /// The address that marks a zero block.
    pub const ZERO: BlockHash = BlockHash([0; HASH_LEN]);

    /// Hashes a block's bytes.
    pub fn of(bytes: &[u8]) -> BlockHash {
        BlockHash(*blake3::hash(bytes).as_bytes())
    }

    /// Wraps raw hash bytes.
    pub fn from_bytes(bytes: [u8; HASH_LEN]) -> BlockHash {
        BlockHash(bytes)
    }

    /// The raw hash bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// True for the zero-block marker.
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// Lower-case hexadecimal form, as `b3sum` prints it.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl PageHash {
    /// The address that marks an all-zero page.
    pub const ZERO: PageHash = PageHash([0; HASH_LEN]);

    /// Hashes a page's encoding.
    pub fn of(encoding: &[u8]) -> PageHash {
        let mut hasher = blake3::Hasher::new_derive_key(PAGE_HASH_CONTEXT);
        hasher.update(encoding);
        PageHash(*hasher.finalize().as_bytes())
    }

    /// Wraps raw hash bytes.
    pub fn from_bytes(bytes: [u8; HASH_LEN]) -> PageHash {
        PageHash(bytes)
    }

    /// The raw hash bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// True for the all-zero-page marker.
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// Lower-case hexadecimal form.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

impl fmt::Debug for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockHash({})", self.to_hex())
    }
}

impl fmt::Display for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PageHash({})", self.to_hex())
    }
}

impl fmt::Display for PageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_hash_matches_blake3() {
        let hash = BlockHash::of(b"abc");
        assert_eq!(
            hash.to_hex(),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
    }

    #[test]
    fn page_hash_differs_from_block_hash() {
        let bytes = b"same bytes";
        assert_ne!(
            BlockHash::of(bytes).as_bytes(),
            PageHash::of(bytes).as_bytes()
        );
    }

    #[test]
    fn zero_markers_are_zero() {
        assert!(BlockHash::ZERO.is_zero());
        assert!(PageHash::ZERO.is_zero());
        assert!(!BlockHash::of(&[0u8; 4096]).is_zero());
    }
}

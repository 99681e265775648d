//! A disk image that is zero except for a few blocks, for tests that need
//! snapshots of many pages without hashing or storing much.

// Each test crate compiles this module and uses only some of the helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom};

use crate::common::{random_bytes, BLOCK};

/// An image of `len` bytes, zero except for the blocks in `blocks`, each
/// filled from its seed with [`random_bytes`]. Reading zero ranges costs
/// nothing but the copy.
#[derive(Debug, Clone)]
pub struct SparseImage {
    pub len: u64,
    /// Block index to seed.
    pub blocks: BTreeMap<u64, u64>,
    pub position: u64,
}

impl SparseImage {
    pub fn new(len: u64, blocks: BTreeMap<u64, u64>) -> Self {
        SparseImage {
            len,
            blocks,
            position: 0,
        }
    }

    /// Returns the bytes of a block filled from `seed`.
    pub fn block_bytes(seed: u64) -> Vec<u8> {
        random_bytes(seed, BLOCK)
    }

    /// Returns the bytes of block `index` within the image's length.
    pub fn block_at(&self, index: u64) -> Vec<u8> {
        let start = index * BLOCK as u64;
        let len = (self.len - start).min(BLOCK as u64) as usize;
        match self.blocks.get(&index) {
            Some(seed) => Self::block_bytes(*seed)[..len].to_vec(),
            None => vec![0; len],
        }
    }
}

impl Read for SparseImage {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.position >= self.len {
            return Ok(0);
        }
        let block = self.position / BLOCK as u64;
        let within = (self.position % BLOCK as u64) as usize;
        let left_in_block = BLOCK - within;
        let left_in_image = usize::try_from(self.len - self.position).unwrap_or(usize::MAX);
        let count = buffer.len().min(left_in_block).min(left_in_image);
        match self.blocks.get(&block) {
            Some(seed) => {
                let bytes = Self::block_bytes(*seed);
                buffer[..count].copy_from_slice(&bytes[within..within + count]);
            }
            None => buffer[..count].fill(0),
        }
        self.position += count as u64;
        Ok(count)
    }
}

impl Seek for SparseImage {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let position = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = position
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}

/// Compares restored bytes with a sparse image as they arrive, so a restore
/// of hundreds of MiB needs no buffer.
pub struct CompareWriter<'a> {
    pub expected: &'a SparseImage,
    pub offset: u64,
    /// Offset of the first wrong byte.
    pub mismatch: Option<u64>,
}

impl<'a> CompareWriter<'a> {
    pub fn new(expected: &'a SparseImage) -> Self {
        CompareWriter {
            expected,
            offset: 0,
            mismatch: None,
        }
    }
}

impl io::Write for CompareWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < bytes.len() && self.mismatch.is_none() {
            let index = self.offset / BLOCK as u64;
            let within = (self.offset % BLOCK as u64) as usize;
            if self.offset >= self.expected.len {
                self.mismatch = Some(self.offset);
                break;
            }
            let block = self.expected.block_at(index);
            let count = (block.len() - within).min(bytes.len() - done);
            if block[within..within + count] != bytes[done..done + count] {
                self.mismatch = Some(self.offset);
                break;
            }
            done += count;
            self.offset += count as u64;
        }
        if self.mismatch.is_some() {
            self.offset += (bytes.len() - done) as u64;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

//! The one place where persisted records become bytes and back.
//!
//! Every record is a one-byte format version followed by its bincode 2 encoding
//! (standard configuration: little endian, variable-length integers). Decoding
//! is limited to [`MAX_RECORD_BYTES`] and must consume the whole value, so that
//! corrupt bytes give a corruption error, never a panic or a huge allocation.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// Format version written in front of every record.
pub(crate) const RECORD_VERSION: u8 = 1;

/// Upper bound on the size of one decoded record, in bytes. The largest record
/// is a page body (1,024 hashes of 32 bytes) or a GC queue item.
pub(crate) const MAX_RECORD_BYTES: usize = 4 << 20;

fn config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_RECORD_BYTES>,
> {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

/// Encodes `record` with its format version.
pub(crate) fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>> {
    let mut bytes = vec![RECORD_VERSION];
    bincode::serde::encode_into_std_write(record, &mut bytes, config()).map_err(|error| {
        Error::service("encoding a metadata record failed; this is a bug in blocksnap")
            .with_source(error)
    })?;
    Ok(bytes)
}

/// Decodes a record of kind `what` (named in the error) from `bytes`.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    let Some((&version, body)) = bytes.split_first() else {
        return Err(Error::corruption(format!(
            "the stored {what} record is empty. Run `blocksnap verify` and restore the store from a copy"
        )));
    };
    if version != RECORD_VERSION {
        return Err(Error::corruption(format!(
            "the stored {what} record has format version {version}, but this build reads version {RECORD_VERSION}. \
             Open the store with the blocksnap release that wrote it"
        )));
    }
    let (record, used) = bincode::serde::decode_from_slice(body, config()).map_err(|error| {
        Error::corruption(format!(
            "the stored {what} record does not decode. Run `blocksnap verify` and restore the store from a copy"
        ))
        .with_source(error)
    })?;
    if used != body.len() {
        return Err(Error::corruption(format!(
            "the stored {what} record has {} trailing bytes. Run `blocksnap verify` and restore the store from a copy",
            body.len() - used
        )));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        name: String,
        count: u64,
        list: Vec<u32>,
    }

    fn sample() -> Sample {
        Sample {
            name: "a".into(),
            count: 7,
            list: vec![1, 2, 3],
        }
    }

    #[test]
    fn round_trip() {
        let sample = sample();
        let bytes = encode(&sample).unwrap();
        assert_eq!(decode::<Sample>("sample", &bytes).unwrap(), sample);
    }

    #[test]
    fn corrupt_bytes_are_errors() {
        let sample = sample();
        let bytes = encode(&sample).unwrap();
        for cut in 0..bytes.len() {
            let result = decode::<Sample>("sample", &bytes[..cut]);
            assert_eq!(
                result.unwrap_err().kind(),
                ErrorKind::Corruption,
                "cut at {cut}"
            );
        }
        let mut wrong_version = bytes.clone();
        wrong_version[0] = 9;
        assert!(decode::<Sample>("sample", &wrong_version).is_err());
        let mut trailing = bytes;
        trailing.push(0);
        assert!(decode::<Sample>("sample", &trailing).is_err());
    }

    #[test]
    fn huge_length_prefix_is_rejected_without_allocating() {
        // Version byte, then a varint length of about 2^62 for the string.
        let bytes = [
            RECORD_VERSION,
            0xFF,
            0xFF,
            0xFF,
            0xFF,
            0xFF,
            0xFF,
            0xFF,
            0x3F,
            0x00,
        ];
        assert!(decode::<Sample>("sample", &bytes).is_err());
    }
}

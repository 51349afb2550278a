//! The dense index: one fixed 32-byte entry per log index, so the position of entry `i`
//! is found with one multiplication and one small read.
//!
//! Entry layout (big-endian; DLedger's index record shape: magic, pos, size, index, term):
//!
//! | offset | bytes | field                                                        |
//! |-------:|------:|--------------------------------------------------------------|
//! |      0 |     4 | magic: `"DLI"` + kind code (`0x444C4901` normal, `…02` noop) |
//! |      4 |     8 | pos of the record in the data address space                  |
//! |     12 |     4 | size of the whole record (header + body)                     |
//! |     20 |     8 | index                                                        |
//! |     28 |     8 | term                                                         |
//!
//! Entry `i` lives at index-address `(i - base_index) * 32`, where `base_index` is fixed
//! per group (0 gives DLedger's `i * 32`). The index address space is cut into segments
//! named like data segments (see [`super::segment`]); 32 divides every segment size, so
//! an entry never spans index files.
//!
//! The index carries no CRC of its own: it is derived from the data records (which are
//! CRC-protected) and is rebuilt from them for the tail after the last checkpoint.
//! Readers cross-check an entry against the record header it points to.

use thiserror::Error;

use super::record::{EncodeError, HEADER_BYTES_U64, RecordHeader, RecordKind};

/// Size of one index entry.
pub const INDEX_ENTRY_BYTES: usize = 32;
/// [`INDEX_ENTRY_BYTES`] as a `u64`.
pub const INDEX_ENTRY_BYTES_U64: u64 = INDEX_ENTRY_BYTES as u64;
/// High three bytes of an index entry's magic (`"DLI"`); the low byte is the kind code.
const INDEX_MAGIC_PREFIX: u32 = 0x444C_4900;

/// Where a log entry's record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexEntry {
    pub kind: RecordKind,
    pub pos: u64,
    /// Header + body bytes of the record.
    pub record_bytes: u32,
    pub index: u64,
    pub term: u64,
}

impl IndexEntry {
    /// The entry for a record; `None` only if the record is larger than 4 GiB, which
    /// a decoded or placed record never is (segments are at most 4 GiB).
    pub fn from_header(header: &RecordHeader) -> Option<IndexEntry> {
        Some(IndexEntry {
            kind: header.kind,
            pos: header.pos,
            record_bytes: u32::try_from(header.record_bytes()).ok()?,
            index: header.index,
            term: header.term,
        })
    }

    /// Whether `header` is the record this entry points to.
    pub fn matches(&self, header: &RecordHeader) -> bool {
        self.kind == header.kind
            && self.pos == header.pos
            && u64::from(self.record_bytes) == header.record_bytes()
            && self.index == header.index
            && self.term == header.term
    }
}

/// Why bytes are not a valid index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum IndexDecodeError {
    #[error("index entry truncated: need {INDEX_ENTRY_BYTES} bytes, have {have}")]
    Truncated { have: usize },
    #[error("bad index entry magic {found:#010x}")]
    BadMagic { found: u32 },
    #[error("index entry record size {record_bytes} is outside 48..={max_record_bytes}")]
    BadRecordSize {
        record_bytes: u32,
        max_record_bytes: u32,
    },
    #[error("index entry has index or term 0 (index {index}, term {term})")]
    ZeroIndexOrTerm { index: u64, term: u64 },
    #[error("index entry record at pos {pos} overflows the address space")]
    PositionOverflow { pos: u64 },
    #[error("noop index entry with record size {record_bytes} (must be 48)")]
    NoopWithBody { record_bytes: u32 },
}

/// Writes `entry` into `out[..INDEX_ENTRY_BYTES]`.
pub fn encode_index_entry(entry: &IndexEntry, out: &mut [u8]) -> Result<usize, EncodeError> {
    let have = out.len();
    let o = out
        .get_mut(..INDEX_ENTRY_BYTES)
        .ok_or(EncodeError::OutputTooSmall {
            needed: INDEX_ENTRY_BYTES,
            have,
        })?;
    let magic = INDEX_MAGIC_PREFIX | u32::from(entry.kind.code());
    o[0..4].copy_from_slice(&magic.to_be_bytes());
    o[4..12].copy_from_slice(&entry.pos.to_be_bytes());
    o[12..16].copy_from_slice(&entry.record_bytes.to_be_bytes());
    o[16..24].copy_from_slice(&entry.index.to_be_bytes());
    o[24..32].copy_from_slice(&entry.term.to_be_bytes());
    Ok(INDEX_ENTRY_BYTES)
}

/// Decodes the index entry at the start of `bytes`. An all-zero slot (never written)
/// is `Ok(None)`.
pub fn decode_index_entry(
    bytes: &[u8],
    max_record_bytes: u32,
) -> Result<Option<IndexEntry>, IndexDecodeError> {
    let b: &[u8; INDEX_ENTRY_BYTES] = bytes
        .get(..INDEX_ENTRY_BYTES)
        .and_then(|s| s.try_into().ok())
        .ok_or(IndexDecodeError::Truncated { have: bytes.len() })?;
    if b.iter().all(|&x| x == 0) {
        return Ok(None);
    }
    let u32_at = |at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let u64_at = |at: usize| {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[at..at + 8]);
        u64::from_be_bytes(v)
    };
    let magic = u32_at(0);
    let kind = if magic & !0xFF == INDEX_MAGIC_PREFIX {
        RecordKind::from_code((magic & 0xFF) as u8)
    } else {
        None
    }
    .ok_or(IndexDecodeError::BadMagic { found: magic })?;
    let entry = IndexEntry {
        kind,
        pos: u64_at(4),
        record_bytes: u32_at(12),
        index: u64_at(16),
        term: u64_at(24),
    };
    if u64::from(entry.record_bytes) < HEADER_BYTES_U64 || entry.record_bytes > max_record_bytes {
        return Err(IndexDecodeError::BadRecordSize {
            record_bytes: entry.record_bytes,
            max_record_bytes,
        });
    }
    if kind == RecordKind::Noop && u64::from(entry.record_bytes) != HEADER_BYTES_U64 {
        return Err(IndexDecodeError::NoopWithBody {
            record_bytes: entry.record_bytes,
        });
    }
    if entry.index == 0 || entry.term == 0 {
        return Err(IndexDecodeError::ZeroIndexOrTerm {
            index: entry.index,
            term: entry.term,
        });
    }
    if entry
        .pos
        .checked_add(u64::from(entry.record_bytes))
        .is_none()
    {
        return Err(IndexDecodeError::PositionOverflow { pos: entry.pos });
    }
    Ok(Some(entry))
}

/// Index-address of entry `index` when the index starts at `base_index`
/// (`None` below the base or on overflow).
pub fn index_offset(base_index: u64, index: u64) -> Option<u64> {
    index
        .checked_sub(base_index)?
        .checked_mul(INDEX_ENTRY_BYTES_U64)
}

/// The log index whose entry starts at index-address `offset` (`None` if `offset` is
/// not on an entry boundary or on overflow).
pub fn index_at_offset(base_index: u64, offset: u64) -> Option<u64> {
    if offset % INDEX_ENTRY_BYTES_U64 != 0 {
        return None;
    }
    base_index.checked_add(offset / INDEX_ENTRY_BYTES_U64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::DEFAULT_MAX_RECORD_BYTES;

    #[test]
    fn round_trip_and_layout() {
        let h = RecordHeader::normal(5, 2, 1 << 30, b"body").unwrap();
        let e = IndexEntry::from_header(&h).unwrap();
        assert!(e.matches(&h));
        let mut out = [0u8; 32];
        assert_eq!(encode_index_entry(&e, &mut out), Ok(32));
        assert_eq!(&out[0..4], &[0x44, 0x4C, 0x49, 1]);
        assert_eq!(&out[4..12], &(1u64 << 30).to_be_bytes());
        assert_eq!(&out[12..16], &52u32.to_be_bytes());
        assert_eq!(&out[16..24], &5u64.to_be_bytes());
        assert_eq!(&out[24..32], &2u64.to_be_bytes());
        assert_eq!(
            decode_index_entry(&out, DEFAULT_MAX_RECORD_BYTES),
            Ok(Some(e))
        );

        let n = IndexEntry::from_header(&RecordHeader::noop(6, 3, 0)).unwrap();
        encode_index_entry(&n, &mut out).unwrap();
        assert_eq!(
            decode_index_entry(&out, DEFAULT_MAX_RECORD_BYTES),
            Ok(Some(n))
        );
        assert!(!n.matches(&h));
    }

    #[test]
    fn empty_bad_and_short_slots() {
        assert_eq!(decode_index_entry(&[0u8; 32], 1000), Ok(None));
        assert_eq!(
            decode_index_entry(&[0u8; 31], 1000),
            Err(IndexDecodeError::Truncated { have: 31 })
        );
        let e =
            IndexEntry::from_header(&RecordHeader::normal(1, 1, 0, &[0; 100]).unwrap()).unwrap();
        let mut out = [0u8; 32];
        encode_index_entry(&e, &mut out).unwrap();
        assert!(matches!(
            decode_index_entry(&out, 147),
            Err(IndexDecodeError::BadRecordSize { .. })
        ));
        let mut bad = out;
        bad[3] = 3;
        assert!(matches!(
            decode_index_entry(&bad, 1000),
            Err(IndexDecodeError::BadMagic { .. })
        ));
        let mut zero_term = out;
        zero_term[24..32].fill(0);
        assert!(matches!(
            decode_index_entry(&zero_term, 1000),
            Err(IndexDecodeError::ZeroIndexOrTerm { .. })
        ));
    }

    #[test]
    fn offsets() {
        assert_eq!(index_offset(0, 3), Some(96));
        assert_eq!(index_offset(1, 1), Some(0));
        assert_eq!(index_offset(10, 9), None);
        assert_eq!(index_offset(0, u64::MAX), None);
        assert_eq!(index_at_offset(1, 64), Some(3));
        assert_eq!(index_at_offset(1, 65), None);
        for i in [1u64, 2, 1000, 5_242_880] {
            assert_eq!(index_at_offset(1, index_offset(1, i).unwrap()), Some(i));
        }
    }
}

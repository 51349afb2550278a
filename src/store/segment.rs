//! Segment files: naming, position math and the end-of-segment filler.
//!
//! A group's data is one address space of byte positions cut into equal segments of
//! `segment_bytes` (DLedger's `mappedFileSizeForEntryData`, default 1 GiB). Segment `k`
//! holds positions `[k * segment_bytes, (k + 1) * segment_bytes)` and its file is named
//! by its start position as 20 zero-padded decimal digits, like DLedger and RocketMQ
//! (`00000000000000000000`, `00000000001073741824`, ...).
//!
//! Records never span segments. When a record does not fit in the rest of a segment,
//! the rest becomes an end-of-segment filler and the record starts at the next
//! segment's start. Filler layout (big-endian, DLedger's convention):
//!
//! | offset | bytes | field                                                 |
//! |-------:|------:|-------------------------------------------------------|
//! |      0 |     4 | [`FILLER_MAGIC`] (`0xFFFF_FFFF`, DLedger's int -1)    |
//! |      4 |     4 | bytes from the filler's start to the segment's end    |
//!
//! The bytes after those 8 stay as they are (zero in a preallocated segment). When less
//! than [`FILLER_BYTES`] remain, no filler is written: the segment is full by
//! position alone. The filler must be durable no later than the first record written
//! after it, or recovery sees the log end before it (and the checkpoint then reports
//! the loss as corruption rather than silently dropping acknowledged records).

use std::fmt;

use thiserror::Error;

use super::record::EncodeError;

/// Default segment size: DLedger's `mappedFileSizeForEntryData`.
pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
/// Default index segment size: DLedger's `mappedFileSizeForEntryIndex` (160 MiB,
/// 5,242,880 index entries of 32 bytes).
pub const DEFAULT_INDEX_SEGMENT_BYTES: u64 = 160 << 20;
/// Segments are multiples of this, so every supported block size divides them and
/// a segment start is always block aligned.
pub const SEGMENT_GRANULE_BYTES: u64 = 4096;
/// Largest segment: fillers store the remaining length in 32 bits.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 32;
/// Number of digits in a segment file name.
pub const SEGMENT_NAME_LEN: usize = 20;
/// First word of an end-of-segment filler.
pub const FILLER_MAGIC: u32 = 0xFFFF_FFFF;
/// Size of the filler marker (magic + remaining length).
pub const FILLER_BYTES: usize = 8;

/// A segment file name: its start position, shown as 20 zero-padded digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentName(pub u64);

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:020}", self.0)
    }
}

/// Why a file name is not a segment name.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SegmentNameError {
    #[error("segment file name {name:?} is not {SEGMENT_NAME_LEN} characters long")]
    WrongLength { name: String },
    #[error("segment file name {name:?} has a character that is not a decimal digit")]
    NotDigits { name: String },
    #[error("segment file name {name:?} is beyond the 64-bit position range")]
    OutOfRange { name: String },
}

/// Parses a segment file name (exactly 20 ASCII digits) into its start position.
pub fn parse_segment_name(name: &str) -> Result<u64, SegmentNameError> {
    if name.len() != SEGMENT_NAME_LEN {
        return Err(SegmentNameError::WrongLength { name: name.into() });
    }
    if !name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SegmentNameError::NotDigits { name: name.into() });
    }
    name.parse::<u64>()
        .map_err(|_| SegmentNameError::OutOfRange { name: name.into() })
}

/// Why a segment size is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum GeometryError {
    #[error(
        "segment size {segment_bytes} must be a multiple of {SEGMENT_GRANULE_BYTES} \
         between {SEGMENT_GRANULE_BYTES} and {SEGMENT_BYTES_MAX} bytes"
    )]
    BadSegmentBytes { segment_bytes: u64 },
}

/// Why a record cannot be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum PlaceError {
    #[error("record of {record_bytes} bytes cannot fit in a segment of {segment_bytes} bytes")]
    RecordLargerThanSegment {
        record_bytes: u64,
        segment_bytes: u64,
    },
    #[error("position {pos} is at the end of the 64-bit address space")]
    PositionOverflow { pos: u64 },
}

/// An end-of-segment filler to write at `pos`, covering `len` bytes up to the segment end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Filler {
    pub pos: u64,
    pub len: u32,
}

/// Where the next record goes, given the current end of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Placement {
    /// A filler to write first (only when the record moves to the next segment and at
    /// least [`FILLER_BYTES`] remain in the current one).
    pub filler: Option<Filler>,
    /// Position of the record's header.
    pub record_pos: u64,
}

/// The segment size of one log (data or index) and the position math over it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SegmentGeometry {
    segment_bytes: u64,
}

impl SegmentGeometry {
    /// Checks `segment_bytes`: a multiple of [`SEGMENT_GRANULE_BYTES`], at most
    /// [`SEGMENT_BYTES_MAX`].
    pub fn new(segment_bytes: u64) -> Result<Self, GeometryError> {
        if segment_bytes == 0
            || segment_bytes % SEGMENT_GRANULE_BYTES != 0
            || segment_bytes > SEGMENT_BYTES_MAX
        {
            return Err(GeometryError::BadSegmentBytes { segment_bytes });
        }
        Ok(SegmentGeometry { segment_bytes })
    }

    pub const fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }

    /// Start position of the segment holding `pos`.
    pub const fn segment_start(&self, pos: u64) -> u64 {
        pos - pos % self.segment_bytes
    }

    /// The file name of the segment holding `pos`.
    pub const fn segment_name(&self, pos: u64) -> SegmentName {
        SegmentName(self.segment_start(pos))
    }

    /// Offset of `pos` inside its segment file.
    pub const fn offset_in_segment(&self, pos: u64) -> u64 {
        pos % self.segment_bytes
    }

    /// Bytes from `pos` to the end of its segment (always at least 1).
    pub const fn remaining_in_segment(&self, pos: u64) -> u64 {
        self.segment_bytes - pos % self.segment_bytes
    }

    /// Start of the segment after the one holding `pos` (`None` past the address space).
    pub const fn next_segment_start(&self, pos: u64) -> Option<u64> {
        self.segment_start(pos).checked_add(self.segment_bytes)
    }

    /// Whether `start` may be a segment's start (and so a segment file's name).
    pub const fn is_segment_start(&self, start: u64) -> bool {
        start % self.segment_bytes == 0
    }

    /// Where a record of `record_bytes` goes when the log currently ends at `pos`.
    pub fn place_record(&self, pos: u64, record_bytes: u64) -> Result<Placement, PlaceError> {
        if record_bytes > self.segment_bytes {
            return Err(PlaceError::RecordLargerThanSegment {
                record_bytes,
                segment_bytes: self.segment_bytes,
            });
        }
        let remaining = self.remaining_in_segment(pos);
        if record_bytes <= remaining {
            return Ok(Placement {
                filler: None,
                record_pos: pos,
            });
        }
        let record_pos = self
            .next_segment_start(pos)
            .ok_or(PlaceError::PositionOverflow { pos })?;
        let filler = if remaining >= FILLER_BYTES as u64 {
            // remaining < segment_bytes <= 2^32, so it fits.
            let len = u32::try_from(remaining).map_err(|_| PlaceError::PositionOverflow { pos })?;
            Some(Filler { pos, len })
        } else {
            None
        };
        Ok(Placement { filler, record_pos })
    }
}

/// Writes the filler marker for a filler of `filler_len` bytes into `out[..FILLER_BYTES]`.
pub fn encode_filler(filler_len: u32, out: &mut [u8]) -> Result<usize, EncodeError> {
    let have = out.len();
    let dst = out
        .get_mut(..FILLER_BYTES)
        .ok_or(EncodeError::OutputTooSmall {
            needed: FILLER_BYTES,
            have,
        })?;
    dst[..4].copy_from_slice(&FILLER_MAGIC.to_be_bytes());
    dst[4..].copy_from_slice(&filler_len.to_be_bytes());
    Ok(FILLER_BYTES)
}

/// The length stored in a filler marker at the start of `bytes`, if one is there.
/// The caller checks it against the real distance to the segment end.
pub fn read_filler(bytes: &[u8]) -> Option<u32> {
    let m = bytes.get(..FILLER_BYTES)?;
    let magic = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
    (magic == FILLER_MAGIC).then(|| u32::from_be_bytes([m[4], m[5], m[6], m[7]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_format_and_parse() {
        assert_eq!(SegmentName(0).to_string(), "00000000000000000000");
        assert_eq!(SegmentName(1 << 30).to_string(), "00000000001073741824");
        assert_eq!(SegmentName(u64::MAX).to_string(), "18446744073709551615");
        assert_eq!(parse_segment_name("00000000001073741824"), Ok(1 << 30));
        assert_eq!(parse_segment_name("18446744073709551615"), Ok(u64::MAX));
        assert!(matches!(
            parse_segment_name("18446744073709551616"),
            Err(SegmentNameError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_segment_name("0000000000107374182"),
            Err(SegmentNameError::WrongLength { .. })
        ));
        assert!(matches!(
            parse_segment_name("+0000000001073741824"),
            Err(SegmentNameError::NotDigits { .. })
        ));
        assert!(matches!(
            parse_segment_name("0000000000107374182\u{e9}"),
            Err(SegmentNameError::WrongLength { .. }) | Err(SegmentNameError::NotDigits { .. })
        ));
    }

    #[test]
    fn geometry_bounds() {
        assert!(SegmentGeometry::new(0).is_err());
        assert!(SegmentGeometry::new(4095).is_err());
        assert!(SegmentGeometry::new(SEGMENT_BYTES_MAX + 4096).is_err());
        assert!(SegmentGeometry::new(SEGMENT_BYTES_MAX).is_ok());
        assert!(SegmentGeometry::new(DEFAULT_SEGMENT_BYTES).is_ok());
        assert!(SegmentGeometry::new(DEFAULT_INDEX_SEGMENT_BYTES).is_ok());
    }

    #[test]
    fn position_math() {
        let g = SegmentGeometry::new(8192).unwrap();
        assert_eq!(g.segment_start(8191), 0);
        assert_eq!(g.segment_start(8192), 8192);
        assert_eq!(g.offset_in_segment(8200), 8);
        assert_eq!(g.remaining_in_segment(8200), 8184);
        assert_eq!(g.next_segment_start(8200), Some(16384));
        assert_eq!(g.segment_name(20000).to_string(), "00000000000000016384");
        assert!(g.is_segment_start(16384) && !g.is_segment_start(16000));
        assert_eq!(g.next_segment_start(u64::MAX), None);
    }

    #[test]
    fn placement_and_fillers() {
        let g = SegmentGeometry::new(4096).unwrap();
        // Fits exactly up to the end.
        assert_eq!(
            g.place_record(4000, 96),
            Ok(Placement {
                filler: None,
                record_pos: 4000
            })
        );
        // Does not fit: filler covers the rest.
        assert_eq!(
            g.place_record(4000, 97),
            Ok(Placement {
                filler: Some(Filler { pos: 4000, len: 96 }),
                record_pos: 4096
            })
        );
        // Less than a filler marker left: no filler.
        assert_eq!(
            g.place_record(4090, 48),
            Ok(Placement {
                filler: None,
                record_pos: 4096
            })
        );
        assert!(matches!(
            g.place_record(0, 4097),
            Err(PlaceError::RecordLargerThanSegment { .. })
        ));
        let mut buf = [0u8; 8];
        encode_filler(96, &mut buf).unwrap();
        assert_eq!(buf, [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 96]);
        assert_eq!(read_filler(&buf), Some(96));
        assert_eq!(read_filler(&buf[..7]), None);
        assert_eq!(read_filler(&[0u8; 8]), None);
        assert!(encode_filler(1, &mut buf[..7]).is_err());
    }
}

//! The commitlog record: a fixed 48-byte header followed by the body.
//!
//! Byte layout (all integers big-endian, as DLedger writes them):
//!
//! | offset | bytes | field                                                        |
//! |-------:|------:|--------------------------------------------------------------|
//! |      0 |     4 | magic [`RECORD_MAGIC`] (`"DLRR"`)                            |
//! |      4 |     1 | format version [`RECORD_VERSION`]                            |
//! |      5 |     1 | kind: 1 = normal, 2 = noop (DLedger's magic values)          |
//! |      6 |     2 | header length = [`HEADER_BYTES`]                             |
//! |      8 |     8 | index (>= 1)                                                 |
//! |     16 |     8 | term (>= 1)                                                  |
//! |     24 |     8 | pos: absolute byte offset of this header in the group's      |
//! |        |       | data address space (DLedger's `pos`)                         |
//! |     32 |     4 | body length `n`                                              |
//! |     36 |     4 | body CRC32 (IEEE, crc32fast) of the `n` body bytes           |
//! |     40 |     4 | prev CRC: header CRC of the previous record (0: first record)|
//! |     44 |     4 | header CRC32 of bytes 0..44 (so it also covers the body CRC) |
//! |     48 |     n | body                                                         |
//!
//! Why these choices:
//! - A 48-byte header (a multiple of 8) keeps the size DLedger uses, so a RocketMQ
//!   message stored as a body keeps `PHYSICALOFFSET = pos + 48`.
//! - The header CRC is separate from the body CRC so a reader can trust the body length
//!   (and so the record's extent) before it has the body; a torn header is never taken
//!   for a huge record.
//! - `pos` inside the record lets recovery reject stale bytes from a recycled segment or
//!   an older write at another address.
//! - The body CRC is computed once by the leader; followers and recovery verify it.
//! - The prev CRC chains each record to the one before it (DLedger's unused `chainCrc`
//!   idea, made real). Stale bytes left past the end of the log (a write that landed
//!   past a lost one, or entries Raft truncated) then cannot be re-linked behind a new
//!   record of the same size: their prev CRC names the record they followed, not the
//!   new one. Replicas with matching logs have identical headers, so the chain is the
//!   same on every replica. The first record of a log has 0; a reader that does not
//!   know a record's predecessor (the start of what it reads) accepts any link.

use thiserror::Error;

/// Size of a record header in bytes.
pub const HEADER_BYTES: usize = 48;
/// [`HEADER_BYTES`] as a `u64`, for position arithmetic.
pub const HEADER_BYTES_U64: u64 = HEADER_BYTES as u64;
/// `"DLRR"`: first four bytes of every record.
pub const RECORD_MAGIC: u32 = 0x444C_5252;
/// The only record format version this code reads and writes.
pub const RECORD_VERSION: u8 = 1;
/// A sensible default bound on a whole record (header + body): RocketMQ's default
/// 4 MiB message plus the header. Callers pass their own bound to the decoders.
pub const DEFAULT_MAX_RECORD_BYTES: u32 = (4 << 20) + HEADER_BYTES as u32;

/// Offset of the header CRC: it covers every header byte before it.
const HEADER_CRC_AT: usize = 44;

/// What a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A client's entry.
    Normal,
    /// The empty entry a new Raft leader appends in its term (body is always empty).
    Noop,
}

impl RecordKind {
    /// The byte stored at header offset 5.
    pub const fn code(self) -> u8 {
        match self {
            RecordKind::Normal => 1,
            RecordKind::Noop => 2,
        }
    }

    /// The kind stored as `code`, if any.
    pub const fn from_code(code: u8) -> Option<RecordKind> {
        match code {
            1 => Some(RecordKind::Normal),
            2 => Some(RecordKind::Noop),
            _ => None,
        }
    }
}

/// The decoded header fields of a record (magic, version and header length are implied).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordHeader {
    pub kind: RecordKind,
    pub index: u64,
    pub term: u64,
    /// Absolute position of the record's first header byte.
    pub pos: u64,
    pub body_len: u32,
    /// CRC32 of the body (0 for an empty body).
    pub body_crc: u32,
    /// Header CRC of the previous record in the log (0 for the first record).
    pub prev_crc: u32,
}

impl RecordHeader {
    /// The header of a normal record carrying `body`; computes the body CRC (the only
    /// time it is computed on the leader).
    pub fn normal(index: u64, term: u64, pos: u64, body: &[u8]) -> Result<Self, EncodeError> {
        let body_len = u32::try_from(body.len()).map_err(|_| EncodeError::BodyTooLong {
            body_len: body.len(),
        })?;
        Ok(RecordHeader {
            kind: RecordKind::Normal,
            index,
            term,
            pos,
            body_len,
            body_crc: crc32fast::hash(body),
            prev_crc: 0,
        })
    }

    /// The header of a new leader's empty entry.
    pub fn noop(index: u64, term: u64, pos: u64) -> Self {
        RecordHeader {
            kind: RecordKind::Noop,
            index,
            term,
            pos,
            body_len: 0,
            body_crc: crc32fast::hash(&[]),
            prev_crc: 0,
        }
    }

    /// This header chained to the previous record, whose header CRC is `prev_crc`
    /// (see [`RecordHeader::header_crc`]; `LogCursor::last_crc` keeps it).
    pub const fn chained_to(mut self, prev_crc: u32) -> Self {
        self.prev_crc = prev_crc;
        self
    }

    /// The header CRC this header has once encoded (what the next record chains to).
    pub fn header_crc(&self) -> u32 {
        let mut h = [0u8; HEADER_BYTES];
        write_header_fields(self, &mut h);
        crc32fast::hash(&h[..HEADER_CRC_AT])
    }

    /// Header plus body, in bytes.
    pub const fn record_bytes(&self) -> u64 {
        HEADER_BYTES_U64 + self.body_len as u64
    }

    /// The position just past this record (where the next one may start). Saturates;
    /// a decoded header is checked not to overflow.
    pub const fn end_pos(&self) -> u64 {
        self.pos.saturating_add(self.record_bytes())
    }

    /// Checks the fields the layout constrains; shared by encode and decode so that an
    /// encoded header always decodes.
    fn check_fields(&self) -> Result<(), FieldError> {
        if self.index == 0 {
            return Err(FieldError::ZeroIndex);
        }
        if self.term == 0 {
            return Err(FieldError::ZeroTerm);
        }
        if self.kind == RecordKind::Noop && self.body_len != 0 {
            return Err(FieldError::NoopWithBody {
                body_len: self.body_len,
            });
        }
        if self.pos.checked_add(self.record_bytes()).is_none() {
            return Err(FieldError::PositionOverflow { pos: self.pos });
        }
        Ok(())
    }
}

/// A header field value the layout forbids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum FieldError {
    #[error("index 0 is not a valid entry index")]
    ZeroIndex,
    #[error("term 0 is not a valid entry term")]
    ZeroTerm,
    #[error("a noop record must have an empty body, found {body_len} bytes")]
    NoopWithBody { body_len: u32 },
    #[error("record at pos {pos} would end beyond the 64-bit address space")]
    PositionOverflow { pos: u64 },
}

/// Why a record could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("output buffer too small: need {needed} bytes, have {have}")]
    OutputTooSmall { needed: usize, have: usize },
    #[error("body of {body_len} bytes exceeds the 32-bit body length field")]
    BodyTooLong { body_len: usize },
    #[error("header says body length {header_body_len} but the body has {body_len} bytes")]
    BodyLengthMismatch {
        header_body_len: u32,
        body_len: usize,
    },
    #[error("invalid header field: {0}")]
    Field(#[from] FieldError),
}

/// Why bytes are not a valid record (or record header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("truncated: need {needed} bytes, have {have}")]
    Truncated { needed: u64, have: u64 },
    #[error("bad magic {found:#010x} (expected {RECORD_MAGIC:#010x})")]
    BadMagic { found: u32 },
    #[error("unsupported record version {found} (this build reads {RECORD_VERSION})")]
    UnsupportedVersion { found: u8 },
    #[error("header length field is {found}, expected {HEADER_BYTES}")]
    BadHeaderLength { found: u16 },
    #[error("header CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    HeaderCrc { stored: u32, computed: u32 },
    #[error("unknown record kind {found}")]
    UnknownKind { found: u8 },
    #[error("record of {record_bytes} bytes exceeds the bound of {max_record_bytes} bytes")]
    RecordTooLarge {
        record_bytes: u64,
        max_record_bytes: u32,
    },
    #[error("invalid header field: {0}")]
    Field(#[from] FieldError),
    #[error("body length is {body_len} but the header says {header_body_len}")]
    BodyLengthMismatch { header_body_len: u32, body_len: u64 },
    #[error("body CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BodyCrc { stored: u32, computed: u32 },
}

fn get_u16(b: &[u8; HEADER_BYTES], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn get_u32(b: &[u8; HEADER_BYTES], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn get_u64(b: &[u8; HEADER_BYTES], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(v)
}

fn header_array_mut(out: &mut [u8]) -> Result<&mut [u8; HEADER_BYTES], EncodeError> {
    let have = out.len();
    out.get_mut(..HEADER_BYTES)
        .and_then(|s| <&mut [u8; HEADER_BYTES]>::try_from(s).ok())
        .ok_or(EncodeError::OutputTooSmall {
            needed: HEADER_BYTES,
            have,
        })
}

/// Writes `header` into `out[..HEADER_BYTES]` and returns [`HEADER_BYTES`].
///
/// The body CRC is taken from `header.body_crc` as is: the caller computed it
/// (see [`RecordHeader::normal`]) or received it from the leader.
pub fn encode_header(header: &RecordHeader, out: &mut [u8]) -> Result<usize, EncodeError> {
    header.check_fields()?;
    let h = header_array_mut(out)?;
    write_header_fields(header, h);
    let crc = crc32fast::hash(&h[..HEADER_CRC_AT]);
    h[HEADER_CRC_AT..].copy_from_slice(&crc.to_be_bytes());
    Ok(HEADER_BYTES)
}

/// Writes every header byte before the header CRC.
fn write_header_fields(header: &RecordHeader, h: &mut [u8; HEADER_BYTES]) {
    h[0..4].copy_from_slice(&RECORD_MAGIC.to_be_bytes());
    h[4] = RECORD_VERSION;
    h[5] = header.kind.code();
    h[6..8].copy_from_slice(&(HEADER_BYTES as u16).to_be_bytes());
    h[8..16].copy_from_slice(&header.index.to_be_bytes());
    h[16..24].copy_from_slice(&header.term.to_be_bytes());
    h[24..32].copy_from_slice(&header.pos.to_be_bytes());
    h[32..36].copy_from_slice(&header.body_len.to_be_bytes());
    h[36..40].copy_from_slice(&header.body_crc.to_be_bytes());
    h[40..44].copy_from_slice(&header.prev_crc.to_be_bytes());
}

/// Writes the header and `body` into `out` and returns the record's size in bytes.
///
/// `header.body_len` must equal `body.len()`; `header.body_crc` must be the body's CRC
/// (checked in debug builds only: the leader computes it once, not twice).
pub fn encode_record(
    header: &RecordHeader,
    body: &[u8],
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    if header.body_len as usize != body.len() {
        return Err(EncodeError::BodyLengthMismatch {
            header_body_len: header.body_len,
            body_len: body.len(),
        });
    }
    let total = HEADER_BYTES + body.len();
    if out.len() < total {
        return Err(EncodeError::OutputTooSmall {
            needed: total,
            have: out.len(),
        });
    }
    debug_assert_eq!(
        header.body_crc,
        crc32fast::hash(body),
        "header.body_crc must be the CRC of the body"
    );
    encode_header(header, out)?;
    out[HEADER_BYTES..total].copy_from_slice(body);
    Ok(total)
}

/// Completes a record whose body the caller already placed at
/// `buf[HEADER_BYTES..HEADER_BYTES + body_len]` (e.g. copied straight into a DMA
/// buffer): computes the body CRC and writes the header in front of it, chained to
/// `prev_crc` (the previous record's header CRC; 0 for a log's first record).
pub fn seal_record_in_place(
    buf: &mut [u8],
    kind: RecordKind,
    index: u64,
    term: u64,
    pos: u64,
    body_len: u32,
    prev_crc: u32,
) -> Result<RecordHeader, EncodeError> {
    let total = HEADER_BYTES + body_len as usize;
    let body = buf
        .get(HEADER_BYTES..total)
        .ok_or(EncodeError::OutputTooSmall {
            needed: total,
            have: buf.len(),
        })?;
    let header = RecordHeader {
        kind,
        index,
        term,
        pos,
        body_len,
        body_crc: crc32fast::hash(body),
        prev_crc,
    };
    encode_header(&header, buf)?;
    Ok(header)
}

/// Decodes and checks a record header from the first [`HEADER_BYTES`] of `bytes`:
/// magic, version, header length, header CRC, kind, index/term not 0,
/// and the whole record within `max_record_bytes`. The body is not looked at.
pub fn decode_header(bytes: &[u8], max_record_bytes: u32) -> Result<RecordHeader, DecodeError> {
    let h: &[u8; HEADER_BYTES] = bytes
        .get(..HEADER_BYTES)
        .and_then(|s| s.try_into().ok())
        .ok_or(DecodeError::Truncated {
            needed: HEADER_BYTES_U64,
            have: bytes.len() as u64,
        })?;
    let magic = get_u32(h, 0);
    if magic != RECORD_MAGIC {
        return Err(DecodeError::BadMagic { found: magic });
    }
    if h[4] != RECORD_VERSION {
        return Err(DecodeError::UnsupportedVersion { found: h[4] });
    }
    let header_len = get_u16(h, 6);
    if header_len as usize != HEADER_BYTES {
        return Err(DecodeError::BadHeaderLength { found: header_len });
    }
    let stored = get_u32(h, HEADER_CRC_AT);
    let computed = crc32fast::hash(&h[..HEADER_CRC_AT]);
    if stored != computed {
        return Err(DecodeError::HeaderCrc { stored, computed });
    }
    let kind = RecordKind::from_code(h[5]).ok_or(DecodeError::UnknownKind { found: h[5] })?;
    let header = RecordHeader {
        kind,
        index: get_u64(h, 8),
        term: get_u64(h, 16),
        pos: get_u64(h, 24),
        body_len: get_u32(h, 32),
        body_crc: get_u32(h, 36),
        prev_crc: get_u32(h, 40),
    };
    if header.record_bytes() > u64::from(max_record_bytes) {
        return Err(DecodeError::RecordTooLarge {
            record_bytes: header.record_bytes(),
            max_record_bytes,
        });
    }
    header.check_fields()?;
    Ok(header)
}

/// Checks that `body` is exactly the body `header` describes (length and CRC).
pub fn verify_body(header: &RecordHeader, body: &[u8]) -> Result<(), DecodeError> {
    if body.len() as u64 != u64::from(header.body_len) {
        return Err(DecodeError::BodyLengthMismatch {
            header_body_len: header.body_len,
            body_len: body.len() as u64,
        });
    }
    let computed = crc32fast::hash(body);
    if computed != header.body_crc {
        return Err(DecodeError::BodyCrc {
            stored: header.body_crc,
            computed,
        });
    }
    Ok(())
}

/// Verifies the record at the start of `bytes` (header and body CRC) without
/// re-encoding it, e.g. a record a follower received. `bytes` may hold more after the
/// record: the record is `bytes[..header.record_bytes()]`.
pub fn verify_record(bytes: &[u8], max_record_bytes: u32) -> Result<RecordHeader, DecodeError> {
    let header = decode_header(bytes, max_record_bytes)?;
    let body = record_body(&header, bytes)?;
    verify_body(&header, body)?;
    Ok(header)
}

/// The body of the record at the start of `bytes`, as described by its decoded `header`.
pub fn record_body<'a>(header: &RecordHeader, bytes: &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let end = HEADER_BYTES_U64 + u64::from(header.body_len);
    usize::try_from(end)
        .ok()
        .and_then(|end| bytes.get(HEADER_BYTES..end))
        .ok_or(DecodeError::Truncated {
            needed: end,
            have: bytes.len() as u64,
        })
}

/// Iterates over the records packed back to back in `bytes` (e.g. one push from the
/// leader), verifying each one fully. Stops after the first error.
pub fn verify_records(bytes: &[u8], max_record_bytes: u32) -> VerifiedRecords<'_> {
    VerifiedRecords {
        rest: bytes,
        max_record_bytes,
        failed: false,
    }
}

/// Iterator returned by [`verify_records`]: yields each record's header and body.
#[derive(Debug)]
pub struct VerifiedRecords<'a> {
    rest: &'a [u8],
    max_record_bytes: u32,
    failed: bool,
}

impl<'a> Iterator for VerifiedRecords<'a> {
    type Item = Result<(RecordHeader, &'a [u8]), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let result = verify_record(self.rest, self.max_record_bytes).and_then(|header| {
            let body = record_body(&header, self.rest)?;
            Ok((header, body))
        });
        match result {
            Ok((header, body)) => {
                // verify_record proved the slice holds the whole record.
                self.rest = &self.rest[HEADER_BYTES + body.len()..];
                Some(Ok((header, body)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(body: &[u8]) -> (RecordHeader, Vec<u8>) {
        let h = RecordHeader::normal(7, 3, 4096, body).unwrap();
        let mut out = vec![0u8; HEADER_BYTES + body.len()];
        let n = encode_record(&h, body, &mut out).unwrap();
        assert_eq!(n, out.len());
        (h, out)
    }

    #[test]
    fn round_trip_normal_and_noop() {
        let (h, bytes) = sample(b"hello world");
        assert_eq!(verify_record(&bytes, DEFAULT_MAX_RECORD_BYTES), Ok(h));
        assert_eq!(h.end_pos(), 4096 + 48 + 11);

        let n = RecordHeader::noop(8, 4, h.end_pos());
        let mut out = [0u8; HEADER_BYTES];
        encode_header(&n, &mut out).unwrap();
        assert_eq!(verify_record(&out, DEFAULT_MAX_RECORD_BYTES), Ok(n));
    }

    #[test]
    fn layout_is_big_endian_at_documented_offsets() {
        let (_, b) = sample(b"xyz");
        assert_eq!(&b[0..4], b"DLRR");
        assert_eq!(b[4], 1);
        assert_eq!(b[5], 1);
        assert_eq!(&b[6..8], &[0, 48]);
        assert_eq!(&b[8..16], &7u64.to_be_bytes());
        assert_eq!(&b[16..24], &3u64.to_be_bytes());
        assert_eq!(&b[24..32], &4096u64.to_be_bytes());
        assert_eq!(&b[32..36], &3u32.to_be_bytes());
        assert_eq!(&b[36..40], &crc32fast::hash(b"xyz").to_be_bytes());
        assert_eq!(&b[40..44], &[0, 0, 0, 0]);
        assert_eq!(
            &b[44..48],
            &RecordHeader::normal(7, 3, 4096, b"xyz")
                .unwrap()
                .header_crc()
                .to_be_bytes()
        );
        assert_eq!(&b[44..48], &crc32fast::hash(&b[..44]).to_be_bytes());
        assert_eq!(&b[48..], b"xyz");
    }

    #[test]
    fn seal_in_place_matches_encode_record() {
        let body = b"in place body";
        let (h, expected) = sample(body);
        let mut buf = vec![0u8; 100];
        buf[HEADER_BYTES..HEADER_BYTES + body.len()].copy_from_slice(body);
        let sealed = seal_record_in_place(
            &mut buf,
            RecordKind::Normal,
            7,
            3,
            4096,
            body.len() as u32,
            0,
        )
        .unwrap();
        assert_eq!(sealed, h);
        assert_eq!(&buf[..expected.len()], &expected[..]);
    }

    #[test]
    fn prev_crc_is_stored_and_covered() {
        let first = RecordHeader::normal(1, 1, 0, b"a").unwrap();
        let second = RecordHeader::noop(2, 1, first.end_pos()).chained_to(first.header_crc());
        let mut out = [0u8; HEADER_BYTES];
        encode_header(&second, &mut out).unwrap();
        assert_eq!(&out[40..44], &first.header_crc().to_be_bytes());
        assert_eq!(decode_header(&out, 100), Ok(second));
        assert_ne!(
            second.header_crc(),
            RecordHeader::noop(2, 1, 49).header_crc()
        );
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let (_, bytes) = sample(b"some body bytes");
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                verify_record(&b, DEFAULT_MAX_RECORD_BYTES).is_err(),
                "flip of bit {bit} went unnoticed"
            );
        }
    }

    #[test]
    fn truncation_is_reported_not_panicking() {
        let (_, bytes) = sample(b"abcdef");
        for cut in 0..bytes.len() {
            assert!(matches!(
                verify_record(&bytes[..cut], DEFAULT_MAX_RECORD_BYTES),
                Err(DecodeError::Truncated { .. })
            ));
        }
    }

    #[test]
    fn bounds_and_field_rules() {
        let (_, bytes) = sample(&[9u8; 100]);
        assert!(matches!(
            decode_header(&bytes, 147),
            Err(DecodeError::RecordTooLarge {
                record_bytes: 148,
                ..
            })
        ));
        assert!(decode_header(&bytes, 148).is_ok());

        let mut h = RecordHeader::noop(1, 1, 0);
        h.body_len = 1;
        let mut out = [0u8; 64];
        assert_eq!(
            encode_header(&h, &mut out),
            Err(EncodeError::Field(FieldError::NoopWithBody { body_len: 1 }))
        );
        let zero = RecordHeader::noop(0, 1, 0);
        assert_eq!(
            encode_header(&zero, &mut out),
            Err(EncodeError::Field(FieldError::ZeroIndex))
        );
        let overflow = RecordHeader::noop(1, 1, u64::MAX - 10);
        assert!(encode_header(&overflow, &mut out).is_err());
        assert_eq!(
            encode_header(&RecordHeader::noop(1, 1, 0), &mut out[..47]),
            Err(EncodeError::OutputTooSmall {
                needed: 48,
                have: 47
            })
        );
    }

    #[test]
    fn verify_records_walks_a_batch_and_stops_at_damage() {
        let mut batch = Vec::new();
        let mut pos = 0;
        for (i, body) in [&b"a"[..], b"", b"ccc"].iter().enumerate() {
            let h = RecordHeader::normal(i as u64 + 1, 1, pos, body).unwrap();
            let mut out = vec![0u8; HEADER_BYTES + body.len()];
            encode_record(&h, body, &mut out).unwrap();
            pos = h.end_pos();
            batch.extend_from_slice(&out);
        }
        let all: Vec<_> = verify_records(&batch, DEFAULT_MAX_RECORD_BYTES)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].1, b"ccc");

        let last = batch.len() - 1;
        batch[last] ^= 0x40;
        let results: Vec<_> = verify_records(&batch, DEFAULT_MAX_RECORD_BYTES).collect();
        assert_eq!(results.len(), 3);
        assert!(matches!(results[2], Err(DecodeError::BodyCrc { .. })));
    }
}

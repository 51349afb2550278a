//! Framing: a fixed header, then the body. Every frame on a client or peer connection.
//!
//! Header (24 bytes, big-endian like DLedger's and RocketMQ's formats):
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0  | 2 | magic `0xD1ED` |
//! | 2  | 1 | frame version (1) |
//! | 3  | 1 | kind ([`Kind`]) |
//! | 4  | 2 | flags (none defined yet: must be 0) |
//! | 6  | 2 | reserved (must be 0) |
//! | 8  | 8 | request id (a response carries its request's id; peer batches: a sequence) |
//! | 16 | 4 | body length in bytes |
//! | 20 | 4 | CRC-32 (IEEE) of header bytes 0..20 followed by the body |
//! | 24 | n | body |
//!
//! The whole frame (header + body) must fit in `max_frame_bytes`. The length is checked
//! as soon as the 20 bytes that hold it have arrived — before the body is awaited or any
//! buffer is grown — so an oversized prefix costs nothing (FRAME_TOO_LARGE). The CRC makes
//! a corrupted frame an error rather than a different valid message; entry records inside
//! keep their own CRCs for the disk.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::WireError;
use super::gather::{GatherBuf, Mark};

pub const MAGIC: u16 = 0xD1ED;
pub const FRAME_VERSION: u8 = 1;
pub const HEADER_LEN: usize = 24;
/// Byte offset of the length and CRC fields (for back-patching).
const LEN_AT: usize = 16;
const CRC_AT: usize = 20;

/// What a frame's body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// Peer handshake, sent first by both sides of a peer connection.
    Hello = 0x01,
    /// Raft traffic of many groups from one node (shard) to another.
    PeerBatch = 0x02,
    AppendRequest = 0x10,
    AppendResponse = 0x11,
    GetRequest = 0x12,
    GetResponse = 0x13,
    MetadataRequest = 0x14,
    MetadataResponse = 0x15,
    ClusterViewRequest = 0x16,
    ClusterViewResponse = 0x17,
    /// The answer to any request that failed (code, message, leader hint).
    ErrorResponse = 0x1F,
}

impl Kind {
    pub fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            0x01 => Kind::Hello,
            0x02 => Kind::PeerBatch,
            0x10 => Kind::AppendRequest,
            0x11 => Kind::AppendResponse,
            0x12 => Kind::GetRequest,
            0x13 => Kind::GetResponse,
            0x14 => Kind::MetadataRequest,
            0x15 => Kind::MetadataResponse,
            0x16 => Kind::ClusterViewRequest,
            0x17 => Kind::ClusterViewResponse,
            0x1F => Kind::ErrorResponse,
            _ => return None,
        })
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    pub kind: Kind,
    pub flags: u16,
    pub request_id: u64,
    pub body_len: u32,
}

/// A whole frame; the body is a slice of the receive buffer (no copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub header: FrameHeader,
    pub body: Bytes,
}

fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Looks for one complete frame at the start of `buf` without copying.
///
/// `Ok(None)`: need more bytes (and nothing wrong is visible yet). `Ok(Some((header,
/// body)))`: the frame occupies `buf[..body.end]`. Errors are checked in header order as
/// soon as the bytes are present: magic, version, kind, flags, length (against
/// `max_frame_bytes`), then the CRC once the body is complete.
pub fn parse_frame(
    buf: &[u8],
    max_frame_bytes: u32,
) -> Result<Option<(FrameHeader, Range<usize>)>, WireError> {
    if buf.len() >= 2 {
        let magic = be_u16(buf, 0);
        if magic != MAGIC {
            return Err(WireError::BadMagic { found: magic });
        }
    }
    if buf.len() >= 3 && buf[2] != FRAME_VERSION {
        return Err(WireError::UnsupportedVersion {
            found: buf[2],
            supported: FRAME_VERSION,
        });
    }
    if buf.len() >= 4 && Kind::from_u8(buf[3]).is_none() {
        return Err(WireError::UnknownKind { kind: buf[3] });
    }
    if buf.len() >= 8 {
        let bits = be_u16(buf, 4) | be_u16(buf, 6);
        if bits != 0 {
            return Err(WireError::ReservedBits { value: bits });
        }
    }
    if buf.len() < CRC_AT {
        return Ok(None);
    }
    let body_len = be_u32(buf, LEN_AT);
    let frame_len = HEADER_LEN as u64 + u64::from(body_len);
    if frame_len > u64::from(max_frame_bytes) {
        return Err(WireError::FrameTooLarge {
            len: frame_len,
            max: max_frame_bytes,
        });
    }
    let end = HEADER_LEN + body_len as usize; // <= max_frame_bytes, fits usize
    if buf.len() < end {
        return Ok(None);
    }
    let expected = be_u32(buf, CRC_AT);
    let computed = frame_crc(&buf[..CRC_AT], &buf[HEADER_LEN..end]);
    if expected != computed {
        return Err(WireError::Checksum { expected, computed });
    }
    let kind = Kind::from_u8(buf[3]).ok_or(WireError::UnknownKind { kind: buf[3] })?;
    let header = FrameHeader {
        kind,
        flags: be_u16(buf, 4),
        request_id: u64::from_be_bytes([
            buf[8], buf[9], buf[10], buf[11], buf[12], buf[13], buf[14], buf[15],
        ]),
        body_len,
    };
    Ok(Some((header, HEADER_LEN..end)))
}

fn frame_crc(header_without_crc: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header_without_crc);
    h.update(body);
    h.finalize()
}

/// Cuts whole frames off the front of a receive buffer.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    max_frame_bytes: u32,
}

impl FrameDecoder {
    pub fn new(max_frame_bytes: u32) -> FrameDecoder {
        assert!(
            max_frame_bytes as usize >= HEADER_LEN,
            "max_frame_bytes must hold a header"
        );
        FrameDecoder { max_frame_bytes }
    }

    /// Removes and returns the first complete frame of `buf`; `Ok(None)` when more bytes
    /// are needed (see [`FrameDecoder::bytes_needed`] for how many to read). After an error
    /// the connection should be closed (the stream cannot be resynchronised).
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, WireError> {
        let Some((header, body)) = parse_frame(buf, self.max_frame_bytes)? else {
            return Ok(None);
        };
        let mut frame = buf.split_to(body.end).freeze();
        let body = frame.split_off(HEADER_LEN);
        Ok(Some(Frame { header, body }))
    }

    /// How many bytes `buf` must hold before the next frame can be complete: at least the
    /// header, then the whole frame once its length is known. Bounded by `max_frame_bytes`,
    /// so a reader may reserve this much without trusting the peer further.
    pub fn bytes_needed(&self, buf: &[u8]) -> usize {
        if buf.len() < CRC_AT {
            return HEADER_LEN;
        }
        let frame_len = HEADER_LEN as u64 + u64::from(be_u32(buf, LEN_AT));
        frame_len.min(u64::from(self.max_frame_bytes)) as usize
    }
}

/// A frame being written into a caller's buffer: [`FrameWriter::begin`] writes the header
/// with placeholders, the caller writes the body, [`FrameWriter::finish`] patches length
/// and CRC. No intermediate buffer.
#[derive(Debug)]
#[must_use = "a begun frame must be finished (or the buffer truncated)"]
pub struct FrameWriter {
    start: usize,
}

impl FrameWriter {
    pub fn begin(out: &mut BytesMut, kind: Kind, request_id: u64) -> FrameWriter {
        let start = out.len();
        put_header_placeholder(out, kind, request_id);
        FrameWriter { start }
    }

    /// Body bytes written so far.
    pub fn body_len(&self, out: &BytesMut) -> usize {
        out.len() - self.start - HEADER_LEN
    }

    /// Patches length and CRC. If the frame exceeds `max_frame_bytes` the buffer is cut
    /// back to where the frame began and FRAME_TOO_LARGE is returned.
    pub fn finish(self, out: &mut BytesMut, max_frame_bytes: u32) -> Result<usize, WireError> {
        let frame_len = out.len() - self.start;
        if frame_len as u64 > u64::from(max_frame_bytes) {
            out.truncate(self.start);
            return Err(WireError::FrameTooLarge {
                len: frame_len as u64,
                max: max_frame_bytes,
            });
        }
        let body_len = (frame_len - HEADER_LEN) as u32; // <= max_frame_bytes
        let frame = &mut out[self.start..];
        frame[LEN_AT..CRC_AT].copy_from_slice(&body_len.to_be_bytes());
        let crc = frame_crc(&frame[..CRC_AT], &frame[HEADER_LEN..]);
        frame[CRC_AT..HEADER_LEN].copy_from_slice(&crc.to_be_bytes());
        Ok(frame_len)
    }

    /// Abandons the frame: cuts the buffer back to where it began.
    pub fn abort(self, out: &mut BytesMut) {
        out.truncate(self.start);
    }
}

/// A header with length and CRC left 0, to be patched when the body is complete.
fn put_header_placeholder(out: &mut BytesMut, kind: Kind, request_id: u64) {
    out.reserve(HEADER_LEN);
    out.put_u16(MAGIC);
    out.put_u8(FRAME_VERSION);
    out.put_u8(kind as u8);
    out.put_u16(0); // flags
    out.put_u16(0); // reserved
    out.put_u64(request_id);
    out.put_u32(0); // length, patched
    out.put_u32(0); // crc, patched
}

/// [`FrameWriter`] for a [`GatherBuf`]: the header is written in place, the body may
/// splice shared parts, and the CRC is computed over the pieces in order. The frame's
/// bytes are exactly those [`FrameWriter`] writes for the same body.
#[derive(Debug)]
#[must_use = "a begun frame must be finished (or aborted)"]
pub struct GatherFrameWriter {
    start: Mark,
}

impl GatherFrameWriter {
    pub fn begin(out: &mut GatherBuf, kind: Kind, request_id: u64) -> GatherFrameWriter {
        let start = out.mark();
        put_header_placeholder(out.head_mut(), kind, request_id);
        GatherFrameWriter { start }
    }

    /// Frame bytes written so far, header included.
    pub fn frame_len(&self, out: &GatherBuf) -> usize {
        out.len_since(self.start)
    }

    /// Patches length and CRC. If the frame exceeds `max_frame_bytes` the buffer is cut
    /// back to where the frame began and FRAME_TOO_LARGE is returned.
    pub fn finish(self, out: &mut GatherBuf, max_frame_bytes: u32) -> Result<usize, WireError> {
        let frame_len = out.len_since(self.start);
        if frame_len as u64 > u64::from(max_frame_bytes) {
            out.truncate(self.start);
            return Err(WireError::FrameTooLarge {
                len: frame_len as u64,
                max: max_frame_bytes,
            });
        }
        let at = self.start.head_len;
        let body_len = (frame_len - HEADER_LEN) as u32; // <= max_frame_bytes
        out.patch(at + LEN_AT, &body_len.to_be_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&out.head()[at..at + CRC_AT]);
        out.crc_since(self.start, HEADER_LEN, &mut h);
        out.patch(at + CRC_AT, &h.finalize().to_be_bytes());
        Ok(frame_len)
    }

    /// Abandons the frame: cuts the buffer back to where it began.
    pub fn abort(self, out: &mut GatherBuf) {
        out.truncate(self.start);
    }
}

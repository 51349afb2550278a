//! Peer transport frames: the header every frame carries and the Hello handshake.
//!
//! This is the transport's own envelope; what is inside a batch frame is the peer
//! codec's business ([`super::PeerCodec`]). All integers are big-endian.
//!
//! Frame header (12 bytes), then `payload_len` bytes of payload:
//!
//! ```text
//! offset size field
//! 0      4    magic        "DLPF" (0x44 0x4C 0x50 0x46)
//! 4      1    version      FRAME_VERSION (1)
//! 5      1    kind         1 Hello, 2 HelloAck, 3 HelloReject, 4 Batch, 5 Keepalive
//! 6      2    reserved     0
//! 8      4    payload_len  <= the receiver's max_frame_bytes (checked before any allocation)
//! ```
//!
//! Hello payload (dialer → acceptor, first frame on a connection):
//!
//! ```text
//! 0      4    node_id            the dialer's node id
//! 4      4    shard_id           the dialer's shard; the acceptor serves it on the same shard
//! 8      4    shard_count        the dialer's shard count
//! 12     2    protocol_version   PROTOCOL_VERSION
//! 14     2    cluster_len        <= CLUSTER_NAME_BYTES_MAX
//! 16     n    cluster            UTF-8
//! ```
//!
//! HelloAck payload (acceptor → dialer, from the shard that serves the connection):
//! `0 node_id u32 | 4 shard_id u32 | 8 shard_count u32`.
//!
//! HelloReject payload: `0 reason u8` ([`RejectReason`]), then the connection closes.
//!
//! After the ack the dialer sends Batch frames: a connection carries Raft traffic one
//! way; the acceptor answers over its own outbound connection. The acceptor sends only
//! Keepalive frames (empty payload) back, every keepalive interval: they tell the dialer
//! that the peer's node is alive and reachable (node-level liveness, see
//! [`super::liveness`]).
//!
//! Protocol versions: 2 added the Keepalive frame and the heartbeat flags byte of the
//! peer batch (`dledger::wire::peer`).

use bytes::BufMut;
use dledger::raft::NodeId;

pub const FRAME_MAGIC: [u8; 4] = *b"DLPF";
pub const FRAME_VERSION: u8 = 1;
pub const FRAME_HEADER_BYTES: usize = 12;
/// The peer protocol spoken inside frames. A mismatch is refused at Hello.
pub const PROTOCOL_VERSION: u16 = 2;
pub const CLUSTER_NAME_BYTES_MAX: usize = 255;
/// Largest Hello payload.
pub const HELLO_PAYLOAD_BYTES_MAX: usize = 16 + CLUSTER_NAME_BYTES_MAX;
pub const HELLO_ACK_PAYLOAD_BYTES: usize = 12;
pub const HELLO_REJECT_PAYLOAD_BYTES: usize = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    Hello,
    HelloAck,
    HelloReject,
    Batch,
    Keepalive,
}

impl FrameKind {
    pub fn code(self) -> u8 {
        match self {
            FrameKind::Hello => 1,
            FrameKind::HelloAck => 2,
            FrameKind::HelloReject => 3,
            FrameKind::Batch => 4,
            FrameKind::Keepalive => 5,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(FrameKind::Hello),
            2 => Some(FrameKind::HelloAck),
            3 => Some(FrameKind::HelloReject),
            4 => Some(FrameKind::Batch),
            5 => Some(FrameKind::Keepalive),
            _ => None,
        }
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: FrameKind,
    pub payload_len: usize,
}

/// Bad bytes from a peer. Closes that connection only.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("bad frame magic {0:02x?}")]
    BadMagic([u8; 4]),
    #[error("unsupported frame version {0}")]
    BadVersion(u8),
    #[error("unknown frame kind {0}")]
    BadKind(u8),
    #[error("non-zero reserved header bytes")]
    BadReserved,
    #[error("FRAME_TOO_LARGE: payload of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: u64, max: usize },
    #[error("{kind:?} payload of {len} bytes is malformed: {why}")]
    BadPayload {
        kind: FrameKind,
        len: usize,
        why: &'static str,
    },
    #[error("expected a {expected:?} frame, got {got:?}")]
    Unexpected { expected: FrameKind, got: FrameKind },
}

/// Decodes a frame header, refusing a payload above `max_payload_bytes` before the
/// caller allocates anything for it.
pub fn decode_header(
    bytes: &[u8; FRAME_HEADER_BYTES],
    max_payload_bytes: usize,
) -> Result<FrameHeader, FrameError> {
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if magic != FRAME_MAGIC {
        return Err(FrameError::BadMagic(magic));
    }
    if bytes[4] != FRAME_VERSION {
        return Err(FrameError::BadVersion(bytes[4]));
    }
    let kind = FrameKind::from_code(bytes[5]).ok_or(FrameError::BadKind(bytes[5]))?;
    if bytes[6] != 0 || bytes[7] != 0 {
        return Err(FrameError::BadReserved);
    }
    let len = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
    if len_usize > max_payload_bytes {
        return Err(FrameError::TooLarge {
            len: u64::from(len),
            max: max_payload_bytes,
        });
    }
    Ok(FrameHeader {
        kind,
        payload_len: len_usize,
    })
}

/// Appends a header for a payload of `payload_len` bytes.
///
/// # Panics
/// When `payload_len` does not fit the 32-bit field: callers bound frames by
/// `max_frame_bytes` (a `u32`) first.
pub fn encode_header(kind: FrameKind, payload_len: usize, out: &mut impl BufMut) {
    let len = u32::try_from(payload_len).expect("frame payload bounded by max_frame_bytes (u32)");
    out.put_slice(&FRAME_MAGIC);
    out.put_u8(FRAME_VERSION);
    out.put_u8(kind.code());
    out.put_slice(&[0, 0]);
    out.put_slice(&len.to_be_bytes());
}

/// Overwrites the length field of the header that starts at `header_at` in `buf`.
pub(crate) fn patch_payload_len(buf: &mut [u8], header_at: usize, payload_len: u32) {
    buf[header_at + 8..header_at + 12].copy_from_slice(&payload_len.to_be_bytes());
}

/// The dialer's introduction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub node_id: NodeId,
    pub shard_id: u32,
    pub shard_count: u32,
    pub protocol_version: u16,
    pub cluster: String,
}

impl Hello {
    /// Appends the whole Hello frame (header included).
    pub fn encode_frame(&self, out: &mut impl BufMut) {
        let cluster = self.cluster.as_bytes();
        assert!(
            cluster.len() <= CLUSTER_NAME_BYTES_MAX,
            "cluster names are validated at start-up"
        );
        encode_header(FrameKind::Hello, 16 + cluster.len(), out);
        out.put_slice(&self.node_id.to_be_bytes());
        out.put_slice(&self.shard_id.to_be_bytes());
        out.put_slice(&self.shard_count.to_be_bytes());
        out.put_slice(&self.protocol_version.to_be_bytes());
        // Bounded by the assert above.
        out.put_slice(&(cluster.len() as u16).to_be_bytes());
        out.put_slice(cluster);
    }

    pub fn decode_payload(payload: &[u8]) -> Result<Self, FrameError> {
        let bad = |why| FrameError::BadPayload {
            kind: FrameKind::Hello,
            len: payload.len(),
            why,
        };
        if payload.len() < 16 {
            return Err(bad("shorter than its 16 fixed bytes"));
        }
        let cluster_len = usize::from(u16::from_be_bytes([payload[14], payload[15]]));
        if cluster_len > CLUSTER_NAME_BYTES_MAX {
            return Err(bad("cluster name too long"));
        }
        if payload.len() != 16 + cluster_len {
            return Err(bad("length does not match the cluster name length"));
        }
        let cluster = std::str::from_utf8(&payload[16..])
            .map_err(|_| bad("cluster name is not UTF-8"))?
            .to_owned();
        Ok(Self {
            node_id: be_u32(&payload[0..4]),
            shard_id: be_u32(&payload[4..8]),
            shard_count: be_u32(&payload[8..12]),
            protocol_version: u16::from_be_bytes([payload[12], payload[13]]),
            cluster,
        })
    }
}

/// The acceptor's answer: which node and shard serve the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelloAck {
    pub node_id: NodeId,
    pub shard_id: u32,
    pub shard_count: u32,
}

impl HelloAck {
    pub fn encode_frame(&self, out: &mut impl BufMut) {
        encode_header(FrameKind::HelloAck, HELLO_ACK_PAYLOAD_BYTES, out);
        out.put_slice(&self.node_id.to_be_bytes());
        out.put_slice(&self.shard_id.to_be_bytes());
        out.put_slice(&self.shard_count.to_be_bytes());
    }

    pub fn decode_payload(payload: &[u8]) -> Result<Self, FrameError> {
        if payload.len() != HELLO_ACK_PAYLOAD_BYTES {
            return Err(FrameError::BadPayload {
                kind: FrameKind::HelloAck,
                len: payload.len(),
                why: "must be 12 bytes",
            });
        }
        Ok(Self {
            node_id: be_u32(&payload[0..4]),
            shard_id: be_u32(&payload[4..8]),
            shard_count: be_u32(&payload[8..12]),
        })
    }
}

/// Why an acceptor refused a Hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    #[error("the peer belongs to another cluster")]
    WrongCluster,
    #[error("the node id is not a configured peer")]
    UnknownNode,
    #[error("the connection does not come from the node's configured address")]
    AddressMismatch,
    #[error("unsupported peer protocol version")]
    ProtocolVersion,
    #[error("malformed hello")]
    Malformed,
    #[error("the acceptor is overloaded")]
    Overloaded,
    #[error("unknown reject reason {0}")]
    Other(u8),
}

impl RejectReason {
    pub fn code(self) -> u8 {
        match self {
            RejectReason::WrongCluster => 1,
            RejectReason::UnknownNode => 2,
            RejectReason::AddressMismatch => 3,
            RejectReason::ProtocolVersion => 4,
            RejectReason::Malformed => 5,
            RejectReason::Overloaded => 6,
            RejectReason::Other(code) => code,
        }
    }

    pub fn from_code(code: u8) -> Self {
        match code {
            1 => RejectReason::WrongCluster,
            2 => RejectReason::UnknownNode,
            3 => RejectReason::AddressMismatch,
            4 => RejectReason::ProtocolVersion,
            5 => RejectReason::Malformed,
            6 => RejectReason::Overloaded,
            other => RejectReason::Other(other),
        }
    }

    pub fn encode_frame(self, out: &mut impl BufMut) {
        encode_header(FrameKind::HelloReject, HELLO_REJECT_PAYLOAD_BYTES, out);
        out.put_u8(self.code());
    }
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(frame: &[u8]) -> [u8; FRAME_HEADER_BYTES] {
        frame[..FRAME_HEADER_BYTES].try_into().expect("12 bytes")
    }

    #[test]
    fn hello_round_trips() {
        let hello = Hello {
            node_id: 7,
            shard_id: 1,
            shard_count: 2,
            protocol_version: PROTOCOL_VERSION,
            cluster: "DefaultCluster".to_owned(),
        };
        let mut frame = Vec::new();
        hello.encode_frame(&mut frame);
        let header = decode_header(&header_of(&frame), HELLO_PAYLOAD_BYTES_MAX).expect("valid");
        assert_eq!(header.kind, FrameKind::Hello);
        assert_eq!(header.payload_len, frame.len() - FRAME_HEADER_BYTES);
        assert_eq!(
            Hello::decode_payload(&frame[FRAME_HEADER_BYTES..]),
            Ok(hello)
        );
    }

    #[test]
    fn ack_and_reject_round_trip() {
        let ack = HelloAck {
            node_id: 3,
            shard_id: 0,
            shard_count: 4,
        };
        let mut frame = Vec::new();
        ack.encode_frame(&mut frame);
        assert_eq!(
            HelloAck::decode_payload(&frame[FRAME_HEADER_BYTES..]),
            Ok(ack)
        );
        for reason in [RejectReason::WrongCluster, RejectReason::Other(99)] {
            assert_eq!(RejectReason::from_code(reason.code()), reason);
        }
    }

    #[test]
    fn oversized_length_is_refused_from_the_header_alone() {
        let mut frame = Vec::new();
        encode_header(FrameKind::Batch, 0, &mut frame);
        patch_payload_len(&mut frame, 0, u32::MAX);
        assert_eq!(
            decode_header(&header_of(&frame), 1 << 20),
            Err(FrameError::TooLarge {
                len: u64::from(u32::MAX),
                max: 1 << 20
            })
        );
    }

    #[test]
    fn bad_headers_are_named() {
        let mut frame = Vec::new();
        encode_header(FrameKind::Batch, 1, &mut frame);
        let mut bad = header_of(&frame);
        bad[0] = b'X';
        assert!(matches!(
            decode_header(&bad, 10),
            Err(FrameError::BadMagic(_))
        ));
        let mut bad = header_of(&frame);
        bad[4] = 9;
        assert_eq!(decode_header(&bad, 10), Err(FrameError::BadVersion(9)));
        let mut bad = header_of(&frame);
        bad[5] = 0;
        assert_eq!(decode_header(&bad, 10), Err(FrameError::BadKind(0)));
        let mut bad = header_of(&frame);
        bad[7] = 1;
        assert_eq!(decode_header(&bad, 10), Err(FrameError::BadReserved));
    }

    #[test]
    fn truncated_or_inconsistent_hello_is_an_error() {
        let hello = Hello {
            node_id: 1,
            shard_id: 0,
            shard_count: 1,
            protocol_version: PROTOCOL_VERSION,
            cluster: "c".to_owned(),
        };
        let mut frame = Vec::new();
        hello.encode_frame(&mut frame);
        let payload = &frame[FRAME_HEADER_BYTES..];
        for cut in 0..payload.len() {
            assert!(
                Hello::decode_payload(&payload[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad_utf8 = payload.to_vec();
        bad_utf8[16] = 0xFF;
        assert!(Hello::decode_payload(&bad_utf8).is_err());
    }
}

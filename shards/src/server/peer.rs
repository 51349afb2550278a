//! What a shard sends its peers, and how it is encoded inside the transport's batch frames.
//!
//! The transport ([`crate::net`]) batches opaque items per (peer, shard): everything queued
//! when the writer wakes goes out in one transport frame. Each item here is self-delimiting:
//!
//! ```text
//! u8 tag
//! tag 1 (Raft): one wire PeerBatch frame (src/wire: 24-byte header with its own length
//!               and CRC) holding one group's message; a heartbeat goes in the heartbeat
//!               section, its answer in the response section, anything else in the
//!               message section (an Append with its records back to back).
//! tag 2 (ClientAddr): u16 len | len bytes UTF-8 "host:port" — where this node serves
//!               clients, so peers can name it in NOT_LEADER and metadata answers.
//! ```

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use dledger::{
    config::GroupId,
    raft::{Message, MsgBody, NodeId},
    wire::{Kind, PeerBatch, PeerBatchWriter, WireError, WireLimits, parse_frame},
};

use crate::net::PeerCodec;

const TAG_RAFT: u8 = 1;
const TAG_CLIENT_ADDR: u8 = 2;
/// Longest client address text accepted from a peer.
pub const CLIENT_ADDR_BYTES_MAX: usize = 300;

/// One unit a group (or the shard) queues for a peer.
#[derive(Debug)]
pub enum PeerItem {
    Raft {
        group: GroupId,
        msg: Message,
        /// The Append's records back to back (empty for other messages).
        records: Bytes,
    },
    ClientAddr(SocketAddr),
}

/// Encodes [`PeerItem`]s with the wire codecs.
#[derive(Debug)]
pub struct ServerPeerCodec {
    pub limits: WireLimits,
}

impl PeerCodec for ServerPeerCodec {
    type Item = PeerItem;

    fn encode_item(&self, item: &PeerItem, out: &mut Vec<u8>) {
        match item {
            PeerItem::Raft {
                group,
                msg,
                records,
            } => {
                let mut buf = BytesMut::with_capacity(64 + records.len());
                match encode_raft(&mut buf, *group, msg, records, &self.limits) {
                    Ok(()) => {
                        out.push(TAG_RAFT);
                        out.extend_from_slice(&buf);
                    }
                    // Raft copes with a lost message; an item the peer would refuse
                    // must not poison the whole batch frame.
                    Err(e) => {
                        tracing::warn!(group, error = %e, "dropping an unencodable peer message")
                    }
                }
            }
            PeerItem::ClientAddr(addr) => {
                let text = addr.to_string();
                debug_assert!(text.len() <= CLIENT_ADDR_BYTES_MAX);
                out.push(TAG_CLIENT_ADDR);
                out.extend_from_slice(&(text.len() as u16).to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
}

fn encode_raft(
    out: &mut BytesMut,
    group: GroupId,
    msg: &Message,
    records: &[u8],
    limits: &WireLimits,
) -> Result<(), WireError> {
    let mut w = PeerBatchWriter::begin(out, 0, msg.from, msg.to, 0, limits);
    let pushed = match msg.body {
        MsgBody::Heartbeat { commit } => w.heartbeat(out, group, msg.term, commit),
        MsgBody::HeartbeatResp { match_index } => {
            w.heartbeat_resp(out, group, msg.term, match_index)
        }
        _ => w.message(out, group, msg, records),
    };
    match pushed {
        Ok(()) => w.finish(out).map(|_| ()),
        Err(e) => {
            w.abort(out);
            Err(e)
        }
    }
}

/// A decoded item from a peer.
#[derive(Debug)]
pub enum Inbound {
    /// Raft messages (with records sliced from the payload copy, no further copy).
    Raft(PeerBatch),
    ClientAddr(SocketAddr),
}

/// Splits one transport payload into items. `payload` is copied once into `Bytes` so
/// Append records can be kept past the call. An error names the first bad item; the
/// caller closes the connection.
pub fn decode_payload(
    payload: &[u8],
    from: NodeId,
    to: NodeId,
    limits: &WireLimits,
    mut each: impl FnMut(Inbound),
) -> Result<(), String> {
    let all = Bytes::copy_from_slice(payload);
    let mut at = 0usize;
    while at < all.len() {
        let tag = all[at];
        at += 1;
        match tag {
            TAG_RAFT => {
                let (header, body) = parse_frame(&all[at..], limits.max_frame_bytes)
                    .map_err(|e| format!("peer item at byte {at}: {e}"))?
                    .ok_or_else(|| format!("peer item at byte {at} is cut short"))?;
                if header.kind != Kind::PeerBatch {
                    return Err(format!("peer item at byte {at} is not a PeerBatch"));
                }
                let frame = dledger::wire::Frame {
                    header,
                    body: all.slice(at + body.start..at + body.end),
                };
                let mut batch = PeerBatch::default();
                batch
                    .decode_into(&frame, limits, from, to)
                    .map_err(|e| format!("peer batch at byte {at}: {e}"))?;
                at += body.end;
                each(Inbound::Raft(batch));
            }
            TAG_CLIENT_ADDR => {
                if all.len() - at < 2 {
                    return Err("client address length cut short".to_owned());
                }
                let len = usize::from(u16::from_be_bytes([all[at], all[at + 1]]));
                at += 2;
                if len > CLIENT_ADDR_BYTES_MAX || all.len() - at < len {
                    return Err(format!("client address of {len} bytes is too long or cut"));
                }
                let text = std::str::from_utf8(&all[at..at + len])
                    .map_err(|_| "client address is not UTF-8".to_owned())?;
                let addr: SocketAddr = text
                    .parse()
                    .map_err(|_| format!("client address {text:?} is not host:port"))?;
                at += len;
                each(Inbound::ClientAddr(addr));
            }
            other => return Err(format!("unknown peer item tag {other} at byte {}", at - 1)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: MsgBody) -> Message {
        Message {
            from: 1,
            to: 2,
            term: 5,
            body,
        }
    }

    #[test]
    fn items_round_trip_and_garbage_is_an_error() {
        let codec = ServerPeerCodec {
            limits: WireLimits::default(),
        };
        let items = [
            PeerItem::Raft {
                group: 7,
                msg: msg(MsgBody::Heartbeat { commit: 3 }),
                records: Bytes::new(),
            },
            PeerItem::Raft {
                group: 7,
                msg: msg(MsgBody::HeartbeatResp { match_index: 9 }),
                records: Bytes::new(),
            },
            PeerItem::Raft {
                group: 8,
                msg: msg(MsgBody::Append {
                    prev_index: 1,
                    prev_term: 1,
                    entries_term: 5,
                    count: 2,
                    commit: 1,
                }),
                records: Bytes::from_static(b"abcdef"),
            },
            PeerItem::ClientAddr("127.0.0.1:30911".parse().expect("literal address")),
        ];
        let mut payload = Vec::new();
        let mut boundaries = Vec::new();
        for item in &items {
            codec.encode_item(item, &mut payload);
            boundaries.push(payload.len());
        }
        let mut got = Vec::new();
        decode_payload(&payload, 1, 2, &WireLimits::default(), |i| got.push(i))
            .expect("valid payload");
        assert_eq!(got.len(), 4);
        match &got[2] {
            Inbound::Raft(b) => {
                assert_eq!(b.items[0].group, 8);
                assert_eq!(&b.items[0].entries[..], b"abcdef");
            }
            other => panic!("expected a raft item, got {other:?}"),
        }
        assert!(matches!(got[3], Inbound::ClientAddr(a) if a.port() == 30911));
        for cut in 1..payload.len() {
            let r = decode_payload(&payload[..cut], 1, 2, &WireLimits::default(), |_| {});
            assert_eq!(r.is_ok(), boundaries.contains(&cut), "cut at {cut}");
        }
        assert!(decode_payload(&[9], 1, 2, &WireLimits::default(), |_| {}).is_err());
        // A batch claiming another sender is refused.
        assert!(decode_payload(&payload, 3, 2, &WireLimits::default(), |_| {}).is_err());
    }
}

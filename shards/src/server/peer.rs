//! What a shard sends its peers, and how it is encoded inside the transport's batch frames.
//!
//! The transport ([`crate::net`]) hands the codec everything queued for a peer when its
//! writer wakes; the codec lays out one transport frame payload as self-delimiting parts:
//!
//! ```text
//! u8 tag
//! tag 1 (Raft): one wire PeerBatch frame (src/wire: 24-byte header with its own length
//!               and CRC) holding the Raft messages of every group of this shard bound
//!               for that peer: all heartbeats in its heartbeat section, all heartbeat
//!               answers in the response section, everything else (Appends with their
//!               records back to back) in the message section.
//! tag 2 (ClientAddr): u16 len | len bytes UTF-8 "host:port" — where this node serves
//!               clients, so peers can name it in NOT_LEADER and metadata answers.
//! tag 3 (ImportDigest): u32 group | u32 len | len bytes — the digest of the prefix this
//!               node imported into the group (len 0: none); see `import_gate`.
//! ```

use std::{collections::VecDeque, net::SocketAddr};

use bytes::{BufMut, Bytes};
use dledger::{
    config::GroupId,
    raft::{Message, MsgBody, NodeId},
    wire::{
        EntryParts, GatherBuf, HEADER_LEN, Kind, PeerBatch, PeerBatchWriter, WireError, WireLimits,
        parse_frame,
    },
};

use crate::disk::Entry;

use crate::net::{BatchEncoded, PeerCodec};

const TAG_RAFT: u8 = 1;
const TAG_CLIENT_ADDR: u8 = 2;
const TAG_IMPORT_DIGEST: u8 = 3;
/// Longest client address text accepted from a peer.
pub const CLIENT_ADDR_BYTES_MAX: usize = 300;

/// One unit a group (or the shard) queues for a peer.
#[derive(Debug)]
pub enum PeerItem {
    Raft {
        group: GroupId,
        msg: Message,
        /// The Append's records in index order, as the log's cache holds them (empty for
        /// other messages): each record's header is copied into the frame, its body
        /// spliced in (no copy) and sent with the transport's gather write.
        records: Vec<Entry>,
    },
    ClientAddr(SocketAddr),
    /// This node's import digest of a group (encoded; `None`: nothing imported).
    ImportDigest {
        group: GroupId,
        digest: Option<Bytes>,
    },
}

/// A cached record on the wire: its 48-byte header copied into the frame, its body
/// spliced (the `Bytes` the log's tail cache holds: no copy).
impl EntryParts for Entry {
    fn wire_len(&self) -> usize {
        self.record_bytes()
    }

    fn write_to(&self, out: &mut GatherBuf) {
        out.put_slice(&self.header);
        out.splice(&self.body);
    }
}

/// Encodes [`PeerItem`]s with the wire codecs.
#[derive(Debug)]
pub struct ServerPeerCodec {
    pub limits: WireLimits,
}

impl PeerCodec for ServerPeerCodec {
    type Item = PeerItem;

    /// Client addresses first, then one wire PeerBatch frame with as many Raft items as
    /// fit: every heartbeat of every group, then every heartbeat answer, then the other
    /// messages (Raft copes with the reordering). Items that do not fit stay queued.
    fn encode_batch(
        &self,
        queue: &mut VecDeque<PeerItem>,
        out: &mut GatherBuf,
        max_payload_bytes: usize,
    ) -> BatchEncoded {
        let mut done = BatchEncoded::default();
        let start_len = out.len();
        let mut rest = VecDeque::with_capacity(queue.len());
        // Pass 1: addresses (a few bytes each; they never fill a frame).
        while let Some(item) = queue.pop_front() {
            match item {
                PeerItem::ClientAddr(addr) => {
                    let text = addr.to_string();
                    let need = 3 + text.len();
                    if out.len() - start_len + need > max_payload_bytes {
                        rest.push_back(PeerItem::ClientAddr(addr));
                        continue;
                    }
                    debug_assert!(text.len() <= CLIENT_ADDR_BYTES_MAX);
                    let head = out.head_mut();
                    head.put_u8(TAG_CLIENT_ADDR);
                    head.put_slice(&(text.len() as u16).to_be_bytes());
                    head.put_slice(text.as_bytes());
                    done.items += 1;
                }
                PeerItem::ImportDigest { group, digest } => {
                    let len = digest.as_ref().map_or(0, |d| d.len());
                    let need = 1 + super::import_gate::ANNOUNCEMENT_HEADER_BYTES + len;
                    if out.len() - start_len + need > max_payload_bytes {
                        rest.push_back(PeerItem::ImportDigest { group, digest });
                        continue;
                    }
                    let head = out.head_mut();
                    head.put_u8(TAG_IMPORT_DIGEST);
                    super::import_gate::encode_announcement(group, digest.as_deref(), head);
                    done.items += 1;
                }
                raft => rest.push_back(raft),
            }
        }
        // Pass 2: one PeerBatch frame, sections in order.
        let room = max_payload_bytes.saturating_sub(out.len() - start_len + 1);
        let first_raft = rest.iter().find_map(|i| match i {
            PeerItem::Raft { msg, .. } => Some((msg.from, msg.to)),
            PeerItem::ClientAddr(_) | PeerItem::ImportDigest { .. } => None,
        });
        if let Some((from, to)) = first_raft
            && room > HEADER_LEN
        {
            let mut limits = self.limits;
            limits.max_frame_bytes = limits
                .max_frame_bytes
                .min(room.min(u32::MAX as usize) as u32);
            // The batch frame is written straight into the transport's buffer, after its
            // tag: no intermediate buffer, and record bodies are spliced, not copied.
            let tag_at = out.mark();
            out.head_mut().put_u8(TAG_RAFT);
            let buf = &mut *out;
            let mut w = PeerBatchWriter::begin(buf, 0, from, to, 0, &limits);
            let mut taken = vec![false; rest.len()];
            for section in 0..3 {
                for (i, item) in rest.iter().enumerate() {
                    let PeerItem::Raft {
                        group,
                        msg,
                        records,
                    } = item
                    else {
                        continue;
                    };
                    let pushed = match (section, msg.body) {
                        (0, MsgBody::Heartbeat { commit, quiesce }) => {
                            w.heartbeat(buf, *group, msg.term, commit, quiesce)
                        }
                        (1, MsgBody::HeartbeatResp { match_index }) => {
                            w.heartbeat_resp(buf, *group, msg.term, match_index)
                        }
                        (2, MsgBody::Heartbeat { .. } | MsgBody::HeartbeatResp { .. }) => continue,
                        (2, _) => w.message_parts(buf, *group, msg, records),
                        _ => continue,
                    };
                    match pushed {
                        Ok(()) => taken[i] = true,
                        Err(WireError::FrameTooLarge { .. } | WireError::TooMany { .. })
                            if done.items == 0 && !taken.iter().any(|t| *t) =>
                        {
                            // Alone it cannot fit a frame: drop it (Raft resends).
                            tracing::warn!(group, "dropping a peer message larger than a frame");
                            taken[i] = true;
                            done.dropped += 1;
                        }
                        Err(WireError::FrameTooLarge { .. } | WireError::TooMany { .. }) => {}
                        Err(e) => {
                            tracing::warn!(group, error = %e, "dropping an unencodable peer message");
                            taken[i] = true;
                            done.dropped += 1;
                        }
                    }
                }
            }
            let encoded = taken.iter().filter(|t| **t).count() as u64 - done.dropped;
            if encoded > 0 {
                match w.finish(buf) {
                    Ok(_) => done.items += encoded,
                    Err(e) => {
                        tracing::warn!(error = %e, "dropping a peer batch that failed to close");
                        out.truncate(tag_at);
                        done.dropped += encoded;
                    }
                }
            } else {
                w.abort(buf);
                out.truncate(tag_at);
            }
            let mut i = 0;
            rest.retain(|_| {
                let keep = !taken[i];
                i += 1;
                keep
            });
        }
        *queue = rest;
        done
    }
}

/// A decoded item from a peer.
#[derive(Debug)]
pub enum Inbound {
    /// Raft messages (with records sliced from the received payload, no copy).
    Raft(PeerBatch),
    ClientAddr(SocketAddr),
    ImportDigest {
        group: GroupId,
        digest: Option<dledger::upgrade::PrefixDigest>,
    },
}

/// Splits one transport payload into items; Append records are slices of `payload` (no
/// copy). An error names the first bad item; the caller closes the connection.
pub fn decode_payload(
    all: Bytes,
    from: NodeId,
    to: NodeId,
    limits: &WireLimits,
    mut each: impl FnMut(Inbound),
) -> Result<(), String> {
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
            TAG_IMPORT_DIGEST => {
                let (group, digest) = super::import_gate::decode_announcement(&all, &mut at)?;
                each(Inbound::ImportDigest { group, digest });
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

    /// A cached record with a recognisable header and `body`.
    fn entry(index: u64, body: &'static [u8]) -> Entry {
        Entry {
            index,
            term: 5,
            pos: 0,
            header: [index as u8; dledger::store::record::HEADER_BYTES],
            body: Bytes::from_static(body),
        }
    }

    fn items() -> VecDeque<PeerItem> {
        VecDeque::from([
            PeerItem::Raft {
                group: 8,
                msg: msg(MsgBody::Append {
                    prev_index: 1,
                    prev_term: 1,
                    entries_term: 5,
                    count: 2,
                    commit: 1,
                }),
                records: vec![entry(2, b"abc"), entry(3, b"def")],
            },
            PeerItem::Raft {
                group: 7,
                msg: msg(MsgBody::HeartbeatResp { match_index: 9 }),
                records: Vec::new(),
            },
            PeerItem::Raft {
                group: 7,
                msg: msg(MsgBody::Heartbeat {
                    commit: 3,
                    quiesce: true,
                }),
                records: Vec::new(),
            },
            PeerItem::ClientAddr("127.0.0.1:30911".parse().expect("literal address")),
        ])
    }

    #[test]
    fn one_batch_holds_every_section_and_garbage_is_an_error() {
        let codec = ServerPeerCodec {
            limits: WireLimits::default(),
        };
        let mut queue = items();
        let mut gathered = GatherBuf::new();
        let done = codec.encode_batch(&mut queue, &mut gathered, 1 << 20);
        let payload = gathered.to_bytes();
        assert!(queue.is_empty());
        assert_eq!(
            done,
            BatchEncoded {
                items: 4,
                dropped: 0
            }
        );
        let mut got = Vec::new();
        decode_payload(payload.clone(), 1, 2, &WireLimits::default(), |i| {
            got.push(i)
        })
        .expect("valid payload");
        assert_eq!(got.len(), 2, "the address, then one Raft batch");
        assert!(matches!(got[0], Inbound::ClientAddr(a) if a.port() == 30911));
        let Inbound::Raft(b) = &got[1] else {
            panic!("expected a raft batch, got {:?}", got[1]);
        };
        let bodies: Vec<MsgBody> = b.items.iter().map(|i| i.msg.body).collect();
        assert!(matches!(
            bodies[0],
            MsgBody::Heartbeat {
                commit: 3,
                quiesce: true
            }
        ));
        assert!(matches!(
            bodies[1],
            MsgBody::HeartbeatResp { match_index: 9 }
        ));
        assert!(matches!(bodies[2], MsgBody::Append { count: 2, .. }));
        let mut want = [2u8; 48].to_vec();
        want.extend_from_slice(b"abc");
        want.extend_from_slice(&[3u8; 48]);
        want.extend_from_slice(b"def");
        assert_eq!(&b.items[2].entries[..], &want[..]);

        let address_part = 3 + "127.0.0.1:30911".len();
        for cut in 1..payload.len() {
            let r = decode_payload(payload.slice(..cut), 1, 2, &WireLimits::default(), |_| {});
            assert_eq!(r.is_ok(), cut == address_part, "cut at {cut}");
        }
        assert!(
            decode_payload(
                Bytes::from_static(&[9]),
                1,
                2,
                &WireLimits::default(),
                |_| {}
            )
            .is_err()
        );
        // A batch claiming another sender is refused.
        assert!(decode_payload(payload.clone(), 3, 2, &WireLimits::default(), |_| {}).is_err());
    }

    #[test]
    fn a_small_payload_leaves_the_rest_queued() {
        let codec = ServerPeerCodec {
            limits: WireLimits::default(),
        };
        let mut queue = items();
        let mut payload = GatherBuf::new();
        // Room for the address and a frame with the heartbeat only.
        let room = 3 + 15 + 1 + HEADER_LEN + 12 + 4 + 20 + 4 + 4;
        let done = codec.encode_batch(&mut queue, &mut payload, room);
        assert_eq!(
            done,
            BatchEncoded {
                items: 2,
                dropped: 0
            }
        );
        assert_eq!(
            queue.len(),
            2,
            "the answer and the append wait for the next frame"
        );
        assert!(payload.len() <= room);
    }

    #[test]
    fn pushed_bodies_are_spliced_not_copied() {
        let codec = ServerPeerCodec {
            limits: WireLimits::default(),
        };
        let mut queue = items();
        let bodies: Vec<Bytes> = match &queue[0] {
            PeerItem::Raft { records, .. } => records.iter().map(|e| e.body.clone()).collect(),
            _ => panic!("the first test item is an append"),
        };
        let mut out = GatherBuf::new();
        codec.encode_batch(&mut queue, &mut out, 1 << 20);
        assert_eq!(out.part_count(), 2, "one part per body");
        let pieces = out.pieces();
        for body in &bodies {
            assert!(
                pieces
                    .iter()
                    .any(|p| p.as_ptr() == body.as_ptr() && p.len() == body.len()),
                "a body is sent from its own memory"
            );
        }
    }
}

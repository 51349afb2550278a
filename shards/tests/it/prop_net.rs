//! Hostile input against the peer transport's decoders (the 12-byte envelope, the
//! handshake payloads, the length-prefixed splitter) and the server's peer payload
//! decoder: arbitrary bytes never panic, a length is checked before anything is sized by
//! it, and what the encoders write decodes back to what was queued.

// Test helpers outside #[test] fns: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::Bytes;
use dledger::raft::{Message, MsgBody, RejectHint};
use dledger::store::record::HEADER_BYTES;
use dledger::wire::{GatherBuf, WireLimits};
use dledger_shards::disk::Entry;
use dledger_shards::net::frame::{
    CLUSTER_NAME_BYTES_MAX, FRAME_HEADER_BYTES, FrameError, FrameKind, Hello, HelloAck,
    decode_header, encode_header,
};
use dledger_shards::net::{LengthPrefixedCodec, PeerCodec, split_length_prefixed};
use dledger_shards::server::{PeerInbound, PeerItem, ServerPeerCodec, decode_peer_payload};
use proptest::prelude::*;

fn arb_hello() -> impl Strategy<Value = Hello> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u16>(),
        proptest::collection::vec(any::<char>(), 0..40),
    )
        .prop_map(
            |(node_id, shard_id, shard_count, protocol_version, chars)| {
                let mut cluster: String = chars.into_iter().collect();
                while cluster.len() > CLUSTER_NAME_BYTES_MAX {
                    cluster.pop();
                }
                Hello {
                    node_id,
                    shard_id,
                    shard_count,
                    protocol_version,
                    cluster,
                }
            },
        )
}

fn arb_body() -> impl Strategy<Value = MsgBody> {
    let u = || 0u64..1 << 40;
    prop_oneof![
        (u(), u()).prop_map(|(last_index, last_term)| MsgBody::PreVote {
            last_index,
            last_term
        }),
        any::<bool>().prop_map(|granted| MsgBody::VoteResp { granted }),
        (u(), u(), u(), 1u32..4, u()).prop_map(
            |(prev_index, prev_term, entries_term, count, commit)| MsgBody::Append {
                prev_index,
                prev_term,
                entries_term,
                count,
                commit,
            }
        ),
        (u(), u(), proptest::option::of((u(), u(), u()))).prop_map(
            |(match_index, rejected_prev, reject)| MsgBody::AppendResp {
                match_index,
                rejected_prev,
                reject: reject.map(|(last_index, conflict_term, conflict_first_index)| {
                    RejectHint {
                        last_index,
                        conflict_term,
                        conflict_first_index,
                    }
                }),
            }
        ),
        (u(), any::<bool>()).prop_map(|(commit, quiesce)| MsgBody::Heartbeat { commit, quiesce }),
        u().prop_map(|match_index| MsgBody::HeartbeatResp { match_index }),
        Just(MsgBody::TimeoutNow),
    ]
}

/// Raft items from node 1 to node 2 (Appends carry some record bytes), and addresses.
/// A cached record whose encoded bytes are `record`: header and body as the tail cache
/// holds them (the codec sends the header copied and the body spliced).
fn entry_of(record: &[u8]) -> Entry {
    let mut header = [0u8; HEADER_BYTES];
    header.copy_from_slice(&record[..HEADER_BYTES]);
    Entry {
        index: 1,
        term: 1,
        pos: 0,
        header,
        body: Bytes::copy_from_slice(&record[HEADER_BYTES..]),
    }
}

fn arb_items() -> impl Strategy<Value = Vec<(u32, u64, MsgBody, Vec<u8>)>> {
    proptest::collection::vec(
        (
            any::<u32>(),
            1u64..1 << 30,
            arb_body(),
            // A whole record header (the cache's fixed part) and a body of 0..40 bytes.
            proptest::collection::vec(any::<u8>(), HEADER_BYTES..HEADER_BYTES + 40),
        ),
        0..30,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any 12 bytes: a header is accepted only with magic, version, a known kind, zero
    /// reserved bytes and a length within the limit — checked before any payload read.
    #[test]
    fn any_header_is_checked_before_its_payload(
        bytes in proptest::array::uniform12(any::<u8>()),
        max in 0usize..1 << 20,
    ) {
        match decode_header(&bytes, max) {
            Ok(h) => {
                prop_assert!(h.payload_len <= max);
                prop_assert_eq!(&bytes[..4], b"DLPF");
            }
            Err(FrameError::TooLarge { len, max: m }) => prop_assert!(len > m as u64),
            Err(_) => {}
        }
    }

    #[test]
    fn hello_and_ack_round_trip(hello in arb_hello(), node in any::<u32>(), shard in any::<u32>()) {
        let mut out = Vec::new();
        hello.encode_frame(&mut out);
        let header = decode_header(out[..FRAME_HEADER_BYTES].try_into().unwrap(), usize::MAX).unwrap();
        prop_assert_eq!(header.kind, FrameKind::Hello);
        prop_assert_eq!(header.payload_len, out.len() - FRAME_HEADER_BYTES);
        prop_assert_eq!(Hello::decode_payload(&out[FRAME_HEADER_BYTES..]).unwrap(), hello);
        let ack = HelloAck { node_id: node, shard_id: shard, shard_count: shard / 2 + 1 };
        let mut out = Vec::new();
        ack.encode_frame(&mut out);
        prop_assert_eq!(HelloAck::decode_payload(&out[FRAME_HEADER_BYTES..]).unwrap(), ack);
    }

    /// Handshake payloads and item lists of arbitrary bytes: errors, never panics;
    /// the splitter tiles the payload exactly or stops at its first error.
    #[test]
    fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Hello::decode_payload(&bytes);
        let _ = HelloAck::decode_payload(&bytes);
        let mut covered = 0;
        let mut errors = 0;
        for item in split_length_prefixed(&bytes) {
            prop_assert_eq!(errors, 0, "nothing after an error");
            match item {
                Ok(i) => covered += 4 + i.len(),
                Err(_) => errors += 1,
            }
        }
        prop_assert!(errors == 1 || covered == bytes.len());
    }

    /// A Batch header announcing any length up to u32::MAX is refused by the limit,
    /// not by running out of memory.
    #[test]
    fn an_oversized_batch_length_is_refused(len in any::<u32>(), max in 0usize..1 << 24) {
        let mut out = Vec::new();
        encode_header(FrameKind::Batch, 0, &mut out);
        out[8..12].copy_from_slice(&len.to_be_bytes());
        let r = decode_header(out[..].try_into().unwrap(), max);
        prop_assert_eq!(r.is_err(), len as usize > max);
    }

    #[test]
    fn length_prefixed_items_round_trip(items in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..20)) {
        let mut queue: VecDeque<Vec<u8>> = items.iter().cloned().collect();
        let mut payload = GatherBuf::new();
        let done = LengthPrefixedCodec.encode_batch(&mut queue, &mut payload, 1 << 20);
        prop_assert_eq!(done.items as usize, items.len());
        let payload = payload.to_bytes();
        let back: Vec<Vec<u8>> = split_length_prefixed(&payload).map(|i| i.unwrap().to_vec()).collect();
        prop_assert_eq!(back, items);
    }

    /// What the server's peer codec writes, its decoder reads back: every queued Raft
    /// message of every group (records intact) and the client address.
    #[test]
    fn server_peer_payload_round_trips(items in arb_items(), port in 1u16..) {
        let limits = WireLimits::default();
        let codec = ServerPeerCodec { limits };
        let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut queue: VecDeque<PeerItem> = items
            .iter()
            .map(|(group, term, body, records)| PeerItem::Raft {
                group: *group,
                msg: Message { from: 1, to: 2, term: *term, body: *body },
                records: if matches!(body, MsgBody::Append { .. }) && !records.is_empty() {
                    vec![entry_of(records)]
                } else {
                    Vec::new()
                },
            })
            .collect();
        queue.push_back(PeerItem::ClientAddr(addr));
        let mut payload = GatherBuf::new();
        let done = codec.encode_batch(&mut queue, &mut payload, 1 << 20);
        let payload = payload.to_bytes();
        prop_assert!(queue.is_empty());
        prop_assert_eq!(done.items as usize, items.len() + 1);
        let mut got = Vec::new();
        let mut addrs = Vec::new();
        decode_peer_payload(payload.clone(), 1, 2, &limits, |i| match i {
            PeerInbound::Raft(b) => got.extend(b.items),
            PeerInbound::ClientAddr(a) => addrs.push(a),
            PeerInbound::ImportDigest { .. } => {}
        })
        .unwrap();
        prop_assert_eq!(addrs, vec![addr]);
        prop_assert_eq!(got.len(), items.len());
        // Sections reorder messages (heartbeats first); compare as multisets.
        let mut want: Vec<String> = items.iter().map(|(g, t, b, r)| {
            let r: &[u8] = if matches!(b, MsgBody::Append { .. }) { r } else { &[] };
            format!("{g} {t} {b:?} {r:?}")
        }).collect();
        let mut have: Vec<String> = got.iter().map(|i| {
            prop_assert_eq!((i.msg.from, i.msg.to), (1, 2));
            Ok(format!("{} {} {:?} {:?}", i.group, i.msg.term, i.msg.body, &i.entries[..]))
        }).collect::<Result<_, TestCaseError>>()?;
        want.sort();
        have.sort();
        prop_assert_eq!(have, want);
        // The same payload from a connection whose handshake named another node is refused.
        let as_other = decode_peer_payload(payload, 3, 2, &limits, drop);
        prop_assert!(items.is_empty() || as_other.is_err());
    }

    /// Arbitrary bytes as a server peer payload: an error naming the bad item, never a
    /// panic, never an item from a batch claiming other nodes.
    #[test]
    fn arbitrary_server_peer_payload_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let limits = WireLimits::default();
        let r = decode_peer_payload(Bytes::from(bytes), 1, 2, &limits, |i| {
            if let PeerInbound::Raft(b) = i {
                assert_eq!((b.from, b.to), (1, 2));
            }
        });
        if let Err(e) = r {
            prop_assert!(!e.is_empty());
        }
    }
}

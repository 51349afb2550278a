//! Round trips for every message; truncated, bit-flipped and hostile input.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::config::HostPort;
use crate::raft::{Message, MsgBody, RejectHint, Role};

fn limits() -> WireLimits {
    WireLimits::default()
}

/// Encodes, frames, decodes the frame, decodes the message.
fn round_trip<M: Body + PartialEq + std::fmt::Debug>(m: &M) -> M {
    let mut out = BytesMut::new();
    let n = m.encode(42, &limits(), &mut out).unwrap();
    assert_eq!(n, out.len());
    let frame = FrameDecoder::new(limits().max_frame_bytes)
        .decode(&mut out)
        .unwrap()
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(frame.header.request_id, 42);
    assert_eq!(frame.header.kind, M::KIND);
    // Also through the generic client dispatch where it applies.
    if !matches!(M::KIND, Kind::Hello | Kind::PeerBatch) {
        let any = ClientMessage::decode(&frame, &limits()).unwrap();
        let mut again = BytesMut::new();
        any.encode(42, &limits(), &mut again).unwrap();
        let mut first = BytesMut::new();
        m.encode(42, &limits(), &mut first).unwrap();
        assert_eq!(again, first);
    }
    M::decode(&frame, &limits()).unwrap()
}

fn arb_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{0,40}"
}

fn arb_host_port() -> impl Strategy<Value = HostPort> {
    ("[a-z0-9.:-]{1,40}", any::<u16>()).prop_map(|(host, port)| HostPort { host, port })
}

fn arb_node() -> impl Strategy<Value = u32> {
    0..u32::MAX
}

fn arb_role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Follower),
        Just(Role::PreCandidate),
        Just(Role::Candidate),
        Just(Role::Leader)
    ]
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn arb_leader() -> impl Strategy<Value = Option<LeaderHint>> {
    proptest::option::of(
        (arb_node(), proptest::option::of(arb_host_port()))
            .prop_map(|(id, client_addr)| LeaderHint { id, client_addr }),
    )
}

fn arb_code() -> impl Strategy<Value = ResponseCode> {
    proptest::sample::select(ResponseCode::ALL.to_vec())
}

fn arb_msg_body() -> impl Strategy<Value = MsgBody> {
    let u = any::<u64>;
    prop_oneof![
        (u(), u()).prop_map(|(last_index, last_term)| MsgBody::PreVote {
            last_index,
            last_term
        }),
        any::<bool>().prop_map(|granted| MsgBody::PreVoteResp { granted }),
        (u(), u(), any::<bool>()).prop_map(|(last_index, last_term, transfer)| MsgBody::Vote {
            last_index,
            last_term,
            transfer
        }),
        any::<bool>().prop_map(|granted| MsgBody::VoteResp { granted }),
        (u(), u(), u(), 0u32..50, u()).prop_map(
            |(prev_index, prev_term, entries_term, count, commit)| MsgBody::Append {
                prev_index,
                prev_term,
                entries_term,
                count,
                commit
            }
        ),
        (u(), u(), proptest::option::of((u(), u(), u()))).prop_map(
            |(match_index, rejected_prev, r)| MsgBody::AppendResp {
                match_index,
                rejected_prev,
                reject: r.map(
                    |(last_index, conflict_term, conflict_first_index)| RejectHint {
                        last_index,
                        conflict_term,
                        conflict_first_index
                    }
                ),
            }
        ),
        (u(), any::<bool>()).prop_map(|(commit, quiesce)| MsgBody::Heartbeat { commit, quiesce }),
        u().prop_map(|match_index| MsgBody::HeartbeatResp { match_index }),
        Just(MsgBody::TimeoutNow),
    ]
}

/// What a writer is asked to put into one batch.
#[derive(Clone, Debug)]
struct BatchInput {
    from: u32,
    to: u32,
    shard: u16,
    heartbeats: Vec<(u32, u64, u64, bool)>,
    responses: Vec<(u32, u64, u64)>,
    messages: Vec<(u32, u64, MsgBody, Vec<u8>)>,
}

fn arb_batch() -> impl Strategy<Value = BatchInput> {
    let msg = (any::<u32>(), any::<u64>(), arb_msg_body(), any::<u8>()).prop_map(
        |(group, term, body, fill)| {
            // An Append of `count` entries carries `count` fake records of 3 bytes.
            let entries = match body {
                MsgBody::Append { count, .. } => vec![fill; 3 * count as usize],
                _ => Vec::new(),
            };
            (group, term, body, entries)
        },
    );
    (
        arb_node(),
        arb_node(),
        any::<u16>(),
        proptest::collection::vec(
            (any::<u32>(), any::<u64>(), any::<u64>(), any::<bool>()),
            0..20,
        ),
        proptest::collection::vec((any::<u32>(), any::<u64>(), any::<u64>()), 0..20),
        proptest::collection::vec(msg, 0..20),
    )
        .prop_map(
            |(from, to, shard, heartbeats, responses, messages)| BatchInput {
                from,
                to,
                shard,
                heartbeats,
                responses,
                messages,
            },
        )
}

fn write_batch(b: &BatchInput, out: &mut BytesMut) -> usize {
    let mut g = GatherBuf::new();
    let n = write_batch_parts(b, &mut g, &[]);
    out.extend_from_slice(&g.to_bytes());
    n
}

/// An Append's entries cut into pieces, each copied or shared as the test says.
enum TestPart {
    Copied(Vec<u8>),
    Shared(Bytes),
}

impl EntryParts for TestPart {
    fn wire_len(&self) -> usize {
        match self {
            TestPart::Copied(v) => v.len(),
            TestPart::Shared(b) => b.len(),
        }
    }
    fn write_to(&self, out: &mut GatherBuf) {
        match self {
            TestPart::Copied(v) => out.put_slice(v),
            TestPart::Shared(b) => out.splice(b),
        }
    }
}

/// Writes `b` into `out`; with `cuts` empty every message's entries are copied in one
/// piece (the single-buffer layout), else they are cut at `cuts` (taken modulo the
/// length) into pieces alternately shared (spliced) and copied.
fn write_batch_parts(b: &BatchInput, out: &mut GatherBuf, cuts: &[u16]) -> usize {
    let mut w = PeerBatchWriter::begin(out, 7, b.from, b.to, b.shard, &limits());
    for &(g, t, c, q) in &b.heartbeats {
        w.heartbeat(out, g, t, c, q).unwrap();
    }
    for &(g, t, m) in &b.responses {
        w.heartbeat_resp(out, g, t, m).unwrap();
    }
    for (g, term, body, entries) in &b.messages {
        let m = Message {
            from: b.from,
            to: b.to,
            term: *term,
            body: *body,
        };
        if cuts.is_empty() {
            w.message(out, *g, &m, entries).unwrap();
            continue;
        }
        let mut at: Vec<usize> = cuts
            .iter()
            .map(|&c| usize::from(c) % (entries.len() + 1))
            .collect();
        at.push(0);
        at.push(entries.len());
        at.sort_unstable();
        let parts: Vec<TestPart> = at
            .windows(2)
            .enumerate()
            .map(|(i, span)| {
                let piece = &entries[span[0]..span[1]];
                if i % 2 == 0 {
                    TestPart::Shared(Bytes::copy_from_slice(piece))
                } else {
                    TestPart::Copied(piece.to_vec())
                }
            })
            .collect();
        w.message_parts(out, *g, &m, &parts).unwrap();
    }
    w.finish(out).unwrap()
}

fn expected_items(b: &BatchInput) -> Vec<GroupMessage> {
    let mk = |group, term, body, entries: &[u8]| GroupMessage {
        group,
        msg: Message {
            from: b.from,
            to: b.to,
            term,
            body,
        },
        entries: Bytes::copy_from_slice(entries),
    };
    let mut v = Vec::new();
    for &(g, t, commit, quiesce) in &b.heartbeats {
        v.push(mk(g, t, MsgBody::Heartbeat { commit, quiesce }, &[]));
    }
    for &(g, t, match_index) in &b.responses {
        v.push(mk(g, t, MsgBody::HeartbeatResp { match_index }, &[]));
    }
    for (g, t, body, e) in &b.messages {
        v.push(mk(*g, *t, *body, e));
    }
    v
}

/// Every kind of frame, for the corruption tests.
fn sample_frames() -> Vec<BytesMut> {
    let l = limits();
    let addr = HostPort {
        host: "127.0.0.1".into(),
        port: 30911,
    };
    let mut frames = Vec::new();
    let mut push = |f: &dyn Fn(&mut BytesMut)| {
        let mut b = BytesMut::new();
        f(&mut b);
        frames.push(b);
    };
    push(&|b| {
        AppendRequest {
            group: "RaftNode00".into(),
            bodies: vec![Bytes::from_static(b"hello"), Bytes::from_static(b"world!")],
        }
        .encode(1, &l, b)
        .map(drop)
        .unwrap()
    });
    push(&|b| {
        AppendResponse {
            entries: vec![AppendedEntry {
                index: 5,
                pos: 4096,
            }],
        }
        .encode(1, &l, b)
        .map(drop)
        .unwrap()
    });
    push(&|b| {
        GetResponse {
            commit_index: 9,
            entries: vec![GotEntry {
                index: 9,
                term: 2,
                pos: 100,
                body: Bytes::from_static(b"abc"),
            }],
        }
        .encode(1, &l, b)
        .map(drop)
        .unwrap()
    });
    push(&|b| {
        MetadataResponse {
            group: "G".into(),
            self_id: 1,
            role: Role::Follower,
            term: 3,
            leader: Some(LeaderHint {
                id: 0,
                client_addr: Some(addr.clone()),
            }),
            commit_index: 10,
            ledger_begin: 1,
            ledger_end: 11,
            peers: vec![PeerInfo {
                id: 0,
                peer_addr: addr.clone(),
                client_addr: None,
            }],
            failures_tolerated: 0,
        }
        .encode(1, &l, b)
        .map(drop)
        .unwrap()
    });
    push(&|b| {
        ErrorResponse {
            code: ResponseCode::NotLeader,
            leader: Some(LeaderHint {
                id: 2,
                client_addr: Some(addr.clone()),
            }),
            message: "not the leader".into(),
        }
        .encode(1, &l, b)
        .map(drop)
        .unwrap()
    });
    push(&|b| {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            node_id: 1,
            shard: 0,
            shard_count: 2,
            target_shard: 1,
            cluster: "RaftCluster".into(),
            client_addr: addr.clone(),
        }
        .encode(1, &l, b)
        .map(drop)
        .unwrap()
    });
    push(&|b| {
        let batch = BatchInput {
            from: 0,
            to: 1,
            shard: 0,
            heartbeats: vec![(1, 2, 3, false), (4, 5, 6, true)],
            responses: vec![(7, 8, 9)],
            messages: vec![(
                9,
                2,
                MsgBody::Append {
                    prev_index: 1,
                    prev_term: 1,
                    entries_term: 2,
                    count: 2,
                    commit: 1,
                },
                vec![0xAB; 6],
            )],
        };
        write_batch(&batch, b);
    });
    frames
}

/// Decodes a frame's body as whatever its kind says; errors are fine, panics are not.
fn decode_any(frame: &Frame) -> Result<(), WireError> {
    match frame.header.kind {
        Kind::Hello => Hello::decode(frame, &limits()).map(drop),
        Kind::PeerBatch => {
            let mut b = PeerBatch::default();
            b.decode_into(frame, &limits(), 0, 1)
        }
        _ => ClientMessage::decode(frame, &limits()).map(drop),
    }
}

/// Re-frames `body` under `kind` with a correct CRC, so corruption reaches the body codec.
fn reframe(kind: Kind, body: &[u8]) -> Frame {
    let mut out = BytesMut::new();
    let w = FrameWriter::begin(&mut out, kind, 1);
    out.put_slice(body);
    w.finish(&mut out, u32::MAX).unwrap();
    FrameDecoder::new(u32::MAX)
        .decode(&mut out)
        .unwrap()
        .unwrap()
}

#[test]
fn oversized_length_prefix_is_rejected_before_the_body_arrives() {
    let mut hdr = BytesMut::new();
    let w = FrameWriter::begin(&mut hdr, Kind::AppendRequest, 1);
    w.finish(&mut hdr, u32::MAX).unwrap();
    hdr[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
    let dec = FrameDecoder::new(1 << 20);
    // Only the first 20 bytes: the length is known, the body is not there.
    let mut partial = BytesMut::from(&hdr[..20]);
    let err = dec.decode(&mut partial).unwrap_err();
    assert!(matches!(err, WireError::FrameTooLarge { .. }), "{err}");
    assert!(err.to_string().starts_with("FRAME_TOO_LARGE"));
    assert_eq!(err.response_code(), ResponseCode::FrameTooLarge);
    assert!(err.is_fatal_for_connection());
    // The decoder never asks for more than max_frame_bytes.
    assert_eq!(dec.bytes_needed(&hdr), 1 << 20);
    assert_eq!(dec.bytes_needed(&hdr[..3]), HEADER_LEN);
}

#[test]
fn encoder_refuses_a_frame_over_the_limit_and_leaves_the_buffer_alone() {
    let small = WireLimits {
        max_frame_bytes: 1024,
        ..limits()
    };
    let mut out = BytesMut::from(&b"prefix"[..]);
    let m = AppendRequest {
        group: "G".into(),
        bodies: vec![Bytes::from(vec![0u8; 2000])],
    };
    let err = m.encode(1, &small, &mut out).unwrap_err();
    assert!(matches!(err, WireError::FrameTooLarge { .. }), "{err}");
    assert_eq!(&out[..], b"prefix");
    // A body above max_body_bytes is refused by the encoder too.
    let tiny_body = WireLimits {
        max_body_bytes: 10,
        ..limits()
    };
    assert!(m.encode(1, &tiny_body, &mut out).is_err());
    assert_eq!(&out[..], b"prefix");
    // A group name longer than its u8 length prefix.
    let long = AppendRequest {
        group: "x".repeat(300),
        bodies: vec![Bytes::from_static(b"a")],
    };
    assert!(long.encode(1, &limits(), &mut out).is_err());
    assert_eq!(&out[..], b"prefix");
}

#[test]
fn counts_are_bounded_by_limits_and_by_bytes_present() {
    // An AppendRequest claiming a million bodies in a few bytes: TooMany, no allocation.
    let mut body = BytesMut::new();
    body.put_u8(1);
    body.put_u8(b'G');
    body.put_u32(1_000_000);
    let f = reframe(Kind::AppendRequest, &body);
    assert!(matches!(
        ClientMessage::decode(&f, &limits()),
        Err(WireError::TooMany { .. })
    ));
    // Within the limit but more than the bytes can hold: Truncated before reserving.
    body[2..6].copy_from_slice(&1000u32.to_be_bytes());
    let f = reframe(Kind::AppendRequest, &body);
    assert!(matches!(
        ClientMessage::decode(&f, &limits()),
        Err(WireError::Truncated { .. })
    ));
    // Zero bodies: REQUEST_WITH_EMPTY_BODYS territory.
    body[2..6].copy_from_slice(&0u32.to_be_bytes());
    let f = reframe(Kind::AppendRequest, &body);
    let err = ClientMessage::decode(&f, &limits()).unwrap_err();
    assert_eq!(err.response_code(), ResponseCode::RequestWithEmptyBodys);
    // A body length above max_body_bytes.
    let mut body = BytesMut::new();
    body.put_u8(0);
    body.put_u32(1);
    body.put_u32(limits().max_body_bytes + 1);
    let f = reframe(Kind::AppendRequest, &body);
    assert!(matches!(
        ClientMessage::decode(&f, &limits()),
        Err(WireError::TooMany { .. })
    ));
    // A peer batch with a huge heartbeat count.
    let mut body = BytesMut::new();
    body.put_u32(0);
    body.put_u32(1);
    body.put_u32(0);
    body.put_u32(u32::MAX);
    let f = reframe(Kind::PeerBatch, &body);
    let mut batch = PeerBatch::default();
    assert!(batch.decode_into(&f, &limits(), 0, 1).is_err());
    assert!(batch.items.capacity() < 1024);
}

#[test]
fn peer_batch_from_another_node_is_refused() {
    let mut out = BytesMut::new();
    let b = BatchInput {
        from: 5,
        to: 1,
        shard: 0,
        heartbeats: vec![(1, 1, 1, true)],
        responses: vec![],
        messages: vec![],
    };
    write_batch(&b, &mut out);
    let f = FrameDecoder::new(1 << 20)
        .decode(&mut out)
        .unwrap()
        .unwrap();
    let mut batch = PeerBatch::default();
    let err = batch.decode_into(&f, &limits(), 0, 1).unwrap_err();
    assert!(
        matches!(err, WireError::WrongSender { claimed: 5, .. }),
        "{err}"
    );
    batch.decode_into(&f, &limits(), 5, 1).unwrap();
    assert_eq!(batch.items.len(), 1);
}

#[test]
fn peer_batch_writer_enforces_order_and_limits() {
    let l = WireLimits {
        max_groups_per_batch: 2,
        max_entries_per_append: 4,
        ..limits()
    };
    let mut out = GatherBuf::new();
    let mut w = PeerBatchWriter::begin(&mut out, 1, 0, 1, 0, &l);
    w.heartbeat(&mut out, 1, 1, 1, false).unwrap();
    w.heartbeat(&mut out, 2, 1, 1, false).unwrap();
    let before = out.len();
    assert!(matches!(
        w.heartbeat(&mut out, 3, 1, 1, false),
        Err(WireError::TooMany { .. })
    ));
    assert_eq!(out.len(), before, "a refused push writes nothing");
    let append = |count| Message {
        from: 0,
        to: 1,
        term: 1,
        body: MsgBody::Append {
            prev_index: 0,
            prev_term: 0,
            entries_term: 1,
            count,
            commit: 0,
        },
    };
    assert!(
        w.message(&mut out, 9, &append(5), &[0; 5]).is_err(),
        "count > limit"
    );
    assert!(
        w.message(&mut out, 9, &append(2), &[]).is_err(),
        "entries missing"
    );
    let wrong_from = Message {
        from: 3,
        ..append(1)
    };
    assert!(w.message(&mut out, 9, &wrong_from, &[1]).is_err());
    w.message(&mut out, 9, &append(1), &[7]).unwrap();
    assert!(
        matches!(
            w.heartbeat_resp(&mut out, 1, 1, 0),
            Err(WireError::Misuse(_))
        ),
        "sections go in order"
    );
    w.finish(&mut out).unwrap();
    let mut out = BytesMut::from(&out.to_bytes()[..]);
    let f = FrameDecoder::new(l.max_frame_bytes)
        .decode(&mut out)
        .unwrap()
        .unwrap();
    let mut batch = PeerBatch::default();
    batch.decode_into(&f, &l, 0, 1).unwrap();
    assert_eq!(batch.items.len(), 3);
    assert_eq!(&batch.items[2].entries[..], &[7]);
}

#[test]
fn a_refused_push_into_a_new_section_writes_nothing() {
    let l = WireLimits {
        max_messages_per_batch: 0,
        ..limits()
    };
    let mut out = GatherBuf::new();
    let mut w = PeerBatchWriter::begin(&mut out, 1, 0, 1, 0, &l);
    w.heartbeat(&mut out, 1, 1, 1, false).unwrap();
    let before = out.len();
    let m = Message {
        from: 0,
        to: 1,
        term: 1,
        body: MsgBody::TimeoutNow,
    };
    assert!(matches!(
        w.message(&mut out, 1, &m, &[]),
        Err(WireError::TooMany { .. })
    ));
    assert_eq!(out.len(), before);
    // The heartbeat section can still be extended, and the frame is valid.
    w.heartbeat(&mut out, 2, 1, 1, false).unwrap();
    w.finish(&mut out).unwrap();
    let mut out = BytesMut::from(&out.to_bytes()[..]);
    let f = FrameDecoder::new(l.max_frame_bytes)
        .decode(&mut out)
        .unwrap()
        .unwrap();
    let mut batch = PeerBatch::default();
    batch.decode_into(&f, &l, 0, 1).unwrap();
    assert_eq!(batch.items.len(), 2);
}

#[test]
fn peer_batch_writer_stops_before_the_frame_limit() {
    let l = WireLimits {
        max_frame_bytes: 64 * 1024,
        ..limits()
    };
    let mut out = GatherBuf::new();
    let mut w = PeerBatchWriter::begin(&mut out, 1, 0, 1, 0, &l);
    let mut n = 0;
    while w.heartbeat(&mut out, n, 1, 1, false).is_ok() {
        n += 1;
        assert!(n < 10_000);
    }
    assert!(n > 1000);
    let len = w.finish(&mut out).unwrap();
    assert!(len <= l.max_frame_bytes as usize);
}

#[test]
fn hello_verification() {
    let h = Hello {
        protocol_version: PROTOCOL_VERSION,
        node_id: 1,
        shard: 1,
        shard_count: 2,
        target_shard: 0,
        cluster: "RaftCluster".into(),
        client_addr: HostPort {
            host: "127.0.0.1".into(),
            port: 30921,
        },
    };
    let peers = |id| id < 3;
    assert!(h.verify("RaftCluster", 0, 1, peers).is_ok());
    let e = h.verify("Other", 0, 1, peers).unwrap_err();
    assert_eq!(e.code, ResponseCode::UnexpectedMember);
    assert_eq!(
        h.verify("RaftCluster", 1, 1, peers).unwrap_err().code,
        ResponseCode::UnknownMember
    );
    let stranger = Hello {
        node_id: 9,
        ..h.clone()
    };
    assert_eq!(
        stranger
            .verify("RaftCluster", 0, 1, peers)
            .unwrap_err()
            .code,
        ResponseCode::UnknownMember
    );
    let future = Hello {
        protocol_version: PROTOCOL_VERSION + 1,
        ..h.clone()
    };
    assert_eq!(
        future.verify("RaftCluster", 0, 1, peers).unwrap_err().code,
        ResponseCode::Unsupported
    );
    let bad_shard = Hello {
        shard: 2,
        ..h.clone()
    };
    assert!(bad_shard.verify("RaftCluster", 0, 1, peers).is_err());
    let bad_target = Hello {
        target_shard: 1,
        ..h.clone()
    };
    assert!(bad_target.verify("RaftCluster", 0, 1, peers).is_err());
    assert!(bad_target.verify("RaftCluster", 0, 2, peers).is_ok());
}

#[test]
fn header_errors() {
    let frames = sample_frames();
    let good = &frames[0];
    let dec = FrameDecoder::new(1 << 20);
    let mut bad = good.clone();
    bad[0] ^= 0xFF;
    assert!(matches!(
        dec.decode(&mut bad),
        Err(WireError::BadMagic { .. })
    ));
    let mut bad = good.clone();
    bad[2] = 9;
    assert!(matches!(
        dec.decode(&mut bad),
        Err(WireError::UnsupportedVersion { .. })
    ));
    let mut bad = good.clone();
    bad[3] = 0x7F;
    assert!(matches!(
        dec.decode(&mut bad),
        Err(WireError::UnknownKind { .. })
    ));
    let mut bad = good.clone();
    bad[5] = 1;
    assert!(matches!(
        dec.decode(&mut bad),
        Err(WireError::ReservedBits { .. })
    ));
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        dec.decode(&mut bad),
        Err(WireError::Checksum { .. })
    ));
    // Errors show up as soon as the offending byte has arrived.
    let mut two = BytesMut::from(&[0u8, 0][..]);
    assert!(dec.decode(&mut two).is_err());
}

#[test]
fn wrong_kind_is_an_error() {
    let mut frames = sample_frames();
    let f = FrameDecoder::new(1 << 20)
        .decode(&mut frames[0])
        .unwrap()
        .unwrap();
    assert!(matches!(
        AppendResponse::decode(&f, &limits()),
        Err(WireError::WrongKind { .. })
    ));
    let hello = FrameDecoder::new(1 << 20)
        .decode(&mut frames[5])
        .unwrap()
        .unwrap();
    assert!(ClientMessage::decode(&hello, &limits()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn append_request_round_trip(group in arb_name(), bodies in proptest::collection::vec(arb_bytes(64), 1..20)) {
        let m = AppendRequest { group, bodies };
        prop_assert_eq!(round_trip(&m), m);
    }

    #[test]
    fn append_response_round_trip(e in proptest::collection::vec((any::<u64>(), any::<u64>()), 0..50)) {
        let m = AppendResponse { entries: e.into_iter().map(|(index, pos)| AppendedEntry { index, pos }).collect() };
        prop_assert_eq!(round_trip(&m), m);
    }

    #[test]
    fn get_round_trip(group in arb_name(), from_index in any::<u64>(), max_bytes in any::<u32>(),
                      commit_index in any::<u64>(),
                      e in proptest::collection::vec((any::<u64>(), any::<u64>(), any::<u64>(), arb_bytes(64)), 0..20)) {
        let m = GetRequest { group, from_index, max_bytes };
        prop_assert_eq!(round_trip(&m), m);
        let m = GetResponse { commit_index, entries: e.into_iter().map(|(index, term, pos, body)| GotEntry { index, term, pos, body }).collect() };
        prop_assert_eq!(round_trip(&m), m);
    }

    #[test]
    fn metadata_round_trip(group in arb_name(), self_id in arb_node(), role in arb_role(), term in any::<u64>(),
                           leader in arb_leader(), c in any::<u64>(), b in any::<u64>(), e in any::<u64>(), ft in any::<u8>(),
                           peers in proptest::collection::vec((arb_node(), arb_host_port(), proptest::option::of(arb_host_port())), 0..7)) {
        let m = MetadataRequest { group: group.clone() };
        prop_assert_eq!(round_trip(&m), m);
        let m = MetadataResponse {
            group, self_id, role, term, leader, commit_index: c, ledger_begin: b, ledger_end: e,
            peers: peers.into_iter().map(|(id, peer_addr, client_addr)| PeerInfo { id, peer_addr, client_addr }).collect(),
            failures_tolerated: ft,
        };
        prop_assert_eq!(round_trip(&m), m);
    }

    #[test]
    fn cluster_view_round_trip(cluster in arb_name(), node_id in arb_node(), client_addr in arb_host_port(),
                               rows in proptest::collection::vec((arb_name(), arb_role(), any::<u64>(), proptest::option::of(arb_node()),
                                                                  any::<u64>(), any::<u64>(), any::<u64>(), any::<u32>()), 0..20)) {
        prop_assert_eq!(round_trip(&ClusterViewRequest), ClusterViewRequest);
        let m = ClusterViewResponse {
            cluster, node_id, client_addr,
            rows: rows.into_iter().map(|(group, role, term, leader, ledger_end, commit_index, max_lag, append_tps)| GroupRow {
                group, role, term, leader, ledger_end, commit_index, max_lag, append_tps }).collect(),
        };
        prop_assert_eq!(round_trip(&m), m);
    }

    #[test]
    fn error_response_round_trip(code in arb_code(), leader in arb_leader(), message in "\\PC{0,100}") {
        let m = ErrorResponse { code, leader, message };
        prop_assert_eq!(round_trip(&m), m);
    }

    #[test]
    fn hello_round_trip(v in any::<u16>(), node_id in any::<u32>(), shard in any::<u16>(), shard_count in any::<u16>(),
                        target_shard in any::<u16>(), cluster in arb_name(), client_addr in arb_host_port()) {
        let m = Hello { protocol_version: v, node_id, shard, shard_count, target_shard, cluster, client_addr };
        prop_assert_eq!(round_trip(&m), m);
    }

    #[test]
    fn peer_batch_round_trip(b in arb_batch()) {
        let mut out = BytesMut::new();
        let n = write_batch(&b, &mut out);
        prop_assert_eq!(n, out.len());
        let f = FrameDecoder::new(limits().max_frame_bytes).decode(&mut out).unwrap().unwrap();
        let mut batch = PeerBatch::default();
        batch.decode_into(&f, &limits(), b.from, b.to).unwrap();
        prop_assert_eq!((batch.from, batch.to, batch.shard), (b.from, b.to, b.shard));
        prop_assert_eq!(batch.items, expected_items(&b));
    }

    /// A batch whose entries are spliced in pieces is byte for byte the batch written
    /// in one buffer (what followers verify), and decodes the same.
    #[test]
    fn gathered_peer_batch_is_byte_identical(
        b in arb_batch(),
        cuts in proptest::collection::vec(any::<u16>(), 1..6),
    ) {
        let mut one = GatherBuf::new();
        let n_one = write_batch_parts(&b, &mut one, &[]);
        prop_assert_eq!(one.part_count(), 0);
        let mut gathered = GatherBuf::new();
        let n_gathered = write_batch_parts(&b, &mut gathered, &cuts);
        prop_assert_eq!(n_one, n_gathered);
        let has_entries = b.messages.iter().any(|(_, _, _, e)| !e.is_empty());
        prop_assert!(has_entries || gathered.part_count() == 0);
        let bytes = gathered.to_bytes();
        prop_assert_eq!(&bytes[..], &one.to_bytes()[..]);
        let mut buf = BytesMut::from(&bytes[..]);
        let f = FrameDecoder::new(limits().max_frame_bytes).decode(&mut buf).unwrap().unwrap();
        let mut batch = PeerBatch::default();
        batch.decode_into(&f, &limits(), b.from, b.to).unwrap();
        prop_assert_eq!(batch.items, expected_items(&b));
    }

    /// Frames split at arbitrary points decode to the same frames, in order.
    #[test]
    fn stream_split_anywhere(cuts in proptest::collection::vec(1usize..64, 1..40)) {
        let frames = sample_frames();
        let stream: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
        let dec = FrameDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut at = 0;
        let mut cut = cuts.iter().cycle();
        while at < stream.len() {
            let n = (*cut.next().unwrap()).min(stream.len() - at);
            buf.extend_from_slice(&stream[at..at + n]);
            at += n;
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got.len(), frames.len());
        for (f, orig) in got.iter().zip(&frames) {
            prop_assert_eq!(&f.body[..], &orig[HEADER_LEN..]);
        }
    }

    /// Any single bit flip anywhere in any frame: an error or "need more", never a frame.
    #[test]
    fn bit_flips_are_detected(which in 0usize..7, pos in any::<usize>(), bit in 0u8..8) {
        let mut f = sample_frames().swap_remove(which);
        let at = pos % f.len();
        f[at] ^= 1 << bit;
        let r = FrameDecoder::new(1 << 20).decode(&mut f);
        prop_assert!(!matches!(r, Ok(Some(_))), "flip at {} bit {} decoded", at, bit);
    }

    /// Any truncation: "need more", never a frame or a panic.
    #[test]
    fn truncations_need_more(which in 0usize..7, keep in any::<usize>()) {
        let f = sample_frames().swap_remove(which);
        let keep = keep % f.len();
        let mut part = BytesMut::from(&f[..keep]);
        prop_assert!(matches!(FrameDecoder::new(1 << 20).decode(&mut part), Ok(None)));
    }

    /// Body-level corruption under a valid CRC (what a buggy or hostile peer could send):
    /// the message codecs return errors, never panic.
    #[test]
    fn corrupted_bodies_never_panic(which in 0usize..7, edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
                                    cut in any::<usize>()) {
        let mut f = sample_frames().swap_remove(which);
        let kind = Kind::from_u8(f[3]).unwrap();
        let mut body = f.split_off(HEADER_LEN).to_vec();
        for (p, v) in edits {
            if !body.is_empty() {
                let n = body.len();
                body[p % n] = v;
            }
        }
        let keep = if body.is_empty() { 0 } else { cut % (body.len() + 1) };
        body.truncate(keep);
        let _ = decode_any(&reframe(kind, &body));
    }

    /// Random bytes as the body of every kind, and as a raw stream.
    #[test]
    fn random_bytes_never_panic(kind in 0usize..11, body in proptest::collection::vec(any::<u8>(), 0..200),
                                stream in proptest::collection::vec(any::<u8>(), 0..200)) {
        let kinds = [Kind::Hello, Kind::PeerBatch, Kind::AppendRequest, Kind::AppendResponse, Kind::GetRequest,
                     Kind::GetResponse, Kind::MetadataRequest, Kind::MetadataResponse, Kind::ClusterViewRequest,
                     Kind::ClusterViewResponse, Kind::ErrorResponse];
        let _ = decode_any(&reframe(kinds[kind], &body));
        let mut buf = BytesMut::from(&stream[..]);
        let _ = FrameDecoder::new(1 << 20).decode(&mut buf);
        let _ = parse_frame(&stream, 1 << 20);
    }
}

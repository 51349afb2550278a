//! Peer transport over real sockets on 127.0.0.1: two test nodes in this process.

use crate::net_support;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use dledger_shards::net::{
    RejectReason,
    frame::{self, FrameKind},
};
use net_support::*;

const A: u32 = 1;
const B: u32 = 2;
const CLUSTER: &str = "transport-test";

fn recorder(
    log: &Arc<Mutex<Vec<Received>>>,
) -> impl Fn(usize) -> Recorder + Send + Clone + 'static {
    recorder_with_liveness(log.clone(), Arc::new(Mutex::new(Vec::new())))
}

type LivenessLog = Arc<Mutex<Vec<(usize, u32, bool)>>>;

fn recorder_with_liveness(
    log: Arc<Mutex<Vec<Received>>>,
    liveness: LivenessLog,
) -> impl Fn(usize) -> Recorder + Send + Clone + 'static {
    move |local_shard| Recorder {
        local_shard,
        log: log.clone(),
        liveness: liveness.clone(),
    }
}

/// Item `i` of a burst from (node, shard): tagged so the receiver can check order.
fn item(node: u32, shard: usize, burst: u8, i: u16) -> Vec<u8> {
    let mut item = vec![node as u8, shard as u8, burst];
    item.extend_from_slice(&i.to_be_bytes());
    item
}

/// Each shard of a node sends two bursts of `BURST` items to the other node; every
/// burst travels in exactly one frame (batching) and lands on the same shard number.
#[test]
fn two_nodes_with_two_shards_exchange_batched_frames() {
    const BURST: u16 = 200;
    const SHARDS: usize = 2;
    let (port_a, port_b) = (free_port(), free_port());
    let nodes = [(A, port_a), (B, port_b)];
    let log_a = Arc::new(Mutex::new(Vec::new()));
    let log_b = Arc::new(Mutex::new(Vec::new()));

    let script = |peer: u32, me: u32| {
        move |s: ShardScript<Recorder>| async move {
            let sender = s.net.sender(peer).expect("peer configured").clone();
            // No await inside a burst: the writer cannot run until the burst is queued.
            for i in 0..BURST {
                sender
                    .try_send(item(me, s.shard_id, 0, i))
                    .expect("queue has room");
            }
            // The first burst left the queue (its write may still be in flight).
            let first_burst_taken = || sender.is_connected() && sender.queued() == 0;
            while !first_burst_taken() && !s.stop.is_stopped() {
                pause_ms(1).await;
            }
            for i in 0..BURST {
                sender
                    .try_send(item(me, s.shard_id, 1, i))
                    .expect("queue has room");
            }
        }
    };
    let node_a = TestNode::start(
        SHARDS,
        config(CLUSTER, A, &nodes),
        recorder(&log_a),
        script(B, A),
    );
    let node_b = TestNode::start(
        SHARDS,
        config(CLUSTER, B, &nodes),
        recorder(&log_b),
        script(A, B),
    );

    let expected_items = 2 * usize::from(BURST) * SHARDS;
    let count = |log: &Arc<Mutex<Vec<Received>>>| -> usize {
        log.lock().expect("log").iter().map(|r| r.items.len()).sum()
    };
    wait_until("A receives every item", || count(&log_a) == expected_items);
    wait_until("B receives every item", || count(&log_b) == expected_items);

    for (log, sender_node) in [(&log_a, B), (&log_b, A)] {
        let log = log.lock().expect("log");
        for shard in 0..SHARDS {
            let frames: Vec<&Received> = log
                .iter()
                .filter(|r| r.from_shard == shard as u32)
                .collect();
            // One frame per burst: 2 * BURST items in 2 frames.
            assert_eq!(
                frames.len(),
                2,
                "frames from node {sender_node} shard {shard}"
            );
            for (burst, frame) in frames.iter().enumerate() {
                assert_eq!(frame.from, sender_node);
                assert_eq!(frame.local_shard, shard, "served by the same shard number");
                let expected: Vec<Vec<u8>> = (0..BURST)
                    .map(|i| item(sender_node, shard, burst as u8, i))
                    .collect();
                assert_eq!(frame.items, expected, "items in order, nothing lost");
            }
        }
    }
    assert_eq!(node_a.total(|s| &s.frames_sent), 4);
    assert_eq!(node_a.total(|s| &s.items_sent), expected_items as u64);
    assert_eq!(node_b.total(|s| &s.frames_received), 4);
    node_a.stop();
    node_b.stop();
}

/// The writer reconnects (with backoff) when its peer restarts on the same address.
#[test]
fn writer_reconnects_after_the_peer_restarts() {
    let (port_a, port_b) = (free_port(), free_port());
    let nodes = [(A, port_a), (B, port_b)];
    let log_a = Arc::new(Mutex::new(Vec::new()));
    // A sends a numbered item every 2 ms for as long as it runs.
    let node_a = TestNode::start(
        1,
        config(CLUSTER, A, &nodes),
        recorder(&log_a),
        |s: ShardScript<Recorder>| async move {
            let sender = s.net.sender(B).expect("peer configured").clone();
            let mut next = 0u32;
            while !s.stop.is_stopped() {
                if sender.try_send(next.to_be_bytes().to_vec()).is_ok() {
                    next += 1;
                }
                pause_ms(2).await;
            }
        },
    );
    let idle = |_: ShardScript<Recorder>| async {};

    let first_log = Arc::new(Mutex::new(Vec::new()));
    let first_b = TestNode::start(1, config(CLUSTER, B, &nodes), recorder(&first_log), idle);
    wait_until("B receives from A", || {
        !first_log.lock().expect("log").is_empty()
    });
    first_b.stop();
    wait_until("A notices the connection is gone", || {
        node_a.total(|s| &s.connections_lost) >= 1
    });

    let second_log = Arc::new(Mutex::new(Vec::new()));
    let second_b = TestNode::start(1, config(CLUSTER, B, &nodes), recorder(&second_log), idle);
    wait_until("the restarted B receives from A", || {
        !second_log.lock().expect("log").is_empty()
    });
    assert!(node_a.total(|s| &s.connects) >= 2, "A connected again");
    // Items after the reconnect are in order (a lost batch may leave a gap, never a swap).
    let numbers: Vec<u32> = second_log
        .lock()
        .expect("log")
        .iter()
        .flat_map(|r| r.items.iter())
        .map(|item| u32::from_be_bytes(item[..4].try_into().expect("4 bytes")))
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    second_b.stop();
    node_a.stop();
}

/// A Hello from another cluster, an unknown node or the wrong address is refused with a
/// reason (raw clients and a real writer), and the node stays up for correct peers.
#[test]
fn hello_from_another_cluster_is_rejected() {
    let (port_a, port_b) = (free_port(), free_port());
    let nodes = [(A, port_a), (B, port_b)];
    let log_b = Arc::new(Mutex::new(Vec::new()));
    // Node 3 is configured on 127.0.0.2: a connection from 127.0.0.1 claiming it lies.
    let mut config_b = config(CLUSTER, B, &nodes);
    config_b
        .nodes
        .insert(3, "127.0.0.2:9".parse().expect("addr"));
    let node_b = TestNode::start(
        1,
        config_b,
        recorder(&log_b),
        |_: ShardScript<Recorder>| async {},
    );

    let mut impostor = RawPeer::connect(port_b);
    impostor.send_hello(CLUSTER, 3, 0);
    let (kind, payload) = impostor.read_frame().expect("a reject frame");
    assert_eq!(kind, FrameKind::HelloReject);
    assert_eq!(payload, vec![RejectReason::AddressMismatch.code()]);

    let mut raw = RawPeer::connect(port_b);
    raw.send_hello("another-cluster", A, 0);
    let (kind, payload) = raw.read_frame().expect("a reject frame");
    assert_eq!(kind, FrameKind::HelloReject);
    assert_eq!(payload, vec![RejectReason::WrongCluster.code()]);
    assert!(raw.closed_by_peer());

    let mut unknown = RawPeer::connect(port_b);
    unknown.send_hello(CLUSTER, 77, 0);
    let (kind, payload) = unknown.read_frame().expect("a reject frame");
    assert_eq!(kind, FrameKind::HelloReject);
    assert_eq!(payload, vec![RejectReason::UnknownNode.code()]);

    // A real node of another cluster: its writer is refused, never connected.
    let log_a = Arc::new(Mutex::new(Vec::new()));
    let node_a = TestNode::start(
        1,
        config("another-cluster", A, &nodes),
        recorder(&log_a),
        |s: ShardScript<Recorder>| async move {
            let _ = s.net.sender(B).expect("peer configured").try_send(vec![1]);
        },
    );
    wait_until("A's hello is refused", || {
        node_a.total(|s| &s.hellos_refused_by_peer) >= 1
    });
    assert_eq!(node_a.total(|s| &s.connects), 0);
    assert!(node_b.total(|s| &s.hellos_rejected) >= 4);
    assert!(
        log_b.lock().expect("log").is_empty(),
        "no frame from a refused peer"
    );

    // The right cluster still gets in.
    let mut good = RawPeer::connect(port_b);
    good.send_hello(CLUSTER, A, 0);
    let (kind, _) = good.read_frame().expect("an ack");
    assert_eq!(kind, FrameKind::HelloAck);
    node_a.stop();
    node_b.stop();
}

/// A length prefix above max_frame_bytes closes that connection (before any buffer is
/// sized for it) and bad bytes close only their own connection.
#[test]
fn oversized_or_malformed_frames_close_only_their_connection() {
    let (port_a, port_b) = (free_port(), free_port());
    let nodes = [(A, port_a), (B, port_b)];
    let log_b = Arc::new(Mutex::new(Vec::new()));
    let node_b = TestNode::start(
        1,
        config(CLUSTER, B, &nodes),
        recorder(&log_b),
        |_: ShardScript<Recorder>| async {},
    );

    let handshake = || {
        let mut peer = RawPeer::connect(port_b);
        peer.send_hello(CLUSTER, A, 0);
        let (kind, _) = peer.read_frame().expect("an ack");
        assert_eq!(kind, FrameKind::HelloAck);
        peer
    };
    let mut healthy = handshake();

    let mut oversized = handshake();
    let mut header = Vec::new();
    dledger_shards::net::frame::encode_header(FrameKind::Batch, 0, &mut header);
    header[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    std::io::Write::write_all(&mut oversized.stream, &header).expect("send header");
    assert!(
        oversized.closed_by_peer(),
        "FRAME_TOO_LARGE closes the connection"
    );
    assert_eq!(node_b.total(|s| &s.frames_too_large), 1);

    let mut garbage = handshake();
    std::io::Write::write_all(&mut garbage.stream, b"this is not a frame header").expect("send");
    assert!(
        garbage.closed_by_peer(),
        "a bad header closes the connection"
    );

    let mut bad_items = handshake();
    // A batch whose only item claims 1000 bytes but carries 1: the handler refuses it.
    let mut frame = Vec::new();
    dledger_shards::net::frame::encode_header(FrameKind::Batch, 5, &mut frame);
    frame.extend_from_slice(&1000u32.to_be_bytes());
    frame.push(0);
    std::io::Write::write_all(&mut bad_items.stream, &frame).expect("send");
    assert!(
        bad_items.closed_by_peer(),
        "a refused payload closes the connection"
    );
    assert_eq!(node_b.total(|s| &s.closed_malformed), 3);

    healthy.send_batch(&[b"still", b"served"]);
    wait_until("the healthy connection still delivers", || {
        !log_b.lock().expect("log").is_empty()
    });
    assert_eq!(
        log_b.lock().expect("log")[0].items,
        vec![b"still".to_vec(), b"served".to_vec()]
    );
    node_b.stop();
}

/// A connection is served by the shard its Hello names, wherever the kernel put it.
#[test]
fn connections_are_handed_to_the_shard_named_in_their_hello() {
    const CONNECTIONS: usize = 24;
    let (port_a, port_b) = (free_port(), free_port());
    let nodes = [(A, port_a), (B, port_b)];
    let log_b = Arc::new(Mutex::new(Vec::new()));
    let node_b = TestNode::start(
        2,
        config(CLUSTER, B, &nodes),
        recorder(&log_b),
        |_: ShardScript<Recorder>| async {},
    );
    let mut peers = Vec::new();
    for i in 0..CONNECTIONS {
        let shard = (i % 2) as u32;
        let mut peer = RawPeer::connect(port_b);
        peer.send_hello(CLUSTER, A, shard);
        let (kind, payload) = peer.read_frame().expect("an ack");
        assert_eq!(kind, FrameKind::HelloAck);
        let ack = dledger_shards::net::frame::HelloAck::decode_payload(&payload).expect("ack");
        assert_eq!(ack.shard_id, shard, "acked by the shard named in the hello");
        peer.send_batch(&[&[i as u8]]);
        peers.push(peer);
    }
    wait_until("every connection delivered", || {
        log_b.lock().expect("log").len() == CONNECTIONS
    });
    for received in log_b.lock().expect("log").iter() {
        let i = usize::from(received.items[0][0]);
        assert_eq!(received.from_shard, (i % 2) as u32);
        assert_eq!(
            received.local_shard,
            i % 2,
            "connection {i} read by its shard"
        );
    }
    let handed = node_b.total(|s| &s.handed_off);
    assert_eq!(node_b.total(|s| &s.served), CONNECTIONS as u64);
    // SO_REUSEPORT spreads by address hash: with 24 connections some land on the wrong
    // shard (all landing right has probability 2^-24).
    assert!(handed > 0, "no connection needed a handoff");
    node_b.stop();
}

/// A full queue says OVERLOADED at once and hands the item back.
#[test]
fn a_full_queue_is_overloaded() {
    const CAPACITY: usize = 8;
    let (port_a, port_unreachable) = (free_port(), free_port());
    let nodes = [(A, port_a), (B, port_unreachable)];
    let mut config_a = config(CLUSTER, A, &nodes);
    config_a.queue_capacity = CAPACITY;
    let outcome = Arc::new(Mutex::new(None));
    let seen = outcome.clone();
    let log_a = Arc::new(Mutex::new(Vec::new()));
    let node_a = TestNode::start(
        1,
        config_a,
        recorder(&log_a),
        move |s: ShardScript<Recorder>| {
            let seen = seen.clone();
            async move {
                let sender = s.net.sender(B).expect("peer configured").clone();
                let accepted = (0..CAPACITY)
                    .filter(|&i| sender.try_send(vec![i as u8]).is_ok())
                    .count();
                let refused = sender.try_send(vec![0xFF]);
                let refused = match refused {
                    Err(e) if e.is_overloaded() => Some(e.into_item()),
                    _ => None,
                };
                // Time passes (the writer keeps failing to connect): still full, still refused.
                pause_ms(20).await;
                let still_refused = sender.try_send(vec![0xFE]).is_err();
                *seen.lock().expect("outcome") =
                    Some((accepted, refused, still_refused, sender.queued()));
            }
        },
    );
    wait_until("the script ran", || {
        outcome.lock().expect("outcome").is_some()
    });
    let (accepted, refused, still_refused, queued) =
        outcome.lock().expect("outcome").take().expect("set");
    assert_eq!(accepted, CAPACITY);
    assert_eq!(refused, Some(vec![0xFF]), "OVERLOADED returns the item");
    assert!(still_refused);
    assert_eq!(queued, CAPACITY);
    assert_eq!(node_a.total(|s| &s.overloaded), 2);
    node_a.stop();
}

#[test]
fn stop_ends_every_shard_promptly_enough_to_join() {
    let (port_a, port_b) = (free_port(), free_port());
    let nodes = [(A, port_a), (B, port_b)];
    let log = Arc::new(Mutex::new(Vec::new()));
    let node = TestNode::start(
        2,
        config(CLUSTER, A, &nodes),
        recorder(&log),
        |_: ShardScript<Recorder>| async {},
    );
    // Joining returns only if every shard observed the stop (writers stuck in backoff
    // towards an absent peer included).
    std::thread::sleep(Duration::from_millis(20));
    node.stop();
}

/// Node-level liveness: a peer is reported up once connected, down at once when it
/// stops (its connections close), and down after `liveness_timeout_ms` when it is
/// connected but silent (no keepalives: a stopped process, a partition).
#[test]
fn peer_liveness_turns_up_then_down_on_close_and_on_silence() {
    const C: u32 = 3;
    // C is a fake: it completes the handshake and then says nothing.
    let fake_c = crate::common::ports::reserve_port();
    let port_c = fake_c.local_addr().expect("C's address").port();
    let (port_a, port_b) = (free_port(), free_port());
    let nodes = [(A, port_a), (B, port_b), (C, port_c)];
    let log = Arc::new(Mutex::new(Vec::new()));
    let liveness: LivenessLog = Arc::new(Mutex::new(Vec::new()));
    let mut cfg_a = config(CLUSTER, A, &nodes);
    cfg_a.keepalive_interval_ms = 20;
    cfg_a.liveness_timeout_ms = 200;
    let idle = |_: ShardScript<Recorder>| async {};
    let node_a = TestNode::start(
        1,
        cfg_a,
        recorder_with_liveness(log.clone(), liveness.clone()),
        idle,
    );
    let seen = |peer: u32| -> Vec<bool> {
        let l = liveness.lock().expect("liveness");
        l.iter().filter(|t| t.1 == peer).map(|t| t.2).collect()
    };
    let node_b = TestNode::start(1, config(CLUSTER, B, &nodes), recorder(&log), idle);
    wait_until("A sees B up", || seen(B) == vec![true]);
    // Keepalives keep it up while nothing else flows.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(seen(B), vec![true], "idle but alive");
    node_b.stop();
    wait_until("A sees B down when its connection closes", || {
        seen(B) == vec![true, false]
    });

    let (mut conn, _) = fake_c.accept().expect("A dials C");
    let mut header = [0u8; frame::FRAME_HEADER_BYTES];
    std::io::Read::read_exact(&mut conn, &mut header).expect("hello header");
    let h = frame::decode_header(&header, 1 << 10).expect("hello header");
    let mut payload = vec![0u8; h.payload_len];
    std::io::Read::read_exact(&mut conn, &mut payload).expect("hello payload");
    assert!(seen(C).is_empty(), "not up before the handshake completes");
    let mut ack = Vec::new();
    frame::HelloAck {
        node_id: C,
        shard_id: 0,
        shard_count: 1,
    }
    .encode_frame(&mut ack);
    std::io::Write::write_all(&mut conn, &ack).expect("ack");
    wait_until("A sees C up at the ack", || seen(C) == vec![true]);
    wait_until("A sees the silent C down", || seen(C) == vec![true, false]);
    drop(conn);
    node_a.stop();
}

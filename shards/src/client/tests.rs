//! The client against scripted TCP peers: real sockets, and a thread per peer that reads
//! the client's frames and plays back wire responses chosen by the test (out of order,
//! redirects, errors, dropped connections). These test the client's pipelining, routing
//! and retry logic; the server's behaviour is tested end to end in the cluster tests.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use dledger::config::HostPort;
use dledger::raft::Role;
use dledger::wire::{
    AppendResponse, AppendedEntry, Body, ClientMessage, ErrorResponse, FrameDecoder, LeaderHint,
    MetadataResponse, ResponseCode, WireLimits,
};

use super::*;

const GROUP: &str = "RaftNode00";
/// How long a scripted peer waits for the client before it fails the test.
const PEER_WAIT: Duration = Duration::from_secs(10);

/// The scripted side of one accepted connection.
struct PeerConn {
    stream: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
    limits: WireLimits,
}

impl PeerConn {
    /// The next request the client sent (blocking; fails the test after `PEER_WAIT`).
    fn read_request(&mut self) -> (u64, ClientMessage) {
        self.try_read_request(PEER_WAIT)
            .expect("the client sent a request in time")
    }

    /// The next request, or `None` if none arrives within `wait`.
    fn try_read_request(&mut self, wait: Duration) -> Option<(u64, ClientMessage)> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).expect("a valid frame") {
                let msg = ClientMessage::decode(&frame, &self.limits).expect("a client message");
                return Some((frame.header.request_id, msg));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("set timeout");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return None;
                }
                Err(e) => panic!("scripted peer read: {e}"),
            }
        }
    }

    fn send<B: Body>(&mut self, request_id: u64, msg: &B) {
        let mut out = BytesMut::new();
        msg.encode(request_id, &self.limits, &mut out)
            .expect("encodable");
        self.stream.write_all(&out).expect("scripted peer write");
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("scripted peer write");
    }
}

/// A listening scripted node.
struct Peer {
    listener: TcpListener,
}

impl Peer {
    fn accept(&self) -> PeerConn {
        let deadline = Instant::now() + PEER_WAIT;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).expect("blocking");
                    return PeerConn {
                        stream,
                        buf: BytesMut::new(),
                        decoder: FrameDecoder::new(WireLimits::default().max_frame_bytes),
                        limits: WireLimits::default(),
                    };
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "the client never connected");
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }
}

/// Binds a scripted node on a free loopback port and runs `script` on a thread.
fn spawn_peer(script: impl FnOnce(Peer) + Send + 'static) -> (HostPort, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || script(Peer { listener }));
    (
        HostPort {
            host: "127.0.0.1".into(),
            port,
        },
        handle,
    )
}

fn metadata(self_id: u32, role: Role, leader: Option<LeaderHint>) -> MetadataResponse {
    MetadataResponse {
        group: GROUP.into(),
        self_id,
        role,
        term: 3,
        leader,
        commit_index: 0,
        ledger_begin: 0,
        ledger_end: 0,
        peers: Vec::new(),
        failures_tolerated: 1,
    }
}

/// Answers the metadata request a client sends when it connects, as the leader.
fn answer_metadata_as_leader(conn: &mut PeerConn, self_id: u32) {
    let (id, msg) = conn.read_request();
    assert!(matches!(msg, ClientMessage::MetadataRequest(_)), "{msg:?}");
    conn.send(id, &metadata(self_id, Role::Leader, None));
}

fn append_bodies(msg: ClientMessage) -> Vec<Bytes> {
    match msg {
        ClientMessage::AppendRequest(a) => {
            assert_eq!(a.group, GROUP);
            a.bodies
        }
        other => panic!("expected an append, got {other:?}"),
    }
}

/// The index a scripted node assigns to a body `b<n>`: 100 + n (so each answer can be
/// checked against the request it belongs to).
fn index_of(body: &[u8]) -> u64 {
    let n: u64 = std::str::from_utf8(&body[1..])
        .expect("utf8")
        .parse()
        .expect("b<n>");
    100 + n
}

fn fast_options() -> ClientOptions {
    ClientOptions {
        connect_timeout_ms: 2_000,
        request_timeout_ms: 3_000,
        backoff_initial_ms: 1,
        backoff_max_ms: 20,
        ..ClientOptions::default()
    }
}

fn body(n: u64) -> Bytes {
    Bytes::from(format!("b{n}"))
}

/// Runs `f` on a client executor on this thread.
fn run<T>(f: impl AsyncFnOnce() -> T) -> T {
    block_on("client-test", || f()).expect("client executor")
}

#[test]
fn pipelined_appends_are_matched_by_request_id_when_answered_out_of_order() {
    const N: u64 = 8;
    let (addr, peer) = spawn_peer(|p| {
        let mut c = p.accept();
        answer_metadata_as_leader(&mut c, 0);
        // All N requests must be in flight at once before any is answered...
        let mut reqs: Vec<(u64, Vec<Bytes>)> = (0..N)
            .map(|_| {
                let (id, m) = c.read_request();
                (id, append_bodies(m))
            })
            .collect();
        // ...and they are answered last first.
        reqs.reverse();
        for (id, bodies) in reqs {
            let entries = bodies
                .iter()
                .map(|b| AppendedEntry {
                    index: index_of(b),
                    pos: 4096 * index_of(b),
                })
                .collect();
            c.send(id, &AppendResponse { entries });
        }
        // The client closes the connection when dropped.
        assert!(c.try_read_request(PEER_WAIT).is_none());
    });
    run(async || {
        let client = Rc::new(
            Client::connect(vec![addr.clone()], GROUP, fast_options())
                .await
                .expect("connect"),
        );
        assert_eq!(client.leader(), Some(addr.clone()));
        let tasks: Vec<_> = (0..N)
            .map(|n| {
                let client = client.clone();
                glommio::spawn_local(async move { (n, client.append(&[body(n)]).await) })
            })
            .collect();
        for t in tasks {
            let (n, r) = t.await;
            let entries = r.expect("append");
            assert_eq!(
                entries,
                vec![AppendedEntry {
                    index: 100 + n,
                    pos: 4096 * (100 + n)
                }]
            );
        }
        assert_eq!(client.stats().retries, 0);
        assert_eq!(client.stats().connects, 1);
    });
    peer.join().expect("scripted peer");
}

#[test]
fn not_leader_redirects_to_the_leader_the_error_names() {
    let (b_addr, b) = spawn_peer(|p| {
        let mut c = p.accept();
        let (id, m) = c.read_request();
        let bodies = append_bodies(m);
        assert_eq!(bodies, vec![body(7)]);
        c.send(
            id,
            &AppendResponse {
                entries: vec![AppendedEntry { index: 107, pos: 0 }],
            },
        );
        assert!(c.try_read_request(PEER_WAIT).is_none());
    });
    let hint = LeaderHint {
        id: 1,
        client_addr: Some(b_addr.clone()),
    };
    let (a_addr, a) = spawn_peer(move |p| {
        let mut c = p.accept();
        // A still believes it leads when the client connects...
        answer_metadata_as_leader(&mut c, 0);
        // ...and has lost leadership by the time the append comes.
        let (id, m) = c.read_request();
        append_bodies(m);
        c.send(
            id,
            &ErrorResponse {
                code: ResponseCode::NotLeader,
                leader: Some(hint),
                message: "n1 leads term 4".into(),
            },
        );
        assert!(c.try_read_request(PEER_WAIT).is_none());
    });
    run(async || {
        let client = Client::connect(vec![a_addr.clone(), b_addr.clone()], GROUP, fast_options())
            .await
            .expect("connect");
        assert_eq!(client.leader(), Some(a_addr.clone()));
        let entries = client.append(&[body(7)]).await.expect("append");
        assert_eq!(entries, vec![AppendedEntry { index: 107, pos: 0 }]);
        assert_eq!(client.leader(), Some(b_addr.clone()));
        assert_eq!(client.stats().redirects, 1);
        assert_eq!(client.stats().connects, 2);
    });
    a.join().expect("peer a");
    b.join().expect("peer b");
}

#[test]
fn follower_metadata_sends_the_client_to_the_leader() {
    let (b_addr, b) = spawn_peer(|p| {
        let mut c = p.accept();
        let (id, m) = c.read_request();
        assert_eq!(append_bodies(m), vec![body(1)]);
        c.send(
            id,
            &AppendResponse {
                entries: vec![AppendedEntry { index: 1, pos: 0 }],
            },
        );
        assert!(c.try_read_request(PEER_WAIT).is_none());
    });
    let hint = LeaderHint {
        id: 1,
        client_addr: Some(HostPort {
            // A wildcard listen host is reached at the host the follower was reached on.
            host: "0.0.0.0".into(),
            port: b_addr.port,
        }),
    };
    let (a_addr, a) = spawn_peer(move |p| {
        let mut c = p.accept();
        let (id, msg) = c.read_request();
        assert!(matches!(msg, ClientMessage::MetadataRequest(_)));
        c.send(id, &metadata(0, Role::Follower, Some(hint)));
        assert!(c.try_read_request(PEER_WAIT).is_none());
    });
    run(async || {
        let client = Client::connect(vec![a_addr.clone()], GROUP, fast_options())
            .await
            .expect("connect");
        assert_eq!(client.leader(), Some(b_addr.clone()));
        client.append(&[body(1)]).await.expect("append");
    });
    a.join().expect("peer a");
    b.join().expect("peer b");
}

#[test]
fn leader_not_ready_is_retried_and_term_changed_is_reported_when_asked() {
    let (addr, peer) = spawn_peer(|p| {
        let mut c = p.accept();
        answer_metadata_as_leader(&mut c, 0);
        // Twice not ready, then success.
        for _ in 0..2 {
            let (id, m) = c.read_request();
            append_bodies(m);
            c.send(
                id,
                &ErrorResponse {
                    code: ResponseCode::LeaderNotReady,
                    leader: None,
                    message: "no-op of term 3 not committed yet".into(),
                },
            );
        }
        let (id, m) = c.read_request();
        assert_eq!(append_bodies(m), vec![body(5)]);
        c.send(
            id,
            &AppendResponse {
                entries: vec![AppendedEntry { index: 105, pos: 9 }],
            },
        );
        // With retry_unknown_outcome = false, TERM_CHANGED comes back to the caller.
        let (id, m) = c.read_request();
        append_bodies(m);
        c.send(
            id,
            &ErrorResponse {
                code: ResponseCode::TermChanged,
                leader: None,
                message: "term 3 ended while the entry was pending".into(),
            },
        );
        assert!(c.try_read_request(PEER_WAIT).is_none());
    });
    run(async || {
        let opts = ClientOptions {
            retry_unknown_outcome: false,
            ..fast_options()
        };
        let client = Client::connect(vec![addr.clone()], GROUP, opts)
            .await
            .expect("connect");
        let e = client.append(&[body(5)]).await.expect("retried append");
        assert_eq!(e, vec![AppendedEntry { index: 105, pos: 9 }]);
        assert_eq!(client.stats().retries, 2);
        let err = client.append(&[body(6)]).await.expect_err("term changed");
        assert_eq!(err.code, ResponseCode::TermChanged);
        assert_eq!(err.origin, ErrorOrigin::Server);
        assert!(err.outcome_unknown);
        assert_eq!(err.addr, Some(addr.clone()));
        let shown = err.to_string();
        assert!(
            shown.starts_with("TERM_CHANGED (501) from 127.0.0.1:"),
            "{shown}"
        );
    });
    peer.join().expect("scripted peer");
}

#[test]
fn a_dropped_connection_fails_pending_requests_and_the_retry_reconnects() {
    let (addr, peer) = spawn_peer(|p| {
        let mut c = p.accept();
        answer_metadata_as_leader(&mut c, 0);
        let (_, m) = c.read_request();
        append_bodies(m);
        drop(c); // the node dies with the request in flight
        // The client reconnects, rediscovers, and sends the append again.
        let mut c = p.accept();
        answer_metadata_as_leader(&mut c, 0);
        let (id, m) = c.read_request();
        assert_eq!(append_bodies(m), vec![body(3)]);
        c.send(
            id,
            &AppendResponse {
                entries: vec![AppendedEntry { index: 103, pos: 0 }],
            },
        );
        assert!(c.try_read_request(PEER_WAIT).is_none());
    });
    run(async || {
        let client = Client::connect(vec![addr.clone()], GROUP, fast_options())
            .await
            .expect("connect");
        let e = client
            .append(&[body(3)])
            .await
            .expect("append after reconnect");
        assert_eq!(e[0].index, 103);
        assert_eq!(client.stats().connects, 2);
        assert!(client.stats().retries >= 1);
    });
    peer.join().expect("scripted peer");
}

#[test]
fn in_flight_requests_per_connection_are_bounded() {
    const WINDOW: usize = 2;
    const N: u64 = 6;
    let (addr, peer) = spawn_peer(|p| {
        let mut c = p.accept();
        answer_metadata_as_leader(&mut c, 0);
        let mut answered = 0;
        while answered < N {
            // The client fills the window...
            let mut batch: Vec<_> = (0..WINDOW).map(|_| c.read_request()).collect();
            // ...and sends nothing more until an answer frees a slot.
            if let Some(extra) = c.try_read_request(Duration::from_millis(150)) {
                batch.push(extra);
            }
            assert_eq!(batch.len(), WINDOW, "in flight at once");
            for (id, m) in batch {
                let b = append_bodies(m);
                c.send(
                    id,
                    &AppendResponse {
                        entries: vec![AppendedEntry {
                            index: index_of(&b[0]),
                            pos: 0,
                        }],
                    },
                );
                answered += 1;
            }
        }
        assert!(c.try_read_request(PEER_WAIT).is_none());
    });
    run(async || {
        let opts = ClientOptions {
            max_inflight_per_conn: WINDOW,
            ..fast_options()
        };
        let client = Rc::new(
            Client::connect(vec![addr.clone()], GROUP, opts)
                .await
                .expect("connect"),
        );
        let tasks: Vec<_> = (0..N)
            .map(|n| {
                let client = client.clone();
                glommio::spawn_local(async move { (n, client.append(&[body(n)]).await) })
            })
            .collect();
        for t in tasks {
            let (n, r) = t.await;
            assert_eq!(r.expect("append")[0].index, 100 + n);
        }
    });
    peer.join().expect("scripted peer");
}

#[test]
fn silence_times_out_and_an_oversized_frame_closes_the_connection() {
    let (addr, peer) = spawn_peer(|p| {
        let mut c = p.accept();
        answer_metadata_as_leader(&mut c, 0);
        // First append: never answered (the client times out).
        let (_, m) = c.read_request();
        append_bodies(m);
        // A silent node may be dead: the client asks again who leads before it retries.
        answer_metadata_as_leader(&mut c, 0);
        // Second append: answered with a frame whose length prefix exceeds the client's
        // max_frame_bytes.
        let (id, m) = c.read_request();
        append_bodies(m);
        let mut header = BytesMut::new();
        AppendResponse {
            entries: vec![AppendedEntry { index: 1, pos: 0 }],
        }
        .encode(id, &WireLimits::default(), &mut header)
        .expect("encode");
        header[16..20].copy_from_slice(&(1u32 << 30).to_be_bytes());
        c.send_raw(&header[..24]);
        assert!(c.try_read_request(PEER_WAIT).is_none());
    });
    run(async || {
        let opts = ClientOptions {
            request_timeout_ms: 200,
            max_attempts: 1,
            ..fast_options()
        };
        let client = Client::connect(vec![addr.clone()], GROUP, opts)
            .await
            .expect("connect");
        let started = Instant::now();
        let err = client.append(&[body(1)]).await.expect_err("timeout");
        assert_eq!(err.code, ResponseCode::Timeout);
        assert!(err.outcome_unknown);
        assert!(started.elapsed() >= Duration::from_millis(200));
        let err = client
            .append(&[body(2)])
            .await
            .expect_err("frame too large");
        assert_eq!(err.code, ResponseCode::FrameTooLarge, "{err}");
        assert_eq!(err.origin, ErrorOrigin::Local);
    });
    peer.join().expect("scripted peer");
}

#[test]
fn unknown_group_everywhere_fails_at_once_and_bad_input_never_leaves() {
    let (addr, peer) = spawn_peer(|p| {
        let mut c = p.accept();
        let (id, msg) = c.read_request();
        assert!(matches!(msg, ClientMessage::MetadataRequest(_)));
        c.send(
            id,
            &ErrorResponse {
                code: ResponseCode::UnknownGroup,
                leader: None,
                message: "this node hosts no group RaftNode00".into(),
            },
        );
        assert!(c.try_read_request(Duration::from_secs(2)).is_none());
    });
    run(async || {
        let err = Client::connect(vec![addr.clone()], GROUP, fast_options())
            .await
            .expect_err("unknown group");
        assert_eq!(err.code, ResponseCode::UnknownGroup, "{err}");
        assert!(err.message.contains("hosts no group"), "{err}");
    });
    peer.join().expect("scripted peer");

    let (addr, peer) = spawn_peer(|p| {
        let mut c = p.accept();
        answer_metadata_as_leader(&mut c, 0);
        // Nothing else may arrive: every bad append is refused locally.
        assert!(c.try_read_request(Duration::from_secs(1)).is_none());
    });
    run(async || {
        let client = Client::connect(vec![addr.clone()], GROUP, fast_options())
            .await
            .expect("connect");
        let e = client.append(&[]).await.expect_err("empty");
        assert_eq!(e.code, ResponseCode::RequestWithEmptyBodys);
        let big = Bytes::from(vec![0u8; WireLimits::default().max_body_bytes as usize + 1]);
        let e = client.append(&[big]).await.expect_err("too big");
        assert_eq!(e.code, ResponseCode::Overloaded);
        assert!(e.message.contains("maxBodyBytes"), "{e}");
        drop(client);
    });
    peer.join().expect("scripted peer");
}

#[test]
fn a_dead_first_peer_is_skipped() {
    // A port with nothing listening: bind, read the port, close.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        HostPort {
            host: "127.0.0.1".into(),
            port: l.local_addr().expect("addr").port(),
        }
    };
    let (addr, peer) = spawn_peer(|p| {
        let mut c = p.accept();
        answer_metadata_as_leader(&mut c, 2);
        let (id, msg) = c.read_request();
        assert!(matches!(msg, ClientMessage::MetadataRequest(_)));
        c.send(id, &metadata(2, Role::Leader, None));
        assert!(c.try_read_request(PEER_WAIT).is_none());
    });
    run(async || {
        let client = Client::connect(vec![dead.clone(), addr.clone()], GROUP, fast_options())
            .await
            .expect("connect past a dead node");
        assert_eq!(client.leader(), Some(addr.clone()));
        let m = client.metadata().await.expect("metadata");
        assert_eq!(m.self_id, 2);
        assert_eq!(m.role, Role::Leader);
    });
    peer.join().expect("scripted peer");
}

#[test]
fn many_pipelined_calls_survive_shuffled_answers_split_at_odd_byte_boundaries() {
    const N: u64 = 2_000;
    const TASKS: u64 = 64;
    let (addr, peer) = spawn_peer(|p| {
        let mut c = p.accept();
        answer_metadata_as_leader(&mut c, 0);
        let mut answered = 0u64;
        let mut turn = 0usize;
        while answered < N {
            // Whatever is in flight (at least one), answered in a scrambled order...
            let mut batch = vec![c.read_request()];
            while let Some(r) = c.try_read_request(Duration::from_millis(1)) {
                batch.push(r);
            }
            turn += 1;
            let k = turn % batch.len();
            batch.rotate_left(k);
            if turn % 2 == 0 {
                batch.reverse();
            }
            let mut bytes = BytesMut::new();
            for (id, m) in batch {
                let b = append_bodies(m);
                AppendResponse {
                    entries: vec![AppendedEntry {
                        index: index_of(&b[0]),
                        pos: 0,
                    }],
                }
                .encode(id, &WireLimits::default(), &mut bytes)
                .expect("encode");
                answered += 1;
            }
            // ...and written in pieces that cut headers and bodies apart.
            for piece in bytes.chunks(7 + turn % 13) {
                c.send_raw(piece);
            }
        }
        assert!(c.try_read_request(PEER_WAIT).is_none());
    });
    run(async || {
        let client = Rc::new(
            Client::connect(vec![addr.clone()], GROUP, fast_options())
                .await
                .expect("connect"),
        );
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let client = client.clone();
                glommio::spawn_local(async move {
                    let mut n = t;
                    while n < N {
                        let e = client.append(&[body(n)]).await.expect("append");
                        assert_eq!(e[0].index, 100 + n, "answer matched to its request");
                        n += TASKS;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        assert_eq!(client.stats().retries, 0);
    });
    peer.join().expect("scripted peer");
}

#[test]
fn redirects_bouncing_between_nodes_during_an_election_are_followed_until_one_accepts() {
    let not_leader = |to: &HostPort, id: u32| ErrorResponse {
        code: ResponseCode::NotLeader,
        leader: Some(LeaderHint {
            id,
            client_addr: Some(to.clone()),
        }),
        message: "stale view".into(),
    };
    // Bind both first so each script can name the other.
    let la = TcpListener::bind("127.0.0.1:0").expect("bind");
    let lb = TcpListener::bind("127.0.0.1:0").expect("bind");
    la.set_nonblocking(true).expect("nonblocking");
    lb.set_nonblocking(true).expect("nonblocking");
    let addr_of = |l: &TcpListener| HostPort {
        host: "127.0.0.1".into(),
        port: l.local_addr().expect("addr").port(),
    };
    let (a_addr, b_addr) = (addr_of(&la), addr_of(&lb));
    let (to_b, to_a) = (not_leader(&b_addr, 1), not_leader(&a_addr, 0));
    let a = std::thread::spawn(move || {
        let mut c = Peer { listener: la }.accept();
        answer_metadata_as_leader(&mut c, 0);
        for _ in 0..2 {
            let (id, m) = c.read_request();
            append_bodies(m);
            c.send(id, &to_b);
        }
        assert!(c.try_read_request(PEER_WAIT).is_none());
    });
    let b = std::thread::spawn(move || {
        let mut c = Peer { listener: lb }.accept();
        let (id, m) = c.read_request();
        append_bodies(m);
        c.send(id, &to_a);
        let (id, m) = c.read_request();
        assert_eq!(append_bodies(m), vec![body(9)]);
        c.send(
            id,
            &AppendResponse {
                entries: vec![AppendedEntry { index: 109, pos: 0 }],
            },
        );
        assert!(c.try_read_request(PEER_WAIT).is_none());
    });
    run(async || {
        let client = Client::connect(vec![a_addr.clone(), b_addr.clone()], GROUP, fast_options())
            .await
            .expect("connect");
        let e = client.append(&[body(9)]).await.expect("append");
        assert_eq!(e[0].index, 109);
        assert_eq!(client.stats().redirects, 3);
        assert_eq!(client.stats().connects, 2, "connections are reused");
        assert_eq!(client.leader(), Some(b_addr.clone()));
    });
    a.join().expect("peer a");
    b.join().expect("peer b");
}

#[test]
fn a_final_refusal_after_a_retried_unknown_outcome_is_still_outcome_unknown() {
    let (addr, peer) = spawn_peer(|p| {
        let mut c = p.accept();
        answer_metadata_as_leader(&mut c, 0);
        for code in [ResponseCode::TermChanged, ResponseCode::DiskFull] {
            let (id, m) = c.read_request();
            append_bodies(m);
            c.send(
                id,
                &ErrorResponse {
                    code,
                    leader: None,
                    message: code.name().into(),
                },
            );
        }
        assert!(c.try_read_request(PEER_WAIT).is_none());
    });
    run(async || {
        // Default options: unknown outcomes are retried (at-least-once).
        let client = Client::connect(vec![addr.clone()], GROUP, fast_options())
            .await
            .expect("connect");
        let err = client.append(&[body(1)]).await.expect_err("disk full");
        assert_eq!(err.code, ResponseCode::DiskFull);
        // The first attempt (TERM_CHANGED) may still commit: the caller must know.
        assert!(err.outcome_unknown, "{err}");
        assert_eq!(client.stats().retries, 1);
    });
    peer.join().expect("scripted peer");
}

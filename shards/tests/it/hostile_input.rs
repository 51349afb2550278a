//! Hostile input against a real node, on its client port and on its peer port: garbage
//! bytes, an oversized length prefix, a frame cut in the middle, a connection that sends
//! one byte a second, a flood of connections, an unknown group, an unknown node and a
//! peer batch claiming another node's id. Each must end in a clear error or a closed
//! connection; the node must stay up, keep serving a well-behaved client and keep its
//! memory bounded (RSS read from /proc).
//!
//! Two of the three example brokers run (a quorum, so appends commit); the hostile
//! traffic goes to n0. n2 is configured but not running, so a stranger on loopback can
//! pose as it on the peer port — the realistic impersonation.

use crate::common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::cluster::TestCluster;
use dledger::config::{HostPort, parse_file_contents};
use dledger::wire::body::Body;
use dledger::wire::{
    AppendRequest, ClientMessage, FrameDecoder, FrameWriter, GatherBuf, Kind, MetadataRequest,
    PeerBatchWriter, ResponseCode, WireLimits,
};
use dledger_shards::net::frame::{
    FRAME_HEADER_BYTES, FrameKind, HELLO_PAYLOAD_BYTES_MAX, Hello, HelloAck, PROTOCOL_VERSION,
    RejectReason, decode_header, encode_header,
};

const GROUP: &str = "RaftNode00";
/// n0 is the node under attack; n1 runs with it (a quorum); n2 is configured, absent.
const TARGET: usize = 0;
const ABSENT_NODE_ID: u32 = 2;
/// How long any single hostile exchange may take to be answered or closed.
const ANSWER_WAIT: Duration = Duration::from_secs(5);
/// The bound on finishing a begun client frame (`clientFrameTimeoutMs`, set below; the
/// default is 10 s, shortened so the test is quicker).
const CLIENT_FRAME_TIMEOUT: Duration = Duration::from_millis(4_000);
/// How long a client connection may sit idle (`serverChannelMaxIdleTimeSeconds`, set
/// below; RocketMQ's default is 120 s).
const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(3);
/// Timer slack allowed when checking that a close did not come early.
const EARLY_SLACK: Duration = Duration::from_millis(300);
/// The transport's Hello deadline (net::config::DEFAULT_HELLO_TIMEOUT_MS).
const HELLO_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Connections in each flood.
const FLOOD_CONNECTIONS: usize = 2000;
/// Client connections a shard accepts (`maxClientConnections` default; one shard).
const CLIENT_CONNECTIONS_MAX: usize = 1024;
/// What one held client connection may cost the node: its 64 KiB read chunk, plus
/// task, socket and buffer bookkeeping.
const PER_CONNECTION_BYTES_MAX: u64 = 96 << 10;
/// RSS growth allowed on top of the per-connection bound (allocator slack, logs).
const RSS_SLACK_BYTES: u64 = 48 << 20;

/// The running cluster and what the tests need to reach n0.
struct Target {
    cluster: TestCluster,
    client: HostPort,
    peer: HostPort,
    pid: u32,
}

fn start() -> Target {
    // 2000 held connections need as many descriptors here and in the node (which
    // inherits the limit): raise the soft limit to the hard one.
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    // The three example brokers. Writes are refused only on a full disk: this test is
    // about network input, and a shared test machine's disk may sit near the 90% mark.
    let confs = common::cluster::conf_dir().join("dledger");
    let mut cluster = TestCluster::from_confs(
        &[
            confs.join("broker-n0.conf"),
            confs.join("broker-n1.conf"),
            confs.join("broker-n2.conf"),
        ],
        None,
        &[
            ("diskSpaceRatioToRefuseWrites", "0.999"),
            (
                "serverChannelMaxIdleTimeSeconds",
                &CLIENT_IDLE_TIMEOUT.as_secs().to_string(),
            ),
            (
                "clientFrameTimeoutMs",
                &CLIENT_FRAME_TIMEOUT.as_millis().to_string(),
            ),
        ],
    );
    cluster.start(0);
    cluster.start(1);
    cluster.wait_for_leader(GROUP, Duration::from_secs(20));
    let node = &cluster.nodes[TARGET];
    let text = std::fs::read_to_string(&node.config_path).expect("read n0's config");
    let cfg = parse_file_contents("n0.conf", &text)
        .expect("n0's config loads")
        .config;
    let peer = cfg.self_peer().peer_addr.clone();
    let pid = pid_of(&node.config_path.to_string_lossy());
    let client = node.client_addr.clone();
    Target {
        cluster,
        client,
        peer,
        pid,
    }
}

/// The pid of the server process started with `config` (its command line names it).
fn pid_of(config: &str) -> u32 {
    for entry in std::fs::read_dir("/proc").expect("list /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.contains(&b"server".as_slice()) && args.contains(&config.as_bytes()) {
            return pid;
        }
    }
    panic!("no server process runs with {config}");
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kb * 1024
}

fn connect(addr: &HostPort) -> TcpStream {
    let s = TcpStream::connect((addr.host.as_str(), addr.port)).expect("connect");
    s.set_read_timeout(Some(ANSWER_WAIT)).expect("read timeout");
    s
}

/// Reads until the server closes (Ok with everything it sent) or `wait` passes (Err).
fn read_until_closed(s: &mut TcpStream, wait: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "still open after {wait:?} ({} bytes read)",
                got.len()
            ));
        }
        s.set_read_timeout(Some(left)).expect("read timeout");
        match s.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(got),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
}

/// The client messages in `bytes` (whole frames only).
fn client_messages(bytes: &[u8]) -> Vec<(u64, ClientMessage)> {
    let limits = WireLimits::default();
    let decoder = FrameDecoder::new(limits.max_frame_bytes);
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        let msg = ClientMessage::decode(&frame, &limits).expect("the server's answers decode");
        out.push((frame.header.request_id, msg));
    }
    out
}

/// Reads answers from `s` until the one for `request_id` (earlier answers are skipped).
fn read_answer(s: &mut TcpStream, request_id: u64) -> ClientMessage {
    let limits = WireLimits::default();
    let decoder = FrameDecoder::new(limits.max_frame_bytes);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    s.set_read_timeout(Some(ANSWER_WAIT)).expect("read timeout");
    loop {
        while let Some(frame) = decoder.decode(&mut buf).expect("a well-formed answer") {
            if frame.header.request_id == request_id {
                return ClientMessage::decode(&frame, &limits).expect("the answer decodes");
            }
        }
        let n = match s.read(&mut chunk) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            read => read.expect("an answer in time"),
        };
        assert!(n > 0, "the server closed a connection it should keep");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One request on `s`, its answer.
fn call(s: &mut TcpStream, request_id: u64, msg: &ClientMessage) -> ClientMessage {
    let mut out = BytesMut::new();
    msg.encode(request_id, &WireLimits::default(), &mut out)
        .expect("encode");
    s.write_all(&out).expect("send a request");
    read_answer(s, request_id)
}

fn error_code(msg: &ClientMessage) -> ResponseCode {
    match msg {
        ClientMessage::ErrorResponse(e) => e.code,
        other => panic!("expected an error answer, got {other:?}"),
    }
}

/// A well-behaved client still gets served: metadata from n0 on a fresh connection,
/// and an append through the group's leader commits.
fn assert_serving(t: &mut Target, what: &str) {
    t.cluster.assert_running(TARGET);
    let mut s = connect(&t.client);
    let answer = call(
        &mut s,
        1,
        &ClientMessage::MetadataRequest(MetadataRequest {
            group: GROUP.into(),
        }),
    );
    let ClientMessage::MetadataResponse(m) = answer else {
        panic!("after {what}: metadata answered {answer:?}");
    };
    let leader = m
        .leader
        .and_then(|l| l.client_addr)
        .unwrap_or_else(|| panic!("after {what}: no leader known"));
    let mut s = connect(&HostPort {
        host: "127.0.0.1".into(),
        port: leader.port,
    });
    let append = ClientMessage::AppendRequest(AppendRequest {
        group: GROUP.into(),
        bodies: vec![Bytes::from(format!("after {what}"))],
    });
    match call(&mut s, 2, &append) {
        ClientMessage::AppendResponse(r) => assert_eq!(r.entries.len(), 1),
        other => panic!("after {what}: append answered {other:?}"),
    }
}

fn append_frame(group: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    AppendRequest {
        group: group.into(),
        bodies: vec![Bytes::from_static(b"hostile")],
    }
    .encode(5, &WireLimits::default(), &mut out)
    .expect("encode");
    out.to_vec()
}

// ---- client port ----

fn client_garbage(t: &Target) {
    let mut s = connect(&t.client);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let got = read_until_closed(&mut s, ANSWER_WAIT).expect("garbage closes the connection");
    let answers = client_messages(&got);
    assert_eq!(answers.len(), 1, "one error answer, then the close");
    let ClientMessage::ErrorResponse(e) = &answers[0].1 else {
        panic!("expected an error, got {:?}", answers[0]);
    };
    assert!(
        e.message.contains("magic"),
        "the reason names it: {}",
        e.message
    );
}

fn client_oversized_length(t: &Target) {
    let mut frame = append_frame(GROUP);
    frame[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
    let mut s = connect(&t.client);
    s.write_all(&frame[..24]).expect("send the header");
    let got = read_until_closed(&mut s, ANSWER_WAIT).expect("an oversized frame closes");
    let answers = client_messages(&got);
    assert_eq!(answers.len(), 1);
    assert_eq!(error_code(&answers[0].1), ResponseCode::FrameTooLarge);
}

fn client_cut_frame(t: &Target) {
    let frame = append_frame(GROUP);
    let mut s = connect(&t.client);
    s.write_all(&frame[..frame.len() / 2]).expect("send half");
    s.shutdown(Shutdown::Write).expect("half-close");
    let got = read_until_closed(&mut s, ANSWER_WAIT).expect("a cut frame ends the connection");
    assert!(
        client_messages(&got).is_empty(),
        "nothing is answered for half a frame"
    );
}

/// Idle connections: one that never sends a byte, and one that sends a request every
/// half idle timeout for two timeouts and then stops. Both must be closed once idle for
/// the timeout, not before; the busy one must be served throughout. Returns how long
/// each stayed open after its last request (or its connect).
fn client_idle(addr: &HostPort) -> (Duration, Duration) {
    let mut silent = connect(addr);
    let began = Instant::now();
    let got = read_until_closed(&mut silent, CLIENT_IDLE_TIMEOUT + ANSWER_WAIT)
        .unwrap_or_else(|e| panic!("an idle connection was not closed: {e}"));
    assert!(got.is_empty(), "an idle connection got {} bytes", got.len());
    let silent_for = began.elapsed();

    let mut busy = connect(addr);
    let metadata = ClientMessage::MetadataRequest(MetadataRequest {
        group: GROUP.into(),
    });
    let busy_until = Instant::now() + 2 * CLIENT_IDLE_TIMEOUT;
    let mut request_id = 1;
    while Instant::now() < busy_until {
        let answer = call(&mut busy, request_id, &metadata);
        assert!(
            matches!(answer, ClientMessage::MetadataResponse(_)),
            "a busy connection's request {request_id} answered {answer:?}"
        );
        request_id += 1;
        std::thread::sleep(CLIENT_IDLE_TIMEOUT / 2);
    }
    let last_request = Instant::now();
    let answer = call(&mut busy, request_id, &metadata);
    assert!(matches!(answer, ClientMessage::MetadataResponse(_)));
    read_until_closed(&mut busy, CLIENT_IDLE_TIMEOUT + ANSWER_WAIT)
        .unwrap_or_else(|e| panic!("a connection idle after requests was not closed: {e}"));
    (silent_for, last_request.elapsed())
}

/// Sends all but the last byte of a frame, one byte a second; returns when the server
/// closed the connection.
fn client_slowloris(addr: &HostPort) -> Duration {
    let frame = append_frame(GROUP);
    let mut s = connect(addr);
    let began = Instant::now();
    for b in &frame[..frame.len() - 1] {
        if s.write_all(&[*b]).is_err() {
            return began.elapsed();
        }
        // Doubles as the one-second pause.
        if read_until_closed(&mut s, Duration::from_secs(1)).is_ok() {
            return began.elapsed();
        }
    }
    panic!(
        "a client sending one byte a second kept its connection for {:?}",
        began.elapsed()
    );
}

fn client_unknown_group_and_bad_body(t: &Target) {
    let mut s = connect(&t.client);
    let answer = call(
        &mut s,
        11,
        &ClientMessage::AppendRequest(AppendRequest {
            group: "NoSuchGroup".into(),
            bodies: vec![Bytes::from_static(b"x")],
        }),
    );
    assert_eq!(error_code(&answer), ResponseCode::UnknownGroup);
    // A frame that is whole and CRC-correct but whose body is nonsense (an append of
    // zero bodies): answered with the reason, the connection stays usable.
    let mut out = BytesMut::new();
    let w = FrameWriter::begin(&mut out, Kind::AppendRequest, 12);
    out.extend_from_slice(&[GROUP.len() as u8]);
    out.extend_from_slice(GROUP.as_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    w.finish(&mut out, u32::MAX).expect("finish");
    s.write_all(&out).expect("send");
    let answer = read_answer(&mut s, 12);
    assert_eq!(error_code(&answer), ResponseCode::RequestWithEmptyBodys);
    let answer = call(
        &mut s,
        13,
        &ClientMessage::MetadataRequest(MetadataRequest {
            group: GROUP.into(),
        }),
    );
    assert!(
        matches!(answer, ClientMessage::MetadataResponse(_)),
        "the connection serves on after a malformed request: {answer:?}"
    );
}

// ---- peer port ----

fn hello(node_id: u32, cluster: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Hello {
        node_id,
        shard_id: 0,
        shard_count: 1,
        protocol_version: PROTOCOL_VERSION,
        cluster: cluster.into(),
    }
    .encode_frame(&mut out);
    out
}

/// The HelloReject reason in what a peer connection answered before closing.
fn reject_reason(bytes: &[u8]) -> RejectReason {
    let header: &[u8; FRAME_HEADER_BYTES] = bytes
        .get(..FRAME_HEADER_BYTES)
        .and_then(|h| h.try_into().ok())
        .unwrap_or_else(|| panic!("expected a HelloReject frame, got {bytes:?}"));
    let header = decode_header(header, HELLO_PAYLOAD_BYTES_MAX).expect("a valid header");
    assert_eq!(header.kind, FrameKind::HelloReject);
    RejectReason::from_code(bytes[FRAME_HEADER_BYTES])
}

fn cluster_name(t: &Target) -> String {
    let text = std::fs::read_to_string(&t.cluster.nodes[TARGET].config_path).expect("config");
    parse_file_contents("n0.conf", &text)
        .expect("loads")
        .config
        .cluster_name
}

fn peer_garbage_and_oversized(t: &Target) {
    let mut s = connect(&t.peer);
    s.write_all(b"\x00\x01garbage, not a hello at all")
        .expect("send");
    let got = read_until_closed(&mut s, ANSWER_WAIT).expect("garbage closes");
    assert_eq!(reject_reason(&got), RejectReason::Malformed);

    let mut frame = hello(1, &cluster_name(t));
    frame[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    let mut s = connect(&t.peer);
    s.write_all(&frame[..FRAME_HEADER_BYTES]).expect("send");
    let got = read_until_closed(&mut s, ANSWER_WAIT).expect("an oversized hello closes");
    assert_eq!(reject_reason(&got), RejectReason::Malformed);
}

fn peer_cut_and_slow(t: &Target) {
    let frame = hello(ABSENT_NODE_ID, &cluster_name(t));
    let mut s = connect(&t.peer);
    s.write_all(&frame[..frame.len() / 2]).expect("send half");
    s.shutdown(Shutdown::Write).expect("half-close");
    read_until_closed(&mut s, ANSWER_WAIT).expect("a cut hello closes");

    // A byte every half second, each inside the socket's read timeout: the deadline on
    // the whole Hello closes it all the same.
    let mut s = connect(&t.peer);
    let began = Instant::now();
    let mut closed = false;
    for b in &frame {
        if s.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        if read_until_closed(&mut s, HELLO_TIMEOUT / 2).is_ok() {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a peer connection trickling its hello was never closed"
    );
    assert!(began.elapsed() < HELLO_TIMEOUT + ANSWER_WAIT);
}

fn peer_unknown_node_and_wrong_cluster(t: &Target) {
    let name = cluster_name(t);
    for (frame, want) in [
        (hello(99, &name), RejectReason::UnknownNode),
        (hello(TARGET as u32, &name), RejectReason::UnknownNode),
        (hello(1, "SomeOtherCluster"), RejectReason::WrongCluster),
    ] {
        let mut s = connect(&t.peer);
        s.write_all(&frame).expect("send");
        let got = read_until_closed(&mut s, ANSWER_WAIT).expect("refused and closed");
        assert_eq!(reject_reason(&got), want);
    }
}

/// A peer connection handshaken as the absent n2 (its configured address is loopback
/// too, so the Hello is accepted).
fn pose_as_absent_node(t: &Target) -> TcpStream {
    let mut s = connect(&t.peer);
    s.write_all(&hello(ABSENT_NODE_ID, &cluster_name(t)))
        .expect("send hello");
    let mut ack = [0u8; FRAME_HEADER_BYTES + 12];
    s.read_exact(&mut ack)
        .expect("an ack for a configured node");
    let header =
        decode_header(ack[..FRAME_HEADER_BYTES].try_into().expect("12 bytes"), 64).expect("header");
    assert_eq!(header.kind, FrameKind::HelloAck);
    let ack = HelloAck::decode_payload(&ack[FRAME_HEADER_BYTES..]).expect("ack");
    assert_eq!(ack.node_id, TARGET as u32);
    s
}

/// Poses as n2, then sends a batch whose Raft section claims to come from n1.
fn peer_claims_another_node(t: &Target) {
    let mut s = pose_as_absent_node(t);
    let limits = WireLimits::default();
    let mut batch = GatherBuf::new();
    let mut w = PeerBatchWriter::begin(&mut batch, 0, 1, TARGET as u32, 0, &limits);
    w.heartbeat(
        &mut batch,
        dledger::config::group_id_of(GROUP),
        1 << 40,
        0,
        false,
    )
    .expect("heartbeat");
    w.finish(&mut batch).expect("finish");
    let mut payload = vec![1u8]; // the server's Raft item tag
    payload.extend_from_slice(&batch.to_bytes());
    let mut frame = Vec::new();
    encode_header(FrameKind::Batch, payload.len(), &mut frame);
    frame.extend_from_slice(&payload);
    s.write_all(&frame).expect("send the batch");
    read_until_closed(&mut s, ANSWER_WAIT).expect("a batch claiming n1 closes the connection");
}

/// Handshaken connections that each announce a large Batch frame and send nothing
/// more: the node's memory must follow the bytes that arrived, not the announcements.
fn peer_announced_frames_cost_nothing(t: &Target) -> u64 {
    const CONNECTIONS: usize = 16;
    const ANNOUNCED_BYTES: usize = 8 << 20;
    let before = rss_bytes(t.pid);
    let held: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|_| {
            let mut s = pose_as_absent_node(t);
            let mut header = Vec::new();
            encode_header(FrameKind::Batch, ANNOUNCED_BYTES, &mut header);
            s.write_all(&header).expect("send a batch header");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let growth = rss_bytes(t.pid).saturating_sub(before);
    drop(held);
    let announced = (CONNECTIONS * ANNOUNCED_BYTES) as u64;
    assert!(
        growth < announced / 4,
        "{CONNECTIONS} connections announcing {ANNOUNCED_BYTES} bytes each grew RSS by {growth}"
    );
    growth
}

/// Opens `FLOOD_CONNECTIONS` connections at once and holds them for `wait`; then,
/// for up to `patience` more, counts the ones the server closed (or refused with a
/// frame) until `enough(established)` are. Returns (established, closed, the node's RSS
/// growth while they were held).
fn flood(
    t: &Target,
    addr: &HostPort,
    wait: Duration,
    patience: Duration,
    enough: impl Fn(usize) -> usize,
) -> (usize, usize, u64) {
    let before = rss_bytes(t.pid);
    let mut open = Vec::with_capacity(FLOOD_CONNECTIONS);
    let to: std::net::SocketAddr = format!("{}:{}", addr.host, addr.port)
        .parse()
        .expect("a loopback address");
    for _ in 0..FLOOD_CONNECTIONS {
        match TcpStream::connect_timeout(&to, Duration::from_secs(2)) {
            Ok(s) => open.push(s),
            // A full accept backlog refuses; that is a bounded accept too.
            Err(_) => continue,
        }
    }
    let established = open.len();
    std::thread::sleep(wait);
    let peak = rss_bytes(t.pid);
    let deadline = Instant::now() + patience;
    let mut closed = 0;
    loop {
        open.retain_mut(|s| {
            s.set_nonblocking(true).expect("nonblocking");
            let mut b = [0u8; 64];
            let still_open = matches!(s.read(&mut b), Err(e) if e.kind() == ErrorKind::WouldBlock);
            closed += usize::from(!still_open);
            still_open
        });
        if closed >= enough(established) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    (established, closed, peak.saturating_sub(before))
}

#[test]
fn hostile_client_and_peer_traffic_leaves_the_node_serving() {
    let mut t = start();
    let rss_start = rss_bytes(t.pid);
    assert_serving(&mut t, "start");

    // The slow ones run in the background while the quick ones go on.
    let peer = t.peer.clone();
    let slow_client = std::thread::spawn({
        let client = t.client.clone();
        move || client_slowloris(&client)
    });
    let idle_client = std::thread::spawn({
        let client = t.client.clone();
        move || client_idle(&client)
    });

    client_garbage(&t);
    assert_serving(&mut t, "client garbage");
    client_oversized_length(&t);
    client_cut_frame(&t);
    client_unknown_group_and_bad_body(&t);
    assert_serving(&mut t, "client framing errors");

    peer_garbage_and_oversized(&t);
    peer_cut_and_slow(&t);
    peer_unknown_node_and_wrong_cluster(&t);
    peer_claims_another_node(&t);
    let growth = peer_announced_frames_cost_nothing(&t);
    eprintln!("peer frames announced but not sent: RSS +{growth} bytes");
    assert_serving(&mut t, "peer handshake abuse");

    let slow = slow_client.join().expect("slowloris thread");
    eprintln!("client slowloris connection closed after {slow:?}");
    assert!(
        slow + Duration::from_secs(1) >= CLIENT_FRAME_TIMEOUT,
        "closed after {slow:?}, before the frame deadline: for another reason"
    );
    assert_serving(&mut t, "a slowloris client");

    let (silent, after_requests) = idle_client.join().expect("idle client thread");
    eprintln!(
        "idle client connections closed after {silent:?} (silent) and {after_requests:?} \
         (after its last request)"
    );
    for idle in [silent, after_requests] {
        assert!(
            idle + EARLY_SLACK >= CLIENT_IDLE_TIMEOUT,
            "closed after {idle:?} idle, before serverChannelMaxIdleTimeSeconds"
        );
    }

    // Peer flood: every connection that never says Hello is closed at the deadline.
    let (held, closed, growth) = flood(&t, &peer, HELLO_TIMEOUT, Duration::from_secs(10), |held| {
        held * 9 / 10
    });
    eprintln!("peer flood: {closed} of {held} connections closed, RSS +{growth} bytes");
    assert!(
        held > CLIENT_CONNECTIONS_MAX,
        "the flood got only {held} connections"
    );
    assert!(
        closed >= held * 9 / 10,
        "peer connections without a hello must be closed ({closed} of {held} were)"
    );
    assert_serving(&mut t, "a peer connection flood");

    // Client flood: beyond maxClientConnections the node closes them at once; the rest
    // are held (idle) until we drop them.
    let client = t.client.clone();
    let (held, closed, growth) = flood(
        &t,
        &client,
        Duration::from_secs(1),
        Duration::from_secs(10),
        |held| held.saturating_sub(CLIENT_CONNECTIONS_MAX + 8),
    );
    eprintln!("client flood: {closed} of {held} connections closed, RSS +{growth} bytes");
    assert!(
        held > CLIENT_CONNECTIONS_MAX,
        "the flood got only {held} connections"
    );
    assert!(
        closed + CLIENT_CONNECTIONS_MAX + 8 >= held,
        "connections over maxClientConnections must be refused ({closed} of {held} closed)"
    );
    let bound = CLIENT_CONNECTIONS_MAX as u64 * PER_CONNECTION_BYTES_MAX + RSS_SLACK_BYTES;
    assert!(
        growth <= bound,
        "RSS grew {growth} bytes under a flood (bound {bound})"
    );
    // The slots come back once the flood is gone.
    let deadline = Instant::now() + ANSWER_WAIT;
    loop {
        let mut s = connect(&t.client);
        let mut out = BytesMut::new();
        ClientMessage::MetadataRequest(MetadataRequest {
            group: GROUP.into(),
        })
        .encode(1, &WireLimits::default(), &mut out)
        .expect("encode");
        let ok = s.write_all(&out).is_ok() && {
            let mut b = [0u8; 1];
            matches!(s.read(&mut b), Ok(1))
        };
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "client slots not released after a flood"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_serving(&mut t, "a client connection flood");

    let rss_end = rss_bytes(t.pid);
    eprintln!("n0 RSS: {rss_start} bytes at start, {rss_end} at the end");
    assert!(
        rss_end <= rss_start + RSS_SLACK_BYTES * 2,
        "RSS grew from {rss_start} to {rss_end} bytes over the run"
    );
}

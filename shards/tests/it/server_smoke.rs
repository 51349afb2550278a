//! Three real `dledger server` processes on loopback, from conf/dledger/broker-n{0,1,2}.conf
//! (and conf/multigroup/node-n{0,1,2}.conf) with storage in a temporary directory and
//! ports of their own: wait for a leader through the wire Metadata request, append
//! bodies (pipelined, plain std TCP and the wire codecs), and read them back from every
//! node byte-identical.

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::ports::reserve_port;
use bytes::{Bytes, BytesMut};
use dledger::{
    raft::Role,
    wire::{
        AppendRequest, ClientMessage, FrameDecoder, GetRequest, MetadataRequest, ResponseCode,
        WireLimits,
    },
};

const NODES: usize = 3;
/// Issue 4 asks for 10,000 acknowledged appends read back from every node.
const BODIES: usize = 10_000;
/// Requests in flight on the pipelined connection (the server caps a connection at 1024).
const WINDOW: usize = 256;
const GROUP: &str = "RaftNode00";

/// Kills every server it started, also when the test panics.
struct Cluster {
    children: Vec<Child>,
    dir: PathBuf,
    /// Node i's client port.
    client_ports: Vec<u16>,
    /// Node i's peer port.
    peer_ports: Vec<u16>,
}

impl Cluster {
    fn client_port(&self, i: usize) -> u16 {
        self.client_ports[i]
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            for i in 0..self.children.len() {
                let log =
                    std::fs::read_to_string(self.dir.join(format!("n{i}.log"))).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("---- node n{i} log tail ----");
                for l in tail.into_iter().rev() {
                    eprintln!("{l}");
                }
            }
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Node `i`'s config: `conf` with storage in `dir`, the cluster's ports and `extra` lines.
fn rewrite(cluster: &Cluster, conf: &str, i: usize, extra: &str) -> String {
    let dir = &cluster.dir;
    let mut out = String::new();
    // `extra` lines replace the file's lines of the same key, or are added.
    let mut extra_lines: Vec<(&str, &str)> = extra
        .lines()
        .map(|l| (l.split('=').next().unwrap_or("").trim(), l))
        .collect();
    let peers: Vec<String> = cluster
        .peer_ports
        .iter()
        .enumerate()
        .map(|(n, port)| format!("n{n}-127.0.0.1:{port}"))
        .collect();
    for line in conf.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        let replaced = match key {
            "storePathRootDir" => format!("storePathRootDir={}/node{i}", dir.display()),
            "storePathCommitLog" => {
                format!("storePathCommitLog={}/node{i}/commitlog", dir.display())
            }
            "listenPort" => format!("listenPort={}", cluster.client_port(i)),
            "dLegerPeers" => format!("dLegerPeers={}", peers.join(";")),
            k => match extra_lines.iter().position(|(ek, _)| *ek == k) {
                Some(at) => extra_lines.remove(at).1.to_owned(),
                None => line.to_owned(),
            },
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    for (_, line) in extra_lines {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Starts the three nodes of `conf_dir/<file_prefix><i>.conf`, with `extra` lines added.
fn start_cluster(conf_dir: &str, file_prefix: &str, extra: &str) -> Cluster {
    start_cluster_with(conf_dir, file_prefix, &|_| extra.to_owned())
}

/// As [`start_cluster`], with node `i`'s extra lines from `extra(i)`.
fn start_cluster_with(
    conf_dir: &str,
    file_prefix: &str,
    extra: &dyn Fn(usize) -> String,
) -> Cluster {
    start_nodes(conf_dir, file_prefix, NODES, extra)
}

/// Starts nodes `0..nodes` (their peer list is exactly those nodes).
fn start_nodes(
    conf_dir: &str,
    file_prefix: &str,
    nodes: usize,
    extra: &dyn Fn(usize) -> String,
) -> Cluster {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("dledger-smoke-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the temp dir");
    let conf_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(conf_dir);
    // Ports of its own for each cluster (the binary's allocator never hands one out
    // twice): a node killed by the previous test can hold its listening socket for a
    // moment after it dies (its io_uring is torn down in deferred work), and a client
    // connecting there would be reset instead of reaching the new node.
    let held: Vec<std::net::TcpListener> = (0..2 * nodes).map(|_| reserve_port()).collect();
    let port = |l: &std::net::TcpListener| l.local_addr().expect("a bound listener").port();
    let mut cluster = Cluster {
        children: Vec::new(),
        dir: dir.clone(),
        client_ports: held[..nodes].iter().map(port).collect(),
        peer_ports: held[nodes..].iter().map(port).collect(),
    };
    drop(held);
    for i in 0..nodes {
        let conf = std::fs::read_to_string(conf_dir.join(format!("{file_prefix}{i}.conf")))
            .expect("read an example config");
        let path = dir.join(format!("n{i}.conf"));
        std::fs::write(&path, rewrite(&cluster, &conf, i, &extra(i))).expect("write the config");
        let log = std::fs::File::create(dir.join(format!("n{i}.log"))).expect("create a log");
        let child = Command::new(env!("CARGO_BIN_EXE_dledger"))
            .args(["server", "-c"])
            .arg(&path)
            .env("RUST_LOG", "info,dledger_shards::server::client=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dledger server");
        cluster.children.push(child);
    }
    cluster
}

/// A blocking wire client on one connection.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
    limits: WireLimits,
}

impl Conn {
    fn open(port: u16) -> Option<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set a read timeout");
        let limits = WireLimits::default();
        Some(Conn {
            stream,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(limits.max_frame_bytes),
            limits,
        })
    }

    fn send(&mut self, id: u64, msg: &ClientMessage) {
        self.try_send(id, msg).expect("send a request");
    }

    /// Sends a request; an I/O error is an `Err` (see [`Conn::try_recv`]).
    fn try_send(&mut self, id: u64, msg: &ClientMessage) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        msg.encode(id, &self.limits, &mut out)
            .expect("encode a request");
        self.stream.write_all(&out)
    }

    fn recv(&mut self) -> (u64, ClientMessage) {
        self.try_recv().expect("read an answer")
    }

    /// The next answer; an I/O error or a closed connection is an `Err` (a node that is
    /// still starting or just died), a malformed answer a panic.
    fn try_recv(&mut self) -> std::io::Result<(u64, ClientMessage)> {
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).expect("a valid frame") {
                let msg = ClientMessage::decode(&frame, &self.limits).expect("a valid answer");
                return Ok((frame.header.request_id, msg));
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn call(&mut self, id: u64, msg: &ClientMessage) -> ClientMessage {
        self.send(id, msg);
        let (got, answer) = self.recv();
        assert_eq!(got, id, "the answer names the request");
        answer
    }
}

fn metadata(port: u16, group: &str) -> Option<dledger::wire::MetadataResponse> {
    let mut c = Conn::open(port)?;
    let req = ClientMessage::MetadataRequest(MetadataRequest {
        group: group.to_owned(),
    });
    // A node may be starting or dying while the tests look for a leader: no answer.
    c.try_send(1, &req).ok()?;
    match c.try_recv().ok()? {
        (1, ClientMessage::MetadataResponse(m)) => Some(m),
        _ => None,
    }
}

fn wait_for_leader(cluster: &Cluster, group: &str, deadline: Instant) -> usize {
    while Instant::now() < deadline {
        for i in 0..NODES {
            if let Some(m) = metadata(cluster.client_port(i), group)
                && m.role == Role::Leader
            {
                return i;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no leader of {group} within the deadline");
}

/// Appends `count` bodies to `group` through `conn`, all pipelined, and returns
/// (body, index) pairs.
fn append_all(conn: &mut Conn, group: &str, count: usize) -> Vec<(Bytes, u64)> {
    append_windowed(conn, group, count, count)
}

/// Appends `count` bodies with at most `window` requests in flight.
fn append_windowed(conn: &mut Conn, group: &str, count: usize, window: usize) -> Vec<(Bytes, u64)> {
    let bodies: Vec<Bytes> = (0..count)
        .map(|i| Bytes::from(format!("{group}-body-{i}-{}", "x".repeat(i % 97)).into_bytes()))
        .collect();
    let mut index_of = HashMap::new();
    let mut sent = 0;
    while index_of.len() < count {
        while sent < count && sent - index_of.len() < window {
            let req = ClientMessage::AppendRequest(AppendRequest {
                group: group.to_owned(),
                bodies: vec![bodies[sent].clone()],
            });
            conn.send(1000 + sent as u64, &req);
            sent += 1;
        }
        let (id, answer) = conn.recv();
        match answer {
            ClientMessage::AppendResponse(r) => {
                assert_eq!(r.entries.len(), 1);
                index_of.insert(id - 1000, r.entries[0].index);
            }
            other => panic!("append {id} to {group} failed: {other:?}"),
        }
    }
    let mut indices: Vec<u64> = index_of.values().copied().collect();
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len(), count, "every append got its own index");
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, b)| (b, index_of[&(i as u64)]))
        .collect()
}

fn find_leader(cluster: &Cluster, nodes: &[usize], group: &str, deadline: Instant) -> usize {
    loop {
        let found = nodes.iter().copied().find(|&n| {
            metadata(cluster.client_port(n), group).is_some_and(|m| m.role == Role::Leader)
        });
        if let Some(n) = found {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "no leader of {group} among {nodes:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads `group` back from every node until it holds `appended`, byte-identical.
fn read_back_everywhere(cluster: &Cluster, group: &str, appended: &[(Bytes, u64)]) {
    read_back(cluster, group, appended, &[0, 1, 2]);
}

/// Reads `group` back from `nodes` until each holds `appended`, byte-identical.
fn read_back(cluster: &Cluster, group: &str, appended: &[(Bytes, u64)], nodes: &[usize]) {
    let last = appended.iter().map(|(_, i)| *i).max().unwrap_or(0);
    for &node in nodes {
        let mut c = Conn::open(cluster.client_port(node)).expect("connect to a node");
        let mut got: HashMap<u64, Bytes> = HashMap::new();
        let mut from = 1u64;
        let deadline = Instant::now() + Duration::from_secs(20);
        while from <= last {
            assert!(
                Instant::now() < deadline,
                "n{node} did not commit {group} up to {last}"
            );
            let req = ClientMessage::GetRequest(GetRequest {
                group: group.to_owned(),
                from_index: from,
                max_bytes: 64 << 10,
            });
            match c.call(from, &req) {
                ClientMessage::GetResponse(r) => {
                    if r.entries.is_empty() {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    for e in r.entries {
                        assert_eq!(e.index, from, "entries come in order");
                        got.insert(e.index, e.body);
                        from += 1;
                    }
                }
                other => panic!("get {group} from n{node} failed: {other:?}"),
            }
        }
        for (body, index) in appended {
            assert_eq!(
                got.get(index),
                Some(body),
                "{group} on n{node}, index {index}"
            );
        }
    }
}

#[test]
fn three_nodes_replicate_and_serve_reads() {
    let _servers = crate::common::serial::servers();
    // Small segments: they are preallocated and zero-filled at start.
    let cluster = start_cluster(
        "conf/dledger",
        "broker-n",
        "mappedFileSizeForEntryData=16777216\n",
    );
    let leader = wait_for_leader(&cluster, GROUP, Instant::now() + Duration::from_secs(60));
    let m = metadata(cluster.client_port(leader), GROUP).expect("metadata from the leader");
    assert_eq!(m.failures_tolerated, 1, "three nodes survive one failure");
    assert_eq!(m.peers.len(), NODES);

    // A follower refuses appends with NOT_LEADER naming the leader's client address
    // (once the nodes have exchanged addresses).
    let follower = (leader + 1) % NODES;
    let mut fc = Conn::open(cluster.client_port(follower)).expect("connect to a follower");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let req = ClientMessage::AppendRequest(AppendRequest {
            group: GROUP.to_owned(),
            bodies: vec![Bytes::from_static(b"refused")],
        });
        match fc.call(7, &req) {
            ClientMessage::ErrorResponse(e) => {
                assert_eq!(e.code, ResponseCode::NotLeader, "{e:?}");
                // A follower that has not yet heard from this term's leader (its group
                // opened late) cannot name it; once it has, it names the leader's address.
                if let Some(addr) = e.leader.and_then(|hint| hint.client_addr) {
                    assert_eq!(addr.port, cluster.client_port(leader));
                    break;
                }
            }
            other => panic!("a follower accepted an append: {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "the leader's client address never became known"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Unknown group.
    let req = ClientMessage::MetadataRequest(MetadataRequest {
        group: "NoSuchGroup".to_owned(),
    });
    match fc.call(8, &req) {
        ClientMessage::ErrorResponse(e) => assert_eq!(e.code, ResponseCode::UnknownGroup),
        other => panic!("expected UNKNOWN_GROUP, got {other:?}"),
    }

    // Pipelined appends to the leader: all requests first, then the answers in any order.
    let mut lc = Conn::open(cluster.client_port(leader)).expect("connect to the leader");
    let started = Instant::now();
    let appended = append_windowed(&mut lc, GROUP, BODIES, WINDOW);
    let elapsed = started.elapsed();
    eprintln!(
        "{BODIES} pipelined single-body appends ({WINDOW} in flight) committed in {elapsed:?} ({:.0}/s)",
        BODIES as f64 / elapsed.as_secs_f64()
    );
    read_back_everywhere(&cluster, GROUP, &appended);

    // One append at a time: the latency of a durable, replicated append (printed, not
    // asserted: speed belongs to the perf harness).
    let mut latencies_us = Vec::new();
    for i in 0..200u64 {
        let req = ClientMessage::AppendRequest(AppendRequest {
            group: GROUP.to_owned(),
            bodies: vec![Bytes::from_static(&[7u8; 128])],
        });
        let t = Instant::now();
        match lc.call(20_000 + i, &req) {
            ClientMessage::AppendResponse(_) => latencies_us.push(t.elapsed().as_micros()),
            other => panic!("sequential append failed: {other:?}"),
        }
    }
    latencies_us.sort_unstable();
    eprintln!(
        "sequential 128-byte appends: p50 {} us, p99 {} us, max {} us",
        latencies_us[latencies_us.len() / 2],
        latencies_us[latencies_us.len() * 99 / 100],
        latencies_us[latencies_us.len() - 1]
    );

    // SIGTERM to the leader: it hands leadership over, flushes and exits 0; the other
    // two keep serving every acknowledged entry and accept new ones.
    let mut cluster = cluster;
    let pid = nix::unistd::Pid::from_raw(cluster.children[leader].id() as i32);
    let stopped = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
    let status = loop {
        if let Some(status) = cluster.children[leader]
            .try_wait()
            .expect("wait for the leader")
        {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "the leader did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "graceful stop exits 0, got {status}");
    let survivors: Vec<usize> = (0..NODES).filter(|&n| n != leader).collect();
    let new_leader = loop {
        let found = survivors.iter().copied().find(|&n| {
            metadata(cluster.client_port(n), GROUP).is_some_and(|m| m.role == Role::Leader)
        });
        if let Some(n) = found {
            break n;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(30),
            "no new leader after the stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!(
        "leader n{leader} stopped; n{new_leader} leads {:?} after the SIGTERM",
        stopped.elapsed()
    );
    let mut nc = Conn::open(cluster.client_port(new_leader)).expect("connect to the new leader");
    let more = append_all(&mut nc, GROUP, 50);
    read_back(&cluster, GROUP, &appended, &survivors);
    read_back(&cluster, GROUP, &more, &survivors);
    drop(cluster);
}

/// Eight groups over two shards per node (node n2: one shard): one client connection
/// lands on one shard, so about half the requests go through the cross-shard forwarding,
/// and n2's peers' messages for groups on their other shard are forwarded to it.
#[test]
fn many_groups_over_unequal_shard_counts() {
    let _servers = crate::common::serial::servers();
    let groups: Vec<String> = (0..8).map(|g| format!("RaftNode0{g}")).collect();
    let cluster = start_cluster_with("conf/multigroup", "node-n", &|i| {
        let shards = if i == 2 { 1 } else { 2 };
        format!("mappedFileSizeForEntryData=1048576\nmaxBodyBytes=65536\nshards={shards}\n")
    });
    for (i, g) in groups.iter().enumerate() {
        // conf/multigroup names a preferred leader per group (round-robin n0, n1, n2):
        // whoever wins the first election hands leadership over to it, refusing appends
        // meanwhile (LEADER_TRANSFERRING, then NOT_LEADER). Under load that first winner
        // is often another node, so append only once the preferred one leads.
        let preferred = i % NODES;
        let deadline = Instant::now() + Duration::from_secs(60);
        while metadata(cluster.client_port(preferred), g).is_none_or(|m| m.role != Role::Leader) {
            assert!(
                Instant::now() < deadline,
                "n{preferred} never led {g}, its preferred leader"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut conn = Conn::open(cluster.client_port(preferred)).expect("connect to the leader");
        let appended = append_all(&mut conn, g, 20);
        read_back_everywhere(&cluster, g, &appended);
    }
    // Every node lists all eight groups (gathered from all its shards).
    for node in 0..NODES {
        let mut c = Conn::open(cluster.client_port(node)).expect("connect to a node");
        match c.call(
            77,
            &ClientMessage::ClusterViewRequest(dledger::wire::ClusterViewRequest),
        ) {
            ClientMessage::ClusterViewResponse(v) => {
                assert_eq!(v.node_id, node as u32);
                let names: Vec<&str> = v.rows.iter().map(|r| r.group.as_str()).collect();
                assert_eq!(names, groups.iter().map(String::as_str).collect::<Vec<_>>());
                for r in &v.rows {
                    assert!(r.leader.is_some(), "{} has a leader", r.group);
                    assert!(r.commit_index >= 20, "{} committed the appends", r.group);
                }
            }
            other => panic!("cluster view from n{node} failed: {other:?}"),
        }
    }

    // One connection sits on one shard, so some requests crossed shards.
    let forwarded: usize = (0..NODES)
        .map(|i| {
            std::fs::read_to_string(cluster.dir.join(format!("n{i}.log")))
                .unwrap_or_default()
                .matches("forwarding a request")
                .count()
        })
        .sum();
    assert!(forwarded > 0, "no request was forwarded between shards");
    eprintln!("{forwarded} requests were forwarded between shards");
    drop(cluster);
}

/// SIGKILL of the leader while appends are in flight loses no acknowledged entry; with
/// the quorum gone, appends fail with WAIT_QUORUM_ACK_TIMEOUT after maxWaitAckTimeMs and,
/// beyond maxPendingRequestsNum waiting, LEADER_PENDING_FULL.
#[test]
fn leader_crash_loses_no_ack_and_quorum_loss_times_out() {
    let _servers = crate::common::serial::servers();
    const PENDING_MAX: usize = 8;
    let mut cluster = start_cluster(
        "conf/dledger",
        "broker-n",
        &format!(
            "mappedFileSizeForEntryData=16777216\nmaxWaitAckTimeMs=150\nmaxPendingRequestsNum={PENDING_MAX}\n"
        ),
    );
    let all = [0, 1, 2];
    let leader = find_leader(
        &cluster,
        &all,
        GROUP,
        Instant::now() + Duration::from_secs(60),
    );
    let mut lc = Conn::open(cluster.client_port(leader)).expect("connect to the leader");
    let mut acked = append_windowed(&mut lc, GROUP, 100, PENDING_MAX);

    // Appends in flight, then the leader dies: whatever was acknowledged must survive.
    for i in 0..PENDING_MAX {
        let req = ClientMessage::AppendRequest(AppendRequest {
            group: GROUP.to_owned(),
            bodies: vec![Bytes::from(format!("in-flight-{i}").into_bytes())],
        });
        lc.send(5000 + i as u64, &req);
    }
    cluster.children[leader].kill().expect("SIGKILL the leader");
    let killed = Instant::now();
    let _ = cluster.children[leader].wait();
    lc.stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("set a read timeout");
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        if let Ok(Some(frame)) = lc.decoder.decode(&mut lc.buf) {
            if let Ok(ClientMessage::AppendResponse(r)) = ClientMessage::decode(&frame, &lc.limits)
            {
                let i = frame.header.request_id - 5000;
                acked.push((
                    Bytes::from(format!("in-flight-{i}").into_bytes()),
                    r.entries[0].index,
                ));
            }
            continue;
        }
        match lc.stream.read(&mut chunk) {
            Ok(n) if n > 0 => lc.buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    let survivors: Vec<usize> = all.iter().copied().filter(|&n| n != leader).collect();
    let new_leader = find_leader(
        &cluster,
        &survivors,
        GROUP,
        Instant::now() + Duration::from_secs(30),
    );
    eprintln!(
        "leader n{leader} killed; n{new_leader} leads {:?} later; {} acked entries to check",
        killed.elapsed(),
        acked.len()
    );
    read_back(&cluster, GROUP, &acked, &survivors);

    // Kill the other follower: the leader alone cannot commit.
    let follower = survivors
        .iter()
        .copied()
        .find(|&n| n != new_leader)
        .expect("two survivors");
    cluster.children[follower]
        .kill()
        .expect("SIGKILL a follower");
    let _ = cluster.children[follower].wait();
    let mut nc = Conn::open(cluster.client_port(new_leader)).expect("connect to the new leader");
    for i in 0..PENDING_MAX + 4 {
        let req = ClientMessage::AppendRequest(AppendRequest {
            group: GROUP.to_owned(),
            bodies: vec![Bytes::from_static(b"no quorum")],
        });
        nc.send(9000 + i as u64, &req);
    }
    let mut codes = HashMap::new();
    for _ in 0..PENDING_MAX + 4 {
        match nc.recv().1 {
            ClientMessage::ErrorResponse(e) => *codes.entry(e.code).or_insert(0) += 1,
            other => panic!("an append committed without a quorum: {other:?}"),
        }
    }
    assert_eq!(
        codes.get(&ResponseCode::WaitQuorumAckTimeout),
        Some(&PENDING_MAX),
        "{codes:?}"
    );
    assert_eq!(
        codes.get(&ResponseCode::LeaderPendingFull),
        Some(&4),
        "{codes:?}"
    );
    drop(cluster);
}

/// Measurement, not a check of speed (run with `--ignored --nocapture`): batched appends
/// of 128-byte bodies, pipelined on one connection to the leader.
#[test]
#[ignore = "measurement; prints appends/s"]
fn measure_batched_appends() {
    let _servers = crate::common::serial::servers();
    const REQUESTS: usize = 2000;
    const BATCH: usize = 32;
    let cluster = start_cluster(
        "conf/dledger",
        "broker-n",
        "mappedFileSizeForEntryData=67108864\n",
    );
    let leader = wait_for_leader(&cluster, GROUP, Instant::now() + Duration::from_secs(60));
    let mut c = Conn::open(cluster.client_port(leader)).expect("connect to the leader");
    let window = 64;
    let started = Instant::now();
    let (mut sent, mut done) = (0, 0);
    while done < REQUESTS {
        while sent < REQUESTS && sent - done < window {
            let req = ClientMessage::AppendRequest(AppendRequest {
                group: GROUP.to_owned(),
                bodies: vec![Bytes::from_static(&[5u8; 128]); BATCH],
            });
            c.send(sent as u64, &req);
            sent += 1;
        }
        match c.recv().1 {
            ClientMessage::AppendResponse(r) => assert_eq!(r.entries.len(), BATCH),
            other => panic!("append failed: {other:?}"),
        }
        done += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{REQUESTS} requests x {BATCH} bodies of 128 B, {window} in flight: {:.0} requests/s, {:.0} entries/s",
        REQUESTS as f64 / secs,
        (REQUESTS * BATCH) as f64 / secs
    );
    drop(cluster);
}

/// A two-node group replicates, but a majority is both nodes: metadata says it tolerates
/// no failure.
#[test]
fn two_node_group_works_and_says_it_cannot_fail_over() {
    let _servers = crate::common::serial::servers();
    let cluster = start_nodes("conf/dledger", "broker-n", 2, &|_| {
        "mappedFileSizeForEntryData=16777216\n".to_owned()
    });
    let leader = find_leader(
        &cluster,
        &[0, 1],
        GROUP,
        Instant::now() + Duration::from_secs(60),
    );
    let m = metadata(cluster.client_port(leader), GROUP).expect("metadata from the leader");
    assert_eq!(m.failures_tolerated, 0, "two nodes cannot fail over");
    assert_eq!(m.peers.len(), 2);
    let mut c = Conn::open(cluster.client_port(leader)).expect("connect to the leader");
    let appended = append_all(&mut c, GROUP, 50);
    read_back(&cluster, GROUP, &appended, &[0, 1]);
    drop(cluster);
}

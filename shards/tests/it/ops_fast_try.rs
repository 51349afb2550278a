//! `dledger fast-try start|stop`, `dledger namesrv` and `dledger cluster-list` against real
//! processes: start a name server and three nodes, see one BID 0 and two followers (from
//! the nodes and from the name server), SIGKILL the leader and see a new BID 0 and the old
//! leader gone (never two BID 0 meanwhile), stop and find nothing left running.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::cluster::{TestCluster, server_binary};

fn dledger(args: &[&str]) -> Output {
    Command::new(server_binary())
        .args(args)
        .output()
        .expect("run the dledger binary")
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Stops the fast-try cluster even when an assertion fails mid-test.
struct StopOnDrop {
    root: PathBuf,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let root = self.root.to_string_lossy().to_string();
        let _ = dledger(&["fast-try", "stop", "--root", &root, "--wait-ms", "5000"]);
    }
}

/// (bid, addr) of every row `cluster-list --json` prints; GONE rows have no bid.
/// `source` is `["--peers", ADDRS]` or `["-n", NAMESRV]`.
fn rows(source: [&str; 2]) -> Vec<(Option<i64>, String)> {
    let o = dledger(&[
        "cluster-list",
        source[0],
        source[1],
        "--json",
        "--timeout-ms",
        "1000",
    ]);
    assert!(o.status.success(), "cluster-list failed: {}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let bid = field(l, "\"bid\":").and_then(|v| v.parse().ok());
            let addr = field(l, "\"addr\":\"").unwrap_or_default();
            (bid, addr)
        })
        .collect()
}

fn field(line: &str, key: &str) -> Option<String> {
    let rest = &line[line.find(key)? + key.len()..];
    let end = rest.find(['"', ',', '}'])?;
    Some(rest[..end].to_string())
}

fn pids(root: &Path) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for e in fs::read_dir(root.join("pids")).expect("the pid dir exists") {
        let p = e.expect("a dir entry").path();
        let name = p
            .file_stem()
            .expect("a pid file name")
            .to_string_lossy()
            .to_string();
        let pid = fs::read_to_string(&p)
            .expect("read a pid file")
            .trim()
            .parse()
            .expect("a pid");
        out.push((name, pid));
    }
    out
}

fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, r)| r.trim_start().chars().next())
            .is_some_and(|c| c != 'Z' && c != 'X')
    })
}

/// Polls `f` every 100 ms until it returns Some or `limit` passes.
fn within<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn fast_try_elects_fails_over_and_stops_cleanly() {
    let _servers = crate::common::serial::servers();
    // Configs with free ports and storage in a temp dir; the test cluster's own process
    // management is not used (fast-try starts the nodes).
    let cluster = TestCluster::three_nodes();
    let conf_dir = cluster.dir.join("fast-conf");
    let root = cluster.dir.join("fast-root");
    fs::create_dir_all(&conf_dir).expect("create the conf dir");
    let ns_port = crate::common::ports::free_port();
    let namesrv = format!("127.0.0.1:{ns_port}");
    for n in &cluster.nodes {
        let mut conf = fs::read_to_string(&n.config_path).expect("read a node config");
        conf.push_str(&format!("namesrvAddr={namesrv}\n"));
        fs::write(conf_dir.join(format!("broker-{}.conf", n.id)), conf)
            .expect("write a node config");
    }
    let (conf_s, root_s) = (
        conf_dir.to_string_lossy().to_string(),
        root.to_string_lossy().to_string(),
    );
    let peers = cluster.peers_arg();
    let direct = ["--peers", peers.as_str()];
    let via_ns = ["-n", namesrv.as_str()];
    let _stop = StopOnDrop { root: root.clone() };

    let o = dledger(&[
        "fast-try",
        "start",
        "--conf-dir",
        &conf_s,
        "--root",
        &root_s,
    ]);
    assert!(o.status.success(), "fast-try start: {}", text(&o));
    let started = pids(&root);
    assert_eq!(
        started.len(),
        4,
        "three nodes and the name server: {started:?}"
    );
    assert!(started.iter().all(|(_, p)| alive(*p)));

    // Starting again changes nothing.
    let o = dledger(&[
        "fast-try",
        "start",
        "--conf-dir",
        &conf_s,
        "--root",
        &root_s,
    ]);
    assert!(o.status.success(), "second start: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("already running"));
    assert_eq!(pids(&root), started);

    // One BID 0 and two followers (BID = id + 1), asking the nodes and the name server.
    let one_leader = |source| {
        within(Duration::from_secs(10), || {
            let r = rows(source);
            let leaders: Vec<_> = r.iter().filter(|(b, _)| *b == Some(0)).collect();
            let followers = r.iter().filter(|(b, _)| b.is_some_and(|b| b > 0)).count();
            (leaders.len() == 1 && followers == 2).then(|| leaders[0].1.clone())
        })
        .unwrap_or_else(|| panic!("no 1 leader + 2 followers: {:?}", rows(source)))
    };
    let leader_addr = one_leader(direct);
    assert_eq!(one_leader(via_ns), leader_addr);

    // SIGKILL the leader: a new BID 0 appears on another node.
    let leader = cluster
        .nodes
        .iter()
        .find(|n| n.client_addr.to_string() == leader_addr)
        .expect("the leader's address is a node's");
    let (_, leader_pid) = started
        .iter()
        .find(|(name, _)| *name == leader.id)
        .expect("the leader has a pid file");
    let killed = Command::new("kill")
        .args(["-9", &leader_pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let new_leader = within(Duration::from_secs(15), || {
        rows(direct)
            .into_iter()
            .find(|(b, a)| *b == Some(0) && *a != leader_addr)
            .map(|(_, a)| a)
    });
    assert!(
        new_leader.is_some(),
        "no new leader after killing {leader_addr}: {:?}",
        rows(direct)
    );
    // The name server shows the new leader and, once its registration expires, the old
    // one as gone (no bid). Meanwhile the old leader's last registration (an older term)
    // must never show as a second BID 0.
    let seen = within(Duration::from_secs(15), || {
        let r = rows(via_ns);
        let bid0: Vec<_> = r.iter().filter(|(b, _)| *b == Some(0)).collect();
        assert!(
            bid0.len() <= 1,
            "two BID 0 rows from the name server: {r:?}"
        );
        let new_ok = r
            .iter()
            .any(|(b, a)| *b == Some(0) && new_leader.as_ref() == Some(a));
        let old_gone = r.iter().any(|(b, a)| b.is_none() && *a == leader_addr);
        (new_ok && old_gone).then_some(())
    });
    assert!(seen.is_some(), "name server view: {:?}", rows(via_ns));

    // Stop: nothing of it keeps running, pid files gone.
    let o = dledger(&["fast-try", "stop", "--root", &root_s, "--wait-ms", "10000"]);
    assert!(o.status.success(), "fast-try stop: {}", text(&o));
    assert!(pids(&root).is_empty());
    let left: Vec<_> = started.iter().filter(|(_, p)| alive(*p)).collect();
    assert!(left.is_empty(), "still running after stop: {left:?}");
}

//! `TestCluster`: real `dledger server` processes on loopback for integration tests.
//!
//! Node configs are written from the example files in `conf/` with every port moved to a
//! free one, storage moved into a fresh temporary directory, the name server address
//! dropped (no name server runs), and a few settings that keep three nodes lean on a small
//! machine (unpinned shards, small preallocated segments). Each node's output goes to
//! `<dir>/<node>.log`. Nodes can be SIGKILLed and restarted; every process is killed when
//! the cluster is dropped, and the directory removed (kept, with its path printed, when
//! the test failed or `DLEDGER_KEEP_TEST_DIR` is set).

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dledger::config::{HostPort, parse_file_contents, parse_properties};
use dledger::raft::Role;
use dledger::wire::{ClientMessage, MetadataRequest, MetadataResponse};
use dledger_shards::client::{ClientError, ClientOptions, Connection, block_on};

/// Settings every test node gets unless a test overrides them. The disk ratios: test data
/// is scratch on a disk shared with other tenants (statvfs counts their files and the
/// reserved blocks), so writes are refused only when it is really full, not at DLedger's
/// production 90% (tests of the disk-full behaviour use their own small filesystem).
pub const TEST_DEFAULTS: &[(&str, &str)] = &[
    ("pinShards", "false"),
    ("shards", "1"),
    ("mappedFileSizeForEntryData", "8388608"),
    ("mappedFileSizeForEntryIndex", "1048576"),
    ("diskSpaceRatioToCheckExpired", "0.96"),
    ("diskSpaceRatioToForceClean", "0.97"),
    ("diskSpaceRatioToRefuseWrites", "0.98"),
];

/// Keys whose value names this node's storage; moved into the test directory.
const STORAGE_KEYS: &[&str] = &[
    "storePathRootDir",
    "storePathCommitLog",
    "storePathDLedgerCommitLog",
];

static CLUSTER_SEQ: AtomicU64 = AtomicU64::new(0);

/// The repository's `conf/` directory.
pub fn conf_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("conf")
}

#[derive(Debug)]
pub struct Node {
    /// `n0`, `n1`, …
    pub id: String,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    pub client_addr: HostPort,
    pub groups: Vec<String>,
    child: Option<Child>,
    starts: u32,
}

#[derive(Debug)]
pub struct TestCluster {
    pub dir: PathBuf,
    pub nodes: Vec<Node>,
    /// Taken at the first start, released after every node was killed (see
    /// [`super::serial`]).
    servers: Option<super::serial::Servers>,
}

impl TestCluster {
    /// The three RocketMQ example brokers (`conf/dledger/broker-n{0,1,2}.conf`): one group
    /// RaftNode00. Not started.
    pub fn three_nodes() -> TestCluster {
        let d = conf_dir().join("dledger");
        Self::from_confs(
            &[
                d.join("broker-n0.conf"),
                d.join("broker-n1.conf"),
                d.join("broker-n2.conf"),
            ],
            None,
            &[],
        )
    }

    /// 3 nodes x 8 groups (`conf/multigroup/node-n{0,1,2}.conf`). Not started.
    pub fn multigroup() -> TestCluster {
        let d = conf_dir().join("multigroup");
        Self::from_confs(
            &[
                d.join("node-n0.conf"),
                d.join("node-n1.conf"),
                d.join("node-n2.conf"),
            ],
            None,
            &[("shards", "2")],
        )
    }

    /// A two-node group: brokers n0 and n1 of `conf/dledger` with `dLegerPeers` cut to
    /// them. Not started.
    pub fn two_nodes() -> TestCluster {
        let d = conf_dir().join("dledger");
        Self::from_confs(
            &[d.join("broker-n0.conf"), d.join("broker-n1.conf")],
            Some(&["n0", "n1"]),
            &[],
        )
    }

    /// Writes one config per source file into a new temporary directory. `keep_peers`
    /// drops every other peer from the `dLegerPeers` lists; `overrides` set (or replace)
    /// keys after [`TEST_DEFAULTS`]. Each written config is validated with the real
    /// config parser, so a bad rewrite fails here with the parser's message.
    pub fn from_confs(
        sources: &[PathBuf],
        keep_peers: Option<&[&str]>,
        overrides: &[(&str, &str)],
    ) -> TestCluster {
        let dir = std::env::temp_dir().join(format!(
            "dledger-test-{}-{}",
            std::process::id(),
            CLUSTER_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("clear an old test dir");
        }
        fs::create_dir_all(&dir).expect("create the test dir");
        let mut ports = PortMap::default();
        let mut nodes = Vec::new();
        for src in sources {
            let text = fs::read_to_string(src)
                .unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
            let props = parse_properties(&text)
                .unwrap_or_else(|e| panic!("{}:{}: {}", src.display(), e.line, e.reason));
            let self_id = props
                .iter()
                .find(|p| p.key == "dLegerSelfId")
                .map(|p| p.value.clone())
                .unwrap_or_else(|| panic!("{}: no dLegerSelfId", src.display()));
            let node_dir = dir.join(&self_id);
            let mut out: Vec<(String, String)> = Vec::new();
            for p in props {
                let value = match p.key.as_str() {
                    "namesrvAddr" => continue,
                    "listenPort" | "metricsPort" => ports.map_port_text(&p.value),
                    k if k == "dLegerPeers"
                        || (k.starts_with("group.") && k.ends_with(".dLegerPeers")) =>
                    {
                        ports.map_peers(&p.value, keep_peers)
                    }
                    k if STORAGE_KEYS.contains(&k) => {
                        let leaf = if k == "storePathCommitLog" {
                            "commitlog"
                        } else {
                            ""
                        };
                        node_dir
                            .join(leaf)
                            .to_string_lossy()
                            .trim_end_matches('/')
                            .to_string()
                    }
                    _ => p.value,
                };
                out.push((p.key, value));
            }
            for (k, v) in TEST_DEFAULTS.iter().chain(overrides) {
                match out.iter_mut().find(|(key, _)| key == k) {
                    Some(slot) => slot.1 = v.to_string(),
                    None => out.push((k.to_string(), v.to_string())),
                }
            }
            let body: String = out.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            let config_path = dir.join(format!("{self_id}.conf"));
            fs::write(&config_path, &body).expect("write a node config");
            let loaded = parse_file_contents(&config_path.to_string_lossy(), &body)
                .unwrap_or_else(|e| panic!("the rewritten config does not validate: {e}\n{body}"));
            let cfg = loaded.config;
            nodes.push(Node {
                id: self_id.clone(),
                config_path,
                log_path: dir.join(format!("{self_id}.log")),
                client_addr: HostPort {
                    host: "127.0.0.1".into(),
                    port: cfg.client_listen.port,
                },
                groups: cfg.groups.iter().map(|g| g.name.clone()).collect(),
                child: None,
                starts: 0,
            });
        }
        TestCluster {
            dir,
            nodes,
            servers: None,
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The groups node 0 hosts.
    pub fn groups(&self) -> Vec<String> {
        self.nodes[0].groups.clone()
    }

    /// Every node's client address.
    pub fn client_addrs(&self) -> Vec<HostPort> {
        self.nodes.iter().map(|n| n.client_addr.clone()).collect()
    }

    /// The client addresses as one `--peers` argument.
    pub fn peers_arg(&self) -> String {
        let a: Vec<String> = self
            .client_addrs()
            .iter()
            .map(ToString::to_string)
            .collect();
        a.join(";")
    }

    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    /// Starts node `i` (`dledger server -c <config>`), appending to its log. The first
    /// start waits for the servers lock.
    pub fn start(&mut self, i: usize) {
        if self.servers.is_none() {
            self.servers = Some(super::serial::servers());
        }
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "node {} is already running", node.id);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .expect("open the node log");
        let err = log.try_clone().expect("clone the log handle");
        node.starts += 1;
        let child = Command::new(server_binary())
            .arg("server")
            .arg("-c")
            .arg(&node.config_path)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("starting node {}: {e}", node.id));
        node.child = Some(child);
    }

    /// SIGKILLs node `i` and waits for it to be gone (no chance to flush anything).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGKILL (if running) and start again with the same config and storage.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.start(i);
    }

    /// Whether node `i` is running; a node that exited on its own fails the test with
    /// the end of its log.
    pub fn assert_running(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let Some(c) = node.child.as_mut() else {
            panic!("node {} is not started", node.id)
        };
        if let Ok(Some(status)) = c.try_wait() {
            node.child = None;
            panic!(
                "node {} exited on its own ({status}); its log ends with:\n{}",
                self.nodes[i].id,
                self.log_tail(i, 4096)
            );
        }
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// The last `bytes` of node `i`'s log.
    pub fn log_tail(&self, i: usize, bytes: u64) -> String {
        let Ok(mut f) = fs::File::open(&self.nodes[i].log_path) else {
            return "(no log)".into();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(bytes)));
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        s
    }

    /// What node `i` says about `group` (one request, no retry).
    pub fn metadata_of(&self, i: usize, group: &str) -> Result<MetadataResponse, ClientError> {
        node_metadata(&self.nodes[i].client_addr, group)
    }

    /// Waits until a running node says it leads `group` and the others that answer agree;
    /// returns the leader's index. Fails the test (with logs) after `timeout`.
    pub fn wait_for_leader(&mut self, group: &str, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            let mut leader = None;
            let mut seen = Vec::new();
            for i in 0..self.nodes.len() {
                if !self.is_running(i) {
                    continue;
                }
                self.assert_running(i);
                match self.metadata_of(i, group) {
                    Ok(m) => {
                        if m.role == Role::Leader {
                            leader = Some((i, m.term));
                        }
                        seen.push(m);
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            if let Some((i, term)) = leader {
                let agree = seen.iter().all(|m| {
                    m.term < term
                        || m.leader.as_ref().map(|l| l.id) == Some(seen_id(&self.nodes[i].id))
                });
                if agree {
                    return i;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no leader of {group} within {timeout:?} (last error: {last}); logs:\n{}",
            self.all_log_tails(2048)
        );
    }

    /// The ends of every node's log, for failure messages.
    pub fn all_log_tails(&self, bytes: u64) -> String {
        (0..self.nodes.len())
            .map(|i| format!("--- {} ---\n{}", self.nodes[i].id, self.log_tail(i, bytes)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        if std::thread::panicking() || std::env::var_os("DLEDGER_KEEP_TEST_DIR").is_some() {
            eprintln!("test cluster files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The binary run as `dledger server`: this build's, or `DLEDGER_SERVER_BIN` when set
/// (to test the client and CLI of this build against another build's server).
pub fn server_binary() -> PathBuf {
    std::env::var_os("DLEDGER_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_dledger")))
}

/// The numeric node id of a peer id (`n2` → 2).
fn seen_id(id: &str) -> u32 {
    id.trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .expect("peer ids are letters then digits")
}

/// One metadata request to one node on a fresh connection (its own executor).
pub fn node_metadata(addr: &HostPort, group: &str) -> Result<MetadataResponse, ClientError> {
    let opts = ClientOptions {
        connect_timeout_ms: 1_000,
        request_timeout_ms: 2_000,
        ..ClientOptions::default()
    };
    let addr = addr.clone();
    let group = group.to_string();
    block_on("metadata-probe", || async move {
        let conn = Connection::connect(&addr, &opts).await?;
        let frame = conn
            .call(
                &MetadataRequest { group },
                Duration::from_millis(opts.request_timeout_ms),
            )
            .await?;
        match ClientMessage::decode(&frame, &opts.limits) {
            Ok(ClientMessage::MetadataResponse(m)) => Ok(m),
            Ok(ClientMessage::ErrorResponse(e)) => {
                Err(ClientError::local(e.code, Some(&addr), e.message))
            }
            Ok(_) => Err(ClientError::invalid_argument("wrong answer kind")),
            Err(e) => Err(ClientError::invalid_argument(e.to_string())),
        }
    })
    .map_err(ClientError::invalid_argument)?
}

/// Free loopback ports, one per distinct port of the source configs; the listeners are
/// held until the cluster is built so no two config ports collide.
#[derive(Default)]
struct PortMap {
    map: HashMap<u16, u16>,
    held: Vec<TcpListener>,
}

impl PortMap {
    fn map_port(&mut self, port: u16) -> u16 {
        if let Some(p) = self.map.get(&port) {
            return *p;
        }
        let l = super::ports::reserve_port();
        let p = l.local_addr().expect("bound").port();
        self.held.push(l);
        self.map.insert(port, p);
        p
    }

    fn map_port_text(&mut self, text: &str) -> String {
        let port: u16 = text.trim().parse().expect("a port number");
        self.map_port(port).to_string()
    }

    /// `n0-host:port;n1-host:port` with ports moved and, if asked, only some peers kept.
    fn map_peers(&mut self, text: &str, keep: Option<&[&str]>) -> String {
        let mut out = Vec::new();
        for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (id, addr) = item.split_once('-').expect("id-host:port");
            if keep.is_some_and(|k| !k.contains(&id)) {
                continue;
            }
            let (host, port) = addr.rsplit_once(':').expect("host:port");
            out.push(format!("{id}-{host}:{}", self.map_port_text(port)));
        }
        out.join(";")
    }
}

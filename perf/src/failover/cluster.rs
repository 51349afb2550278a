//! A three-node cluster of real `dledger server` processes on loopback, owned by the
//! harness: configs with free ports in a fresh temporary directory, one log file per
//! node, SIGKILL / SIGTERM / restart, and polling of each node's state with the wire
//! ClusterView request. Every process is killed and the directory removed on drop (the
//! directory is kept when `keep_dir` is set, e.g. after a failed check).

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dledger::config::{HostPort, parse_file_contents};
use dledger::raft::{Role, Term};
use dledger::wire::GroupRow;
use dledger_shards::cluster_view::cluster_view;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The one group the harness drives.
pub const GROUP: &str = "RaftNode00";
/// Nodes in the cluster: the smallest that can fail over.
pub const NODES: usize = 3;
/// Bound on one ClusterView poll of one node.
const POLL_TIMEOUT_MS: u64 = 500;

/// Settings every harness node gets besides the required keys. They keep three nodes lean
/// on a small shared machine and leave every Raft timing at its default: unpinned single
/// shards, and 64 MiB segments instead of DLedger's 1 GiB (whose background zero-fill would
/// compete with the appends' flushes for the first seconds).
const NODE_SETTINGS: &[(&str, &str)] = &[
    ("pinShards", "false"),
    ("shards", "1"),
    ("mappedFileSizeForEntryData", "67108864"),
    ("mappedFileSizeForEntryIndex", "4194304"),
];

/// How the harness runs a node: `program args… -c <config>`.
#[derive(Debug, Clone)]
pub struct ServerCommand {
    pub program: PathBuf,
    /// Arguments before `-c <config>` (e.g. `["server"]`).
    pub args: Vec<String>,
}

#[derive(Debug)]
struct Node {
    name: String,
    config_path: PathBuf,
    log_path: PathBuf,
    client_addr: HostPort,
    child: Option<Child>,
}

/// The cluster. See the module docs.
#[derive(Debug)]
pub struct LocalCluster {
    pub dir: PathBuf,
    server: ServerCommand,
    nodes: Vec<Node>,
    /// Keep the directory on drop.
    pub keep_dir: bool,
}

/// What one node said about [`GROUP`].
#[derive(Debug, Clone)]
pub struct NodeState {
    pub node: usize,
    pub row: GroupRow,
}

impl LocalCluster {
    /// Writes the configs (validated with the real config parser) into a new directory
    /// under `base`. `extra` settings are added after the harness's own (and win).
    pub fn create(
        base: &Path,
        server: ServerCommand,
        extra: &[(String, String)],
    ) -> Result<LocalCluster, String> {
        let dir = base.join(format!("dledger-failover-{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| format!("clearing {}: {e}", dir.display()))?;
        }
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        // Hold every listener until all configs are written so no two ports collide.
        let mut held = Vec::new();
        let mut free_port = || -> Result<u16, String> {
            let l = dledger_shards::net::listen::bind_port_outside_ephemeral()
                .map_err(|e| format!("a free port: {e}"))?;
            let p = l
                .local_addr()
                .map_err(|e| format!("a free port: {e}"))?
                .port();
            held.push(l);
            Ok(p)
        };
        let mut client_ports = Vec::new();
        let mut peers = Vec::new();
        for i in 0..NODES {
            client_ports.push(free_port()?);
            peers.push(format!("n{i}-127.0.0.1:{}", free_port()?));
        }
        let peers = peers.join(";");
        let mut nodes = Vec::new();
        for (i, &client_port) in client_ports.iter().enumerate() {
            let name = format!("n{i}");
            let store = dir.join(&name);
            let mut settings: Vec<(String, String)> = vec![
                ("brokerClusterName".into(), "FailoverCluster".into()),
                ("brokerName".into(), GROUP.into()),
                ("listenPort".into(), client_port.to_string()),
                ("storePathRootDir".into(), store.to_string_lossy().into()),
                (
                    "storePathCommitLog".into(),
                    store.join("commitlog").to_string_lossy().into(),
                ),
                ("enableDLegerCommitLog".into(), "true".into()),
                ("dLegerGroup".into(), GROUP.into()),
                ("dLegerPeers".into(), peers.clone()),
                ("dLegerSelfId".into(), name.clone()),
            ];
            for (k, v) in NODE_SETTINGS {
                settings.push(((*k).into(), (*v).into()));
            }
            for (k, v) in extra {
                settings.retain(|(key, _)| key != k);
                settings.push((k.clone(), v.clone()));
            }
            let body: String = settings.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            let config_path = dir.join(format!("{name}.conf"));
            fs::write(&config_path, &body)
                .map_err(|e| format!("writing {}: {e}", config_path.display()))?;
            parse_file_contents(&config_path.to_string_lossy(), &body)
                .map_err(|e| format!("the generated config does not validate: {e}"))?;
            nodes.push(Node {
                log_path: dir.join(format!("{name}.log")),
                name,
                config_path,
                client_addr: HostPort {
                    host: "127.0.0.1".into(),
                    port: client_port,
                },
                child: None,
            });
        }
        drop(held);
        Ok(LocalCluster {
            dir,
            server,
            nodes,
            keep_dir: false,
        })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    pub fn client_addrs(&self) -> Vec<HostPort> {
        self.nodes.iter().map(|n| n.client_addr.clone()).collect()
    }

    pub fn client_addr(&self, i: usize) -> &HostPort {
        &self.nodes[i].client_addr
    }

    /// Starts node `i`, its output appended to its log file.
    pub fn start(&mut self, i: usize) -> Result<(), String> {
        let node = &mut self.nodes[i];
        if node.child.is_some() {
            return Err(format!("node {} is already running", node.name));
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .map_err(|e| format!("opening {}: {e}", node.log_path.display()))?;
        let err = log
            .try_clone()
            .map_err(|e| format!("cloning the log handle: {e}"))?;
        let child = Command::new(&self.server.program)
            .args(&self.server.args)
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
            .map_err(|e| {
                format!(
                    "starting node {} ({}): {e}",
                    node.name,
                    self.server.program.display()
                )
            })?;
        node.child = Some(child);
        Ok(())
    }

    pub fn start_all(&mut self) -> Result<(), String> {
        (0..self.nodes.len()).try_for_each(|i| self.start(i))
    }

    /// Sends `signal` to node `i` and returns the instant just before it was sent.
    pub fn signal(&mut self, i: usize, signal: Signal) -> Result<Instant, String> {
        let node = &self.nodes[i];
        let child = node
            .child
            .as_ref()
            .ok_or_else(|| format!("node {} is not running", node.name))?;
        let pid = Pid::from_raw(
            i32::try_from(child.id()).map_err(|_| format!("pid {} out of range", child.id()))?,
        );
        let at = Instant::now();
        kill(pid, signal).map_err(|e| format!("{signal} to node {}: {e}", node.name))?;
        Ok(at)
    }

    /// Waits (up to `timeout`) for node `i` to exit after a signal; SIGKILL after that.
    pub fn reap(&mut self, i: usize, timeout: Duration) -> Result<(), String> {
        let Some(mut child) = self.nodes[i].child.take() else {
            return Ok(());
        };
        let until = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "node {} did not exit within {timeout:?}",
                        self.nodes[i].name
                    ));
                }
                Err(e) => return Err(format!("waiting for node {}: {e}", self.nodes[i].name)),
            }
        }
    }

    /// Fails with the end of its log when a started node has exited on its own.
    pub fn check_running(&mut self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            let exited = match self.nodes[i].child.as_mut() {
                Some(c) => c.try_wait().ok().flatten(),
                None => None,
            };
            if let Some(status) = exited {
                self.nodes[i].child = None;
                return Err(format!(
                    "node {} exited on its own ({status}); its log ends with:\n{}",
                    self.nodes[i].name,
                    self.log_tail(i, 4096)
                ));
            }
        }
        Ok(())
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// What each running node that answers says about [`GROUP`].
    pub fn states(&self) -> Vec<NodeState> {
        let timeout = Duration::from_millis(POLL_TIMEOUT_MS);
        (0..self.nodes.len())
            .filter(|&i| self.is_running(i))
            .filter_map(|i| {
                let view = cluster_view(&self.nodes[i].client_addr.to_string(), timeout).ok()?;
                let row = view.rows.into_iter().find(|r| r.group == GROUP)?;
                Some(NodeState { node: i, row })
            })
            .collect()
    }

    /// The node that leads [`GROUP`] in the newest term any node reports, with the term,
    /// once the other answering nodes of that term agree.
    pub fn leader(&self) -> Option<(usize, Term)> {
        let states = self.states();
        let newest = states.iter().map(|s| s.row.term).max()?;
        let leader = states
            .iter()
            .find(|s| s.row.role == Role::Leader && s.row.term == newest)?;
        let id = u32::try_from(leader.node).ok()?;
        let agreed = states
            .iter()
            .filter(|s| s.row.term == newest && s.node != leader.node)
            .all(|s| s.row.leader == Some(id));
        agreed.then_some((leader.node, newest))
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

    pub fn all_log_tails(&self, bytes: u64) -> String {
        (0..self.nodes.len())
            .map(|i| {
                format!(
                    "--- {} ---\n{}",
                    self.nodes[i].name,
                    self.log_tail(i, bytes)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if self.keep_dir {
            eprintln!("cluster files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

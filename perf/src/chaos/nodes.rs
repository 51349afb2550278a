//! The cluster's processes: config files in a temporary directory, start, signal,
//! restart, and a sure kill of everything when the run ends (or fails).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a SIGTERMed node gets to hand over and exit before SIGKILL.
pub const STOP_GRACE_MS: u64 = 8_000;

/// How to run one node: `program prefix… server -c CONFIG extra…`.
#[derive(Clone, Debug)]
pub struct Launch {
    pub program: PathBuf,
    /// Arguments before `server` (e.g. `netns exec NS BINARY` with program `ip`).
    pub prefix: Vec<String>,
    /// Arguments after the config (e.g. `--planted-bug NAME`).
    pub extra: Vec<String>,
}

/// One node of the cluster.
#[derive(Debug)]
pub struct Node {
    /// `n0`, `n1`, …
    pub name: String,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    /// Where clients reach it.
    pub client_addr: SocketAddr,
    launch: Launch,
    child: Option<Child>,
    paused: bool,
    pub starts: u32,
}

/// Every node's settings beyond those the harness writes itself: unpinned single-shard
/// nodes and small preallocated segments, so several share a small machine; and disk
/// ratios near full, because the disk is shared with whatever else runs and a chaos run
/// tests faults, not retention (which would also remove entries the checker reads).
pub const NODE_DEFAULTS: &[(&str, &str)] = &[
    ("pinShards", "false"),
    ("shards", "1"),
    ("mappedFileSizeForEntryData", "8388608"),
    ("mappedFileSizeForEntryIndex", "1048576"),
    ("diskSpaceRatioToCheckExpired", "0.96"),
    ("diskSpaceRatioToForceClean", "0.97"),
    ("diskSpaceRatioToRefuseWrites", "0.98"),
];

/// The config of node `self_index` of `peers` (name, peer address as this node dials
/// it, or its own listen address for itself), serving `groups`.
pub fn node_config(
    self_index: usize,
    peers: &[(String, SocketAddr)],
    client_port: u16,
    groups: &[String],
    store_dir: &Path,
) -> String {
    let peer_list: Vec<String> = peers.iter().map(|(n, a)| format!("{n}-{a}")).collect();
    let mut lines = vec![
        "brokerClusterName=ChaosCluster".to_string(),
        format!("listenPort={client_port}"),
        format!("storePathRootDir={}", store_dir.display()),
        "enableDLegerCommitLog=true".to_string(),
        format!("dLegerGroups={}", groups.join(",")),
        format!("dLegerPeers={}", peer_list.join(";")),
        format!("dLegerSelfId={}", peers[self_index].0),
    ];
    lines.extend(NODE_DEFAULTS.iter().map(|(k, v)| format!("{k}={v}")));
    lines.join("\n") + "\n"
}

impl Node {
    /// A node whose config is written to `dir/<name>.conf` (validated by the real parser).
    pub fn new(
        dir: &Path,
        name: &str,
        config: &str,
        client_addr: SocketAddr,
        launch: Launch,
    ) -> Result<Node, String> {
        let config_path = dir.join(format!("{name}.conf"));
        fs::write(&config_path, config)
            .map_err(|e| format!("writing {}: {e}", config_path.display()))?;
        dledger::config::parse_file_contents(&config_path.display().to_string(), config)
            .map_err(|e| format!("the generated config does not load: {e}"))?;
        Ok(Node {
            name: name.to_string(),
            log_path: dir.join(format!("{name}.log")),
            config_path,
            client_addr,
            launch,
            child: None,
            paused: false,
            starts: 0,
        })
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Starts the node (its output appended to its log).
    pub fn start(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Ok(());
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| format!("opening {}: {e}", self.log_path.display()))?;
        let err = log
            .try_clone()
            .map_err(|e| format!("{}: {e}", self.log_path.display()))?;
        let child = Command::new(&self.launch.program)
            .args(&self.launch.prefix)
            .arg("server")
            .arg("-c")
            .arg(&self.config_path)
            .args(&self.launch.extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.name))?;
        self.child = Some(child);
        self.paused = false;
        self.starts += 1;
        Ok(())
    }

    fn signal(&self, sig: Signal) {
        if let Some(c) = &self.child {
            // The pid is our unreaped child: it cannot have been reused.
            let _ = kill(Pid::from_raw(c.id() as i32), sig);
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.paused = false;
    }

    /// SIGSTOP.
    pub fn pause(&mut self) {
        if self.child.is_some() && !self.paused {
            self.signal(Signal::SIGSTOP);
            self.paused = true;
        }
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        if self.paused {
            self.signal(Signal::SIGCONT);
            self.paused = false;
        }
    }

    /// SIGTERM (the node hands its leaderships over and exits), SIGKILL after `grace`.
    /// Returns whether it exited by itself.
    pub fn stop(&mut self, grace: Duration) -> bool {
        self.resume();
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(_)) = c.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// Whether a started node has exited on its own (it crashed): then the exit status.
    pub fn exited(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status.to_string())
            }
            _ => None,
        }
    }

    /// The last `lines` lines of the node's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

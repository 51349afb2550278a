//! The harnesses' clusters of real server processes: node configs ([`config`]), free
//! loopback ports ([`ports`]), the processes themselves ([`node`]), which server binary
//! to run ([`binary`]), who leads ([`leaders`]) and the run directory ([`RunDir`]).
//! `bench`, `chaos` and `failover` start and attack their clusters with these; each keeps
//! only what is its own (bench its baselines and group layout, chaos its fault proxy and
//! network namespaces, failover its one RocketMQ-style group).
//!
//! A typical loopback cluster:
//!
//! ```text
//! let dir = RunDir::fresh(temp_dir().join("dledger-x-PID"))?;
//! let launch = Launch::own_server("info")?;
//! let ports = LoopbackPorts::reserve(3)?;
//! let mut c = Cluster::on_loopback(dir.path(), ports, &launch, "x", |i, ports| settings)?;
//! c.start_all()?;                     // n0.conf … in dir, output in n0.log …
//! c.node_mut(1).kill();               // SIGKILL; pause/resume/stop(grace)/start too
//! c.check_running()?;                 // a node that died on its own fails with its log
//! c.stop_all(grace);                  // SIGTERM, SIGKILL after the grace
//! drop(c); drop(dir);                 // no process left, directory removed
//! ```

pub mod binary;
pub mod config;
pub mod leaders;
pub mod node;
pub mod ports;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use dledger::config::HostPort;
use nix::sys::signal::Signal;

use crate::error::{PerfError, PerfResult};
pub use config::{Groups, NodeIdentity, Settings};
pub use node::{Launch, Node};
pub use ports::LoopbackPorts;

/// Bytes of a node's log shown when it exited on its own.
const CRASH_LOG_BYTES: u64 = 4096;

/// The nodes of one cluster, `n0`, `n1`, … Dropping it kills every node.
#[derive(Debug)]
pub struct Cluster {
    nodes: Vec<Node>,
}

impl Cluster {
    /// A cluster of nodes built by the caller (e.g. in network namespaces).
    pub fn new(nodes: Vec<Node>) -> Cluster {
        Cluster { nodes }
    }

    /// `nodes` nodes on loopback with the ports of `ports` (released once every config
    /// is written): node `i`'s config is `settings(i, &ports)`, written to
    /// `dir/n<i>.conf` (see [`Settings::write_validated`]; `comment` heads it). Not
    /// started.
    pub fn on_loopback(
        dir: &Path,
        mut ports: LoopbackPorts,
        launch: &Launch,
        comment: &str,
        settings: impl Fn(usize, &LoopbackPorts) -> Settings,
    ) -> PerfResult<Cluster> {
        let mut nodes = Vec::with_capacity(ports.client.len());
        for i in 0..ports.client.len() {
            let name = format!("n{i}");
            let config = settings(i, &ports).write_validated(dir, &name, comment)?;
            let client = HostPort {
                host: "127.0.0.1".into(),
                port: ports.client[i],
            };
            nodes.push(Node::new(dir, &name, config, client, launch.clone()));
        }
        ports.release();
        Ok(Cluster { nodes })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    pub fn node_mut(&mut self, i: usize) -> &mut Node {
        &mut self.nodes[i]
    }

    pub fn client_addrs(&self) -> Vec<HostPort> {
        self.nodes.iter().map(|n| n.client_addr.clone()).collect()
    }

    /// The running nodes' process ids, in node order.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(Node::pid).collect()
    }

    pub fn start_all(&mut self) -> PerfResult<()> {
        self.nodes.iter_mut().try_for_each(Node::start)
    }

    /// Nodes that have exited on their own since the last look, with their status.
    pub fn take_exited(&mut self) -> Vec<(usize, ExitStatus)> {
        self.nodes
            .iter_mut()
            .enumerate()
            .filter_map(|(i, n)| Some((i, n.exited()?)))
            .collect()
    }

    /// Fails, with the end of its log, when a started node has exited on its own.
    pub fn check_running(&mut self) -> PerfResult<()> {
        match self.take_exited().first() {
            None => Ok(()),
            Some((i, status)) => Err(PerfError::Cluster(format!(
                "node {} exited on its own ({status}); its log ends with:\n{}",
                self.nodes[*i].name,
                self.nodes[*i].log_tail(CRASH_LOG_BYTES)
            ))),
        }
    }

    /// The last `bytes` of every node's log, for error messages.
    pub fn log_tails(&self, bytes: u64) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {} ---\n{}", n.name, n.log_tail(bytes)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops every node at once: SIGTERM to all (paused ones resumed first), SIGKILL to
    /// those still running after `grace`.
    pub fn stop_all(&mut self, grace: Duration) {
        for n in &mut self.nodes {
            n.resume();
            if n.is_running() {
                let _ = n.signal(Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        for n in &mut self.nodes {
            let _ = n.reap(deadline.saturating_duration_since(Instant::now()));
        }
    }
}

/// A run's directory (configs, logs, storage): made fresh, removed when dropped unless
/// it is to be kept. Drop it after the nodes that use it.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    keep: bool,
}

impl RunDir {
    /// Creates `path`, first removing what an earlier run with the same name left.
    pub fn fresh(path: PathBuf) -> PerfResult<RunDir> {
        if path.exists() {
            fs::remove_dir_all(&path).map_err(|e| PerfError::io("clearing", &path, e))?;
        }
        fs::create_dir_all(&path).map_err(|e| PerfError::io("creating", &path, e))?;
        Ok(RunDir { path, keep: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keep (or, with `false`, remove) the directory when this is dropped.
    pub fn keep(&mut self, keep: bool) {
        self.keep = keep;
    }

    pub fn is_kept(&self) -> bool {
        self.keep
    }

    /// Removes the directory now (unless it is kept), reporting a failure.
    pub fn remove(mut self) -> PerfResult<()> {
        if self.keep {
            return Ok(());
        }
        self.keep = true;
        fs::remove_dir_all(&self.path).map_err(|e| PerfError::io("removing", &self.path, e))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

//! The cluster under test: three local `dledger server -c FILE` processes started for the
//! run (configs generated into a temporary directory, removed afterwards; see
//! [`crate::cluster`]), or an existing cluster reached through its nodes' client
//! addresses or a name server. The server binary is found by
//! [`crate::cluster::binary::server_binary`].

use std::path::Path;
use std::time::Duration;

use dledger::config::HostPort;
use dledger::wire::ClusterViewResponse;
use dledger_shards::cli::cluster_list::from_namesrv;
use dledger_shards::client::parse_peers;
use dledger_shards::cluster_view::cluster_view;

use crate::cluster::config::{LEAN_NODE, SCRATCH_DISK_RATIOS};
use crate::cluster::{Cluster, Groups, Launch, LoopbackPorts, NodeIdentity, RunDir, Settings};
use crate::error::{PerfError, PerfResult};

/// Nodes of a local cluster (the issue asks for three).
pub const LOCAL_NODES: usize = 3;
/// Bound of one cluster-view exchange while polling.
const VIEW_TIMEOUT_MS: u64 = 2_000;
/// SIGTERM grace before SIGKILL when stopping a node.
const STOP_GRACE_MS: u64 = 5_000;
/// Data segments of all groups of one node together aim at this size (each segment is
/// preallocated and zero-filled, so many groups need small ones), within the bounds below.
const SEGMENT_BUDGET_BYTES: u64 = 256 << 20;
const SEGMENT_MIN_BYTES: u64 = 1 << 20;
const SEGMENT_MAX_BYTES: u64 = 64 << 20;
/// Smallest `maxBodyBytes` the bench sets (the server's own floor is lower).
const BODY_BYTES_LIMIT_MIN: u64 = 64 << 10;
/// Room for a record's header in a segment.
const RECORD_HEADER_ALLOWANCE_BYTES: u64 = 4096;
/// Nodes log warnings and errors only (unless RUST_LOG says otherwise): the bench
/// measures, and log lines cost.
const NODE_LOG_FILTER: &str = "warn";

/// Durability mode of a local cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    Sync,
    Async,
}

impl Flush {
    pub fn parse(text: &str) -> Option<Flush> {
        match text {
            "sync" => Some(Flush::Sync),
            "async" => Some(Flush::Async),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Flush::Sync => "sync",
            Flush::Async => "async",
        }
    }

    fn config_value(self) -> &'static str {
        match self {
            Flush::Sync => "SYNC_FLUSH",
            Flush::Async => "ASYNC_FLUSH",
        }
    }
}

/// What a local cluster is made of.
#[derive(Debug, Clone)]
pub struct LocalSpec {
    pub groups: usize,
    pub flush: Flush,
    /// `shards` of every node.
    pub shards: usize,
    /// Largest body the load sends.
    pub body_bytes: usize,
}

impl LocalSpec {
    /// Data segment size: the per-node budget shared by the groups, whole MiB, at least
    /// two records of the largest body.
    pub fn data_segment_bytes(&self) -> u64 {
        let share = (SEGMENT_BUDGET_BYTES / self.groups.max(1) as u64)
            .clamp(SEGMENT_MIN_BYTES, SEGMENT_MAX_BYTES);
        let floor = 2 * (self.body_limit_bytes() + RECORD_HEADER_ALLOWANCE_BYTES);
        round_up(share.max(floor), SEGMENT_MIN_BYTES)
    }

    /// `maxBodyBytes` of the nodes.
    pub fn body_limit_bytes(&self) -> u64 {
        round_up(self.body_bytes as u64, 4096).max(BODY_BYTES_LIMIT_MIN)
    }

    /// The group names, `BenchG0000`, `BenchG0001`, …
    pub fn group_names(&self) -> Vec<String> {
        (0..self.groups).map(|g| format!("BenchG{g:04}")).collect()
    }

    /// The preferred leader of the `g`th group: round-robin over the nodes, so that each
    /// leads a third of the groups (one group: node 0).
    pub fn preferred_leader(g: usize) -> usize {
        g % LOCAL_NODES
    }

    /// The config of node `i`: every group on all three nodes, preferred leaders
    /// round-robin.
    fn settings(&self, i: usize, ports: &LoopbackPorts, dir: &Path) -> Settings {
        let names = self.group_names();
        let name = format!("n{i}");
        let store = dir.join(&name);
        let peers = ports.direct_peers();
        let mut s = Settings::required(&NodeIdentity {
            cluster_name: "DledgerBench",
            self_id: &name,
            client_port: ports.client[i],
            store_dir: &store,
            groups: Groups::List(&names),
            peers: &peers,
        });
        let seg = self.data_segment_bytes();
        s.set_all(LEAN_NODE.iter().copied())
            .set_all(SCRATCH_DISK_RATIOS.iter().copied())
            .set("flushDiskType", self.flush.config_value())
            .set("shards", self.shards)
            .set("mappedFileSizeForEntryData", seg)
            .set(
                "mappedFileSizeForEntryIndex",
                round_up(seg / 16, 4096).max(64 << 10),
            )
            .set("maxBodyBytes", self.body_limit_bytes());
        for (g, name) in names.iter().enumerate() {
            s.set(
                &format!("group.{name}.preferredLeaderId"),
                format!("n{}", Self::preferred_leader(g)),
            );
        }
        s
    }
}

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

/// Three running server processes and their directory.
#[derive(Debug)]
pub struct LocalCluster {
    pub spec: LocalSpec,
    /// Declared before the directory: the nodes are gone before it is removed.
    nodes: Cluster,
    dir: RunDir,
}

impl LocalCluster {
    /// Writes the configs into `dir` (made fresh) and starts the nodes. Returns when
    /// they run (not yet when they have leaders).
    pub fn start(spec: LocalSpec, dir: &Path, bin: &Path, keep_dir: bool) -> PerfResult<Self> {
        let mut dir = RunDir::fresh(dir.to_owned())?;
        dir.keep(keep_dir);
        let launch = Launch::server(bin.to_owned(), NODE_LOG_FILTER);
        let ports = LoopbackPorts::reserve(LOCAL_NODES)?;
        let mut nodes = Cluster::on_loopback(
            dir.path(),
            ports,
            &launch,
            "generated by dledger-perf bench",
            |i, ports| spec.settings(i, ports, dir.path()),
        )?;
        nodes.start_all()?;
        Ok(LocalCluster { spec, nodes, dir })
    }

    pub fn client_addrs(&self) -> Vec<HostPort> {
        self.nodes.client_addrs()
    }

    /// The server processes' pids, in node order.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.pids()
    }

    /// Waits until every group has its preferred leader, agreed by all nodes (see
    /// [`Cluster::wait_for_preferred_leaders`]).
    pub fn wait_ready(&mut self, timeout: Duration) -> PerfResult<()> {
        self.nodes.wait_for_preferred_leaders(
            &self.spec.group_names(),
            LocalSpec::preferred_leader,
            Duration::from_millis(VIEW_TIMEOUT_MS),
            timeout,
            "bench",
        )
    }

    /// Fails if a node has exited.
    pub fn check_running(&mut self) -> PerfResult<()> {
        self.nodes.check_running()
    }

    /// Stops every node (SIGTERM, SIGKILL after a grace period) and removes the
    /// directory unless it is to be kept.
    pub fn stop(mut self) -> PerfResult<()> {
        self.nodes.stop_all(Duration::from_millis(STOP_GRACE_MS));
        if self.dir.is_kept() {
            eprintln!("bench: cluster files kept in {}", self.dir.path().display());
        }
        let LocalCluster { nodes, dir, .. } = self;
        drop(nodes);
        dir.remove()
    }
}

/// An existing cluster: its nodes' client addresses and the groups the bench loads.
#[derive(Debug, Clone)]
pub struct RemoteCluster {
    pub addrs: Vec<HostPort>,
    pub groups: Vec<String>,
}

impl RemoteCluster {
    /// Finds the nodes (from `--peers` or the name server `-n`) and takes the first
    /// `groups` group names (sorted) that they host.
    pub fn resolve(
        peers: Option<&str>,
        namesrv: Option<&str>,
        groups: usize,
    ) -> PerfResult<RemoteCluster> {
        let timeout = Duration::from_millis(VIEW_TIMEOUT_MS);
        let views: Vec<ClusterViewResponse> = match (peers, namesrv) {
            (Some(p), None) => {
                let addrs = parse_peers(p).map_err(|reason| PerfError::BadArgument {
                    flag: "--peers",
                    reason,
                })?;
                let mut views = Vec::new();
                for a in &addrs {
                    match cluster_view(&a.to_string(), timeout) {
                        Ok(v) => views.push(v),
                        Err(e) => eprintln!("bench: warning: node {a}: {e}"),
                    }
                }
                views
            }
            (None, Some(ns)) => from_namesrv(ns, timeout)
                .map_err(|e| PerfError::Cluster(format!("name server {ns}: {e}")))?
                .into_iter()
                .filter_map(|(who, v)| {
                    v.map_err(|e| eprintln!("bench: warning: node {who}: {e}"))
                        .ok()
                })
                .collect(),
            _ => {
                return Err(PerfError::BadArgument {
                    flag: "--peers/-n",
                    reason: "give at most one of them".into(),
                });
            }
        };
        if views.is_empty() {
            return Err(PerfError::Cluster("no node answered".into()));
        }
        let mut names: Vec<String> = views
            .iter()
            .flat_map(|v| v.rows.iter().map(|r| r.group.clone()))
            .collect();
        names.sort();
        names.dedup();
        if names.len() < groups {
            return Err(PerfError::BadArgument {
                flag: "--groups",
                reason: format!("{groups} asked, the cluster hosts {}", names.len()),
            });
        }
        names.truncate(groups);
        Ok(RemoteCluster {
            addrs: views.iter().map(|v| v.client_addr.clone()).collect(),
            groups: names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(groups: usize, body_bytes: usize) -> LocalSpec {
        LocalSpec {
            groups,
            flush: Flush::Sync,
            shards: 1,
            body_bytes,
        }
    }

    #[test]
    fn segments_shrink_with_groups_but_hold_two_bodies() {
        assert_eq!(spec(1, 1024).data_segment_bytes(), SEGMENT_MAX_BYTES);
        assert_eq!(spec(64, 1024).data_segment_bytes(), 4 << 20);
        assert_eq!(spec(1000, 1024).data_segment_bytes(), SEGMENT_MIN_BYTES);
        assert!(spec(1000, 3 << 20).data_segment_bytes() >= 6 << 20);
    }

    #[test]
    fn generated_configs_validate() {
        let dir = Path::new("/tmp/dledger-bench-config-test");
        let ports = LoopbackPorts::reserve(LOCAL_NODES).expect("free ports");
        for groups in [1, 8, 1000] {
            let s = spec(groups, 1024);
            for i in 0..LOCAL_NODES {
                let text = s.settings(i, &ports, dir).text("test");
                let loaded = dledger::config::parse_file_contents("gen.conf", &text)
                    .unwrap_or_else(|e| panic!("groups {groups} node {i}: {e}\n{text}"));
                assert_eq!(loaded.config.groups.len(), groups);
            }
        }
    }
}

//! Settings of the peer transport, validated once at start-up.

use std::{collections::HashMap, net::SocketAddr};

use dledger::raft::NodeId;

use super::frame::CLUSTER_NAME_BYTES_MAX;

pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 << 20;
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;
pub const DEFAULT_WRITE_BUFFER_BYTES_MAX: usize = 4 << 20;
pub const DEFAULT_READ_BUFFER_BYTES: usize = 1 << 20;
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 1000;
pub const DEFAULT_HELLO_TIMEOUT_MS: u64 = 1000;
pub const DEFAULT_BACKOFF_MIN_MS: u64 = 20;
pub const DEFAULT_BACKOFF_MAX_MS: u64 = 2000;
/// DLedger's default heartbeat interval and its default `maxHeartBeatLeak` (3) times it.
pub const DEFAULT_KEEPALIVE_INTERVAL_MS: u64 = 100;
pub const DEFAULT_LIVENESS_TIMEOUT_MS: u64 = 300;

/// Peer transport settings (identical on every shard of a node).
#[derive(Clone, Debug)]
pub struct PeerNetConfig {
    /// Cluster name; a Hello from another cluster is refused.
    pub cluster: String,
    pub self_id: NodeId,
    /// Where this node accepts peer connections.
    pub listen_addr: SocketAddr,
    /// The node's one listening socket on `listen_addr`, bound exclusively
    /// ([`super::listen::bind_exclusive`]); every shard accepts on a duplicate. `None`:
    /// each shard binds `listen_addr` itself with SO_REUSEPORT.
    pub listener: Option<std::sync::Arc<std::net::TcpListener>>,
    /// Every node of the cluster with its peer address, this node included.
    pub nodes: HashMap<NodeId, SocketAddr>,
    /// Largest frame payload sent or accepted.
    pub max_frame_bytes: usize,
    /// Messages queued per (peer node, shard) before `try_send` says OVERLOADED.
    pub queue_capacity: usize,
    /// A writer stops draining its queue into one write once this many bytes are
    /// buffered (the rest goes in the next write).
    pub write_buffer_bytes_max: usize,
    /// Size of a connection's receive regions (a region is one frame when that is larger).
    pub read_buffer_bytes: usize,
    pub connect_timeout_ms: u64,
    /// How long either side waits for the other's handshake frame.
    pub hello_timeout_ms: u64,
    /// Reconnect backoff: first delay, doubled per failure up to the max, with jitter.
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// The acceptor of a connection sends a keepalive this often.
    pub keepalive_interval_ms: u64,
    /// A connected peer with no keepalive for this long is reported down.
    pub liveness_timeout_ms: u64,
}

impl PeerNetConfig {
    /// A config with the defaults for every bound.
    pub fn new(
        cluster: impl Into<String>,
        self_id: NodeId,
        listen_addr: SocketAddr,
        nodes: HashMap<NodeId, SocketAddr>,
    ) -> Self {
        Self {
            cluster: cluster.into(),
            self_id,
            listen_addr,
            listener: None,
            nodes,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            write_buffer_bytes_max: DEFAULT_WRITE_BUFFER_BYTES_MAX,
            read_buffer_bytes: DEFAULT_READ_BUFFER_BYTES,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            hello_timeout_ms: DEFAULT_HELLO_TIMEOUT_MS,
            backoff_min_ms: DEFAULT_BACKOFF_MIN_MS,
            backoff_max_ms: DEFAULT_BACKOFF_MAX_MS,
            keepalive_interval_ms: DEFAULT_KEEPALIVE_INTERVAL_MS,
            liveness_timeout_ms: DEFAULT_LIVENESS_TIMEOUT_MS,
        }
    }

    /// The peers (every node but this one).
    pub fn peers(&self) -> impl Iterator<Item = (NodeId, SocketAddr)> + '_ {
        self.nodes
            .iter()
            .filter(|(id, _)| **id != self.self_id)
            .map(|(id, addr)| (*id, *addr))
    }

    /// Checks every bound; the message names the setting and why.
    pub fn validate(&self) -> Result<(), String> {
        if self.cluster.is_empty() || self.cluster.len() > CLUSTER_NAME_BYTES_MAX {
            return Err(format!(
                "cluster: name must be 1..={CLUSTER_NAME_BYTES_MAX} bytes, got {}",
                self.cluster.len()
            ));
        }
        if !self.nodes.contains_key(&self.self_id) {
            return Err(format!(
                "nodes: self id {} is not among the nodes",
                self.self_id
            ));
        }
        if self.max_frame_bytes == 0 || u32::try_from(self.max_frame_bytes).is_err() {
            return Err(format!(
                "max_frame_bytes: must be 1..=u32::MAX, got {}",
                self.max_frame_bytes
            ));
        }
        if self.queue_capacity == 0 {
            return Err("queue_capacity: must be at least 1".to_owned());
        }
        if self.write_buffer_bytes_max == 0 || self.read_buffer_bytes == 0 {
            return Err("write_buffer_bytes_max and read_buffer_bytes must be positive".to_owned());
        }
        if self.connect_timeout_ms == 0 || self.hello_timeout_ms == 0 {
            return Err("connect_timeout_ms and hello_timeout_ms must be positive".to_owned());
        }
        if self.keepalive_interval_ms == 0 || self.liveness_timeout_ms <= self.keepalive_interval_ms
        {
            return Err(format!(
                "liveness: need 0 < keepalive_interval_ms ({}) < liveness_timeout_ms ({})",
                self.keepalive_interval_ms, self.liveness_timeout_ms
            ));
        }
        if self.backoff_min_ms == 0 || self.backoff_min_ms > self.backoff_max_ms {
            return Err(format!(
                "backoff: need 0 < backoff_min_ms ({}) <= backoff_max_ms ({})",
                self.backoff_min_ms, self.backoff_max_ms
            ));
        }
        Ok(())
    }
}

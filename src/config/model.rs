//! The typed, validated configuration. Built only by [`super::parse_file_contents`], so
//! every value here has passed the checks documented in docs/config.md.

use crate::raft::{self, NodeId};

use super::values::HostPort;

/// The id a group has on the peer wire: FNV-1a (32 bit) of its name's UTF-8 bytes.
/// Collisions among the groups of one config are refused at validation, and every node
/// of a group lists the group, so two groups a peer could confuse never pass validation.
pub type GroupId = u32;

/// FNV-1a, 32 bit: stable across versions and platforms (unlike `std`'s hasher).
pub fn group_id_of(name: &str) -> GroupId {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    name.bytes()
        .fold(OFFSET, |h, b| (h ^ u32::from(b)).wrapping_mul(PRIME))
}

/// `diskSyncMethod`: how a data write is made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiskSyncMethod {
    /// Segments opened with `O_DSYNC`: a direct write is durable when it completes
    /// (one request to the kernel; it flushes the device cache, or writes FUA).
    ODsync,
    /// Plain direct writes, then one `fdatasync` per group commit round (a flush in
    /// flight while the next round is written).
    Fdatasync,
    /// `Fdatasync`, except that a round of a group alone on its shard's device is
    /// written through an `O_DSYNC` descriptor (durable when the write completes),
    /// while the server measures that way no slower.
    Adaptive,
}

impl DiskSyncMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskSyncMethod::ODsync => "O_DSYNC",
            DiskSyncMethod::Fdatasync => "FDATASYNC",
            DiskSyncMethod::Adaptive => "ADAPTIVE",
        }
    }
}

/// `flushDiskType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlushDiskType {
    /// Ack once a majority, leader included, has the entry on stable storage.
    SyncFlush,
    /// Ack once a majority has written it; flushed within `flushFileInterval` ms.
    AsyncFlush,
}

impl FlushDiskType {
    pub fn as_str(self) -> &'static str {
        match self {
            FlushDiskType::SyncFlush => "SYNC_FLUSH",
            FlushDiskType::AsyncFlush => "ASYNC_FLUSH",
        }
    }
}

/// One node of the cluster, as named in `dLegerPeers`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub id: NodeId,
    /// As written (`n0`): used in paths (`dledger-n0`) and logs.
    pub name: String,
    /// Its Raft peer address.
    pub peer_addr: HostPort,
}

impl Peer {
    /// The broker id this node reports while it is not the leader (RocketMQ: digits + 1;
    /// the leader reports 0).
    pub fn follower_bid(&self) -> u32 {
        self.id + 1 // id <= MAX_NODE_ID, checked when parsed
    }
}

/// Timings. All in milliseconds except `max_heartbeat_leak` (a count).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    pub tick_ms: u32,
    pub heartbeat_interval_ms: u32,
    pub max_heartbeat_leak: u32,
    pub min_vote_interval_ms: u32,
    pub max_vote_interval_ms: u32,
    pub max_push_timeout_ms: u32,
    pub leadership_transfer_wait_timeout_ms: u32,
    pub flush_file_interval_ms: u32,
    pub check_point_interval_ms: u32,
}

impl Timing {
    /// A follower that has heard nothing for this long (DLedger: heartbeat × leak) starts
    /// its vote delay.
    pub fn silence_tolerated_ms(&self) -> u64 {
        u64::from(self.heartbeat_interval_ms) * u64::from(self.max_heartbeat_leak)
    }
    /// Election timeout range `[min, max)`: heartbeat × leak + a vote delay drawn from
    /// `[minVoteIntervalMs, maxVoteIntervalMs)`, which is what DLedger's follower waits
    /// before it asks for votes.
    pub fn election_timeout_ms(&self) -> (u64, u64) {
        let base = self.silence_tolerated_ms();
        (
            base + u64::from(self.min_vote_interval_ms),
            base + u64::from(self.max_vote_interval_ms),
        )
    }
    /// `ms` as whole ticks, rounded up, at least 1.
    pub fn ticks(&self, ms: u64) -> u32 {
        let ticks = ms.div_ceil(u64::from(self.tick_ms)).max(1);
        u32::try_from(ticks).unwrap_or(u32::MAX)
    }
    pub fn heartbeat_interval_ticks(&self) -> u32 {
        self.ticks(u64::from(self.heartbeat_interval_ms))
    }
    /// `[min, max)` in ticks; validation guarantees `max >= min + 2`.
    pub fn election_timeout_ticks(&self) -> (u32, u32) {
        let (lo, hi) = self.election_timeout_ms();
        (self.ticks(lo), self.ticks(hi))
    }
}

/// Bounds on queues, frames and batches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_frame_bytes: u32,
    pub max_body_bytes: u32,
    pub max_bodies_per_append: u32,
    pub max_inflight_appends: u32,
    pub enable_batch_push: bool,
    /// Entries in one peer Append (1 when `enableBatchPush=false`).
    pub max_batch_push_entries: u32,
    /// Entry bytes in one peer Append.
    pub max_batch_push_bytes: u32,
    pub peer_push_throttle_point_bytes: u64,
    pub peer_push_quota_bytes_per_sec: u64,
    pub max_leadership_transfer_wait_index: u64,
    pub peer_queue_max_bytes: u64,
    pub max_client_connections: u32,
    /// A client connection with no request read, none in flight and no answer written
    /// for this long is closed (`serverChannelMaxIdleTimeSeconds`, RocketMQ's key).
    pub client_idle_timeout_ms: u64,
    /// Once a frame's first byte has arrived, the rest must within this long
    /// (`clientFrameTimeoutMs`; a slowloris cannot hold a connection slot).
    pub client_frame_timeout_ms: u64,
}

/// Where and how the log is stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Storage {
    pub root_dir: String,
    /// RocketMQ's own CommitLog directory (read when adopting an old commitlog).
    pub commitlog_dir: String,
    /// The directory that holds `dledger-<selfId>/<group>/`.
    pub dledger_base_dir: String,
    pub data_segment_bytes: u64,
    pub index_segment_bytes: u64,
    pub delete_when_hours: Vec<u8>,
    pub disk_ratio_check_expired: f64,
    pub disk_ratio_force_clean: f64,
    pub disk_ratio_refuse_writes: f64,
    /// `diskSyncMethod`.
    pub sync_method: DiskSyncMethod,
    /// `enableSharedFlush`: the groups of one shard on one device share one device
    /// flush per round where the server verified that this is safe.
    pub shared_flush: bool,
}

/// How many executors run and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardSettings {
    /// `shards`, when given.
    pub explicit_count: Option<u32>,
    /// `sendMessageThreadPoolNums`: caps the automatic count.
    pub thread_pool_cap: Option<u32>,
    /// `cpuSet`, sorted.
    pub cpu_set: Option<Vec<u32>>,
    pub pin: bool,
}

/// The most shards a node runs.
pub const MAX_SHARDS: u32 = 256;

impl ShardSettings {
    /// The shard count: `shards` if given; otherwise the CPUs of `cpuSet` (or
    /// `available_cpus` without one), capped by `sendMessageThreadPoolNums`; at least 1.
    pub fn count(&self, available_cpus: u32) -> u32 {
        if let Some(n) = self.explicit_count {
            return n;
        }
        let cpus = self
            .cpu_set
            .as_ref()
            .map_or(available_cpus, |s| s.len() as u32); // at most 1024 entries
        let capped = self.thread_pool_cap.map_or(cpus, |cap| cpus.min(cap));
        capped.clamp(1, MAX_SHARDS)
    }
    /// The CPU shard `shard` is pinned to, or None when unpinned. Shards wrap round the
    /// CPU list (`cpuSet`, else `0..available_cpus`) when there are more shards than CPUs.
    pub fn cpu_for_shard(&self, shard: u32, available_cpus: u32) -> Option<u32> {
        if !self.pin {
            return None;
        }
        match &self.cpu_set {
            Some(set) if !set.is_empty() => Some(set[shard as usize % set.len()]),
            _ => Some(shard % available_cpus.max(1)),
        }
    }
}

/// One Raft group this node serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    pub name: String,
    /// The group's id on the peer wire ([`group_id_of`]).
    pub id: GroupId,
    /// Voters, sorted by id, this node included. Addresses are in [`NodeConfig::peers`].
    pub members: Vec<NodeId>,
    pub preferred_leader: Option<NodeId>,
    pub flush: FlushDiskType,
    pub max_pending_requests: u64,
    pub max_wait_ack_ms: u32,
    pub file_reserved_hours: u32,
}

/// Everything one node process needs.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeConfig {
    /// The file name it was parsed from (for messages).
    pub source: String,
    pub cluster_name: String,
    /// `brokerName` (single-group form: normally equal to the group name).
    pub broker_name: Option<String>,
    pub self_id: NodeId,
    pub self_name: String,
    /// Where clients connect (`brokerIP1` or this node's peer host, and `listenPort`).
    pub client_listen: HostPort,
    /// Where peers connect (this node's entry in `dLegerPeers`).
    pub peer_listen: HostPort,
    pub namesrv: Vec<HostPort>,
    pub metrics_port: Option<u16>,
    pub storage: Storage,
    pub shards: ShardSettings,
    pub timing: Timing,
    pub limits: Limits,
    /// Every node named by any group, sorted by id, this node included.
    pub peers: Vec<Peer>,
    /// Groups this node serves, sorted by name.
    pub groups: Vec<GroupConfig>,
}

impl NodeConfig {
    pub fn peer(&self, id: NodeId) -> Option<&Peer> {
        self.peers.iter().find(|p| p.id == id)
    }
    pub fn self_peer(&self) -> &Peer {
        self.peer(self.self_id)
            .expect("validation puts this node into peers")
    }
    pub fn group(&self, name: &str) -> Option<&GroupConfig> {
        self.groups.iter().find(|g| g.name == name)
    }
    pub fn group_by_id(&self, id: GroupId) -> Option<&GroupConfig> {
        self.groups.iter().find(|g| g.id == id)
    }
    /// `<dledger base>/dledger-<selfId>/<group>`: the group's storage directory.
    pub fn group_dir(&self, group: &GroupConfig) -> String {
        format!(
            "{}/dledger-{}/{}",
            self.storage.dledger_base_dir.trim_end_matches('/'),
            self.self_name,
            group.name
        )
    }
    /// The Raft core's settings for `group` on this node.
    pub fn raft_config(&self, group: &GroupConfig) -> raft::Config {
        let (election_min, election_max) = self.timing.election_timeout_ticks();
        raft::Config {
            id: self.self_id,
            voters: group.members.clone(),
            election_timeout_min_ticks: election_min,
            election_timeout_max_ticks: election_max,
            heartbeat_interval_ticks: self.timing.heartbeat_interval_ticks(),
            max_inflight_appends: self.limits.max_inflight_appends,
            max_batch_entries: self.limits.max_batch_push_entries,
            // `maxPendingRequestsNum` bounds the *client* appends waiting for a quorum
            // (DLedger's meaning; the group checks it before proposing). The core's bound
            // on uncommitted entries is a backstop above it that must not refuse a client
            // within that limit: a new leader's log also holds its own term-start entry
            // and possibly a tail of up to the same limit inherited from the old leader.
            max_uncommitted_entries: group
                .max_pending_requests
                .saturating_mul(2)
                .saturating_add(1),
            check_quorum: true,
            preferred_leader: group.preferred_leader,
            #[cfg(feature = "planted-bugs")]
            planted: None,
        }
    }
}

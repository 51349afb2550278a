//! From properties entries to a validated [`NodeConfig`]: every check that can name a
//! file, a line and a key lives here.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use crate::raft::{MAX_PEERS, NodeId};

use super::error::{ConfigError, ConfigWarning};
use super::keys::{GROUP_KEYS, GROUP_PREFIX, IGNORED_ROCKETMQ_KEYS, NODE_KEYS, suggest};
use super::model::*;
use super::properties::parse_properties;
use super::values::*;

/// Room a frame needs besides one body (header, message fields): `maxBodyBytes` and
/// `maxBatchPushSize` must leave this much below `maxFrameBytes`.
pub const FRAME_OVERHEAD_BYTES: u32 = 4096;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// A parsed config and the warnings the node should log at start.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub config: NodeConfig,
    pub warnings: Vec<ConfigWarning>,
}

/// Parses and validates a config file's contents. `file` is used only in messages.
pub fn parse_file_contents(file: &str, text: &str) -> Result<Loaded, ConfigError> {
    let mut ctx = Ctx::new(file, text)?;
    let config = ctx.build()?;
    Ok(Loaded {
        config,
        warnings: ctx.warnings,
    })
}

#[derive(Clone, Debug)]
struct Entry {
    value: String,
    line: u32,
}

/// A per-group override: `group.<group>.<key>`.
#[derive(Clone, Debug)]
struct Override {
    full_key: String,
    entry: Entry,
}

struct Ctx<'a> {
    file: &'a str,
    node: BTreeMap<String, Entry>,
    /// (group name, key) → override.
    overrides: BTreeMap<(String, String), Override>,
    warnings: Vec<ConfigWarning>,
}

impl<'a> Ctx<'a> {
    fn new(file: &'a str, text: &str) -> Result<Ctx<'a>, ConfigError> {
        let props = parse_properties(text).map_err(|e| ConfigError {
            file: file.to_string(),
            line: Some(e.line),
            key: None,
            reason: e.reason,
        })?;
        let mut ctx = Ctx {
            file,
            node: BTreeMap::new(),
            overrides: BTreeMap::new(),
            warnings: Vec::new(),
        };
        let mut first_line: BTreeMap<String, u32> = BTreeMap::new();
        for p in props {
            if let Some(prev) = first_line.get(&p.key) {
                return Err(ctx.error(
                    &p.key,
                    Some(p.line),
                    format!("set twice (first on line {prev})"),
                ));
            }
            first_line.insert(p.key.clone(), p.line);
            let entry = Entry {
                value: p.value,
                line: p.line,
            };
            if let Some(rest) = p.key.strip_prefix(GROUP_PREFIX) {
                let (group, key) = rest.split_once('.').ok_or_else(|| {
                    ctx.error(
                        &p.key,
                        Some(p.line),
                        "expected group.<groupName>.<key>".to_string(),
                    )
                })?;
                if !GROUP_KEYS.contains(&key) {
                    let hint = suggest(key, GROUP_KEYS)
                        .map(|k| format!(" (did you mean '{k}'?)"))
                        .unwrap_or_default();
                    return Err(ctx.error(
                        &p.key,
                        Some(p.line),
                        format!(
                            "'{key}' cannot be set per group{hint}; per-group keys: {}",
                            GROUP_KEYS.join(", ")
                        ),
                    ));
                }
                ctx.overrides.insert(
                    (group.to_string(), key.to_string()),
                    Override {
                        full_key: p.key.clone(),
                        entry,
                    },
                );
            } else if NODE_KEYS.contains(&p.key.as_str()) {
                ctx.node.insert(p.key, entry);
            } else if IGNORED_ROCKETMQ_KEYS.contains(&p.key.as_str()) {
                ctx.warn(
                    &p.key,
                    Some(p.line),
                    "ignored: in DLedger mode the role and broker id come from the election"
                        .to_string(),
                );
            } else {
                let hint = suggest(&p.key, NODE_KEYS)
                    .map(|k| format!(" (did you mean '{k}'?)"))
                    .unwrap_or_default();
                return Err(ctx.error(&p.key, Some(p.line), format!("unknown key{hint}")));
            }
        }
        Ok(ctx)
    }

    fn error(&self, key: &str, line: Option<u32>, reason: String) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            line,
            key: Some(key.to_string()),
            reason,
        }
    }

    fn warn(&mut self, key: &str, line: Option<u32>, reason: String) {
        self.warnings.push(ConfigWarning {
            file: self.file.to_string(),
            line,
            key: Some(key.to_string()),
            reason,
        });
    }

    fn line(&self, key: &str) -> Option<u32> {
        self.node.get(key).map(|e| e.line)
    }

    /// An error about a node key, at its line if it is set.
    fn key_error(&self, key: &str, reason: String) -> ConfigError {
        self.error(key, self.line(key), reason)
    }

    fn missing(&self, key: &str) -> ConfigError {
        self.error(key, None, "required but not set".to_string())
    }

    fn parse<T>(
        &self,
        key: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.node.get(key) {
            None => Ok(None),
            Some(e) => f(&e.value)
                .map(Some)
                .map_err(|reason| self.error(key, Some(e.line), reason)),
        }
    }

    fn string(&self, key: &str) -> Option<&str> {
        self.node.get(key).map(|e| e.value.as_str())
    }

    fn non_empty(&self, key: &str) -> Result<Option<String>, ConfigError> {
        self.parse(key, |v| {
            if v.is_empty() {
                Err("empty value".to_string())
            } else {
                Ok(v.to_string())
            }
        })
    }

    fn num(&self, key: &str, default: u64, range: RangeInclusive<u64>) -> Result<u64, ConfigError> {
        Ok(self.parse(key, |v| in_range(v, &range))?.unwrap_or(default))
    }

    fn num32(
        &self,
        key: &str,
        default: u32,
        range: RangeInclusive<u32>,
    ) -> Result<u32, ConfigError> {
        let wide = u64::from(*range.start())..=u64::from(*range.end());
        let n = self.num(key, u64::from(default), wide)?;
        Ok(n as u32) // within a u32 range, checked by `num`
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        Ok(self.parse(key, parse_bool)?.unwrap_or(default))
    }

    fn build(&mut self) -> Result<NodeConfig, ConfigError> {
        if !self.bool("enableDLegerCommitLog", true)? {
            return Err(self.key_error(
                "enableDLegerCommitLog",
                "dledger-rs always runs the DLedger commitlog: set it to true or remove it"
                    .to_string(),
            ));
        }
        let cluster_name = match self.non_empty("brokerClusterName")? {
            Some(name) => {
                check_label(&name).map_err(|r| self.key_error("brokerClusterName", r))?;
                name
            }
            None => "DefaultCluster".to_string(),
        };
        let broker_name = self.non_empty("brokerName")?;
        let self_name = self
            .non_empty("dLegerSelfId")?
            .ok_or_else(|| self.missing("dLegerSelfId"))?;
        let self_id = parse_node_name(&self_name).map_err(|r| self.key_error("dLegerSelfId", r))?;

        let timing = self.timing()?;
        let limits = self.limits()?;
        let storage = self.storage(&limits)?;
        let shards = self.shard_settings()?;

        let node_peers = match self.node.get("dLegerPeers") {
            Some(e) => parse_peers(&e.value, MAX_PEERS)
                .map_err(|r| self.error("dLegerPeers", Some(e.line), r))?,
            None => return Err(self.missing("dLegerPeers")),
        };
        let group_names = self.group_names(broker_name.as_deref())?;
        for ((group, _), o) in &self.overrides {
            if !group_names.contains(group) {
                return Err(self.error(
                    &o.full_key,
                    Some(o.entry.line),
                    format!(
                        "group '{group}' is not configured (groups: {})",
                        group_names.join(", ")
                    ),
                ));
            }
        }

        let node_flush = self
            .parse("flushDiskType", parse_flush)?
            .unwrap_or(FlushDiskType::SyncFlush);
        let node_pending = self.num("maxPendingRequestsNum", 10_000, 1..=10_000_000)?;
        let node_wait_ack = self.num32("maxWaitAckTimeMs", 2_500, 1..=600_000)?;
        let node_reserved = self.reserved_hours()?;
        let node_preferred = self.preferred_names(
            self.node
                .get("preferredLeaderId")
                .map(|e| ("preferredLeaderId".to_string(), e.clone())),
            self.node
                .get("preferredLeaderIds")
                .map(|e| ("preferredLeaderIds".to_string(), e.clone())),
        )?;

        let mut peers: Vec<Peer> = Vec::new();
        let mut groups: Vec<GroupConfig> = Vec::new();
        for name in &group_names {
            let (members, peers_key, peers_line) = match self.override_of(name, "dLegerPeers") {
                Some(o) => {
                    let specs = parse_peers(&o.entry.value, MAX_PEERS)
                        .map_err(|r| self.error(&o.full_key, Some(o.entry.line), r))?;
                    (specs, o.full_key.clone(), Some(o.entry.line))
                }
                None => (
                    node_peers.clone(),
                    "dLegerPeers".to_string(),
                    self.line("dLegerPeers"),
                ),
            };
            if !members.iter().any(|p| p.name == self_name) {
                let listed = members
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(if peers_key == "dLegerPeers" {
                    self.key_error(
                        "dLegerSelfId",
                        format!("'{self_name}' is not among dLegerPeers ({listed})"),
                    )
                } else {
                    self.error(
                        &peers_key,
                        peers_line,
                        format!(
                            "does not list this node '{self_name}' (dLegerSelfId); listed: {listed}"
                        ),
                    )
                });
            }
            for spec in &members {
                merge_peer(&mut peers, spec).map_err(|r| self.error(&peers_key, peers_line, r))?;
            }
            if members.len() == 2 {
                self.warn(
                    &peers_key,
                    peers_line,
                    format!("group '{name}' has 2 peers: it keeps working only while both are up (no failover)"),
                );
            }

            let preferred_names = match (
                self.override_of(name, "preferredLeaderId")
                    .map(|o| (o.full_key.clone(), o.entry.clone())),
                self.override_of(name, "preferredLeaderIds")
                    .map(|o| (o.full_key.clone(), o.entry.clone())),
            ) {
                (None, None) => node_preferred.clone(),
                (a, b) => self.preferred_names(a, b)?,
            };
            let preferred_leader = match preferred_names {
                None => None,
                Some((key, line, list)) => {
                    let mut ids = Vec::new();
                    for n in &list {
                        let Some(spec) = members.iter().find(|p| &p.name == n) else {
                            let listed = members
                                .iter()
                                .map(|p| p.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ");
                            return Err(self.error(
                                &key,
                                line,
                                format!("'{n}' is not a peer of group '{name}' ({listed})"),
                            ));
                        };
                        ids.push(spec.id);
                    }
                    if ids.len() > 1 {
                        self.warn(
                            &key,
                            line,
                            format!(
                                "group '{name}': only the first preferred leader ('{}') is used",
                                list[0]
                            ),
                        );
                    }
                    ids.first().copied()
                }
            };
            let flush = match self.override_of(name, "flushDiskType") {
                Some(o) => parse_flush(&o.entry.value)
                    .map_err(|r| self.error(&o.full_key, Some(o.entry.line), r))?,
                None => node_flush,
            };
            let max_pending_requests =
                self.override_num(name, "maxPendingRequestsNum", node_pending, 1..=10_000_000)?;
            let max_wait_ack_ms = self.override_num(
                name,
                "maxWaitAckTimeMs",
                u64::from(node_wait_ack),
                1..=600_000,
            )? as u32;
            let file_reserved_hours = self.override_num(
                name,
                "fileReservedHours",
                u64::from(node_reserved),
                1..=RESERVED_HOURS_MAX,
            )? as u32;

            let mut member_ids: Vec<NodeId> = members.iter().map(|p| p.id).collect();
            member_ids.sort_unstable();
            let id = group_id_of(name);
            if let Some(other) = groups.iter().find(|g| g.id == id) {
                let key = if self.node.contains_key("dLegerGroups") {
                    "dLegerGroups"
                } else {
                    "dLegerGroup"
                };
                return Err(self.key_error(
                    key,
                    format!(
                        "groups '{}' and '{name}' hash to the same wire id {id:#010x}; rename one",
                        other.name
                    ),
                ));
            }
            groups.push(GroupConfig {
                name: name.clone(),
                id,
                members: member_ids,
                preferred_leader,
                flush,
                max_pending_requests,
                max_wait_ack_ms,
                file_reserved_hours,
            });
        }
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        peers.sort_by_key(|p| p.id);

        let peer_listen = peers
            .iter()
            .find(|p| p.id == self_id)
            .map(|p| p.peer_addr.clone())
            .ok_or_else(|| {
                self.key_error("dLegerSelfId", format!("'{self_name}' is in no group"))
            })?;
        let client_host = match self.non_empty("brokerIP1")? {
            Some(h) => {
                parse_host_port(&format!("{h}:1")).map_err(|r| self.key_error("brokerIP1", r))?;
                h
            }
            None => peer_listen.host.clone(),
        };
        let client_listen = HostPort {
            host: client_host,
            port: self.parse("listenPort", parse_port)?.unwrap_or(10911),
        };
        if let Some(p) = peers.iter().find(|p| p.peer_addr.may_clash(&client_listen)) {
            return Err(self.key_error(
                "listenPort",
                format!(
                    "client address {client_listen} is also the peer address of '{}' in dLegerPeers",
                    p.name
                ),
            ));
        }
        let metrics_port = self.parse("metricsPort", parse_port)?;
        if let Some(port) = metrics_port {
            let metrics = HostPort {
                host: client_listen.host.clone(),
                port,
            };
            if metrics.may_clash(&client_listen) || metrics.may_clash(&peer_listen) {
                return Err(self.key_error(
                    "metricsPort",
                    format!("port {port} is already this node's client or peer port"),
                ));
            }
        }
        let namesrv = match self.string("namesrvAddr") {
            None => Vec::new(),
            Some(v) => v
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(parse_host_port)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|r| self.key_error("namesrvAddr", r))?,
        };
        if let (Some(broker), [single]) = (&broker_name, groups.as_slice()) {
            if !self.node.contains_key("dLegerGroups") && broker != &single.name {
                self.warn(
                    "dLegerGroup",
                    self.line("dLegerGroup"),
                    format!(
                        "dLegerGroup '{}' differs from brokerName '{broker}' (RocketMQ expects them equal)",
                        single.name
                    ),
                );
            }
        }
        if broker_name.is_some() && self.node.contains_key("dLegerGroups") {
            self.warn(
                "brokerName",
                self.line("brokerName"),
                "not used with dLegerGroups: each group is reported under its own name".to_string(),
            );
        }
        if let (Some(n), Some(cpus)) = (shards.explicit_count, &shards.cpu_set) {
            if n as usize > cpus.len() && shards.pin {
                self.warn(
                    "shards",
                    self.line("shards"),
                    format!("{n} shards on {} CPUs: some shards share a CPU", cpus.len()),
                );
            }
        }
        if timing.max_heartbeat_leak == 1 {
            self.warn(
                "maxHeartBeatLeak",
                self.line("maxHeartBeatLeak"),
                "1: a single late heartbeat starts an election".to_string(),
            );
        }

        Ok(NodeConfig {
            source: self.file.to_string(),
            cluster_name,
            broker_name,
            self_id,
            self_name,
            client_listen,
            peer_listen,
            namesrv,
            metrics_port,
            storage,
            shards,
            timing,
            limits,
            peers,
            groups,
        })
    }

    fn override_of(&self, group: &str, key: &str) -> Option<&Override> {
        self.overrides.get(&(group.to_string(), key.to_string()))
    }

    fn override_num(
        &self,
        group: &str,
        key: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        match self.override_of(group, key) {
            None => Ok(default),
            Some(o) => in_range(&o.entry.value, &range)
                .map_err(|r| self.error(&o.full_key, Some(o.entry.line), r)),
        }
    }

    /// The group list: `dLegerGroups` (multi-group form) or `dLegerGroup`, else `brokerName`.
    fn group_names(&self, broker_name: Option<&str>) -> Result<Vec<String>, ConfigError> {
        let names: Vec<String> = match (self.node.get("dLegerGroups"), self.node.get("dLegerGroup"))
        {
            (Some(_), Some(single)) => {
                return Err(self.error(
                    "dLegerGroup",
                    Some(single.line),
                    "set dLegerGroup (one group) or dLegerGroups (several), not both".to_string(),
                ));
            }
            (Some(list), None) => list
                .value
                .split([',', ';'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            (None, Some(single)) => vec![single.value.clone()],
            (None, None) => match broker_name {
                Some(b) => vec![b.to_string()],
                None => return Err(self.missing("dLegerGroup")),
            },
        };
        let key = if self.node.contains_key("dLegerGroups") {
            "dLegerGroups"
        } else if self.node.contains_key("dLegerGroup") {
            "dLegerGroup"
        } else {
            "brokerName"
        };
        if names.is_empty() {
            return Err(self.key_error(key, "no group named".to_string()));
        }
        if names.len() > MAX_GROUPS {
            return Err(
                self.key_error(key, format!("{} groups; at most {MAX_GROUPS}", names.len()))
            );
        }
        for (i, n) in names.iter().enumerate() {
            check_group_name(n).map_err(|r| self.key_error(key, r))?;
            if names[..i].contains(n) {
                return Err(self.key_error(key, format!("group '{n}' is listed twice")));
            }
        }
        Ok(names)
    }

    /// `preferredLeaderId` / `preferredLeaderIds` at one level: at most one of them, a
    /// list of peer names separated by `,` or `;`. Returns (key, line, names).
    #[allow(clippy::type_complexity)]
    fn preferred_names(
        &self,
        single: Option<(String, Entry)>,
        list: Option<(String, Entry)>,
    ) -> Result<Option<(String, Option<u32>, Vec<String>)>, ConfigError> {
        let (key, entry) = match (single, list) {
            (None, None) => return Ok(None),
            (Some((k, e)), None) | (None, Some((k, e))) => (k, e),
            // DLedger treats preferredLeaderId as a deprecated alias of preferredLeaderIds.
            (Some((_, a)), Some((k, e))) if a.value != e.value => {
                return Err(self.error(
                    &k,
                    Some(e.line),
                    format!(
                        "'{}' contradicts preferredLeaderId='{}' (aliases in DLedger); set one",
                        e.value, a.value
                    ),
                ));
            }
            (Some(_), Some((k, e))) => (k, e),
        };
        let names: Vec<String> = entry
            .value
            .split([',', ';'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if names.is_empty() {
            return Ok(None);
        }
        Ok(Some((key, Some(entry.line), names)))
    }

    fn reserved_hours(&self) -> Result<u32, ConfigError> {
        let dledger = self.parse("fileReservedHours", |v| {
            in_range(v, &(1..=RESERVED_HOURS_MAX))
        })?;
        let rocketmq = self.parse("fileReservedTime", |v| {
            in_range(v, &(1..=RESERVED_HOURS_MAX))
        })?;
        match (dledger, rocketmq) {
            (Some(a), Some(b)) if a != b => Err(self.key_error(
                "fileReservedTime",
                format!("{b} hours contradicts fileReservedHours={a}; set one"),
            )),
            (Some(h), _) | (None, Some(h)) => Ok(h as u32),
            (None, None) => Ok(72),
        }
    }

    fn timing(&self) -> Result<Timing, ConfigError> {
        let timing = Timing {
            tick_ms: self.num32("tickMs", 10, 1..=1_000)?,
            heartbeat_interval_ms: self.num32("heartBeatTimeIntervalMs", 100, 1..=60_000)?,
            max_heartbeat_leak: self.num32("maxHeartBeatLeak", 3, 1..=100)?,
            min_vote_interval_ms: self.num32("minVoteIntervalMs", 150, 0..=60_000)?,
            max_vote_interval_ms: self.num32("maxVoteIntervalMs", 300, 1..=60_000)?,
            max_push_timeout_ms: self.num32("maxPushTimeOutMs", 1_000, 1..=600_000)?,
            leadership_transfer_wait_timeout_ms: self.num32(
                "leadershipTransferWaitTimeout",
                1_000,
                1..=600_000,
            )?,
            flush_file_interval_ms: self.num32("flushFileInterval", 10, 1..=10_000)?,
            check_point_interval_ms: self.num32("checkPointInterval", 3_000, 1..=3_600_000)?,
        };
        if timing.heartbeat_interval_ms < timing.tick_ms {
            return Err(self.key_error(
                "heartBeatTimeIntervalMs",
                format!(
                    "{} ms is shorter than one tick (tickMs={})",
                    timing.heartbeat_interval_ms, timing.tick_ms
                ),
            ));
        }
        if timing.min_vote_interval_ms >= timing.max_vote_interval_ms {
            let key = if self.node.contains_key("minVoteIntervalMs") {
                "minVoteIntervalMs"
            } else {
                "maxVoteIntervalMs"
            };
            return Err(self.key_error(
                key,
                format!(
                    "minVoteIntervalMs ({}) must be below maxVoteIntervalMs ({}): the random vote delay breaks split votes",
                    timing.min_vote_interval_ms, timing.max_vote_interval_ms
                ),
            ));
        }
        let (lo, hi) = timing.election_timeout_ticks();
        if hi < lo + 2 {
            return Err(self.key_error(
                "maxVoteIntervalMs",
                format!(
                    "the vote delay range {}..{} ms spans under 2 ticks of {} ms: elections would split",
                    timing.min_vote_interval_ms, timing.max_vote_interval_ms, timing.tick_ms
                ),
            ));
        }
        Ok(timing)
    }

    fn limits(&self) -> Result<Limits, ConfigError> {
        let max_frame_bytes = self.num32(
            "maxFrameBytes",
            16 * MIB as u32,
            64 * KIB as u32..=GIB as u32,
        )?;
        let room = max_frame_bytes - FRAME_OVERHEAD_BYTES;
        let max_body_bytes = self.num32("maxBodyBytes", 4 * MIB as u32, 1..=u32::MAX)?;
        if max_body_bytes > room {
            return Err(self.key_error(
                "maxBodyBytes",
                format!("{max_body_bytes} bytes leave no room for the frame header within maxFrameBytes={max_frame_bytes} (at most {room})"),
            ));
        }
        let max_batch_push_bytes = self.num32("maxBatchPushSize", MIB as u32, 1..=u32::MAX)?;
        if max_batch_push_bytes > room {
            return Err(self.key_error(
                "maxBatchPushSize",
                format!("{max_batch_push_bytes} bytes do not fit in maxFrameBytes={max_frame_bytes} (at most {room})"),
            ));
        }
        let enable_batch_push = self.bool("enableBatchPush", true)?;
        let batch_entries = self.num32("maxBatchPushEntries", 1024, 1..=65_536)?;
        let peer_queue_max_bytes = self.num("peerQueueMaxBytes", 64 * MIB, 1..=64 * GIB)?;
        if peer_queue_max_bytes < u64::from(max_frame_bytes) {
            return Err(self.key_error(
                "peerQueueMaxBytes",
                format!("{peer_queue_max_bytes} bytes cannot hold one frame of maxFrameBytes={max_frame_bytes}"),
            ));
        }
        Ok(Limits {
            max_frame_bytes,
            max_body_bytes,
            max_bodies_per_append: self.num32("maxBodiesPerAppend", 1024, 1..=65_536)?,
            max_inflight_appends: self.num32("maxInflightAppends", 32, 1..=4_096)?,
            enable_batch_push,
            max_batch_push_entries: if enable_batch_push { batch_entries } else { 1 },
            max_batch_push_bytes,
            peer_push_throttle_point_bytes: self.num(
                "peerPushThrottlePoint",
                300 * MIB,
                1..=u64::MAX,
            )?,
            peer_push_quota_bytes_per_sec: self.num("peerPushQuota", 20 * MIB, 1..=u64::MAX)?,
            max_leadership_transfer_wait_index: self.num(
                "maxLeadershipTransferWaitIndex",
                1_000,
                0..=u64::MAX,
            )?,
            peer_queue_max_bytes,
            max_client_connections: self.num32("maxClientConnections", 1024, 1..=65_536)?,
        })
    }

    fn storage(&self, limits: &Limits) -> Result<Storage, ConfigError> {
        let root_dir = self
            .non_empty("storePathRootDir")?
            .unwrap_or_else(|| "/tmp/dledgerstore".to_string());
        let trimmed_root = root_dir.trim_end_matches('/');
        let commitlog_dir = self
            .non_empty("storePathCommitLog")?
            .unwrap_or_else(|| format!("{trimmed_root}/commitlog"));
        let dledger_base_dir = self
            .non_empty("storePathDLedgerCommitLog")?
            .unwrap_or_else(|| root_dir.clone());
        let data_segment_bytes =
            self.segment_size("mappedFileSizeForEntryData", 256 * MIB, MIB..=64 * GIB)?;
        let needed = u64::from(limits.max_body_bytes) + u64::from(FRAME_OVERHEAD_BYTES);
        if data_segment_bytes < needed {
            return Err(self.key_error(
                "mappedFileSizeForEntryData",
                format!("{data_segment_bytes} bytes cannot hold one record of maxBodyBytes={} (records never span segments)", limits.max_body_bytes),
            ));
        }
        let index_segment_bytes =
            self.segment_size("mappedFileSizeForEntryIndex", 16 * MIB, 64 * KIB..=16 * GIB)?;
        let delete_when_hours = self
            .parse("deleteWhen", parse_hours)?
            .unwrap_or_else(|| vec![4]);

        let check_expired = self.parse("diskSpaceRatioToCheckExpired", parse_ratio)?;
        let rocketmq_percent = self.parse("diskMaxUsedSpaceRatio", |v| in_range(v, &(1..=100)))?;
        let disk_ratio_check_expired = match (check_expired, rocketmq_percent) {
            (Some(r), Some(p)) if (r - p as f64 / 100.0).abs() > 1e-9 => {
                return Err(self.key_error(
                    "diskMaxUsedSpaceRatio",
                    format!("{p}% contradicts diskSpaceRatioToCheckExpired={r}; set one"),
                ));
            }
            (Some(r), _) => r,
            (None, Some(p)) => p as f64 / 100.0,
            (None, None) => 0.70,
        };
        let disk_ratio_force_clean = self
            .parse("diskSpaceRatioToForceClean", parse_ratio)?
            .unwrap_or(0.85);
        let disk_ratio_refuse_writes = self
            .parse("diskSpaceRatioToRefuseWrites", parse_ratio)?
            .unwrap_or(0.90);
        if disk_ratio_check_expired > disk_ratio_force_clean {
            return Err(self.key_error(
                "diskSpaceRatioToForceClean",
                format!("{disk_ratio_force_clean} is below the ratio that starts expiry ({disk_ratio_check_expired})"),
            ));
        }
        if disk_ratio_force_clean > disk_ratio_refuse_writes {
            return Err(self.key_error(
                "diskSpaceRatioToRefuseWrites",
                format!("{disk_ratio_refuse_writes} is below diskSpaceRatioToForceClean ({disk_ratio_force_clean})"),
            ));
        }
        Ok(Storage {
            root_dir,
            commitlog_dir,
            dledger_base_dir,
            data_segment_bytes,
            index_segment_bytes,
            delete_when_hours,
            disk_ratio_check_expired,
            disk_ratio_force_clean,
            disk_ratio_refuse_writes,
        })
    }

    fn segment_size(
        &self,
        key: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let n = self.num(key, default, range)?;
        if n % SEGMENT_ALIGN_BYTES != 0 {
            return Err(self.key_error(
                key,
                format!(
                    "{n} bytes is not a multiple of {SEGMENT_ALIGN_BYTES} (direct I/O alignment)"
                ),
            ));
        }
        Ok(n)
    }

    fn shard_settings(&self) -> Result<ShardSettings, ConfigError> {
        Ok(ShardSettings {
            explicit_count: self
                .parse("shards", |v| in_range(v, &(1..=u64::from(MAX_SHARDS))))?
                .map(|n| n as u32),
            thread_pool_cap: self
                .parse("sendMessageThreadPoolNums", |v| in_range(v, &(1..=1024)))?
                .map(|n| n as u32),
            cpu_set: self.parse("cpuSet", parse_cpu_set)?,
            pin: self.bool("pinShards", true)?,
        })
    }
}

/// Segment sizes are multiples of this (the largest common direct-I/O block).
pub const SEGMENT_ALIGN_BYTES: u64 = 4096;
/// The most groups one config may declare.
pub const MAX_GROUPS: usize = 4096;
const RESERVED_HOURS_MAX: u64 = 24 * 365 * 10;

fn in_range(v: &str, range: &RangeInclusive<u64>) -> Result<u64, String> {
    let n = parse_uint(v)?;
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is not in {}..={}", range.start(), range.end()))
    }
}

fn parse_flush(v: &str) -> Result<FlushDiskType, String> {
    match v {
        "SYNC_FLUSH" => Ok(FlushDiskType::SyncFlush),
        "ASYNC_FLUSH" => Ok(FlushDiskType::AsyncFlush),
        other => Err(format!("'{other}' is not SYNC_FLUSH or ASYNC_FLUSH")),
    }
}

/// A name sent on the wire with a one-byte length: 1..=127 printable ASCII, no blanks.
fn check_label(name: &str) -> Result<(), String> {
    if name.len() > 127 {
        return Err(format!("'{name}' is longer than 127 bytes"));
    }
    if name.chars().any(|c| !c.is_ascii_graphic()) {
        return Err(format!("'{name}' must be printable ASCII without blanks"));
    }
    Ok(())
}

/// Adds a group's peer to the node-wide list: one node id has one name and one address
/// across all groups, and two node ids never share an address.
fn merge_peer(peers: &mut Vec<Peer>, spec: &PeerSpec) -> Result<(), String> {
    if let Some(known) = peers.iter().find(|p| p.id == spec.id) {
        if known.name != spec.name || known.peer_addr != spec.addr {
            return Err(format!(
                "'{}-{}' contradicts '{}-{}' given for the same node id {} elsewhere",
                spec.name, spec.addr, known.name, known.peer_addr, spec.id
            ));
        }
        return Ok(());
    }
    if let Some(other) = peers.iter().find(|p| p.peer_addr.may_clash(&spec.addr)) {
        return Err(format!(
            "'{}' and '{}' would both listen on {}",
            other.name, spec.name, spec.addr
        ));
    }
    peers.push(Peer {
        id: spec.id,
        name: spec.name.clone(),
        peer_addr: spec.addr.clone(),
    });
    Ok(())
}

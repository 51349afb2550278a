//! From properties entries to a validated [`NodeConfig`]: key checks, typed getters that
//! name file, line and key in their errors, and the node-level assembly. Groups are in
//! `groups.rs`, node-wide settings in `settings.rs`.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use super::error::{ConfigError, ConfigWarning};
use super::keys::{GROUP_KEYS, GROUP_PREFIX, IGNORED_ROCKETMQ_KEYS, NODE_KEYS, suggest};
use super::model::*;
use super::properties::parse_properties;
use super::values::*;

/// Room a frame needs besides one body (header, message fields): `maxBodyBytes` and
/// `maxBatchPushSize` must leave this much below `maxFrameBytes`.
pub const FRAME_OVERHEAD_BYTES: u32 = 4096;

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
pub(super) struct Entry {
    pub(super) value: String,
    pub(super) line: u32,
}

/// A per-group override: `group.<group>.<key>`.
#[derive(Clone, Debug)]
pub(super) struct Override {
    pub(super) full_key: String,
    pub(super) entry: Entry,
}

pub(super) struct Ctx<'a> {
    pub(super) file: &'a str,
    pub(super) node: BTreeMap<String, Entry>,
    /// (group name, key) → override.
    pub(super) overrides: BTreeMap<(String, String), Override>,
    pub(super) warnings: Vec<ConfigWarning>,
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

    pub(super) fn error(&self, key: &str, line: Option<u32>, reason: String) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            line,
            key: Some(key.to_string()),
            reason,
        }
    }

    pub(super) fn warn(&mut self, key: &str, line: Option<u32>, reason: String) {
        self.warnings.push(ConfigWarning {
            file: self.file.to_string(),
            line,
            key: Some(key.to_string()),
            reason,
        });
    }

    pub(super) fn line(&self, key: &str) -> Option<u32> {
        self.node.get(key).map(|e| e.line)
    }

    /// An error about a node key, at its line if it is set.
    pub(super) fn key_error(&self, key: &str, reason: String) -> ConfigError {
        self.error(key, self.line(key), reason)
    }

    pub(super) fn missing(&self, key: &str) -> ConfigError {
        self.error(key, None, "required but not set".to_string())
    }

    pub(super) fn parse<T>(
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

    pub(super) fn string(&self, key: &str) -> Option<&str> {
        self.node.get(key).map(|e| e.value.as_str())
    }

    pub(super) fn non_empty(&self, key: &str) -> Result<Option<String>, ConfigError> {
        self.parse(key, |v| {
            if v.is_empty() {
                Err("empty value".to_string())
            } else {
                Ok(v.to_string())
            }
        })
    }

    pub(super) fn num(
        &self,
        key: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        Ok(self.parse(key, |v| in_range(v, &range))?.unwrap_or(default))
    }

    pub(super) fn num32(
        &self,
        key: &str,
        default: u32,
        range: RangeInclusive<u32>,
    ) -> Result<u32, ConfigError> {
        let wide = u64::from(*range.start())..=u64::from(*range.end());
        let n = self.num(key, u64::from(default), wide)?;
        Ok(n as u32) // within a u32 range, checked by `num`
    }

    pub(super) fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
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

        let (peers, groups) = self.groups(&self_name, broker_name.as_deref())?;

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

/// Segment sizes are multiples of this (the largest common direct-I/O block).
pub const SEGMENT_ALIGN_BYTES: u64 = 4096;
/// The most groups one config may declare.
pub const MAX_GROUPS: usize = 4096;
pub(super) const RESERVED_HOURS_MAX: u64 = 24 * 365 * 10;

pub(super) fn in_range(v: &str, range: &RangeInclusive<u64>) -> Result<u64, String> {
    let n = parse_uint(v)?;
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is not in {}..={}", range.start(), range.end()))
    }
}

pub(super) fn parse_sync_method(v: &str) -> Result<DiskSyncMethod, String> {
    match v {
        "O_DSYNC" => Ok(DiskSyncMethod::ODsync),
        "FDATASYNC" => Ok(DiskSyncMethod::Fdatasync),
        "ADAPTIVE" => Ok(DiskSyncMethod::Adaptive),
        other => Err(format!("'{other}' is not ADAPTIVE, FDATASYNC or O_DSYNC")),
    }
}

pub(super) fn parse_flush(v: &str) -> Result<FlushDiskType, String> {
    match v {
        "SYNC_FLUSH" => Ok(FlushDiskType::SyncFlush),
        "ASYNC_FLUSH" => Ok(FlushDiskType::AsyncFlush),
        other => Err(format!("'{other}' is not SYNC_FLUSH or ASYNC_FLUSH")),
    }
}

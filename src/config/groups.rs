//! The groups of a config: which groups, their peers, preferred leaders and per-group
//! overrides, and the node-wide peer list they add up to.

use std::ops::RangeInclusive;

use crate::raft::{MAX_PEERS, NodeId};

use super::build::{Ctx, Entry, MAX_GROUPS, Override, RESERVED_HOURS_MAX, in_range, parse_flush};
use super::error::ConfigError;
use super::model::*;
use super::values::*;

impl Ctx<'_> {
    /// Every group of the config and the peers they name (sorted by name and id).
    pub(super) fn groups(
        &mut self,
        self_name: &str,
        broker_name: Option<&str>,
    ) -> Result<(Vec<Peer>, Vec<GroupConfig>), ConfigError> {
        let node_peers = match self.node.get("dLegerPeers") {
            Some(e) => parse_peers(&e.value, MAX_PEERS)
                .map_err(|r| self.error("dLegerPeers", Some(e.line), r))?,
            None => return Err(self.missing("dLegerPeers")),
        };
        let group_names = self.group_names(broker_name)?;
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
        Ok((peers, groups))
    }

    pub(super) fn override_of(&self, group: &str, key: &str) -> Option<&Override> {
        self.overrides.get(&(group.to_string(), key.to_string()))
    }

    pub(super) fn override_num(
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
    pub(super) fn group_names(
        &self,
        broker_name: Option<&str>,
    ) -> Result<Vec<String>, ConfigError> {
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

    /// `preferredLeaderId` / `preferredLeaderIds` at one level (aliases: both may be set
    /// only to the same value), a list of peer names separated by `;` or `,`.
    /// Returns (key, line, names).
    #[allow(clippy::type_complexity)]
    pub(super) fn preferred_names(
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

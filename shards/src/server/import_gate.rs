//! Refusing to form a group from different imported prefixes (issue 5, upgrade).
//!
//! `dledger import` writes the imported prefix's digest ([`PrefixDigest`]) to
//! [`IMPORT_DIGEST_FILE`] in the group directory. At start every shard loads the
//! digests of all the node's groups and announces, for each group it hosts, its digest
//! (or that it has none) to every peer, before any Raft message and again every second.
//! A shard admits a peer's Raft messages for a group only when it knows the peer's
//! digest equals its own:
//!
//! | this node     | peer announced | messages from the peer                      |
//! |---------------|----------------|---------------------------------------------|
//! | no digest     | nothing yet    | admitted (no import here: old behaviour)    |
//! | no digest     | no digest      | admitted                                    |
//! | digest D      | D              | admitted                                    |
//! | digest D      | nothing yet    | dropped until the announcement arrives      |
//! | any           | different      | dropped; the node logs where they differ    |
//!
//! Both sides drop, so two nodes with different prefixes never exchange a vote or an
//! append: a node whose copy differs stays out of the group, and the others form it
//! if they are a majority. Announcements ride the same ordered connection as the Raft
//! messages, so a peer's digest is known before its first message is looked at.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::Path;

use dledger::config::{GroupId, NodeConfig};
use dledger::raft::NodeId;
use dledger::upgrade::{DIGEST_BYTES_MAX, IMPORT_DIGEST_FILE, PrefixDigest};

/// Reads the digest an import left in `group_dir` (`None`: nothing was imported).
pub fn read_import_digest(group_dir: &Path) -> Result<Option<PrefixDigest>, String> {
    let path = group_dir.join(IMPORT_DIGEST_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => PrefixDigest::decode(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// One line saying what a digest covers.
pub fn describe_digest(d: &PrefixDigest) -> String {
    format!(
        "{} entries, indexes {}..={} (last term {}), hash {:#018x}",
        d.entries, d.first_index, d.last_index, d.last_term, d.hash
    )
}

/// Where this node's and a peer's imported prefixes part, in words (`None`: the same).
pub fn digest_difference(
    own: Option<&PrefixDigest>,
    peer: Option<&PrefixDigest>,
) -> Option<String> {
    match (own, peer) {
        (None, None) => None,
        (Some(a), Some(b)) => a.first_difference(b).map(|m| {
            format!(
                "{m} (this node: {}; peer: {})",
                describe_digest(a),
                describe_digest(b)
            )
        }),
        (Some(a), None) => Some(format!(
            "this node imported a prefix ({}) and the peer imported none",
            describe_digest(a)
        )),
        (None, Some(b)) => Some(format!(
            "the peer imported a prefix ({}) and this node imported none",
            describe_digest(b)
        )),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerState {
    Same,
    Differs,
}

/// One shard's view: this node's digests (all groups) and what peers announced.
#[derive(Debug)]
pub struct ImportGate {
    own: HashMap<GroupId, (String, Option<PrefixDigest>)>,
    peers: RefCell<HashMap<(GroupId, NodeId), PeerState>>,
    /// Set once any digest is involved (here or announced): until then every message
    /// is admitted without a lookup.
    active: Cell<bool>,
}

impl ImportGate {
    /// Loads the digest files of every group of `cfg` (a damaged file stops the start).
    pub fn load(cfg: &NodeConfig) -> Result<ImportGate, String> {
        let base =
            Path::new(&cfg.storage.dledger_base_dir).join(format!("dledger-{}", cfg.self_name));
        let mut own = HashMap::new();
        for g in &cfg.groups {
            let digest = read_import_digest(&base.join(&g.name))
                .map_err(|e| format!("group {}: import digest: {e}", g.name))?;
            own.insert(g.id, (g.name.clone(), digest));
        }
        let active = own.values().any(|(_, d)| d.is_some());
        Ok(ImportGate {
            own,
            peers: RefCell::new(HashMap::new()),
            active: Cell::new(active),
        })
    }

    /// This node's encoded digest of `group` for an announcement (`None`: no import).
    pub fn announcement(&self, group: GroupId) -> Option<Vec<u8>> {
        let digest = self.own.get(&group)?.1.as_ref()?;
        match digest.encode() {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                // Decoded from a valid file, so it re-encodes; never announce a lie.
                tracing::error!(group, error = %e, "cannot encode the import digest");
                None
            }
        }
    }

    /// A peer announced its digest of `group`.
    pub fn observe(&self, from: NodeId, group: GroupId, digest: Option<PrefixDigest>) {
        let Some((name, own)) = self.own.get(&group) else {
            return;
        };
        let difference = digest_difference(own.as_ref(), digest.as_ref());
        let state = if difference.is_some() {
            PeerState::Differs
        } else {
            PeerState::Same
        };
        if state == PeerState::Differs {
            self.active.set(true);
        }
        let before = self.peers.borrow_mut().insert((group, from), state);
        if before == Some(state) {
            return;
        }
        match difference {
            Some(why) => tracing::error!(
                group = %name,
                peer = from,
                "refusing to form the group with node {from}: {why}"
            ),
            None if own.is_some() => tracing::info!(
                group = %name,
                peer = from,
                "node {from} imported the same prefix"
            ),
            None => {}
        }
    }

    /// Whether a Raft message of `group` from `from` may be handed to the group.
    pub fn admits(&self, group: GroupId, from: NodeId) -> bool {
        if !self.active.get() {
            return true;
        }
        match self.peers.borrow().get(&(group, from)) {
            Some(PeerState::Same) => true,
            Some(PeerState::Differs) => false,
            // Not announced yet: admitted only where nothing was imported.
            None => self.own.get(&group).is_none_or(|(_, d)| d.is_none()),
        }
    }
}

/// Bytes of an announcement (after the peer item tag) besides the digest.
pub const ANNOUNCEMENT_HEADER_BYTES: usize = 8;

/// Appends one announcement: `u32 group | u32 len | len bytes of the encoded digest`
/// (`len` 0: nothing imported).
pub fn encode_announcement(group: GroupId, digest: Option<&[u8]>, out: &mut impl bytes::BufMut) {
    let digest = digest.unwrap_or(&[]);
    debug_assert!(digest.len() <= DIGEST_BYTES_MAX, "digests are bounded");
    out.put_slice(&group.to_be_bytes());
    out.put_slice(&(digest.len() as u32).to_be_bytes());
    out.put_slice(digest);
}

/// Reads one announcement from `b` at `*at`, moving `*at` past it.
pub fn decode_announcement(
    b: &[u8],
    at: &mut usize,
) -> Result<(GroupId, Option<PrefixDigest>), String> {
    let head = b
        .get(*at..*at + ANNOUNCEMENT_HEADER_BYTES)
        .ok_or("import digest announcement cut short")?;
    let group = GroupId::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if len > DIGEST_BYTES_MAX {
        return Err(format!("import digest of {len} bytes is too long"));
    }
    let from = *at + ANNOUNCEMENT_HEADER_BYTES;
    let bytes = b
        .get(from..from + len)
        .ok_or("import digest announcement cut short")?;
    let digest = if len == 0 {
        None
    } else {
        Some(
            PrefixDigest::decode(bytes)
                .map_err(|e| format!("import digest of group {group}: {e}"))?,
        )
    };
    *at = from + len;
    Ok((group, digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dledger::store::{LogCursor, RecordKind, SegmentGeometry};
    use dledger::upgrade::{ImportPlan, Source, SourceEntry};

    fn digest(bodies: &[&[u8]]) -> PrefixDigest {
        let g = SegmentGeometry::new(4096).expect("geometry");
        let mut plan = ImportPlan::new("G", g, 4096, LogCursor::empty_at(0)).expect("plan");
        for (i, b) in bodies.iter().enumerate() {
            plan.push(&SourceEntry {
                kind: RecordKind::Normal,
                term: 1,
                body: b,
                source: Source::RocketMq {
                    physical_offset: i as u64,
                },
            })
            .expect("push");
        }
        plan.digest().clone()
    }

    fn gate(own: Option<PrefixDigest>) -> ImportGate {
        let active = own.is_some();
        ImportGate {
            own: HashMap::from([(7, ("G".to_owned(), own))]),
            peers: RefCell::new(HashMap::new()),
            active: Cell::new(active),
        }
    }

    #[test]
    fn admits_only_peers_with_the_same_prefix() {
        let a = digest(&[b"one", b"two"]);
        let b = digest(&[b"one", b"TWO"]);

        let g = gate(Some(a.clone()));
        assert!(!g.admits(7, 2), "unknown peer of an imported group waits");
        g.observe(2, 7, Some(a.clone()));
        g.observe(3, 7, Some(b.clone()));
        g.observe(4, 7, None);
        assert!(g.admits(7, 2));
        assert!(!g.admits(7, 3));
        assert!(!g.admits(7, 4));

        let g = gate(None);
        assert!(g.admits(7, 2), "no import anywhere: as before");
        g.observe(2, 7, None);
        g.observe(3, 7, Some(a.clone()));
        assert!(g.admits(7, 2));
        assert!(!g.admits(7, 3));
        assert!(
            g.admits(7, 5),
            "a peer that never announced, no import here"
        );
        assert!(g.admits(8, 3), "unknown group: the group lookup drops it");

        let why = digest_difference(Some(&a), Some(&b)).expect("they differ");
        assert!(why.contains("differ at index"), "{why}");
        assert!(digest_difference(Some(&a), Some(&a)).is_none());
    }

    #[test]
    fn announcements_round_trip_and_refuse_damage() {
        let a = digest(&[b"one", b"two"]);
        let bytes = a.encode().expect("encode");
        let mut out = Vec::new();
        encode_announcement(7, Some(&bytes), &mut out);
        encode_announcement(9, None, &mut out);
        let mut at = 0;
        assert_eq!(decode_announcement(&out, &mut at), Ok((7, Some(a))));
        assert_eq!(decode_announcement(&out, &mut at), Ok((9, None)));
        assert_eq!(at, out.len());
        for cut in 0..ANNOUNCEMENT_HEADER_BYTES + bytes.len() {
            assert!(
                decode_announcement(&out[..cut], &mut 0).is_err(),
                "cut {cut}"
            );
        }
        let mut bad = out.clone();
        bad[ANNOUNCEMENT_HEADER_BYTES + 20] ^= 1;
        assert!(decode_announcement(&bad, &mut 0).is_err());
    }
}

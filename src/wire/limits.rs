//! The bounds every decoder applies before it trusts a count or a length from the wire.

use crate::config::{MAX_GROUPS, NodeConfig};
use crate::raft::MAX_PEERS;

/// Upper bounds for decoding (and encoding: an encoder refuses what the peer would refuse).
/// Nodes of one cluster should use equal limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireLimits {
    /// Whole frame, header included (`maxFrameBytes`).
    pub max_frame_bytes: u32,
    /// One entry body (`maxBodyBytes`).
    pub max_body_bytes: u32,
    /// Bodies in one client append, and entries in one get response (`maxBodiesPerAppend`).
    pub max_bodies_per_append: u32,
    /// Raft messages in the message section of one peer batch.
    pub max_messages_per_batch: u32,
    /// Entries of each heartbeat section of a peer batch, and rows of a cluster view.
    pub max_groups_per_batch: u32,
    /// Entries one raft Append may carry (`maxBatchPushEntries`).
    pub max_entries_per_append: u32,
    /// Peers in a metadata response.
    pub max_peers: u32,
}

impl Default for WireLimits {
    fn default() -> WireLimits {
        WireLimits {
            max_frame_bytes: 16 * 1024 * 1024,
            max_body_bytes: 4 * 1024 * 1024,
            max_bodies_per_append: 1024,
            max_messages_per_batch: 65_536,
            max_groups_per_batch: MAX_GROUPS as u32,
            max_entries_per_append: 65_536,
            max_peers: MAX_PEERS as u32,
        }
    }
}

impl WireLimits {
    /// The limits a node runs with.
    pub fn from_config(c: &NodeConfig) -> WireLimits {
        WireLimits {
            max_frame_bytes: c.limits.max_frame_bytes,
            max_body_bytes: c.limits.max_body_bytes,
            max_bodies_per_append: c.limits.max_bodies_per_append,
            max_entries_per_append: c.limits.max_batch_push_entries,
            ..WireLimits::default()
        }
    }
}

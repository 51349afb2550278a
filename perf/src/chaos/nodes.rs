//! The chaos cluster's node configs: what every node gets besides the keys
//! [`Settings::required`] writes. The processes themselves are [`crate::cluster`]'s.

use std::path::Path;

use crate::cluster::config::{LEAN_NODE, SCRATCH_DISK_RATIOS};
use crate::cluster::{Groups, NodeIdentity, Settings};

/// How long a SIGTERMed node gets to hand over and exit before SIGKILL.
pub const STOP_GRACE_MS: u64 = 8_000;

/// Small preallocated segments, so that several nodes share a small machine (besides
/// [`LEAN_NODE`] and [`SCRATCH_DISK_RATIOS`]: a chaos run tests faults, not retention,
/// which would also remove entries the checker reads).
pub const SEGMENTS: &[(&str, &str)] = &[
    ("mappedFileSizeForEntryData", "8388608"),
    ("mappedFileSizeForEntryIndex", "1048576"),
];

/// The config of node `self_index` of `peers` (name, peer address as this node dials
/// it, or its own listen address for itself), serving `groups`.
pub fn node_settings(
    self_index: usize,
    peers: &[(String, String)],
    client_port: u16,
    groups: &[String],
    store_dir: &Path,
) -> Settings {
    let mut s = Settings::required(&NodeIdentity {
        cluster_name: "ChaosCluster",
        self_id: &peers[self_index].0,
        client_port,
        store_dir,
        groups: Groups::List(groups),
        peers,
    });
    s.set_all(LEAN_NODE.iter().copied())
        .set_all(SEGMENTS.iter().copied())
        .set_all(SCRATCH_DISK_RATIOS.iter().copied());
    s
}

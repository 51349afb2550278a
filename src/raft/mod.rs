//! The sans-IO Raft core: one [`Node`] per group, driven by `tick`, `step`, `propose`
//! and `persisted`, leaving its effects in a caller-owned [`Outbox`].
//!
//! Modules: `log` (term runs and index math), `quorum` (majority math), `progress`
//! (per-follower replication window), `election` (pre-vote, vote, campaigns),
//! `leader` and `follower` (the role handlers), `node` (public API and dispatcher).

mod election;
mod follower;
mod leader;
mod log;
mod node;
mod progress;
mod quorum;
mod types;

#[cfg(test)]
mod scenario_tests;

pub use node::*;
pub use types::*;

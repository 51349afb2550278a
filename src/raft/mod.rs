//! The sans-IO Raft core: one [`Node`] per group, driven by `tick`, `step`, `propose`,
//! `persisted`, `transfer_leadership` and `unreachable`, leaving its effects in a
//! caller-owned [`Outbox`] (contract written above [`Outbox`]).
//!
//! Entry bodies never enter the core: it reasons about `(index, term)` only, keeping the
//! log as compact term runs (one per term change).
//!
//! Modules, one job each:
//! - `log`: term runs, `term_at`, last / persisted / commit indices, batch fitting and
//!   reject hints;
//! - `quorum`: majority math (quorum index of sorted matches, vote tally);
//! - `progress`: a leader's per-follower state (Probe/Replicate, bounded in-flight window);
//! - `election`: pre-vote, vote, campaigns;
//! - `leader` / `follower`: the role handlers;
//! - `node`: configuration, recovery, the public API and the message dispatcher.
//!
//! Decisions worth knowing (beyond the Raft paper and thesis):
//! - Pre-vote is always on. Check-quorum (optional) runs every `election_timeout_min`
//!   ticks; a leader that heard from less than a majority in that period steps down.
//! - Lease: a follower that heard its leader less than `election_timeout_min` ticks ago
//!   ignores Vote/PreVote requests of a higher term unless they come from a leadership
//!   transfer; a leader does so too when check-quorum is on.
//! - A node with a higher term answers an old leader's Append/Heartbeat with a
//!   `HeartbeatResp` of its own term, so the old leader steps down even while the lease
//!   keeps that node's campaigns unheard.
//! - A follower acknowledges `min(persisted, verified)`, where `verified` is the highest
//!   index checked against the current leader's log in this term (reset on every term
//!   change and on restart). It answers an `Append` at once only if that covers the whole
//!   batch (or to reject); otherwise the ack leaves from `persisted`.
//! - `HeartbeatResp` carries the same ack, which lets the leader recover a lost ack,
//!   probe the tail when its last append may have been lost, and let a restarted
//!   follower re-verify (empty Append at the known match) before it commits again.
//! - The leader counts its own log only through `persisted`, commits only an index of
//!   its own term (§5.4.2), and appends a no-op on election.
//! - Quiescence: an idle group's leader sends a final `Heartbeat { quiesce: true }` and
//!   stops ticking; followers that take it stop their election clocks. The driver
//!   reports node-level liveness (`Node::peer_liveness`) and may skip ticks of a
//!   quiescent node; the contract is written above [`Outbox`].
//! - Automatic hand-over to `preferred_leader` starts when the preferred node answered in
//!   the current check period and lags by at most one batch; at most once per
//!   `4 * election_timeout_max` ticks, doubling (up to 16x) after each abandoned attempt.

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

//! The deterministic simulator: many nodes × many raft groups in one thread, driven by
//! one `u64` seed, running the real [`crate::raft`] core.
//!
//! # What it is
//! The simulator is the core's driver, like a shard of the real server. Per node and
//! group it owns a [`disk::SimDisk`]: the log *with bodies*, split into a durable prefix
//! and a written-but-unsynced suffix, the hard state and a commit checkpoint. It applies
//! every [`crate::raft::Outbox`] per the contract: hard state durable before any message
//! of that outbox leaves; log writes in order (`Proposed` takes the bodies the client
//! proposed, `FromMessage` the bodies carried by the message just stepped); syncs complete
//! after simulated delays and then call `persisted`; an `Append` leaves with the bodies of
//! its entries read from the sender's log, and is sometimes split by a byte budget into
//! consecutive single-term chunks.
//!
//! # Faults (intensity drawn per seed, see [`profile`])
//! Message drop, duplicate, delay (reorder) and rare long delay spikes; symmetric and
//! one-way partitions; node crashes that lose unsynced writes and may keep a torn prefix
//! of them; pauses; disk errors (a failed sync stops the group on that node until it is
//! restarted); leadership transfers; preferred leaders; and leader churn (a fresh leader
//! is crashed or cut off soon after its election, which is what makes Raft's Figure 8
//! reachable). Restarts rebuild a node from [`crate::raft::Recovered`] (term runs from the
//! recovered log, commit from the checkpoint). After the fault period everything heals.
//!
//! # Checks ([`checker`]), after every step
//! At most one leader per term; log matching including bodies (prefix hashes); a
//! committed entry never changes, is never truncated or rewritten by a node that
//! committed it, and is durable on a majority when first committed; commit never goes
//! back (per incarnation, and not below the recovered checkpoint); a leader of term T
//! holds everything committed in terms up to T and every acknowledged proposal there;
//! a follower never acknowledges (`AppendResp`, `HeartbeatResp`) beyond its durable log;
//! the driver contract (core and driver logs agree, hard state was handed out, writes
//! append at the log end, messages carry entries the sender holds, the core never
//! believes more is durable than is). Half the seeds report syncs as a simple driver
//! would (the log end at issue time, stale after a truncation) to prove the core
//! ignores stale `persisted` reports. After healing, every
//! group must elect a leader and commit a new proposal within a bounded number of ticks.
//!
//! # Quiescence and node liveness ([`keepalive`])
//! Nodes keep a per-peer up/down view the way the server's transport does (keepalives
//! through the simulated network; partitions and pauses turn into "down" after a
//! timeout, crashes at once) and report it to every group; the driver skips ticks of
//! quiescent nodes (and on some seeds ticks them anyway, checking the tick is a no-op).
//! Clients of some seeds pause now and then, so groups quiesce and wake during the
//! faults. After the liveness window, a quiet phase stops the clients, requires every
//! group to go quiescent, takes the leader of group 0 down, and requires a new leader
//! in every group it led within a bound.
//!
//! Same seed ⇒ same run: one PCG stream, ordered containers, no wall clock.
//!
//! Entry points: [`run_seed`] for one seed, [`Sim`] for finer control; the runner is
//! `cargo run --release -p dledger --example sim -- --seeds N`.

pub mod checker;
pub mod client;
pub mod clock;
pub mod disk;
mod driver;
mod faults;
mod keepalive;
mod liveness;
pub mod net;
mod options;
pub mod profile;
pub mod report;
mod sim;

pub use keepalive::{QUIESCE_WITHIN_ELECTIONS, QUIET_FAILOVER_ELECTIONS};
pub use options::{LIVENESS_CAP_FACTOR, SimOptions};
#[cfg(feature = "planted-bugs")]
pub use options::{PLANTED_BUGS, parse_planted};
pub use report::{SeedReport, SeedStats, Summary, Violation};
pub use sim::{Sim, run_seed};

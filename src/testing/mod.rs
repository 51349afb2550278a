//! The deterministic simulator: many nodes × many raft groups in one thread, driven by
//! one `u64` seed, running the real [`crate::raft`] core.
//!
//! The simulator is the core's driver: it owns per node and group a log with bodies
//! (durable prefix + unsynced suffix), the hard state and a commit checkpoint; applies
//! every outbox per the contract; carries entry bodies in messages; and injects faults
//! (drop, duplicate, delay/reorder, symmetric and one-way partitions, crashes that lose
//! and tear unsynced writes, pauses, disk errors, leadership transfers). Invariants are
//! checked after every step ([`checker`]); after the fault period everything heals and
//! every group must elect a leader and commit new proposals.
//!
//! Entry points: [`run_seed`] for one seed, [`Sim`] for finer control.

pub mod checker;
pub mod client;
pub mod clock;
pub mod disk;
mod driver;
mod faults;
pub mod net;
pub mod profile;
pub mod report;
mod sim;

pub use report::{SeedReport, SeedStats, Summary, Violation};
#[cfg(feature = "planted-bugs")]
pub use sim::{PLANTED_BUGS, parse_planted};
pub use sim::{Sim, SimOptions, run_seed};

//! The sans-IO Raft core: one [`Node`] per group, driven by `tick`, `step`, `propose`
//! and `persisted`, leaving its effects in a caller-owned [`Outbox`].

mod node;
mod types;

pub use node::*;
pub use types::*;

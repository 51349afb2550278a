//! dledger-rs core: the parts of a Raft-replicated commitlog server that do no I/O.
//!
//! - [`raft`]: the sans-IO Raft state machine of one group.
//! - [`store`]: the commitlog record format, segment math and recovery scan.
//! - [`wire`]: frame and message codecs for peers and clients.
//! - [`placement`]: the shard a group lives on (a stable hash of its name).
//! - [`config`]: RocketMQ/DLedger properties parsing and the validated config.
//! - [`testing`]: the deterministic simulator that runs the real core.
//! - [`upgrade`]: adopting a RocketMQ CommitLog or a DLedger 0.3.x store as a group's log.
//!
//! This crate depends on no runtime: no glommio, no sockets, no files. The `shards`
//! crate joins these parts to real disks and networks.

pub mod config;
pub mod placement;
pub mod raft;
pub mod store;
pub mod testing;
pub mod upgrade;
pub mod wire;

//! The dledger server: glommio shards, disk I/O, networking and the CLI.
//!
//! - [`disk`]: the direct-I/O commitlog of one Raft group ([`disk::GroupLog`]).
//! - [`memlock`]: the locked-memory check glommio needs before any executor starts.
//! - [`runtime`]: pinned glommio shards, the cross-shard meshes and the stop signal.
//! - [`net`]: the batched per-(peer, shard) transport.
//! - [`server`]: `dledger server`: group drivers, client service, graceful stop.

pub mod disk;
pub mod memlock;
pub mod net;
pub mod runtime;
pub mod server;

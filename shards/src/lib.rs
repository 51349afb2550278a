//! The dledger server: glommio shards, disk I/O, networking and the CLI.
//!
//! - [`disk`]: the direct-I/O commitlog of one Raft group ([`disk::GroupLog`]).
//! - [`memlock`]: the locked-memory check glommio needs before any executor starts.
//! - [`runtime`]: pinned glommio shards, the cross-shard meshes and the stop signal.
//! - [`net`]: the batched per-(peer, shard) transport.
//! - [`server`]: `dledger server`: group drivers, client service, graceful stop.
//! - [`client`]: the pipelined client of the client protocol (leader discovery, redirects).
//! - [`cli`]: the `dledger` subcommands.

pub mod cli;
pub mod client;
pub mod disk;
pub mod memlock;
pub mod net;
pub mod runtime;
pub mod server;

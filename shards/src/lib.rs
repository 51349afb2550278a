//! The dledger server: glommio shards, disk I/O, networking and the CLI.
//!
//! - [`disk`]: the direct-I/O commitlog of one Raft group ([`disk::GroupLog`]).
//! - [`memlock`]: the locked-memory check glommio needs before any executor starts.
//! - [`runtime`]: pinned glommio shards, the cross-shard meshes and the stop signal.
//! - [`net`]: the batched per-(peer, shard) transport.
//! - [`server`]: `dledger server`: group drivers, client service, graceful stop.
//! - [`client`]: the pipelined client of the client protocol (leader discovery, redirects).
//! - [`cli`]: the `dledger` subcommands.
//! - [`cluster_view`]: the ClusterView exchange and BID rules shared by the CLI, the
//!   name-server registration and the name server.

pub mod cli;
pub mod client;
pub mod cluster_view;
pub mod disk;
pub mod memlock;
pub mod net;
pub mod runtime;
pub mod server;

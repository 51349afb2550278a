//! The dledger server: glommio shards, disk I/O, networking and the CLI.
//!
//! - [`disk`]: the direct-I/O commitlog of one Raft group ([`disk::GroupLog`]).
//! - [`memlock`]: the locked-memory check glommio needs before any executor starts.

pub mod disk;
pub mod memlock;

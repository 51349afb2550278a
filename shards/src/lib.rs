//! The dledger server: glommio shards, disk I/O, networking and the CLI.

pub mod net;
pub mod runtime;

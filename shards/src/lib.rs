//! The dledger server: glommio shards, disk I/O, networking and the CLI.

pub mod cli;
pub mod client;

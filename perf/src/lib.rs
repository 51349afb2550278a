//! `dledger-perf`: harnesses that measure and attack a real dledger cluster.
//!
//! One module per subcommand of the `dledger-perf` binary; `hist`, `table`,
//! `report` and `runtime` are shared by all of them, and `cluster` (real server
//! processes: configs, ports, start/signal/stop, leaders) by bench, chaos and failover.
//!
//! - `disk`: the commitlog store against the raw device ([`disk`]).
//! - `failover`: leader stops under load, failover time and lost appends ([`failover`]).
//! - `chaos`: a real cluster under a seeded nemesis, with a history checker ([`chaos`]).
//! - `bench`: a cluster's append latency and throughput against the floors ([`bench`]).

pub mod bench;
pub mod chaos;
pub mod cluster;
pub mod disk;
pub mod error;
pub mod failover;
pub mod hist;
pub mod report;
pub mod runtime;
pub mod table;

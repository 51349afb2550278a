//! `dledger-perf`: harnesses that measure and attack a real dledger cluster.
//!
//! One module per subcommand of the `dledger-perf` binary; `hist`, `table`,
//! `report` and `runtime` are shared by all of them.
//!
//! - `disk`: the commitlog store against the raw device ([`disk`]).
//! - `bench`: a cluster's append latency and throughput against the floors ([`bench`]).

pub mod bench;
pub mod disk;
pub mod error;
pub mod hist;
pub mod report;
pub mod runtime;
pub mod table;

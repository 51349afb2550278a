//! Every integration test of `dledger-shards`, in one test binary.
//!
//! Each `tests/*.rs` file used to be a crate of its own: 26 binaries that each linked
//! glommio and the server and recompiled the shared helpers, much of CI's build time.
//! Here each former file is one module of the same name (`cargo test -p dledger-shards
//! --test it disk_log::` runs what `--test disk_log` ran), and the helpers are compiled
//! once. New tests belong here, as a module. Cargo finds this binary by itself
//! (`tests/<dir>/main.rs`), so `Cargo.toml` lists nothing: with `autotests = false` and a
//! `[[test]]` entry instead, a new `tests/*.rs` file would silently never be built or run;
//! this way it still runs, as a binary of its own.
//!
//! What used to be separate processes now shares one, with two test threads:
//! - tests that run real server processes hold [`common::serial::servers`] (a
//!   `TestCluster` takes it at its first start): one cluster at a time on a small
//!   machine, as when the binaries ran one after another;
//! - every port a test chooses comes from [`common::ports`], which never hands out a
//!   port twice in this process;
//! - a test that needs process-wide state of its own (signal handlers, a process to
//!   SIGKILL) re-executes this binary for one `#[ignore]`d child test
//!   ([`common::child`]).

mod common;
mod disk_common;
mod import_common;
mod net_support;

mod check_replicas;
mod cluster_basic;
mod cluster_follower;
mod cluster_harness;
mod cluster_leader_kill;
mod cluster_multigroup;
mod cluster_two_node;
mod disk_append_probe;
mod disk_crash;
mod disk_faults;
mod disk_fill;
mod disk_full;
mod disk_log;
mod disk_shared_flush;
mod disk_sync_probe;
mod hostile_input;
mod import_cluster;
mod import_dledger;
mod import_rocketmq;
mod net_latency;
mod net_runtime;
mod net_signal;
mod net_transport;
mod ops_fast_try;
mod ops_metrics;
mod prop_net;
mod server_ports;
mod server_smoke;

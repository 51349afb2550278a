//! `dledger server -c FILE`: the replicated server.
//!
//! - [`run`]: read and validate the config, set up logging, start the shards, wait for
//!   SIGTERM/SIGINT, drain (leadership hand-over, flush) and exit.
//! - `shard`: one shard's groups, peer transport and client service.
//! - `group`: a group's Raft node, log and the driver that applies its outboxes.
//! - `client`: the pipelined client protocol (append, get, metadata).
//! - `peer`: how Raft messages ride in the transport's batch frames.

mod client;
mod group;
pub mod import_gate;
mod metrics;
mod peer;
#[cfg(feature = "planted-bugs")]
pub mod planted;
mod register;
mod reply;
mod shard;

use std::{
    path::Path,
    process::ExitCode,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use dledger::config::{HostPort, NodeConfig, parse_file_contents};
use nix::sys::signal::{SigSet, Signal};

use crate::runtime::{Runtime, RuntimeConfig};

pub use group::{AppendOutcome, Group};
pub use import_gate::{ImportGate, describe_digest, digest_difference, read_import_digest};
pub use peer::{
    Inbound as PeerInbound, PeerItem, ServerPeerCodec, decode_payload as decode_peer_payload,
};
pub(crate) use shard::log_config;
pub use shard::{Listeners, STOP_TRANSFER_WAIT_MS, ShardMsg, Shared};

/// Exit code for a config that does not load.
pub const EXIT_CONFIG: u8 = 2;
/// How long the main thread waits for the shards to drain after a stop signal.
const DRAIN_WAIT_MS: u64 = 3000;

pub(crate) fn host_port(a: std::net::SocketAddr) -> HostPort {
    HostPort {
        host: a.ip().to_string(),
        port: a.port(),
    }
}

/// Runs a node from the config file at `path` until SIGTERM/SIGINT. `log_level` is used
/// when RUST_LOG is not set (default `info`).
pub fn run(path: &Path, log_level: Option<&str>) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("dledger server: cannot read {}: {e}", path.display());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let loaded = match parse_file_contents(&path.display().to_string(), &text) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_tracing(log_level);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    match serve(loaded.config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("dledger server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(log_level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(log_level.unwrap_or("info")));
    // Colour codes only on a terminal: fast-try and tests send stderr to log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // A second init (tests in one process) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// Groups whose size tolerates no failure (two nodes: a majority is both).
fn warn_unfailoverable(cfg: &NodeConfig) {
    for g in &cfg.groups {
        if g.members.len() == 2 {
            tracing::warn!(
                group = %g.name,
                "two-node group: a majority is both nodes, so it cannot fail over; \
                 losing either node stops appends until it returns"
            );
        }
    }
}

fn serve(cfg: NodeConfig) -> Result<(), String> {
    warn_unfailoverable(&cfg);
    // Block the stop signals in every thread (the shards inherit the mask) so the main
    // thread can take them synchronously with sigwait and start an orderly drain.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals
        .thread_block()
        .map_err(|e| format!("cannot block SIGTERM/SIGINT: {e}"))?;
    // Both ports are bound here, once, without SO_REUSEPORT: a second server on the
    // same ports stops now with a clear error instead of sharing them.
    let listeners = Arc::new(Listeners {
        client: crate::net::listen::bind_exclusive(
            client::resolve(&cfg.client_listen)?,
            "clients",
        )?,
        peer: Arc::new(crate::net::listen::bind_exclusive(
            client::resolve(&cfg.peer_listen)?,
            "peers",
        )?),
    });
    register::spawn(&cfg)?;

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let shard_count = cfg.shards.count(cpus) as usize;
    // Raise RLIMIT_MEMLOCK when allowed so every shard gets glommio's full io_memory;
    // otherwise the runtime fits io_memory into the limit there is.
    match crate::memlock::ensure_memlock(shard_count, crate::runtime::DEFAULT_IO_MEMORY_BYTES) {
        Ok(plan) => tracing::debug!(
            limit_bytes = plan.limit_bytes,
            io_memory_bytes = plan.io_memory_bytes,
            "locked-memory limit checked"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot ensure the locked-memory limit"),
    }
    let runtime_cfg = RuntimeConfig {
        shards: Some(shard_count),
        pin: cfg.shards.pin,
        cpus: cfg
            .shards
            .cpu_set
            .as_ref()
            .map(|set| set.iter().map(|&c| c as usize).collect()),
        ..RuntimeConfig::default()
    };
    let shared = Arc::new(Shared::default());
    let node_cfg = Arc::new(cfg);
    metrics::spawn_http(&node_cfg, shared.metrics.clone())?;
    let listeners_to_release = listeners.clone();
    let runtime = {
        let shared = shared.clone();
        Runtime::<Result<(), String>>::start(&runtime_cfg, move |ctx| {
            shard::shard_main(ctx, node_cfg.clone(), shared.clone(), listeners.clone())
        })
        .map_err(|e| format!("cannot start the shards: {e}"))?
    };
    let shard_count = runtime.shard_count();
    let stop = runtime.stop_handle();

    // A stop signal, or a shard that failed to start, asks every shard to drain; once
    // they have (bounded), the runtime stops.
    let _signals = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("dledger-signals".to_owned())
            .spawn(move || {
                if let Ok(signal) = signals.wait() {
                    tracing::info!(?signal, "stop requested: draining");
                }
                shared.request_drain();
            })
            .map_err(|e| format!("cannot start the signal thread: {e}"))?
    };
    let _stopper = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("dledger-stopper".to_owned())
            .spawn(move || {
                shared.wait_for_drain_request();
                let until = Instant::now() + Duration::from_millis(DRAIN_WAIT_MS);
                while shared.drained.load(Ordering::SeqCst) + shared.failed.load(Ordering::SeqCst)
                    < shard_count
                    && Instant::now() < until
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                stop.stop();
            })
            .map_err(|e| format!("cannot start the stopper thread: {e}"))?
    };
    let results = runtime.join().map_err(|e| e.to_string())?;
    // The rings' deferred teardown may keep the sockets listening after exit; a successor
    // started right away must find the ports free.
    crate::net::listen::release(&listeners_to_release.client);
    crate::net::listen::release(&listeners_to_release.peer);
    let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if !failed.is_empty() {
        return Err(failed.join("; "));
    }
    tracing::info!("stopped");
    Ok(())
}

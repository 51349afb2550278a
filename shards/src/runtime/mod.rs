//! Shards: one pinned glommio `LocalExecutor` per OS thread, with bounded cross-shard
//! channels built once at start-up and a stop request every shard observes.
//!
//! ```text
//! Runtime::start(config, shard_main)
//!   ├─ thread "dledger-shard-0"  LocalExecutor (Placement::Fixed(cpus[0]))
//!   │     joins the meshes, creates its task queues, runs shard_main(ShardContext)
//!   ├─ thread "dledger-shard-1"  ...
//!   └─ ...
//! Runtime::join() waits for every shard_main to return (after StopHandle::stop, say).
//! ```
//!
//! Two full meshes connect every pair of shards (bounded, `mesh_channel_capacity` each
//! way): one carries the application's messages (`M`), the other hands accepted peer
//! connections to the shard that must serve them ([`crate::net::PeerHandoff`]). Both
//! are built before any shard runs user code, so the hot path never creates a channel.

mod kick;
mod queues;
mod stop;

use std::future::Future;

use glommio::{
    CpuSet, ExecutorJoinHandle, LocalExecutorBuilder, Placement,
    channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders},
};

use crate::memlock::{MemlockError, ensure_memlock};
pub use kick::{KICK_INTERVAL_MS, kick_all, run_kicked, start_kicker};
pub use queues::{
    BACKGROUND_SHARES, CLIENT_LATENCY_MS, CLIENT_SHARES, REPLICATION_LATENCY_MS,
    REPLICATION_SHARES, TaskQueues,
};
pub use stop::{STOP_POLL_MS, ShardStop, StopHandle, install_signal_handlers};

use crate::net::{PeerHandoff, PeerHandoffMesh};

/// glommio's default `io_memory` per executor; asked for unless memlock allows less.
pub const DEFAULT_IO_MEMORY_BYTES: usize = 10 << 20;
/// Default bound of each cross-shard channel (messages, per direction per shard pair).
pub const DEFAULT_MESH_CHANNEL_CAPACITY: usize = 1024;

/// How many shards to run and where.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Shard count; `None` = the cores this process may run on.
    pub shards: Option<usize>,
    /// Upper bound on the shard count (applied after `shards`/the core count).
    pub shards_max: Option<usize>,
    /// Pin each shard to one CPU (`Placement::Fixed`); off = `Placement::Unbound`.
    pub pin: bool,
    /// CPUs to pin to, shard `i` on `cpus[i % cpus.len()]`; `None` = every online CPU.
    pub cpus: Option<Vec<usize>>,
    /// `io_memory` wanted per shard; reduced to fit RLIMIT_MEMLOCK.
    pub io_memory_bytes: usize,
    /// Bound of every cross-shard channel.
    pub mesh_channel_capacity: usize,
    /// Thread name prefix (the shard id is appended).
    pub thread_name: String,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            shards: None,
            shards_max: None,
            pin: true,
            cpus: None,
            io_memory_bytes: DEFAULT_IO_MEMORY_BYTES,
            mesh_channel_capacity: DEFAULT_MESH_CHANNEL_CAPACITY,
            thread_name: "dledger-shard".to_owned(),
        }
    }
}

/// Why the shards could not start or ended badly.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("runtime config: {0}")]
    Config(String),
    #[error(transparent)]
    Memlock(#[from] MemlockError),
    #[error("cannot list online CPUs: {0}")]
    Cpus(String),
    #[error("cannot start shard {shard}: {reason}")]
    Spawn { shard: usize, reason: String },
    #[error("shard {shard} could not join the cross-shard channels")]
    MeshJoin { shard: usize },
    #[error("shard {shard} failed: {reason}")]
    Shard { shard: usize, reason: String },
    #[error("cannot start the lost-wake-up kicker: {0}")]
    Kicker(String),
}

/// What a shard's main function receives. Lives on (and is bound to) that shard.
#[derive(Debug)]
pub struct ShardContext<M: Send + 'static> {
    /// This shard, in `0..shard_count`.
    pub shard_id: usize,
    pub shard_count: usize,
    /// Application messages to other shards (`send_to`/`try_send_to` by shard id).
    pub mesh_tx: Senders<M>,
    /// Application messages from other shards.
    pub mesh_rx: Receivers<M>,
    /// Channels moving accepted peer connections between shards; taken by
    /// [`crate::net::PeerNet::start`].
    pub handoff: Option<PeerHandoffMesh>,
    pub queues: TaskQueues,
    pub stop: ShardStop,
}

/// A started set of shards.
#[derive(Debug)]
pub struct Runtime<T: Send + 'static> {
    handles: Vec<ExecutorJoinHandle<Result<T, RuntimeError>>>,
    stop: StopHandle,
    io_memory_bytes: usize,
}

impl<T: Send + 'static> Runtime<T> {
    /// Starts the shards, each running `shard_main(its context)` on its own thread.
    pub fn start<M, F, Fut>(config: &RuntimeConfig, shard_main: F) -> Result<Self, RuntimeError>
    where
        M: Send + 'static,
        F: Fn(ShardContext<M>) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let shard_count = shard_count(config)?;
        let placements = placements(config, shard_count)?;
        // One check for the whole process: raise RLIMIT_MEMLOCK if we may, then size each
        // shard's io_memory to fit, or fail saying what to raise.
        let io_memory_bytes = ensure_memlock(shard_count, config.io_memory_bytes)?.io_memory_bytes;
        if config.mesh_channel_capacity == 0 {
            return Err(RuntimeError::Config(
                "mesh_channel_capacity must be at least 1".to_owned(),
            ));
        }
        let app_mesh = MeshBuilder::<M, Full>::full(shard_count, config.mesh_channel_capacity);
        let handoff_mesh =
            MeshBuilder::<PeerHandoff, Full>::full(shard_count, config.mesh_channel_capacity);
        // Before any shard runs: a lost reactor wake-up must not stall a shard forever,
        // whoever runs the executors (the server, the perf disk harness, tests).
        start_kicker().map_err(RuntimeError::Kicker)?;
        let stop = StopHandle::new();
        let mut handles = Vec::with_capacity(shard_count);
        for (shard_id, placement) in placements.into_iter().enumerate() {
            let app_mesh = app_mesh.clone();
            let handoff_mesh = handoff_mesh.clone();
            let stop_handle = stop.clone();
            let shard_main = shard_main.clone();
            let spawned = LocalExecutorBuilder::new(placement)
                .name(&format!("{}-{shard_id}", config.thread_name))
                .io_memory(io_memory_bytes)
                .spawn(move || async move {
                    // Kickable for its whole life (see `kick`): the mesh join below
                    // waits on other threads' wake-ups too.
                    let _kickable = kick::register_current();
                    // Every shard joins both meshes before running user code, so a
                    // `send_to` can never target a shard that is not yet connected.
                    let (mesh_tx, mesh_rx) = app_mesh
                        .join()
                        .await
                        .map_err(|_| RuntimeError::MeshJoin { shard: shard_id })?;
                    let (handoff_tx, handoff_rx) = handoff_mesh
                        .join()
                        .await
                        .map_err(|_| RuntimeError::MeshJoin { shard: shard_id })?;
                    debug_assert_eq!(mesh_tx.peer_id(), handoff_tx.peer_id());
                    let queues = TaskQueues::create();
                    let shard_stop = ShardStop::new();
                    glommio::spawn_local_into(
                        shard_stop.clone().watch(stop_handle),
                        queues.background,
                    )
                    .map_err(|e| RuntimeError::Shard {
                        shard: shard_id,
                        reason: format!("cannot spawn the stop watcher: {e}"),
                    })?
                    .detach();
                    let context = ShardContext {
                        shard_id,
                        shard_count,
                        mesh_tx,
                        mesh_rx,
                        handoff: Some(PeerHandoffMesh {
                            tx: handoff_tx,
                            rx: handoff_rx,
                        }),
                        queues,
                        stop: shard_stop,
                    };
                    Ok(shard_main(context).await)
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    // Shards already started wait in the mesh join for this one: stopping
                    // them is not possible, so fail loudly; the process is exiting anyway.
                    stop.stop();
                    return Err(RuntimeError::Spawn {
                        shard: shard_id,
                        reason: e.to_string(),
                    });
                }
            }
        }
        tracing::info!(
            shard_count,
            io_memory_bytes,
            pin = config.pin,
            "shards started"
        );
        Ok(Self {
            handles,
            stop,
            io_memory_bytes,
        })
    }

    /// The handle that stops every shard of this runtime.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    pub fn shard_count(&self) -> usize {
        self.handles.len()
    }

    /// The `io_memory` each shard got after fitting RLIMIT_MEMLOCK.
    pub fn io_memory_bytes(&self) -> usize {
        self.io_memory_bytes
    }

    /// Waits for every shard to return; the results in shard order.
    pub fn join(self) -> Result<Vec<T>, RuntimeError> {
        let mut results = Vec::with_capacity(self.handles.len());
        let mut first_error = None;
        for (shard, handle) in self.handles.into_iter().enumerate() {
            match handle.join() {
                Ok(Ok(value)) => results.push(value),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(RuntimeError::Shard {
                        shard,
                        reason: e.to_string(),
                    });
                }
            }
        }
        match first_error {
            None => Ok(results),
            Some(e) => Err(e),
        }
    }
}

/// Shard count: configured, else the cores available; capped by `shards_max`.
pub fn shard_count(config: &RuntimeConfig) -> Result<usize, RuntimeError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let wanted = config.shards.unwrap_or(cores);
    let count = config.shards_max.map_or(wanted, |max| wanted.min(max));
    if count == 0 {
        return Err(RuntimeError::Config(
            "the shard count must be at least 1 (shards and shards_max)".to_owned(),
        ));
    }
    Ok(count)
}

fn placements(config: &RuntimeConfig, shard_count: usize) -> Result<Vec<Placement>, RuntimeError> {
    if !config.pin {
        return Ok((0..shard_count).map(|_| Placement::Unbound).collect());
    }
    let cpus = match &config.cpus {
        Some(cpus) if cpus.is_empty() => {
            return Err(RuntimeError::Config("cpus is set but empty".to_owned()));
        }
        Some(cpus) => cpus.clone(),
        None => {
            let online = CpuSet::online().map_err(|e| RuntimeError::Cpus(e.to_string()))?;
            let mut ids: Vec<usize> = online.iter().map(|location| location.cpu).collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() {
                return Err(RuntimeError::Cpus("no online CPU found".to_owned()));
            }
            ids
        }
    };
    if shard_count > cpus.len() {
        tracing::warn!(
            shard_count,
            cpus = cpus.len(),
            "more shards than CPUs: some shards share a CPU"
        );
    }
    Ok((0..shard_count)
        .map(|shard| Placement::Fixed(cpus[shard % cpus.len()]))
        .collect())
}

//! Starting the glommio executor a harness runs on.

use std::future::Future;

use glommio::{LocalExecutorBuilder, Placement};

use dledger_shards::memlock::ensure_memlock;

use crate::error::{PerfError, PerfResult};

/// How to build the harness executor.
#[derive(Debug, Clone, Copy)]
pub struct ExecutorConfig {
    /// Registered I/O buffer arena (glommio `io_memory`) wanted; shrunk to what
    /// RLIMIT_MEMLOCK allows.
    pub io_memory_bytes: usize,
    /// Pin to this CPU; `None` lets the kernel place the thread (the machine is
    /// shared, so pinning is opt-in).
    pub cpu: Option<usize>,
}

/// Runs `make()`'s future to completion on a fresh glommio executor thread,
/// after checking (and if allowed raising) RLIMIT_MEMLOCK with the server's
/// own check, and returns its result.
pub fn run_on_executor<G, F, T>(name: &str, config: ExecutorConfig, make: G) -> PerfResult<T>
where
    G: FnOnce() -> F + Send + 'static,
    F: Future<Output = PerfResult<T>> + 'static,
    T: Send + 'static,
{
    let memlock =
        ensure_memlock(1, config.io_memory_bytes).map_err(|e| PerfError::Memlock(e.to_string()))?;
    let placement = match config.cpu {
        Some(cpu) => Placement::Fixed(cpu),
        None => Placement::Unbound,
    };
    let handle = LocalExecutorBuilder::new(placement)
        .name(name)
        .io_memory(memlock.io_memory_bytes)
        .spawn(make)
        .map_err(|e| PerfError::Executor(format!("starting {name}: {e}")))?;
    handle
        .join()
        .map_err(|e| PerfError::Executor(format!("{name} stopped: {e}")))?
}

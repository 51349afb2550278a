//! Starting the glommio executor a harness runs on.

use std::future::Future;

use glommio::{LocalExecutorBuilder, Placement};

use crate::error::{PerfError, PerfResult};
use crate::memlock::ensure_memlock;

/// How to build the harness executor.
#[derive(Debug, Clone, Copy)]
pub struct ExecutorConfig {
    /// Registered I/O buffer arena (glommio `io_memory`).
    pub io_memory_bytes: usize,
    /// Pin to this CPU; `None` lets the kernel place the thread (the machine is
    /// shared, so pinning is opt-in).
    pub cpu: Option<usize>,
}

/// Runs `make()`'s future to completion on a fresh glommio executor thread,
/// after checking locked memory, and returns its result.
pub fn run_on_executor<G, F, T>(name: &str, config: ExecutorConfig, make: G) -> PerfResult<T>
where
    G: FnOnce() -> F + Send + 'static,
    F: Future<Output = PerfResult<T>> + 'static,
    T: Send + 'static,
{
    ensure_memlock(config.io_memory_bytes, 1)?;
    let placement = match config.cpu {
        Some(cpu) => Placement::Fixed(cpu),
        None => Placement::Unbound,
    };
    let handle = LocalExecutorBuilder::new(placement)
        .name(name)
        .io_memory(config.io_memory_bytes)
        .spawn(make)
        .map_err(|e| PerfError::Executor(format!("starting {name}: {e}")))?;
    handle
        .join()
        .map_err(|e| PerfError::Executor(format!("{name} stopped: {e}")))?
}

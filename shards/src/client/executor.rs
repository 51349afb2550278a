//! Running client code from ordinary (blocking) code: a glommio `LocalExecutor` on the
//! calling thread, after the locked-memory check glommio needs
//! ([`crate::memlock::ensure_memlock`]).
//!
//! The client does no direct file I/O, so it asks glommio for the smallest registered
//! I/O memory.

use std::future::Future;

use glommio::{LocalExecutorBuilder, Placement};

use crate::memlock::{IO_MEMORY_MIN_BYTES, ensure_memlock, memlock_needed_bytes};

/// Registered I/O memory for a client executor (glommio's minimum; no DMA files here).
pub const CLIENT_IO_MEMORY_BYTES: usize = IO_MEMORY_MIN_BYTES;

/// Locked memory one client executor needs.
pub fn client_memlock_bytes() -> u64 {
    memlock_needed_bytes(1, CLIENT_IO_MEMORY_BYTES)
}

/// Makes sure `RLIMIT_MEMLOCK` lets one client executor start (raising the soft limit
/// when allowed); returns the I/O memory to build it with. The error says what is set,
/// what is needed and how to fix it.
pub fn check_memlock() -> Result<usize, String> {
    ensure_memlock(1, CLIENT_IO_MEMORY_BYTES)
        .map(|plan| plan.io_memory_bytes)
        .map_err(|e| e.to_string())
}

/// Runs `make_future()` to completion on a new glommio executor on this thread (not
/// pinned, kicked out of a lost wake-up like the server's shards: see
/// [`crate::runtime::run_kicked`]) and returns its output. Must not be called from inside an executor.
pub fn block_on<T, F, Fut>(name: &str, make_future: F) -> Result<T, String>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let io_memory_bytes = check_memlock()?;
    let ex = LocalExecutorBuilder::new(Placement::Unbound)
        .name(name)
        .io_memory(io_memory_bytes)
        .make()
        .map_err(|e| format!("starting a glommio executor: {e}"))?;
    crate::runtime::run_kicked(&ex, make_future())
}

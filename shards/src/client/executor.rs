//! Running client code from ordinary (blocking) code: a glommio `LocalExecutor` on the
//! calling thread, after checking the locked-memory limit glommio needs.
//!
//! The client does no direct file I/O, so it asks glommio for the smallest registered
//! I/O memory; the check below is the client's own minimal one (the server's start-up
//! sizes memory for many shards itself).

use std::future::Future;

use glommio::{LocalExecutorBuilder, Placement};
use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// glommio refuses to start an executor below this `RLIMIT_MEMLOCK` (its own floor).
const GLOMMIO_MEMLOCK_FLOOR_BYTES: u64 = 512 << 10;
/// Registered I/O memory for a client executor (glommio's minimum; no DMA files here).
pub const CLIENT_IO_MEMORY_BYTES: usize = 64 << 10;
/// glommio registers the I/O memory with each of its three rings.
const RINGS_PER_EXECUTOR: u64 = 3;

/// Locked memory one client executor needs.
pub fn client_memlock_bytes() -> u64 {
    GLOMMIO_MEMLOCK_FLOOR_BYTES + RINGS_PER_EXECUTOR * CLIENT_IO_MEMORY_BYTES as u64
}

/// Makes sure `RLIMIT_MEMLOCK` lets one client executor start, raising the soft limit
/// toward the hard one when needed. The error says what is set, what is needed and how
/// to fix it.
pub fn check_memlock() -> Result<(), String> {
    let needed = client_memlock_bytes();
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_MEMLOCK).map_err(|e| format!("reading RLIMIT_MEMLOCK: {e}"))?;
    if soft >= needed {
        return Ok(());
    }
    let raised = needed.min(hard);
    if raised >= needed && setrlimit(Resource::RLIMIT_MEMLOCK, raised, hard).is_ok() {
        return Ok(());
    }
    Err(format!(
        "RLIMIT_MEMLOCK is {soft} bytes (hard limit {hard}) but a glommio executor needs at \
         least {needed} bytes. Fix: `ulimit -l unlimited` (or a value >= {} KiB) in the \
         starting shell, or `* - memlock unlimited` in /etc/security/limits.conf",
        needed.div_ceil(1024)
    ))
}

/// Runs `make_future()` to completion on a new glommio executor on this thread (not
/// pinned) and returns its output. Must not be called from inside an executor.
pub fn block_on<T, F, Fut>(name: &str, make_future: F) -> Result<T, String>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    check_memlock()?;
    let ex = LocalExecutorBuilder::new(Placement::Unbound)
        .name(name)
        .io_memory(CLIENT_IO_MEMORY_BYTES)
        .make()
        .map_err(|e| format!("starting a glommio executor: {e}"))?;
    Ok(ex.run(make_future()))
}

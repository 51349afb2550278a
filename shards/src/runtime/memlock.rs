//! Size glommio's `io_memory` to what RLIMIT_MEMLOCK allows.
//!
//! glommio 0.9 refuses to start an executor when RLIMIT_MEMLOCK is below 512 KiB, and
//! registers its `io_memory` buffer area (rounded up to 4 KiB, at least 64 KiB) with each
//! of its three rings (main, latency, poll). When registration fails it only logs a
//! warning and silently uses unregistered buffers, so the budget is checked here instead:
//! every executor is charged three times its `io_memory`, plus a fixed reserve for the
//! ring memory itself, and the per-shard share of the limit caps the size.
//!
//! (The disk layer's `ensure_memlock` raises the soft limit; this module only reads the
//! limit and computes sizes, and raises the soft limit to the hard one when it can.)

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// glommio's own minimum; below it `LocalExecutorBuilder::spawn` fails.
pub const GLOMMIO_MIN_MEMLOCK_BYTES: u64 = 512 * 1024;
/// glommio rounds `io_memory` up to at least this.
pub const GLOMMIO_MIN_IO_MEMORY_BYTES: usize = 64 * 1024;
/// Each executor registers its buffer area with this many rings.
pub const RINGS_PER_EXECUTOR: u64 = 3;
/// Locked memory kept aside per executor for the rings themselves (SQ/CQ arrays).
pub const RING_RESERVE_BYTES_PER_EXECUTOR: u64 = 256 * 1024;

/// Why the locked-memory limit cannot host the shards.
#[derive(Debug, thiserror::Error)]
pub enum MemlockError {
    #[error("cannot read RLIMIT_MEMLOCK: {0}")]
    Read(nix::Error),
    #[error(
        "RLIMIT_MEMLOCK is {limit_bytes} bytes; glommio needs at least {GLOMMIO_MIN_MEMLOCK_BYTES} \
         (raise it with `ulimit -l` or LimitMEMLOCK= in the service unit)"
    )]
    TooLow { limit_bytes: u64 },
}

/// Reads RLIMIT_MEMLOCK, first raising the soft limit to the hard limit when it is lower
/// (allowed without privileges). Returns the soft limit in bytes (`u64::MAX` = unlimited).
pub fn memlock_limit_bytes() -> Result<u64, MemlockError> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_MEMLOCK).map_err(MemlockError::Read)?;
    if soft < hard && setrlimit(Resource::RLIMIT_MEMLOCK, hard, hard).is_ok() {
        return Ok(hard);
    }
    Ok(soft)
}

/// The `io_memory` each of `shard_count` executors may register under `limit_bytes`,
/// never above `wanted_bytes`, a multiple of 4 KiB.
pub fn io_memory_bytes_for(
    limit_bytes: u64,
    shard_count: usize,
    wanted_bytes: usize,
) -> Result<usize, MemlockError> {
    assert!(shard_count > 0, "a runtime has at least one shard");
    if limit_bytes < GLOMMIO_MIN_MEMLOCK_BYTES {
        return Err(MemlockError::TooLow { limit_bytes });
    }
    let per_shard = limit_bytes / shard_count as u64;
    let for_buffers =
        per_shard.saturating_sub(RING_RESERVE_BYTES_PER_EXECUTOR) / RINGS_PER_EXECUTOR;
    let allowed = usize::try_from(for_buffers).unwrap_or(usize::MAX);
    let sized = wanted_bytes.min(allowed) & !4095;
    // Below glommio's floor it rounds up anyway; registration may then fail and glommio
    // falls back to unregistered buffers (slower, still correct).
    if sized < GLOMMIO_MIN_IO_MEMORY_BYTES {
        tracing::warn!(
            limit_bytes,
            shard_count,
            "RLIMIT_MEMLOCK leaves under 64 KiB of io_memory per shard; \
             io_uring buffers will not be registered"
        );
        return Ok(GLOMMIO_MIN_IO_MEMORY_BYTES);
    }
    Ok(sized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_three_rings_per_shard_in_the_limit() {
        let limit = 8 * 1024 * 1024;
        for shards in 1..=8 {
            let io = io_memory_bytes_for(limit, shards, 10 << 20).expect("8 MiB is enough");
            assert_eq!(io % 4096, 0);
            let charged = shards as u64 * (3 * io as u64 + RING_RESERVE_BYTES_PER_EXECUTOR);
            assert!(
                io == GLOMMIO_MIN_IO_MEMORY_BYTES || charged <= limit,
                "{shards} shards"
            );
        }
    }

    #[test]
    fn never_above_what_was_asked() {
        assert_eq!(
            io_memory_bytes_for(u64::MAX, 4, 1 << 20).ok(),
            Some(1 << 20)
        );
    }

    #[test]
    fn below_glommio_minimum_is_an_error() {
        assert!(matches!(
            io_memory_bytes_for(64 * 1024, 1, 1 << 20),
            Err(MemlockError::TooLow { limit_bytes: 65536 })
        ));
    }
}

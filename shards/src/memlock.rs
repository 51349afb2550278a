//! The locked-memory check glommio needs before any executor starts.
//!
//! glommio refuses to start an executor when `RLIMIT_MEMLOCK` is below 512 KiB, and
//! registers its `io_memory` buffer pool with each of its three io_uring rings; when
//! that registration fails it only logs a warning and silently falls back to slower,
//! unregistered buffers. So the limit is checked (and raised when allowed) up front,
//! and the `io_memory` handed to the executors is sized to what the limit allows.

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use thiserror::Error;

/// glommio's own floor per executor.
pub const EXECUTOR_MEMLOCK_MIN_BYTES: u64 = 512 << 10;
/// glommio rounds a smaller `io_memory` up to this.
pub const IO_MEMORY_MIN_BYTES: usize = 64 << 10;
/// Rings per executor that register the `io_memory` pool (main, latency, poll).
const RINGS_PER_EXECUTOR: u64 = 3;

/// The outcome of [`ensure_memlock`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemlockPlan {
    /// The soft `RLIMIT_MEMLOCK` found at start.
    pub limit_before_bytes: u64,
    /// The soft limit now in force (raised when it was too low and we could).
    pub limit_bytes: u64,
    /// The `io_memory` each executor should be built with (`<=` the one asked for).
    pub io_memory_bytes: usize,
}

/// Why the locked-memory limit cannot serve the executors.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MemlockError {
    #[error(
        "RLIMIT_MEMLOCK is {current_bytes} bytes but {executors} glommio executor(s) need at \
         least {needed_bytes} bytes ({per_executor_bytes} each: 512 KiB plus 3 x io_memory \
         of at least 64 KiB), and raising it failed: {raise_error}. Fix: run with a higher \
         limit, e.g. `ulimit -l unlimited` in the starting shell, `LimitMEMLOCK=infinity` \
         in the systemd unit, or `* - memlock unlimited` in /etc/security/limits.conf"
    )]
    TooLow {
        current_bytes: u64,
        needed_bytes: u64,
        per_executor_bytes: u64,
        executors: usize,
        raise_error: String,
    },
    #[error("reading RLIMIT_MEMLOCK failed: {0}")]
    Read(String),
    #[error("executors must be at least 1")]
    NoExecutors,
}

/// Locked memory needed by `executors` executors with `io_memory_bytes` each.
pub fn memlock_needed_bytes(executors: usize, io_memory_bytes: usize) -> u64 {
    let io = io_memory_bytes.max(IO_MEMORY_MIN_BYTES) as u64;
    (executors as u64).saturating_mul(EXECUTOR_MEMLOCK_MIN_BYTES + RINGS_PER_EXECUTOR * io)
}

/// The largest `io_memory` (4 KiB multiple, at most `wanted`) that `limit_bytes`
/// allows for `executors` executors, or `None` when not even the minimum fits.
pub fn io_memory_that_fits(limit_bytes: u64, executors: usize, wanted: usize) -> Option<usize> {
    let per_executor = limit_bytes / (executors.max(1) as u64);
    let spare = per_executor.checked_sub(EXECUTOR_MEMLOCK_MIN_BYTES)?;
    let io = (spare / RINGS_PER_EXECUTOR) & !4095;
    let io = usize::try_from(io).unwrap_or(usize::MAX).min(wanted);
    (io >= IO_MEMORY_MIN_BYTES).then_some(io)
}

/// Makes sure `RLIMIT_MEMLOCK` can hold `executors` executors with `io_memory_bytes`
/// of registered I/O memory each.
///
/// When the soft limit is too low it is raised (up to the hard limit, or beyond it
/// when the process may, e.g. as root). When it still cannot hold the requested
/// `io_memory`, the plan shrinks `io_memory` to what fits; when not even glommio's
/// minimum fits, the error says the current value, what is needed and how to fix it.
pub fn ensure_memlock(
    executors: usize,
    io_memory_bytes: usize,
) -> Result<MemlockPlan, MemlockError> {
    if executors == 0 {
        return Err(MemlockError::NoExecutors);
    }
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_MEMLOCK).map_err(|e| MemlockError::Read(e.to_string()))?;
    let wanted = memlock_needed_bytes(executors, io_memory_bytes);
    let mut limit = soft;
    let mut raise_error = String::from("no attempt needed");
    if soft < wanted {
        // First try the full amount (needs CAP_SYS_RESOURCE when above the hard
        // limit), then whatever the hard limit allows.
        let new_hard = hard.max(wanted);
        match setrlimit(Resource::RLIMIT_MEMLOCK, wanted, new_hard) {
            Ok(()) => limit = wanted,
            Err(e) => {
                raise_error = format!("setrlimit({wanted}) failed: {e}");
                if hard > soft && setrlimit(Resource::RLIMIT_MEMLOCK, hard, hard).is_ok() {
                    limit = hard;
                }
            }
        }
        if limit != soft {
            tracing::info!(
                from_bytes = soft,
                to_bytes = limit,
                "raised RLIMIT_MEMLOCK for glommio"
            );
        }
    }
    let Some(io_memory) = io_memory_that_fits(limit, executors, io_memory_bytes.max(1)) else {
        let minimum = memlock_needed_bytes(executors, IO_MEMORY_MIN_BYTES);
        return Err(MemlockError::TooLow {
            current_bytes: limit,
            needed_bytes: minimum,
            per_executor_bytes: minimum / executors as u64,
            executors,
            raise_error,
        });
    };
    if io_memory < io_memory_bytes {
        tracing::warn!(
            limit_bytes = limit,
            asked_bytes = io_memory_bytes,
            io_memory_bytes = io_memory,
            "RLIMIT_MEMLOCK too low for the requested glommio io_memory; using less"
        );
    }
    Ok(MemlockPlan {
        limit_before_bytes: soft,
        limit_bytes: limit,
        io_memory_bytes: io_memory.max(IO_MEMORY_MIN_BYTES),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needed_grows_with_executors_and_io_memory() {
        assert_eq!(memlock_needed_bytes(1, 0), (512 << 10) + 3 * (64 << 10));
        assert_eq!(
            memlock_needed_bytes(2, 1 << 20),
            2 * ((512 << 10) + 3 * (1 << 20))
        );
    }

    #[test]
    fn io_memory_fits_the_limit() {
        // 8 MiB for 2 executors: (4 MiB - 512 KiB) / 3, rounded down to 4 KiB.
        let io = io_memory_that_fits(8 << 20, 2, 10 << 20).unwrap();
        assert_eq!(io, (((4 << 20) - (512 << 10)) / 3) & !4095);
        assert!(memlock_needed_bytes(2, io) <= 8 << 20);
        // Asking for less than fits gives what was asked.
        assert_eq!(io_memory_that_fits(8 << 20, 1, 1 << 20), Some(1 << 20));
        // Too small a limit fits nothing.
        assert_eq!(io_memory_that_fits(600 << 10, 1, 1 << 20), None);
    }

    #[test]
    fn ensure_memlock_gives_a_plan_that_fits_the_limit_in_force() {
        let plan = ensure_memlock(1, 1 << 20).unwrap();
        assert!(plan.limit_bytes >= memlock_needed_bytes(1, plan.io_memory_bytes));
        let (soft, _) = getrlimit(Resource::RLIMIT_MEMLOCK).unwrap();
        assert_eq!(soft, plan.limit_bytes);
        assert_eq!(ensure_memlock(0, 1), Err(MemlockError::NoExecutors));
    }
}

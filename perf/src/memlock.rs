//! Locked-memory check before glommio starts.
//!
//! glommio registers its `io_memory` arena with each of its three io_uring
//! rings, and the kernel charges every registration against RLIMIT_MEMLOCK
//! (unless the process holds CAP_IPC_LOCK). When registration fails glommio only
//! logs a warning and silently falls back to unregistered buffers, which would
//! skew every figure this harness prints, so the limit is checked (and raised
//! when allowed) up front and a run that cannot get it fails with a clear error.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::error::{PerfError, PerfResult};

/// Rings per glommio executor that register the `io_memory` arena.
const RINGS_PER_EXECUTOR: u64 = 3;
/// glommio refuses to start below this limit.
const GLOMMIO_MEMLOCK_MIN_BYTES: u64 = 512 * 1024;

/// What the check found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemlockStatus {
    /// Soft limit before the check.
    pub soft_before_bytes: u64,
    /// Soft limit after the check (raised when it was too low).
    pub soft_after_bytes: u64,
    /// What `executors` executors with `io_memory_bytes` each need.
    pub needed_bytes: u64,
    /// The limit stayed too low, but CAP_IPC_LOCK exempts the registrations.
    pub exempt_by_cap_ipc_lock: bool,
}

/// Locked memory needed by `executors` executors with `io_memory_bytes` each.
pub fn memlock_needed_bytes(io_memory_bytes: usize, executors: u64) -> u64 {
    let per_executor = (io_memory_bytes as u64).saturating_mul(RINGS_PER_EXECUTOR);
    per_executor
        .max(GLOMMIO_MEMLOCK_MIN_BYTES)
        .saturating_mul(executors.max(1))
}

/// Makes sure glommio's buffer registration for `executors` executors with
/// `io_memory_bytes` each will succeed: either RLIMIT_MEMLOCK covers it
/// (raising the soft limit, and with the privilege the hard one, when
/// needed), or the process holds CAP_IPC_LOCK, which exempts io_uring
/// registrations from the limit. Fails with [`PerfError::Memlock`] otherwise.
pub fn ensure_memlock(io_memory_bytes: usize, executors: u64) -> PerfResult<MemlockStatus> {
    let needed_bytes = memlock_needed_bytes(io_memory_bytes, executors);
    let (soft, hard) = getrlimit(Resource::RLIMIT_MEMLOCK).map_err(|e| PerfError::Memlock {
        soft_bytes: 0,
        hard_bytes: 0,
        needed_bytes,
        reason: format!("getrlimit failed: {e}"),
    })?;
    let unchanged = MemlockStatus {
        soft_before_bytes: soft,
        soft_after_bytes: soft,
        needed_bytes,
        exempt_by_cap_ipc_lock: false,
    };
    // RLIM_INFINITY is u64::MAX, so plain comparisons handle it.
    if soft >= needed_bytes {
        return Ok(unchanged);
    }
    let raised = setrlimit(
        Resource::RLIMIT_MEMLOCK,
        needed_bytes,
        hard.max(needed_bytes),
    );
    match raised {
        Ok(()) => Ok(MemlockStatus {
            soft_after_bytes: needed_bytes,
            ..unchanged
        }),
        // glommio itself insists on its minimum even when registration is exempt.
        Err(_) if soft >= GLOMMIO_MEMLOCK_MIN_BYTES && has_cap_ipc_lock() => Ok(MemlockStatus {
            exempt_by_cap_ipc_lock: true,
            ..unchanged
        }),
        Err(e) => Err(PerfError::Memlock {
            soft_bytes: soft,
            hard_bytes: hard,
            needed_bytes,
            reason: format!(
                "setrlimit to {needed_bytes} failed ({e}) and CAP_IPC_LOCK is not held"
            ),
        }),
    }
}

/// Capability number of CAP_IPC_LOCK (linux/capability.h).
const CAP_IPC_LOCK: u32 = 14;

/// Whether the effective capability set holds CAP_IPC_LOCK, read from
/// `/proc/self/status` (`CapEff:` is a hexadecimal bit mask). Any failure to
/// read or parse it counts as "not held".
fn has_cap_ipc_lock() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << CAP_IPC_LOCK) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn need_counts_three_rings_and_the_floor() {
        assert_eq!(memlock_needed_bytes(4 << 20, 1), 12 << 20);
        assert_eq!(memlock_needed_bytes(4 << 20, 2), 24 << 20);
        assert_eq!(memlock_needed_bytes(0, 1), GLOMMIO_MEMLOCK_MIN_BYTES);
    }
}

//! Test seam: make the commitlog's writes or syncs fail on demand.
//!
//! There is no device-mapper on the test machines, so fault tests cannot make the real
//! device fail. Instead the commitlog asks this injector before each data write and
//! each sync; when it says "fail", the call is not issued and an EIO error takes its
//! place, going through exactly the error path a real failure takes. Production
//! configs leave [`super::LogConfig::fault`] at `None`, which costs one branch per I/O.

use std::cell::Cell;

/// Counts data writes and syncs, and fails the ones selected.
#[derive(Debug, Default)]
pub struct FaultInjector {
    writes_seen: Cell<u64>,
    syncs_seen: Cell<u64>,
    /// Fail every write once this many writes went through (`None`: never).
    fail_writes_after: Cell<Option<u64>>,
    /// Fail every sync once this many syncs went through (`None`: never).
    fail_syncs_after: Cell<Option<u64>>,
}

impl FaultInjector {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, fail every data write after `n` more succeed.
    pub fn fail_writes_after(&self, n: u64) {
        self.fail_writes_after
            .set(Some(self.writes_seen.get().saturating_add(n)));
    }

    /// From now on, fail every sync after `n` more succeed.
    pub fn fail_syncs_after(&self, n: u64) {
        self.fail_syncs_after
            .set(Some(self.syncs_seen.get().saturating_add(n)));
    }

    pub fn writes_seen(&self) -> u64 {
        self.writes_seen.get()
    }

    pub fn syncs_seen(&self) -> u64 {
        self.syncs_seen.get()
    }

    /// Called before a data write: `Err` means "act as if the device failed it".
    pub(crate) fn before_write(&self) -> std::io::Result<()> {
        Self::check(&self.writes_seen, &self.fail_writes_after, "write")
    }

    /// Called before a sync: `Err` means "act as if the device failed it".
    pub(crate) fn before_sync(&self) -> std::io::Result<()> {
        Self::check(&self.syncs_seen, &self.fail_syncs_after, "sync")
    }

    fn check(seen: &Cell<u64>, limit: &Cell<Option<u64>>, what: &str) -> std::io::Result<()> {
        if let Some(limit) = limit.get() {
            if seen.get() >= limit {
                return Err(std::io::Error::from_raw_os_error(nix::libc::EIO)).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("injected {what} failure: {e}"))
                });
            }
        }
        seen.set(seen.get() + 1);
        Ok(())
    }
}

//! Disk usage (statvfs) and the retention rule: which old segments may go.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::error::DiskError;

/// Fraction of the file system holding `path` that is in use, as seen by an
/// unprivileged writer: `(blocks - available) / blocks`.
pub fn disk_used_ratio(path: &Path) -> Result<f64, DiskError> {
    let st = nix::sys::statvfs::statvfs(path).map_err(|e| DiskError::io("statvfs", path, e))?;
    let blocks = st.blocks() as f64;
    if blocks <= 0.0 {
        return Ok(0.0);
    }
    Ok(((blocks - st.blocks_available() as f64) / blocks).clamp(0.0, 1.0))
}

/// The local hour of day (0–23) of `now`, for DLedger's `deleteWhen`.
pub(crate) fn local_hour(now: SystemTime) -> u8 {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let t = nix::libc::time_t::try_from(secs).unwrap_or(nix::libc::time_t::MAX);
    let mut tm = std::mem::MaybeUninit::<nix::libc::tm>::zeroed();
    // SAFETY: `t` and `tm` are valid for the call; localtime_r writes only into `tm`
    // and returns null on failure, in which case `tm` stays zeroed (hour 0).
    let ok = unsafe { !nix::libc::localtime_r(&t, tm.as_mut_ptr()).is_null() };
    if !ok {
        return ((secs / 3600) % 24) as u8;
    }
    // SAFETY: zero-initialized and, on success, filled by localtime_r.
    let tm = unsafe { tm.assume_init() };
    u8::try_from(tm.tm_hour).unwrap_or(0)
}

/// The inputs of one retention decision.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetentionRule {
    pub file_reserved: Duration,
    pub ratio_check_expired: f64,
    pub ratio_force_clean: f64,
    pub delete_when_hour: u8,
}

impl RetentionRule {
    /// DLedger's rule: an expired segment goes at `deleteWhen` or when the disk is
    /// above the check-expired ratio; any old segment goes when it is above the
    /// force-clean ratio.
    pub(crate) fn should_delete(
        &self,
        segment_age: Duration,
        used_ratio: f64,
        now_hour: u8,
    ) -> bool {
        let expired = segment_age >= self.file_reserved;
        (expired && (now_hour == self.delete_when_hour || used_ratio >= self.ratio_check_expired))
            || used_ratio >= self.ratio_force_clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_rule_follows_dledger() {
        let r = RetentionRule {
            file_reserved: Duration::from_secs(72 * 3600),
            ratio_check_expired: 0.70,
            ratio_force_clean: 0.85,
            delete_when_hour: 4,
        };
        let old = Duration::from_secs(73 * 3600);
        let young = Duration::from_secs(3600);
        assert!(r.should_delete(old, 0.1, 4));
        assert!(!r.should_delete(old, 0.1, 5));
        assert!(r.should_delete(old, 0.75, 5));
        assert!(!r.should_delete(young, 0.75, 4));
        assert!(r.should_delete(young, 0.86, 5));
    }

    #[test]
    fn used_ratio_is_a_fraction() {
        let r = disk_used_ratio(Path::new("/")).unwrap();
        assert!((0.0..=1.0).contains(&r));
        assert!(local_hour(SystemTime::now()) < 24);
    }
}

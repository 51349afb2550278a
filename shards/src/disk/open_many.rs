//! Opening many groups' logs at start-up, a bounded number at a time.
//!
//! One open is mostly waits (directory syncs, the first segment's zero-fill and sync,
//! metadata writes); opening groups one after another leaves the device idle between
//! them. A few at once overlap those waits; the bound keeps the DMA buffers, open files
//! and the device queue that start-up uses small.

use super::{DiskError, GroupLog, LogConfig};

/// Groups opened at once by [`open_logs`] by default.
pub const OPEN_CONCURRENCY_DEFAULT: usize = 8;

/// Opens every log in `configs`, at most `concurrency` (at least 1) at a time, and
/// returns the results in the order of `configs`. Stops starting new opens after the
/// first failure (the ones in flight finish); the result then holds fewer entries
/// than `configs`, the last of them the error. Must run inside a glommio executor.
pub async fn open_logs(
    configs: Vec<LogConfig>,
    concurrency: usize,
) -> Vec<Result<GroupLog, DiskError>> {
    let concurrency = concurrency.max(1);
    let mut results = Vec::with_capacity(configs.len());
    let mut pending = configs.into_iter().peekable();
    while pending.peek().is_some() {
        let batch: Vec<_> = pending
            .by_ref()
            .take(concurrency)
            .map(|cfg| glommio::spawn_local(GroupLog::open(cfg)))
            .collect();
        let mut failed = false;
        for task in batch {
            let result = task.await;
            failed |= result.is_err();
            results.push(result);
        }
        if failed {
            // Keep the failure last: the caller reports it and drops the rest.
            if let Some(at) = results.iter().position(|r| r.is_err()) {
                results.truncate(at + 1);
            }
            break;
        }
    }
    results
}

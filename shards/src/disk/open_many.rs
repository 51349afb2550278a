//! Opening many groups' logs at start-up, a bounded number at a time.
//!
//! One open is mostly waits (a directory sync for a new group, file reads, the scan);
//! opening groups one after another leaves the device idle between them. Many at once
//! overlap those waits (and let one journal commit cover several groups' directory
//! syncs); the bound keeps the open files, buffers and the device queue that start-up
//! uses small. A new group's first segment is zero-filled in the background after its
//! open (see `GroupLog::open`), so it does not count against this bound.

use std::{cell::Cell, rc::Rc};

use glommio::sync::Semaphore;

use super::{DiskError, GroupLog, LogConfig};

/// Groups opened at once by [`open_logs`] by default.
pub const OPEN_CONCURRENCY_DEFAULT: usize = 32;

/// Opens every log in `configs`, at most `concurrency` (at least 1) at a time (a new
/// open starts as soon as one ends), and returns the results in the order of
/// `configs`. Stops starting new opens after the first failure (the ones in flight
/// finish); the result then holds fewer entries than `configs`, the last of them the
/// error. Must run inside a glommio executor.
pub async fn open_logs(
    configs: Vec<LogConfig>,
    concurrency: usize,
) -> Vec<Result<GroupLog, DiskError>> {
    let permits = Rc::new(Semaphore::new(concurrency.max(1) as u64));
    let failed = Rc::new(Cell::new(false));
    let tasks: Vec<_> = configs
        .into_iter()
        .map(|cfg| {
            let (permits, failed) = (permits.clone(), failed.clone());
            glommio::spawn_local(async move {
                // The semaphore is never closed, so the permit always comes.
                let _permit = permits.acquire_permit(1).await.ok()?;
                if failed.get() {
                    return None;
                }
                let opened = GroupLog::open(cfg).await;
                failed.set(failed.get() || opened.is_err());
                Some(opened)
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Some(result) = task.await {
            results.push(result);
        }
    }
    // Keep the first failure last: the caller reports it and drops the rest.
    if let Some(at) = results.iter().position(|r| r.is_err()) {
        results.truncate(at + 1);
    }
    results
}

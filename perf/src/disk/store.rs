//! (b) and (c): the store's durable append latency and group-commit throughput.
//!
//! A fresh [`GroupLog`] with the shipped defaults ([`LogConfig::new`]: SYNC_FLUSH,
//! the default sync method and segment size; only the disk-usage write limit is
//! lifted, see [`StoreBench::open`]) is opened under `DIR/store-bench`.
//! Each measurement runs `concurrency` tasks on the one executor; each task
//! loops `append(one record)` then `wait_durable(its index)` and records that
//! whole time, so a sample is what a client of the log waits for a durable
//! append. Records per flush come from the log's own counters
//! ([`GroupLog::stats`]). Measurements run in slices ([`StoreBench::slice`])
//! that the caller interleaves with the raw baseline's.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use dledger_shards::disk::{GroupLog, LogConfig};

use super::raw::BYTES_PER_MB;
use crate::error::{PerfError, PerfResult};
use crate::hist::{LatencyHistogram, LatencySummary};

/// `dLegerSelfId` of the benchmark logs.
pub const SELF_ID: &str = "perf";
/// Term of every appended record: one leader for the whole run.
pub const TERM: u64 = 1;
/// Directory under DIR holding the append benchmark's log (removed after the run).
const STORE_ROOT_NAME: &str = "store-bench";
/// Group name of the append benchmark's log.
const GROUP: &str = "append";
/// Longest wait for the fresh log's background segment preparation.
const SEGMENT_PREPARE_WAIT_MAX: Duration = Duration::from_secs(60);
/// How often that wait looks at the log's counters.
const SEGMENT_PREPARE_POLL: Duration = Duration::from_millis(20);
/// Unrecorded appends before each phase, per task.
const WARMUP_APPENDS_PER_TASK: u32 = 8;

/// One append phase's figures.
#[derive(Debug, Clone, Copy)]
pub struct AppendPhase {
    /// Tasks appending at once.
    pub concurrency: usize,
    /// Durable appends completed (records).
    pub records: u64,
    /// Wall time from the first timed append to the last completion.
    pub elapsed: Duration,
    /// Latency of append + wait until durable.
    pub latency: LatencySummary,
    /// Records made durable per device flush in this phase.
    pub records_per_flush: f64,
    /// Payload bytes per record.
    pub record_bytes: usize,
    /// Mean wall time per device flush spent waiting for data writes and for the
    /// flush itself (µs), from the log's counters: where a round's time goes.
    pub write_wait_us_per_flush: f64,
    pub sync_wait_us_per_flush: f64,
    /// Segments zero-filled or reused while this concurrency's slices ran (the
    /// zero-filling competes with the appends for the device).
    pub segments_prepared: u64,
}

impl AppendPhase {
    /// Durable appends per second.
    pub fn records_per_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }

    /// Durable payload bandwidth, 10^6 bytes per second.
    pub fn mb_per_s(&self) -> f64 {
        self.records_per_s() * self.record_bytes as f64 / BYTES_PER_MB
    }
}

/// Wraps a store error with what was being done.
pub fn store_error(what: &str, e: impl std::fmt::Display) -> PerfError {
    PerfError::Store(format!("{what}: {e}"))
}

/// Root directory of the append benchmark's log.
pub fn store_root(dir: &Path) -> PathBuf {
    dir.join(STORE_ROOT_NAME)
}

/// A fresh log and what its slices measured so far, one accumulator per
/// concurrency.
#[derive(Debug)]
pub struct StoreBench {
    root: PathBuf,
    log: GroupLog,
    body: Rc<Vec<u8>>,
    phases: Vec<PhaseAccum>,
}

/// One concurrency's accumulated slices.
#[derive(Debug)]
struct PhaseAccum {
    concurrency: usize,
    hist: Rc<RefCell<LatencyHistogram>>,
    elapsed: Duration,
    flushes: u64,
    records_flushed: u64,
    write_wait_us: u64,
    sync_wait_us: u64,
    segments_prepared: u64,
    warmed_up: bool,
}

impl StoreBench {
    /// Opens a fresh log under `DIR/store-bench` with `segment_bytes` segments
    /// (the benchmark passes the default), to append `record_bytes` records at
    /// each of `concurrencies`.
    pub async fn open(
        dir: &Path,
        segment_bytes: u64,
        record_bytes: usize,
        concurrencies: &[usize],
    ) -> PerfResult<StoreBench> {
        assert!(
            concurrencies.iter().all(|&c| c > 0),
            "every concurrency is at least one task"
        );
        let root = store_root(dir);
        remove_dir_if_present(&root)?;
        let mut config = LogConfig::new(&root, SELF_ID, GROUP);
        config.segment_bytes = segment_bytes;
        // The benchmark measures speed, not the disk-usage guard: on a shared machine
        // the disk may already be above DLedger's 90% write limit (its log is a few
        // GB at most and is removed at the end; a real lack of space still fails).
        config.disk_ratio_refuse_writes = 1.0;
        let log = GroupLog::open(config)
            .await
            .map_err(|e| store_error("opening the benchmark log", e))?;
        // Non-zero, non-repeating payload: nothing downstream may shortcut it.
        let body: Rc<Vec<u8>> = Rc::new((0..record_bytes).map(|i| (i % 251) as u8 + 1).collect());
        wait_first_segment_prepared(&log, &body).await?;
        let phases = concurrencies
            .iter()
            .map(|&concurrency| PhaseAccum {
                concurrency,
                hist: Rc::new(RefCell::new(LatencyHistogram::new())),
                elapsed: Duration::ZERO,
                flushes: 0,
                records_flushed: 0,
                write_wait_us: 0,
                sync_wait_us: 0,
                segments_prepared: 0,
                warmed_up: false,
            })
            .collect();
        Ok(StoreBench {
            root,
            log,
            body,
            phases,
        })
    }

    /// Number of concurrencies (indexes for [`Self::slice`]).
    pub fn phase_count(&self) -> usize {
        self.phases.len()
    }

    /// Runs the `which`-th concurrency for `slice`: that many tasks each loop
    /// append + wait until durable; the slice ends when every task has seen
    /// the deadline and finished its last append.
    pub async fn slice(&mut self, which: usize, slice: Duration) -> PerfResult<()> {
        let acc = &mut self.phases[which];
        let concurrency = acc.concurrency;
        if !acc.warmed_up {
            let warmup: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (log, body) = (self.log.clone(), self.body.clone());
                    glommio::spawn_local(async move {
                        for _ in 0..WARMUP_APPENDS_PER_TASK {
                            durable_append(&log, &body).await?;
                        }
                        Ok::<(), PerfError>(())
                    })
                })
                .collect();
            for task in warmup {
                task.await?;
            }
            acc.warmed_up = true;
        }
        let stats_before = self.log.stats();
        let started = Instant::now();
        let deadline = started + slice;
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (log, body, hist) = (self.log.clone(), self.body.clone(), acc.hist.clone());
                glommio::spawn_local(async move {
                    loop {
                        let sent = Instant::now();
                        if sent >= deadline {
                            return Ok::<(), PerfError>(());
                        }
                        durable_append(&log, &body).await?;
                        hist.borrow_mut().record(sent.elapsed());
                    }
                })
            })
            .collect();
        let mut failure = None;
        for task in tasks {
            if let Err(e) = task.await {
                failure.get_or_insert(e);
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        acc.elapsed += started.elapsed();
        let stats_after = self.log.stats();
        acc.flushes += stats_after.flushes.saturating_sub(stats_before.flushes);
        acc.records_flushed += stats_after
            .records_flushed
            .saturating_sub(stats_before.records_flushed);
        acc.write_wait_us += stats_after
            .write_wait_us
            .saturating_sub(stats_before.write_wait_us);
        acc.sync_wait_us += stats_after
            .sync_wait_us
            .saturating_sub(stats_before.sync_wait_us);
        let prepared =
            |s: &dledger_shards::disk::LogStats| s.segments_created + s.segments_recycled;
        acc.segments_prepared += prepared(&stats_after).saturating_sub(prepared(&stats_before));
        Ok(())
    }

    /// Closes and removes the log and returns the figures.
    pub async fn finish(self) -> PerfResult<Vec<AppendPhase>> {
        self.log
            .close()
            .await
            .map_err(|e| store_error("closing the benchmark log", e))?;
        remove_dir_if_present(&self.root)?;
        let record_bytes = self.body.len();
        self.phases
            .iter()
            .map(|acc| {
                let hist = acc.hist.borrow();
                let latency = hist.summary().ok_or_else(|| PerfError::NoSamples {
                    phase: format!("store append at concurrency {}", acc.concurrency),
                })?;
                Ok(AppendPhase {
                    concurrency: acc.concurrency,
                    records: hist.count(),
                    elapsed: acc.elapsed,
                    latency,
                    records_per_flush: ratio_or_zero(acc.records_flushed, acc.flushes),
                    record_bytes,
                    write_wait_us_per_flush: ratio_or_zero(acc.write_wait_us, acc.flushes),
                    sync_wait_us_per_flush: ratio_or_zero(acc.sync_wait_us, acc.flushes),
                    segments_prepared: acc.segments_prepared,
                })
            })
            .collect()
    }
}

/// Removes the benchmark log (also after a failed run).
pub fn remove_scratch(dir: &Path) -> PerfResult<()> {
    remove_dir_if_present(&store_root(dir))
}

/// Waits until the fresh log has zero-filled its first segment and holds one record.
/// Opening a new log prepares that segment in the background; a whole segment of zeros
/// (1 GiB by default) competing with the first phase would charge a once-per-log cost
/// to the latency phase alone. The record (the log's first, outside every measured
/// phase) makes the log look like one that has run. The next segment is prepared once
/// the first is half written, during the phases, as in production, and is part of the
/// figures.
async fn wait_first_segment_prepared(log: &GroupLog, body: &[u8]) -> PerfResult<()> {
    wait_segments_created(log, 1).await?;
    durable_append(log, body).await
}

async fn wait_segments_created(log: &GroupLog, wanted: u64) -> PerfResult<()> {
    let deadline = Instant::now() + SEGMENT_PREPARE_WAIT_MAX;
    while log.stats().segments_created < wanted {
        if let Some(e) = log.failure() {
            return Err(store_error("preparing a segment", e));
        }
        if Instant::now() >= deadline {
            return Err(PerfError::Store(format!(
                "the benchmark log did not finish preparing segment {wanted} within {} s",
                SEGMENT_PREPARE_WAIT_MAX.as_secs()
            )));
        }
        glommio::timer::sleep(SEGMENT_PREPARE_POLL).await;
    }
    Ok(())
}

/// Removes a benchmark directory tree; a missing one is fine.
pub fn remove_dir_if_present(path: &Path) -> PerfResult<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PerfError::io("removing benchmark directory", path, e)),
    }
}

/// One durable append of `body`; returns when a device flush covers it.
async fn durable_append(log: &GroupLog, body: &[u8]) -> PerfResult<()> {
    let appended = log
        .append(TERM, &[body])
        .await
        .map_err(|e| store_error("append", e))?;
    log.wait_durable(appended.last_index)
        .await
        .map_err(|e| store_error("waiting for durability", e))
}

/// `records / flushes`, or 0 when there was no flush.
fn ratio_or_zero(records: u64, flushes: u64) -> f64 {
    if flushes == 0 {
        0.0
    } else {
        records as f64 / flushes as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_per_flush_guards_zero_flushes() {
        assert_eq!(ratio_or_zero(300, 4), 75.0);
        assert_eq!(ratio_or_zero(0, 0), 0.0);
    }

    /// Short phases on a small log: every phase reports samples, and the
    /// counters show group commit at the higher concurrency. Asserts nothing
    /// about speed.
    #[test]
    fn phases_report_durable_appends() {
        let dir = std::env::temp_dir().join(format!("dledger-perf-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        let run_dir = dir.clone();
        let phases = crate::runtime::run_on_executor(
            "store-test",
            crate::runtime::ExecutorConfig {
                io_memory_bytes: 1 << 20,
                cpu: None,
            },
            move || async move {
                let mut bench = StoreBench::open(&run_dir, 8 << 20, 100, &[1, 16]).await?;
                for _round in 0..2 {
                    for which in 0..bench.phase_count() {
                        bench.slice(which, Duration::from_millis(100)).await?;
                    }
                }
                bench.finish().await
            },
        )
        .expect("the store phases run");
        assert_eq!(phases.len(), 2);
        for p in &phases {
            assert!(p.records > 0);
            assert_eq!(p.latency.count, p.records);
            assert!(p.latency.p50_us <= p.latency.p99_us);
            assert!(p.records_per_flush >= 1.0);
        }
        assert!(!store_root(&dir).exists(), "the benchmark log is removed");
        std::fs::remove_dir_all(&dir).expect("temp dir is removable");
    }
}

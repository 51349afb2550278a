//! Prints durable-append latency, group-commit throughput and recovery time of the
//! commitlog on this machine. Speed is never asserted, so it is `#[ignore]`d:
//! `cargo test -p dledger-shards --release --test it disk_append_probe -- --ignored --nocapture`

// Test helpers outside #[test] fns panic on failure just like the tests themselves.
#![allow(clippy::unwrap_used)]

use crate::disk_common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use disk_common::{TempDir, run};
use dledger_shards::disk::{GroupLog, LogConfig, SyncMethod};

const BODY_BYTES: usize = 1024;
const RUN_FOR: Duration = Duration::from_secs(3);

async fn measure(root: std::path::PathBuf, concurrency: usize, sync: SyncMethod) {
    let mut cfg = LogConfig::new(&root, "n0", &format!("g{concurrency}{sync:?}"));
    cfg.segment_bytes = 256 << 20;
    cfg.sync_method = sync;
    let log = GroupLog::open(cfg).await.unwrap();
    // Keep the background zero-filling of the next segment out of the numbers.
    log.wait_preallocation().await;
    let latencies = Rc::new(RefCell::new(Vec::new()));
    let cpu_before = cpu_time();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let log = log.clone();
        let latencies = latencies.clone();
        tasks.push(glommio::spawn_local(async move {
            let body = vec![7u8; BODY_BYTES];
            while start.elapsed() < RUN_FOR {
                let t = Instant::now();
                let a = log.append(1, &[&body]).await.unwrap();
                log.wait_durable(a.last_index).await.unwrap();
                latencies.borrow_mut().push(t.elapsed().as_micros() as u64);
            }
        }));
    }
    for t in tasks {
        t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_secs = (cpu_time() - cpu_before).as_secs_f64();
    let mut l = latencies.borrow().clone();
    l.sort_unstable();
    let pct = |p: f64| l[((l.len() - 1) as f64 * p) as usize];
    let stats = log.stats();
    println!(
        "{sync:?} c={concurrency:>3}: {:>7.0} appends/s  p50 {:>5} us  p99 {:>6} us  max {:>6} us  \
         records/flush {:.1}  cpu {:.2} us/record ({:.0}% of one core)  per flush: write {} us \
         sync {} us, {:.0} KiB written",
        l.len() as f64 / secs,
        pct(0.5),
        pct(0.99),
        l[l.len() - 1],
        stats.records_flushed as f64 / stats.flushes.max(1) as f64,
        cpu_secs * 1e6 / l.len() as f64,
        cpu_secs * 100.0 / secs,
        stats.write_wait_us / stats.flushes.max(1),
        stats.sync_wait_us / stats.flushes.max(1),
        stats.bytes_written as f64 / 1024.0 / stats.flushes.max(1) as f64,
    );
    log.close().await.unwrap();
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(u.user_time()) + tv(u.system_time())
}

/// Concurrencies to measure: `DLEDGER_PROBE_CONCURRENCY=1,256` or 1, 64, 256.
fn concurrencies() -> Vec<usize> {
    std::env::var("DLEDGER_PROBE_CONCURRENCY")
        .map(|v| v.split(',').map(|c| c.trim().parse().unwrap()).collect())
        .unwrap_or_else(|_| vec![1, 64, 256])
}

#[test]
#[ignore = "prints timings; run by hand on the target machine"]
fn durable_append_latency_and_group_commit() {
    let dir = TempDir::new("append-probe");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let syncs = if std::env::var_os("DLEDGER_PROBE_FDATASYNC_ONLY").is_some() {
                vec![SyncMethod::Fdatasync]
            } else {
                vec![SyncMethod::Fdatasync, SyncMethod::ODsync]
            };
            for sync in syncs {
                for c in concurrencies() {
                    measure(root.clone(), c, sync).await;
                }
            }
        })
    });
}

#[test]
#[ignore = "prints timings; run by hand on the target machine"]
fn recovery_time_with_and_without_checkpoint() {
    let dir = TempDir::new("recovery-probe");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let mut cfg = LogConfig::new(&root, "n0", "big");
            cfg.segment_bytes = 64 << 20;
            let records: u64 = 128 * 1024;
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            let body = vec![3u8; BODY_BYTES];
            let batch: Vec<&[u8]> = (0..64).map(|_| body.as_slice()).collect();
            let t = Instant::now();
            while log.last_index() < records {
                let a = log.append(1, &batch).await.unwrap();
                if a.last_index % 4096 == 0 {
                    log.wait_durable(a.last_index).await.unwrap();
                }
            }
            log.wait_durable(log.last_index()).await.unwrap();
            let mib = log.end_pos() as f64 / (1 << 20) as f64;
            println!(
                "wrote {records} records ({mib:.0} MiB) in {:?}",
                t.elapsed()
            );
            log.close().await.unwrap();

            let t = Instant::now();
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            println!("open without checkpoint (full scan): {:?}", t.elapsed());
            log.persist_checkpoint(records).await.unwrap();
            log.persist_checkpoint(records).await.unwrap();
            log.append(1, &batch).await.unwrap();
            log.wait_durable(log.last_index()).await.unwrap();
            log.persist_checkpoint(records).await.unwrap();
            log.close().await.unwrap();
            let t = Instant::now();
            let log = GroupLog::open(cfg).await.unwrap();
            println!(
                "open after checkpoints (dense index + tail scan): {:?}, last index {}",
                t.elapsed(),
                log.last_index()
            );
            log.close().await.unwrap();
        })
    });
}

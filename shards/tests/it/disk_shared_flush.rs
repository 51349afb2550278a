//! The shared device flush on real files: many logs of one executor reach durable
//! through far fewer `fdatasync`s than logs, a failed shared flush fails every log
//! joined to it, truncation still works, and the gate keeps it off where it is not
//! configured. Assertions are on the flusher's own counters (other processes flush the
//! same device too), never on timing.
//!
//! The gate only opens on ext4 with barriers: on another filesystem these tests check
//! that it stays closed and return (said on stderr).

// Test helpers outside #[test] fns panic on failure just like the tests themselves.
#![allow(clippy::unwrap_used)]

use crate::disk_common;

use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;

use disk_common::{TempDir, body_for, run, small_config};
use dledger_shards::disk::{DiskError, GroupLog, LogConfig, SyncMethod};

fn shared_config(root: &std::path::Path, group: usize) -> LogConfig {
    let mut cfg = small_config(root);
    cfg.group = format!("RaftNode{group:02}");
    cfg.shared_flush = true;
    cfg
}

fn adaptive_config(root: &std::path::Path, group: usize) -> LogConfig {
    LogConfig {
        sync_method: SyncMethod::Adaptive,
        ..shared_config(root, group)
    }
}

fn is_ext4(path: &std::path::Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::EXT4_SUPER_MAGIC)
}

/// Opens `n` logs with the shared flush on; `None` (after checking the gate stayed
/// closed) when the temp dir is not ext4.
async fn open_shared(
    root: &std::path::Path,
    n: usize,
    config: fn(&std::path::Path, usize) -> LogConfig,
) -> Option<Vec<GroupLog>> {
    let mut logs = Vec::new();
    for g in 0..n {
        logs.push(GroupLog::open(config(root, g)).await.unwrap());
    }
    if !is_ext4(root) {
        assert!(logs.iter().all(|l| l.shared_flush().is_none()));
        eprintln!("{} is not ext4: the shared flush stays off", root.display());
        return None;
    }
    let first = logs[0]
        .shared_flush()
        .expect("ext4 with barriers here: the gate verifies the device");
    for l in &logs {
        let f = l.shared_flush().expect("every log on the device joins");
        assert!(
            Rc::ptr_eq(&first, &f),
            "one flusher per executor and device"
        );
    }
    Some(logs)
}

/// Runs `body` on a fresh executor (so a fresh flusher) with `n` logs open on the
/// shared flush in a fresh directory; not when that directory is not on ext4 (then it
/// checks that the gate stayed closed).
fn with_shared_logs<F, Fut>(tag: &str, n: usize, body: F)
where
    F: FnOnce(PathBuf, Vec<GroupLog>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    with_logs(tag, n, shared_config, body)
}

/// [`with_shared_logs`] with `config` making each log's config.
fn with_logs<F, Fut>(tag: &str, n: usize, config: fn(&std::path::Path, usize) -> LogConfig, body: F)
where
    F: FnOnce(PathBuf, Vec<GroupLog>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let dir = TempDir::new(tag);
    let root = dir.path().to_owned();
    std::fs::create_dir_all(&root).unwrap();
    run(move || {
        Box::pin(async move {
            if let Some(logs) = open_shared(&root, n, config).await {
                body(root, logs).await;
            }
        })
    });
}

#[test]
fn many_logs_reach_durable_with_far_fewer_flushes_than_logs() {
    const LOGS: usize = 48;
    const ROUNDS: u64 = 20;
    with_shared_logs("shared-flush-many", LOGS, |root, logs| async move {
        let flusher = logs[0].shared_flush().unwrap();
        let before = flusher.stats();
        append_rounds(&logs, ROUNDS).await;
        let s = flusher.stats();
        let (rounds, joins) = (s.rounds - before.rounds, s.joins - before.joins);
        eprintln!("shared flush: {joins} log sync rounds served by {rounds} fdatasyncs");
        assert!(
            joins >= LOGS as u64 * ROUNDS,
            "every log synced every round through the flusher ({joins} joins)"
        );
        // Each round's writes complete close together, so while the first joiner's
        // fdatasync is in flight the others collect for the next one.
        assert!(
            rounds * 4 <= joins,
            "far fewer device flushes than log sync rounds: {rounds} for {joins}"
        );
        assert_eq!(s.failures, 0);
        close_and_check_rounds(&root, logs, ROUNDS, shared_config).await;
    });
}

/// Per round, one record into every log, then each waited durable (each log's syncer
/// runs one round per append round).
async fn append_rounds(logs: &[GroupLog], rounds: u64) {
    for round in 1..=rounds {
        for (g, log) in logs.iter().enumerate() {
            let body = body_for(round * 1000 + g as u64, 2000);
            let a = log.append(1, &[&body]).await.unwrap();
            assert_eq!(a.last_index, round);
        }
        for log in logs {
            log.wait_durable(round).await.unwrap();
        }
    }
}

/// Closes the logs of [`append_rounds`], reopens each with `config` and checks that
/// every record is there.
async fn close_and_check_rounds(
    root: &std::path::Path,
    logs: Vec<GroupLog>,
    rounds: u64,
    config: fn(&std::path::Path, usize) -> LogConfig,
) {
    let n = logs.len();
    for log in logs {
        assert_eq!(log.durable_index(), rounds);
        log.close().await.unwrap();
    }
    for g in 0..n {
        let log = GroupLog::open(config(root, g)).await.unwrap();
        assert_eq!(log.last_index(), rounds);
        for round in 1..=rounds {
            let body = body_for(round * 1000 + g as u64, 2000);
            assert_eq!(&log.entry(round).await.unwrap().body()[..], &body[..]);
        }
        log.close().await.unwrap();
    }
}

#[test]
fn a_failed_shared_flush_fails_every_joined_log() {
    const LOGS: usize = 6;
    with_shared_logs("shared-flush-fail", LOGS, |root, logs| async move {
        for log in &logs {
            log.append(1, &[b"kept"]).await.unwrap();
        }
        for log in &logs {
            log.wait_durable(1).await.unwrap();
        }
        let flusher = logs[0].shared_flush().unwrap();
        flusher.fault_injector().fail_syncs_after(0);
        for log in &logs {
            log.append(1, &[b"doomed"]).await.unwrap();
        }
        for log in &logs {
            match log.wait_durable(2).await {
                Err(e @ DiskError::Io { .. }) => {
                    assert!(e.to_string().contains("shared flush"), "{e}");
                }
                other => panic!("expected DISK_ERROR from the shared flush, got {other:?}"),
            }
            assert_eq!(
                log.durable_index(),
                1,
                "nothing past the failure is durable"
            );
            assert!(log.append(1, &[b"refused"]).await.is_err());
        }
        assert!(flusher.stats().failures >= 1);
        // A log opened later on the same executor joins the failed flusher: its
        // first sync fails too (the device's cache state is unknown).
        let late = GroupLog::open(shared_config(&root, LOGS)).await.unwrap();
        let a = late.append(1, &[b"late"]).await.unwrap();
        assert!(late.wait_durable(a.last_index).await.is_err());
        for log in logs {
            let _ = log.close().await;
        }
        let _ = late.close().await;
        // After a restart (a new executor, so a new flusher) the durable records
        // are there and the logs work again.
        for g in 0..LOGS {
            let log = GroupLog::open(small_config_for(&root, g)).await.unwrap();
            assert_eq!(&log.entry(1).await.unwrap().body()[..], b"kept");
            let _ = log.close().await;
        }
    });
}

fn small_config_for(root: &std::path::Path, group: usize) -> LogConfig {
    LogConfig {
        shared_flush: false,
        ..shared_config(root, group)
    }
}

#[test]
fn truncation_and_segment_crossings_work_through_the_shared_flush() {
    with_shared_logs("shared-flush-truncate", 2, |root, logs| async move {
        // 400 records of up to 2000 bytes cross the 256 KiB segments several times.
        for i in 1..=400u64 {
            for log in &logs {
                log.append(1, &[&body_for(i, 2000)]).await.unwrap();
            }
        }
        for log in &logs {
            log.wait_durable(400).await.unwrap();
        }
        let log = &logs[0];
        log.truncate_suffix(301, 250).await.unwrap();
        assert_eq!(log.last_index(), 300);
        let a = log.append(2, &[b"after the cut"]).await.unwrap();
        assert_eq!(a.last_index, 301);
        log.wait_durable(301).await.unwrap();
        assert_eq!(log.durable_index(), 301);
        for log in logs {
            log.close().await.unwrap();
        }
        let log = GroupLog::open(shared_config(&root, 0)).await.unwrap();
        assert_eq!(log.last_index(), 301);
        assert_eq!(&log.entry(301).await.unwrap().body()[..], b"after the cut");
        assert_eq!(
            &log.entry(300).await.unwrap().body()[..],
            &body_for(300, 2000)[..]
        );
        log.close().await.unwrap();
    });
}

#[test]
fn the_shared_flush_is_off_unless_configured_and_never_with_o_dsync() {
    let dir = TempDir::new("shared-flush-off");
    let root = dir.path().to_owned();
    std::fs::create_dir_all(&root).unwrap();
    run(move || {
        Box::pin(async move {
            let plain = GroupLog::open(small_config(&root)).await.unwrap();
            assert!(
                plain.shared_flush().is_none(),
                "off by default in LogConfig"
            );
            plain.close().await.unwrap();
            let mut cfg = shared_config(&root, 1);
            cfg.sync_method = SyncMethod::ODsync;
            let dsync = GroupLog::open(cfg).await.unwrap();
            assert!(
                dsync.shared_flush().is_none(),
                "O_DSYNC writes need no flush"
            );
            let a = dsync.append(1, &[b"x"]).await.unwrap();
            dsync.wait_durable(a.last_index).await.unwrap();
            dsync.close().await.unwrap();
            let shared = GroupLog::open(shared_config(&root, 2)).await.unwrap();
            assert_eq!(shared.shared_flush().is_some(), is_ext4(&root));
            shared.close().await.unwrap();
        })
    });
}

/// Appends `count` records of 2000 bytes to `log`, each waited durable before the next
/// (one round per record: a c=1 client), from index `first`.
async fn append_one_by_one(log: &GroupLog, seed: u64, first: u64, count: u64) {
    for i in first..first + count {
        let a = log.append(1, &[&body_for(seed + i, 2000)]).await.unwrap();
        assert_eq!(a.last_index, i);
        log.wait_durable(i).await.unwrap();
    }
}

#[test]
fn a_lone_adaptive_log_writes_its_rounds_o_dsync_and_probes_the_flush_way() {
    const RECORDS: u64 = 200;
    with_logs(
        "adaptive-lone",
        1,
        adaptive_config,
        |root, logs| async move {
            let log = &logs[0];
            let flusher = log.shared_flush().unwrap();
            // 200 records cross the 256 KiB segments: solo writes go to each new segment's
            // O_DSYNC descriptor.
            append_one_by_one(log, 0, 1, RECORDS).await;
            let (stats, shared) = (log.stats(), flusher.stats());
            eprintln!(
                "adaptive, one log: {} writes, {} O_DSYNC, {} flush joins",
                stats.writes, stats.solo_dsync_writes, shared.joins
            );
            // The first round goes O_DSYNC (nothing measured yet); every 32nd round goes
            // the way not preferred: whichever way the timing goes, both are used.
            assert!(stats.solo_dsync_writes >= 1, "{stats:?}");
            assert!(
                shared.joins >= 1,
                "the write + flush way is sampled too: {shared:?}"
            );
            assert_eq!(stats.solo_dsync_writes, shared.solo_dsync_writes);
            assert!(stats.solo_dsync_writes + shared.joins <= stats.writes + 1);
            assert_eq!(log.durable_index(), RECORDS);
            reopen_and_check_records(&root, logs, RECORDS, 2000).await;
        },
    );
}

#[test]
fn busy_adaptive_logs_share_the_flush_and_one_solo_write_runs_at_a_time() {
    const LOGS: usize = 16;
    const ROUNDS: u64 = 10;
    with_logs(
        "adaptive-busy",
        LOGS,
        adaptive_config,
        |root, logs| async move {
            let flusher = logs[0].shared_flush().unwrap();
            // Every log appends at once: at most one of them can hold the solo slot,
            // the others join the shared flush.
            append_rounds(&logs, ROUNDS).await;
            let s = flusher.stats();
            eprintln!("adaptive, {LOGS} logs: {s:?}");
            // Each log wrote one chunk per round and made it durable one way or the other.
            assert_eq!(s.solo_dsync_writes + s.joins, LOGS as u64 * ROUNDS, "{s:?}");
            // The writers of one round run back to back: the first takes the slot, the
            // others find it taken and share the flush.
            assert!(s.solo_dsync_writes * 4 <= s.joins, "{s:?}");
            close_and_check_rounds(&root, logs, ROUNDS, adaptive_config).await;
        },
    );
}

#[test]
fn an_adaptive_log_truncates_and_rewrites_across_both_ways() {
    with_logs(
        "adaptive-truncate",
        1,
        adaptive_config,
        |root, logs| async move {
            let log = &logs[0];
            append_one_by_one(log, 0, 1, 120).await;
            log.truncate_suffix(101, 90).await.unwrap();
            assert_eq!(log.last_index(), 100);
            append_one_by_one(log, 7_000, 101, 40).await;
            assert!(log.stats().solo_dsync_writes >= 1);
            for log in logs {
                log.close().await.unwrap();
            }
            let log = GroupLog::open(adaptive_config(&root, 0)).await.unwrap();
            assert_eq!(log.last_index(), 140);
            assert_eq!(
                &log.entry(100).await.unwrap().body()[..],
                &body_for(100, 2000)[..]
            );
            assert_eq!(
                &log.entry(101).await.unwrap().body()[..],
                &body_for(7_101, 2000)[..]
            );
            log.close().await.unwrap();
        },
    );
}

#[test]
fn a_streaming_adaptive_log_makes_solo_writes_durable_behind_its_own_flushes() {
    const RECORDS: u64 = 3_000;
    const WINDOW: u64 = 64;
    with_logs(
        "adaptive-stream",
        1,
        adaptive_config,
        |root, logs| async move {
            let log = &logs[0];
            // Appends stream in with up to WINDOW records not yet durable, so the writer
            // always has a round ready: after a probe's plain write its flush runs while
            // the next round is written O_DSYNC, and that round becomes durable with it.
            for i in 1..=RECORDS {
                let a = log.append(1, &[&body_for(i, 1500)]).await.unwrap();
                assert_eq!(a.last_index, i);
                if i > WINDOW {
                    log.wait_durable(i - WINDOW).await.unwrap();
                }
                assert!(log.durable_index() <= log.written_index());
            }
            log.wait_durable(RECORDS).await.unwrap();
            let stats = log.stats();
            eprintln!(
                "adaptive, streaming: {} writes, {} O_DSYNC, {} flushes",
                stats.writes, stats.solo_dsync_writes, stats.flushes
            );
            assert!(stats.solo_dsync_writes >= 1, "{stats:?}");
            reopen_and_check_records(&root, logs, RECORDS, 1500).await;
        },
    );
}

/// Closes the one adaptive log, reopens it and checks records `1..=records`, each
/// `body_for(i, body_bytes)`.
async fn reopen_and_check_records(
    root: &std::path::Path,
    logs: Vec<GroupLog>,
    records: u64,
    body_bytes: usize,
) {
    for log in logs {
        log.close().await.unwrap();
    }
    let log = GroupLog::open(adaptive_config(root, 0)).await.unwrap();
    assert_eq!(log.last_index(), records);
    for i in 1..=records {
        assert_eq!(
            &log.entry(i).await.unwrap().body()[..],
            &body_for(i, body_bytes)[..]
        );
    }
    log.close().await.unwrap();
}

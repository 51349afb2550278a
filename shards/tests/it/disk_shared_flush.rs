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

fn is_ext4(path: &std::path::Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::EXT4_SUPER_MAGIC)
}

/// Opens `n` logs with the shared flush on; `None` (after checking the gate stayed
/// closed) when the temp dir is not ext4.
async fn open_shared(root: &std::path::Path, n: usize) -> Option<Vec<GroupLog>> {
    let mut logs = Vec::new();
    for g in 0..n {
        logs.push(GroupLog::open(shared_config(root, g)).await.unwrap());
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
    let dir = TempDir::new(tag);
    let root = dir.path().to_owned();
    std::fs::create_dir_all(&root).unwrap();
    run(move || {
        Box::pin(async move {
            if let Some(logs) = open_shared(&root, n).await {
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
        for round in 1..=ROUNDS {
            // One record into every log, then wait until every log has it durable:
            // each log's syncer runs one round per append round.
            for (g, log) in logs.iter().enumerate() {
                let body = body_for(round * 1000 + g as u64, 2000);
                let a = log.append(1, &[&body]).await.unwrap();
                assert_eq!(a.last_index, round);
            }
            for log in &logs {
                log.wait_durable(round).await.unwrap();
            }
        }
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
        for log in logs {
            assert_eq!(log.durable_index(), ROUNDS);
            log.close().await.unwrap();
        }
        // Everything is there after a reopen.
        for g in 0..LOGS {
            let log = GroupLog::open(shared_config(&root, g)).await.unwrap();
            assert_eq!(log.last_index(), ROUNDS);
            for round in 1..=ROUNDS {
                let body = body_for(round * 1000 + g as u64, 2000);
                assert_eq!(&log.entry(round).await.unwrap().body()[..], &body[..]);
            }
            log.close().await.unwrap();
        }
    });
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

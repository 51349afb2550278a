//! A new segment takes appends once its head is zero-filled; the rest is zero-filled
//! behind them and never over a record.

// Test helpers outside #[test] fns panic on failure just like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use crate::disk_common;

use disk_common::{TempDir, body_for, run, small_config};
use dledger_shards::disk::{GroupLog, LogConfig, SEGMENT_HEAD_BYTES};

/// Segments of 16 MiB: the head filled before the first append, the rest after.
const SEGMENT_BYTES: u64 = 16 << 20;
const REST_BYTES: u64 = SEGMENT_BYTES - SEGMENT_HEAD_BYTES;
const BODY_BYTES_MAX: usize = 8192;

fn fill_config(root: &Path, zero_bytes_per_sec: u64) -> LogConfig {
    let mut cfg = small_config(root);
    cfg.segment_bytes = SEGMENT_BYTES;
    cfg.index_segment_bytes = 64 << 10;
    cfg.prealloc_bytes_per_sec = zero_bytes_per_sec;
    cfg
}

/// Appends records `first..=last` in batches of 8, each batch waited for durable (so
/// the pending bound holds), and returns the last index.
async fn append_range(log: &GroupLog, first: u64, last: u64) {
    let mut i = first;
    while i <= last {
        let bodies: Vec<Vec<u8>> = (i..(i + 8).min(last + 1))
            .map(|k| body_for(k, BODY_BYTES_MAX))
            .collect();
        let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
        let a = log.append(1, &refs).await.unwrap();
        assert_eq!(a.first_index, i);
        log.wait_durable(a.last_index).await.unwrap();
        i = a.last_index + 1;
    }
}

/// Reopens the log and checks that it ends at `last` with records `1..=last` intact.
async fn reopen_and_check(cfg: LogConfig, last: u64) {
    let log = GroupLog::open(cfg).await.unwrap();
    assert_eq!(log.last_index(), last);
    check_range(&log, 1, last).await;
    log.close().await.unwrap();
}

async fn check_range(log: &GroupLog, first: u64, last: u64) {
    for k in first..=last {
        let e = log.entry(k).await.unwrap();
        assert_eq!(
            &e.body()[..],
            &body_for(k, BODY_BYTES_MAX)[..],
            "record {k} after the zero-fill"
        );
    }
}

#[test]
fn appends_are_durable_before_the_segment_is_filled_and_close_stops_the_fill() {
    let dir = TempDir::new("fill-head");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            // 1 MiB/s, and never further ahead of the appends than the log holds: the
            // 16 MiB after the head take at least 16 s, and the fill stays within a few
            // hundred KiB of the 40 records' end.
            let cfg = fill_config(&root, 1 << 20);
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            append_range(&log, 1, 40).await;
            assert_eq!(log.durable_index(), 40);
            let end = end_pos(&log, 40).await;
            let filled = log.stats().zero_filled_bytes;
            assert!(
                filled + SEGMENT_HEAD_BYTES <= 2 * end.max(SEGMENT_HEAD_BYTES),
                "the appends did not wait for the rest of the segment: filled {filled}, end {end}"
            );
            let seg = std::fs::read_dir(root.join("dledger-n0/RaftNode00/data"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_none())
                .expect("the first segment exists under its final name");
            assert_eq!(
                std::fs::metadata(&seg).unwrap().len(),
                SEGMENT_BYTES,
                "created at full length"
            );
            // Closing does not wait for the paced fill to end.
            log.close().await.unwrap();

            let log = GroupLog::open(cfg).await.unwrap();
            assert_eq!(log.last_index(), 40, "the unfilled rest reads as the end");
            check_range(&log, 1, 40).await;
            append_range(&log, 41, 60).await;
            check_range(&log, 1, 60).await;
            log.close().await.unwrap();
        })
    });
}

#[test]
fn an_unpaced_fill_racing_the_appends_never_zeroes_a_record() {
    let dir = TempDir::new("fill-race");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let cfg = fill_config(&root, 0);
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            // ~2,000 records of up to 8 KiB: ~8 MiB, through the head and into the
            // part being filled at the same time.
            let last = 2_000;
            append_range(&log, 1, last).await;
            log.wait_preallocation().await;
            let stats = log.stats();
            // It ran beside the appends: it filled (and synced) past the head, or
            // stopped where they passed it.
            assert!(
                stats.zero_filled_bytes > 0 || stats.zero_fills_overtaken == 1,
                "the fill ran beside the appends: {stats:?}"
            );
            check_range(&log, 1, last).await;
            log.close().await.unwrap();
            reopen_and_check(cfg, last).await;
        })
    });
}

#[test]
fn a_truncation_while_the_segment_is_filled_keeps_the_log_exact() {
    let dir = TempDir::new("fill-truncate");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            // Slow enough that the fill is still running at the truncation.
            let cfg = fill_config(&root, 4 << 20);
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            append_range(&log, 1, 300).await;
            log.truncate_suffix(201, 100).await.unwrap();
            assert_eq!(log.last_index(), 200);
            // Different bodies after the cut: the leader's version of those indexes.
            for k in 201..=260u64 {
                let body = body_for(k + 7_000, BODY_BYTES_MAX);
                let a = log.append(2, &[body.as_slice()]).await.unwrap();
                assert_eq!(a.first_index, k);
            }
            log.wait_durable(260).await.unwrap();
            log.close().await.unwrap();

            let log = GroupLog::open(cfg).await.unwrap();
            assert_eq!(log.last_index(), 260);
            check_range(&log, 1, 200).await;
            for k in 201..=260u64 {
                assert_eq!(
                    &log.entry(k).await.unwrap().body()[..],
                    &body_for(k + 7_000, BODY_BYTES_MAX)[..]
                );
            }
            log.close().await.unwrap();
        })
    });
}

#[test]
fn a_reopened_log_learns_what_is_filled_and_fills_the_rest() {
    let dir = TempDir::new("fill-resume");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            // Paced so that the first run closes with most of the rest unfilled.
            let log = GroupLog::open(fill_config(&root, 1 << 20)).await.unwrap();
            append_range(&log, 1, 40).await;
            log.close().await.unwrap();

            let log = GroupLog::open(fill_config(&root, 0)).await.unwrap();
            // The fill runs as far ahead as the log holds: half a segment of records
            // lets it reach the segment's end.
            append_until(&log, 41, SEGMENT_BYTES / 2 + (1 << 20)).await;
            log.wait_preallocation().await;
            let filled = log.stats().zero_filled_bytes;
            // The block map says the head (and at most the chunk or two written before
            // the close) is initialised; the reopened log fills the rest, which it can
            // count only when it continues that prefix without a gap.
            assert!(
                (REST_BYTES - (2 << 20)..=REST_BYTES).contains(&filled),
                "filled {filled} of the {REST_BYTES} unfilled bytes"
            );
            check_range(&log, 1, 40).await;
            log.close().await.unwrap();
        })
    });
}

#[test]
fn the_fill_keeps_its_lead_over_the_appends_and_steps_aside_for_a_creation() {
    let dir = TempDir::new("fill-lead");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            // Unpaced, 1 MiB ahead of the log's end at most (synced every 512 KiB).
            const LEAD_BYTES: u64 = 1 << 20;
            const HEAD_BYTES: u64 = SEGMENT_HEAD_BYTES;
            let mut cfg = fill_config(&root, 0);
            cfg.fill_lead_bytes = LEAD_BYTES;
            let log = GroupLog::open(cfg.clone()).await.unwrap();

            // A short log: the fill runs no further ahead than the log holds.
            let last = append_until(&log, 1, 256 << 10).await;
            log.wait_preallocation().await;
            let end = end_pos(&log, last).await;
            let filled = log.stats().zero_filled_bytes;
            assert!(
                filled + HEAD_BYTES <= 2 * end,
                "the fill waits for the appends: filled {filled}, end {end}"
            );

            // 6 MiB into the segment: the fill follows at most the lead ahead, and
            // what it synced stays ahead of the appends.
            let last = append_until(&log, last + 1, 6 << 20).await;
            log.wait_preallocation().await;
            let end = end_pos(&log, last).await;
            let filled = log.stats().zero_filled_bytes;
            assert!(
                filled + HEAD_BYTES <= end + LEAD_BYTES,
                "filled {filled} bytes past the head with the log's end at {end}"
            );
            assert!(
                filled + HEAD_BYTES > end,
                "the synced fill is behind the appends: filled {filled}, end at {end}"
            );

            // Past the half of the segment (the next one is created while the fill
            // waits for the appends) and on into the next segment: the fill never falls
            // behind.
            let last = append_until(&log, last + 1, SEGMENT_BYTES + (1 << 20)).await;
            log.wait_preallocation().await;
            let stats = log.stats();
            assert_eq!(stats.zero_fills_overtaken, 0, "{stats:?}");
            assert_eq!(stats.segments_created, 2, "{stats:?}");
            assert!(
                stats.zero_filled_bytes >= REST_BYTES,
                "the first segment was filled to its end: {stats:?}"
            );
            check_range(&log, 1, last).await;
            // Closing does not wait for the fill waiting on the appends.
            log.close().await.unwrap();
            reopen_and_check(cfg, last).await;
        })
    });
}

/// Appends from record `first` on, in batches of 8 each waited for durable, until the
/// log ends at or past position `pos`; returns the last index.
async fn append_until(log: &GroupLog, first: u64, pos: u64) -> u64 {
    let mut last = first - 1;
    while last < first || end_pos(log, last).await < pos {
        append_range(log, last + 1, last + 8).await;
        last += 8;
    }
    last
}

/// The log position just past record `index`.
async fn end_pos(log: &GroupLog, index: u64) -> u64 {
    let e = log.entry(index).await.unwrap();
    e.pos + e.record_bytes() as u64
}

#[test]
fn a_new_log_is_writable_once_its_first_segment_is_made_or_has_failed() {
    let dir = TempDir::new("fill-writable");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            // The first segment is made in the background after the open.
            let log = GroupLog::open(fill_config(&root.join("a"), 0))
                .await
                .unwrap();
            log.wait_writable().await;
            assert_eq!(log.stats().segments_created, 1, "{:?}", log.stats());
            let a = log.append(1, &[b"first"]).await.unwrap();
            log.wait_durable(a.last_index).await.unwrap();
            log.close().await.unwrap();

            // A creation that fails (its head's zeros are refused) ends the wait too,
            // and the next append says why instead of waiting for ever.
            let fault = std::rc::Rc::new(dledger_shards::disk::FaultInjector::new());
            let mut cfg = fill_config(&root.join("b"), 0);
            cfg.fault = Some(fault.clone());
            let log = GroupLog::open(cfg).await.unwrap();
            // The preparer has not run yet: the open spawned it and did not yield since.
            fault.fail_writes_after(0);
            log.wait_writable().await;
            assert_eq!(log.stats().segments_created, 0, "{:?}", log.stats());
            let err = log.append(1, &[b"refused"]).await.unwrap_err();
            assert!(err.to_string().contains("write zeros"), "{err}");
            drop(log);
        })
    });
}

//! Fault tests on real files: failed writes and syncs are fatal DISK_ERRORs (no
//! retry, appends refused), and a flipped bit in a durable record is reported as
//! corruption with its file and offset, never silently truncated.

// Test helpers outside #[test] fns panic on failure just like the tests themselves.
#![allow(clippy::unwrap_used)]

use crate::disk_common;

use std::os::unix::fs::FileExt;
use std::rc::Rc;

use disk_common::{TempDir, body_for, run, small_config};
use dledger::store::segment::SegmentGeometry;
use dledger_shards::disk::{DiskError, FaultInjector, GroupLog};

fn assert_disk_error(r: Result<impl std::fmt::Debug, DiskError>, needle: &str) -> DiskError {
    match r {
        Err(e @ DiskError::Io { .. }) => {
            assert_eq!(e.code(), 414);
            assert_eq!(e.code_name(), "DISK_ERROR");
            assert!(
                e.to_string().contains(needle),
                "{e} should mention {needle:?}"
            );
            e
        }
        other => panic!("expected DISK_ERROR, got {other:?}"),
    }
}

/// Appends 50 records durably, then arms `arm` and checks the log fails for good.
fn fatal_after(tag: &str, arm: fn(&FaultInjector), needle: &'static str) {
    let dir = TempDir::new(tag);
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let fault = Rc::new(FaultInjector::new());
            let mut cfg = small_config(&root);
            cfg.fault = Some(fault.clone());
            let log = GroupLog::open(cfg).await.unwrap();
            for i in 1..=50u64 {
                log.append(1, &[&body_for(i, 1000)]).await.unwrap();
            }
            log.wait_durable(50).await.unwrap();
            arm(&fault);
            let a = log.append(1, &[b"doomed"]).await.unwrap();
            let first = assert_disk_error(log.wait_durable(a.last_index).await, needle);
            assert_eq!(
                log.durable_index(),
                50,
                "nothing past the failure counts as durable"
            );
            // Refused from now on, with the same error, and nothing is retried.
            let (writes, syncs) = (fault.writes_seen(), fault.syncs_seen());
            let again = assert_disk_error(log.append(1, &[b"more"]).await, needle);
            assert_eq!(again, first);
            assert_eq!(log.failure(), Some(first.clone()));
            assert_disk_error(log.wait_durable(a.last_index).await, needle);
            assert_disk_error(log.truncate_suffix(51, 50).await, needle);
            assert_eq!((fault.writes_seen(), fault.syncs_seen()), (writes, syncs));
            // Reads of what is on disk go on.
            assert_eq!(
                &log.entry(7).await.unwrap().body()[..],
                &body_for(7, 1000)[..]
            );
            assert_disk_error(log.close().await, needle);

            // After a restart (the operator fixed the disk) the durable records are there.
            let log = GroupLog::open(small_config(&root)).await.unwrap();
            assert!(log.last_index() >= 50);
            for i in 1..=50u64 {
                assert_eq!(
                    &log.entry(i).await.unwrap().body()[..],
                    &body_for(i, 1000)[..]
                );
            }
            log.close().await.unwrap();
        })
    });
}

#[test]
fn failed_write_is_fatal() {
    fatal_after(
        "fault-write",
        |f| f.fail_writes_after(0),
        "injected write failure",
    );
}

#[test]
fn failed_fsync_is_fatal_and_not_retried() {
    fatal_after(
        "fault-sync",
        |f| f.fail_syncs_after(0),
        "injected sync failure",
    );
}

/// Writes 120 durable records with a checkpoint at 100 and returns (file, offset in
/// file) of record `index`.
fn durable_log_with_checkpoint(root: &std::path::Path, index: u64) -> (std::path::PathBuf, u64) {
    let root = root.to_owned();
    run(move || {
        Box::pin(async move {
            let cfg = small_config(&root);
            let geometry = SegmentGeometry::new(cfg.segment_bytes).unwrap();
            let log = GroupLog::open(cfg).await.unwrap();
            for i in 1..=120u64 {
                log.append(1, &[&body_for(i, 3000)]).await.unwrap();
            }
            log.wait_durable(120).await.unwrap();
            log.persist_checkpoint(100).await.unwrap();
            let pos = log.entry(index).await.unwrap().pos;
            let file = root
                .join("dledger-n0/RaftNode00/data")
                .join(geometry.segment_name(pos).to_string());
            log.close().await.unwrap();
            (file, geometry.offset_in_segment(pos))
        })
    })
}

fn flip_bit(file: &std::path::Path, offset: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x10;
    f.write_all_at(&b, offset).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn flipped_bit_in_a_committed_body_is_corruption() {
    let dir = TempDir::new("flip-body");
    let (file, offset) = durable_log_with_checkpoint(dir.path(), 60);
    flip_bit(&file, offset + 48 + 5);
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            match GroupLog::open(small_config(&root)).await {
                Err(DiskError::Corruption {
                    file: f,
                    offset: o,
                    reason,
                }) => {
                    assert_eq!(f, file);
                    assert_eq!(o, offset, "offset of the damaged record");
                    assert!(reason.contains("CRC"), "{reason}");
                }
                other => panic!("expected corruption, got {other:?}"),
            }
        })
    });
}

#[test]
fn flipped_bit_in_a_committed_header_is_corruption() {
    let dir = TempDir::new("flip-header");
    let (file, offset) = durable_log_with_checkpoint(dir.path(), 1);
    flip_bit(&file, offset + 20);
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let err = GroupLog::open(small_config(&root)).await.unwrap_err();
            assert!(
                matches!(&err, DiskError::Corruption { file: f, offset: o, .. } if *f == file && *o == offset),
                "{err}"
            );
        })
    });
}

#[test]
fn flipped_bit_in_a_durable_record_above_the_commit_index_is_corruption_too() {
    // Record 105 is above the commit index (100) but was durable when the checkpoint
    // was written.
    let dir = TempDir::new("flip-mid");
    let (file, offset) = durable_log_with_checkpoint(dir.path(), 105);
    flip_bit(&file, offset + 48);
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let err = GroupLog::open(small_config(&root)).await.unwrap_err();
            assert!(
                matches!(&err, DiskError::Corruption { file: f, offset: o, .. } if *f == file && *o == offset),
                "{err}"
            );
        })
    });
}

#[test]
fn a_read_of_a_damaged_record_reports_corruption() {
    let dir = TempDir::new("flip-read");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let mut cfg = small_config(&root);
            cfg.tail_cache_bytes = 0;
            let log = GroupLog::open(cfg).await.unwrap();
            for i in 1..=20u64 {
                log.append(1, &[&body_for(i, 3000)]).await.unwrap();
            }
            log.wait_durable(20).await.unwrap();
            let pos = log.entry(5).await.unwrap().pos;
            let file = root.join("dledger-n0/RaftNode00/data/00000000000000000000");
            flip_bit(&file, pos + 60);
            match log.entry(5).await {
                Err(DiskError::Corruption {
                    file: f, offset, ..
                }) => {
                    assert_eq!(f, file);
                    assert_eq!(offset, pos);
                }
                other => panic!("expected corruption, got {other:?}"),
            }
            log.close().await.unwrap();
        })
    });
}

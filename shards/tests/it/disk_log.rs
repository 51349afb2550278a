//! Functional tests of the commitlog on real files.

// Test helpers outside #[test] fns panic on failure just like the tests themselves.
#![allow(clippy::unwrap_used)]

use crate::disk_common;

use disk_common::{TempDir, body_for, run, small_config};
use dledger::raft::{HardState, TermRun};
use dledger_shards::disk::{DiskError, GroupLog};

#[test]
fn append_read_reopen_across_segments() {
    let dir = TempDir::new("log-basic");
    let root = dir.path().to_owned();
    let n: u64 = 400; // ~1.6 MiB with bodies up to 8 KiB: several 256 KiB segments
    run(move || {
        Box::pin(async move {
            let log = GroupLog::open(small_config(&root)).await.unwrap();
            assert_eq!(log.last_index(), 0);
            let mut idx = 1;
            while idx <= n {
                let bodies: Vec<Vec<u8>> = (idx..(idx + 3).min(n + 1))
                    .map(|i| body_for(i, 8192))
                    .collect();
                let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
                let term = 1 + idx / 100;
                let a = log.append(term, &refs).await.unwrap();
                assert_eq!(a.first_index, idx);
                idx = a.last_index + 1;
            }
            log.wait_durable(n).await.unwrap();
            assert_eq!(log.durable_index(), n);
            let noop = log.append_noop(9).await.unwrap();
            assert_eq!(noop.first_index, n + 1);
            log.wait_durable(n + 1).await.unwrap();
            // Reads: recent ones from the cache, old ones from disk, all verified.
            for i in 1..=n {
                let e = log.entry(i).await.unwrap();
                assert_eq!(e.index, i);
                assert_eq!(&e.body()[..], &body_for(i, 8192)[..], "body of {i}");
            }
            assert!(log.entry(n + 2).await.is_err());
            log.persist_hard_state(HardState {
                term: 9,
                voted_for: Some(2),
            })
            .await
            .unwrap();
            log.persist_checkpoint(n).await.unwrap();
            let stats = log.stats();
            assert!(
                stats.flushes >= 1 && stats.records_flushed == n + 1,
                "{stats:?}"
            );
            let runs = log.term_runs();
            log.close().await.unwrap();

            let log = GroupLog::open(small_config(&root)).await.unwrap();
            assert_eq!(log.last_index(), n + 1);
            assert_eq!(log.durable_index(), n + 1);
            assert_eq!(log.term_runs(), runs);
            assert_eq!(log.term_at(n + 1), Some(9));
            assert_eq!(
                log.hard_state(),
                HardState {
                    term: 9,
                    voted_for: Some(2)
                }
            );
            let rec = log.recovered();
            assert_eq!(rec.commit_index, n);
            assert_eq!(rec.last_index, n + 1);
            for i in (1..=n).step_by(7) {
                assert_eq!(
                    &log.entry(i).await.unwrap().body()[..],
                    &body_for(i, 8192)[..]
                );
            }
            // Appends continue after the recovered tail block.
            let a = log.append(9, &[b"after reopen"]).await.unwrap();
            assert_eq!(a.first_index, n + 2);
            log.wait_durable(n + 2).await.unwrap();
            log.close().await.unwrap();
            let log = GroupLog::open(small_config(&root)).await.unwrap();
            assert_eq!(&log.entry(n + 2).await.unwrap().body()[..], b"after reopen");
            log.close().await.unwrap();
        })
    });
}

#[test]
fn truncate_suffix_is_durable_and_respects_the_floor() {
    let dir = TempDir::new("log-trunc");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let log = GroupLog::open(small_config(&root)).await.unwrap();
            for i in 1..=200u64 {
                log.append(1, &[&body_for(i, 4000)]).await.unwrap();
            }
            log.wait_durable(200).await.unwrap();
            assert!(matches!(
                log.truncate_suffix(50, 60).await,
                Err(DiskError::Inconsistent { .. })
            ));
            log.truncate_suffix(101, 100).await.unwrap();
            assert_eq!(log.last_index(), 100);
            assert_eq!(log.durable_index(), 100);
            // Same sizes as before: without zeroing, old 102.. would line up again.
            for i in 101..=150u64 {
                log.append(2, &[&body_for(i, 4000)]).await.unwrap();
            }
            log.wait_durable(150).await.unwrap();
            log.close().await.unwrap();
            let log = GroupLog::open(small_config(&root)).await.unwrap();
            assert_eq!(log.last_index(), 150);
            assert_eq!(
                log.term_runs(),
                vec![
                    TermRun {
                        first_index: 1,
                        term: 1
                    },
                    TermRun {
                        first_index: 101,
                        term: 2
                    }
                ]
            );
            assert_eq!(log.entry(150).await.unwrap().term, 2);
            log.close().await.unwrap();
        })
    });
}

#[test]
fn follower_appends_the_leaders_bytes() {
    let dir = TempDir::new("log-follow");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let mut lc = small_config(&root);
            lc.self_id = "n0".into();
            let mut fc = small_config(&root);
            fc.self_id = "n1".into();
            let leader = GroupLog::open(lc).await.unwrap();
            let follower = GroupLog::open(fc).await.unwrap();
            for i in 1..=300u64 {
                leader.append(3, &[&body_for(i, 3000)]).await.unwrap();
            }
            leader.wait_durable(300).await.unwrap();
            let mut i = 1;
            while i <= 300 {
                let mut batch = Vec::new();
                for j in i..(i + 5).min(301) {
                    batch.extend_from_slice(&leader.entry(j).await.unwrap().record());
                }
                let a = follower.append_encoded(&batch).await.unwrap();
                assert_eq!(a.first_index, i);
                i = a.last_index + 1;
            }
            follower.wait_durable(300).await.unwrap();
            assert_eq!(follower.end_pos(), leader.end_pos());
            // A bit flip in a pushed record is refused before anything is written.
            let mut bad = leader.entry(10).await.unwrap().record().to_vec();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(matches!(
                follower.append_encoded(&bad).await,
                Err(DiskError::InvalidArgument { .. })
            ));
            // A record that does not continue the log is refused.
            let old = leader.entry(10).await.unwrap().record();
            assert!(matches!(
                follower.append_encoded(&old).await,
                Err(DiskError::Inconsistent { .. })
            ));
            assert_eq!(follower.last_index(), 300);
            leader.close().await.unwrap();
            follower.close().await.unwrap();
        })
    });
}

#[test]
fn retention_deletes_old_segments_and_reopens() {
    let dir = TempDir::new("log-purge");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let mut cfg = small_config(&root);
            cfg.file_reserved_hours = 1;
            // Expired segments go at any hour (the disk is always above this ratio).
            cfg.disk_ratio_check_expired = 0.000_001;
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            for i in 1..=400u64 {
                log.append(1 + i / 200, &[&body_for(i, 4000)])
                    .await
                    .unwrap();
            }
            log.wait_durable(400).await.unwrap();
            let now = std::time::SystemTime::now();
            // Young segments stay.
            let r = log.purge(now, 400).await.unwrap();
            assert!(r.segments_deleted.is_empty());
            assert_eq!(log.first_index(), 1);
            // Expired ones go, but never one holding an index >= keep_from_index.
            let later = now + std::time::Duration::from_secs(2 * 3600);
            let r = log.purge(later, 150).await.unwrap();
            assert!(!r.segments_deleted.is_empty());
            let first = log.first_index();
            assert!(first > 1 && first <= 150, "first index {first}");
            assert_eq!(r.first_index, first);
            assert!(matches!(
                log.entry(first - 1).await,
                Err(DiskError::IndexOutOfRange { .. })
            ));
            assert_eq!(
                &log.entry(first).await.unwrap().body()[..],
                &body_for(first, 4000)[..]
            );
            assert_eq!(log.term_at(first), Some(1 + first / 200));
            let r = log.purge(later, 401).await.unwrap();
            let first = log.first_index();
            assert!(first > 150 && r.segments_deleted.iter().all(|p| !p.exists()));
            // The segment in use is never deleted.
            assert!(log.end_pos() - log.entry(first).await.unwrap().pos < 2 * cfg.segment_bytes);
            log.close().await.unwrap();
            let log = GroupLog::open(cfg).await.unwrap();
            assert_eq!(log.first_index(), first);
            assert_eq!(log.last_index(), 400);
            assert_eq!(
                &log.entry(first).await.unwrap().body()[..],
                &body_for(first, 4000)[..]
            );
            let a = log.append(3, &[b"after purge"]).await.unwrap();
            assert_eq!(a.first_index, 401);
            log.wait_durable(401).await.unwrap();
            log.close().await.unwrap();
        })
    });
}

#[test]
fn async_flush_acks_on_write_and_syncs_within_the_interval() {
    let dir = TempDir::new("log-async");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let mut cfg = small_config(&root);
            cfg.flush_mode = dledger_shards::disk::FlushMode::AsyncFlush {
                flush_interval_ms: 20,
            };
            cfg.unsynced_bytes_max = 8 << 20;
            let log = GroupLog::open(cfg).await.unwrap();
            let a = log.append(1, &[b"one", b"two"]).await.unwrap();
            log.wait_persisted(a.last_index).await.unwrap();
            assert!(log.persisted_index() >= 2);
            // The sync comes from the interval timer.
            log.wait_durable(a.last_index).await.unwrap();
            assert!(log.stats().flushes >= 1);
            log.close().await.unwrap();
        })
    });
}

#[test]
fn recovery_takes_old_positions_from_the_dense_index_and_scans_only_the_tail() {
    let dir = TempDir::new("log-index");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let cfg = small_config(&root);
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            for i in 1..=300u64 {
                log.append(1 + i / 100, &[&body_for(i, 3000)])
                    .await
                    .unwrap();
            }
            log.wait_durable(300).await.unwrap();
            log.persist_checkpoint(250).await.unwrap();
            for i in 301..=400u64 {
                log.append(4, &[&body_for(i, 3000)]).await.unwrap();
            }
            log.wait_durable(400).await.unwrap();
            // Scan-from is now the first checkpoint's durable point (index 301).
            log.persist_checkpoint(350).await.unwrap();
            let runs = log.term_runs();
            let victim = log.entry(42).await.unwrap().pos;
            log.close().await.unwrap();
            assert!(
                root.join("dledger-n0/RaftNode00/index")
                    .read_dir()
                    .unwrap()
                    .count()
                    > 1
            );

            // Damage below the scan-from point is not read at open (the index gives the
            // positions), but a read of that record still reports it.
            let seg = victim - victim % cfg.segment_bytes;
            let file = root
                .join("dledger-n0/RaftNode00/data")
                .join(format!("{seg:020}"));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&file)
                .unwrap();
            use std::os::unix::fs::FileExt;
            let mut b = [0u8; 1];
            f.read_exact_at(&mut b, victim - seg + 60).unwrap();
            b[0] ^= 0x40;
            f.write_all_at(&b, victim - seg + 60).unwrap();
            drop(f);
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            assert_eq!(log.last_index(), 400);
            assert_eq!(log.term_runs(), runs);
            assert!(matches!(
                log.entry(42).await,
                Err(DiskError::Corruption { .. })
            ));
            for i in (1..=400u64).filter(|&i| i != 42) {
                assert_eq!(
                    &log.entry(i).await.unwrap().body()[..],
                    &body_for(i, 3000)[..],
                    "{i}"
                );
            }
            log.close().await.unwrap();

            // Without the index files recovery falls back to a full scan, which finds the
            // damage (below the durable point: corruption).
            std::fs::remove_dir_all(root.join("dledger-n0/RaftNode00/index")).unwrap();
            match GroupLog::open(cfg).await {
                Err(DiskError::Corruption {
                    file: f, offset, ..
                }) => {
                    assert_eq!(f, file);
                    assert_eq!(offset, victim - seg);
                }
                other => panic!("expected corruption, got {other:?}"),
            }
        })
    });
}

#[test]
fn records_that_end_exactly_at_a_segment_end() {
    let dir = TempDir::new("log-exact");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let cfg = small_config(&root);
            // 4096-byte records: 64 of them fill a 256 KiB segment exactly.
            let body = |i: u64| vec![(i % 251) as u8; 4096 - 48];
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            for i in 1..=200u64 {
                let a = log.append(1, &[&body(i)]).await.unwrap();
                assert_eq!(a.positions[0], (i - 1) * 4096, "no filler needed");
                if i % 7 == 0 {
                    log.wait_durable(i).await.unwrap();
                }
            }
            log.wait_durable(200).await.unwrap();
            for i in [1, 64, 65, 128, 129, 200] {
                assert_eq!(&log.entry(i).await.unwrap().body()[..], &body(i)[..]);
            }
            log.close().await.unwrap();
            let mut cold = cfg.clone();
            cold.tail_cache_bytes = 0;
            let log = GroupLog::open(cold).await.unwrap();
            assert_eq!(log.last_index(), 200);
            for i in 1..=200u64 {
                assert_eq!(
                    &log.entry(i).await.unwrap().body()[..],
                    &body(i)[..],
                    "record {i}"
                );
            }
            // Every segment file has exactly its size: nothing was written past an end.
            for f in root.join("dledger-n0/RaftNode00/data").read_dir().unwrap() {
                assert_eq!(f.unwrap().metadata().unwrap().len(), cfg.segment_bytes);
            }
            log.close().await.unwrap();
        })
    });
}

/// Expired segments are reused (renamed) as the next ones instead of zero-filling new
/// files; the stale records in them are never read back as part of the log, before
/// or after a reopen.
#[test]
fn expired_segments_are_recycled_and_their_stale_records_never_come_back() {
    let dir = TempDir::new("log-recycle");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let mut cfg = small_config(&root);
            cfg.file_reserved_hours = 1;
            cfg.disk_ratio_check_expired = 0.000_001;
            cfg.recycled_segments_max = 2;
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            for i in 1..=400u64 {
                log.append(1, &[&body_for(i, 4000)]).await.unwrap();
            }
            log.wait_durable(400).await.unwrap();
            let later = std::time::SystemTime::now() + std::time::Duration::from_secs(2 * 3600);
            let r = log.purge(later, 401).await.unwrap();
            assert!(!r.segments_deleted.is_empty());
            let data = root.join("dledger-n0/RaftNode00/data");
            let pooled = || {
                std::fs::read_dir(&data)
                    .unwrap()
                    .filter(|e| {
                        e.as_ref()
                            .unwrap()
                            .path()
                            .to_string_lossy()
                            .ends_with(".recycle")
                    })
                    .count()
            };
            assert_eq!(pooled(), 2, "two expired segments kept for reuse");
            let created = log.stats().segments_created;
            // Append (one durable record at a time, so the log cannot run ahead of the
            // preparation) until both are reused: no new zero-filled file meanwhile.
            let mut i = 401u64;
            while log.stats().segments_recycled < 2 {
                let a = log.append(1, &[&body_for(i, 4000)]).await.unwrap();
                log.wait_durable(a.last_index).await.unwrap();
                i += 1;
                assert!(i < 2000, "recycled segments are taken into use");
            }
            let last = i - 1;
            log.wait_durable(last).await.unwrap();
            log.wait_preallocation().await;
            assert_eq!(pooled(), 0);
            assert_eq!(log.stats().segments_created, created);
            let first = log.first_index();
            for k in first..=last {
                assert_eq!(
                    &log.entry(k).await.unwrap().body()[..],
                    &body_for(k, 4000)[..]
                );
            }
            log.close().await.unwrap();
            // Reopen: the log ends exactly at its last record although stale records
            // follow it in the reused file.
            let log = GroupLog::open(cfg).await.unwrap();
            assert_eq!(log.last_index(), last);
            assert_eq!(log.first_index(), first);
            for k in (first..=last).step_by(37) {
                assert_eq!(
                    &log.entry(k).await.unwrap().body()[..],
                    &body_for(k, 4000)[..]
                );
            }
            let a = log.append(2, &[b"after reuse"]).await.unwrap();
            assert_eq!(a.first_index, last + 1);
            log.wait_durable(last + 1).await.unwrap();
            log.close().await.unwrap();
        })
    });
}

/// The zero-copy path: the tail cache keeps the caller's body `Bytes` (leader) and
/// slices of the received records (follower): the same memory, not copies.
#[test]
fn the_tail_cache_shares_the_callers_bodies() {
    let dir = TempDir::new("log-zero-copy");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let within = |part: &bytes::Bytes, whole: &bytes::Bytes| {
                let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
                p >= w && p + part.len() <= w + whole.len()
            };
            let leader = GroupLog::open(small_config(&root.join("leader")))
                .await
                .unwrap();
            // Bodies cut from one receive buffer, as the server's are.
            let region: bytes::Bytes = (0..3000u32).map(|i| (i % 251) as u8).collect();
            let bodies: Vec<bytes::Bytes> = (0..3)
                .map(|i| region.slice(i * 1000..(i + 1) * 1000))
                .collect();
            let a = leader.append_bytes(2, &bodies).await.unwrap();
            for (i, body) in (a.first_index..=a.last_index).zip(&bodies) {
                let e = leader.entry(i).await.unwrap();
                assert_eq!(
                    e.body.as_ptr(),
                    body.as_ptr(),
                    "record {i}: body not shared"
                );
                assert!(within(&e.body, &region));
            }
            leader.wait_durable(a.last_index).await.unwrap();
            let mut records = Vec::new();
            for i in a.first_index..=a.last_index {
                records.extend_from_slice(&leader.entry(i).await.unwrap().record());
            }
            let records = bytes::Bytes::from(records);
            let follower = GroupLog::open(small_config(&root.join("follower")))
                .await
                .unwrap();
            let f = follower.append_encoded_bytes(&records).await.unwrap();
            assert_eq!((f.first_index, f.last_index), (a.first_index, a.last_index));
            for i in f.first_index..=f.last_index {
                let e = follower.entry(i).await.unwrap();
                assert!(within(&e.body, &records), "record {i}: body not a slice");
                assert_eq!(e.record(), leader.entry(i).await.unwrap().record());
            }
            // After a reopen the records come from disk: same bytes, own memory.
            follower.wait_durable(f.last_index).await.unwrap();
            follower.close().await.unwrap();
            let follower = GroupLog::open(small_config(&root.join("follower")))
                .await
                .unwrap();
            let e = follower.entry(2).await.unwrap();
            assert!(!within(&e.body, &records));
            assert_eq!(e.body, bodies[1]);
            follower.close().await.unwrap();
            leader.close().await.unwrap();
        })
    });
}

#[test]
fn hard_state_is_overwritten_in_two_slots_and_survives_a_torn_slot() {
    use dledger::store::{
        HARD_STATE_BYTES, HARD_STATE_FILE_BYTES, HARD_STATE_SLOT_BYTES, PersistedHardState,
        encode_hard_state,
    };
    let dir = TempDir::new("log-hardstate");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let cfg = small_config(&root);
            let file = cfg.group_dir().join("hardstate");
            let hs = |term, voted_for| HardState { term, voted_for };
            // The earlier one-state form (replaced by rename) is read as it is.
            std::fs::create_dir_all(cfg.group_dir()).unwrap();
            let mut old = [0u8; HARD_STATE_BYTES];
            encode_hard_state(
                &PersistedHardState {
                    term: 2,
                    voted_for: Some(1),
                },
                &mut old,
            )
            .unwrap();
            std::fs::write(&file, old).unwrap();
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            assert_eq!(log.hard_state(), hs(2, Some(1)));
            // Its first write makes the two-slot form; later ones alternate slots.
            for (term, vote) in [(3, None), (3, Some(0)), (4, None), (5, Some(2))] {
                log.persist_hard_state(hs(term, vote)).await.unwrap();
                assert_eq!(
                    std::fs::metadata(&file).unwrap().len(),
                    HARD_STATE_FILE_BYTES as u64
                );
            }
            log.close().await.unwrap();
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            assert_eq!(log.hard_state(), hs(5, Some(2)));
            log.close().await.unwrap();

            // A crash tears the slot being written (the one not holding the newest
            // state): the state durable before it is what a restart finds.
            let bytes = std::fs::read(&file).unwrap();
            let newest_slot = (0..2)
                .find(|s| {
                    let at = s * HARD_STATE_SLOT_BYTES;
                    bytes[at + 8..at + 16] == 5u64.to_be_bytes()
                })
                .unwrap();
            let mut torn = bytes.clone();
            let other = (1 - newest_slot) * HARD_STATE_SLOT_BYTES;
            torn[other..other + 12].copy_from_slice(&[0xA5; 12]);
            std::fs::write(&file, &torn).unwrap();
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            assert_eq!(log.hard_state(), hs(5, Some(2)));
            // And the next write goes into the torn slot, not over the newest state.
            log.persist_hard_state(hs(6, None)).await.unwrap();
            let after = std::fs::read(&file).unwrap();
            let kept = newest_slot * HARD_STATE_SLOT_BYTES;
            assert_eq!(
                after[kept..kept + HARD_STATE_SLOT_BYTES],
                bytes[kept..kept + HARD_STATE_SLOT_BYTES]
            );
            log.close().await.unwrap();
            let log = GroupLog::open(cfg).await.unwrap();
            assert_eq!(log.hard_state(), hs(6, None));
            log.close().await.unwrap();
        })
    });
}

#[test]
fn checkpoints_alternate_slots_and_a_torn_slot_falls_back() {
    use dledger::store::{CHECKPOINT_FILE_BYTES, CHECKPOINT_SLOT_BYTES};
    let dir = TempDir::new("log-checkpoint");
    let root = dir.path().to_owned();
    run(move || {
        Box::pin(async move {
            let cfg = small_config(&root);
            let file = cfg.group_dir().join("checkpoint");
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            for i in 1..=4u64 {
                let a = log.append(1, &[b"checkpointed"]).await.unwrap();
                log.wait_durable(a.last_index).await.unwrap();
                log.persist_checkpoint(i).await.unwrap();
                assert_eq!(
                    std::fs::metadata(&file).unwrap().len(),
                    CHECKPOINT_FILE_BYTES as u64
                );
            }
            log.close().await.unwrap();
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            assert_eq!(log.recovered().commit_index, 4);
            assert_eq!(log.last_index(), 4);
            log.close().await.unwrap();

            // Tear the slot that does not hold the newest checkpoint (the one a crash
            // could have been writing): the newest still counts.
            let bytes = std::fs::read(&file).unwrap();
            let gen_at = |s: usize| {
                let at = s * CHECKPOINT_SLOT_BYTES + 88;
                u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap())
            };
            let older = if gen_at(0) < gen_at(1) { 0 } else { 1 };
            let mut torn = bytes.clone();
            torn[older * CHECKPOINT_SLOT_BYTES + 50] ^= 0xFF;
            std::fs::write(&file, &torn).unwrap();
            let log = GroupLog::open(cfg.clone()).await.unwrap();
            assert_eq!(log.recovered().commit_index, 4);
            log.close().await.unwrap();
        })
    });
}

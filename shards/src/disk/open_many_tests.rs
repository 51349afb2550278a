//! Regression test: many groups' logs opened one after another on one executor (the
//! server's start-up) must all open, within a bound, while earlier groups' background
//! segment preparation is still in flight.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};

use super::{LogConfig, OPEN_CONCURRENCY_DEFAULT, open_logs};

fn scratch_dir(tag: &str) -> PathBuf {
    let base = std::env::var_os("DLEDGER_TEST_SCRATCH")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    base.join(format!("dledger-{tag}-{}-{n}", std::process::id()))
}

fn group_config(root: &std::path::Path, group: usize) -> LogConfig {
    let mut cfg = LogConfig::new(root, "n0", &format!("RaftNode{group:04}"));
    // Larger segments (closer to a server's) for measurements: a slower, heavier run.
    cfg.segment_bytes = std::env::var("DLEDGER_TEST_OPEN_SEGMENT_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 20);
    cfg.index_segment_bytes = 64 << 10;
    cfg.max_record_bytes = 16 << 10;
    cfg.write_buffer_bytes = 64 << 10;
    cfg.pending_bytes_max = 4 << 20;
    cfg.unsynced_bytes_max = 256 << 10;
    cfg.tail_cache_bytes = 32 << 10;
    cfg.disk_ratio_force_clean = 1.0;
    cfg.disk_ratio_refuse_writes = 1.0;
    cfg
}

/// Opens `groups` logs under `root`, `concurrency` at a time; returns the opened logs' count and
/// the time taken.
fn open_groups(root: PathBuf, groups: usize, concurrency: usize) -> (usize, Duration) {
    let plan = crate::memlock::ensure_memlock(1, 2 << 20).expect("memlock");
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(plan.io_memory_bytes)
        .spawn(move || async move {
            // The server's Raft tasks (a latency-sensitive queue) persist votes of the
            // groups already open while later groups are still being opened.
            let raft_queue = glommio::executor().create_task_queue(
                glommio::Shares::Static(1000),
                glommio::Latency::Matters(Duration::from_millis(2)),
                "raft",
            );
            let started = Instant::now();
            let mut logs = Vec::with_capacity(groups);
            let mut voters = Vec::new();
            // Two halves: the first half's votes are written while the second half opens.
            let half = groups / 2;
            for range in [0..half, half..groups] {
                let configs = range.clone().map(|g| group_config(&root, g)).collect();
                for (g, opened) in range.zip(open_logs(configs, concurrency).await) {
                    let log = opened.unwrap_or_else(|e| panic!("group {g}: {e}"));
                    let voter = log.clone();
                    voters.push(
                        glommio::spawn_local_into(
                            async move {
                                for term in 1..=3 {
                                    let hs = dledger::raft::HardState {
                                        term,
                                        voted_for: Some(0),
                                    };
                                    voter.persist_hard_state(hs).await.expect("hard state");
                                }
                            },
                            raft_queue,
                        )
                        .expect("spawn voter"),
                    );
                    logs.push(log);
                }
            }
            for v in voters {
                v.await;
            }
            let took = started.elapsed();
            let n = logs.len();
            for log in logs {
                log.close().await.expect("close");
            }
            (n, took)
        })
        .expect("spawn executor")
        .join()
        .expect("executor thread")
}

#[test]
fn many_groups_open_without_hanging() {
    let groups: usize = std::env::var("DLEDGER_TEST_OPEN_GROUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let concurrency: usize = std::env::var("DLEDGER_TEST_OPEN_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(OPEN_CONCURRENCY_DEFAULT);
    let root = scratch_dir("open-many");
    std::fs::create_dir_all(&root).expect("create scratch dir");
    let (tx, rx) = std::sync::mpsc::channel();
    let worker_root = root.clone();
    std::thread::spawn(move || {
        let _ = tx.send(open_groups(worker_root, groups, concurrency));
    });
    let result = rx.recv_timeout(Duration::from_secs(60));
    let (opened, took) = result.unwrap_or_else(|_| {
        panic!(
            "opening {groups} groups did not finish in 60 s (hang?) under {}",
            root.display()
        )
    });
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(opened, groups);
    eprintln!(
        "opened {groups} groups {concurrency} at a time in {took:?} ({:.1} groups/s)",
        groups as f64 / took.as_secs_f64()
    );
}

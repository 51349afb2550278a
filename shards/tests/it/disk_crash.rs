//! Crash test: a child process appends and reports what is durable; the parent
//! SIGKILLs it at random moments (at least 50 times), reopens the log each time and
//! checks that every record reported durable before the kill is intact and in order,
//! and that recovery never fails or panics.
//!
//! The child is this test binary re-executed to run the `#[ignore]`d `crash_child`
//! entry with `DLEDGER_CRASH_DIR` set.

// Test helpers outside #[test] fns panic on failure just like the tests themselves.
#![allow(clippy::unwrap_used)]

use crate::common::child::child_test;
use crate::disk_common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use disk_common::{TempDir, body_for, run, small_config};
use dledger_shards::disk::{FlushMode, GroupLog, LogConfig, SyncMethod};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::{Rng, SeedableRng};

const KILLS: u32 = 60;
const BODY_MAX: usize = 2000;

fn config(root: &Path, run_no: u64) -> LogConfig {
    let mut cfg = small_config(root);
    // Rotate the durability settings so each mode sees crashes.
    match run_no % 4 {
        0 => {}
        1 => {
            cfg.flush_mode = FlushMode::AsyncFlush {
                flush_interval_ms: 3,
            }
        }
        2 => cfg.sync_method = SyncMethod::ODsync,
        _ => {
            // Solo rounds O_DSYNC, probes and truncations through the shared flush.
            cfg.sync_method = SyncMethod::Adaptive;
            cfg.shared_flush = true;
        }
    }
    cfg
}

/// The child: append batches forever (now and then truncating the batch it just
/// appended, as a Raft conflict would); print `@@D <index>` whenever `index` is durable.
#[test]
#[ignore = "run by crash_kill_loop as a child process"]
fn crash_child() {
    let Ok(dir) = std::env::var("DLEDGER_CRASH_DIR") else {
        return;
    };
    let run_no: u64 = std::env::var("DLEDGER_CRASH_RUN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    run(move || {
        Box::pin(async move {
            let log = GroupLog::open(config(Path::new(&dir), run_no))
                .await
                .unwrap();
            // Terms only grow across runs, as they would under Raft.
            let term = run_no + 1;
            println!("\n@@READY {}", log.last_index());
            let mut rng = rand_pcg::Pcg64::seed_from_u64(run_no);
            let mut waiting = None;
            let mut reported = log.last_index().min(log.durable_index());
            loop {
                let next = log.last_index() + 1;
                let n = rng.random_range(1..=8u64);
                let bodies: Vec<Vec<u8>> =
                    (next..next + n).map(|i| body_for(i, BODY_MAX)).collect();
                let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
                let a = log.append(term, &refs).await.unwrap();
                if rng.random_range(0..20) == 0 {
                    // A Raft conflict: drop the batch just appended (never anything
                    // reported durable) and let the loop append the same indexes again.
                    log.truncate_suffix(a.first_index, reported).await.unwrap();
                    waiting = None;
                    continue;
                }
                if let Some(prev) = waiting.replace(a.last_index) {
                    log.wait_durable(prev).await.unwrap();
                    reported = log.durable_index();
                    println!("@@D {reported}");
                    if rng.random_range(0..10) == 0 {
                        log.persist_checkpoint(log.durable_index()).await.unwrap();
                    }
                }
            }
        })
    });
}

#[test]
fn crash_kill_loop() {
    let dir = TempDir::new("crash");
    let seed: u64 = std::env::var("DLEDGER_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed {seed} (replay: DLEDGER_CRASH_SEED={seed})");
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let mut durable_max = 0u64;
    let mut verified_to = 0u64;
    let started = Instant::now();
    for run_no in 0..u64::from(KILLS) {
        let mut child = child_test("disk_crash::crash_child")
            .env("DLEDGER_CRASH_DIR", dir.path())
            .env("DLEDGER_CRASH_RUN", run_no.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Sometimes kill during open/recovery, mostly while appending.
        let kill_during_open = rng.random_range(0..5) == 0;
        if kill_during_open {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..15)));
        } else {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(line) if line.contains("@@READY") => break,
                    Ok(_) => {}
                    Err(_) if Instant::now() > deadline => panic!("child never became ready"),
                    Err(_) => {
                        if let Ok(Some(status)) = child.try_wait() {
                            let mut err = String::new();
                            std::io::Read::read_to_string(
                                &mut child.stderr.take().unwrap(),
                                &mut err,
                            )
                            .unwrap();
                            panic!("child exited before ready ({status}): {err}");
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(5..60)));
        }
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
        let status = child.wait().unwrap();
        reader.join().unwrap();
        for line in rx.try_iter() {
            if let Some(d) = line.strip_prefix("@@D ") {
                let d: u64 = d.trim().parse().unwrap();
                durable_max = durable_max.max(d);
            }
        }
        if status.code().is_some() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            panic!("child exited by itself ({status}) in run {run_no}: {err}");
        }
        // Reopen and check every record reported durable.
        let root = dir.path().to_owned();
        let from = verified_to;
        let checked = run(move || {
            Box::pin(async move {
                let log = GroupLog::open(config(&root, 0))
                    .await
                    .unwrap_or_else(|e| panic!("recovery failed after kill {run_no}: {e}"));
                assert!(
                    log.last_index() >= durable_max,
                    "run {run_no}: log ends at {} but {durable_max} was reported durable",
                    log.last_index()
                );
                // New durable records in full and in order, plus a sample of older ones.
                let mut last_term = 0;
                for i in from + 1..=durable_max {
                    let e = log
                        .entry(i)
                        .await
                        .unwrap_or_else(|e| panic!("read {i}: {e}"));
                    assert_eq!(e.index, i);
                    assert_eq!(
                        &e.body()[..],
                        &body_for(i, BODY_MAX)[..],
                        "body of record {i}"
                    );
                    assert!(e.term >= last_term, "term order at {i}");
                    last_term = e.term;
                }
                let mut sample = rand_pcg::Pcg64::seed_from_u64(run_no);
                for _ in 0..16 {
                    if durable_max == 0 {
                        break;
                    }
                    let i = sample.random_range(1..=durable_max);
                    let e = log
                        .entry(i)
                        .await
                        .unwrap_or_else(|e| panic!("read {i}: {e}"));
                    assert_eq!(
                        &e.body()[..],
                        &body_for(i, BODY_MAX)[..],
                        "body of record {i}"
                    );
                }
                log.close().await.unwrap();
                durable_max
            })
        });
        verified_to = checked;
    }
    eprintln!(
        "{KILLS} kills, {durable_max} records durable at the end, {:?}",
        started.elapsed()
    );
    assert!(durable_max > 0, "no record ever became durable");
}

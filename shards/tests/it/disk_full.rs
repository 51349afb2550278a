//! Disk full on a small tmpfs: appends fail with DISK_FULL, nothing durable is lost,
//! reads go on, and appends resume once space is freed. Needs root to mount; skips
//! (saying so) when the mount fails.

// Test helpers outside #[test] fns panic on failure just like the tests themselves.
#![allow(clippy::unwrap_used)]

use crate::disk_common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use disk_common::{TempDir, body_for, run};
use dledger_shards::disk::{DiskError, GroupLog, LogConfig};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Option<Mount> {
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status();
    match status {
        Ok(s) if s.success() => Some(Mount(dir.to_owned())),
        other => {
            eprintln!(
                "SKIPPED disk-full test: cannot mount a tmpfs at {} ({other:?}); run as root",
                dir.display()
            );
            None
        }
    }
}

fn config(root: &Path, refuse_ratio: f64) -> LogConfig {
    let mut cfg = LogConfig::new(root, "n0", "RaftNode00");
    cfg.segment_bytes = 1 << 20;
    cfg.max_record_bytes = 16 << 10;
    cfg.write_buffer_bytes = 64 << 10;
    cfg.pending_bytes_max = 1 << 20;
    cfg.unsynced_bytes_max = 256 << 10;
    cfg.disk_check_interval_ms = 1;
    cfg.disk_ratio_refuse_writes = refuse_ratio;
    cfg
}

/// Fills the log until DISK_FULL, checks durability and reads, frees the ballast and
/// checks that appends resume.
fn fill_free_resume(refuse_ratio: f64, tag: &str) {
    let dir = TempDir::new(tag);
    let Some(_mount) = mount_tmpfs(dir.path(), "8m") else {
        return;
    };
    let root = dir.path().to_owned();
    let ballast = root.join("ballast");
    std::fs::write(&ballast, vec![1u8; 2 << 20]).unwrap();
    run(move || {
        Box::pin(async move {
            let log = GroupLog::open(config(&root, refuse_ratio)).await.unwrap();
            let mut next = 1u64;
            let full = loop {
                match log.append(1, &[&body_for(next, 8000)]).await {
                    Ok(a) => {
                        log.wait_durable(a.last_index).await.unwrap();
                        next += 1;
                    }
                    Err(e) => break e,
                }
                assert!(next < 10_000, "the 8 MiB disk never filled");
            };
            assert!(matches!(full, DiskError::DiskFull { .. }), "{full}");
            assert_eq!((full.code(), full.code_name()), (415, "DISK_FULL"));
            assert!(log.failure().is_none(), "DISK_FULL must not be fatal");
            let durable = log.durable_index();
            assert_eq!(durable, next - 1);
            assert!(durable > 100, "only {durable} records fit");
            // Reads go on while full.
            for i in (1..=durable).step_by(13) {
                assert_eq!(
                    &log.entry(i).await.unwrap().body()[..],
                    &body_for(i, 8000)[..]
                );
            }
            // Still full on a second try.
            let again = log.append(1, &[&body_for(next, 8000)]).await;
            assert!(
                matches!(again, Err(DiskError::DiskFull { .. })),
                "{again:?}"
            );
            std::fs::remove_file(&ballast).unwrap();
            glommio::timer::sleep(Duration::from_millis(5)).await;
            let mut resumed = 0;
            for _ in 0..50 {
                match log.append(1, &[&body_for(next, 8000)]).await {
                    Ok(a) => {
                        log.wait_durable(a.last_index).await.unwrap();
                        next += 1;
                        resumed += 1;
                    }
                    Err(e) => panic!("append after freeing space: {e}"),
                }
            }
            assert_eq!(resumed, 50);
            log.close().await.unwrap();
            let log = GroupLog::open(config(&root, refuse_ratio)).await.unwrap();
            assert_eq!(log.last_index(), next - 1);
            for i in 1..next {
                assert_eq!(
                    &log.entry(i).await.unwrap().body()[..],
                    &body_for(i, 8000)[..],
                    "record {i}"
                );
            }
            log.close().await.unwrap();
        })
    });
}

#[test]
fn disk_full_by_usage_ratio() {
    fill_free_resume(0.90, "full-ratio");
}

#[test]
fn disk_full_by_enospc() {
    // With the ratio check off, the segment preparation itself runs out of space.
    fill_free_resume(1.0, "full-enospc");
}

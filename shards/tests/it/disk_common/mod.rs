//! Helpers shared by the commitlog tests.

use std::path::{Path, PathBuf};

use dledger_shards::disk::LogConfig;
use glommio::{LocalExecutorBuilder, Placement};

static TEMP_DIR_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        // The sequence number keeps two tests that start at the same instant apart.
        let seq = TEMP_DIR_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("dledger-{tag}-{}-{n}-{seq}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small log config: 256 KiB segments so tests cross segment boundaries.
pub fn small_config(root: &Path) -> LogConfig {
    let mut cfg = LogConfig::new(root, "n0", "RaftNode00");
    cfg.segment_bytes = 256 << 10;
    cfg.index_segment_bytes = 4096;
    cfg.max_record_bytes = 16 << 10;
    cfg.write_buffer_bytes = 64 << 10;
    cfg.pending_bytes_max = 4 << 20;
    cfg.unsynced_bytes_max = 256 << 10;
    cfg.tail_cache_bytes = 32 << 10;
    cfg.disk_check_interval_ms = 10;
    // The machine's disk is shared and may be fuller than the production ratios allow:
    // these tests are about the log, not about that disk. The tests of the ratios set
    // their own (on a filesystem they mount).
    cfg.disk_ratio_force_clean = 1.0;
    cfg.disk_ratio_refuse_writes = 1.0;
    cfg
}

/// Runs `f` on a fresh glommio executor (with io_memory sized to the memlock limit).
pub fn run<T: Send + 'static>(
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> T {
    let plan = dledger_shards::memlock::ensure_memlock(1, 2 << 20).expect("memlock");
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(plan.io_memory_bytes)
        .spawn(move || async move { f().await })
        .expect("spawn executor")
        .join()
        .expect("executor thread")
}

/// A deterministic body for record `index` of length 1..=max_len.
pub fn body_for(index: u64, max_len: usize) -> Vec<u8> {
    let len = 1 + (index.wrapping_mul(2654435761) as usize % max_len);
    (0..len)
        .map(|i| (index as usize * 31 + i * 7) as u8)
        .collect()
}

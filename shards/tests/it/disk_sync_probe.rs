//! Measures the two ways to make a direct-I/O append durable on this machine:
//! a write on a file opened with `O_DSYNC` (the kernel may use a FUA write) versus a
//! plain write followed by `fdatasync`. The commitlog's default
//! (`dledger_shards::disk::SyncMethod`) was chosen from these numbers.
//!
//! It prints figures and asserts nothing about speed, so it is `#[ignore]`d:
//! `cargo test -p dledger-shards --release --test it disk_sync_probe -- --ignored --nocapture`

use std::time::Instant;

use glommio::io::OpenOptions;
use glommio::{LocalExecutorBuilder, Placement};

const FILE_BYTES: u64 = 64 << 20;
const SAMPLES: usize = 1000;

fn percentile(sorted_us: &[u64], p: f64) -> u64 {
    let rank = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    sorted_us[rank]
}

async fn measure(path: &std::path::Path, o_dsync: bool, write_bytes: usize) -> Vec<u64> {
    let mut opts = OpenOptions::new();
    opts.create(true).write(true).read(true);
    if o_dsync {
        opts.custom_flags(libc_o_dsync());
    }
    let file = opts.dma_open(path).await.expect("open probe file");
    let mut samples = Vec::with_capacity(SAMPLES);
    let mut pos = 0u64;
    for i in 0..SAMPLES {
        let mut buf = file.alloc_dma_buffer(write_bytes);
        buf.as_bytes_mut().fill((i % 251) as u8 + 1);
        let start = Instant::now();
        let written = file.write_at(buf, pos).await.expect("write");
        assert_eq!(written, write_bytes);
        if !o_dsync {
            file.fdatasync().await.expect("fdatasync");
        }
        samples.push(start.elapsed().as_micros() as u64);
        // Rewrite the same block half of the time, as the tail-block rewrite does.
        if i % 2 == 1 {
            pos = (pos + write_bytes as u64) % FILE_BYTES;
        }
    }
    file.close().await.expect("close");
    samples.sort_unstable();
    samples
}

fn libc_o_dsync() -> i32 {
    nix::fcntl::OFlag::O_DSYNC.bits()
}

#[test]
#[ignore = "prints timings; run by hand on the target machine"]
fn o_dsync_versus_fdatasync() {
    let dir = std::env::temp_dir().join(format!("dledger-sync-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("probe dir");
    let path = dir.join("probe");
    // Preallocate and zero-fill, as the commitlog does for its segments.
    std::fs::write(&path, vec![0u8; FILE_BYTES as usize]).expect("zero fill");
    nix::unistd::sync();
    let ex = LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .expect("executor");
    ex.run(async {
        for write_bytes in [512usize, 4096, 65536, 262144, 1 << 20] {
            for o_dsync in [false, true, false, true] {
                let s = measure(&path, o_dsync, write_bytes).await;
                println!(
                    "{:>6} B {:<18} p50 {:>5} us  p90 {:>5} us  p99 {:>5} us  max {:>6} us",
                    write_bytes,
                    if o_dsync {
                        "O_DSYNC write"
                    } else {
                        "write+fdatasync"
                    },
                    percentile(&s, 0.5),
                    percentile(&s, 0.9),
                    percentile(&s, 0.99),
                    s[s.len() - 1]
                );
            }
        }
    });
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

/// Durable bandwidth of back-to-back rounds of `round_bytes`: each round is a write
/// then an fdatasync; with `pipelined`, round k+1's write is issued while round k's
/// fdatasync is in flight (what group commit can overlap). MB/s (10^6 bytes).
async fn round_bandwidth(path: &std::path::Path, round_bytes: usize, pipelined: bool) -> f64 {
    let file = std::rc::Rc::new(
        OpenOptions::new()
            .write(true)
            .read(true)
            .dma_open(path)
            .await
            .expect("open probe file"),
    );
    let rounds = ((32usize << 20) / round_bytes).max(16);
    let start = Instant::now();
    let mut pos = 0u64;
    let mut in_flight: Option<glommio::Task<()>> = None;
    for i in 0..rounds {
        let mut buf = file.alloc_dma_buffer(round_bytes);
        buf.as_bytes_mut().fill((i % 251) as u8 + 1);
        let written = file.write_at(buf, pos).await.expect("write");
        assert_eq!(written, round_bytes);
        pos = (pos + round_bytes as u64) % FILE_BYTES;
        if let Some(t) = in_flight.take() {
            t.await;
        }
        let f = file.clone();
        let sync = glommio::spawn_local(async move { f.fdatasync().await.expect("fdatasync") });
        if pipelined {
            in_flight = Some(sync);
        } else {
            sync.await;
        }
    }
    if let Some(t) = in_flight.take() {
        t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    (rounds * round_bytes) as f64 / secs / 1e6
}

#[test]
#[ignore = "prints timings; run by hand on the target machine"]
fn durable_round_bandwidth() {
    let dir = std::env::temp_dir().join(format!("dledger-round-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("probe dir");
    let path = dir.join("probe");
    std::fs::write(&path, vec![0u8; FILE_BYTES as usize]).expect("zero fill");
    nix::unistd::sync();
    let ex = LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .expect("executor");
    ex.run(async {
        for round_bytes in [64usize << 10, 256 << 10, 1 << 20, 4 << 20] {
            for pipelined in [false, true, false, true] {
                let mb = round_bandwidth(&path, round_bytes, pipelined).await;
                println!(
                    "{:>5} KiB rounds, {:<28} {:>6.1} MB/s",
                    round_bytes >> 10,
                    if pipelined {
                        "write overlapping prev sync"
                    } else {
                        "write then sync"
                    },
                    mb
                );
            }
        }
    });
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

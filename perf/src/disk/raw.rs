//! (a) The raw device baseline, measured with glommio `DmaFile` on the same
//! directory as the store, so the store's figures can be read as ratios:
//!
//! - 4 KiB O_DIRECT write followed by fdatasync, sequential offsets in a
//!   preallocated zero-filled file (the store's flush pattern);
//! - 4 KiB O_DIRECT write on a file opened with O_DSYNC (a FUA write where the
//!   device supports it), the alternative the store may choose instead;
//! - sequential O_DIRECT writes of 1 MiB blocks cycling over a preallocated
//!   256 MiB file, one and then four in flight, with an fdatasync at the end
//!   (durable bandwidth of overwrites).

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::io::DmaFile;

use super::files::{
    FILL_BLOCK_BYTES, create_zeroed, fdatasync, open_direct, remove_if_present, write_all_at,
};
use crate::error::{PerfError, PerfResult};
use crate::hist::{LatencyHistogram, LatencySummary};

/// Size of one latency-test write.
pub const LATENCY_WRITE_BYTES: usize = 4096;
/// Region the latency writes cycle through; large enough that a few seconds
/// of writes rarely wrap, small enough to zero-fill in well under a second.
const LATENCY_REGION_BYTES: u64 = 64 << 20;
/// Region the bandwidth writes cycle through.
const BANDWIDTH_REGION_BYTES: u64 = 256 << 20;
/// Writes in flight of the bandwidth phases: one (a plain sequential loop)
/// and four (what glommio's stream writer keeps in flight); the device's
/// bandwidth is the better of the two.
const SEQ_WRITES_IN_FLIGHT: [usize; 2] = [1, 4];
/// Scratch file of the latency phases, removed after the run.
const LATENCY_FILE_NAME: &str = "raw-latency.scratch";
/// Scratch file of the bandwidth phase, removed after the run.
const BANDWIDTH_FILE_NAME: &str = "raw-bandwidth.scratch";
/// Unrecorded writes before each latency phase (first-touch effects).
const WARMUP_WRITES: u32 = 64;
/// Block size of the bandwidth phase.
pub const SEQ_BLOCK_BYTES: u64 = FILL_BLOCK_BYTES as u64;
/// Bytes in a decimal megabyte, the unit of every MB/s figure.
pub const BYTES_PER_MB: f64 = 1_000_000.0;

/// How a latency-test write is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// `write` then `fdatasync`.
    WriteThenFdatasync,
    /// `write` on a file opened with O_DSYNC.
    OpenedDsync,
}

/// One sequential-write bandwidth phase.
#[derive(Debug, Clone, Copy)]
pub struct SeqWriteBandwidth {
    /// Writes kept in flight.
    pub in_flight: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Durable write bandwidth, 10^6 bytes per second.
    pub mb_per_s: f64,
}

/// The baseline figures.
#[derive(Debug, Clone)]
pub struct RawBaseline {
    /// 4 KiB write + fdatasync latency.
    pub write_fdatasync: LatencySummary,
    /// 4 KiB O_DSYNC write latency.
    pub write_dsync: LatencySummary,
    /// Sequential 1 MiB O_DIRECT writes, durable, one entry per
    /// [`SEQ_WRITES_IN_FLIGHT`] value.
    pub seq_writes: Vec<SeqWriteBandwidth>,
    /// Direct-I/O alignment glommio reports for the directory's device.
    pub alignment_bytes: u64,
}

impl RawBaseline {
    /// The best sequential bandwidth measured: the device's figure.
    pub fn seq_write_mb_per_s(&self) -> f64 {
        self.seq_writes
            .iter()
            .map(|s| s.mb_per_s)
            .fold(0.0, f64::max)
    }
}

/// Runs the baseline phases, `phase` long each, in `dir`, and removes
/// the scratch files afterwards.
pub async fn measure(dir: &Path, phase: Duration) -> PerfResult<RawBaseline> {
    let latency_path = dir.join(LATENCY_FILE_NAME);
    let bandwidth_path = dir.join(BANDWIDTH_FILE_NAME);
    let result = measure_in(&latency_path, &bandwidth_path, phase).await;
    // Clean up even after a failure; report the measurement error first.
    let cleanup = remove_if_present(&latency_path).and(remove_if_present(&bandwidth_path));
    let baseline = result?;
    cleanup?;
    Ok(baseline)
}

async fn measure_in(
    latency_path: &Path,
    bandwidth_path: &Path,
    phase: Duration,
) -> PerfResult<RawBaseline> {
    create_zeroed(latency_path, LATENCY_REGION_BYTES).await?;
    let plain = open_direct(latency_path, 0).await?;
    let alignment_bytes = plain.alignment();
    if alignment_bytes == 0 || LATENCY_WRITE_BYTES as u64 % alignment_bytes != 0 {
        return Err(PerfError::io(
            "checking direct-I/O alignment",
            latency_path,
            std::io::Error::other(format!(
                "the device alignment {alignment_bytes} does not divide 4 KiB writes"
            )),
        ));
    }
    let write_fdatasync =
        latency_phase(&plain, latency_path, Durability::WriteThenFdatasync, phase).await?;
    close(plain, latency_path).await?;

    let dsync = open_direct(latency_path, nix::libc::O_DSYNC).await?;
    let write_dsync = latency_phase(&dsync, latency_path, Durability::OpenedDsync, phase).await?;
    close(dsync, latency_path).await?;

    create_zeroed(bandwidth_path, BANDWIDTH_REGION_BYTES).await?;
    let file = open_direct(bandwidth_path, 0).await?;
    let mut seq_writes = Vec::with_capacity(SEQ_WRITES_IN_FLIGHT.len());
    for in_flight in SEQ_WRITES_IN_FLIGHT {
        let (bytes, elapsed) = bandwidth_phase(&file, bandwidth_path, phase, in_flight).await?;
        seq_writes.push(SeqWriteBandwidth {
            in_flight,
            bytes,
            mb_per_s: bytes as f64 / BYTES_PER_MB / elapsed.as_secs_f64(),
        });
    }
    close(file, bandwidth_path).await?;

    Ok(RawBaseline {
        write_fdatasync,
        write_dsync,
        seq_writes,
        alignment_bytes,
    })
}

async fn close(file: DmaFile, path: &Path) -> PerfResult<()> {
    file.close()
        .await
        .map_err(|e| PerfError::io("closing", path, e))
}

/// Durable 4 KiB writes at sequential offsets for `phase`, one at a time.
async fn latency_phase(
    file: &DmaFile,
    path: &Path,
    durability: Durability,
    phase: Duration,
) -> PerfResult<LatencySummary> {
    let mut block = file.alloc_dma_buffer(LATENCY_WRITE_BYTES);
    // Non-zero content: a device or file system must not be able to skip it.
    block.as_bytes_mut().fill(0xA5);
    let block = Rc::new(block);
    let mut hist = LatencyHistogram::new();
    let mut offset = 0u64;
    let mut next_offset = || {
        let at = offset;
        offset = (offset + LATENCY_WRITE_BYTES as u64) % LATENCY_REGION_BYTES;
        at
    };
    for _ in 0..WARMUP_WRITES {
        durable_write(file, path, block.clone(), next_offset(), durability).await?;
    }
    let deadline = Instant::now() + phase;
    loop {
        let started = Instant::now();
        if started >= deadline {
            break;
        }
        durable_write(file, path, block.clone(), next_offset(), durability).await?;
        hist.record(started.elapsed());
    }
    hist.summary().ok_or_else(|| PerfError::NoSamples {
        phase: phase_name(durability).to_owned(),
        seconds: phase.as_secs(),
    })
}

fn phase_name(durability: Durability) -> &'static str {
    match durability {
        Durability::WriteThenFdatasync => "raw 4 KiB write+fdatasync",
        Durability::OpenedDsync => "raw 4 KiB O_DSYNC write",
    }
}

async fn durable_write(
    file: &DmaFile,
    path: &Path,
    block: Rc<glommio::io::DmaBuffer>,
    offset: u64,
    durability: Durability,
) -> PerfResult<()> {
    write_all_at(file, path, block, offset).await?;
    if durability == Durability::WriteThenFdatasync {
        fdatasync(file, path).await?;
    }
    Ok(())
}

/// Sequential 1 MiB writes for `phase`, `in_flight` at a time (the next
/// free block goes to whichever write finishes first); returns bytes written
/// and the time taken including the final fdatasync.
async fn bandwidth_phase(
    file: &DmaFile,
    path: &Path,
    phase: Duration,
    in_flight: usize,
) -> PerfResult<(u64, Duration)> {
    assert!(in_flight > 0, "at least one write must be in flight");
    let mut block = file.alloc_dma_buffer(FILL_BLOCK_BYTES);
    block.as_bytes_mut().fill(0x5A);
    let block = Rc::new(block);
    let file = Rc::new(file.dup().map_err(|e| PerfError::io("dup", path, e))?);
    let next_block = Rc::new(Cell::new(0u64));
    let started = Instant::now();
    let deadline = started + phase;
    let writers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (file, block, next_block, path) = (
                file.clone(),
                block.clone(),
                next_block.clone(),
                path.to_owned(),
            );
            glommio::spawn_local(async move {
                let mut written = 0u64;
                while Instant::now() < deadline {
                    let n = next_block.get();
                    next_block.set(n + 1);
                    let offset = (n * SEQ_BLOCK_BYTES) % BANDWIDTH_REGION_BYTES;
                    write_all_at(&file, &path, block.clone(), offset).await?;
                    written += SEQ_BLOCK_BYTES;
                }
                Ok::<u64, PerfError>(written)
            })
        })
        .collect();
    let mut written = 0;
    for w in writers {
        written += w.await?;
    }
    fdatasync(&file, path).await?;
    let elapsed = started.elapsed();
    // Every writer has finished, so this is the last handle on the duplicate.
    if let Ok(dup) = Rc::try_unwrap(file) {
        close(dup, path).await?;
    }
    Ok((written, elapsed))
}

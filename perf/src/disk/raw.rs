//! (a) The raw device baseline, measured with glommio `DmaFile` on the same
//! directory as the store, so the store's figures can be read as ratios:
//!
//! - 4 KiB O_DIRECT write followed by fdatasync, sequential offsets in a
//!   preallocated zero-filled file (the store's flush pattern);
//! - 4 KiB O_DIRECT write on a file opened with O_DSYNC (a FUA write where the
//!   device supports it), the alternative the store may choose instead;
//! - sequential O_DIRECT writes of 1 MiB blocks cycling over a preallocated
//!   256 MiB file, one and then four in flight, each slice ended by an
//!   fdatasync (durable bandwidth of overwrites).
//!
//! Measurements run in slices ([`RawBench`] methods) that the caller
//! interleaves with the store's, so both see the same machine load.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::io::{DmaBuffer, DmaFile};

use super::files::{
    FILL_BLOCK_BYTES, create_zeroed, fdatasync, open_direct, remove_if_present, write_all_at,
};
use crate::error::{PerfError, PerfResult};
use crate::hist::{LatencyHistogram, LatencySummary};

/// Size of one latency-test write.
pub const LATENCY_WRITE_BYTES: usize = 4096;
/// Region each latency probe cycles through; large enough that a few seconds
/// of writes rarely wrap, small enough to zero-fill in well under a second.
const LATENCY_REGION_BYTES: u64 = 64 << 20;
/// Region the bandwidth writes cycle through.
const BANDWIDTH_REGION_BYTES: u64 = 256 << 20;
/// Writes in flight of the bandwidth measurements: one (a plain sequential
/// loop) and four (what glommio's stream writer keeps in flight); the
/// device's bandwidth is the better of the two.
pub const SEQ_WRITES_IN_FLIGHT: [usize; 2] = [1, 4];
/// Scratch file of the latency probes (one region each), removed after the run.
const LATENCY_FILE_NAME: &str = "raw-latency.scratch";
/// Scratch file of the bandwidth measurements, removed after the run.
const BANDWIDTH_FILE_NAME: &str = "raw-bandwidth.scratch";
/// Unrecorded writes before a latency probe's first slice (first-touch effects).
const WARMUP_WRITES: u32 = 64;
/// Block size of the bandwidth measurements.
pub const SEQ_BLOCK_BYTES: u64 = FILL_BLOCK_BYTES as u64;
/// Bytes in a decimal megabyte, the unit of every MB/s figure.
pub const BYTES_PER_MB: f64 = 1_000_000.0;

/// One sequential-write bandwidth measurement.
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

/// A durable 4 KiB write probe over its own region of the latency file.
#[derive(Debug)]
struct LatencyProbe {
    file: DmaFile,
    /// Whether each write is followed by fdatasync (else the file is O_DSYNC).
    fdatasync_each: bool,
    region_start: u64,
    region_bytes: u64,
    next_in_region: u64,
    warmed_up: bool,
    hist: LatencyHistogram,
    name: &'static str,
}

/// Accumulated bandwidth slices at one in-flight depth.
#[derive(Debug, Clone, Copy, Default)]
struct SeqAccum {
    bytes: u64,
    elapsed: Duration,
}

/// The open scratch files and what their slices measured so far.
#[derive(Debug)]
pub struct RawBench {
    latency_path: PathBuf,
    bandwidth_path: PathBuf,
    block_4k: Rc<DmaBuffer>,
    block_1m: Rc<DmaBuffer>,
    fdatasync_probe: LatencyProbe,
    dsync_probe: LatencyProbe,
    bandwidth_file: Rc<DmaFile>,
    next_seq_block: Rc<Cell<u64>>,
    bandwidth_region_bytes: u64,
    seq: [SeqAccum; SEQ_WRITES_IN_FLIGHT.len()],
    alignment_bytes: u64,
}

/// Removes the scratch files (also after a failed run).
pub fn remove_scratch(dir: &Path) -> PerfResult<()> {
    remove_if_present(&dir.join(LATENCY_FILE_NAME))
        .and(remove_if_present(&dir.join(BANDWIDTH_FILE_NAME)))
}

impl RawBench {
    /// Creates the zero-filled scratch files in `dir` and opens them.
    pub async fn open(dir: &Path) -> PerfResult<RawBench> {
        Self::open_sized(dir, LATENCY_REGION_BYTES, BANDWIDTH_REGION_BYTES).await
    }

    /// [`Self::open`] with other region sizes (whole fill blocks), for tests.
    async fn open_sized(
        dir: &Path,
        latency_region_bytes: u64,
        bandwidth_region_bytes: u64,
    ) -> PerfResult<RawBench> {
        let latency_path = dir.join(LATENCY_FILE_NAME);
        let bandwidth_path = dir.join(BANDWIDTH_FILE_NAME);
        create_zeroed(&latency_path, 2 * latency_region_bytes).await?;
        create_zeroed(&bandwidth_path, bandwidth_region_bytes).await?;
        let plain = open_direct(&latency_path, 0).await?;
        let alignment_bytes = plain.alignment();
        if alignment_bytes == 0 || LATENCY_WRITE_BYTES as u64 % alignment_bytes != 0 {
            return Err(PerfError::io(
                "checking direct-I/O alignment",
                &latency_path,
                std::io::Error::other(format!(
                    "the device alignment {alignment_bytes} does not divide 4 KiB writes"
                )),
            ));
        }
        let dsync = open_direct(&latency_path, nix::libc::O_DSYNC).await?;
        let bandwidth_file = Rc::new(open_direct(&bandwidth_path, 0).await?);
        let mut block_4k = plain.alloc_dma_buffer(LATENCY_WRITE_BYTES);
        // Non-zero content: a device or file system must not be able to skip it.
        block_4k.as_bytes_mut().fill(0xA5);
        let mut block_1m = bandwidth_file.alloc_dma_buffer(FILL_BLOCK_BYTES);
        block_1m.as_bytes_mut().fill(0x5A);
        let probe = |file, fdatasync_each, region_start, name| LatencyProbe {
            file,
            fdatasync_each,
            region_start,
            region_bytes: latency_region_bytes,
            next_in_region: 0,
            warmed_up: false,
            hist: LatencyHistogram::new(),
            name,
        };
        Ok(RawBench {
            fdatasync_probe: probe(plain, true, 0, "raw 4 KiB write+fdatasync"),
            dsync_probe: probe(
                dsync,
                false,
                latency_region_bytes,
                "raw 4 KiB O_DSYNC write",
            ),
            latency_path,
            bandwidth_path,
            block_4k: Rc::new(block_4k),
            block_1m: Rc::new(block_1m),
            bandwidth_file,
            next_seq_block: Rc::new(Cell::new(0)),
            bandwidth_region_bytes,
            seq: Default::default(),
            alignment_bytes,
        })
    }

    /// 4 KiB write + fdatasync, one at a time, for `slice`.
    pub async fn write_fdatasync_slice(&mut self, slice: Duration) -> PerfResult<()> {
        latency_slice(
            &mut self.fdatasync_probe,
            &self.latency_path,
            &self.block_4k,
            slice,
        )
        .await
    }

    /// [`Self::write_fdatasync_slice`] recorded apart: returns its latencies and leaves
    /// them out of [`Self::write_fdatasync_histogram`] and the summary (the bench runs
    /// it with one core kept busy).
    pub async fn write_fdatasync_slice_apart(
        &mut self,
        slice: Duration,
    ) -> PerfResult<LatencyHistogram> {
        let kept = std::mem::take(&mut self.fdatasync_probe.hist);
        let result = self.write_fdatasync_slice(slice).await;
        let apart = std::mem::replace(&mut self.fdatasync_probe.hist, kept);
        result.map(|()| apart)
    }

    /// 4 KiB O_DSYNC writes, one at a time, for `slice`.
    pub async fn write_dsync_slice(&mut self, slice: Duration) -> PerfResult<()> {
        latency_slice(
            &mut self.dsync_probe,
            &self.latency_path,
            &self.block_4k,
            slice,
        )
        .await
    }

    /// Sequential 1 MiB writes with `SEQ_WRITES_IN_FLIGHT[which]` in flight
    /// for `slice`, then an fdatasync (counted in the slice's time).
    pub async fn seq_write_slice(&mut self, which: usize, slice: Duration) -> PerfResult<()> {
        let in_flight = SEQ_WRITES_IN_FLIGHT[which];
        let started = Instant::now();
        let deadline = started + slice;
        let writers: Vec<_> = (0..in_flight)
            .map(|_| {
                let region_bytes = self.bandwidth_region_bytes;
                let (file, block, next_block, path) = (
                    self.bandwidth_file.clone(),
                    self.block_1m.clone(),
                    self.next_seq_block.clone(),
                    self.bandwidth_path.clone(),
                );
                // The next free block goes to whichever write finishes first.
                glommio::spawn_local(async move {
                    let mut written = 0u64;
                    while Instant::now() < deadline {
                        let n = next_block.get();
                        next_block.set(n + 1);
                        let offset = (n * SEQ_BLOCK_BYTES) % region_bytes;
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
        fdatasync(&self.bandwidth_file, &self.bandwidth_path).await?;
        let acc = &mut self.seq[which];
        acc.bytes += written;
        acc.elapsed += started.elapsed();
        Ok(())
    }

    /// The 4 KiB write+fdatasync latencies recorded so far (`bench` plots their
    /// distribution beside the cluster's).
    pub fn write_fdatasync_histogram(&self) -> &LatencyHistogram {
        &self.fdatasync_probe.hist
    }

    /// Closes the files, removes them and returns the figures.
    pub async fn finish(self) -> PerfResult<RawBaseline> {
        let summary = |probe: &LatencyProbe| {
            probe.hist.summary().ok_or_else(|| PerfError::NoSamples {
                phase: probe.name.to_owned(),
            })
        };
        let write_fdatasync = summary(&self.fdatasync_probe);
        let write_dsync = summary(&self.dsync_probe);
        close(self.fdatasync_probe.file, &self.latency_path).await?;
        close(self.dsync_probe.file, &self.latency_path).await?;
        // Every writer task has finished, so this is the last handle.
        if let Ok(file) = Rc::try_unwrap(self.bandwidth_file) {
            close(file, &self.bandwidth_path).await?;
        }
        remove_if_present(&self.latency_path)?;
        remove_if_present(&self.bandwidth_path)?;
        let mut seq_writes = Vec::with_capacity(SEQ_WRITES_IN_FLIGHT.len());
        for (in_flight, acc) in SEQ_WRITES_IN_FLIGHT.into_iter().zip(self.seq) {
            if acc.bytes == 0 || acc.elapsed.is_zero() {
                return Err(PerfError::NoSamples {
                    phase: format!("raw sequential 1 MiB writes x{in_flight}"),
                });
            }
            seq_writes.push(SeqWriteBandwidth {
                in_flight,
                bytes: acc.bytes,
                mb_per_s: acc.bytes as f64 / BYTES_PER_MB / acc.elapsed.as_secs_f64(),
            });
        }
        Ok(RawBaseline {
            write_fdatasync: write_fdatasync?,
            write_dsync: write_dsync?,
            seq_writes,
            alignment_bytes: self.alignment_bytes,
        })
    }
}

async fn close(file: DmaFile, path: &Path) -> PerfResult<()> {
    file.close()
        .await
        .map_err(|e| PerfError::io("closing", path, e))
}

/// Durable 4 KiB writes at sequential offsets of the probe's region for
/// `slice`, one at a time; the first slice starts with unrecorded warm-up writes.
async fn latency_slice(
    probe: &mut LatencyProbe,
    path: &Path,
    block: &Rc<DmaBuffer>,
    slice: Duration,
) -> PerfResult<()> {
    if !probe.warmed_up {
        for _ in 0..WARMUP_WRITES {
            durable_write(probe, path, block).await?;
        }
        probe.warmed_up = true;
    }
    let deadline = Instant::now() + slice;
    loop {
        let started = Instant::now();
        if started >= deadline {
            return Ok(());
        }
        durable_write(probe, path, block).await?;
        probe.hist.record(started.elapsed());
    }
}

async fn durable_write(
    probe: &mut LatencyProbe,
    path: &Path,
    block: &Rc<DmaBuffer>,
) -> PerfResult<()> {
    let offset = probe.region_start + probe.next_in_region;
    probe.next_in_region = (probe.next_in_region + LATENCY_WRITE_BYTES as u64) % probe.region_bytes;
    write_all_at(&probe.file, path, block.clone(), offset).await?;
    if probe.fdatasync_each {
        fdatasync(&probe.file, path).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Short slices on small files: every figure has samples, percentiles are
    /// ordered, and the scratch files are gone afterwards. Asserts nothing
    /// about speed.
    #[test]
    fn slices_accumulate_and_scratch_is_removed() {
        let dir = std::env::temp_dir().join(format!("dledger-perf-raw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        let run_dir = dir.clone();
        let baseline = crate::runtime::run_on_executor(
            "raw-test",
            crate::runtime::ExecutorConfig {
                io_memory_bytes: 2 << 20,
                cpu: None,
            },
            move || async move {
                dledger_shards::disk::prime_glommio_iopoll_probe(&run_dir)
                    .await
                    .map_err(|e| PerfError::Store(e.to_string()))?;
                let mut bench = RawBench::open_sized(&run_dir, 4 << 20, 8 << 20).await?;
                let slice = Duration::from_millis(50);
                for _round in 0..2 {
                    bench.write_fdatasync_slice(slice).await?;
                    bench.write_dsync_slice(slice).await?;
                    for which in 0..SEQ_WRITES_IN_FLIGHT.len() {
                        bench.seq_write_slice(which, slice).await?;
                    }
                }
                bench.finish().await
            },
        )
        .expect("the raw baseline runs");
        for s in [baseline.write_fdatasync, baseline.write_dsync] {
            assert!(s.count > 0);
            assert!(s.p50_us <= s.p99_us && s.p99_us <= s.p999_us && s.p999_us <= s.max_us);
        }
        assert_eq!(baseline.seq_writes.len(), SEQ_WRITES_IN_FLIGHT.len());
        assert!(baseline.seq_write_mb_per_s() > 0.0);
        assert!(baseline.alignment_bytes >= 512);
        assert!(!dir.join(LATENCY_FILE_NAME).exists());
        assert!(!dir.join(BANDWIDTH_FILE_NAME).exists());
        std::fs::remove_dir_all(&dir).expect("temp dir is removable");
    }
}

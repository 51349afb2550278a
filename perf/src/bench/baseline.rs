//! The floors the cluster's figures are divided by, measured in the same run before the
//! load: one durable 4 KiB write (O_DIRECT write + fdatasync, with the disk harness's
//! [`RawBench`], on the directory the nodes store in) and one loopback TCP round trip
//! (blocking sockets with TCP_NODELAY, a message of the bench's body size echoed by a
//! second thread).
//!
//! The same durable write is measured once more while a thread keeps one core busy
//! (a spin loop: no I/O, no memory traffic to speak of). On the 2-core test VM this
//! alone turned about one flush in 500 into a 15–20 ms stall (write+fdatasync p99.9
//! 229 µs idle, 15.9 ms with one core busy; a script, not this harness): the cluster
//! keeps a core busy, so its own flushes meet those stalls, and this row shows how far
//! the disk floor itself moves under that.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dledger_shards::disk::prime_glommio_iopoll_probe;

use crate::disk::raw::{RawBaseline, RawBench};
use crate::error::{PerfError, PerfResult};
use crate::hist::LatencyHistogram;
use crate::runtime::{ExecutorConfig, run_on_executor};

/// glommio registered-buffer arena for the raw probe (shrunk to RLIMIT_MEMLOCK).
const IO_MEMORY_BYTES: usize = 4 << 20;
/// Share of the baseline time the O_DSYNC probe and each bandwidth probe get (the raw
/// harness wants samples of all of them; the bench reports write+fdatasync).
const SIDE_PROBE_SHARE: f64 = 0.1;
/// Largest round-trip message.
const RTT_MESSAGE_BYTES_MAX: usize = 1 << 20;

/// Both baselines.
#[derive(Debug, Clone)]
pub struct Baselines {
    pub raw: RawBaseline,
    /// Full distribution of the write+fdatasync probe (for the plot and the JSON).
    pub raw_fsync_hist: LatencyHistogram,
    /// The same probe while one core is kept busy.
    pub raw_fsync_busy_hist: LatencyHistogram,
    /// Loopback round trips (at least one sample).
    pub tcp_rtt_hist: LatencyHistogram,
    pub tcp_rtt_message_bytes: usize,
}

/// Measures both baselines, the disk one in `dir`, each for about `seconds`.
pub fn measure(dir: &Path, seconds: f64, message_bytes: usize) -> PerfResult<Baselines> {
    let (raw, raw_fsync_hist, raw_fsync_busy_hist) = raw_fsync(dir, seconds)?;
    let message_bytes = message_bytes.clamp(1, RTT_MESSAGE_BYTES_MAX);
    let tcp_rtt_hist = tcp_round_trip(Duration::from_secs_f64(seconds), message_bytes)?;
    Ok(Baselines {
        raw,
        raw_fsync_hist,
        raw_fsync_busy_hist,
        tcp_rtt_hist,
        tcp_rtt_message_bytes: message_bytes,
    })
}

/// The raw probes: the summary, the write+fdatasync latencies, and the same with one
/// core busy.
fn raw_fsync(
    dir: &Path,
    seconds: f64,
) -> PerfResult<(RawBaseline, LatencyHistogram, LatencyHistogram)> {
    let dir = dir.to_owned();
    let cleanup_dir = dir.clone();
    let main = Duration::from_secs_f64(seconds);
    let side = Duration::from_secs_f64(seconds * SIDE_PROBE_SHARE);
    run_on_executor(
        "bench-raw",
        ExecutorConfig {
            io_memory_bytes: IO_MEMORY_BYTES,
            cpu: None,
        },
        move || async move {
            prime_glommio_iopoll_probe(&dir)
                .await
                .map_err(|e| PerfError::Store(e.to_string()))?;
            let mut bench = RawBench::open(&dir).await?;
            let result = async {
                bench.write_fdatasync_slice(main).await?;
                bench.write_dsync_slice(side).await?;
                for which in 0..crate::disk::raw::SEQ_WRITES_IN_FLIGHT.len() {
                    bench.seq_write_slice(which, side).await?;
                }
                let busy = BusyCore::start()?;
                let busy_hist = bench.write_fdatasync_slice_apart(main).await;
                busy.stop();
                busy_hist
            }
            .await;
            let hist = bench.write_fdatasync_histogram().clone();
            let finished = bench.finish().await;
            let busy_hist = result?;
            Ok((finished?, hist, busy_hist))
        },
    )
    .inspect_err(|_| {
        // `finish` removes the scratch files; after an early failure, do it here.
        let _ = crate::disk::raw::remove_scratch(&cleanup_dir);
    })
}

/// A thread that keeps one core busy (a spin loop) until stopped.
struct BusyCore {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl BusyCore {
    fn start() -> PerfResult<BusyCore> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("bench-busy-core".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
            .map_err(|e| PerfError::Load(format!("starting the busy-core thread: {e}")))?;
        Ok(BusyCore { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        // The loop only reads the flag: it cannot panic.
        let _ = self.thread.join();
    }
}

/// Round trips of `message_bytes` over loopback for `length`, one at a time.
fn tcp_round_trip(length: Duration, message_bytes: usize) -> PerfResult<LatencyHistogram> {
    let err = |what: &str, e: std::io::Error| PerfError::Load(format!("loopback {what}: {e}"));
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| err("bind", e))?;
    let addr = listener.local_addr().map_err(|e| err("bind", e))?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = vec![0u8; message_bytes];
        loop {
            match s.read_exact(&mut buf) {
                Ok(()) => s.write_all(&buf)?,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    });
    let mut hist = LatencyHistogram::new();
    let mut run = || -> std::io::Result<()> {
        let mut s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let out = vec![0x5Au8; message_bytes];
        let mut back = vec![0u8; message_bytes];
        let deadline = Instant::now() + length;
        let mut warm = 100;
        while Instant::now() < deadline {
            let t0 = Instant::now();
            s.write_all(&out)?;
            s.read_exact(&mut back)?;
            if warm > 0 {
                warm -= 1;
            } else {
                hist.record(t0.elapsed());
            }
        }
        Ok(())
    };
    let outcome = run();
    // The client socket is closed: the echo thread sees EOF and ends.
    let echoed = echo
        .join()
        .map_err(|_| PerfError::Load("loopback echo thread panicked".into()))?;
    outcome.map_err(|e| err("round trip", e))?;
    echoed.map_err(|e| err("echo", e))?;
    if hist.count() == 0 {
        return Err(PerfError::NoSamples {
            phase: "loopback TCP round trip".into(),
        });
    }
    Ok(hist)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_round_trips_are_measured() {
        let h = tcp_round_trip(Duration::from_millis(100), 1024).expect("loopback works");
        let s = h.summary().expect("samples were checked");
        assert!(s.count > 10);
        assert!(s.p50_us <= s.p99_us && s.p99_us <= s.max_us);
    }
}

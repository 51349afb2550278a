//! The load generator: the dledger client library on one glommio executor, appends
//! spread over the groups, pipelined.
//!
//! - Closed loop (`--concurrency C`): C tasks, each sending its next append when the
//!   previous one is answered; task `w`'s `k`-th append goes to group `(w + k·C) mod G`, so
//!   every group gets load even when C < G.
//! - Open loop (`--rate R`): append `n` is due at `start + n/R` and goes to group `n mod G`;
//!   its latency runs from that intended time, not from when it was actually sent, so a
//!   stalled server or a late sender shows as latency (coordinated omission corrected).
//!   At most [`OPEN_LOOP_OUTSTANDING_MAX`] calls are outstanding; beyond that the sender
//!   waits, and the wait counts too.
//!
//! A call is measured when it was sent (or due) inside the window `[warm-up end, warm-up
//! end + seconds)`; throughput counts the calls that completed inside the window. CPU of
//! the server processes and of this process is read from `/proc` at the window's edges.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dledger::config::HostPort;
use dledger_shards::client::{Client, ClientOptions, ClientStats};
use glommio::sync::Semaphore;

use super::procstat::{ProcSample, ProcUnits, cpu_between};
use crate::error::{PerfError, PerfResult};
use crate::hist::LatencyHistogram;
use crate::runtime::{ExecutorConfig, run_on_executor};

/// Bound on open-loop calls outstanding (each is one task holding one request).
pub const OPEN_LOOP_OUTSTANDING_MAX: usize = 16_384;
/// Progress line period.
const PROGRESS_INTERVAL_MS: u64 = 1_000;
/// The load executor does no direct I/O: the smallest arena glommio takes.
const IO_MEMORY_BYTES: usize = 1 << 20;
/// Requests in flight per client connection (the client's own default).
const INFLIGHT_PER_CONN: usize = 1024;

/// How requests are issued.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// This many calls always in flight.
    Closed { concurrency: usize },
    /// Calls at this fixed rate per second.
    Open { calls_per_s: f64 },
}

/// One load run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub addrs: Vec<HostPort>,
    pub groups: Vec<String>,
    pub mode: Mode,
    pub body_bytes: usize,
    /// Bodies per append call.
    pub batch: usize,
    pub warmup: Duration,
    pub measure: Duration,
    /// Processes whose CPU is charged to the appends (the local servers; may be empty).
    pub server_pids: Vec<u32>,
    /// Print a progress line on stderr every second.
    pub progress: bool,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Latency of append calls sent in the window.
    pub hist: LatencyHistogram,
    /// Calls completed in the window.
    pub calls: u64,
    /// Bodies appended by those calls.
    pub appends: u64,
    pub measured: Duration,
    /// Failed calls by code name (whole run, warm-up included).
    pub errors: BTreeMap<String, u64>,
    pub first_error: Option<String>,
    /// CPU the server processes spent during the window (`None`: no pids known).
    pub server_cpu: Option<Duration>,
    /// CPU this process (the load generator) spent during the window.
    pub loadgen_cpu: Duration,
    /// Resident memory of each server process at the end of the window.
    pub server_rss_bytes: Vec<u64>,
    /// Client counters summed over the groups.
    pub client: ClientStats,
    /// Open loop: calls that found [`OPEN_LOOP_OUTSTANDING_MAX`] outstanding and waited.
    pub sender_stalls: u64,
}

impl LoadResult {
    pub fn appends_per_s(&self) -> f64 {
        self.appends as f64 / self.measured.as_secs_f64()
    }
}

/// Everything the tasks record into.
#[derive(Debug)]
struct Recorder {
    window_start: Instant,
    window_end: Instant,
    batch: u64,
    hist: LatencyHistogram,
    /// Since the last progress line, window or not.
    interval: LatencyHistogram,
    interval_calls: u64,
    calls: u64,
    errors: BTreeMap<String, u64>,
    first_error: Option<String>,
}

impl Recorder {
    fn done(&mut self, sent: Instant, result: Result<(), String>, code: &'static str) {
        let finished = Instant::now();
        match result {
            Ok(()) => {
                let latency = finished.saturating_duration_since(sent);
                self.interval.record(latency);
                self.interval_calls += 1;
                if sent >= self.window_start && sent < self.window_end {
                    self.hist.record(latency);
                }
                if finished >= self.window_start && finished < self.window_end {
                    self.calls += 1;
                }
            }
            Err(message) => {
                *self.errors.entry(code.to_owned()).or_default() += 1;
                self.first_error.get_or_insert(message);
            }
        }
    }
}

/// Runs the load on its own executor and returns what it measured.
pub fn run(spec: LoadSpec) -> PerfResult<LoadResult> {
    let units = ProcUnits::read()?;
    run_on_executor(
        "bench-load",
        ExecutorConfig {
            io_memory_bytes: IO_MEMORY_BYTES,
            cpu: None,
        },
        move || async move { drive(spec, units).await },
    )
}

async fn drive(spec: LoadSpec, units: ProcUnits) -> PerfResult<LoadResult> {
    assert!(
        !spec.groups.is_empty() && spec.batch > 0,
        "validated by the plan"
    );
    let opts = ClientOptions {
        max_inflight_per_conn: INFLIGHT_PER_CONN,
        ..ClientOptions::default()
    };
    let mut clients = Vec::with_capacity(spec.groups.len());
    for g in &spec.groups {
        let c = Client::connect(spec.addrs.clone(), g.clone(), opts.clone())
            .await
            .map_err(|e| PerfError::Load(format!("connecting to group {g}: {e}")))?;
        clients.push(Rc::new(c));
    }
    let body = Bytes::from(vec![0xB5u8; spec.body_bytes]);
    let bodies: Rc<[Bytes]> = std::iter::repeat_n(body, spec.batch).collect();
    let start = Instant::now();
    let window_start = start + spec.warmup;
    let window_end = window_start + spec.measure;
    let rec = Rc::new(RefCell::new(Recorder {
        window_start,
        window_end,
        batch: spec.batch as u64,
        hist: LatencyHistogram::new(),
        interval: LatencyHistogram::new(),
        interval_calls: 0,
        calls: 0,
        errors: BTreeMap::new(),
        first_error: None,
    }));
    let sampler = {
        let pids = spec.server_pids.clone();
        glommio::spawn_local(async move {
            sleep_until(window_start).await;
            let before = sample_all(&units, &pids)?;
            sleep_until(window_end).await;
            let after = sample_all(&units, &pids)?;
            Ok::<_, PerfError>((before, after))
        })
    };
    let progress = spec.progress.then(|| {
        let rec = rec.clone();
        glommio::spawn_local(progress_lines(rec, start, window_start, window_end))
    });
    let sender_stalls = match spec.mode {
        Mode::Closed { concurrency } => {
            closed_loop(&clients, &bodies, &rec, concurrency, window_end).await;
            0
        }
        Mode::Open { calls_per_s } => {
            open_loop(&clients, &bodies, &rec, calls_per_s, start, window_end).await
        }
    };
    let (before, after) = sampler.await?;
    if let Some(p) = progress {
        p.await;
    }
    let rec = rec.borrow();
    let mut client = ClientStats::default();
    for c in &clients {
        let s = c.stats();
        client.retries += s.retries;
        client.redirects += s.redirects;
        client.connects += s.connects;
        client.discoveries += s.discoveries;
        c.close();
    }
    let (servers_before, self_before) = before.split_at(spec.server_pids.len());
    let (servers_after, self_after) = after.split_at(spec.server_pids.len());
    Ok(LoadResult {
        hist: rec.hist.clone(),
        calls: rec.calls,
        appends: rec.calls * rec.batch,
        measured: spec.measure,
        errors: rec.errors.clone(),
        first_error: rec.first_error.clone(),
        server_cpu: (!spec.server_pids.is_empty())
            .then(|| cpu_between(servers_before, servers_after)),
        loadgen_cpu: cpu_between(self_before, self_after),
        server_rss_bytes: servers_after.iter().map(|s| s.rss_bytes).collect(),
        client,
        sender_stalls,
    })
}

/// The servers' samples, then this process's.
fn sample_all(units: &ProcUnits, pids: &[u32]) -> PerfResult<Vec<ProcSample>> {
    pids.iter()
        .chain(std::iter::once(&0))
        .map(|p| units.sample(*p))
        .collect()
}

async fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        glommio::timer::sleep(t - now).await;
    }
}

/// One append call, recorded as sent at `sent`.
async fn one_call(client: &Client, bodies: &[Bytes], rec: &RefCell<Recorder>, sent: Instant) {
    match client.append(bodies).await {
        Ok(_) => rec.borrow_mut().done(sent, Ok(()), ""),
        Err(e) => {
            let code = e.code_name();
            rec.borrow_mut()
                .done(sent, Err(format!("group {}: {e}", client.group())), code)
        }
    }
}

async fn closed_loop(
    clients: &[Rc<Client>],
    bodies: &Rc<[Bytes]>,
    rec: &Rc<RefCell<Recorder>>,
    concurrency: usize,
    end: Instant,
) {
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let clients: Vec<Rc<Client>> = clients.to_vec();
            let (bodies, rec) = (bodies.clone(), rec.clone());
            glommio::spawn_local(async move {
                let mut g = w % clients.len();
                while Instant::now() < end {
                    one_call(&clients[g], &bodies, &rec, Instant::now()).await;
                    g = (g + concurrency) % clients.len();
                }
            })
        })
        .collect();
    for w in workers {
        w.await;
    }
}

/// Returns how many calls had to wait for an outstanding slot.
async fn open_loop(
    clients: &[Rc<Client>],
    bodies: &Rc<[Bytes]>,
    rec: &Rc<RefCell<Recorder>>,
    calls_per_s: f64,
    start: Instant,
    end: Instant,
) -> u64 {
    debug_assert!(calls_per_s > 0.0 && calls_per_s.is_finite());
    let slots = Rc::new(Semaphore::new(OPEN_LOOP_OUTSTANDING_MAX as u64));
    let period_s = 1.0 / calls_per_s;
    let mut stalls = 0;
    let mut n: u64 = 0;
    loop {
        let due = start + Duration::from_secs_f64(n as f64 * period_s);
        if due >= end {
            break;
        }
        sleep_until(due).await;
        if slots.available() == 0 {
            stalls += 1;
        }
        let Ok(permit) = slots.acquire_static_permit(1).await else {
            break;
        };
        let client = clients[(n % clients.len() as u64) as usize].clone();
        let (bodies, rec) = (bodies.clone(), rec.clone());
        glommio::spawn_local(async move {
            one_call(&client, &bodies, &rec, due).await;
            drop(permit);
        })
        .detach();
        n += 1;
    }
    // Every outstanding call ends (answered or failed within the client's deadline).
    let _all = slots.acquire(OPEN_LOOP_OUTSTANDING_MAX as u64).await;
    stalls
}

/// A line on stderr every second: phase, elapsed, appends/s and p99 of the last second.
/// On a terminal the line is rewritten in place.
async fn progress_lines(
    rec: Rc<RefCell<Recorder>>,
    start: Instant,
    window_start: Instant,
    window_end: Instant,
) {
    let tty = std::io::stderr().is_terminal();
    let mut last = Instant::now();
    loop {
        glommio::timer::sleep(Duration::from_millis(PROGRESS_INTERVAL_MS)).await;
        let now = Instant::now();
        let (calls, p99_us, batch, errors) = {
            let mut r = rec.borrow_mut();
            let out = (
                r.interval_calls,
                r.interval.value_at_quantile(0.99),
                r.batch,
                r.errors.values().sum::<u64>(),
            );
            r.interval = LatencyHistogram::new();
            r.interval_calls = 0;
            out
        };
        let phase = if now < window_start {
            "warm-up"
        } else {
            "measure"
        };
        let rate = (calls * batch) as f64 / now.duration_since(last).as_secs_f64();
        last = now;
        let line = format!(
            "bench: {phase} {:5.1}/{:.1} s  {rate:9.0} appends/s  p99 {:8.3} ms  errors {errors}",
            now.duration_since(start).as_secs_f64(),
            window_end.duration_since(start).as_secs_f64(),
            p99_us as f64 / 1000.0,
        );
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        if now >= window_end {
            if tty {
                let _ = writeln!(err);
            }
            return;
        }
    }
}

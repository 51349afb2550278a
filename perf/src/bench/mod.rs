//! `dledger-perf bench`: p99 append latency and throughput of a cluster, beside the
//! physical floors measured in the same run.
//!
//! ```text
//! cargo run --release -p dledger-perf -- bench [--concurrency C | --rate R] [--groups G]
//!     [--bytes B] [--batch K] [--seconds S] [--warmup W] [--flush sync|async] [--shards N]
//!     [-n NAMESRV | --peers ADDRS] [--json FILE] [--hgrm FILE] [--plot FILE.svg|.png]
//! cargo run --release -p dledger-perf -- bench --matrix [--plot FILE.svg|.png] [--json FILE]
//! cargo run --release -p dledger-perf -- bench --idle-groups 1000
//! ```
//!
//! Without `-n`/`--peers` it starts three `dledger server` processes on loopback
//! ([`cluster`]), storage and configs in a fresh temporary directory removed afterwards.
//! Before the load it measures the floors ([`baseline`]): 4 KiB O_DIRECT write +
//! fdatasync on that directory and a loopback TCP round trip. Then the load ([`load`]),
//! a progress line on stderr each second, the report ([`output`]) and, last, the line
//!
//! ```text
//! p50_us=A p99_us=B p999_us=C ops_per_s=D raw_fsync_p99_us=E p99_ratio=B/E
//! ```
//!
//! Latencies are per append call (a call carries `--batch` bodies); `ops_per_s` counts
//! bodies appended per second.

pub mod baseline;
pub mod cluster;
pub mod idle;
pub mod load;
pub mod matrix;
pub mod output;
pub mod plot;
pub mod procstat;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use argh::FromArgs;
use dledger::config::HostPort;

use crate::cluster::RunDir;
use crate::error::{PerfError, PerfResult};
use cluster::{Flush, LocalCluster, LocalSpec, RemoteCluster};
use load::{LoadResult, LoadSpec, Mode};
use output::{RunConfig, RunReport};

/// Longest measured or warm-up time accepted.
const SECONDS_MAX: f64 = 3600.0;
/// Largest `--concurrency` (each is one task and one request in flight).
const CONCURRENCY_MAX: usize = 65_536;
/// Largest `--rate` (append calls per second).
const RATE_MAX: f64 = 10_000_000.0;
/// Largest `--bytes` (the server's default `maxBodyBytes`).
const BODY_BYTES_MAX: usize = 4 << 20;
/// Largest `--batch` (the server's default `maxBodiesPerAppend`).
const BATCH_MAX: usize = 1024;
/// Largest `--groups` / `--idle-groups` (the config's bound on `dLegerGroups`).
const GROUPS_MAX: usize = 4096;
/// Largest `--shards`.
const SHARDS_MAX: usize = 256;
/// Time allowed for a local cluster's groups to get their leaders: a base plus a
/// share per group (elections and hand-overs to the preferred leaders).
const READY_BASE_MS: u64 = 30_000;
const READY_PER_GROUP_MS: u64 = 150;

static RUN_SEQ: AtomicU32 = AtomicU32::new(0);

/// measure append latency and throughput against the raw disk and loopback floors
#[derive(FromArgs, Debug, Clone)]
#[argh(subcommand, name = "bench")]
pub struct BenchArgs {
    /// existing cluster: a name server host:port (default: start a local 3-node cluster)
    #[argh(option, short = 'n')]
    pub namesrv: Option<String>,
    /// existing cluster: its nodes' client addresses, host:port separated by ';' or ','
    #[argh(option)]
    pub peers: Option<String>,
    /// groups the appends are spread over (default 1)
    #[argh(option, default = "1")]
    pub groups: usize,
    /// closed loop: append calls in flight (default 1)
    #[argh(option)]
    pub concurrency: Option<usize>,
    /// open loop: append calls per second at fixed intervals, latency counted from each
    /// call's intended send time
    #[argh(option)]
    pub rate: Option<f64>,
    /// body size in bytes (default 1024)
    #[argh(option, default = "1024")]
    pub bytes: usize,
    /// bodies per append call (default 1)
    #[argh(option, default = "1")]
    pub batch: usize,
    /// measured seconds (default 10; 3 per cell with --matrix)
    #[argh(option)]
    pub seconds: Option<f64>,
    /// warm-up seconds before the measurement (default 2; 1 per cell with --matrix)
    #[argh(option)]
    pub warmup: Option<f64>,
    /// local cluster durability: sync or async (default sync)
    #[argh(option)]
    pub flush: Option<String>,
    /// local cluster: shards (executors) per node (default 1)
    #[argh(option)]
    pub shards: Option<usize>,
    /// write the whole report, configuration and git commit as JSON
    #[argh(option)]
    pub json: Option<PathBuf>,
    /// write the latency distribution in HdrHistogram's percentile format (µs)
    #[argh(option)]
    pub hgrm: Option<PathBuf>,
    /// write a chart (latency by percentile, or the matrix): FILE.svg or FILE.png
    #[argh(option)]
    pub plot: Option<PathBuf>,
    /// run groups {1,8,64,512} x concurrency {1,16,256} and report one table and chart
    #[argh(switch)]
    pub matrix: bool,
    /// report each node's CPU and memory while hosting this many idle groups
    #[argh(option)]
    pub idle_groups: Option<usize>,
    /// seconds each baseline runs (default 2)
    #[argh(option, default = "2.0")]
    pub baseline_seconds: f64,
    /// directory for the local cluster's storage and the raw-disk baseline (a fresh
    /// subdirectory is made and removed; default: the system temp dir)
    #[argh(option)]
    pub dir: Option<PathBuf>,
    /// keep the local cluster's directory (configs, logs, data) after the run
    #[argh(switch)]
    pub keep_dir: bool,
    /// the dledger server binary (default: DLEDGER_SERVER_BIN, else built with cargo)
    #[argh(option)]
    pub server_bin: Option<PathBuf>,
    /// no progress line
    #[argh(switch)]
    pub quiet: bool,
}

/// Where the load goes.
#[derive(Debug, Clone)]
pub enum TargetPlan {
    Local {
        flush: Flush,
        shards: usize,
    },
    Remote {
        peers: Option<String>,
        namesrv: Option<String>,
    },
}

/// Validated arguments.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: TargetPlan,
    pub groups: usize,
    pub mode: Mode,
    pub body_bytes: usize,
    pub batch: usize,
    pub seconds: f64,
    pub warmup: f64,
    pub baseline_seconds: f64,
    pub base_dir: PathBuf,
    pub keep_dir: bool,
    pub server_bin: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub hgrm: Option<PathBuf>,
    pub plot: Option<PathBuf>,
    pub progress: bool,
}

fn bad(flag: &'static str, reason: impl Into<String>) -> PerfError {
    PerfError::BadArgument {
        flag,
        reason: reason.into(),
    }
}

fn check_seconds(flag: &'static str, v: f64, min: f64) -> PerfResult<f64> {
    if v.is_finite() && v >= min && v <= SECONDS_MAX {
        Ok(v)
    } else {
        Err(bad(flag, format!("{v} is not in {min}..={SECONDS_MAX}")))
    }
}

impl BenchArgs {
    /// Checks every value; `cell_defaults` picks the matrix's shorter default times.
    pub fn plan(&self, cell_defaults: bool) -> PerfResult<Plan> {
        let (seconds_default, warmup_default) = if cell_defaults {
            (3.0, 1.0)
        } else {
            (10.0, 2.0)
        };
        let seconds = check_seconds("--seconds", self.seconds.unwrap_or(seconds_default), 0.1)?;
        let warmup = check_seconds("--warmup", self.warmup.unwrap_or(warmup_default), 0.0)?;
        let baseline_seconds = check_seconds("--baseline-seconds", self.baseline_seconds, 0.1)?;
        if self.groups == 0 || self.groups > GROUPS_MAX {
            return Err(bad(
                "--groups",
                format!("{} is not in 1..={GROUPS_MAX}", self.groups),
            ));
        }
        if self.bytes == 0 || self.bytes > BODY_BYTES_MAX {
            return Err(bad(
                "--bytes",
                format!("{} is not in 1..={BODY_BYTES_MAX}", self.bytes),
            ));
        }
        if self.batch == 0 || self.batch > BATCH_MAX {
            return Err(bad(
                "--batch",
                format!("{} is not in 1..={BATCH_MAX}", self.batch),
            ));
        }
        let mode = match (self.concurrency, self.rate) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "--rate",
                    "give --concurrency (closed loop) or --rate (open loop), not both",
                ));
            }
            (_, Some(r)) if !(r.is_finite() && r > 0.0 && r <= RATE_MAX) => {
                return Err(bad("--rate", format!("{r} is not in (0, {RATE_MAX}]")));
            }
            (_, Some(r)) => Mode::Open { calls_per_s: r },
            (c, None) => {
                let c = c.unwrap_or(1);
                if c == 0 || c > CONCURRENCY_MAX {
                    return Err(bad(
                        "--concurrency",
                        format!("{c} is not in 1..={CONCURRENCY_MAX}"),
                    ));
                }
                Mode::Closed { concurrency: c }
            }
        };
        let target = if self.peers.is_some() || self.namesrv.is_some() {
            if self.flush.is_some() || self.shards.is_some() {
                return Err(bad(
                    "--flush/--shards",
                    "only apply to the local cluster (not with -n or --peers)",
                ));
            }
            if self.peers.is_some() && self.namesrv.is_some() {
                return Err(bad("--peers", "give -n NAMESRV or --peers, not both"));
            }
            TargetPlan::Remote {
                peers: self.peers.clone(),
                namesrv: self.namesrv.clone(),
            }
        } else {
            let flush = match &self.flush {
                None => Flush::Sync,
                Some(f) => Flush::parse(f)
                    .ok_or_else(|| bad("--flush", format!("{f:?} is not sync or async")))?,
            };
            let shards = self.shards.unwrap_or(1);
            if shards == 0 || shards > SHARDS_MAX {
                return Err(bad(
                    "--shards",
                    format!("{shards} is not in 1..={SHARDS_MAX}"),
                ));
            }
            TargetPlan::Local { flush, shards }
        };
        if let Some(p) = &self.plot {
            plot::ChartFormat::of(p).map_err(|e| bad("--plot", e))?;
        }
        Ok(Plan {
            target,
            groups: self.groups,
            mode,
            body_bytes: self.bytes,
            batch: self.batch,
            seconds,
            warmup,
            baseline_seconds,
            base_dir: self.dir.clone().unwrap_or_else(std::env::temp_dir),
            keep_dir: self.keep_dir,
            server_bin: self.server_bin.clone(),
            json: self.json.clone(),
            hgrm: self.hgrm.clone(),
            plot: self.plot.clone(),
            progress: !self.quiet,
        })
    }
}

/// Runs the subcommand.
pub fn run(args: &BenchArgs) -> PerfResult<()> {
    match (args.matrix, args.idle_groups) {
        (true, Some(_)) => Err(bad("--matrix", "and --idle-groups are separate runs")),
        (true, None) => matrix::run(&args.plan(true)?),
        (false, Some(n)) => idle::run(&args.plan(false)?, n),
        (false, None) => single(&args.plan(false)?),
    }
}

/// A fresh directory under the plan's base directory for one cluster or baseline.
pub fn fresh_dir(base: &Path, what: &str) -> PathBuf {
    base.join(format!(
        "dledger-bench-{what}-{}-{}",
        std::process::id(),
        RUN_SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A fresh run directory under the plan's base directory, removed when dropped (also
/// after a failure) unless `--keep-dir`.
pub fn run_dir(plan: &Plan, what: &str) -> PerfResult<RunDir> {
    let mut dir = RunDir::fresh(fresh_dir(&plan.base_dir, what))?;
    dir.keep(plan.keep_dir);
    Ok(dir)
}

/// A started local cluster whose groups all have leaders.
pub fn start_local(plan: &Plan, groups: usize, dir: &Path) -> PerfResult<LocalCluster> {
    let TargetPlan::Local { flush, shards } = plan.target else {
        return Err(bad("--peers/-n", "this run needs the local cluster"));
    };
    let bin = crate::cluster::binary::server_binary(plan.server_bin.as_deref())?;
    let spec = LocalSpec {
        groups,
        flush,
        shards,
        body_bytes: plan.body_bytes,
    };
    eprintln!(
        "bench: starting 3 nodes ({groups} group(s), flush {}, {shards} shard(s) each) in {}",
        flush.name(),
        dir.display()
    );
    let mut c = LocalCluster::start(spec, dir, &bin, plan.keep_dir)?;
    let ready = Duration::from_millis(READY_BASE_MS + READY_PER_GROUP_MS * groups as u64);
    c.wait_ready(ready)?;
    Ok(c)
}

/// The load of `plan` against `addrs`/`groups` with `mode`.
pub fn load_spec(
    plan: &Plan,
    addrs: Vec<HostPort>,
    groups: Vec<String>,
    mode: Mode,
    pids: Vec<u32>,
) -> LoadSpec {
    LoadSpec {
        addrs,
        groups,
        mode,
        body_bytes: plan.body_bytes,
        batch: plan.batch,
        warmup: Duration::from_secs_f64(plan.warmup),
        measure: Duration::from_secs_f64(plan.seconds),
        server_pids: pids,
        progress: plan.progress,
    }
}

/// The run's settings as reported.
pub fn run_config(
    plan: &Plan,
    groups: usize,
    mode: Mode,
    storage_dir: &Path,
    local: Option<&LocalSpec>,
) -> RunConfig {
    let (concurrency, rate) = match mode {
        Mode::Closed { concurrency } => (Some(concurrency), None),
        Mode::Open { calls_per_s } => (None, Some(calls_per_s)),
    };
    RunConfig {
        target: match &plan.target {
            TargetPlan::Local { .. } => "local 3-node".into(),
            TargetPlan::Remote { peers: Some(p), .. } => format!("peers {p}"),
            TargetPlan::Remote { namesrv, .. } => {
                format!("namesrv {}", namesrv.as_deref().unwrap_or("?"))
            }
        },
        groups,
        mode: if rate.is_some() { "open" } else { "closed" },
        concurrency,
        rate_calls_per_s: rate,
        body_bytes: plan.body_bytes,
        batch: plan.batch,
        seconds: plan.seconds,
        warmup_seconds: plan.warmup,
        flush: local.map(|s| s.flush.name()),
        shards: local.map(|s| s.shards),
        data_segment_bytes: local.map(LocalSpec::data_segment_bytes),
        storage_dir: storage_dir.display().to_string(),
    }
}

/// One measured run: baselines, load, report.
fn single(plan: &Plan) -> PerfResult<()> {
    let dir = run_dir(plan, "run")?;
    let report = single_in(plan, dir.path())?;
    drop(dir);
    print!("{}", report.render());
    if let Some(p) = &plan.json {
        let text = serde_json::to_string_pretty(&report.json())
            .map_err(|e| PerfError::Load(format!("encoding JSON: {e}")))?;
        output::write_file(p, &(text + "\n"))?;
    }
    if let Some(p) = &plan.hgrm {
        output::write_file(p, &output::hgrm(&report.load.hist))?;
    }
    if let Some(p) = &plan.plot {
        plot::percentile_chart(
            p,
            &format!(
                "append latency by percentile ({}, {} group(s))",
                match plan.mode {
                    Mode::Closed { concurrency } => format!("concurrency {concurrency}"),
                    Mode::Open { calls_per_s } => format!("{calls_per_s:.0} calls/s"),
                },
                plan.groups
            ),
            &[
                plot::Curve {
                    name: "cluster append".into(),
                    points: curve_points(&report.load.hist),
                },
                plot::Curve {
                    name: "raw 4 KiB write+fdatasync".into(),
                    points: curve_points(&report.baselines.raw_fsync_hist),
                },
            ],
        )?;
    }
    println!("{}", report.summary_line());
    Ok(())
}

fn curve_points(h: &crate::hist::LatencyHistogram) -> Vec<(f64, u64)> {
    output::percentile_curve(h)
        .into_iter()
        .map(|(q, v, _)| (q, v))
        .collect()
}

fn single_in(plan: &Plan, dir: &Path) -> PerfResult<RunReport> {
    eprintln!(
        "bench: baselines in {} ({:.1} s each)",
        dir.display(),
        plan.baseline_seconds
    );
    let baselines = baseline::measure(dir, plan.baseline_seconds, plan.body_bytes)?;
    let (load, config): (LoadResult, RunConfig) = match &plan.target {
        TargetPlan::Local { .. } => {
            let mut c = start_local(plan, plan.groups, &dir.join("cluster"))?;
            let spec = load_spec(
                plan,
                c.client_addrs(),
                c.spec.group_names(),
                plan.mode,
                c.pids(),
            );
            let load = load::run(spec);
            c.check_running()?;
            let config = run_config(plan, plan.groups, plan.mode, dir, Some(&c.spec));
            c.stop()?;
            (load?, config)
        }
        TargetPlan::Remote { peers, namesrv } => {
            let r = RemoteCluster::resolve(peers.as_deref(), namesrv.as_deref(), plan.groups)?;
            let load = load::run(load_spec(plan, r.addrs, r.groups, plan.mode, Vec::new()))?;
            (load, run_config(plan, plan.groups, plan.mode, dir, None))
        }
    };
    RunReport::new(config, load, baselines, output::git_commit())
}

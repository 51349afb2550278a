//! `dledger-perf disk`: the commitlog store against the raw device.
//!
//! ```text
//! cargo run --release -p dledger-perf -- disk --dir DIR --seconds S \
//!     [--record-bytes B] [--concurrency C] [--rebuild-log] [--clean] [--cpu N]
//! ```
//!
//! One run measures, in DIR (which should be on the disk the store will use):
//!
//! - (a) the raw baseline with glommio `DmaFile`: 4 KiB O_DIRECT write +
//!   fdatasync latency, 4 KiB O_DSYNC write latency, sequential 1 MiB O_DIRECT
//!   write bandwidth (see [`raw`]);
//! - (b) the store's durable append latency at concurrency 1 with B-byte records;
//! - (c) the store's group-commit throughput at concurrency 64 and 256 (and C
//!   when given);
//! - (d) the time to reopen a 4 GiB log (built once in DIR and kept for later
//!   runs; `--rebuild-log` rebuilds it, `--clean` deletes it at the end).
//!
//! Every timed phase lasts S seconds. It prints a table, then as its last line:
//!
//! ```text
//! store_p99_us=X raw_p99_us=Y p99_ratio=X/Y records_per_s_c256=Z mb_per_s_c256=W \
//!   bandwidth_ratio=W/raw_mb_per_s records_per_flush_c256=F recovery_ms_4gib=R
//! ```
//!
//! (one line), where `raw_p99_us` is the 4 KiB write+fdatasync p99 and MB are
//! 10^6 bytes of record payload.

pub mod files;
pub mod raw;

use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;

use crate::error::{PerfError, PerfResult};
use crate::runtime::{ExecutorConfig, run_on_executor};
use crate::table::{NOT_APPLICABLE, Table, cell_f64, cell_u64};
use raw::RawBaseline;

/// Longest phase accepted, so a typo cannot tie up the disk for hours.
const PHASE_SECONDS_MAX: u64 = 3600;
/// Largest record accepted by `--record-bytes`.
const RECORD_BYTES_MAX: usize = 4 << 20;
/// Largest `--concurrency`: every in-flight append holds one record buffer.
const CONCURRENCY_MAX: usize = 4096;
/// glommio registered-buffer arena of the benchmark executor: holds a 1 MiB
/// bandwidth block, and three rings × 2 MiB fit the default 8 MiB RLIMIT_MEMLOCK.
const IO_MEMORY_BYTES: usize = 2 << 20;

/// measure the commitlog store against the raw disk in DIR
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "disk")]
pub struct DiskArgs {
    /// directory to measure in (created if missing); use the store's disk
    #[argh(option)]
    dir: PathBuf,
    /// length of each timed phase, in seconds
    #[argh(option)]
    seconds: u64,
    /// record payload size for the store phases (default 1024)
    #[argh(option, default = "1024")]
    record_bytes: usize,
    /// an extra store throughput row at this concurrency
    #[argh(option)]
    concurrency: Option<usize>,
    /// rebuild the cached 4 GiB recovery log even if it is present
    #[argh(switch)]
    rebuild_log: bool,
    /// delete the cached 4 GiB recovery log at the end of the run
    #[argh(switch)]
    clean: bool,
    /// pin the benchmark executor to this CPU (default: not pinned)
    #[argh(option)]
    cpu: Option<usize>,
}

/// The validated plan of a run.
#[derive(Debug, Clone)]
struct Plan {
    dir: PathBuf,
    phase: Duration,
    record_bytes: usize,
    concurrencies: Vec<usize>,
    rebuild_log: bool,
    clean: bool,
}

impl DiskArgs {
    fn plan(&self) -> PerfResult<Plan> {
        if self.seconds == 0 || self.seconds > PHASE_SECONDS_MAX {
            return Err(PerfError::BadArgument {
                flag: "--seconds",
                reason: format!("{} is not in 1..={PHASE_SECONDS_MAX}", self.seconds),
            });
        }
        if self.record_bytes == 0 || self.record_bytes > RECORD_BYTES_MAX {
            return Err(PerfError::BadArgument {
                flag: "--record-bytes",
                reason: format!("{} is not in 1..={RECORD_BYTES_MAX}", self.record_bytes),
            });
        }
        let mut concurrencies = vec![64, 256];
        if let Some(c) = self.concurrency {
            if c == 0 || c > CONCURRENCY_MAX {
                return Err(PerfError::BadArgument {
                    flag: "--concurrency",
                    reason: format!("{c} is not in 1..={CONCURRENCY_MAX}"),
                });
            }
            if !concurrencies.contains(&c) {
                concurrencies.push(c);
            }
        }
        Ok(Plan {
            dir: self.dir.clone(),
            phase: Duration::from_secs(self.seconds),
            record_bytes: self.record_bytes,
            concurrencies,
            rebuild_log: self.rebuild_log,
            clean: self.clean,
        })
    }
}

impl Plan {
    /// One line saying what this run will do.
    fn describe(&self) -> String {
        let concurrencies: Vec<String> = self.concurrencies.iter().map(|c| c.to_string()).collect();
        format!(
            "disk benchmark: dir={} phase_s={} record_bytes={} concurrency=1,{} rebuild_log={} clean={}",
            self.dir.display(),
            self.phase.as_secs(),
            self.record_bytes,
            concurrencies.join(","),
            self.rebuild_log,
            self.clean,
        )
    }
}

/// Everything one run measured.
#[derive(Debug)]
struct DiskReport {
    raw: RawBaseline,
}

/// Runs the benchmark and prints its report.
pub fn run(args: &DiskArgs) -> PerfResult<()> {
    let plan = args.plan()?;
    std::fs::create_dir_all(&plan.dir)
        .map_err(|e| PerfError::io("creating benchmark directory", &plan.dir, e))?;
    let config = ExecutorConfig {
        io_memory_bytes: IO_MEMORY_BYTES,
        cpu: args.cpu,
    };
    println!("{}", plan.describe());
    let run_plan = plan.clone();
    let report = run_on_executor("dledger-perf-disk", config, move || measure_all(run_plan))?;
    println!("direct-I/O alignment: {} bytes", report.raw.alignment_bytes);
    print!("{}", render_table(&report));
    Err(PerfError::Store(
        "store not available: dledger_shards::disk is not merged yet".to_owned(),
    ))
}

async fn measure_all(plan: Plan) -> PerfResult<DiskReport> {
    files::prime_iopoll_probe(&plan.dir).await?;
    let raw = raw::measure(&plan.dir, plan.phase).await?;
    Ok(DiskReport { raw })
}

fn render_table(report: &DiskReport) -> String {
    let mut table = Table::new(&[
        "measure",
        "ops",
        "p50_us",
        "p99_us",
        "p999_us",
        "max_us",
        "records/s",
        "MB/s",
        "rec/flush",
    ]);
    let raw = &report.raw;
    for (name, s) in [
        ("raw 4KiB write+fdatasync", raw.write_fdatasync),
        ("raw 4KiB O_DSYNC write", raw.write_dsync),
    ] {
        table.push_row(vec![
            name.to_owned(),
            s.count.to_string(),
            s.p50_us.to_string(),
            s.p99_us.to_string(),
            s.p999_us.to_string(),
            s.max_us.to_string(),
            NOT_APPLICABLE.to_owned(),
            NOT_APPLICABLE.to_owned(),
            NOT_APPLICABLE.to_owned(),
        ]);
    }
    for seq in &raw.seq_writes {
        table.push_row(vec![
            format!("raw seq 1MiB write x{}", seq.in_flight),
            cell_u64(Some(seq.bytes / raw::SEQ_BLOCK_BYTES)),
            NOT_APPLICABLE.to_owned(),
            NOT_APPLICABLE.to_owned(),
            NOT_APPLICABLE.to_owned(),
            NOT_APPLICABLE.to_owned(),
            NOT_APPLICABLE.to_owned(),
            cell_f64(Some(seq.mb_per_s), 1),
            NOT_APPLICABLE.to_owned(),
        ]);
    }
    table.render()
}

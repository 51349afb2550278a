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
//! - (d) the time to reopen a 4 GiB log checkpointed every 64 MiB with a 4 MiB
//!   tail past the last checkpoint (built once in DIR/recovery-4gib, ~1 min,
//!   and kept for later runs; `--rebuild-log` rebuilds it, `--clean` deletes
//!   it at the end; see [`recovery`]).
//!
//! Every measurement runs for S seconds in all, in one-second slices
//! interleaved round by round with the others (the machine is shared: load
//! changes then hit raw and store alike). It prints a table, then as its last
//! line:
//!
//! ```text
//! store_p99_us=X raw_p99_us=Y p99_ratio=X/Y records_per_s_c256=Z mb_per_s_c256=W \
//!   bandwidth_ratio=W/raw_mb_per_s records_per_flush_c256=F recovery_ms_4gib=R
//! ```
//!
//! (one line), where `raw_p99_us` is the 4 KiB write+fdatasync p99,
//! `raw_mb_per_s` the better of the 1- and 4-in-flight sequential bandwidths,
//! and MB are 10^6 bytes (of record payload for the store).

pub mod files;
pub mod raw;
pub mod recovery;
pub mod store;

use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;

use crate::error::{PerfError, PerfResult};
use crate::report::{SummaryLine, ratio};
use crate::runtime::{ExecutorConfig, run_on_executor};
use crate::table::{NOT_APPLICABLE, Table, cell_f64, cell_u64};
use dledger::store::DEFAULT_SEGMENT_BYTES;
use dledger_shards::disk::prime_glommio_iopoll_probe;
use raw::RawBaseline;
use recovery::{Recipe, Recovery};
use store::{AppendPhase, store_error};

/// Longest phase accepted, so a typo cannot tie up the disk for hours.
const PHASE_SECONDS_MAX: u64 = 3600;
/// Largest record accepted by `--record-bytes`.
const RECORD_BYTES_MAX: usize = 4 << 20;
/// Largest `--concurrency`: every in-flight append holds one record buffer.
const CONCURRENCY_MAX: usize = 4096;
/// The concurrency whose throughput the summary line reports.
const THROUGHPUT_JUDGED_CONCURRENCY: usize = 256;
/// glommio registered-buffer arena wanted for the benchmark executor
/// (glommio's default); the memlock check shrinks it to what the limit allows.
const IO_MEMORY_BYTES: usize = 10 << 20;

/// measure the commitlog store against the raw disk in DIR
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "disk")]
pub struct DiskArgs {
    /// directory to measure in (created if missing); use the store's disk
    #[argh(option)]
    dir: PathBuf,
    /// seconds each measurement runs (in 1 s slices, interleaved)
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
        let mut concurrencies = vec![64, THROUGHPUT_JUDGED_CONCURRENCY];
        if let Some(c) = self.concurrency {
            if c == 0 || c > CONCURRENCY_MAX {
                return Err(PerfError::BadArgument {
                    flag: "--concurrency",
                    reason: format!("{c} is not in 1..={CONCURRENCY_MAX}"),
                });
            }
            if c != 1 && !concurrencies.contains(&c) {
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
    /// Store append phases: concurrency 1, then the throughput concurrencies.
    appends: Vec<AppendPhase>,
    recovery: Recovery,
}

impl DiskReport {
    fn phase(&self, concurrency: usize) -> PerfResult<&AppendPhase> {
        self.appends
            .iter()
            .find(|p| p.concurrency == concurrency)
            .ok_or_else(|| {
                PerfError::Store(format!("no append phase at concurrency {concurrency}"))
            })
    }
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
    for p in &report.appends {
        println!("{}", describe_rounds(p));
    }
    println!("{}", describe_recovery(&report.recovery));
    println!("{}", summary_line(&report)?);
    Ok(())
}

async fn measure_all(plan: Plan) -> PerfResult<DiskReport> {
    prime_glommio_iopoll_probe(&plan.dir)
        .await
        .map_err(|e| store_error("priming glommio's io_poll probe", e))?;
    let measured = measure_interleaved(&plan).await;
    // Scratch files go even when a measurement failed; its error comes first.
    let cleanup = raw::remove_scratch(&plan.dir).and(store::remove_scratch(&plan.dir));
    let (raw, appends) = measured?;
    cleanup?;
    let recovery = recovery::measure(&plan.dir, Recipe::FOUR_GIB, plan.rebuild_log).await;
    if plan.clean {
        recovery::remove_cached(&plan.dir, Recipe::FOUR_GIB)?;
    }
    Ok(DiskReport {
        raw,
        appends,
        recovery: recovery?,
    })
}

/// Runs the raw and store measurements in rounds of one slice each, so a
/// change in machine load (the machine is shared) hits all of them alike
/// instead of whichever phase happened to run then. Each measurement gets
/// `plan.phase` in total. The raw fdatasync probe runs next to the store's
/// concurrency-1 appends, and the bandwidth runs next to the throughput
/// measurements, since those are the pairs the ratios compare.
async fn measure_interleaved(plan: &Plan) -> PerfResult<(RawBaseline, Vec<AppendPhase>)> {
    let mut concurrencies = vec![1];
    concurrencies.extend_from_slice(&plan.concurrencies);
    let mut raw = raw::RawBench::open(&plan.dir).await?;
    let mut store = store::StoreBench::open(
        &plan.dir,
        DEFAULT_SEGMENT_BYTES,
        plan.record_bytes,
        &concurrencies,
    )
    .await?;
    let rounds = plan.phase.as_secs().max(1);
    let slice = plan.phase / u32::try_from(rounds).unwrap_or(u32::MAX);
    for _round in 0..rounds {
        raw.write_fdatasync_slice(slice).await?;
        store.slice(0, slice).await?;
        raw.write_dsync_slice(slice).await?;
        for which in 0..raw::SEQ_WRITES_IN_FLIGHT.len() {
            raw.seq_write_slice(which, slice).await?;
        }
        for which in 1..store.phase_count() {
            store.slice(which, slice).await?;
        }
    }
    Ok((raw.finish().await?, store.finish().await?))
}

/// Where a store phase's flush rounds spent their time, and whether segment
/// preparation ran meanwhile.
fn describe_rounds(p: &AppendPhase) -> String {
    format!(
        "store c={}: per flush {:.0} us waiting for writes + {:.0} us for fdatasync; \
         {} segment(s) prepared during its slices",
        p.concurrency, p.write_wait_us_per_flush, p.sync_wait_us_per_flush, p.segments_prepared
    )
}

/// The last line: the figures the store is judged by.
fn summary_line(report: &DiskReport) -> PerfResult<String> {
    let c1 = report.phase(1)?;
    let c256 = report.phase(THROUGHPUT_JUDGED_CONCURRENCY)?;
    let store_p99_us = c1.latency.p99_us;
    let raw_p99_us = report.raw.write_fdatasync.p99_us;
    let raw_mb_per_s = report.raw.seq_write_mb_per_s();
    let p99_ratio = ratio(store_p99_us as f64, raw_p99_us as f64)
        .ok_or_else(|| PerfError::Store("raw p99 is zero: no latency ratio".to_owned()))?;
    let bandwidth_ratio = ratio(c256.mb_per_s(), raw_mb_per_s)
        .ok_or_else(|| PerfError::Store("raw bandwidth is zero: no bandwidth ratio".to_owned()))?;
    Ok(SummaryLine::new()
        .int("store_p99_us", store_p99_us)
        .int("raw_p99_us", raw_p99_us)
        .real("p99_ratio", p99_ratio, 2)
        .real("records_per_s_c256", c256.records_per_s(), 0)
        .real("mb_per_s_c256", c256.mb_per_s(), 1)
        .real("bandwidth_ratio", bandwidth_ratio, 2)
        .real("records_per_flush_c256", c256.records_per_flush, 1)
        .int(
            "recovery_ms_4gib",
            report.recovery.open_elapsed.as_millis() as u64,
        )
        .finish())
}

fn describe_recovery(r: &Recovery) -> String {
    let origin = match r.build_elapsed {
        Some(build) => format!("built in {:.1} s this run", build.as_secs_f64()),
        None => "reused from an earlier run".to_owned(),
    };
    format!(
        "recovery: reopened a {:.2} GiB log ({} records, {origin}) in {:.1} ms",
        r.log_bytes as f64 / f64::from(1u32 << 30),
        r.last_index,
        r.open_elapsed.as_secs_f64() * 1000.0,
    )
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
    for p in &report.appends {
        let s = p.latency;
        table.push_row(vec![
            format!("store append {}B c={}", p.record_bytes, p.concurrency),
            p.records.to_string(),
            s.p50_us.to_string(),
            s.p99_us.to_string(),
            s.p999_us.to_string(),
            s.max_us.to_string(),
            cell_f64(Some(p.records_per_s()), 0),
            cell_f64(Some(p.mb_per_s()), 1),
            cell_f64(Some(p.records_per_flush), 1),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<DiskArgs, argh::EarlyExit> {
        DiskArgs::from_args(&["disk"], args)
    }

    #[test]
    fn defaults_and_extra_concurrency() {
        let args = parse(&["--dir", "/tmp/x", "--seconds", "3", "--concurrency", "32"])
            .expect("valid arguments parse");
        let plan = args.plan().expect("valid arguments plan");
        assert_eq!(plan.record_bytes, 1024);
        assert_eq!(plan.phase, Duration::from_secs(3));
        assert_eq!(plan.concurrencies, vec![64, 256, 32]);
        assert!(!plan.rebuild_log && !plan.clean);
    }

    #[test]
    fn a_repeated_concurrency_adds_no_row() {
        for c in ["1", "64", "256"] {
            let args = parse(&["--dir", "d", "--seconds", "1", "--concurrency", c])
                .expect("valid arguments parse");
            assert_eq!(
                args.plan().expect("valid plan").concurrencies,
                vec![64, 256]
            );
        }
    }

    #[test]
    fn out_of_range_values_name_their_flag() {
        for (flags, named) in [
            (&["--seconds", "0"][..], "--seconds"),
            (&["--seconds", "3601"][..], "--seconds"),
            (
                &["--seconds", "1", "--record-bytes", "0"][..],
                "--record-bytes",
            ),
            (
                &["--seconds", "1", "--concurrency", "0"][..],
                "--concurrency",
            ),
            (
                &["--seconds", "1", "--concurrency", "5000"][..],
                "--concurrency",
            ),
        ] {
            let mut all = vec!["--dir", "d"];
            all.extend_from_slice(flags);
            let args = parse(&all).expect("numbers parse");
            match args.plan() {
                Err(PerfError::BadArgument { flag, .. }) => assert_eq!(flag, named),
                other => panic!("{all:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn dir_and_seconds_are_required() {
        assert!(parse(&["--seconds", "1"]).is_err());
        assert!(parse(&["--dir", "d"]).is_err());
    }
}

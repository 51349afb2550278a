//! `bench --matrix`: groups {1, 8, 64, 512} x concurrency {1, 16, 256}, closed loop, short
//! cells, one local cluster per group count; one table, one chart (throughput and p99
//! against groups, a line per concurrency), and a summary line.

use serde_json::{Value, json};

use super::load::{self, Mode};
use super::output::{self, Percentiles};
use super::plot::{self, MatrixLine};
use super::{Plan, TargetPlan, baseline, load_spec, run_dir, start_local};
use crate::error::{PerfError, PerfResult};
use crate::report::{SummaryLine, ratio};
use crate::table::{Table, cell_f64};

pub const MATRIX_GROUPS: [usize; 4] = [1, 8, 64, 512];
pub const MATRIX_CONCURRENCY: [usize; 3] = [1, 16, 256];

/// One cell's figures.
#[derive(Debug, Clone)]
struct Cell {
    groups: usize,
    concurrency: usize,
    latency: Percentiles,
    appends_per_s: f64,
    server_cpu_s_per_million: Option<f64>,
    loadgen_cpu_percent: f64,
    errors: u64,
}

pub fn run(plan: &Plan) -> PerfResult<()> {
    if !matches!(plan.target, TargetPlan::Local { .. }) {
        return Err(PerfError::BadArgument {
            flag: "--matrix",
            reason: "runs on the local cluster only (it starts one per group count)".into(),
        });
    }
    let dir = run_dir(plan, "matrix")?;
    let (outcomes, baselines) = cells(plan, dir.path())?;
    drop(dir);
    let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    let cells: Vec<Cell> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok().cloned())
        .collect();
    let raw = Percentiles::of(&baselines.raw_fsync_hist).ok_or_else(|| PerfError::NoSamples {
        phase: "raw 4 KiB write+fdatasync".into(),
    })?;
    let tcp = Percentiles::of(&baselines.tcp_rtt_hist).ok_or_else(|| PerfError::NoSamples {
        phase: "loopback TCP round trip".into(),
    })?;
    let mut t = Table::new(&[
        "groups",
        "concurrency",
        "appends/s",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "p99/raw",
        "server CPU s/1M",
        "loadgen CPU %",
        "errors",
    ]);
    for c in &cells {
        t.push_row(vec![
            c.groups.to_string(),
            c.concurrency.to_string(),
            format!("{:.0}", c.appends_per_s),
            c.latency.p50_us.to_string(),
            c.latency.p99_us.to_string(),
            c.latency.p999_us.to_string(),
            cell_f64(ratio(c.latency.p99_us as f64, raw.p99_us as f64), 2),
            cell_f64(c.server_cpu_s_per_million, 2),
            format!("{:.1}", c.loadgen_cpu_percent),
            c.errors.to_string(),
        ]);
    }
    println!(
        "bench --matrix: {} B bodies x{} per call, {:.1} s per cell after {:.1} s warm-up; raw fsync p50 {} µs p99 {} µs; TCP RTT p50 {} µs p99 {} µs",
        plan.body_bytes,
        plan.batch,
        plan.seconds,
        plan.warmup,
        raw.p50_us,
        raw.p99_us,
        tcp.p50_us,
        tcp.p99_us
    );
    print!("{}", t.render());
    let mut seen = std::collections::BTreeSet::new();
    for why in &failed {
        // The cells of one failed group count share their reason: one line each.
        if seen.insert(why.as_str()) {
            println!("failed: {why}");
        }
    }
    if let Some(p) = &plan.plot {
        let lines: Vec<MatrixLine> = MATRIX_CONCURRENCY
            .iter()
            .map(|&conc| MatrixLine {
                name: format!("concurrency {conc}"),
                points: cells
                    .iter()
                    .filter(|c| c.concurrency == conc)
                    .map(|c| (c.groups, c.appends_per_s, c.latency.p99_us))
                    .collect(),
            })
            .collect();
        plot::matrix_chart(p, "dledger-rs: appends/s and p99 against groups", &lines)?;
    }
    if let Some(p) = &plan.json {
        let doc = json!({
            "tool": "dledger-perf bench --matrix",
            "git_commit": output::git_commit(),
            "config": {
                "body_bytes": plan.body_bytes, "batch": plan.batch, "seconds": plan.seconds,
                "warmup_seconds": plan.warmup,
            },
            "baselines": {
                "raw_fsync_us": {"p50": raw.p50_us, "p99": raw.p99_us, "p999": raw.p999_us},
                "tcp_rtt_us": {"p50": tcp.p50_us, "p99": tcp.p99_us},
            },
            "cells": cells.iter().map(|c| json!({
                "groups": c.groups, "concurrency": c.concurrency,
                "appends_per_s": c.appends_per_s,
                "latency_us": {"p50": c.latency.p50_us, "p90": c.latency.p90_us,
                    "p99": c.latency.p99_us, "p999": c.latency.p999_us, "max": c.latency.max_us},
                "server_cpu_s_per_million_appends": c.server_cpu_s_per_million,
                "loadgen_cpu_percent_of_one_core": c.loadgen_cpu_percent,
                "errors": c.errors,
            })).collect::<Vec<Value>>(),
        });
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| PerfError::Load(format!("encoding JSON: {e}")))?;
        output::write_file(p, &(text + "\n"))?;
    }
    let best = cells
        .iter()
        .max_by(|a, b| a.appends_per_s.total_cmp(&b.appends_per_s))
        .ok_or_else(|| PerfError::NoSamples {
            phase: "matrix".into(),
        })?;
    println!(
        "{}",
        SummaryLine::new()
            .int("cells", cells.len() as u64)
            .int("max_ops_per_s", best.appends_per_s.round() as u64)
            .int("at_groups", best.groups as u64)
            .int("at_concurrency", best.concurrency as u64)
            .int(
                "min_p99_us",
                cells.iter().map(|c| c.latency.p99_us).min().unwrap_or(0)
            )
            .int("raw_fsync_p99_us", raw.p99_us)
            .int("failed_cells", failed.len() as u64)
            .finish()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(PerfError::Cluster(format!(
            "{} of {} cells failed",
            failed.len(),
            outcomes.len()
        )))
    }
}

/// Every cell; a group count whose cluster fails (to start, or mid-run) gives failed
/// cells for its remaining concurrencies and the matrix goes on with the next one.
fn cells(
    plan: &Plan,
    dir: &std::path::Path,
) -> PerfResult<(Vec<Result<Cell, String>>, baseline::Baselines)> {
    eprintln!("bench: baselines in {}", dir.display());
    let baselines = baseline::measure(dir, plan.baseline_seconds, plan.body_bytes)?;
    let mut out = Vec::new();
    for groups in MATRIX_GROUPS {
        let mut done = 0;
        let outcome = group_cells(plan, dir, groups, &mut |cell| {
            out.push(Ok(cell));
            done += 1;
        });
        if let Err(e) = outcome {
            let why = first_line(&e.to_string());
            eprintln!("bench: groups={groups} failed: {e}");
            for _ in done..MATRIX_CONCURRENCY.len() {
                out.push(Err(format!("groups={groups}: {why}")));
            }
        }
    }
    Ok((out, baselines))
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_owned()
}

/// The cells of one group count, handed to `push` as they complete.
fn group_cells(
    plan: &Plan,
    dir: &std::path::Path,
    groups: usize,
    push: &mut dyn FnMut(Cell),
) -> PerfResult<()> {
    let mut c = start_local(plan, groups, &dir.join(format!("cluster-g{groups}")))?;
    for concurrency in MATRIX_CONCURRENCY {
        eprintln!("bench: cell groups={groups} concurrency={concurrency}");
        let mode = Mode::Closed { concurrency };
        let spec = load_spec(plan, c.client_addrs(), c.spec.group_names(), mode, c.pids());
        let r = load::run(spec)?;
        c.check_running()?;
        let latency = Percentiles::of(&r.hist).ok_or_else(|| PerfError::NoSamples {
            phase: format!(
                "cell groups={groups} concurrency={concurrency}: {}",
                r.first_error.as_deref().unwrap_or("no call completed")
            ),
        })?;
        push(Cell {
            groups,
            concurrency,
            latency,
            appends_per_s: r.appends_per_s(),
            server_cpu_s_per_million: r
                .server_cpu
                .and_then(|cpu| ratio(cpu.as_secs_f64() * 1e6, r.appends as f64)),
            loadgen_cpu_percent: 100.0 * r.loadgen_cpu.as_secs_f64() / r.measured.as_secs_f64(),
            errors: r.errors.values().sum(),
        });
    }
    c.stop()
}

//! `bench --idle-groups N`: what hosting N idle groups costs each node. Two local
//! clusters run in turn: one with a single group (the fixed cost of a node) and one with
//! N; for each node the CPU over `--seconds` (after the groups have their leaders and a
//! settling pause) and the resident memory are read from `/proc`. Reported per node:
//! CPU as a percentage of one core, RSS, RSS / N and the marginal memory per group
//! `(RSS_N - RSS_1) / (N - 1)`. Also the cluster's start-up: seconds from launching the
//! nodes until every group is led by its preferred leader (a cold start of N new groups:
//! first segments, elections and hand-overs).

use std::time::Duration;

use serde_json::json;

use super::procstat::{ProcSample, ProcUnits, cpu_between};
use super::{Plan, TargetPlan, fresh_dir, start_local};
use crate::error::{PerfError, PerfResult};
use crate::report::SummaryLine;
use crate::table::Table;

/// Pause between "every group has its leader" and the measurement (hand-overs and
/// start-up preallocation settle).
const SETTLE_S: u64 = 3;
const BYTES_PER_KIB: f64 = 1024.0;

/// One cluster's idle figures, per node.
#[derive(Debug, Clone)]
struct Idle {
    cpu_percent: Vec<f64>,
    rss_bytes: Vec<u64>,
    /// From launching the nodes until every group had its preferred leader.
    startup_s: f64,
}

fn measure(plan: &Plan, groups: usize, units: &ProcUnits) -> PerfResult<Idle> {
    let dir = fresh_dir(&plan.base_dir, "idle");
    let launched = std::time::Instant::now();
    let mut c = start_local(plan, groups, &dir)?;
    let startup_s = launched.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(SETTLE_S));
    let pids = c.pids();
    let sample = |pids: &[u32]| -> PerfResult<Vec<ProcSample>> {
        pids.iter().map(|p| units.sample(*p)).collect()
    };
    let before = sample(&pids)?;
    let t0 = std::time::Instant::now();
    eprintln!(
        "bench: measuring {groups} idle group(s) for {:.1} s",
        plan.seconds
    );
    std::thread::sleep(Duration::from_secs_f64(plan.seconds));
    let after = sample(&pids)?;
    let elapsed = t0.elapsed().as_secs_f64();
    c.check_running()?;
    c.stop()?;
    Ok(Idle {
        cpu_percent: before
            .iter()
            .zip(&after)
            .map(|(b, a)| 100.0 * cpu_between(&[*b], &[*a]).as_secs_f64() / elapsed)
            .collect(),
        rss_bytes: after.iter().map(|s| s.rss_bytes).collect(),
        startup_s,
    })
}

pub fn run(plan: &Plan, groups: usize) -> PerfResult<()> {
    if !matches!(plan.target, TargetPlan::Local { .. }) {
        return Err(PerfError::BadArgument {
            flag: "--idle-groups",
            reason: "runs on the local cluster only".into(),
        });
    }
    if !(2..=super::GROUPS_MAX).contains(&groups) {
        return Err(PerfError::BadArgument {
            flag: "--idle-groups",
            reason: format!("{groups} is not in 2..={}", super::GROUPS_MAX),
        });
    }
    let units = ProcUnits::read()?;
    let one = measure(plan, 1, &units)?;
    // Printed at once: it stays on record if the large cluster then fails to start.
    let mut fixed = Table::new(&["node", "1-group CPU % of one core", "1-group RSS MiB"]);
    for i in 0..one.rss_bytes.len() {
        fixed.push_row(vec![
            format!("n{i}"),
            format!("{:.2}", one.cpu_percent[i]),
            format!("{:.1}", one.rss_bytes[i] as f64 / (1 << 20) as f64),
        ]);
    }
    println!(
        "bench --idle-groups: reference cluster with 1 group, {:.1} s measured",
        plan.seconds
    );
    print!("{}", fixed.render());
    let many = measure(plan, groups, &units)?;
    let mut t = Table::new(&[
        "node",
        "CPU % of one core",
        "RSS MiB",
        "RSS KiB / group",
        "marginal KiB / group",
    ]);
    let mut marginal = Vec::new();
    for i in 0..many.rss_bytes.len() {
        let m = (many.rss_bytes[i] as f64 - one.rss_bytes[i] as f64)
            / BYTES_PER_KIB
            / (groups - 1) as f64;
        marginal.push(m);
        t.push_row(vec![
            format!("n{i}"),
            format!("{:.2}", many.cpu_percent[i]),
            format!("{:.1}", many.rss_bytes[i] as f64 / (1 << 20) as f64),
            format!(
                "{:.1}",
                many.rss_bytes[i] as f64 / BYTES_PER_KIB / groups as f64
            ),
            format!("{m:.1}"),
        ]);
    }
    println!(
        "bench --idle-groups {groups}: 3 local nodes, every group on every node, {:.1} s measured; \
         every group led by its preferred leader {:.1} s after launch (1 group: {:.1} s)",
        plan.seconds, many.startup_s, one.startup_s
    );
    print!("{}", t.render());
    let cpu_max = many.cpu_percent.iter().copied().fold(0.0, f64::max);
    let rss_per_group_max = many
        .rss_bytes
        .iter()
        .map(|r| *r as f64 / BYTES_PER_KIB / groups as f64)
        .fold(0.0, f64::max);
    let marginal_max = marginal.iter().copied().fold(f64::MIN, f64::max);
    if let Some(p) = &plan.json {
        let doc = json!({
            "tool": "dledger-perf bench --idle-groups",
            "git_commit": super::output::git_commit(),
            "groups": groups,
            "seconds": plan.seconds,
            "startup_seconds": many.startup_s,
            "one_group_startup_seconds": one.startup_s,
            "nodes": (0..many.rss_bytes.len()).map(|i| json!({
                "node": format!("n{i}"),
                "cpu_percent_of_one_core": many.cpu_percent[i],
                "rss_bytes": many.rss_bytes[i],
                "rss_kib_per_group": many.rss_bytes[i] as f64 / BYTES_PER_KIB / groups as f64,
                "marginal_kib_per_group": marginal[i],
                "one_group_cpu_percent": one.cpu_percent[i],
                "one_group_rss_bytes": one.rss_bytes[i],
            })).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| PerfError::Load(format!("encoding JSON: {e}")))?;
        super::output::write_file(p, &(text + "\n"))?;
    }
    println!(
        "{}",
        SummaryLine::new()
            .int("idle_groups", groups as u64)
            .real("cpu_percent_per_node_max", cpu_max, 2)
            .real("rss_kib_per_group_max", rss_per_group_max, 1)
            .real("marginal_kib_per_group_max", marginal_max, 1)
            .real("startup_s", many.startup_s, 1)
            .finish()
    );
    Ok(())
}

//! `dledger-perf chaos`: a real cluster under a seeded nemesis, concurrent clients, and a
//! history checker at the end.
//!
//! ```text
//! cargo run --release -p dledger-perf -- chaos [--seconds 60] [--seed X] [--nodes 3]
//!     [--groups 1] [--clients 4] [--server-bin PATH] [--netns] [--keep-dir]
//! ```
//!
//! - The cluster: `--nodes` processes of `dledger server` (by default this executable's
//!   built-in copy, `dledger-perf server`, so the server tested is always the one just
//!   built; `--server-bin target/release/dledger` runs that binary instead), each with
//!   `--groups` groups, configs and storage in a fresh temporary directory.
//! - The network: every peer link goes through a fault proxy ([`proxy`]) the nemesis
//!   controls; clients talk to the nodes directly. With `--netns` the nodes run in their
//!   own network namespaces instead, and partitions take links down ([`netns`]).
//! - The nemesis ([`schedule`], [`nemesis`]): the seeded schedule of kills, pauses,
//!   partitions, one-way loss and leader hand-overs.
//! - The clients ([`workload`]): per group, concurrent tasks appending unique
//!   self-describing values ([`value`]), reading some back.
//! - The end: every fault healed, the groups converge, every node's committed log is read
//!   ([`readback`]) and checked against the history ([`checker`]). The last line is
//!
//! ```text
//! seconds=S faults=F attempted=A acked=K lost=L duplicated=D misordered=M divergent=V
//! ```
//!
//! and the exit code is 1 when L, D, M or V is not 0 (or a node died on its own).

pub mod checker;
pub mod nemesis;
pub mod netns;
pub mod nodes;
pub mod proxy;
pub mod readback;
pub mod schedule;
pub mod value;
pub mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use argh::FromArgs;

use crate::cluster::{Cluster, Launch, LoopbackPorts, RunDir};
use crate::error::{PerfError, PerfResult};
use crate::report::SummaryLine;
use checker::{GroupLogs, Verdict};
use nemesis::{Nemesis, Network};
use nodes::node_settings;
use workload::{Progress, WorkloadConfig};

/// Longest run accepted (a typo should not tie the machine up for days).
const SECONDS_MAX: u64 = 24 * 3600;
/// Groups and client tasks per group accepted.
const GROUPS_MAX: u32 = 64;
const CLIENTS_MAX: u32 = 256;
/// How long the cluster gets to elect its first leaders.
const FIRST_LEADER_WAIT_MS: u64 = 30_000;
/// How long the groups get to converge after the heal.
const CONVERGE_WAIT_MS: u64 = 60_000;
/// Seconds between progress lines.
const PROGRESS_EVERY_S: u64 = 10;
/// The nodes' `RUST_LOG` unless this process has one: their logs are what a failed run
/// is diagnosed from.
const NODE_LOG_FILTER: &str = "info";

/// Run a cluster under a seeded nemesis and check the clients' history (see the module
/// docs of dledger_perf::chaos).
#[derive(FromArgs, Debug, Clone, PartialEq, Eq)]
#[argh(subcommand, name = "chaos")]
pub struct ChaosArgs {
    /// how long the nemesis runs (default 60)
    #[argh(option, default = "60")]
    pub seconds: u64,
    /// the schedule's seed (default: from the clock, printed first)
    #[argh(option)]
    pub seed: Option<u64>,
    /// nodes in the cluster, 3 to 7 (default 3)
    #[argh(option, default = "3")]
    pub nodes: usize,
    /// groups every node serves (default 1)
    #[argh(option, default = "1")]
    pub groups: u32,
    /// concurrent appending tasks per group (default 4)
    #[argh(option, default = "4")]
    pub clients: u32,
    /// read every Nth acknowledged value back during the run, 0 = never (default 10)
    #[argh(option, default = "10")]
    pub read_back_every: u64,
    /// run this `dledger` binary for the nodes (default: this executable's built-in server)
    #[argh(option)]
    pub server_bin: Option<PathBuf>,
    /// run the nodes in network namespaces (root, `ip netns`); partitions take links down
    #[argh(switch)]
    pub netns: bool,
    /// keep the run directory (configs, storage, node logs) even when the run passes
    #[argh(switch)]
    pub keep_dir: bool,
    /// a deliberate server bug to enable (ack-without-quorum); needs the planted-bugs feature
    #[cfg(feature = "planted-bugs")]
    #[argh(option)]
    pub planted_bug: Option<String>,
}

impl ChaosArgs {
    fn validate(&self) -> PerfResult<()> {
        let bad = |flag, reason: String| Err(PerfError::BadArgument { flag, reason });
        if self.seconds == 0 || self.seconds > SECONDS_MAX {
            return bad(
                "--seconds",
                format!("{} is not in 1..={SECONDS_MAX}", self.seconds),
            );
        }
        if !(3..=7).contains(&self.nodes) {
            return bad("--nodes", format!("{} is not in 3..=7", self.nodes));
        }
        if self.groups == 0 || self.groups > GROUPS_MAX {
            return bad(
                "--groups",
                format!("{} is not in 1..={GROUPS_MAX}", self.groups),
            );
        }
        if self.clients == 0 || self.clients > CLIENTS_MAX {
            return bad(
                "--clients",
                format!("{} is not in 1..={CLIENTS_MAX}", self.clients),
            );
        }
        Ok(())
    }

    fn planted(&self) -> Option<&str> {
        #[cfg(feature = "planted-bugs")]
        return self.planted_bug.as_deref();
        #[cfg(not(feature = "planted-bugs"))]
        None
    }
}

/// The result of a run: the verdict and the run's own figures.
#[derive(Debug)]
pub struct RunReport {
    pub seconds: u64,
    pub faults: u64,
    pub verdict: Verdict,
    /// Nodes that exited on their own during the run (a crash is a failure too).
    pub crashes: Vec<String>,
}

impl RunReport {
    /// The exact last line.
    pub fn summary(&self) -> String {
        let v = &self.verdict;
        SummaryLine::new()
            .int("seconds", self.seconds)
            .int("faults", self.faults)
            .int("attempted", v.attempted)
            .int("acked", v.acked)
            .int("lost", v.lost)
            .int("duplicated", v.duplicated)
            .int("misordered", v.misordered)
            .int("divergent", v.divergent)
            .finish()
    }

    pub fn passed(&self) -> bool {
        self.verdict.passed() && self.crashes.is_empty()
    }
}

/// Runs `dledger-perf chaos`; prints the report and returns whether it passed.
pub fn run(args: &ChaosArgs) -> PerfResult<bool> {
    args.validate()?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000)
    });
    println!(
        "chaos: seed={seed} nodes={} groups={} clients/group={} seconds={}{}",
        args.nodes,
        args.groups,
        args.clients,
        args.seconds,
        if args.netns { " netns" } else { " proxy" }
    );
    let report = run_seeded(args, seed)?;
    for e in report.verdict.examples.iter().chain(report.crashes.iter()) {
        println!("chaos: {e}");
    }
    println!(
        "chaos: unknown-outcome={} refused={}",
        report.verdict.unknown, report.verdict.failed
    );
    if let Some(us) = report.verdict.first_bad_ack_us {
        println!(
            "chaos: the first wrong acknowledgement reached its client at t={:.1}s",
            us as f64 / 1e6
        );
    }
    println!("{}", report.summary());
    Ok(report.passed())
}

fn run_seeded(args: &ChaosArgs, seed: u64) -> PerfResult<RunReport> {
    let mut dir = RunDir::fresh(
        std::env::temp_dir().join(format!("dledger-chaos-{}-{seed}", std::process::id())),
    )?;
    let result = run_in(args, seed, dir.path());
    dir.keep(args.keep_dir || !matches!(&result, Ok(r) if r.passed()));
    if dir.is_kept() {
        println!("chaos: run directory kept: {}", dir.path().display());
    }
    result
}

fn harness(msg: impl Into<String>) -> PerfError {
    PerfError::Executor(msg.into())
}

/// The command that runs one node: `--server-bin` or this executable's own server, with
/// the planted bug if one is asked for.
fn launch(args: &ChaosArgs) -> PerfResult<Launch> {
    let mut launch = Launch::chosen(args.server_bin.as_deref(), NODE_LOG_FILTER)?;
    if let Some(bug) = args.planted() {
        launch.extra.push("--planted-bug".to_string());
        launch.extra.push(bug.to_string());
    }
    Ok(launch)
}

fn run_in(args: &ChaosArgs, seed: u64, dir: &std::path::Path) -> PerfResult<RunReport> {
    let n = args.nodes;
    let groups: Vec<String> = (0..args.groups).map(|g| format!("Chaos{g:02}")).collect();
    let base = launch(args)?;
    // The network and where each node is reached.
    let (network, cluster) = if args.netns {
        netns::build(n, dir, &groups, &base)?
    } else {
        let ports = LoopbackPorts::reserve(n)?;
        let proxy = proxy::FaultProxy::start(&ports.peer_addrs())
            .map_err(|e| harness(format!("starting the fault proxy: {e}")))?;
        // Every peer but itself is dialled through the proxy of that link.
        let cluster = Cluster::on_loopback(dir, ports, &base, "dledger-perf chaos", |i, ports| {
            let peers: Vec<(String, String)> = (0..n)
                .map(|j| {
                    let addr = if i == j {
                        ports.peer_addr(i)
                    } else {
                        proxy.addr(i, j)
                    };
                    (format!("n{j}"), addr.to_string())
                })
                .collect();
            node_settings(
                i,
                &peers,
                ports.client[i],
                &groups,
                &dir.join(format!("n{i}")),
            )
        })?;
        (Network::Proxy(proxy), cluster)
    };
    let addrs = cluster.client_addrs();
    let mut nemesis = Nemesis::new(cluster, network, addrs.clone(), groups[0].clone(), seed);
    nemesis.start_all()?;
    for g in &groups {
        readback::wait_converged(&addrs, g, Duration::from_millis(FIRST_LEADER_WAIT_MS))
            .map_err(|state| harness(format!("group {g} has no leader at start: {state}")))?;
    }

    let run_id = seed ^ (u64::from(std::process::id()) << 32) ^ 0x5eed;
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(Progress::default());
    let clients = workload::spawn(
        WorkloadConfig {
            run: run_id,
            peers: addrs.clone(),
            groups: groups.clone(),
            clients_per_group: args.clients,
            read_back_every: args.read_back_every,
        },
        epoch,
        stop.clone(),
        progress.clone(),
    )
    .map_err(|e| harness(format!("starting the clients: {e}")))?;

    let steps = schedule::schedule(seed, n, args.seconds * 1000);
    let mut next_progress = PROGRESS_EVERY_S;
    for step in &steps {
        nemesis.wait_until(epoch, step.at_ms, |elapsed_s| {
            if elapsed_s >= next_progress {
                next_progress = elapsed_s + PROGRESS_EVERY_S;
                println!(
                    "chaos: t={elapsed_s}s attempted={} acked={}",
                    progress.attempted.load(Ordering::Relaxed),
                    progress.acked.load(Ordering::Relaxed)
                );
            }
        });
        nemesis.inject(epoch, step)?;
    }
    nemesis.wait_until(epoch, args.seconds * 1000, |_| {});
    let seconds = epoch.elapsed().as_secs();

    // Heal, let the clients finish their calls, converge, read, check.
    let end_started = Instant::now();
    nemesis.heal_everything()?;
    stop.store(true, Ordering::SeqCst);
    let history = clients
        .join()
        .map_err(|_| harness("the client thread panicked"))?
        .map_err(harness)?;
    println!(
        "chaos: healed; clients done after {:.1}s",
        end_started.elapsed().as_secs_f64()
    );
    let mut logs = Vec::with_capacity(groups.len());
    for (g, group) in groups.iter().enumerate() {
        if let Err(state) =
            readback::wait_converged(&addrs, group, Duration::from_millis(CONVERGE_WAIT_MS))
        {
            println!("chaos: group {group} did not converge after the heal: {state}");
        }
        let replicas = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| readback::read_log(&format!("n{i}"), a, group))
            .collect();
        logs.push(GroupLogs {
            group: g as u32,
            replicas,
        });
    }
    println!(
        "chaos: converged and read {} entries from every node after {:.1}s",
        logs.iter()
            .map(|g| g
                .replicas
                .iter()
                .map(|r| r.entries.len())
                .max()
                .unwrap_or(0))
            .sum::<usize>(),
        end_started.elapsed().as_secs_f64()
    );
    let crashes = nemesis.crashes();
    let faults = nemesis.faults();
    drop(nemesis);

    let mut verdict = checker::check(run_id, &history.attempts, &logs);
    // A value read back as something else at its acknowledged index was lost to a reader.
    verdict.lost += history.read_mismatches.len() as u64;
    verdict.examples.extend(
        history
            .read_mismatches
            .iter()
            .take(checker::EXAMPLES_MAX)
            .cloned(),
    );
    println!(
        "chaos: reads during the run={} mismatched={}",
        history.reads,
        history.read_mismatches.len()
    );
    Ok(RunReport {
        seconds,
        faults,
        verdict,
        crashes,
    })
}

//! `dledger-perf failover --kills N [--graceful]`: leader failover, measured.
//!
//! Starts its own three-node cluster (one group, every Raft timing at its default; configs
//! and storage in a temporary directory, removed afterwards), appends continuously through
//! the client library, and `N` times: lets the load run for `--settle-ms`, stops the
//! leader (SIGKILL, or SIGTERM with `--graceful`), waits for a new leader to acknowledge
//! appends, restarts the old leader and waits until it has caught up. Then it stops the
//! load, reads the whole group back from every node and accounts for every append
//! (`check`).
//!
//! A kill's failover time is from the signal to the first acknowledgement of an append
//! that landed in a newer term than the stopped leader's (the entry's term is read back
//! from the log afterwards, so an acknowledgement the old leader sent just before it died
//! does not count). Median and p99 are nearest-rank over the kills. The last line is
//! exactly `kills=N failover_median_ms=X failover_p99_ms=Y acked=A lost=L`; the exit
//! status is non-zero when any check failed (lost, duplicated, phantom, diverged or
//! foreign entries).
//!
//! The nodes are this harness's own build of the server (`dledger-perf server -c FILE`,
//! the same code as `dledger server`), or `--server-bin` to test another build.

pub mod check;
pub mod cluster;
pub mod load;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use argh::FromArgs;
use dledger::raft::{Role, Term};
use nix::sys::signal::Signal;

use crate::cluster::{Cluster, Launch};
use crate::report::SummaryLine;
use check::{Accounting, account, read_replica, term_of};
use load::{Load, Outcome, Record};

/// Kill the leader N times under load; measure failover and check no acknowledged append
/// is lost.
#[derive(FromArgs, Debug, Clone, PartialEq, Eq)]
#[argh(subcommand, name = "failover")]
pub struct FailoverArgs {
    /// leader stops to measure (default 5)
    #[argh(option, default = "5")]
    pub kills: u32,
    /// stop the leader with SIGTERM (graceful: leadership is handed over) instead of SIGKILL
    #[argh(switch)]
    pub graceful: bool,
    /// concurrent appenders, one append in flight each (default 8)
    #[argh(option, default = "8")]
    pub workers: u32,
    /// bytes per appended body (default 128)
    #[argh(option, default = "128")]
    pub body_bytes: usize,
    /// load time before each stop in ms (default 1000)
    #[argh(option, default = "1000")]
    pub settle_ms: u64,
    /// bound on each wait (leader, catch-up, final replication) in ms (default 30000)
    #[argh(option, default = "30000")]
    pub wait_ms: u64,
    /// extra node setting KEY=VALUE, repeatable (e.g. --set heartBeatTimeIntervalMs=50)
    #[argh(option)]
    pub set: Vec<String>,
    /// run nodes as `<BIN> server -c FILE` instead of with this harness's own server
    #[argh(option)]
    pub server_bin: Option<PathBuf>,
    /// keep the cluster directory (configs, node logs, storage) afterwards
    #[argh(switch)]
    pub keep_dir: bool,
}

const KILLS_MAX: u32 = 1000;
const WORKERS_MAX: u32 = 1024;
const BODY_BYTES_MIN: usize = 16;
const BODY_BYTES_MAX: usize = 1 << 20;
/// How long a stopped node gets to exit (a graceful stop drains for at most ~4 s).
const EXIT_WAIT_MS: u64 = 10_000;
/// How often cluster state is polled while waiting.
const POLL_MS: u64 = 20;
/// Bytes of each node's log shown when a wait times out.
const LOG_TAIL_BYTES: u64 = 2048;
/// The nodes' `RUST_LOG` unless this process has one.
const NODE_LOG_FILTER: &str = "info";

/// One leader stop.
#[derive(Debug, Clone)]
struct Kill {
    node: usize,
    old_term: Term,
    /// After the load's start.
    at_ns: u64,
    new_leader: usize,
    new_term: Term,
    catch_up: Duration,
}

/// Runs the harness; prints the report and returns the exit status.
pub fn run(args: &FailoverArgs) -> ExitCode {
    match run_inner(args) {
        Ok(ok) if ok => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("dledger-perf failover: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_settings(set: &[String]) -> Result<Vec<(String, String)>, String> {
    set.iter()
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("bad argument --set {kv:?}: expected KEY=VALUE"))?;
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

fn validate(args: &FailoverArgs) -> Result<(), String> {
    if !(1..=KILLS_MAX).contains(&args.kills) {
        return Err(format!("bad argument --kills: 1..={KILLS_MAX}"));
    }
    if !(1..=WORKERS_MAX).contains(&args.workers) {
        return Err(format!("bad argument --workers: 1..={WORKERS_MAX}"));
    }
    if !(BODY_BYTES_MIN..=BODY_BYTES_MAX).contains(&args.body_bytes) {
        return Err(format!(
            "bad argument --body-bytes: {BODY_BYTES_MIN}..={BODY_BYTES_MAX}"
        ));
    }
    if args.wait_ms == 0 {
        return Err("bad argument --wait-ms: at least 1".into());
    }
    Ok(())
}

/// Polls `f` every `POLL_MS` until it gives `Some`, failing with `what` after `wait_ms`.
fn wait_for<T>(
    cluster: &mut Cluster,
    wait_ms: u64,
    what: &str,
    mut f: impl FnMut(&mut Cluster) -> Option<T>,
) -> Result<T, String> {
    let until = Instant::now() + Duration::from_millis(wait_ms);
    loop {
        cluster.check_running().map_err(|e| e.to_string())?;
        if let Some(v) = f(cluster) {
            return Ok(v);
        }
        if Instant::now() >= until {
            return Err(format!(
                "timed out after {wait_ms} ms waiting for {what}; node logs end with:\n{}",
                cluster.log_tails(LOG_TAIL_BYTES)
            ));
        }
        std::thread::sleep(Duration::from_millis(POLL_MS));
    }
}

fn run_inner(args: &FailoverArgs) -> Result<bool, String> {
    validate(args)?;
    let extra = parse_settings(&args.set)?;
    let launch =
        Launch::chosen(args.server_bin.as_deref(), NODE_LOG_FILTER).map_err(|e| e.to_string())?;
    let (mut cluster, mut dir) =
        cluster::create(&std::env::temp_dir(), &launch, &extra).map_err(|e| e.to_string())?;
    dir.keep(args.keep_dir);
    let result = run_in(args, &mut cluster, dir.path());
    if matches!(result, Ok(false)) {
        dir.keep(true);
    }
    // The nodes go first, then the directory they use.
    drop(cluster);
    if dir.is_kept() {
        eprintln!("cluster files kept in {}", dir.path().display());
    }
    result
}

fn run_in(args: &FailoverArgs, cluster: &mut Cluster, dir: &Path) -> Result<bool, String> {
    cluster.start_all().map_err(|e| e.to_string())?;
    let (first_leader, _) = wait_for(cluster, args.wait_ms, "a first leader", |c| {
        cluster::leader(c)
    })?;
    println!(
        "cluster up in {}: {} leads; {} workers appending {} B bodies; stop signal {}",
        dir.display(),
        cluster.node(first_leader).name,
        args.workers,
        args.body_bytes,
        if args.graceful { "SIGTERM" } else { "SIGKILL" }
    );
    let load = Load::start(cluster.client_addrs(), args.workers, args.body_bytes)?;
    let outcome = drive(args, cluster, &load);
    // Stop the load whatever happened, so its thread does not outlive the report.
    let records = load.finish();
    let kills = outcome?;
    let (records, messages) = records?;
    let logs = read_back(args, cluster)?;
    let accounting = account(&records, &logs, args.body_bytes);
    let longest = logs
        .iter()
        .max_by_key(|l| l.len())
        .map_or(&[][..], Vec::as_slice);
    let failovers = failover_times(&kills, &records, longest)?;
    report(
        args,
        cluster,
        &kills,
        &failovers,
        &accounting,
        &records,
        &messages,
    );
    Ok(accounting.ok())
}

/// The kills, under load.
fn drive(args: &FailoverArgs, cluster: &mut Cluster, load: &Load) -> Result<Vec<Kill>, String> {
    let progress = load.progress.clone();
    wait_for(
        cluster,
        args.wait_ms,
        "the first acknowledged append",
        |_| progress.last_ack(),
    )?;
    let signal = if args.graceful {
        Signal::SIGTERM
    } else {
        Signal::SIGKILL
    };
    let mut kills = Vec::new();
    for k in 1..=args.kills {
        std::thread::sleep(Duration::from_millis(args.settle_ms));
        let (leader, old_term) =
            wait_for(cluster, args.wait_ms, "a leader before the stop", |c| {
                cluster::leader(c)
            })?;
        let stalled = progress
            .last_ack()
            .is_none_or(|t| t.elapsed() > Duration::from_millis(args.settle_ms.max(1000)));
        if stalled {
            return Err(format!(
                "kill {k}: the load stopped being acknowledged before the stop"
            ));
        }
        let at = cluster
            .node(leader)
            .signal(signal)
            .map_err(|e| e.to_string())?;
        let at_ns = u64::try_from(at.duration_since(progress.t0).as_nanos()).unwrap_or(u64::MAX);
        cluster
            .node_mut(leader)
            .reap(Duration::from_millis(EXIT_WAIT_MS))
            .map_err(|e| e.to_string())?;
        let (new_leader, new_term) = wait_for(cluster, args.wait_ms, "a new leader", |c| {
            cluster::leader(c).filter(|&(l, t)| l != leader && t > old_term)
        })?;
        let acked_then = progress.acked.load(std::sync::atomic::Ordering::Acquire);
        wait_for(
            cluster,
            args.wait_ms,
            "an append acknowledged by the new leader",
            |_| {
                (progress.acked.load(std::sync::atomic::Ordering::Acquire) > acked_then)
                    .then_some(())
            },
        )?;
        let restarted = Instant::now();
        cluster
            .node_mut(leader)
            .start()
            .map_err(|e| e.to_string())?;
        wait_for(
            cluster,
            args.wait_ms,
            "the restarted node to catch up",
            |c| caught_up(c, leader),
        )?;
        let catch_up = restarted.elapsed();
        println!(
            "stop {k}/{}: {} led term {old_term}; {} leads term {new_term}; {} back and caught up in {} ms",
            args.kills,
            cluster.node(leader).name,
            cluster.node(new_leader).name,
            cluster.node(leader).name,
            catch_up.as_millis()
        );
        kills.push(Kill {
            node: leader,
            old_term,
            at_ns,
            new_leader,
            new_term,
            catch_up,
        });
    }
    Ok(kills)
}

/// Whether node `i` follows the current leader and has committed what the leader had
/// committed when asked.
fn caught_up(c: &mut Cluster, i: usize) -> Option<()> {
    let states = cluster::states(c);
    let leader = states.iter().find(|s| s.row.role == Role::Leader)?;
    let me = states.iter().find(|s| s.node == i)?;
    (me.row.role == Role::Follower
        && me.row.term == leader.row.term
        && me.row.commit_index >= leader.row.commit_index)
        .then_some(())
}

/// Waits until every node has committed the leader's whole ledger, then reads each.
fn read_back(
    args: &FailoverArgs,
    cluster: &mut Cluster,
) -> Result<Vec<Vec<dledger::wire::GotEntry>>, String> {
    let n = cluster.len();
    wait_for(
        cluster,
        args.wait_ms,
        "every node to commit the whole ledger",
        |c| {
            let states = cluster::states(c);
            let leader = states.iter().find(|s| s.row.role == Role::Leader)?;
            let end = leader.row.ledger_end;
            (states.len() == n
                && leader.row.commit_index == end
                && states.iter().all(|s| s.row.commit_index == end))
            .then_some(())
        },
    )?;
    (0..n)
        .map(|i| read_replica(&cluster.node(i).client_addr))
        .collect()
}

/// Per kill: from the signal to the first acknowledgement of an entry of a newer term.
fn failover_times(
    kills: &[Kill],
    records: &[Record],
    log: &[dledger::wire::GotEntry],
) -> Result<Vec<Duration>, String> {
    kills
        .iter()
        .enumerate()
        .map(|(k, kill)| {
            records
                .iter()
                .filter_map(|r| match r.outcome {
                    Outcome::Acked { index, at_ns }
                        if at_ns > kill.at_ns
                            && term_of(log, index).is_some_and(|t| t > kill.old_term) =>
                    {
                        Some(at_ns - kill.at_ns)
                    }
                    _ => None,
                })
                .min()
                .map(Duration::from_nanos)
                .ok_or_else(|| {
                    format!("stop {}: no append of a newer term was acknowledged", k + 1)
                })
        })
        .collect()
}

/// Nearest-rank percentile `p` (0 < p ≤ 1) of `sorted` (ascending, non-empty).
fn nearest_rank(sorted: &[Duration], p: f64) -> Duration {
    debug_assert!(!sorted.is_empty() && p > 0.0 && p <= 1.0);
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn report(
    args: &FailoverArgs,
    cluster: &Cluster,
    kills: &[Kill],
    failovers: &[Duration],
    a: &Accounting,
    records: &[Record],
    messages: &[String],
) {
    for (k, (kill, f)) in kills.iter().zip(failovers).enumerate() {
        println!(
            "stop {}: {} (term {}) -> {} (term {}): failover {} ms, catch-up {} ms",
            k + 1,
            cluster.node(kill.node).name,
            kill.old_term,
            cluster.node(kill.new_leader).name,
            kill.new_term,
            f.as_millis(),
            kill.catch_up.as_millis()
        );
    }
    println!(
        "appends: acked {} unknown {} refused {}; lost {} duplicated {} phantom {} diverged {} foreign {}",
        a.acked, a.unknown, a.refused, a.lost, a.duplicated, a.phantom, a.diverged, a.foreign
    );
    let mut by_code: std::collections::BTreeMap<(&str, String), u64> = Default::default();
    for r in records {
        let key = match r.outcome {
            Outcome::Acked { .. } => continue,
            Outcome::Unknown { code } => ("unknown", format!("{code:?}")),
            Outcome::Refused { code } => ("refused", format!("{code:?}")),
        };
        *by_code.entry(key).or_default() += 1;
    }
    for ((kind, code), n) in &by_code {
        println!("  {kind} {code}: {n}");
    }
    for m in messages {
        println!("  first {m}");
    }
    for e in &a.examples {
        println!("  problem: {e}");
    }
    let mut sorted = failovers.to_vec();
    sorted.sort_unstable();
    let ms = |d: Duration| d.as_millis() as u64;
    let line = SummaryLine::new()
        .int("kills", u64::from(args.kills))
        .int("failover_median_ms", ms(nearest_rank(&sorted, 0.5)))
        .int("failover_p99_ms", ms(nearest_rank(&sorted, 0.99)))
        .int("acked", a.acked)
        .int("lost", a.lost)
        .finish();
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(nearest_rank(&v, 0.5), Duration::from_millis(10));
        assert_eq!(nearest_rank(&v, 0.99), Duration::from_millis(20));
        let one = [Duration::from_millis(7)];
        assert_eq!(nearest_rank(&one, 0.5), one[0]);
        assert_eq!(nearest_rank(&one, 0.99), one[0]);
    }

    #[test]
    fn settings_parse_and_bad_ones_name_the_flag() {
        assert_eq!(
            parse_settings(&["a=1".into(), " b = x=y ".into()]),
            Ok(vec![("a".into(), "1".into()), ("b".into(), "x=y".into())])
        );
        assert!(
            parse_settings(&["novalue".into()])
                .unwrap_err()
                .contains("--set")
        );
    }

    #[test]
    fn bounds_are_checked() {
        let ok = FailoverArgs {
            kills: 1,
            graceful: false,
            workers: 1,
            body_bytes: 128,
            settle_ms: 0,
            wait_ms: 1,
            set: vec![],
            server_bin: None,
            keep_dir: false,
        };
        assert_eq!(validate(&ok), Ok(()));
        assert!(
            validate(&FailoverArgs {
                kills: 0,
                ..ok.clone()
            })
            .is_err()
        );
        assert!(
            validate(&FailoverArgs {
                workers: 0,
                ..ok.clone()
            })
            .is_err()
        );
        assert!(
            validate(&FailoverArgs {
                body_bytes: 1,
                ..ok
            })
            .is_err()
        );
    }
}

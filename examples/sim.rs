//! Runs the deterministic simulator over a range of seeds.
//!
//! `cargo run --release -p dledger --example sim -- --seeds N [--seed S] [--nodes 3|5]
//! [--groups M] [--plant BUG]`; the last line is
//! `seeds=N violations=V elections=E committed=C`, and the exit code is non-zero if V > 0.

use std::process::ExitCode;

use argh::FromArgs;
use dledger::testing::{SimOptions, Summary, run_seed};

/// Run the deterministic raft simulator over a range of seeds.
#[derive(FromArgs, Debug)]
struct Args {
    /// how many seeds to run
    #[argh(option)]
    seeds: u64,
    /// first seed (default 0)
    #[argh(option, default = "0")]
    seed: u64,
    /// nodes per group: 3 or 5 (default 3)
    #[argh(option, default = "3")]
    nodes: usize,
    /// raft groups hosted on every node, 1 to 16 (default 2)
    #[argh(option, default = "2")]
    groups: usize,
    /// length of the fault period in ticks (default 1000)
    #[argh(option)]
    ticks: Option<u32>,
    /// after healing, a group must commit something at least once per this many ticks until a
    /// proposal made after healing commits (default 300; capped at 20 windows)
    #[argh(option)]
    liveness_ticks: Option<u32>,
    /// plant a deliberate bug (needs --features planted-bugs): vote-ignores-log,
    /// commit-old-term, ack-before-persist
    #[argh(option)]
    plant: Option<String>,
    /// stop at the first failing seed
    #[argh(switch)]
    stop_at_first: bool,
    /// print a trace of every run to stderr (use with --seeds 1)
    #[argh(switch)]
    verbose: bool,
    /// print one line per seed
    #[argh(switch)]
    each: bool,
}

fn options(args: &Args) -> Result<SimOptions, String> {
    if !(1..=dledger::raft::MAX_PEERS).contains(&args.nodes) {
        return Err(format!(
            "--nodes {} is out of range: use 3 or 5 (1 to {})",
            args.nodes,
            dledger::raft::MAX_PEERS
        ));
    }
    if !(1..=16).contains(&args.groups) {
        return Err(format!(
            "--groups {} is out of range: use 1 to 16",
            args.groups
        ));
    }
    let mut opts = SimOptions {
        nodes: args.nodes,
        groups: args.groups,
        verbose: args.verbose,
        ..SimOptions::default()
    };
    if let Some(t) = args.ticks {
        if t == 0 {
            return Err("--ticks must be at least 1".into());
        }
        opts.fault_ticks = t;
    }
    if let Some(t) = args.liveness_ticks {
        if t == 0 {
            return Err("--liveness-ticks must be at least 1".into());
        }
        opts.liveness_ticks = t;
    }
    if let Some(name) = &args.plant {
        plant(&mut opts, name)?;
    }
    Ok(opts)
}

#[cfg(feature = "planted-bugs")]
fn plant(opts: &mut SimOptions, name: &str) -> Result<(), String> {
    opts.planted = Some(dledger::testing::parse_planted(name)?);
    Ok(())
}

#[cfg(not(feature = "planted-bugs"))]
fn plant(_opts: &mut SimOptions, name: &str) -> Result<(), String> {
    Err(format!(
        "--plant {name} needs the planted-bugs feature: cargo run --release -p dledger --example sim --features planted-bugs -- ..."
    ))
}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    let opts = match options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sim: {e}");
            return ExitCode::from(2);
        }
    };
    let mut summary = Summary::default();
    for seed in args.seed..args.seed.saturating_add(args.seeds) {
        let report = run_seed(&opts, seed);
        summary.add(&report);
        if args.each {
            println!("seed={seed} {:?}", report.stats);
        }
        if let Some(v) = &report.violation {
            println!("VIOLATION seed={seed} {v}");
            println!("  replay: {}", opts.replay_command(seed));
            if args.stop_at_first {
                break;
            }
        }
    }
    println!("{summary}");
    if summary.violations > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

//! `dledger-perf`: harnesses that measure and attack a real dledger cluster.
//! The command line is one argh subcommand per harness; the harnesses live in
//! the `dledger_perf` library.

use std::process::ExitCode;

use argh::FromArgs;
use dledger_perf::{bench, chaos, disk, failover};

/// dledger-rs performance and fault harnesses.
#[derive(FromArgs, Debug)]
struct Cli {
    /// print the version and exit
    #[argh(switch)]
    version: bool,
    #[argh(subcommand)]
    command: Option<Command>,
}

// Parsed once at start-up: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    Disk(disk::DiskArgs),
    Chaos(chaos::ChaosArgs),
    Failover(failover::FailoverArgs),
    // The dledger server built into this harness (`dledger server`): chaos and failover
    // run their nodes with it, so they are always this build's.
    Server(dledger_shards::cli::server::ServerArgs),
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli: Cli = argh::from_env();
    if cli.version {
        println!("dledger-perf {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let (name, result) = match &cli.command {
        Some(Command::Disk(args)) => ("disk", disk::run(args)),
        Some(Command::Chaos(args)) => match chaos::run(args) {
            Ok(true) => return ExitCode::SUCCESS,
            // The report (its last line says what failed) is already printed.
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => ("chaos", Err(e)),
        },
        Some(Command::Failover(args)) => return failover::run(args),
        Some(Command::Server(args)) => return dledger_shards::cli::server::run(args.clone()),
        Some(Command::Bench(args)) => ("bench", bench::run(args)),
        None => {
            eprintln!("dledger-perf: no harness selected; try --help");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dledger-perf {name}: error: {e}");
            ExitCode::FAILURE
        }
    }
}

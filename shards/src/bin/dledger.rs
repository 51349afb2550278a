//! The `dledger` command line.

use std::{path::PathBuf, process::ExitCode};

use argh::FromArgs;

/// dledger-rs: a Raft-replicated commitlog server.
#[derive(FromArgs, Debug)]
struct Cli {
    /// print the version and exit
    #[argh(switch)]
    version: bool,
    #[argh(subcommand)]
    command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    Server(ServerArgs),
}

/// Run a dledger node from a RocketMQ/DLedger properties file.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "server")]
struct ServerArgs {
    /// the node's config file (e.g. conf/dledger/broker-n0.conf)
    #[argh(option, short = 'c')]
    config: PathBuf,
    /// log filter when RUST_LOG is not set (default: info)
    #[argh(option)]
    log_level: Option<String>,
}

fn main() -> ExitCode {
    let cli: Cli = argh::from_env();
    if cli.version {
        println!("dledger {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    match cli.command {
        Some(Command::Server(a)) => dledger_shards::server::run(&a.config, a.log_level.as_deref()),
        None => {
            eprintln!("dledger: no subcommand given. Try --help.");
            ExitCode::from(2)
        }
    }
}

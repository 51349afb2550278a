//! `dledger server -c FILE`: run a node.

use std::path::PathBuf;
use std::process::ExitCode;

use argh::FromArgs;

/// Run a dledger node from a RocketMQ/DLedger properties file.
#[derive(FromArgs, Debug, Clone, PartialEq, Eq)]
#[argh(subcommand, name = "server")]
pub struct ServerArgs {
    /// the node's config file (e.g. conf/dledger/broker-n0.conf)
    #[argh(option, short = 'c')]
    pub config: PathBuf,
    /// log filter when RUST_LOG is not set (default: info)
    #[argh(option)]
    pub log_level: Option<String>,
}

/// Runs the node until it is stopped; the server reports its own errors.
pub fn run(args: ServerArgs) -> ExitCode {
    run_server_module(args)
}

/// The seam to the server (branch `server`, `dledger_shards::server::run(&Path,
/// Option<&str>) -> ExitCode`). On the merged tree this body becomes
/// `crate::server::run(&args.config, args.log_level.as_deref())`; this branch does not
/// have that module, so the subcommand says so instead of pretending to serve.
fn run_server_module(args: ServerArgs) -> ExitCode {
    eprintln!(
        "dledger server: not yet merged: the server (module dledger_shards::server, branch \
         `server`) is not part of this build; cannot serve {}",
        args.config.display()
    );
    ExitCode::FAILURE
}

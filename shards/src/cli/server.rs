//! `dledger server -c FILE`: run a node.

use std::path::PathBuf;

use argh::FromArgs;

/// Run a dledger node from a RocketMQ/DLedger properties file.
#[derive(FromArgs, Debug, Clone, PartialEq, Eq)]
#[argh(subcommand, name = "server")]
pub struct ServerArgs {
    /// the node's config file (RocketMQ broker properties, e.g. conf/dledger/broker-n0.conf)
    #[argh(option, short = 'c')]
    pub config: PathBuf,
}

/// Runs the node until it is stopped.
pub fn run(args: ServerArgs) -> Result<(), String> {
    run_server_module(args)
}

/// The seam to the server (branch `server`, module `dledger_shards::server`). On the
/// merged tree this calls `crate::server::run(args)`; this branch does not have that
/// module yet, so the subcommand says so instead of pretending to serve.
fn run_server_module(args: ServerArgs) -> Result<(), String> {
    Err(format!(
        "not yet merged: the server (module dledger_shards::server, branch `server`) is \
         not part of this build; cannot serve {}",
        args.config.display()
    ))
}

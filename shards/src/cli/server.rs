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
    /// a deliberate bug to switch on (ack-without-quorum); planted-bugs builds only
    #[cfg(feature = "planted-bugs")]
    #[argh(option)]
    pub planted_bug: Option<String>,
}

/// Runs the node until it is stopped (exit 0 after SIGTERM/SIGINT, 2 for a config that
/// does not load, 1 for a start-up failure); the server reports its own errors.
pub fn run(args: ServerArgs) -> ExitCode {
    #[cfg(feature = "planted-bugs")]
    if let Some(bug) = &args.planted_bug
        && let Err(e) = crate::server::planted::enable(bug)
    {
        eprintln!("dledger server: --planted-bug: {e}");
        return ExitCode::from(crate::server::EXIT_CONFIG);
    }
    crate::server::run(&args.config, args.log_level.as_deref())
}

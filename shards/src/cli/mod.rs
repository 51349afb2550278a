//! The `dledger` command line: one module per subcommand.
//!
//! ```text
//! dledger server   -c FILE                                   run a node
//! dledger append   --peers ADDRS --group G -d DATA [-c N]    append N copies of DATA
//! dledger get      --peers ADDRS --group G -i INDEX [-n MAX] print committed entries
//! dledger metadata --peers ADDRS --group G                   print the group's state
//! dledger cluster-list (--peers ADDRS | -n NAMESRV) [--json] every node's groups, BID
//! dledger namesrv [--port 9876]                             name server nodes register with
//! dledger fast-try start|stop [--conf-dir D] [--root R]      local 3-node cluster
//! dledger import (--rocketmq-commitlog D | --dledger-store D) --group G -c FILE
//!                                                           adopt an old log (node stopped)
//! dledger check -c FILE -c FILE [...] [--group G]           compare replicas segment by segment
//! ```
//!
//! `ADDRS` are the nodes' client addresses (`host:port`, separated by `;` or `,`).
//! Failures print which address answered what (DLedger's code name) and exit non-zero.

pub mod append;
pub mod check;
pub mod cluster_list;
pub mod fast_try;
pub mod get;
pub mod import;
pub mod metadata;
pub mod namesrv;
pub mod server;

use std::process::ExitCode;

use argh::FromArgs;

use crate::client::{Client, ClientError, ClientOptions, parse_peers};

/// dledger-rs: a Raft-replicated commitlog server.
#[derive(FromArgs, Debug)]
pub struct Cli {
    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
    #[argh(subcommand)]
    pub command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Server(server::ServerArgs),
    Append(append::AppendArgs),
    Get(get::GetArgs),
    Metadata(metadata::MetadataArgs),
    ClusterList(cluster_list::ClusterListArgs),
    FastTry(fast_try::FastTryArgs),
    Namesrv(namesrv::NamesrvArgs),
    Import(import::ImportArgs),
    Check(check::CheckArgs),
}

/// Runs the parsed command line; the exit code says whether it worked.
pub fn run(cli: Cli) -> ExitCode {
    if cli.version {
        println!("dledger {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let (name, result) = match cli.command {
        None => {
            eprintln!("dledger: no subcommand given. Try --help.");
            return ExitCode::from(2);
        }
        Some(Command::Server(a)) => return server::run(a),
        Some(Command::Append(a)) => ("append", append::run(a)),
        Some(Command::Get(a)) => ("get", get::run(a)),
        Some(Command::Metadata(a)) => ("metadata", metadata::run(a)),
        Some(Command::ClusterList(a)) => ("cluster-list", cluster_list::run(a)),
        Some(Command::FastTry(a)) => ("fast-try", fast_try::run(a)),
        Some(Command::Namesrv(a)) => ("namesrv", namesrv::run(a)),
        Some(Command::Import(a)) => ("import", import::run(a)),
        Some(Command::Check(a)) => ("check", check::run(a)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dledger {name}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Options every client subcommand shares.
pub(crate) fn client_options(timeout_ms: u64) -> ClientOptions {
    ClientOptions {
        call_deadline_ms: timeout_ms.max(1),
        ..ClientOptions::default()
    }
}

/// Connects to `group` at the `;`/`,`-separated `peers`.
pub(crate) async fn connect(
    peers: &str,
    group: &str,
    opts: ClientOptions,
) -> Result<Client, String> {
    let addrs = parse_peers(peers).map_err(|e| format!("--peers: {e}"))?;
    Client::connect(addrs, group, opts)
        .await
        .map_err(|e| describe(&e, &format!("connecting to group {group}")))
}

/// One line naming the code, the address and the message.
pub(crate) fn describe(e: &ClientError, doing: &str) -> String {
    format!("{doing}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::from_args(&["dledger"], args).map_err(|e| e.output)
    }

    #[test]
    fn subcommands_take_the_documented_flags() {
        let p = "127.0.0.1:30911;127.0.0.1:30921";
        let cli = parse(&["append", "--peers", p, "--group", "G", "-d", "x", "-c", "5"]).unwrap();
        let Some(Command::Append(a)) = cli.command else {
            panic!("append")
        };
        assert_eq!(
            (a.peers.as_str(), a.group.as_str(), a.data.as_str()),
            (p, "G", "x")
        );
        assert_eq!((a.count, a.window), (5, 64));

        let cli = parse(&[
            "get", "--peers", p, "--group", "G", "-i", "7", "-n", "3", "--hex",
        ])
        .unwrap();
        let Some(Command::Get(g)) = cli.command else {
            panic!("get")
        };
        assert_eq!((g.index, g.max, g.hex, g.max_bytes), (7, 3, true, 1 << 20));

        let cli = parse(&["metadata", "--peers", p, "--group", "G"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Metadata(_))));

        let cli = parse(&["server", "-c", "conf/dledger/broker-n0.conf"]).unwrap();
        let Some(Command::Server(s)) = cli.command else {
            panic!("server")
        };
        assert_eq!(
            s.config,
            std::path::PathBuf::from("conf/dledger/broker-n0.conf")
        );
    }

    #[test]
    fn missing_or_bad_flags_are_refused() {
        assert!(
            parse(&["append", "--peers", "a:1", "--group", "G"])
                .unwrap_err()
                .contains("-d")
        );
        assert!(
            parse(&["get", "--peers", "a:1", "--group", "G"])
                .unwrap_err()
                .contains("-i")
        );
        assert!(parse(&["get", "--peers", "a:1", "--group", "G", "-i", "x"]).is_err());
    }
}

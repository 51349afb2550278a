//! The `dledger` command line.

use argh::FromArgs;

/// dledger-rs: a Raft-replicated commitlog server.
#[derive(FromArgs, Debug)]
struct Cli {
    /// print the version and exit
    #[argh(switch)]
    version: bool,
}

fn main() {
    let cli: Cli = argh::from_env();
    if cli.version {
        println!("dledger {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    eprintln!("dledger: the server is not built yet; see README.md. Try --help.");
    std::process::exit(2);
}

//! `dledger-perf`: harnesses that measure and attack a real dledger cluster.

use argh::FromArgs;

/// dledger-rs performance and fault harnesses.
#[derive(FromArgs, Debug)]
struct Cli {
    /// print the version and exit
    #[argh(switch)]
    version: bool,
}

fn main() {
    let cli: Cli = argh::from_env();
    if cli.version {
        println!("dledger-perf {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    eprintln!("dledger-perf: no harness selected; try --help");
    std::process::exit(2);
}

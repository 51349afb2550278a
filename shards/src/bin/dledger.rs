//! The `dledger` command line (see `dledger_shards::cli`).

use std::process::ExitCode;

fn main() -> ExitCode {
    dledger_shards::cli::run(argh::from_env())
}

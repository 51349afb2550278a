//! Helpers for the import and check tests: run the `dledger` binary, write fixture
//! files, and read a group's log back with the real store.
#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dledger::config::{NodeConfig, parse_file_contents};
use dledger_shards::disk::{GroupLog, LogConfig};
use glommio::{LocalExecutorBuilder, Placement};

/// Runs `dledger <args>` and returns its output.
pub fn dledger(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dledger"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the dledger binary")
}

/// Stdout and stderr as one string, for messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Writes `(start, bytes)` files into `dir`, named by their 20-digit start.
pub fn write_files(dir: &Path, files: &[(u64, Vec<u8>)]) {
    std::fs::create_dir_all(dir).expect("create the source dir");
    for (start, bytes) in files {
        std::fs::write(dir.join(format!("{start:020}")), bytes).expect("write a source file");
    }
}

pub fn load(config: &Path) -> NodeConfig {
    let text = std::fs::read_to_string(config).expect("read the config");
    parse_file_contents(&config.to_string_lossy(), &text)
        .expect("a valid config")
        .config
}

/// The log config the server uses for `group` on the node of `config`.
pub fn log_config(config: &Path, group: &str) -> LogConfig {
    let cfg = load(config);
    let mut lc = LogConfig::new(&cfg.storage.dledger_base_dir, &cfg.self_name, group);
    lc.segment_bytes = cfg.storage.data_segment_bytes;
    lc.max_record_bytes = cfg.limits.max_body_bytes + dledger::store::record::HEADER_BYTES as u32;
    lc
}

pub fn group_dir(config: &Path, group: &str) -> PathBuf {
    log_config(config, group).group_dir()
}

/// One entry read back: (index, term, pos, body).
pub type ReadEntry = (u64, u64, u64, Vec<u8>);

/// Opens the group's log with the real store (recovery included) and reads every
/// entry.
pub fn read_log(config: &Path, group: &str) -> Vec<ReadEntry> {
    let config = config.to_owned();
    let group = group.to_owned();
    let plan = dledger_shards::memlock::ensure_memlock(1, 10 << 20).expect("memlock");
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(plan.io_memory_bytes)
        .spawn(move || async move {
            let lc = log_config(&config, &group);
            let log = GroupLog::open(lc).await.expect("open the imported log");
            let mut out = Vec::new();
            for i in log.first_index()..=log.last_index() {
                let e = log.entry(i).await.expect("read an entry");
                out.push((e.index, e.term, e.pos, e.body().to_vec()));
            }
            log.close().await.expect("close");
            out
        })
        .expect("spawn an executor")
        .join()
        .expect("executor thread")
}

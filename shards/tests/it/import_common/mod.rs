//! Helpers for the import and check tests: run the `dledger` binary, write fixture
//! files, and read a group's log back with the real store.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dledger::config::{NodeConfig, parse_file_contents};
use dledger::upgrade::fixtures::{CommitLogImage, RmqMessage};
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

/// The group the example configs run.
pub const GROUP: &str = "RaftNode00";
/// CommitLog file size of the test fixtures (so a few dozen messages span files).
pub const COMMITLOG_FILE_BYTES: u64 = 64 << 10;

/// A CommitLog of `messages` messages of 300 to 2,200 bytes, built byte by byte from
/// the format (each older file ends in a blank filler). Message `changed`, if given,
/// gets a different body, with its own valid CRC.
pub fn sample_commitlog(messages: u32, changed: Option<u32>) -> CommitLogImage {
    let mut img = CommitLogImage::new(COMMITLOG_FILE_BYTES, 0);
    for i in 0..messages {
        let mut body: Vec<u8> = (0..(300 + (i * 97) % 1900))
            .map(|j| (i ^ (3 * j)) as u8)
            .collect();
        if changed == Some(i) {
            body[3] ^= 0x5a;
        }
        let mut m = RmqMessage::simple("TopicTest", &body);
        m.queue_offset = i64::from(i);
        img.append(&m);
    }
    img
}

/// Writes `files` into `src` and runs `dledger import --rocketmq-commitlog src` for
/// [`GROUP`] on the node of `config`.
pub fn import_commitlog(
    src: &Path,
    files: &[(u64, Vec<u8>)],
    config: &Path,
    extra: &[&str],
) -> Output {
    write_files(src, files);
    let file_bytes = COMMITLOG_FILE_BYTES.to_string();
    let mut args = vec![
        "import",
        "--rocketmq-commitlog",
        src.to_str().expect("a UTF-8 path"),
        "--group",
        GROUP,
        "-c",
        config.to_str().expect("a UTF-8 path"),
        "--file-bytes",
        &file_bytes,
    ];
    args.extend_from_slice(extra);
    dledger(&args)
}

/// Imports `img` on node `node` of `cluster` (its own copy of the files); must work.
pub fn import_on(cluster: &crate::common::cluster::TestCluster, node: usize, img: &CommitLogImage) {
    let src = cluster.dir.join(format!("commitlog-{node}"));
    let out = import_commitlog(&src, &img.files, &cluster.nodes[node].config_path, &[]);
    assert!(
        out.status.success(),
        "import on node {node}: {}",
        text(&out)
    );
}

/// The three example brokers (`conf/dledger`), not started, with the write limit on
/// disk usage raised so the tests do not depend on how full the machine's disk is.
pub fn three_nodes() -> crate::common::cluster::TestCluster {
    let d = crate::common::cluster::conf_dir().join("dledger");
    crate::common::cluster::TestCluster::from_confs(
        &[
            d.join("broker-n0.conf"),
            d.join("broker-n1.conf"),
            d.join("broker-n2.conf"),
        ],
        None,
        &[
            ("diskSpaceRatioToForceClean", "0.98"),
            ("diskSpaceRatioToRefuseWrites", "0.99"),
        ],
    )
}

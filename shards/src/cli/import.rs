//! `dledger import`: adopt an existing RocketMQ CommitLog, or a DLedger 0.3.x store, as
//! the start of a group's log on this node (issue 5, upgrade).
//!
//! ```text
//! dledger import --rocketmq-commitlog DIR --group G -c CONF [--file-bytes N] [--term T] [--dry-run]
//! dledger import --dledger-store DIR --group G -c CONF [--rocketmq-bodies] [--dry-run]
//! ```
//!
//! Two passes over the source. The first checks everything (every message's layout and
//! body CRC; every DLedger entry's structure and its index record) and plans the
//! records, writing nothing; a damaged source is refused with the file and byte offset
//! and nothing is imported. The second reads the same bytes again and writes them with
//! the real commitlog ([`crate::disk::GroupLog`], the way a follower writes what a
//! leader sent), syncing and checkpointing after every chunk; its digest must equal the
//! first pass's (the source did not change in between). Last, the prefix digest goes to
//! `import-digest` in the group directory: the server compares it with its peers' and
//! refuses to form the group with a node whose imported prefix differs
//! ([`crate::server::import_gate`]).
//!
//! A message cut short at the end of the newest file (a broker stopped mid-write) is
//! reported and the import stops at the last whole message.
//!
//! Placement: RocketMQ messages become entries 1, 2, … of term `--term` (default 1), each
//! body the whole message, unchanged. DLedger entries keep their terms, their positions
//! (the config's `mappedFileSizeForEntryData` must equal the store's data file size) and
//! their indexes shifted by one (DLedger counts from 0, we count from 1).

mod source;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use argh::FromArgs;
use dledger::config::{GroupConfig, NodeConfig, parse_file_contents};
use dledger::raft::HardState;
use dledger::store::record::encode_record;
use dledger::store::state::encode_checkpoint;
use dledger::store::{LogCursor, RecordKind, SegmentGeometry};
use dledger::upgrade::{
    CommitLogMessage, CommitLogScanConfig, CommitLogScanner, DEFAULT_MAX_IMPORTED_MESSAGE_BYTES,
    DLedgerEndKind, DLedgerEntry, DLedgerScanConfig, DLedgerScanner, DLedgerTruncatedTail,
    FileStop, IMPORT_DIGEST_FILE, ImportPlan, LogEndKind, PrefixDigest, Source, SourceEntry,
    TruncatedTail, check_index_records, check_rocketmq_body, dledger_index_location,
};

use crate::disk::{Checkpoint, GroupLog, GroupPaths, LogConfig};
use crate::server::{describe_digest, read_import_digest};
use source::{CHUNK_BYTES, SourceFile, Walker, check_file_sizes, list_files};

/// RocketMQ's default `mappedFileSizeCommitLog`.
const DEFAULT_COMMITLOG_FILE_BYTES: u64 = dledger::upgrade::rocketmq::DEFAULT_COMMITLOG_FILE_BYTES;
/// Registered I/O memory for the writer's executor (the log's DMA buffers).
const IMPORT_IO_MEMORY_BYTES: usize = 10 << 20;

/// Adopt a RocketMQ CommitLog or a DLedger 0.3.x store as the start of a group's log
/// on this node (stop the node first; its log of the group must be empty).
#[derive(FromArgs, Debug, Clone, PartialEq, Eq)]
#[argh(subcommand, name = "import")]
pub struct ImportArgs {
    /// a RocketMQ CommitLog directory (files named by their 20-digit start offset)
    #[argh(option)]
    pub rocketmq_commitlog: Option<PathBuf>,
    /// a DLedger 0.3.x store directory (with data/ and index/ inside)
    #[argh(option)]
    pub dledger_store: Option<PathBuf>,
    /// the group whose log the import starts (e.g. RaftNode00)
    #[argh(option)]
    pub group: String,
    /// this node's config file (storage dir, segment size, record limit)
    #[argh(option, short = 'c')]
    pub config: PathBuf,
    /// file size of the CommitLog: the broker's mappedFileSizeCommitLog (default 1 GiB)
    #[argh(option)]
    pub file_bytes: Option<u64>,
    /// term of the imported RocketMQ messages (default 1; the same on every node)
    #[argh(option, default = "1")]
    pub term: u64,
    /// DLedger store of a RocketMQ broker: check each body is a whole message with a
    /// good body CRC (0.3.x itself never checks bodies)
    #[argh(switch)]
    pub rocketmq_bodies: bool,
    /// check and report only; write nothing
    #[argh(switch)]
    pub dry_run: bool,
}

pub fn run(args: ImportArgs) -> Result<(), String> {
    let cfg = load_config(&args.config)?;
    let group = cfg
        .group(&args.group)
        .ok_or_else(|| {
            format!(
                "{}: no group {} on node {} (groups: {})",
                args.config.display(),
                args.group,
                cfg.self_name,
                cfg.groups
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?
        .clone();
    let log_cfg = crate::server::log_config(&cfg, &group);
    let job = match (&args.rocketmq_commitlog, &args.dledger_store) {
        (Some(dir), None) => Job::rocketmq(dir, &args, &log_cfg)?,
        (None, Some(dir)) => Job::dledger(dir, &args, &log_cfg)?,
        _ => {
            return Err(
                "give exactly one source: --rocketmq-commitlog DIR or --dledger-store DIR".into(),
            );
        }
    };
    println!(
        "import into group {} on node {} ({}) from {}",
        group.name,
        cfg.self_name,
        log_cfg.group_dir().display(),
        job.describe()
    );
    if !args.dry_run {
        refuse_running_node(&cfg)?;
        refuse_non_empty(&log_cfg)?;
    }
    let checked = job.check(&log_cfg)?;
    let Some(digest) = checked.digest.as_ref().filter(|d| d.entries > 0) else {
        return Err(format!(
            "no entries to import in {}{}",
            job.describe(),
            checked
                .tail
                .as_deref()
                .map_or(String::new(), |t| format!(" ({t})"))
        ));
    };
    let digest = digest.clone();
    print_report(&checked, &digest);
    if args.dry_run {
        println!("dry run: nothing written");
        return Ok(());
    }
    write_log(&job, &log_cfg, &group, &digest)?;
    println!(
        "wrote {} entries to {}; start the node with -c {}",
        digest.entries,
        log_cfg.group_dir().display(),
        args.config.display()
    );
    Ok(())
}

pub(crate) fn load_config(path: &Path) -> Result<NodeConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let loaded =
        parse_file_contents(&path.display().to_string(), &text).map_err(|e| e.to_string())?;
    Ok(loaded.config)
}

/// What one pass found.
#[derive(Debug)]
struct Pass {
    entries: u64,
    /// How the source ended, in words.
    end: String,
    /// The truncated last record, if the newest file cut one.
    tail: Option<String>,
    digest: Option<PrefixDigest>,
    end_pos: u64,
}

fn print_report(p: &Pass, digest: &PrefixDigest) {
    println!(
        "checked: {} entries importable as indexes {}..={}, log end at pos {}; source ends: {}",
        p.entries, digest.first_index, digest.last_index, p.end_pos, p.end
    );
    match &p.tail {
        Some(t) => println!("rejected: 1 ({t})"),
        None => println!("rejected: 0"),
    }
    println!("prefix digest: {}", describe_digest(digest));
}

/// The source and how its entries map to ours.
enum Job {
    RocketMq {
        dir: PathBuf,
        files: Vec<SourceFile>,
        config: CommitLogScanConfig,
        term: u64,
    },
    DLedger {
        dir: PathBuf,
        files: Vec<SourceFile>,
        index: Vec<SourceFile>,
        config: DLedgerScanConfig,
        rocketmq_bodies: bool,
    },
}

fn source_files(dir: &Path, what: &str) -> Result<Vec<SourceFile>, String> {
    let (files, ignored) = list_files(dir)?;
    if !ignored.is_empty() {
        println!(
            "ignoring {} file(s) in {} not named like {what}: {}",
            ignored.len(),
            dir.display(),
            ignored.join(", ")
        );
    }
    if files.is_empty() {
        return Err(format!("no {what} in {}", dir.display()));
    }
    Ok(files)
}

impl Job {
    fn rocketmq(dir: &Path, args: &ImportArgs, log: &LogConfig) -> Result<Job, String> {
        if args.term == 0 {
            return Err("--term must be at least 1".into());
        }
        let files = source_files(dir, "CommitLog files")?;
        let file_bytes = args.file_bytes.unwrap_or(DEFAULT_COMMITLOG_FILE_BYTES);
        check_file_sizes(
            &files,
            file_bytes,
            "pass --file-bytes with the broker's mappedFileSizeCommitLog",
        )?;
        let max_message_bytes = (log.max_record_bytes as usize)
            .saturating_sub(dledger::store::record::HEADER_BYTES)
            .min(DEFAULT_MAX_IMPORTED_MESSAGE_BYTES as usize)
            as u32;
        Ok(Job::RocketMq {
            dir: dir.to_owned(),
            files,
            config: CommitLogScanConfig {
                file_bytes,
                max_message_bytes,
            },
            term: args.term,
        })
    }

    fn dledger(dir: &Path, args: &ImportArgs, log: &LogConfig) -> Result<Job, String> {
        if args.file_bytes.is_some() {
            return Err(
                "--file-bytes is for a CommitLog; a DLedger store's data file size must equal \
                 the config's mappedFileSizeForEntryData"
                    .into(),
            );
        }
        let files = source_files(&dir.join("data"), "DLedger data files")?;
        let index = source_files(&dir.join("index"), "DLedger index files")?;
        check_file_sizes(
            &files,
            log.segment_bytes,
            "set mappedFileSizeForEntryData in the node's config to the store's data file size \
             (entries keep their positions)",
        )?;
        Ok(Job::DLedger {
            dir: dir.to_owned(),
            files,
            index,
            config: DLedgerScanConfig {
                data_file_bytes: log.segment_bytes,
                max_entry_bytes: log.max_record_bytes,
            },
            rocketmq_bodies: args.rocketmq_bodies,
        })
    }

    fn describe(&self) -> String {
        match self {
            Job::RocketMq {
                dir, files, config, ..
            } => format!(
                "RocketMQ CommitLog {} ({} files of {} bytes)",
                dir.display(),
                files.len(),
                config.file_bytes
            ),
            Job::DLedger {
                dir, files, index, ..
            } => format!(
                "DLedger store {} ({} data files, {} index files)",
                dir.display(),
                files.len(),
                index.len()
            ),
        }
    }

    /// Where our log starts (a segment start) for this source.
    fn start(&self) -> LogCursor {
        match self {
            Job::RocketMq { .. } => LogCursor::empty_at(0),
            Job::DLedger { files, .. } => LogCursor::empty_at(files.first().map_or(0, |f| f.start)),
        }
    }

    /// A pass over the source. `check`: the first pass, which also checks DLedger
    /// entries against the index files (and bodies, with `--rocketmq-bodies`).
    fn pass(&self, log: &LogConfig, check: bool) -> Result<Passing<'_>, String> {
        let geometry = SegmentGeometry::new(log.segment_bytes).map_err(|e| e.to_string())?;
        let plan = ImportPlan::new(&log.group, geometry, log.max_record_bytes, self.start())
            .map_err(|e| e.to_string())?;
        let scan = match self {
            Job::RocketMq {
                files,
                config,
                term,
                ..
            } => Scan::RocketMq {
                scanner: CommitLogScanner::new(*config).map_err(|e| e.to_string())?,
                walker: Walker::new(files, CHUNK_BYTES.max(config.max_message_bytes as usize)),
                term: *term,
            },
            Job::DLedger {
                files,
                index,
                config,
                rocketmq_bodies,
                ..
            } => Scan::DLedger {
                scanner: DLedgerScanner::new(*config).map_err(|e| e.to_string())?,
                walker: Walker::new(files, CHUNK_BYTES.max(config.max_entry_bytes as usize)),
                index: IndexFiles::new(index),
                check_bodies: check && *rocketmq_bodies,
                check_index: check,
                chunk_entries: Vec::new(),
            },
        };
        Ok(Passing { plan, scan })
    }

    /// The first pass: checks and plans every entry, writes nothing.
    fn check(&self, log: &LogConfig) -> Result<Pass, String> {
        let mut p = self.pass(log, true)?;
        while p.step(None)? {}
        p.finish()
    }
}

/// A DLedger store's index files, read as one address space (entry `i` at `i × 32`).
struct IndexFiles<'a> {
    files: &'a [SourceFile],
}

impl<'a> IndexFiles<'a> {
    fn new(files: &'a [SourceFile]) -> Self {
        IndexFiles { files }
    }

    /// Checks `entries` (consecutive, from one chunk) against their index records.
    fn check(&self, entries: &[DLedgerEntry]) -> Result<(), String> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        const RECORD: u64 = 32;
        let from = first.index.saturating_mul(RECORD);
        let to = last.index.saturating_add(1).saturating_mul(RECORD);
        let bytes = self.read(from, to)?;
        let file_bytes = self.files.first().map_or(1, |f| f.len.max(1));
        check_index_records(entries, &bytes, from, file_bytes).map_err(|e| e.to_string())
    }

    /// Bytes `[from, to)` of the index address space, across files; stops short where
    /// the files do (the check then says which record is not covered).
    fn read(&self, from: u64, to: u64) -> Result<Vec<u8>, String> {
        use std::os::unix::fs::FileExt;
        let mut out = Vec::with_capacity((to - from) as usize);
        let mut at = from;
        while at < to {
            let Some(f) = self
                .files
                .iter()
                .rev()
                .find(|f| f.start <= at && at < f.start + f.len)
            else {
                if out.is_empty() {
                    let file_bytes = self.files.first().map_or(1, |f| f.len.max(1));
                    let place = dledger_index_location(at / 32, file_bytes)
                        .map_or(String::new(), |(file, offset)| {
                            format!(" (index file {file}, offset {offset})")
                        });
                    return Err(format!(
                        "no DLedger index file holds the record of entry {}{place}",
                        at / 32
                    ));
                }
                break;
            };
            let n = (to.min(f.start + f.len) - at) as usize;
            let mut buf = vec![0u8; n];
            let file = std::fs::File::open(&f.path)
                .map_err(|e| format!("cannot open {}: {e}", f.path.display()))?;
            file.read_exact_at(&mut buf, at - f.start).map_err(|e| {
                format!("cannot read {} at {}: {e}", f.path.display(), at - f.start)
            })?;
            out.extend_from_slice(&buf);
            at += n as u64;
        }
        Ok(out)
    }
}

/// The two scanners behind one stepping interface.
enum Scan<'j> {
    RocketMq {
        scanner: CommitLogScanner,
        walker: Walker<'j, LogEndKind, TruncatedTail>,
        term: u64,
    },
    DLedger {
        scanner: DLedgerScanner,
        walker: Walker<'j, DLedgerEndKind, DLedgerTruncatedTail>,
        index: IndexFiles<'j>,
        check_bodies: bool,
        check_index: bool,
        /// This chunk's entries, for the index check.
        chunk_entries: Vec<DLedgerEntry>,
    },
}

/// A pass in progress.
struct Passing<'j> {
    plan: ImportPlan,
    scan: Scan<'j>,
}

/// Plans `entry` and, in the writing pass, encodes its record onto `out`.
fn plan_entry(
    plan: &mut ImportPlan,
    entry: &SourceEntry<'_>,
    out: &mut Option<&mut Vec<u8>>,
) -> Result<(), String> {
    let rec = plan.push(entry).map_err(|e| e.to_string())?;
    if let Some(buf) = out {
        let at = buf.len();
        buf.resize(at + rec.header.record_bytes() as usize, 0);
        encode_record(&rec.header, entry.body, &mut buf[at..]).map_err(|e| e.to_string())?;
    }
    Ok(())
}

impl Passing<'_> {
    /// Scans one chunk; in the writing pass its records are encoded back to back onto
    /// `out`. Returns whether more chunks follow.
    fn step(&mut self, mut out: Option<&mut Vec<u8>>) -> Result<bool, String> {
        let plan = &mut self.plan;
        match &mut self.scan {
            Scan::RocketMq {
                scanner,
                walker,
                term,
            } => {
                let term = *term;
                walker.step(scanner, &mut |m: &CommitLogMessage, bytes| {
                    let entry = SourceEntry {
                        kind: RecordKind::Normal,
                        term,
                        body: bytes,
                        source: Source::RocketMq {
                            physical_offset: m.physical_offset,
                        },
                    };
                    plan_entry(plan, &entry, &mut out)
                })
            }
            Scan::DLedger {
                scanner,
                walker,
                index,
                check_bodies,
                check_index,
                chunk_entries,
            } => {
                let more = walker.step(scanner, &mut |e: &DLedgerEntry, body| {
                    if plan.digest().entries == 0 && e.index != 0 {
                        return Err(format!(
                            "the store starts at DLedger index {} (data file {}, offset {}): \
                             older files were deleted, and only a store that still holds \
                             index 0 can be imported",
                            e.index, e.file, e.offset
                        ));
                    }
                    if *check_bodies {
                        check_rocketmq_body(e, body).map_err(|e| e.to_string())?;
                    }
                    if *check_index {
                        chunk_entries.push(e.clone());
                    }
                    let entry = SourceEntry {
                        kind: e.kind,
                        term: e.term,
                        body,
                        source: Source::DLedger {
                            index: e.index,
                            pos: e.pos,
                        },
                    };
                    plan_entry(plan, &entry, &mut out)
                })?;
                index.check(chunk_entries)?;
                chunk_entries.clear();
                Ok(more)
            }
        }
    }

    fn finish(self) -> Result<Pass, String> {
        let (items, (end, tail)) = match &self.scan {
            Scan::RocketMq { walker, .. } => (walker.items, describe_end(&walker.stop, "message")),
            Scan::DLedger { walker, .. } => (walker.items, describe_end(&walker.stop, "entry")),
        };
        debug_assert_eq!(items, self.plan.digest().entries);
        Ok(Pass {
            entries: items,
            end: end.to_lowercase(),
            tail,
            end_pos: self.plan.cursor().pos,
            digest: Some(self.plan.digest().clone()),
        })
    }
}

/// How a source ended, in words, and the truncated last record if there is one.
fn describe_end<End: std::fmt::Debug, Tail: std::fmt::Display>(
    stop: &FileStop<End, Tail>,
    record: &str,
) -> (String, Option<String>) {
    match stop {
        FileStop::LogEnd(k) => (format!("{k:?}"), None),
        FileStop::TruncatedTail(t) => (format!("a truncated {record}"), Some(t.to_string())),
        FileStop::NeedMoreInput | FileStop::FileDone => ("the files ran out".into(), None),
    }
}

/// The node must be stopped: its client and peer addresses must be free.
fn refuse_running_node(cfg: &NodeConfig) -> Result<(), String> {
    for (what, addr) in [("client", &cfg.client_listen), ("peer", &cfg.peer_listen)] {
        let text = addr.to_string();
        if let Err(e) = std::net::TcpListener::bind(text.as_str()) {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                return Err(format!(
                    "node {} seems to be running (its {what} address {text} is in use): stop it \
                     before importing",
                    cfg.self_name
                ));
            }
        }
    }
    Ok(())
}

/// The group's log must be empty and never imported into.
fn refuse_non_empty(log: &LogConfig) -> Result<(), String> {
    let dir = log.group_dir();
    if let Some(d) = read_import_digest(&dir)? {
        return Err(format!(
            "group {} on node {} already holds an imported prefix ({}); import only into an \
             empty log",
            log.group,
            log.self_id,
            describe_digest(&d)
        ));
    }
    let paths = GroupPaths::new(dir.clone());
    let segments = match std::fs::metadata(&paths.data_dir) {
        Ok(_) => list_files(&paths.data_dir)?.0,
        Err(_) => Vec::new(),
    };
    // A log that never held a record has only zero-filled (preallocated) segments.
    for s in &segments {
        use std::os::unix::fs::FileExt;
        let mut head = [0u8; dledger::store::record::HEADER_BYTES];
        let n = std::fs::File::open(&s.path)
            .and_then(|f| f.read_at(&mut head, 0))
            .map_err(|e| format!("cannot read {}: {e}", s.path.display()))?;
        if head[..n].iter().any(|&b| b != 0) {
            return Err(format!(
                "the log of group {} on node {} at {} is not empty: import only into an \
                 empty log (if an earlier import was interrupted, remove that directory and \
                 import again)",
                log.group,
                log.self_id,
                dir.display()
            ));
        }
    }
    Ok(())
}

/// The second pass, on a glommio executor: opens the log, writes every record, makes
/// it durable and checkpointed, then records the digest.
fn write_log(
    job: &Job,
    log_cfg: &LogConfig,
    group: &GroupConfig,
    digest: &PrefixDigest,
) -> Result<(), String> {
    let start = job.start();
    let paths = GroupPaths::new(log_cfg.group_dir());
    if start.pos != 0 {
        prepare_start(&paths, start.pos)?;
    }
    let plan =
        crate::memlock::ensure_memlock(1, IMPORT_IO_MEMORY_BYTES).map_err(|e| e.to_string())?;
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("dledger-import")
        .io_memory(plan.io_memory_bytes)
        .make()
        .map_err(|e| format!("starting a glommio executor: {e}"))?;
    let written = crate::runtime::run_kicked(&ex, async {
        let log = GroupLog::open(log_cfg.clone())
            .await
            .map_err(|e| format!("cannot open the log of group {}: {e}", group.name))?;
        let result = write_records(job, log_cfg, &log, start).await;
        let closed = log
            .close()
            .await
            .map_err(|e| format!("closing the log: {e}"));
        let written = result?;
        closed?;
        Ok::<_, String>(written)
    })??;
    if written.entries != digest.entries || written.digest.as_ref() != Some(digest) {
        return Err(format!(
            "the source changed between the check and the write (checked {}, wrote {}); the \
             log at {} is incomplete: remove it and import again from a stable copy",
            describe_digest(digest),
            written
                .digest
                .as_ref()
                .map_or("nothing".into(), describe_digest),
            paths.dir.display()
        ));
    }
    let bytes = digest.encode().map_err(|e| e.to_string())?;
    write_file_durably(&paths.dir.join(IMPORT_DIGEST_FILE), &bytes)
}

async fn write_records(
    job: &Job,
    log_cfg: &LogConfig,
    log: &GroupLog,
    start: LogCursor,
) -> Result<Pass, String> {
    if log.last_index() != 0 || log.end_pos() != start.pos {
        return Err(format!(
            "the log of group {} is not empty or starts at pos {} (the import needs {}): \
             remove {} and import again",
            log_cfg.group,
            log.end_pos(),
            start.pos,
            log_cfg.group_dir().display()
        ));
    }
    let mut p = job.pass(log_cfg, false)?;
    let mut buf = Vec::new();
    let mut last = 0;
    loop {
        buf.clear();
        let more = p.step(Some(&mut buf))?;
        if !buf.is_empty() {
            // Appended as a follower appends a leader's records: each is verified and
            // must continue the log where the plan placed it.
            let appended = log
                .append_encoded(&buf)
                .await
                .map_err(|e| format!("writing the imported records: {e}"))?;
            last = appended.last_index;
            log.wait_durable(last)
                .await
                .map_err(|e| format!("syncing the imported records: {e}"))?;
            log.persist_checkpoint(0)
                .await
                .map_err(|e| format!("checkpointing the imported records: {e}"))?;
        }
        if !more {
            break;
        }
    }
    let last_term = log.term_at(last).unwrap_or(0);
    if last_term > log.hard_state().term {
        log.persist_hard_state(HardState {
            term: last_term,
            voted_for: None,
        })
        .await
        .map_err(|e| format!("writing the hard state: {e}"))?;
    }
    p.finish()
}

/// For a log that starts past position 0 (a DLedger store whose first data file is
/// not 0): the checkpoint of an empty log starting there, before the log is opened.
fn prepare_start(paths: &GroupPaths, start_pos: u64) -> Result<(), String> {
    if paths.checkpoint.exists() {
        return Ok(()); // an empty log that already exists: write_records checks its start
    }
    std::fs::create_dir_all(&paths.dir)
        .map_err(|e| format!("cannot create {}: {e}", paths.dir.display()))?;
    let mut bytes = [0u8; dledger::store::state::CHECKPOINT_BYTES];
    encode_checkpoint(&Checkpoint::new_log(start_pos), &mut bytes).map_err(|e| e.to_string())?;
    write_file_durably(&paths.checkpoint, &bytes)
}

/// Writes `path` whole: temporary file, fsync, rename, fsync of the directory.
fn write_file_durably(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let io =
        |what: &str, p: &Path, e: std::io::Error| format!("cannot {what} {}: {e}", p.display());
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", &tmp, e))?;
    f.write_all(bytes).map_err(|e| io("write", &tmp, e))?;
    f.sync_all().map_err(|e| io("fsync", &tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| io("rename", path, e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("fsync", dir, e))
}

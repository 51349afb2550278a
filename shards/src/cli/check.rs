//! `dledger check`: compare a group's replicas segment by segment (what the RocketMQ
//! upgrade guide does by hand with md5sum) and report the first divergent record.
//!
//! ```text
//! dledger check -c n0.conf -c n1.conf [-c n2.conf] [--group G]    offline, nodes stopped or not
//! dledger check --dir A --dir B [--segment-bytes N]               group directories directly
//! dledger check --peers ADDRS --group G [--segment-bytes N]        a running cluster (see `live`)
//! ```
//!
//! Offline: each config names one node's storage; the group's directory there is one
//! replica. Every replica's segments are read with the recovery scan (every record's
//! CRCs, position, index, term and chain checked), and each segment is summed over its
//! records (index, term, position, size, body CRC): one row per segment shows every
//! replica's record count, index range and checksum. At the first segment whose
//! checksums differ, the records are compared one by one
//! ([`dledger::upgrade::first_divergence`]) and the first divergent index, its position
//! and the file and byte offset are printed, with why a replica's log stopped there
//! when its scan found damage. The exit code is non-zero on divergence.
//!
//! Only the valid records count: the zeros past a log's end, or what a torn write left
//! there, are not compared (a whole-file md5sum would flag them). A replica that is
//! merely behind (a prefix of the others) is reported as such, not as divergent.
//! Run it with the nodes stopped, or accept that a running node's newest segment may
//! be caught mid-append.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use argh::FromArgs;
use dledger::store::record::{HEADER_BYTES, decode_header};
use dledger::store::recovery::{ScanInput, ScanStop, scan_segment};
use dledger::store::{LogCursor, SegmentGeometry, SegmentName};
use dledger::upgrade::{Divergence, DivergenceKind, RecordSummary, first_divergence};

use crate::disk::GroupPaths;

mod live;

/// Bytes read per window while scanning a segment (raised to the record limit).
const WINDOW_BYTES: usize = 4 << 20;

/// Compare a group's replicas segment by segment; exit non-zero when they diverge.
#[derive(FromArgs, Debug, Clone, PartialEq, Eq)]
#[argh(subcommand, name = "check")]
pub struct CheckArgs {
    /// a node's config file; give one per replica (-c n0.conf -c n1.conf ...)
    #[argh(option, short = 'c')]
    pub config: Vec<PathBuf>,
    /// the group to check (default: every group of the first config)
    #[argh(option)]
    pub group: Option<String>,
    /// a group directory (holding data/) to compare, instead of configs; repeatable
    #[argh(option)]
    pub dir: Vec<PathBuf>,
    /// segment size for --dir (default: the size of the first segment file) or to name
    /// segment files with --peers
    #[argh(option)]
    pub segment_bytes: Option<u64>,
    /// client addresses of a running group's nodes (host:port, ';' or ','): compare
    /// their committed entries through the client protocol
    #[argh(option)]
    pub peers: Option<String>,
    /// record size limit for --dir (default 4194304)
    #[argh(option, default = "dledger::store::DEFAULT_MAX_RECORD_BYTES")]
    pub max_record_bytes: u32,
}

/// One replica of a group.
#[derive(Clone, Debug)]
struct Replica {
    /// `n0`, or the directory for `--dir`.
    name: String,
    paths: GroupPaths,
    geometry: SegmentGeometry,
    max_record_bytes: u32,
}

pub fn run(args: CheckArgs) -> Result<(), String> {
    if let Some(peers) = &args.peers {
        if !args.config.is_empty() || !args.dir.is_empty() {
            return Err("--peers checks a running cluster: give no -c or --dir with it".into());
        }
        let group = args.group.as_deref().ok_or("--peers needs --group")?;
        return live::run(peers, group, args.segment_bytes);
    }
    let sets = replica_sets(&args)?;
    let mut diverged = Vec::new();
    for (group, replicas) in &sets {
        println!(
            "group {group}: {} replicas: {}",
            replicas.len(),
            replicas
                .iter()
                .map(|r| format!("{} ({})", r.name, r.paths.dir.display()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(d) = check_group(replicas)? {
            diverged.push(format!("group {group}: {d}"));
        }
    }
    if diverged.is_empty() {
        Ok(())
    } else {
        Err(diverged.join("; "))
    }
}

/// The replicas to compare, per group.
fn replica_sets(args: &CheckArgs) -> Result<Vec<(String, Vec<Replica>)>, String> {
    if !args.dir.is_empty() {
        if !args.config.is_empty() {
            return Err("give either -c configs or --dir directories, not both".into());
        }
        let segment_bytes = match args.segment_bytes {
            Some(n) => n,
            None => first_segment_len(&args.dir[0])?,
        };
        let geometry =
            SegmentGeometry::new(segment_bytes).map_err(|e| format!("--segment-bytes: {e}"))?;
        let replicas = args
            .dir
            .iter()
            .map(|d| Replica {
                name: d.display().to_string(),
                paths: GroupPaths::new(d.clone()),
                geometry,
                max_record_bytes: args.max_record_bytes,
            })
            .collect::<Vec<_>>();
        return at_least_two(vec![(
            args.group.clone().unwrap_or_else(|| "?".into()),
            replicas,
        )]);
    }
    if args.config.is_empty() {
        return Err("give each replica's config (-c n0.conf -c n1.conf ...) or --dir".into());
    }
    let configs = args
        .config
        .iter()
        .map(|p| super::import::load_config(p))
        .collect::<Result<Vec<_>, _>>()?;
    let groups: Vec<String> = match &args.group {
        Some(g) => vec![g.clone()],
        None => configs[0].groups.iter().map(|g| g.name.clone()).collect(),
    };
    let mut sets = Vec::new();
    for name in groups {
        let mut replicas = Vec::new();
        for (cfg, path) in configs.iter().zip(&args.config) {
            let group = cfg
                .group(&name)
                .ok_or_else(|| format!("{}: no group {name}", path.display()))?;
            let log = crate::server::log_config(cfg, group);
            let geometry = SegmentGeometry::new(log.segment_bytes)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            replicas.push(Replica {
                name: cfg.self_name.clone(),
                paths: GroupPaths::new(log.group_dir()),
                geometry,
                max_record_bytes: log.max_record_bytes,
            });
        }
        if let Some(w) = replicas.windows(2).find(|w| w[0].geometry != w[1].geometry) {
            return Err(format!(
                "group {name}: {} and {} use different segment sizes ({} and {} bytes)",
                w[0].name,
                w[1].name,
                w[0].geometry.segment_bytes(),
                w[1].geometry.segment_bytes()
            ));
        }
        sets.push((name, replicas));
    }
    at_least_two(sets)
}

fn at_least_two(sets: Vec<(String, Vec<Replica>)>) -> Result<Vec<(String, Vec<Replica>)>, String> {
    match sets.iter().find(|(_, r)| r.len() < 2) {
        Some((g, _)) => Err(format!(
            "group {g}: at least two replicas are needed to compare"
        )),
        None => Ok(sets),
    }
}

fn first_segment_len(group_dir: &Path) -> Result<u64, String> {
    let starts = segment_starts(&GroupPaths::new(group_dir.to_owned()))?;
    let first = starts
        .first()
        .ok_or_else(|| format!("{}: no segments in data/", group_dir.display()))?;
    let path = GroupPaths::new(group_dir.to_owned()).segment(*first);
    std::fs::metadata(&path)
        .map(|m| m.len())
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))
}

/// The segment starts of a replica, ascending (none when it has no data directory).
fn segment_starts(paths: &GroupPaths) -> Result<Vec<u64>, String> {
    let entries = match std::fs::read_dir(&paths.data_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot list {}: {e}", paths.data_dir.display())),
    };
    let mut starts = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", paths.data_dir.display()))?;
        if let Ok(start) = dledger::store::parse_segment_name(&entry.file_name().to_string_lossy())
        {
            starts.push(start);
        }
    }
    starts.sort_unstable();
    Ok(starts)
}

/// What one replica's scan of one segment found.
#[derive(Clone, Debug)]
struct SegmentSum {
    records: u64,
    first_index: Option<u64>,
    last_index: u64,
    checksum: u32,
    /// Where the log goes on (the next segment's start after a filler).
    next: LogCursor,
    /// The log ends in this segment: how, with the file offset where it stopped.
    ends: Option<(ScanStop, u64)>,
}

/// A replica's walk through its segments, one [`Replica::scan`] per segment.
struct Walk {
    starts: Vec<u64>,
    cursor: Option<LogCursor>,
    /// Records before the current segment.
    records_before: u64,
    ended: bool,
}

impl Replica {
    /// Where the replica's log starts: its first segment, at the index its first record
    /// carries (retention may have removed older segments).
    fn start_cursor(&self, starts: &[u64]) -> Result<Option<LogCursor>, String> {
        let Some(&first) = starts.first() else {
            return Ok(None);
        };
        let path = self.paths.segment(first);
        let mut head = [0u8; HEADER_BYTES];
        let n = File::open(&path)
            .and_then(|f| f.read_at(&mut head, 0))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if first == 0 || head[..n].iter().all(|&b| b == 0) {
            return Ok(Some(LogCursor::empty_at(first)));
        }
        let h = decode_header(&head[..n], self.max_record_bytes)
            .map_err(|e| format!("{}: first record: {e}", path.display()))?;
        Ok(Some(LogCursor {
            pos: first,
            next_index: h.index,
            last_term: 0,
            last_crc: 0,
        }))
    }

    /// Scans segment `seg` from `start` (a cursor inside it), handing every valid
    /// record to `on_record`.
    fn scan(
        &self,
        seg: u64,
        start: LogCursor,
        on_record: &mut dyn FnMut(RecordSummary),
    ) -> Result<SegmentSum, String> {
        let path = self.paths.segment(seg);
        let file = File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let len = file
            .metadata()
            .map_err(|e| format!("cannot stat {}: {e}", path.display()))?
            .len()
            .min(self.geometry.segment_bytes());
        let window = WINDOW_BYTES.max(self.max_record_bytes as usize + 4096);
        let mut buf = vec![0u8; window];
        let mut cursor = start;
        let mut sum = SegmentSum {
            records: 0,
            first_index: None,
            last_index: 0,
            checksum: 0,
            next: start,
            ends: None,
        };
        let mut hasher = crc32fast::Hasher::new();
        loop {
            let off = cursor.pos - seg;
            let n = (len.saturating_sub(off) as usize).min(window);
            file.read_exact_at(&mut buf[..n], off)
                .map_err(|e| format!("cannot read {} at {off}: {e}", path.display()))?;
            let input = ScanInput {
                geometry: self.geometry,
                start: cursor,
                max_record_bytes: self.max_record_bytes,
                protected_end_pos: 0,
                protected_index: 0,
                input_is_file_end: off + n as u64 >= len,
            };
            let end = scan_segment(&buf[..n], &input, |h| {
                let r = RecordSummary::from_header(h);
                for v in [r.index, r.term, r.pos, r.record_bytes] {
                    hasher.update(&v.to_be_bytes());
                }
                hasher.update(&r.body_crc.to_be_bytes());
                sum.first_index.get_or_insert(r.index);
                sum.last_index = r.index;
                sum.records += 1;
                on_record(r);
            })
            .map_err(|e| format!("{}: {e}", path.display()))?;
            cursor = end.next;
            match end.stop {
                ScanStop::NeedMoreInput => continue,
                ScanStop::SegmentEnd => break,
                stop => {
                    sum.ends = Some((stop, end.end_pos - seg));
                    break;
                }
            }
        }
        sum.next = cursor;
        sum.checksum = hasher.finalize();
        Ok(sum)
    }
}

/// Compares the replicas of one group; returns the divergence, in words, if any.
fn check_group(replicas: &[Replica]) -> Result<Option<String>, String> {
    let mut walks = Vec::new();
    for r in replicas {
        let starts = segment_starts(&r.paths)?;
        let cursor = r.start_cursor(&starts)?;
        walks.push(Walk {
            starts,
            cursor,
            records_before: 0,
            ended: false,
        });
    }
    let mut all: Vec<u64> = walks
        .iter()
        .flat_map(|w| w.starts.iter().copied())
        .collect();
    all.sort_unstable();
    all.dedup();
    let geometry = replicas[0].geometry;
    for seg in all {
        // Each replica whose log reaches this segment sums it.
        let mut sums: Vec<Option<SegmentSum>> = Vec::new();
        let mut starts_at = Vec::new();
        for (r, w) in replicas.iter().zip(&mut walks) {
            let reaches = !w.ended
                && w.starts.contains(&seg)
                && w.cursor
                    .is_some_and(|c| geometry.segment_start(c.pos) == seg);
            starts_at.push(w.cursor);
            if !reaches {
                w.ended = true;
                sums.push(None);
                continue;
            }
            let start = w.cursor.unwrap_or(LogCursor::empty_at(seg));
            let sum = r.scan(seg, start, &mut |_| {})?;
            w.cursor = Some(sum.next);
            if sum.ends.is_some() {
                w.ended = true;
            }
            sums.push(Some(sum));
        }
        if sums
            .iter()
            .all(|s| s.as_ref().is_none_or(|s| s.records == 0))
        {
            continue;
        }
        print_row(SegmentName(seg), replicas, &sums);
        let reference = sums[0].as_ref().map(|s| (s.records, s.checksum));
        let differs = sums
            .iter()
            .position(|s| s.as_ref().map(|s| (s.records, s.checksum)) != reference);
        if let Some(other) = differs {
            let found = locate(replicas, &starts_at, seg, 0, other, &walks)?;
            return Ok(found);
        }
        for (w, s) in walks.iter_mut().zip(&sums) {
            w.records_before += s.as_ref().map_or(0, |s| s.records);
        }
    }
    println!("replicas agree");
    Ok(None)
}

fn print_row(seg: SegmentName, replicas: &[Replica], sums: &[Option<SegmentSum>]) {
    let cells: Vec<String> = replicas
        .iter()
        .zip(sums)
        .map(|(r, s)| match s {
            None => format!("{}: -", r.name),
            Some(s) => format!(
                "{}: {} records {}..={} crc {:08x}{}",
                r.name,
                s.records,
                s.first_index.unwrap_or(0),
                s.last_index,
                s.checksum,
                if s.ends.is_some() { " (log ends)" } else { "" }
            ),
        })
        .collect();
    println!("  segment {seg}: {}", cells.join(" | "));
}

/// Compares replicas `a` and `b` record by record in segment `seg` and says where they
/// part (and why a replica's log stopped there, when damage stopped it).
fn locate(
    replicas: &[Replica],
    starts_at: &[Option<LogCursor>],
    seg: u64,
    a: usize,
    b: usize,
    walks: &[Walk],
) -> Result<Option<String>, String> {
    let records = |i: usize| -> Result<(Vec<RecordSummary>, Option<SegmentSum>), String> {
        let Some(start) = starts_at[i].filter(|c| replicas[i].geometry.segment_start(c.pos) == seg)
        else {
            return Ok((Vec::new(), None));
        };
        let mut v = Vec::new();
        let sum = replicas[i].scan(seg, start, &mut |r| v.push(r))?;
        Ok((v, Some(sum)))
    };
    let (ra, sa) = records(a)?;
    let (rb, sb) = records(b)?;
    let geometry = replicas[a].geometry;
    let Some(d) = first_divergence(&geometry, ra, rb) else {
        // Same records in this segment, so the difference is where a log goes on.
        return Ok(Some(format!(
            "{} and {} hold the same records in segment {} but continue differently",
            replicas[a].name,
            replicas[b].name,
            SegmentName(seg)
        )));
    };
    let d = Divergence {
        matching: d.matching + walks[a].records_before.min(walks[b].records_before),
        ..d
    };
    let names = (&replicas[a].name, &replicas[b].name);
    let mut text = format!("{d}").replacen("A has", &format!("{} has", names.0), 1);
    text = text.replacen("B has", &format!("{} has", names.1), 1);
    text = text.replacen("only A", &format!("only {}", names.0), 1);
    text = text.replacen("only B", &format!("only {}", names.1), 1);
    let behind = match d.kind {
        DivergenceKind::OnlyInA(_) => stop_reason(&replicas[b], sb.as_ref(), seg),
        DivergenceKind::OnlyInB(_) => stop_reason(&replicas[a], sa.as_ref(), seg),
        _ => None,
    };
    println!(
        "DIVERGENCE at index {} pos {}: segment file {} byte offset {} (in {} and {})",
        d.index,
        d.pos,
        d.segment,
        d.offset,
        replicas[a].paths.data_dir.display(),
        replicas[b].paths.data_dir.display()
    );
    println!("  {text}");
    match behind {
        Some(Some(why)) => println!("  {why}"),
        Some(None) => {
            // A log that simply ends earlier is behind, not divergent.
            println!("  the shorter replica's log ends cleanly there: it is behind, not divergent");
            println!("replicas agree on their common records");
            return Ok(None);
        }
        None => {}
    }
    Ok(Some(format!(
        "first divergent index {} at pos {} (segment file {} byte offset {})",
        d.index, d.pos, d.segment, d.offset
    )))
}

/// Why replica `r`'s log stopped in `seg`: `Some(Some(why))` for damage, `Some(None)`
/// for a clean end, `None` when unknown.
fn stop_reason(r: &Replica, sum: Option<&SegmentSum>, seg: u64) -> Option<Option<String>> {
    let (stop, offset) = sum?.ends?;
    match stop {
        ScanStop::TornTail(damage) => Some(Some(format!(
            "{}'s log stops at {} byte offset {offset}: {damage}",
            r.name,
            r.paths.segment(seg).display()
        ))),
        _ => Some(None),
    }
}

//! Import plans end to end: scanned entries become records of our log that our own
//! recovery scan accepts, DLedger indexes/terms/positions are kept, prefix digests tell
//! nodes whether they imported the same prefix, and replica comparison finds the first
//! divergent record.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use dledger::store::{
    HEADER_BYTES, LogCursor, RecordHeader, RecordKind, ScanInput, ScanStop, SegmentGeometry,
    SegmentName, encode_filler, encode_record, scan_segment,
};
use dledger::upgrade::fixtures::{
    CommitLogImage, DLedgerImage, RmqMessage, drive_commitlog, drive_dledger,
};
use dledger::upgrade::{
    CommitLogScanConfig, DLedgerScanConfig, DigestSummary, DivergenceKind, ImportPlan, PlanError,
    PrefixDigest, RecordSummary, Source, SourceEntry, first_divergence,
};

const SEG: u64 = 4096;
const MAX_RECORD: u32 = 2048 + HEADER_BYTES as u32;

fn geometry() -> SegmentGeometry {
    SegmentGeometry::new(SEG).unwrap()
}

/// Our log as segment images, written from a plan's records.
struct Log {
    segments: Vec<Vec<u8>>,
}

impl Log {
    fn new() -> Self {
        Log {
            segments: Vec::new(),
        }
    }

    fn at(&mut self, pos: u64) -> &mut [u8] {
        let seg = (pos / SEG) as usize;
        while self.segments.len() <= seg {
            self.segments.push(vec![0; SEG as usize]);
        }
        &mut self.segments[seg][(pos % SEG) as usize..]
    }

    fn write(&mut self, plan: &mut ImportPlan, entry: &SourceEntry<'_>) -> RecordHeader {
        let r = plan.push(entry).unwrap();
        if let Some(f) = r.placement.filler {
            encode_filler(f.len, self.at(f.pos)).unwrap();
        }
        encode_record(&r.header, entry.body, self.at(r.header.pos)).unwrap();
        r.header
    }

    /// Our recovery scan over every segment from `start`: the headers and bodies.
    fn recover(&self, start: LogCursor) -> Vec<(RecordHeader, Vec<u8>)> {
        let mut out = Vec::new();
        let mut cursor = start;
        loop {
            let seg = (cursor.pos / SEG) as usize;
            let Some(bytes) = self.segments.get(seg) else {
                break;
            };
            let input = ScanInput {
                geometry: geometry(),
                start: cursor,
                max_record_bytes: MAX_RECORD,
                protected_end_pos: 0,
                protected_index: 0,
                input_is_file_end: true,
            };
            let from = (cursor.pos % SEG) as usize;
            let end = scan_segment(&bytes[from..], &input, |h| {
                let at = (h.pos % SEG) as usize + HEADER_BYTES;
                out.push((*h, bytes[at..at + h.body_len as usize].to_vec()));
            })
            .unwrap();
            cursor = end.next;
            if end.stop != ScanStop::SegmentEnd {
                break;
            }
        }
        out
    }
}

fn commitlog(n: u32) -> CommitLogImage {
    let mut img = CommitLogImage::new(SEG, 0);
    for i in 0..n {
        let mut m = RmqMessage::simple("TopicA", &vec![i as u8; 20 + (i as usize * 91) % 500]);
        m.v2 = i % 2 == 0;
        m.born_host_v6 = i % 3 == 0;
        img.append(&m);
    }
    img
}

fn import_commitlog(img: &CommitLogImage) -> (ImportPlan, Log) {
    let fs: Vec<_> = img.files.iter().map(|(s, b)| (*s, b.as_slice())).collect();
    let cfg = CommitLogScanConfig {
        file_bytes: SEG,
        max_message_bytes: 2048,
    };
    let got = drive_commitlog(cfg, &fs, 1000).unwrap();
    let mut plan =
        ImportPlan::new("RaftNode00", geometry(), MAX_RECORD, LogCursor::empty_at(0)).unwrap();
    let mut log = Log::new();
    for (physical_offset, msg) in &got.entries {
        let e = SourceEntry {
            kind: RecordKind::Normal,
            term: 1,
            body: msg,
            source: Source::RocketMq {
                physical_offset: *physical_offset,
            },
        };
        log.write(&mut plan, &e);
    }
    (plan, log)
}

#[test]
fn rocketmq_messages_become_a_log_our_recovery_accepts() {
    let img = commitlog(30);
    let (plan, log) = import_commitlog(&img);
    let recovered = log.recover(LogCursor::empty_at(0));
    assert_eq!(recovered.len(), img.messages.len());
    for (i, ((h, body), (_, msg))) in recovered.iter().zip(&img.messages).enumerate() {
        assert_eq!(
            (h.index, h.term, h.kind),
            (i as u64 + 1, 1, RecordKind::Normal)
        );
        assert_eq!(body, msg, "message {i} must be imported unchanged");
    }
    let last = &recovered.last().unwrap().0;
    assert_eq!(plan.cursor().next_index, last.index + 1);
    assert_eq!(plan.cursor().pos, last.end_pos());
    let d = plan.digest();
    assert_eq!(
        (d.first_index, d.entries, d.last_index, d.last_term),
        (1, 30, 30, 1)
    );
    assert_eq!(d.segments.len(), log.segments.len());
    assert_eq!(plan.group(), "RaftNode00");
}

#[test]
fn dledger_entries_keep_term_and_position_and_shift_the_index_by_one() {
    let mut img = DLedgerImage::new(SEG, 1024);
    for i in 0..40u64 {
        img.append(
            if i == 5 { 2 } else { 1 },
            2 + i / 7,
            &if i == 5 {
                vec![]
            } else {
                vec![i as u8; 30 + (i as usize * 67) % 600]
            },
        );
    }
    let fs: Vec<_> = img.data.iter().map(|(s, b)| (*s, b.as_slice())).collect();
    let cfg = DLedgerScanConfig {
        data_file_bytes: SEG,
        max_entry_bytes: MAX_RECORD,
    };
    let got = drive_dledger(cfg, &fs, 700).unwrap();
    let start = LogCursor {
        pos: 0,
        next_index: 1,
        last_term: 0,
        last_crc: 0,
    };
    let mut plan = ImportPlan::new("g", geometry(), MAX_RECORD, start).unwrap();
    let mut log = Log::new();
    for (e, body) in &got.entries {
        let h = log.write(
            &mut plan,
            &SourceEntry {
                kind: e.kind,
                term: e.term,
                body,
                source: Source::DLedger {
                    index: e.index,
                    pos: e.pos,
                },
            },
        );
        assert_eq!((h.index, h.term, h.pos), (e.index + 1, e.term, e.pos));
    }
    let recovered = log.recover(start);
    assert_eq!(recovered.len(), 40);
    assert_eq!(recovered[5].0.kind, RecordKind::Noop);

    // A different segment size moves entries: refused, naming the entry.
    let big = SegmentGeometry::new(2 * SEG).unwrap();
    let mut plan = ImportPlan::new("g", big, MAX_RECORD, start).unwrap();
    let err = got
        .entries
        .iter()
        .map(|(e, body)| {
            plan.push(&SourceEntry {
                kind: e.kind,
                term: e.term,
                body,
                source: Source::DLedger {
                    index: e.index,
                    pos: e.pos,
                },
            })
        })
        .find_map(Result::err)
        .unwrap();
    assert!(matches!(err, PlanError::PositionShift { .. }), "{err}");

    // Starting at the wrong index is refused too.
    let mut plan = ImportPlan::new("g", geometry(), MAX_RECORD, LogCursor::empty_at(0)).unwrap();
    let (e, body) = &got.entries[0];
    let wrong = SourceEntry {
        kind: e.kind,
        term: e.term,
        body,
        source: Source::DLedger {
            index: e.index + 7,
            pos: e.pos,
        },
    };
    assert!(matches!(
        plan.push(&wrong),
        Err(PlanError::IndexShift {
            expected: 8,
            ours: 1,
            ..
        })
    ));
}

#[test]
fn plan_refuses_what_our_log_cannot_hold() {
    let g = geometry();
    assert!(matches!(
        ImportPlan::new("g", g, MAX_RECORD, LogCursor::empty_at(100)),
        Err(PlanError::StartNotSegmentStart { pos: 100, .. })
    ));
    let mut plan = ImportPlan::new("g", g, MAX_RECORD, LogCursor::empty_at(0)).unwrap();
    let src = Source::RocketMq { physical_offset: 0 };
    let zero = SourceEntry {
        kind: RecordKind::Normal,
        term: 0,
        body: b"x",
        source: src,
    };
    assert!(matches!(plan.push(&zero), Err(PlanError::TermZero { .. })));
    let big = vec![0; MAX_RECORD as usize];
    let too_big = SourceEntry {
        kind: RecordKind::Normal,
        term: 1,
        body: &big,
        source: src,
    };
    assert!(matches!(
        plan.push(&too_big),
        Err(PlanError::TooLarge { .. })
    ));
    let ok = SourceEntry {
        kind: RecordKind::Normal,
        term: 2,
        body: b"x",
        source: src,
    };
    plan.push(&ok).unwrap();
    let back = SourceEntry { term: 1, ..ok };
    let err = plan.push(&back).unwrap_err();
    assert!(matches!(err, PlanError::Chain { index: 2, .. }), "{err}");
    assert!(
        err.to_string()
            .contains("RocketMQ message at physical offset 0"),
        "{err}"
    );
}

#[test]
fn digests_tell_whether_nodes_imported_the_same_prefix() {
    let img = commitlog(30);
    let (a, log_a) = import_commitlog(&img);
    let (b, _) = import_commitlog(&img);
    assert_eq!(a.digest().first_difference(b.digest()), None);

    // One message changed (and its CRC with it): the digests part in its segment.
    let mut changed = commitlog(30);
    let (at, msg) = changed.messages[17].clone();
    let mut m2 = msg.clone();
    // The same message but for its QUEUEID: same size, so later positions stay.
    let mut rm = RmqMessage::simple("TopicA", &[17u8; 20 + (17 * 91) % 500]);
    rm.v2 = 17 % 2 == 0;
    rm.born_host_v6 = 17 % 3 == 0;
    rm.queue_id = 9;
    m2.copy_from_slice(&rm.encode(at));
    changed.overwrite(at, &m2);
    let (c, _) = import_commitlog(&changed);
    let diff = a.digest().first_difference(c.digest()).unwrap();
    let recovered = log_a.recover(LogCursor::empty_at(0));
    let rec17 = &recovered[17].0;
    let seg = SegmentName(rec17.pos - rec17.pos % SEG);
    assert!(!diff.exact);
    assert_eq!(diff.segment, Some(seg));
    assert!(diff.index <= 18 && 18 <= diff.segment_last_index, "{diff}");
    assert!(
        diff.to_string()
            .starts_with("nodes' imported prefixes differ at index"),
        "{diff}"
    );

    // A shorter prefix ending at a segment end: exactly where it stops.
    let digest_of = |n: usize| {
        let mut d = PrefixDigest::new(1);
        for (h, body) in &recovered[..n] {
            d.add(&geometry(), h, h.kind, body);
        }
        d
    };
    assert_eq!(digest_of(30), *a.digest());
    let in_first = recovered.iter().filter(|(h, _)| h.pos < SEG).count();
    let diff = a.digest().first_difference(&digest_of(in_first)).unwrap();
    assert!(diff.exact);
    assert_eq!(diff.index, in_first as u64 + 1);
    assert_eq!(
        diff.to_string(),
        format!("nodes' imported prefixes differ at index {}", in_first + 1)
    );
    // Ending inside a segment: the digest can only name that segment (no hash is kept
    // at every entry), and says so.
    let diff = a
        .digest()
        .first_difference(&digest_of(in_first + 2))
        .unwrap();
    assert!(!diff.exact);
    assert_eq!(
        (diff.index, diff.segment),
        (in_first as u64 + 1, Some(SegmentName(SEG)))
    );
    assert!(
        diff.to_string()
            .contains("or later, within segment file 00000000000000004096"),
        "{diff}"
    );
    let (d, _) = import_commitlog(&commitlog(25));

    // Summaries travel with a CRC.
    let s = a.digest().summary();
    let bytes = s.to_bytes();
    assert_eq!(DigestSummary::from_bytes(&bytes), Some(s));
    let mut bad = bytes;
    bad[3] ^= 1;
    assert_eq!(DigestSummary::from_bytes(&bad), None);
    assert_eq!(DigestSummary::from_bytes(&bytes[1..]), None);
    assert_ne!(s, d.digest().summary());
    assert_eq!(PrefixDigest::new(1).entries, 0);
}

#[test]
fn replica_comparison_finds_the_first_divergent_record() {
    let img = commitlog(30);
    let (_, log) = import_commitlog(&img);
    let a: Vec<_> = log
        .recover(LogCursor::empty_at(0))
        .iter()
        .map(|(h, _)| RecordSummary::from_header(h))
        .collect();
    let g = geometry();
    assert_eq!(first_divergence(&g, a.clone(), a.clone()), None);

    let mut b = a.clone();
    b[12].body_crc ^= 1;
    let d = first_divergence(&g, a.clone(), b.clone()).unwrap();
    assert_eq!((d.index, d.pos, d.matching), (13, a[12].pos, 12));
    assert_eq!(
        (d.segment, d.offset),
        (g.segment_name(a[12].pos), a[12].pos % SEG)
    );
    assert!(matches!(d.kind, DivergenceKind::Differs { .. }));
    assert!(
        d.to_string()
            .contains(&format!("segment file {}", d.segment)),
        "{d}"
    );

    let d = first_divergence(&g, a.clone(), a[..20].to_vec()).unwrap();
    assert_eq!((d.index, d.matching), (21, 20));
    assert!(matches!(d.kind, DivergenceKind::OnlyInA(_)));
    let d = first_divergence(&g, a[..3].to_vec(), a.clone()).unwrap();
    assert!(matches!(d.kind, DivergenceKind::OnlyInB(r) if r.index == 4));
    let mut gap = a.clone();
    gap.remove(7);
    let d = first_divergence(&g, a.clone(), gap).unwrap();
    assert!(matches!(d.kind, DivergenceKind::IndexMismatch { .. }));
    assert_eq!(d.index, 8);
}

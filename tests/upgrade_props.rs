//! Properties of the import scanners: arbitrary or damaged bytes never panic and never
//! yield an invalid message; a valid image cut anywhere in its newest file gives the
//! whole messages before the cut plus either a clean end or a truncated-tail report;
//! the chunk size never changes the outcome.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use dledger::upgrade::fixtures::{
    CommitLogImage, DLedgerImage, RmqMessage, drive_commitlog, drive_dledger,
};
use dledger::upgrade::{
    ChunkStop, CommitLogScanConfig, CommitLogScanner, DLedgerChunkStop, DLedgerEndKind,
    DLedgerScanConfig, DLedgerScanner, LogEndKind, check_index_records, parse_message,
};

const FILE: u64 = 4096;

fn rmq_config() -> CommitLogScanConfig {
    CommitLogScanConfig {
        file_bytes: FILE,
        max_message_bytes: 2048,
    }
}

fn dl_config() -> DLedgerScanConfig {
    DLedgerScanConfig {
        data_file_bytes: FILE,
        max_entry_bytes: 2048,
    }
}

/// (body length, v2, born v6, store v6) per message.
fn rmq_specs() -> impl Strategy<Value = Vec<(usize, bool, bool, bool)>> {
    prop::collection::vec(
        (0usize..900, any::<bool>(), any::<bool>(), any::<bool>()),
        1..30,
    )
}

fn rmq_image(specs: &[(usize, bool, bool, bool)]) -> CommitLogImage {
    let mut img = CommitLogImage::new(FILE, 0);
    for (i, &(len, v2, b6, s6)) in specs.iter().enumerate() {
        let mut m = RmqMessage::simple("T", &vec![(i * 7) as u8; len]);
        m.v2 = v2;
        m.born_host_v6 = b6;
        m.store_host_v6 = s6;
        img.append(&m);
    }
    img
}

fn dl_image(specs: &[(usize, bool)]) -> DLedgerImage {
    let mut img = DLedgerImage::new(FILE, 1024);
    for (i, &(len, bump)) in specs.iter().enumerate() {
        let term = 1 + img.entries.last().map_or(0, |e| e.1) + u64::from(bump);
        img.append(1, term - 1, &vec![i as u8; len]);
    }
    img
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        chunk in 1usize..3000,
        newest in any::<bool>(),
        offset in 0u64..1 << 40,
    ) {
        let _ = parse_message(&bytes, offset);
        let mut s = CommitLogScanner::new(rmq_config()).unwrap();
        s.begin_file(0, newest).unwrap();
        let mut at = 0usize;
        while let Some(from) = s.file_offset() {
            let from = from as usize;
            prop_assert!(from >= at && from <= bytes.len());
            let to = (from + chunk).min(bytes.len());
            match s.scan(&bytes[from..to], to == bytes.len(), |m, b| {
                assert_eq!(b.len(), m.total_size as usize);
            }) {
                Ok(end) if end.stop == ChunkStop::NeedMoreInput && to == bytes.len() => {
                    prop_assert!(false, "need more input at the file end");
                }
                Ok(end) if end.stop == ChunkStop::NeedMoreInput && end.next_offset as usize == from => {
                    // No whole message fits the chunk: the driver would read more.
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
            at = from;
        }
        let mut d = DLedgerScanner::new(dl_config()).unwrap();
        d.begin_file(0, newest).unwrap();
        let _ = d.scan(&bytes, true, |e, b| assert_eq!(e.body.len(), b.len()));
        let entries: Vec<_> = Vec::new();
        let _ = check_index_records(&entries, &bytes, 0, 1024);
        let _ = dledger::upgrade::decode_dledger_index_record(&bytes);
    }

    #[test]
    fn damaged_commitlog_yields_only_valid_messages(
        specs in rmq_specs(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        chunk in 64usize..3000,
    ) {
        let mut img = rmq_image(&specs);
        let total = img.files.len() * FILE as usize;
        let mut first_flip = u64::MAX;
        for (ix, x) in flips {
            let at = ix.index(total) as u64;
            let f = (at / FILE) as usize;
            let b = img.files[f].1[(at % FILE) as usize];
            img.overwrite(at, &[b ^ x]);
            first_flip = first_flip.min(at);
        }
        let files: Vec<_> = img.files.iter().map(|(s, b)| (*s, b.as_slice())).collect();
        if let Ok(got) = drive_commitlog(rmq_config(), &files, chunk) {
            for (p, m) in &got.entries {
                prop_assert!(parse_message(m, *p).is_ok());
            }
        }
        // Bytes before the first flip are untouched, so a scan that succeeds imports
        // every message wholly before it; a failing one names the file.
        let clean = rmq_image(&specs);
        let before: Vec<_> = clean.messages.iter().filter(|(p, m)| p + m.len() as u64 <= first_flip).cloned().collect();
        match drive_commitlog(rmq_config(), &files, chunk) {
            Ok(got) => prop_assert!(got.entries.starts_with(&before)),
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains("CommitLog file"), "{}", msg);
            }
        }
    }

    #[test]
    fn commitlog_cut_anywhere_in_the_newest_file(
        specs in rmq_specs(),
        cut in any::<prop::sample::Index>(),
        chunk in 1usize..3000,
    ) {
        let img = rmq_image(&specs);
        let n = img.files.len() - 1;
        let newest_start = img.files[n].0;
        let c = cut.index(FILE as usize + 1);
        let mut files: Vec<_> = img.files.iter().map(|(s, b)| (*s, b.as_slice())).collect();
        files[n].1 = &img.files[n].1[..c];
        let got = drive_commitlog(rmq_config(), &files, chunk).unwrap();
        let whole = drive_commitlog(rmq_config(), &files, FILE as usize).unwrap();
        prop_assert_eq!(&got, &whole, "chunk size changed the outcome");
        let cut_pos = newest_start + c as u64;
        let expected: Vec<_> = img.messages.iter().filter(|(p, m)| p + m.len() as u64 <= cut_pos).cloned().collect();
        prop_assert_eq!(&got.entries, &expected);
        let torn = img.messages.iter().find(|(p, m)| *p < cut_pos && cut_pos < p + m.len() as u64);
        match (torn, got.stop) {
            (Some((p, m)), ChunkStop::TruncatedTail(t)) => {
                prop_assert_eq!(t.physical_offset, *p);
                prop_assert!(t.needed == m.len() as u64 || (t.have < 4 && t.needed == 8));
                prop_assert_eq!(t.have, cut_pos - p);
            }
            (None, ChunkStop::LogEnd(LogEndKind::Zeros | LogEndKind::EndOfFile)) => {}
            // A cut leaving only the leading zero bytes of a big-endian TOTALSIZE looks
            // exactly like unwritten space: a clean end, and nothing visible is lost.
            (Some((p, m)), ChunkStop::LogEnd(LogEndKind::Zeros))
                if m[..(cut_pos - p) as usize].iter().all(|&b| b == 0) => {}
            (torn, stop) => prop_assert!(false, "torn {:?}, stop {:?}", torn.map(|t| t.0), stop),
        }
    }

    #[test]
    fn dledger_cut_anywhere_in_the_newest_file(
        specs in prop::collection::vec((0usize..900, any::<bool>()), 1..30),
        cut in any::<prop::sample::Index>(),
        chunk in 1usize..3000,
    ) {
        let img = dl_image(&specs);
        let n = img.data.len() - 1;
        let c = cut.index(FILE as usize + 1);
        let mut files: Vec<_> = img.data.iter().map(|(s, b)| (*s, b.as_slice())).collect();
        files[n].1 = &img.data[n].1[..c];
        let got = drive_dledger(dl_config(), &files, chunk).unwrap();
        let whole = drive_dledger(dl_config(), &files, FILE as usize).unwrap();
        prop_assert_eq!(&got, &whole, "chunk size changed the outcome");
        let cut_pos = img.data[n].0 + c as u64;
        let expected: Vec<_> = img.entries.iter().filter(|e| e.2 + 48 + e.3.len() as u64 <= cut_pos).cloned().collect();
        let seen: Vec<_> = got.entries.iter().map(|(e, b)| (e.index, e.term, e.pos, b.clone())).collect();
        prop_assert_eq!(&seen, &expected);
        let torn = img.entries.iter().find(|e| e.2 < cut_pos && cut_pos < e.2 + 48 + e.3.len() as u64);
        match (torn, got.stop) {
            (Some(e), DLedgerChunkStop::TruncatedTail(t)) => {
                prop_assert_eq!(t.pos, e.2);
                prop_assert_eq!(t.have, cut_pos - e.2);
            }
            (None, DLedgerChunkStop::LogEnd(DLedgerEndKind::Zeros | DLedgerEndKind::EndOfFile)) => {}
            // Only the leading zero bytes of the magic (1) survive: like unwritten space.
            (Some(e), DLedgerChunkStop::LogEnd(DLedgerEndKind::Zeros)) if cut_pos - e.2 < 4 => {}
            (torn, stop) => prop_assert!(false, "torn {:?}, stop {:?}", torn.map(|t| t.2), stop),
        }
    }

    #[test]
    fn damaged_dledger_store_keeps_the_untouched_prefix(
        specs in prop::collection::vec((0usize..900, any::<bool>()), 1..30),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        chunk in 48usize..3000,
    ) {
        let clean = dl_image(&specs);
        let mut img = clean.clone();
        let total = img.data.len() * FILE as usize;
        let mut first_flip = u64::MAX;
        for (ix, x) in flips {
            let at = ix.index(total) as u64;
            let b = img.data[(at / FILE) as usize].1[(at % FILE) as usize];
            img.overwrite_data(at, &[b ^ x]);
            first_flip = first_flip.min(at);
        }
        let files: Vec<_> = img.data.iter().map(|(s, b)| (*s, b.as_slice())).collect();
        let before: Vec<_> = clean
            .entries
            .iter()
            .filter(|e| e.2 + 48 + e.3.len() as u64 <= first_flip)
            .cloned()
            .collect();
        match drive_dledger(dl_config(), &files, chunk) {
            Ok(got) => {
                let seen: Vec<_> = got.entries.iter().map(|(e, b)| (e.index, e.term, e.pos, b.clone())).collect();
                prop_assert!(seen.starts_with(&before));
                for w in got.entries.windows(2) {
                    prop_assert_eq!(w[1].0.index, w[0].0.index + 1);
                    prop_assert!(w[1].0.term >= w[0].0.term);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains("DLedger data file"), "{}", msg);
            }
        }
    }
}

/// Throughput figure for the report (run: `cargo test --release --test upgrade_props
/// -- --ignored --nocapture`): scan a 64 MiB CommitLog file in 4 MiB chunks and plan
/// its import (placing, chaining, digesting every message).
#[test]
#[ignore]
fn measure_scan_and_plan_throughput() {
    use dledger::store::{LogCursor, RecordKind, SegmentGeometry};
    use dledger::upgrade::{ImportPlan, Source, SourceEntry};
    use std::time::Instant;

    const BIG: u64 = 64 << 20;
    let mut img = CommitLogImage::new(BIG, 0);
    let m = RmqMessage::simple("BenchTopic", &[7u8; 1024]);
    while img.end + 2000 < BIG {
        img.append(&m);
    }
    let cfg = CommitLogScanConfig {
        file_bytes: BIG,
        max_message_bytes: 1 << 20,
    };
    let mut plan = ImportPlan::new(
        "bench",
        SegmentGeometry::new(1 << 30).unwrap(),
        dledger::store::DEFAULT_MAX_RECORD_BYTES,
        LogCursor::empty_at(0),
    )
    .unwrap();
    let bytes = &img.files[0].1;
    let t = Instant::now();
    let mut s = CommitLogScanner::new(cfg).unwrap();
    s.begin_file(0, true).unwrap();
    let mut plan_err = None;
    loop {
        let from = s.file_offset().unwrap() as usize;
        let to = (from + (4 << 20)).min(bytes.len());
        let end = s
            .scan(&bytes[from..to], to == bytes.len(), |msg, b| {
                let e = SourceEntry {
                    kind: RecordKind::Normal,
                    term: 1,
                    body: b,
                    source: Source::RocketMq {
                        physical_offset: msg.physical_offset,
                    },
                };
                if let Err(err) = plan.push(&e) {
                    plan_err.get_or_insert(err);
                }
            })
            .unwrap();
        if end.stop != ChunkStop::NeedMoreInput {
            break;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    assert!(plan_err.is_none());
    assert_eq!(s.messages(), img.messages.len() as u64);
    println!(
        "scanned + planned {} messages, {} MiB in {:.3} s: {:.0} MiB/s",
        s.messages(),
        BIG >> 20,
        secs,
        (BIG >> 20) as f64 / secs
    );
}

//! DLedger 0.3.x scanner and index cross-check against byte-built fixtures.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use dledger::store::{RecordKind, SegmentName};
use dledger::upgrade::fixtures::{DLedgerImage, drive_dledger};
use dledger::upgrade::{
    DLedgerChunkStop, DLedgerEndKind, DLedgerError, DLedgerScanConfig, EntryProblem, IndexProblem,
    check_index_records, dledger_index_location,
};

/// Says whether a reported problem is the expected one.
type Check = fn(&EntryProblem) -> bool;

const DATA: u64 = 4096;
const INDEX: u64 = 1024; // 32 index records per index file

fn config() -> DLedgerScanConfig {
    DLedgerScanConfig {
        data_file_bytes: DATA,
        max_entry_bytes: 2048,
    }
}

fn store(entries: u64) -> DLedgerImage {
    let mut img = DLedgerImage::new(DATA, INDEX);
    for i in 0..entries {
        let body = vec![i as u8; 1 + (i as usize * 53) % 700];
        img.append(1, 1 + i / 10, &body);
    }
    img
}

fn files(img: &DLedgerImage) -> Vec<(u64, &[u8])> {
    img.data.iter().map(|(s, b)| (*s, b.as_slice())).collect()
}

fn scan_err(img: &DLedgerImage) -> DLedgerError {
    drive_dledger(config(), &files(img), 4096).unwrap_err()
}

#[test]
fn every_entry_is_found_with_index_term_pos_and_body() {
    let img = store(45);
    assert!(
        img.data.len() >= 3 && img.index.len() >= 2,
        "fixture must span files"
    );
    for chunk in [5, 48, 1000, 4096] {
        let got = drive_dledger(config(), &files(&img), chunk).unwrap();
        assert_eq!(got.stop, DLedgerChunkStop::LogEnd(DLedgerEndKind::Zeros));
        let seen: Vec<_> = got
            .entries
            .iter()
            .map(|(e, b)| (e.index, e.term, e.pos, b.clone()))
            .collect();
        assert_eq!(seen, img.entries, "chunk {chunk}");
        for (e, _) in &got.entries {
            assert_eq!((e.file.0 + e.offset, e.kind), (e.pos, RecordKind::Normal));
        }
        // Cross-check with the index files (joined into one address space).
        let found: Vec<_> = got.entries.iter().map(|(e, _)| e.clone()).collect();
        check_index_records(&found, &img.index_bytes(), 0, INDEX).unwrap();
    }
}

#[test]
fn index_records_that_disagree_are_reported_with_file_and_offset() {
    let img = store(45);
    let got = drive_dledger(config(), &files(&img), 4096).unwrap();
    let entries: Vec<_> = got.entries.iter().map(|(e, _)| e.clone()).collect();
    let mut index = img.index_bytes();
    // Entry 40's term, in the second index file at offset (40 - 32) * 32 + 24.
    index[40 * 32 + 24 + 7] ^= 1;
    let err = check_index_records(&entries, &index, 0, INDEX).unwrap_err();
    assert_eq!(
        (err.index_file, err.offset, err.entry_index),
        (SegmentName(1024), 8 * 32, 40)
    );
    assert!(matches!(
        err.problem,
        IndexProblem::Differs { field: "term", .. }
    ));
    assert!(err.to_string().contains("00000000000000001024"), "{err}");
    // Index bytes that do not reach an entry.
    let err = check_index_records(&entries, &index[..40 * 32], 0, INDEX).unwrap_err();
    assert_eq!(
        (err.entry_index, err.problem),
        (40, IndexProblem::NotCovered)
    );
    // A stretch starting later: addresses are absolute.
    check_index_records(
        &entries[33..],
        &img.index_bytes()[33 * 32..],
        33 * 32,
        INDEX,
    )
    .unwrap();
    assert_eq!(
        dledger_index_location(33, INDEX),
        Some((SegmentName(1024), 32))
    );
}

#[test]
fn structural_damage_is_reported_where_it_is() {
    let base = store(45);
    let (index, _, pos, _) = base.entries[20].clone();
    let file = SegmentName(pos - pos % DATA);
    let cases: Vec<(u64, Vec<u8>, Check)> = vec![
        (0, 9i32.to_be_bytes().to_vec(), |p| {
            matches!(p, EntryProblem::BadMagic { found: 9 })
        }),
        (0, 3i32.to_be_bytes().to_vec(), |p| {
            matches!(p, EntryProblem::ConfigEntry)
        }),
        (4, 40i32.to_be_bytes().to_vec(), |p| {
            matches!(p, EntryProblem::SizeTooSmall { size: 40 })
        }),
        (4, 3000i32.to_be_bytes().to_vec(), |p| {
            matches!(p, EntryProblem::SizeTooLarge { .. })
        }),
        (8, (index as i64 + 1).to_be_bytes().to_vec(), |p| {
            matches!(p, EntryProblem::IndexGap { .. })
        }),
        (8, (-1i64).to_be_bytes().to_vec(), |p| {
            matches!(p, EntryProblem::NegativeIndex { found: -1 })
        }),
        (16, 1i64.to_be_bytes().to_vec(), |p| {
            matches!(p, EntryProblem::TermWentBack { found: 1, last: 2 })
        }),
        (24, (pos as i64 + 8).to_be_bytes().to_vec(), |p| {
            matches!(p, EntryProblem::PosMismatch { .. })
        }),
        (44, 1i32.to_be_bytes().to_vec(), |p| {
            matches!(p, EntryProblem::SizeMismatch { .. })
        }),
    ];
    for (field_at, patch, expect) in cases {
        let mut img = base.clone();
        img.overwrite_data(pos + field_at, &patch);
        match scan_err(&img) {
            DLedgerError::Entry {
                file: f,
                offset,
                problem,
            } => {
                assert_eq!((f, offset), (file, pos % DATA), "{problem}");
                assert!(expect(&problem), "patch at {field_at}: {problem}");
            }
            e => panic!("{e}"),
        }
    }
    // The CRC and channel fields are never computed by 0.3.x: not checked.
    let mut img = base.clone();
    img.overwrite_data(pos + 32, &[0xAB; 12]);
    assert_eq!(
        drive_dledger(config(), &files(&img), 4096)
            .unwrap()
            .entries
            .len(),
        45
    );
}

#[test]
fn truncated_newest_file_is_a_torn_tail_and_older_files_must_be_whole() {
    let img = store(45);
    let (_, _, pos, body) = img.entries.last().cloned().unwrap();
    let n = img.data.len() - 1;
    for cut in [10usize, 47, 48 + body.len() / 2] {
        let mut fs = files(&img);
        fs[n].1 = &img.data[n].1[..(pos % DATA) as usize + cut];
        let got = drive_dledger(config(), &fs, 64).unwrap();
        assert_eq!(got.entries.len(), 44, "cut {cut}");
        let DLedgerChunkStop::TruncatedTail(t) = got.stop else {
            panic!("{:?}", got.stop)
        };
        assert_eq!((t.pos, t.have), (pos, cut as u64));
        assert!(
            t.to_string()
                .starts_with(&format!("truncated tail at offset {}", pos % DATA))
        );
    }
    let (_, _, pos, _) = img.entries[3].clone();
    let mut fs = files(&img);
    fs[0].1 = &img.data[0].1[..pos as usize + 30];
    assert!(matches!(
        drive_dledger(config(), &fs, 4096),
        Err(DLedgerError::Entry { offset, problem: EntryProblem::OlderFileEndsEarly, .. }) if offset == pos
    ));
}

#[test]
fn noop_entries_and_a_store_starting_past_index_zero() {
    let mut img = DLedgerImage::new(DATA, INDEX);
    img.next_index = 1000; // older files were deleted
    img.append(1, 3, b"a");
    img.append(2, 4, b"");
    img.append(1, 4, b"b");
    let got = drive_dledger(config(), &files(&img), 4096).unwrap();
    let kinds: Vec<_> = got.entries.iter().map(|(e, _)| (e.index, e.kind)).collect();
    assert_eq!(
        kinds,
        [
            (1000, RecordKind::Normal),
            (1001, RecordKind::Noop),
            (1002, RecordKind::Normal)
        ]
    );
}

#[test]
fn rocketmq_on_dledger_bodies_are_checked_as_messages() {
    use dledger::upgrade::fixtures::RmqMessage;
    use dledger::upgrade::{MessageProblem, check_rocketmq_body};
    let mut img = DLedgerImage::new(DATA, INDEX);
    for i in 0..30u64 {
        // The body's PHYSICALOFFSET is the entry's pos + 48; find the pos first (an
        // entry moves to the next file when it does not fit).
        let m = RmqMessage::simple("T", &vec![i as u8; 100 + (i as usize * 41) % 400]);
        let len = m.encode(0).len() as u64;
        let file_start = img.end - img.end % DATA;
        let pos = if img.end + 48 + len > file_start + DATA {
            file_start + DATA
        } else {
            img.end
        };
        assert_eq!(img.append(1, 1, &m.encode(pos + 48)), pos);
    }
    img.append(2, 1, b"");
    let got = drive_dledger(config(), &files(&img), 4096).unwrap();
    for (e, body) in &got.entries {
        check_rocketmq_body(e, body).unwrap();
    }
    // A flipped body byte: DLedger's structure checks pass, the message CRC does not.
    let (_, _, pos, body) = img.entries[12].clone();
    let mut bad = img.clone();
    let at = pos + 48 + body.len() as u64 - 60;
    bad.overwrite_data(at, &[body[body.len() - 60] ^ 0x10]);
    let got = drive_dledger(config(), &files(&bad), 4096).unwrap();
    let errs: Vec<_> = got
        .entries
        .iter()
        .filter_map(|(e, b)| check_rocketmq_body(e, b).err())
        .collect();
    assert_eq!(errs.len(), 1);
    let DLedgerError::Entry {
        file,
        offset,
        problem,
    } = &errs[0]
    else {
        panic!()
    };
    assert_eq!((file.0 + offset), pos);
    assert!(
        matches!(
            problem,
            EntryProblem::RocketMqBody(MessageProblem::BodyCrcMismatch { .. })
        ),
        "{problem}"
    );
    // A body that is not a message at all.
    let plain = store(3);
    let got = drive_dledger(config(), &files(&plain), 4096).unwrap();
    assert!(check_rocketmq_body(&got.entries[0].0, &got.entries[0].1).is_err());
}

//! RocketMQ CommitLog scanner against byte-built fixtures: what is imported, what is
//! rejected (with file and offset), and how a torn newest file is reported.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use dledger::store::SegmentName;
use dledger::upgrade::WalkError;
use dledger::upgrade::fixtures::{CommitLogImage, RmqMessage, drive_commitlog};
use dledger::upgrade::rocketmq::{
    BORNHOST_V6_FLAG, MESSAGE_MAGIC_CODE_V2, STOREHOSTADDRESS_V6_FLAG, min_message_bytes,
};
use dledger::upgrade::{
    ChunkStop, CommitLogError, CommitLogScanConfig, CommitLogScanner, LogEndKind, MessageProblem,
    MessageVersion, parse_message, rocketmq_body_crc,
};

/// Says whether a reported problem is the expected one.
type Check = fn(&MessageProblem) -> bool;

const FILE: u64 = 4096;

fn config() -> CommitLogScanConfig {
    CommitLogScanConfig {
        file_bytes: FILE,
        max_message_bytes: 2048,
    }
}

fn files(img: &CommitLogImage) -> Vec<(u64, &[u8])> {
    img.files.iter().map(|(s, b)| (*s, b.as_slice())).collect()
}

/// v1 and v2 messages, IPv4 and IPv6 hosts, enough to fill three files.
fn mixed_log(first_file_start: u64) -> CommitLogImage {
    let mut img = CommitLogImage::new(FILE, first_file_start);
    for i in 0..40u32 {
        let mut m = RmqMessage::simple(
            &format!("Topic{}", i % 3),
            &vec![i as u8; 50 + (i as usize * 37) % 300],
        );
        m.v2 = i % 4 == 1;
        m.born_host_v6 = i % 3 == 0;
        m.store_host_v6 = i % 5 == 0;
        m.queue_offset = i64::from(i);
        if i == 7 {
            m.body.clear(); // an empty body is valid
        }
        if i == 9 {
            // A v2 topic longer than a v1 length byte can say.
            m.topic = vec![b't'; 300];
        }
        img.append(&m);
    }
    img
}

#[test]
fn imports_every_message_unchanged_across_files_and_chunk_sizes() {
    let img = mixed_log(3 * FILE);
    assert!(img.files.len() >= 3, "fixture must span files");
    for chunk in [1, 7, 100, 2048, 5000] {
        let got = drive_commitlog(config(), &files(&img), chunk).unwrap();
        assert_eq!(got.entries, img.messages, "chunk {chunk}");
        assert_eq!(
            got.stop,
            ChunkStop::LogEnd(LogEndKind::Zeros),
            "chunk {chunk}"
        );
    }
}

#[test]
fn message_fields_follow_the_layout() {
    let mut m = RmqMessage::simple("T", b"hello body");
    m.v2 = true;
    m.born_host_v6 = true;
    m.store_host_v6 = true;
    m.topic = b"a-topic".to_vec();
    let bytes = m.encode(12_345);
    // 72 fixed + 20 + 20 hosts + 10 body + 2 + 7 topic + 2 + properties.
    assert_eq!(bytes.len(), 72 + 40 + 10 + 2 + 7 + 2 + m.properties.len());
    let f = parse_message(&bytes, 12_345).unwrap();
    assert_eq!(f.version, MessageVersion::V2);
    assert_eq!(f.version.magic(), MESSAGE_MAGIC_CODE_V2);
    assert_eq!(
        f.sys_flag & (BORNHOST_V6_FLAG | STOREHOSTADDRESS_V6_FLAG),
        0x30
    );
    assert_eq!(&bytes[f.body.clone()], b"hello body");
    assert_eq!(&bytes[f.topic.clone()], b"a-topic");
    assert_eq!(&bytes[f.properties.clone()], m.properties.as_slice());
    assert_eq!(f.physical_offset, 12_345);
    assert_eq!(f.body_crc, rocketmq_body_crc(b"hello body"));
    assert_eq!(min_message_bytes(MessageVersion::V1), 91);
}

#[test]
fn body_crc_is_ieee_with_the_top_bit_cleared() {
    // The IEEE CRC32 check value of "123456789" is 0xCBF43926.
    assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    assert_eq!(rocketmq_body_crc(b"123456789"), 0x4BF4_3926);
}

fn scan_err(img: &CommitLogImage) -> CommitLogError {
    drive_commitlog(config(), &files(img), 4096).unwrap_err()
}

#[test]
fn corrupted_body_crc_mid_file_is_an_error_naming_file_and_offset() {
    let mut img = mixed_log(0);
    let (at, msg) = img.messages[3].clone();
    let body = parse_message(&msg, at).unwrap().body;
    img.overwrite(at + body.start as u64 + 2, &[msg[body.start + 2] ^ 0x40]);
    let err = scan_err(&img);
    let CommitLogError::Message {
        file,
        offset,
        problem,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((*file, *offset), (SegmentName(0), at));
    assert!(matches!(problem, MessageProblem::BodyCrcMismatch { .. }));
    let text = err.to_string();
    assert!(
        text.contains("00000000000000000000") && text.contains(&format!("byte offset {at}")),
        "{text}"
    );
}

#[test]
fn a_stored_crc_that_is_not_masked_is_rejected() {
    // A writer that stored the full unsigned CRC (top bit set) does not match.
    let mut img = CommitLogImage::new(FILE, 0);
    let m = RmqMessage::simple("T", b"123456789");
    let bytes = m.encode_with_crc(0, 0xCBF4_3926u32 as i32);
    img.overwrite(0, &bytes);
    assert!(matches!(
        scan_err(&img),
        CommitLogError::Message {
            problem: MessageProblem::BodyCrcMismatch {
                stored: 0xCBF4_3926,
                computed: 0x4BF4_3926
            },
            ..
        }
    ));
}

#[test]
fn structural_damage_is_reported_where_it_is() {
    let base = mixed_log(0);
    let (at, msg) = base.messages[5].clone();
    let file = SegmentName(at - at % FILE);
    let off = at % FILE;
    let cases: Vec<(Vec<u8>, u64, Check)> = vec![
        // Bad magic.
        (0x1234_5678u32.to_be_bytes().to_vec(), 4, |p| {
            matches!(p, MessageProblem::BadMagic { found: 0x1234_5678 })
        }),
        // PHYSICALOFFSET one off.
        ((at as i64 + 1).to_be_bytes().to_vec(), 28, |p| {
            matches!(p, MessageProblem::PhysicalOffsetMismatch { .. })
        }),
        // TOTALSIZE too small / too large / past the file end.
        (10i32.to_be_bytes().to_vec(), 0, |p| {
            matches!(p, MessageProblem::TotalTooSmall { .. })
        }),
        (4000i32.to_be_bytes().to_vec(), 0, |p| {
            matches!(p, MessageProblem::TotalTooLarge { .. })
        }),
        (i32::MIN.to_be_bytes().to_vec(), 0, |p| {
            matches!(p, MessageProblem::TotalTooSmall { .. })
        }),
        // TOTALSIZE 4 more than the parts.
        (((msg.len() + 4) as i32).to_be_bytes().to_vec(), 0, |p| {
            matches!(p, MessageProblem::SizeMismatch { .. })
        }),
        // A negative body length.
        ((-5i32).to_be_bytes().to_vec(), body_len_at(&msg), |p| {
            matches!(p, MessageProblem::NegativeBodyLength { found: -5 })
        }),
    ];
    for (patch, field_at, expect) in cases {
        let mut img = base.clone();
        img.overwrite(at + field_at, &patch);
        match scan_err(&img) {
            CommitLogError::Message {
                file: f,
                offset,
                problem,
            } => {
                assert_eq!((f, offset), (file, off), "{problem}");
                assert!(expect(&problem), "patch at {field_at}: {problem}");
            }
            e => panic!("{e}"),
        }
    }
}

fn body_len_at(msg: &[u8]) -> u64 {
    let sys = u32::from_be_bytes(msg[36..40].try_into().unwrap());
    let born = if sys & BORNHOST_V6_FLAG != 0 { 20 } else { 8 };
    let store = if sys & STOREHOSTADDRESS_V6_FLAG != 0 {
        20
    } else {
        8
    };
    (48 + born + 8 + store + 4 + 8) as u64
}

#[test]
fn a_filler_with_the_wrong_length_is_an_error() {
    let mut img = mixed_log(0);
    // The first file ends with a filler right after the last message in it.
    let (at, msg) = img
        .messages
        .iter()
        .rev()
        .find(|(a, _)| *a < FILE)
        .cloned()
        .unwrap();
    let filler_at = at + msg.len() as u64;
    let left = (FILE - filler_at) as i32;
    img.overwrite(filler_at, &(left - 1).to_be_bytes());
    match scan_err(&img) {
        CommitLogError::Message {
            offset,
            problem: MessageProblem::BadFillerLength { found, expected },
            ..
        } => {
            assert_eq!(
                (offset, found, expected),
                (filler_at, i64::from(left - 1), left as u64)
            );
        }
        e => panic!("{e}"),
    }
}

#[test]
fn truncated_last_message_of_the_newest_file_is_a_torn_tail() {
    let img = mixed_log(0);
    let (at, msg) = img.messages.last().cloned().unwrap();
    let newest = img.files.len() - 1;
    let cut = (at % FILE) as usize + msg.len() / 2;
    let mut fs = files(&img);
    fs[newest].1 = &img.files[newest].1[..cut];
    for chunk in [13, 4096] {
        let got = drive_commitlog(config(), &fs, chunk).unwrap();
        assert_eq!(
            got.entries,
            img.messages[..img.messages.len() - 1],
            "chunk {chunk}"
        );
        let ChunkStop::TruncatedTail(t) = got.stop else {
            panic!("{:?}", got.stop)
        };
        assert_eq!(
            (t.file, t.offset, t.physical_offset),
            (img.file_name(newest), at % FILE, at)
        );
        assert_eq!(
            (t.needed, t.have),
            (msg.len() as u64, (msg.len() / 2) as u64)
        );
        assert!(
            t.to_string()
                .starts_with(&format!("truncated tail at offset {}", at % FILE)),
            "{t}"
        );
    }
}

#[test]
fn an_older_file_must_end_with_its_filler() {
    let img = mixed_log(0);
    // Cut the first file in the middle of a message: not the newest, so an error.
    let (at, msg) = img.messages[2].clone();
    let mut fs = files(&img);
    fs[0].1 = &img.files[0].1[..(at as usize + msg.len() / 2)];
    assert!(matches!(
        drive_commitlog(config(), &fs, 4096),
        Err(CommitLogError::Message { offset, problem: MessageProblem::OlderFileEndsEarly, .. }) if offset == at
    ));
    // Zeros before the filler in an older file: the rest of that file is lost.
    let mut img2 = img.clone();
    let (at, msg) = img2
        .messages
        .iter()
        .rev()
        .find(|(a, _)| *a < FILE)
        .cloned()
        .unwrap();
    img2.overwrite(at, &vec![0; msg.len() + 8]);
    assert!(matches!(
        scan_err(&img2),
        CommitLogError::Message { offset, problem: MessageProblem::ZerosInOlderFile, .. } if offset == at
    ));
}

#[test]
fn files_must_follow_each_other() {
    let img = mixed_log(0);
    let fs = files(&img);
    // Skip the second file.
    let gap = [fs[0], fs[2]];
    assert!(matches!(
        drive_commitlog(config(), &gap, 4096),
        Err(CommitLogError::Files(WalkError::FileGap {
            expected: SegmentName(4096),
            found: SegmentName(8192),
            ..
        }))
    ));
    let mut s = CommitLogScanner::new(config()).unwrap();
    assert!(matches!(
        s.begin_file(100, true),
        Err(CommitLogError::Files(WalkError::MisalignedFile { .. }))
    ));
    assert!(matches!(
        s.scan(&[], true, |_, _| ()),
        Err(CommitLogError::Files(WalkError::NoOpenFile { .. }))
    ));
    s.begin_file(0, true).unwrap();
    assert!(matches!(
        s.begin_file(4096, true),
        Err(CommitLogError::Files(WalkError::FileStillOpen { .. }))
    ));
    assert!(matches!(
        s.scan(&vec![0; 5000], true, |_, _| ()),
        Err(CommitLogError::Files(WalkError::InputBeyondFile { .. }))
    ));
    let end = s.scan(&[0; 64], false, |_, _| ()).unwrap();
    assert_eq!(end.stop, ChunkStop::LogEnd(LogEndKind::Zeros));
    assert!(matches!(
        s.begin_file(4096, true),
        Err(CommitLogError::Files(WalkError::AfterNewest { .. }))
    ));
}

#[test]
fn newest_file_may_end_full_or_at_its_last_byte() {
    let img = mixed_log(0);
    // Only the older files: the last of them (now the newest) ends with its filler.
    let fs = files(&img);
    let got = drive_commitlog(config(), &fs[..2], 512).unwrap();
    assert_eq!(got.stop, ChunkStop::LogEnd(LogEndKind::Filler));
    assert!(got.entries.iter().all(|(p, _)| *p < 2 * FILE));
    // A newest file cut exactly after a message.
    let (at, msg) = img.messages.last().cloned().unwrap();
    let mut fs = files(&img);
    let n = fs.len() - 1;
    fs[n].1 = &img.files[n].1[..(at % FILE) as usize + msg.len()];
    let got = drive_commitlog(config(), &fs, 512).unwrap();
    assert_eq!(got.stop, ChunkStop::LogEnd(LogEndKind::EndOfFile));
    assert_eq!(got.entries, img.messages);
}

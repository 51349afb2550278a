//! Property tests for the commitlog format and the recovery scan, through the public
//! `dledger::store` API only.
//!
//! A segment image is built the way the disk layer writes one (preallocated zeros,
//! fillers, records never spanning segments); the scan is then run over prefixes,
//! bit flips and random damage of it, and its answer is compared with what the image
//! really holds.

// Test helpers outside #[test] fns: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use dledger::store::{
    CHECKPOINT_BYTES, ChainError, Checkpoint, Corruption, Damage, HARD_STATE_BYTES, HEADER_BYTES,
    INDEX_ENTRY_BYTES, IndexEntry, LogCursor, PersistedHardState, RecordHeader, RecordKind,
    ScanEnd, ScanError, ScanInput, ScanStop, SegmentGeometry, decode_checkpoint, decode_hard_state,
    decode_header, decode_index_entry, encode_checkpoint, encode_filler, encode_hard_state,
    encode_index_entry, encode_record, scan_segment, verify_record,
};
use proptest::prelude::*;

const SEGMENT_BYTES: u64 = 4096;
const SEGMENTS: usize = 4;
const MAX_RECORD_BYTES: u32 = 1024;

/// A part of the image the scan reads as one unit: damage anywhere in it stops the scan
/// at `pos`.
#[derive(Clone, Copy, Debug)]
struct Unit {
    pos: u64,
    len: u64,
    /// For a record: its position in `Image::headers`.
    record: Option<usize>,
}

#[derive(Debug)]
struct Image {
    g: SegmentGeometry,
    bytes: Vec<u8>,
    headers: Vec<RecordHeader>,
    units: Vec<Unit>,
    end: u64,
}

/// One entry to append: a noop, or a normal record with this body.
#[derive(Clone, Debug)]
struct Entry {
    term_step: u64,
    body: Option<Vec<u8>>,
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    let entry = (
        prop_oneof![4 => Just(0u64), 1 => 1u64..3],
        prop_oneof![
            1 => Just(None),
            8 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Some),
        ],
    )
        .prop_map(|(term_step, body)| Entry { term_step, body });
    proptest::collection::vec(entry, 0..120)
}

impl Image {
    /// Lays out `entries` from position 0, stopping before the last segment so that the
    /// end of the log is always followed by zeros.
    fn build(entries: &[Entry]) -> Image {
        let g = SegmentGeometry::new(SEGMENT_BYTES).unwrap();
        let mut img = Image {
            g,
            bytes: vec![0; SEGMENT_BYTES as usize * SEGMENTS],
            headers: Vec::new(),
            units: Vec::new(),
            end: 0,
        };
        let limit = SEGMENT_BYTES * (SEGMENTS as u64 - 1);
        let mut term = 1;
        let mut cursor = LogCursor::empty_at(0);
        for e in entries {
            term += e.term_step;
            let body: &[u8] = e.body.as_deref().unwrap_or(&[]);
            let kind = match e.body {
                None => RecordKind::Noop,
                Some(_) => RecordKind::Normal,
            };
            let (place, header) = cursor.next_header(&g, kind, term, body).unwrap();
            if header.end_pos() > limit {
                break;
            }
            if let Some(f) = place.filler {
                encode_filler(f.len, &mut img.bytes[f.pos as usize..]).unwrap();
                img.units.push(Unit {
                    pos: f.pos,
                    len: 8,
                    record: None,
                });
            }
            encode_record(&header, body, &mut img.bytes[header.pos as usize..]).unwrap();
            img.units.push(Unit {
                pos: header.pos,
                len: header.record_bytes(),
                record: Some(img.headers.len()),
            });
            img.headers.push(header);
            img.end = header.end_pos();
            cursor.advance(&header);
        }
        // Where the scan looks for the end: a header's worth of zeros, at the next
        // segment's start if fewer than 8 bytes (no room for a filler) are left. The
        // short tail itself is never read.
        let probe = if g.remaining_in_segment(img.end) < 8 {
            Unit {
                pos: g.next_segment_start(img.end).unwrap(),
                len: HEADER_BYTES as u64,
                record: None,
            }
        } else {
            Unit {
                pos: img.end,
                len: (HEADER_BYTES as u64).min(g.remaining_in_segment(img.end)),
                record: None,
            }
        };
        img.units.push(probe);
        img
    }

    /// Where a clean scan of the whole image ends: the next record's place.
    fn clean_end(&self) -> u64 {
        self.units.last().map_or(0, |u| u.pos)
    }

    /// The log cursor after the first `k` records.
    fn cursor_after(&self, k: usize) -> LogCursor {
        match k.checked_sub(1).map(|i| self.headers[i]) {
            None => LogCursor::empty_at(0),
            Some(h) => LogCursor {
                pos: h.end_pos(),
                next_index: h.index + 1,
                last_term: h.term,
                last_crc: h.header_crc(),
            },
        }
    }

    /// A checkpoint that scans from after `j` records and has the first `k` durable.
    fn checkpoint(&self, j: usize, k: usize) -> Checkpoint {
        assert!(j <= k);
        Checkpoint {
            scan_from: self.cursor_after(j),
            durable: self.cursor_after(k),
            commit_index: k as u64,
        }
    }
}

/// What a whole recovery found: every valid record, and the last segment's scan end.
#[derive(Debug)]
struct Recovered {
    headers: Vec<RecordHeader>,
    last: ScanEnd,
}

/// Runs the scan segment after segment, as the disk layer would at start-up. Segment `k`
/// exists with the bytes `files[k]` (its file may be shorter than a segment).
fn recover(g: SegmentGeometry, files: &[&[u8]], cp: &Checkpoint) -> Result<Recovered, ScanError> {
    let mut headers = Vec::new();
    let mut start = cp.scan_from;
    loop {
        let seg = (start.pos / g.segment_bytes()) as usize;
        let file: &[u8] = files.get(seg).copied().unwrap_or(&[]);
        let from = (start.pos - g.segment_start(start.pos)) as usize;
        let bytes = file.get(from..).unwrap_or(&[]);
        let input = ScanInput {
            start,
            ..cp.scan_input(g, MAX_RECORD_BYTES)
        };
        let end = scan_segment(bytes, &input, |h| headers.push(*h))?;
        if end.stop == ScanStop::SegmentEnd && seg + 1 < files.len().max(1) {
            start = end.next;
            continue;
        }
        return Ok(Recovered { headers, last: end });
    }
}

/// Like [`recover`], but reads each segment file in chunks of `chunk` bytes (at least
/// `MAX_RECORD_BYTES`), resuming after `NeedMoreInput` as a disk layer reading a large
/// tail piece by piece would.
fn recover_chunked(
    g: SegmentGeometry,
    files: &[&[u8]],
    cp: &Checkpoint,
    chunk: usize,
) -> Result<Recovered, ScanError> {
    assert!(chunk >= MAX_RECORD_BYTES as usize);
    let mut headers = Vec::new();
    let mut start = cp.scan_from;
    loop {
        let seg = (start.pos / g.segment_bytes()) as usize;
        let file: &[u8] = files.get(seg).copied().unwrap_or(&[]);
        let from = ((start.pos - g.segment_start(start.pos)) as usize).min(file.len());
        let to = (from + chunk).min(file.len());
        let input = ScanInput {
            start,
            input_is_file_end: to == file.len(),
            ..cp.scan_input(g, MAX_RECORD_BYTES)
        };
        let end = scan_segment(&file[from..to], &input, |h| headers.push(*h))?;
        match end.stop {
            ScanStop::NeedMoreInput => {
                // A chunk of at least one maximal record always makes progress.
                assert!(end.records > 0, "no progress at {end:?}");
                start = end.next;
            }
            ScanStop::SegmentEnd if seg + 1 < files.len().max(1) => start = end.next,
            _ => return Ok(Recovered { headers, last: end }),
        }
    }
}

fn segment_files(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.chunks(SEGMENT_BYTES as usize).collect()
}

proptest! {
    // 256 cases each by default; set PROPTEST_CASES for a longer run.
    #[test]
    fn record_round_trip(
        index in 1u64..,
        term in 1u64..,
        pos in 0u64..(u64::MAX / 2),
        noop in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let (header, body) = if noop {
            (RecordHeader::noop(index, term, pos), Vec::new())
        } else {
            (RecordHeader::normal(index, term, pos, &body).unwrap(), body)
        };
        let mut out = vec![0u8; HEADER_BYTES + body.len() + 7];
        let n = encode_record(&header, &body, &mut out).unwrap();
        prop_assert_eq!(n, HEADER_BYTES + body.len());
        prop_assert_eq!(decode_header(&out, MAX_RECORD_BYTES), Ok(header));
        prop_assert_eq!(verify_record(&out, MAX_RECORD_BYTES), Ok(header));
        prop_assert_eq!(&out[HEADER_BYTES..n], &body[..]);

        let entry = IndexEntry::from_header(&header).unwrap();
        let mut slot = [0u8; INDEX_ENTRY_BYTES];
        encode_index_entry(&entry, &mut slot).unwrap();
        prop_assert_eq!(decode_index_entry(&slot, MAX_RECORD_BYTES), Ok(Some(entry)));
        prop_assert!(entry.matches(&header));
    }

    #[test]
    fn state_files_round_trip(
        start in 0u64..(1 << 40),
        steps in proptest::collection::vec((0u64..1 << 30, 0u64..1000, 0u64..3, 0u64..2000), 1..5),
        hs_term in any::<u64>(), vote in proptest::option::of(any::<u32>()),
    ) {
        // A chain of checkpoints as a writer produces them.
        let mut cp = Checkpoint::new_log(start);
        for (bytes, entries, term_step, commit) in steps {
            let d = cp.durable;
            let next_index = d.next_index + entries;
            let last_term = if next_index == 1 { 0 } else { d.last_term.max(1) + term_step };
            let last_crc = if next_index == 1 { 0 } else { (bytes as u32) ^ 0x5A5A_5A5A };
            let durable = LogCursor { pos: d.pos + bytes, next_index, last_term, last_crc };
            cp = cp.advanced(durable, commit);
            let mut b = [0u8; CHECKPOINT_BYTES];
            encode_checkpoint(&cp, &mut b).unwrap();
            prop_assert_eq!(decode_checkpoint(&b), Ok(cp));
        }
        let hs = PersistedHardState { term: hs_term, voted_for: vote };
        let mut b = [0u8; HARD_STATE_BYTES];
        encode_hard_state(&hs, &mut b).unwrap();
        prop_assert_eq!(decode_hard_state(&b), Ok(hs));
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        max in any::<u32>(),
    ) {
        let _ = decode_header(&bytes, max);
        let _ = verify_record(&bytes, max);
        let _ = decode_index_entry(&bytes, max);
        let _ = decode_checkpoint(&bytes);
        let _ = decode_hard_state(&bytes);
        let g = SegmentGeometry::new(SEGMENT_BYTES).unwrap();
        let input = ScanInput {
            geometry: g,
            start: LogCursor::empty_at(8192 - 150),
            max_record_bytes: max,
            protected_end_pos: 0,
            protected_index: 0,
            input_is_file_end: true,
        };
        let n = bytes.len().min(150);
        let mut count = 0;
        let r = scan_segment(&bytes[..n], &input, |_| count += 1);
        prop_assert!(r.is_ok(), "nothing is protected, so no corruption: {:?}", r);
    }

    /// The intact image recovers every record, and ends cleanly at its end.
    #[test]
    fn whole_image_recovers_everything(es in entries()) {
        let img = Image::build(&es);
        let files = segment_files(&img.bytes);
        let cp = img.checkpoint(0, img.headers.len());
        let r = recover(img.g, &files, &cp).unwrap();
        prop_assert_eq!(&r.headers, &img.headers);
        prop_assert_eq!(r.last.stop, ScanStop::Zeros);
        prop_assert_eq!(r.last.end_pos, img.clean_end());
        prop_assert_eq!(r.last.next.next_index, img.headers.len() as u64 + 1);
    }

    /// Reading the files in chunks gives the same answer as reading them whole, with
    /// damage or not.
    #[test]
    fn chunked_scan_matches_whole_scan(
        es in entries(),
        chunk in (MAX_RECORD_BYTES as usize)..5000,
        flip_frac in proptest::option::of(0.0f64..1.0),
        cut_frac in 0.0f64..=1.0,
        durable_frac in 0.0f64..=1.0,
        scan_frac in 0.0f64..=1.0,
    ) {
        let img = Image::build(&es);
        let mut bytes = img.bytes.clone();
        if let Some(f) = flip_frac {
            let at = ((img.end + 48) as f64 * f) as usize;
            bytes[at] ^= 0x01;
        }
        let cut = ((bytes.len() as f64) * cut_frac) as usize;
        let files = segment_files(&bytes[..cut]);
        let k = ((img.headers.len() as f64) * durable_frac) as usize;
        let cp = img.checkpoint(((k as f64) * scan_frac) as usize, k);
        let whole = recover(img.g, &files, &cp);
        let chunked = recover_chunked(img.g, &files, &cp, chunk);
        match (whole, chunked) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a.headers, b.headers);
                // `records` counts one scan call's records, so it differs by design.
                prop_assert_eq!(
                    (a.last.end_pos, a.last.stop, a.last.next),
                    (b.last.end_pos, b.last.stop, b.last.next)
                );
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => return Err(TestCaseError::fail(format!("whole {a:?} vs chunked {b:?}"))),
        }
    }

    /// Cutting the image anywhere (the files end there, or everything after is zero)
    /// recovers exactly the whole records before the cut: never a partial one, and
    /// never an error when the cut is at or above the durable point.
    #[test]
    fn every_prefix_recovers_exactly_its_whole_records(
        es in entries(),
        cut_frac in 0.0f64..=1.0,
        durable_frac in 0.0f64..=1.0,
    ) {
        let img = Image::build(&es);
        let cut = ((img.end as f64) * cut_frac) as u64;
        let whole = img.headers.iter().take_while(|h| h.end_pos() <= cut).count();
        // A durable point at or below the cut.
        let k = ((whole as f64) * durable_frac) as usize;
        let cp = img.checkpoint(0, k);

        // Model 1: the files end at the cut.
        let files: Vec<&[u8]> = segment_files(&img.bytes[..cut as usize]);
        let r = recover(img.g, &files, &cp).unwrap();
        prop_assert_eq!(&r.headers[..], &img.headers[..whole]);
        // The log ends after the last whole record (or at a later segment start when
        // the cut left only fillers behind it), never beyond the cut.
        let whole_end = img.cursor_after(whole).pos;
        prop_assert!(r.last.end_pos >= whole_end);
        prop_assert!(r.last.end_pos <= cut.max(whole_end));

        // Model 2: preallocated files, everything from the cut on is zero (lost writes).
        let mut zeroed = img.bytes.clone();
        zeroed[cut as usize..].fill(0);
        let r = recover(img.g, &segment_files(&zeroed), &cp).unwrap();
        // A record cut inside a body whose lost bytes were zero anyway is whole.
        let intact = img.headers.iter().take_while(|h| {
            zeroed[h.pos as usize..h.end_pos() as usize]
                == img.bytes[h.pos as usize..h.end_pos() as usize]
        }).count();
        prop_assert_eq!(&r.headers[..], &img.headers[..intact]);

        // A cut below the durable point is corruption, never a silent truncation.
        if whole > 0 {
            let cp = img.checkpoint(0, whole);
            let below = &img.bytes[..(cp.durable.pos - 1) as usize];
            let files: Vec<&[u8]> = segment_files(below);
            let err = recover(img.g, &files, &cp);
            prop_assert!(matches!(err, Err(ScanError::Corruption(_))), "{:?}", err);
        }
    }

    /// A single flipped bit is always caught: inside a unit at or above the durable point
    /// the log ends just before that unit; below it, the scan reports corruption at the
    /// unit's segment file and offset. Never a wrong record.
    #[test]
    fn single_bit_flip_is_caught_precisely(
        es in entries(),
        at_frac in 0.0f64..1.0,
        bit in 0u8..8,
        durable_frac in 0.0f64..=1.0,
        scan_frac in 0.0f64..=1.0,
    ) {
        let img = Image::build(&es);
        let span = (img.end + HEADER_BYTES as u64 + 16).min(img.bytes.len() as u64);
        let at = ((span as f64) * at_frac) as u64;
        let mut bytes = img.bytes.clone();
        bytes[at as usize] ^= 1 << bit;
        let k = ((img.headers.len() as f64) * durable_frac) as usize;
        let j = ((k as f64) * scan_frac) as usize;
        let cp = img.checkpoint(j, k);
        let r = recover(img.g, &segment_files(&bytes), &cp);

        let hit = img
            .units
            .iter()
            .find(|u| u.pos <= at && at < u.pos + u.len && u.pos >= cp.scan_from.pos);
        match hit {
            None => {
                // Below the scan start, in filler padding or past the end probe: nothing
                // the scan reads.
                let r = r.unwrap();
                prop_assert_eq!(&r.headers[..], &img.headers[j..]);
            }
            Some(u) => {
                let before = img.headers.iter().take_while(|h| h.pos < u.pos).count();
                if u.pos < cp.durable.pos {
                    let Err(ScanError::Corruption(Corruption { segment, offset, pos, .. })) = r
                    else {
                        return Err(TestCaseError::fail(format!("expected corruption, got {r:?}")));
                    };
                    prop_assert_eq!(pos, u.pos);
                    prop_assert_eq!(segment.0, img.g.segment_start(u.pos));
                    prop_assert_eq!(offset, img.g.offset_in_segment(u.pos));
                } else {
                    let r = r.unwrap();
                    prop_assert_eq!(&r.headers[..], &img.headers[j..before]);
                    prop_assert!(matches!(r.last.stop, ScanStop::TornTail(_)), "{:?}", r.last);
                    prop_assert_eq!(r.last.end_pos, u.pos);
                }
                if let Some(i) = u.record {
                    prop_assert_eq!(i, before);
                }
            }
        }
    }

    /// A rewritten stretch of the log (Raft truncated from `j` and the same-sized new
    /// entries, in the same terms, went over the old ones) is never followed by the old
    /// entries left behind it, though they line up in index, term and position: the
    /// chain CRC tells them apart.
    #[test]
    fn stale_entries_behind_a_rewrite_are_not_relinked(
        es in entries(),
        j_frac in 0.0f64..1.0,
        m_frac in 0.0f64..=1.0,
        durable_frac in 0.0f64..=1.0,
        scan_frac in 0.0f64..=1.0,
    ) {
        let old = Image::build(&es);
        let n = old.headers.len();
        prop_assume!(n > 0);
        let j = ((n as f64) * j_frac) as usize;
        let diverged = es[j].body.as_ref().is_some_and(|b| !b.is_empty());
        prop_assume!(diverged);
        // The new log: entry j's body differs in one byte, everything else the same.
        let mut new_es = es.clone();
        if let Some(b) = new_es[j].body.as_mut() {
            b[0] ^= 0xFF;
        }
        let new = Image::build(&new_es);
        prop_assert_eq!(new.headers.len(), n);
        // The writer wrote new entries j..j+m over the old ones, nothing past them.
        let m = 1 + (((n - j - 1) as f64) * m_frac) as usize;
        let written_end = new.headers[j + m - 1].end_pos() as usize;
        let mut bytes = old.bytes.clone();
        bytes[..written_end].copy_from_slice(&new.bytes[..written_end]);

        let r = recover(old.g, &segment_files(&bytes), &new.checkpoint(0, 0)).unwrap();
        prop_assert_eq!(&r.headers[..], &new.headers[..j + m]);
        if j + m < n {
            prop_assert!(
                matches!(
                    r.last.stop,
                    ScanStop::TornTail(Damage::Chain(ChainError::PrevCrcMismatch { .. }))
                ),
                "{:?}", r.last
            );
        }

        // With the old log's checkpoint moved down to the truncation point first (as the
        // disk layer must do), recovery is clean. Without it, a scan that starts inside
        // the rewritten stretch finds a chain the checkpoint's durable point contradicts:
        // corruption. (A scan starting past the stretch cannot tell: hence the rule.)
        let k = ((n as f64) * durable_frac) as usize;
        let j0 = ((k as f64) * scan_frac) as usize;
        let old_cp = old.checkpoint(j0, k);
        let cp = old_cp.truncated_to(new.cursor_after(j));
        let r = recover(old.g, &segment_files(&bytes), &cp).unwrap();
        prop_assert_eq!(&r.headers[..], &new.headers[j0.min(j)..j + m]);
        if k > j + m && j0 < j + m {
            let r = recover(old.g, &segment_files(&bytes), &old_cp);
            prop_assert!(matches!(r, Err(ScanError::Corruption(_))), "{:?}", r);
        }
    }

    /// Random bytes written over part of the image: never a panic, and whatever is
    /// recovered is a prefix of what was written (never a wrong record).
    #[test]
    fn random_damage_never_yields_a_wrong_record(
        es in entries(),
        at_frac in 0.0f64..1.0,
        junk in proptest::collection::vec(any::<u8>(), 1..200),
        durable_frac in 0.0f64..=1.0,
        scan_frac in 0.0f64..=1.0,
    ) {
        let img = Image::build(&es);
        let at = ((img.end + 64) as f64 * at_frac) as usize;
        let mut bytes = img.bytes.clone();
        let n = junk.len().min(bytes.len() - at);
        bytes[at..at + n].copy_from_slice(&junk[..n]);
        let k = ((img.headers.len() as f64) * durable_frac) as usize;
        let j = ((k as f64) * scan_frac) as usize;
        let cp = img.checkpoint(j, k);
        let mut seen = Vec::new();
        match recover(img.g, &segment_files(&bytes), &cp) {
            Ok(r) => seen = r.headers,
            Err(ScanError::Corruption(c)) => {
                prop_assert!(
                    c.pos < cp.durable.pos || c.expected_index <= cp.durable_index(),
                    "{}", c
                );
                prop_assert!(c.pos >= cp.scan_from.pos && c.pos <= (at + n) as u64);
            }
            Err(e) => return Err(TestCaseError::fail(format!("unexpected error {e}"))),
        }
        prop_assert!(j + seen.len() <= img.headers.len());
        prop_assert_eq!(&seen[..], &img.headers[j..j + seen.len()]);
        for h in &seen {
            prop_assert!(h.kind == RecordKind::Noop || h.kind == RecordKind::Normal);
        }
    }
}

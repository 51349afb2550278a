//! The recovery scan: walks the records of one segment from a known record boundary and
//! decides where the valid log ends and whether what follows may be dropped.
//!
//! Rules:
//! - Every record is fully checked: header CRC, body CRC, `pos` equal to where it lies,
//!   index exactly one more than the previous, term never below the previous, chained to
//!   the previous record's header CRC, and inside the segment.
//! - The scan stops cleanly at zeros (a preallocated segment's unwritten part), at the end
//!   of the file's bytes, or at an end-of-segment filler or a segment tail too short for
//!   one (the log goes on in the next segment; the filler's padding and a short tail are
//!   never read).
//! - Damage (a partial or invalid header, a CRC mismatch, a broken chain) above the
//!   durable point is a torn or unsynced tail: the log ends before it and the caller
//!   truncates there.
//! - Damage, or an end of the log, *below* the durable point (the checkpoint's durable
//!   end position and index) is corruption: the scan fails with an error that names the
//!   segment file and the byte offset, and the group must refuse to serve.
//!
//! The scan does no I/O and allocates nothing: records are reported through a callback
//! (e.g. to rebuild index entries) as they are validated.

use std::fmt;

use thiserror::Error;

use super::cursor::{ChainError, LogCursor};
use super::record::{
    DecodeError, HEADER_BYTES, HEADER_BYTES_U64, RecordHeader, decode_header, record_body,
    verify_body,
};
use super::segment::{FILLER_BYTES, FILLER_MAGIC, SegmentGeometry, SegmentName, read_filler};

/// Everything the scan needs besides the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ScanInput {
    pub geometry: SegmentGeometry,
    /// Where the scan starts: a record boundary (the checkpoint's scan-from point, or
    /// the `next` of the previous scan) and the chain state there. `bytes[0]` is at
    /// `start.pos`.
    pub start: LogCursor,
    /// Bound on a whole record; a header claiming more is damage.
    pub max_record_bytes: u32,
    /// The checkpoint's durable end position: damage or an end of the log at a position
    /// below it is corruption.
    pub protected_end_pos: u64,
    /// The checkpoint's durable index: the log must reach it; ending while
    /// `next_index <= protected_index` is corruption.
    pub protected_index: u64,
    /// Whether `bytes` run to the end of the segment file as it is on disk. If so, a
    /// record cut by the end of the bytes is a torn tail; if not, the scan stops with
    /// [`ScanStop::NeedMoreInput`] so the caller can read on from `ScanEnd::next.pos`.
    /// Each call makes progress when `bytes` hold at least `max_record_bytes` (or run to
    /// the file end).
    pub input_is_file_end: bool,
}

/// What is wrong at the position where a scan stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum Damage {
    #[error("invalid record: {0}")]
    Record(#[from] DecodeError),
    #[error("record does not continue the log: {0}")]
    Chain(#[from] ChainError),
    #[error("record of {record_bytes} bytes crosses the segment end ({remaining} bytes left)")]
    CrossesSegmentEnd { record_bytes: u64, remaining: u64 },
    #[error("bytes that are neither a filler nor zeros in the last {remaining} bytes of a segment")]
    GarbageAtSegmentEnd { remaining: u64 },
    #[error("end-of-segment filler says {found} bytes, but {expected} remain")]
    BadFiller { found: u32, expected: u64 },
    #[error("filler cut short: {have} of {FILLER_BYTES} bytes")]
    TruncatedFiller { have: usize },
    #[error("the log ends ({how}) before the durable point")]
    LogEndsEarly { how: &'static str },
}

/// Corruption found at or below the durable point: the group must not serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub struct Corruption {
    /// The segment file.
    pub segment: SegmentName,
    /// Byte offset inside the segment file.
    pub offset: u64,
    /// The same place as a log position.
    pub pos: u64,
    /// The index the scan expected there.
    pub expected_index: u64,
    pub damage: Damage,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "corruption in segment file {} at byte offset {} (log pos {}, expected index {}), \
             at or below the durable checkpoint: {}",
            self.segment, self.offset, self.pos, self.expected_index, self.damage
        )
    }
}

/// Why a scan failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ScanError {
    #[error(transparent)]
    Corruption(#[from] Corruption),
    #[error(
        "scan input of {bytes} bytes from pos {pos} runs past the end of its segment \
         ({segment_remaining} bytes left)"
    )]
    InputBeyondSegment {
        pos: u64,
        bytes: u64,
        segment_remaining: u64,
    },
    #[error("scan start pos {pos} lies in the last segment of the address space")]
    PositionOverflow { pos: u64 },
}

/// Why a scan stopped without an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanStop {
    /// Zeros where the next record would be: the clean end of the log.
    Zeros,
    /// The file's bytes ended exactly after the last record: the clean end of the log.
    EndOfFile,
    /// A filler, or too few bytes for one, or the last record filled the segment: the
    /// log continues at the next segment's start (`ScanEnd::next.pos`).
    SegmentEnd,
    /// The bytes ran out inside a record while more of the file follows: scan again from
    /// `ScanEnd::next` with bytes that start there.
    NeedMoreInput,
    /// Damage above the durable point: a torn or unsynced tail. The caller truncates
    /// the log at `ScanEnd::end_pos` before appending (chained headers keep the stale
    /// bytes past it from being re-linked later).
    TornTail(Damage),
}

/// Where a scan ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanEnd {
    /// End of the last valid record in this segment (where the valid data ends).
    pub end_pos: u64,
    /// How many records were validated (and reported).
    pub records: u64,
    pub stop: ScanStop,
    /// Where and with what chain state to go on: the next segment's start for
    /// `SegmentEnd`, otherwise `end_pos` (for a clean end or torn tail: the next append).
    pub next: LogCursor,
}

/// Validates the records in `bytes` (which start at `input.start.pos` and must not run
/// past that position's segment), calling `on_record` for each whole valid record, in
/// order. See the module documentation for the rules.
pub fn scan_segment(
    bytes: &[u8],
    input: &ScanInput,
    mut on_record: impl FnMut(&RecordHeader),
) -> Result<ScanEnd, ScanError> {
    let g = input.geometry;
    let start_pos = input.start.pos;
    let seg_start = g.segment_start(start_pos);
    let seg_end = seg_start
        .checked_add(g.segment_bytes())
        .ok_or(ScanError::PositionOverflow { pos: start_pos })?;
    if bytes.len() as u64 > seg_end - start_pos {
        return Err(ScanError::InputBeyondSegment {
            pos: start_pos,
            bytes: bytes.len() as u64,
            segment_remaining: seg_end - start_pos,
        });
    }

    let mut cursor = input.start;
    let mut records = 0u64;

    let stop = loop {
        // `cursor.pos - start_pos <= bytes.len()`: a record is taken only once whole.
        let rest = &bytes[(cursor.pos - start_pos) as usize..];
        let remaining = seg_end - cursor.pos;
        match next_step(rest, remaining, &cursor, input) {
            Step::Record(header) => {
                debug_assert!(header.record_bytes() <= rest.len() as u64);
                on_record(&header);
                records += 1;
                cursor.advance(&header);
            }
            Step::Stop(stop) => break stop,
        }
    };
    let pos = cursor.pos;
    let next_index = cursor.next_index;

    // Decide whether stopping here is allowed.
    let below_durable = pos < input.protected_end_pos || next_index <= input.protected_index;
    let verdict = match stop {
        ScanStop::NeedMoreInput => None,
        ScanStop::SegmentEnd => {
            // The durable end is a record boundary; it cannot lie inside the filler.
            (input.protected_end_pos > pos && input.protected_end_pos < seg_end)
                .then_some(Damage::LogEndsEarly { how: "segment end" })
        }
        ScanStop::Zeros => below_durable.then_some(Damage::LogEndsEarly { how: "zeros" }),
        ScanStop::EndOfFile => below_durable.then_some(Damage::LogEndsEarly { how: "end of file" }),
        ScanStop::TornTail(damage) => below_durable.then_some(damage),
    };
    if let Some(damage) = verdict {
        return Err(ScanError::Corruption(Corruption {
            segment: SegmentName(seg_start),
            offset: pos - seg_start,
            pos,
            expected_index: next_index,
            damage,
        }));
    }
    let next_pos = if stop == ScanStop::SegmentEnd {
        seg_end
    } else {
        pos
    };
    Ok(ScanEnd {
        end_pos: pos,
        records,
        stop,
        next: LogCursor {
            pos: next_pos,
            ..cursor
        },
    })
}

enum Step {
    Record(RecordHeader),
    Stop(ScanStop),
}

/// Looks at the bytes at `pos` (`rest`, with `remaining` bytes left in the segment) and
/// says whether a valid next record is there or why the scan stops.
fn next_step(rest: &[u8], remaining: u64, cursor: &LogCursor, input: &ScanInput) -> Step {
    let more_follows = !input.input_is_file_end;
    let torn = |d: Damage| Step::Stop(ScanStop::TornTail(d));
    if rest.is_empty() {
        return Step::Stop(if remaining == 0 {
            ScanStop::SegmentEnd
        } else if more_follows {
            ScanStop::NeedMoreInput
        } else {
            ScanStop::EndOfFile
        });
    }
    if remaining < FILLER_BYTES as u64 {
        // Too short for a filler: no record can start here, so the writer moved on to
        // the next segment without writing anything. Whatever these bytes hold (zeros,
        // or stale bytes of a recycled file) carries no data and is not checked.
        return Step::Stop(ScanStop::SegmentEnd);
    }

    // Decide nothing on fewer bytes than a header (or the segment's rest) while more
    // of the file follows.
    let header_probe = usize::try_from(remaining).map_or(HEADER_BYTES, |r| r.min(HEADER_BYTES));
    if rest.len() < header_probe && more_follows {
        return Step::Stop(ScanStop::NeedMoreInput);
    }

    // Zeros: the unwritten part of a preallocated segment.
    let probe_len = rest.len().min(header_probe);
    if rest[..probe_len].iter().all(|&b| b == 0) {
        return Step::Stop(ScanStop::Zeros);
    }

    // End-of-segment filler.
    if rest.len() >= 4 && rest[..4] == FILLER_MAGIC.to_be_bytes() {
        return match read_filler(rest) {
            Some(len) if u64::from(len) == remaining => Step::Stop(ScanStop::SegmentEnd),
            Some(len) => torn(Damage::BadFiller {
                found: len,
                expected: remaining,
            }),
            None => torn(Damage::TruncatedFiller { have: rest.len() }),
        };
    }

    // A record header.
    if remaining < HEADER_BYTES_U64 {
        return torn(Damage::GarbageAtSegmentEnd { remaining });
    }
    if rest.len() < HEADER_BYTES {
        // Only at the end of the file (checked above).
        return torn(Damage::Record(DecodeError::Truncated {
            needed: HEADER_BYTES_U64,
            have: rest.len() as u64,
        }));
    }
    let header = match decode_header(rest, input.max_record_bytes) {
        Ok(h) => h,
        Err(e) => return torn(Damage::Record(e)),
    };
    if header.pos != cursor.pos {
        return torn(Damage::Chain(ChainError::PosMismatch {
            found: header.pos,
            expected: cursor.pos,
        }));
    }
    if let Err(e) = cursor.check_chain(&header) {
        return torn(Damage::Chain(e));
    }
    if header.record_bytes() > remaining {
        return torn(Damage::CrossesSegmentEnd {
            record_bytes: header.record_bytes(),
            remaining,
        });
    }
    let body = match record_body(&header, rest) {
        Ok(body) => body,
        Err(_) if more_follows => return Step::Stop(ScanStop::NeedMoreInput),
        Err(e) => return torn(Damage::Record(e)),
    };
    match verify_body(&header, body) {
        Ok(()) => Step::Record(header),
        Err(e) => torn(Damage::Record(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::{RecordKind, encode_record};
    use crate::store::segment::encode_filler;

    const MAX: u32 = 1024;

    /// Appends records to an in-memory copy of a few zeroed segments, the way the disk
    /// layer lays them out (fillers included).
    struct Image {
        g: SegmentGeometry,
        bytes: Vec<u8>,
        end: u64,
        cursor: LogCursor,
        headers: Vec<RecordHeader>,
    }

    impl Image {
        fn new(segment_bytes: u64, segments: usize) -> Self {
            Image {
                g: SegmentGeometry::new(segment_bytes).unwrap(),
                bytes: vec![0; segment_bytes as usize * segments],
                end: 0,
                cursor: LogCursor::empty_at(0),
                headers: Vec::new(),
            }
        }

        fn append(&mut self, term: u64, body: &[u8]) {
            let (place, h) = self
                .cursor
                .next_header(&self.g, RecordKind::Normal, term, body)
                .unwrap();
            if let Some(f) = place.filler {
                encode_filler(f.len, &mut self.bytes[f.pos as usize..]).unwrap();
            }
            encode_record(&h, body, &mut self.bytes[h.pos as usize..]).unwrap();
            self.cursor.advance(&h);
            self.end = h.end_pos();
            self.headers.push(h);
        }

        /// Rewinds the writer to just after the first `keep` records, as a Raft
        /// truncation or a torn-tail recovery does, without zeroing what follows.
        fn rewind(&mut self, keep: usize) {
            self.headers.truncate(keep);
            self.cursor = match self.headers.last() {
                None => LogCursor::empty_at(0),
                Some(h) => LogCursor {
                    pos: h.end_pos(),
                    next_index: h.index + 1,
                    last_term: h.term,
                    last_crc: h.header_crc(),
                },
            };
            self.end = self.cursor.pos;
        }

        fn input(
            &self,
            start: LogCursor,
            protected_end_pos: u64,
            protected_index: u64,
        ) -> ScanInput {
            ScanInput {
                geometry: self.g,
                start,
                max_record_bytes: MAX,
                protected_end_pos,
                protected_index,
                input_is_file_end: true,
            }
        }
    }

    fn scan(bytes: &[u8], input: &ScanInput) -> (Result<ScanEnd, ScanError>, Vec<RecordHeader>) {
        let mut seen = Vec::new();
        let r = scan_segment(bytes, input, |h| seen.push(*h));
        (r, seen)
    }

    const START: LogCursor = LogCursor {
        pos: 0,
        next_index: 1,
        last_term: 0,
        last_crc: 0,
    };

    #[test]
    fn clean_end_at_zeros_and_filler_to_next_segment() {
        let mut img = Image::new(4096, 2);
        for i in 0..40u64 {
            img.append(1 + i / 10, &[i as u8; 50]);
        }
        // 98 bytes per record: 41 fit in the first segment, so all 40 are in segment 0.
        let (r, seen) = scan(&img.bytes[..4096], &img.input(START, 0, 0));
        let end = r.unwrap();
        assert_eq!(seen, img.headers);
        assert_eq!(end.stop, ScanStop::Zeros);
        assert_eq!(end.end_pos, img.end);
        assert_eq!(end.next.next_index, 41);

        // Two more: the second goes to segment 1 behind a filler.
        img.append(5, &[1; 50]);
        img.append(5, &[2; 50]);
        let (r, seen) = scan(&img.bytes[..4096], &img.input(START, 0, 0));
        let end = r.unwrap();
        assert_eq!(seen.len(), 41);
        assert_eq!(end.stop, ScanStop::SegmentEnd);
        assert_eq!(end.next.pos, 4096);
        let (r, seen) = scan(&img.bytes[4096..], &img.input(end.next, 0, 0));
        let end2 = r.unwrap();
        assert_eq!(seen, img.headers[41..]);
        assert_eq!(end2.stop, ScanStop::Zeros);
        assert_eq!(end2.end_pos, img.end);
    }

    #[test]
    fn torn_tail_above_durable_point_is_truncated() {
        let mut img = Image::new(4096, 1);
        for _ in 0..5 {
            img.append(2, b"payload");
        }
        let cut = img.headers[3].end_pos() as usize + 20;
        let (r, seen) = scan(
            &img.bytes[..cut],
            &img.input(START, img.headers[1].end_pos(), 2),
        );
        let end = r.unwrap();
        assert_eq!(seen, img.headers[..4]);
        assert!(matches!(
            end.stop,
            ScanStop::TornTail(Damage::Record(DecodeError::Truncated { .. }))
        ));
        assert_eq!(end.end_pos, img.headers[3].end_pos());

        // Same cut, but more of the file follows: ask for more.
        let mut input = img.input(START, 0, 0);
        input.input_is_file_end = false;
        let (r, _) = scan(&img.bytes[..cut], &input);
        let end = r.unwrap();
        assert_eq!(end.stop, ScanStop::NeedMoreInput);
        assert_eq!(end.next.pos, img.headers[3].end_pos());
        assert_eq!(end.next.next_index, 5);
        let (r, seen) = scan(
            &img.bytes[end.next.pos as usize..],
            &img.input(end.next, 0, 0),
        );
        assert_eq!(r.unwrap().stop, ScanStop::Zeros);
        assert_eq!(seen, img.headers[4..]);
    }

    #[test]
    fn damage_below_durable_point_names_file_and_offset() {
        let mut img = Image::new(4096, 2);
        for _ in 0..60 {
            img.append(3, &[7; 40]);
        }
        let victim = img.headers[50];
        assert!(victim.pos > 4096, "victim must be in segment 1");
        img.bytes[victim.pos as usize + 60] ^= 0x10; // inside the body
        let start = LogCursor {
            pos: 4096,
            next_index: img.headers.iter().position(|h| h.pos >= 4096).unwrap() as u64 + 1,
            last_term: 3,
            last_crc: 0,
        };
        let (r, _) = scan(&img.bytes[4096..], &img.input(start, img.end, 60));
        let err = r.unwrap_err();
        let ScanError::Corruption(c) = err else {
            panic!("{err:?}")
        };
        assert_eq!(c.segment.to_string(), "00000000000000004096");
        assert_eq!(c.offset, victim.pos - 4096);
        assert_eq!(c.expected_index, 51);
        assert!(matches!(
            c.damage,
            Damage::Record(DecodeError::BodyCrc { .. })
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("00000000000000004096") && msg.contains(&c.offset.to_string()),
            "{msg}"
        );

        // The same flip above the durable point is a torn tail.
        let (r, seen) = scan(&img.bytes[4096..], &img.input(start, victim.pos, 50));
        let end = r.unwrap();
        assert_eq!(end.end_pos, victim.pos);
        assert_eq!(seen.last().unwrap().index, 50);
    }

    #[test]
    fn log_ending_before_durable_point_is_corruption() {
        let mut img = Image::new(4096, 1);
        for _ in 0..3 {
            img.append(1, b"x");
        }
        // Checkpoint claims 4 durable entries: the log ends early.
        let (r, _) = scan(&img.bytes, &img.input(START, img.end, 4));
        assert!(matches!(
            r,
            Err(ScanError::Corruption(Corruption {
                damage: Damage::LogEndsEarly { how: "zeros" },
                ..
            }))
        ));
        // Exactly at the durable point: fine.
        let (r, _) = scan(&img.bytes, &img.input(START, img.end, 3));
        assert_eq!(r.unwrap().records, 3);
    }

    #[test]
    fn chain_rules() {
        let mut img = Image::new(4096, 1);
        img.append(4, b"a");
        img.append(4, b"b");
        // Expected index differs from the first record's.
        let s = LogCursor {
            pos: 0,
            next_index: 2,
            last_term: 0,
            last_crc: 0,
        };
        let (r, seen) = scan(&img.bytes, &img.input(s, 0, 0));
        assert!(seen.is_empty());
        assert!(matches!(
            r.unwrap().stop,
            ScanStop::TornTail(Damage::Chain(ChainError::IndexGap {
                found: 1,
                expected: 2
            }))
        ));
        // Term going back.
        let s = LogCursor {
            pos: 0,
            next_index: 1,
            last_term: 5,
            last_crc: 0,
        };
        let (r, _) = scan(&img.bytes, &img.input(s, 0, 0));
        assert!(matches!(
            r.unwrap().stop,
            ScanStop::TornTail(Damage::Chain(ChainError::TermWentBack { .. }))
        ));
        // Record found at a place other than its pos (e.g. stale bytes of a recycled file).
        let second = img.headers[1];
        let shifted = &img.bytes[second.pos as usize..];
        let s = LogCursor {
            pos: 8192 + second.pos,
            next_index: 2,
            last_term: 4,
            last_crc: 0,
        };
        let mut input = img.input(s, 0, 0);
        input.geometry = SegmentGeometry::new(8192 * 2).unwrap();
        let (r, _) = scan(&shifted[..100], &input);
        assert!(matches!(
            r.unwrap().stop,
            ScanStop::TornTail(Damage::Chain(ChainError::PosMismatch { .. }))
        ));
    }

    #[test]
    fn stale_records_are_not_relinked_behind_a_rewritten_one() {
        // Entries 3 and 4 (term 2) were written, then Raft truncated from 3 and the new
        // leader's entry 3 (term 2, same size) went over the old one, leaving old 4
        // in place. Old 4 lines up in index, term and pos; only its chain link is wrong.
        let mut img = Image::new(4096, 1);
        img.append(1, b"one");
        img.append(1, b"two");
        img.append(2, b"old three");
        img.append(2, b"old four");
        let old_four = img.headers[3];
        img.rewind(2);
        img.append(2, b"new three");
        assert_eq!(img.headers[2].end_pos(), old_four.pos);
        let (r, seen) = scan(&img.bytes, &img.input(START, 0, 0));
        assert_eq!(seen, img.headers);
        assert!(matches!(
            r.unwrap().stop,
            ScanStop::TornTail(Damage::Chain(ChainError::PrevCrcMismatch { .. }))
        ));
    }

    #[test]
    fn input_past_segment_end_is_rejected() {
        let img = Image::new(4096, 2);
        let (r, _) = scan(&img.bytes, &img.input(START, 0, 0));
        assert!(matches!(r, Err(ScanError::InputBeyondSegment { .. })));
    }

    /// Fills segment 0 up to a filler at 4049 (47 bytes left), then one record in 1.
    fn image_with_short_filler() -> Image {
        let mut img = Image::new(4096, 2);
        // 4049 = 31 records of 127 bytes (48 + 79) + 112 bytes (48 + 64).
        for _ in 0..31 {
            img.append(1, &[3; 79]);
        }
        img.append(1, &[4; 64]);
        assert_eq!(img.end, 4049);
        img.append(1, b"next segment");
        assert_eq!(img.headers[32].pos, 4096);
        img
    }

    #[test]
    fn chunk_ending_inside_a_filler_asks_for_more() {
        let img = image_with_short_filler();
        let mut input = img.input(START, 0, 0);
        input.input_is_file_end = false;
        for cut in 4049..4049 + 48 {
            let (r, seen) = scan(&img.bytes[..cut], &input);
            let end = r.unwrap();
            assert_eq!(seen.len(), 32);
            let want = if cut == 4096 {
                ScanStop::SegmentEnd
            } else {
                ScanStop::NeedMoreInput
            };
            assert_eq!(end.stop, want, "cut {cut}");
        }
        // At the file's end, a filler cut short is a torn tail.
        let (r, _) = scan(&img.bytes[..4053], &img.input(START, 0, 0));
        assert_eq!(
            r.unwrap().stop,
            ScanStop::TornTail(Damage::TruncatedFiller { have: 4 })
        );
    }

    #[test]
    fn durable_point_inside_a_filler_is_corruption() {
        let img = image_with_short_filler();
        // A checkpoint claiming data up to 4060 cannot be right: 4049.. is a filler.
        let (r, _) = scan(&img.bytes[..4096], &img.input(START, 4060, 0));
        assert!(matches!(
            r,
            Err(ScanError::Corruption(Corruption {
                offset: 4049,
                damage: Damage::LogEndsEarly { how: "segment end" },
                ..
            }))
        ));
        // A durable point at the next segment's start is fine here.
        let (r, _) = scan(&img.bytes[..4096], &img.input(START, 4096, 32));
        assert_eq!(r.unwrap().next.pos, 4096);
    }

    #[test]
    fn bad_filler_length_is_damage() {
        let mut img = image_with_short_filler();
        img.bytes[4049 + 7] ^= 1;
        let (r, seen) = scan(&img.bytes[..4096], &img.input(START, 0, 0));
        assert_eq!(seen.len(), 32);
        assert!(matches!(
            r.unwrap().stop,
            ScanStop::TornTail(Damage::BadFiller { expected: 47, .. })
        ));
    }
}

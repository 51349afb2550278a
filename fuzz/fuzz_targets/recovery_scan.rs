//! The recovery scan (`dledger::store::scan_segment`) and the state-file decoders.
//!
//! Input: `u8 mode | u8 chunk | u8 durable | bytes`.
//! - Mode bit 0 clear: `bytes` drive a log image. They are cut into entries (u8 length,
//!   body) laid out as valid records the way the disk layer writes them, then the
//!   trailing bytes are XORed over the image. The image is scanned segment by segment,
//!   in chunks, with a checkpoint whose durable point is `durable` records in. Checked:
//!   every record the scan accepts is exactly the record written there (damage never
//!   yields a wrong record), in order; a corruption error is reported only at or below
//!   the durable point.
//! - Mode bit 0 set: `bytes` are a segment as found on disk (anything at all), scanned
//!   from a start cursor built from the first bytes; plus the checkpoint, hard-state
//!   and index-entry decoders on the same bytes. Checked: no panic, the scan ends
//!   inside the input, and records are reported in index order.
#![no_main]

use dledger::store::{
    Checkpoint, HARD_STATE_FILE_BYTES, INDEX_ENTRY_BYTES, LogCursor, RecordHeader, RecordKind,
    ScanError, ScanInput, ScanStop, SegmentGeometry, decode_checkpoint, decode_checkpoint_file,
    decode_hard_state, decode_hard_state_file, decode_index_entry, encode_filler, encode_record,
    scan_segment,
};
use libfuzzer_sys::fuzz_target;

const SEGMENT_BYTES: u64 = 4096;
const SEGMENTS: usize = 3;
const MAX_RECORD_BYTES: u32 = 512;

fn cursor_after(headers: &[RecordHeader], k: usize) -> LogCursor {
    match k.checked_sub(1).map(|i| headers[i]) {
        None => LogCursor::empty_at(0),
        Some(h) => LogCursor {
            pos: h.end_pos(),
            next_index: h.index + 1,
            last_term: h.term,
            last_crc: h.header_crc(),
        },
    }
}

fn structured(chunk: usize, durable: usize, bytes: &[u8]) {
    let g = SegmentGeometry::new(SEGMENT_BYTES).expect("a valid segment size");
    let mut image = vec![0u8; SEGMENT_BYTES as usize * SEGMENTS];
    let mut headers: Vec<RecordHeader> = Vec::new();
    let mut cursor = LogCursor::empty_at(0);
    let mut rest = bytes;
    let limit = SEGMENT_BYTES * (SEGMENTS as u64 - 1);
    let mut term = 1;
    // Entries until a zero length byte or the input ends.
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0 {
            rest = tail;
            break;
        }
        let body_len = usize::from(len - 1).min(tail.len());
        let (body, tail) = tail.split_at(body_len);
        rest = tail;
        term += u64::from(len % 7 == 0);
        let kind = if body.is_empty() {
            RecordKind::Noop
        } else {
            RecordKind::Normal
        };
        let (place, header) = cursor
            .next_header(&g, kind, term, body)
            .expect("a fresh entry continues the log");
        if header.end_pos() > limit {
            break;
        }
        if let Some(f) = place.filler {
            encode_filler(f.len, &mut image[f.pos as usize..]).expect("filler fits");
        }
        encode_record(&header, body, &mut image[header.pos as usize..]).expect("record fits");
        headers.push(header);
        cursor.advance(&header);
    }
    // Damage: the remaining bytes, XORed over the image from a position they choose.
    if rest.len() >= 2 {
        let at = usize::from(u16::from_be_bytes([rest[0], rest[1]])) % image.len();
        for (i, b) in rest[2..].iter().enumerate() {
            if let Some(slot) = image.get_mut(at + i) {
                *slot ^= b;
            }
        }
    }
    let durable = durable.min(headers.len());
    let cp = Checkpoint {
        scan_from: LogCursor::empty_at(0),
        durable: cursor_after(&headers, durable),
        commit_index: durable as u64,
    };
    let chunk = chunk.max(MAX_RECORD_BYTES as usize);
    let mut seen: Vec<RecordHeader> = Vec::new();
    let mut start = cp.scan_from;
    let outcome = loop {
        let seg = (start.pos / SEGMENT_BYTES) as usize;
        let file = image
            .get(seg * SEGMENT_BYTES as usize..(seg + 1) * SEGMENT_BYTES as usize)
            .unwrap_or(&[]);
        let from = ((start.pos - g.segment_start(start.pos)) as usize).min(file.len());
        let to = (from + chunk).min(file.len());
        let input = ScanInput {
            start,
            input_is_file_end: to == file.len(),
            ..cp.scan_input(g, MAX_RECORD_BYTES)
        };
        match scan_segment(&file[from..to], &input, |h| seen.push(*h)) {
            Err(e) => break Err(e),
            Ok(end) => match end.stop {
                ScanStop::NeedMoreInput => {
                    assert!(end.records > 0, "a chunk of a whole record makes progress");
                    start = end.next;
                }
                ScanStop::SegmentEnd if seg + 1 < SEGMENTS => start = end.next,
                _ => break Ok(end),
            },
        }
    };
    // Whatever the damage, an accepted record is the one written at its place.
    for (i, h) in seen.iter().enumerate() {
        if let Some(written) = headers.get(i) {
            assert_eq!(h, written, "record {i} accepted with other content");
        } else {
            // Past the written log only damage could be read, and it must not chain.
            panic!(
                "the scan accepted record {i}, beyond the {} written",
                headers.len()
            );
        }
    }
    if let Err(ScanError::Corruption(c)) = outcome {
        assert!(
            c.pos <= cp.durable.pos || c.expected_index <= cp.durable_index(),
            "corruption reported above the durable point: {c}"
        );
    }
}

fn raw(bytes: &[u8]) {
    let _ = decode_checkpoint(bytes);
    let _ = decode_hard_state(bytes);
    // The two-slot file: the input fills it from the start (the rest stays zero, as an
    // unwritten slot does).
    let mut file = [0u8; HARD_STATE_FILE_BYTES];
    let n = bytes.len().min(HARD_STATE_FILE_BYTES);
    file[..n].copy_from_slice(&bytes[..n]);
    let _ = decode_hard_state_file(&file);
    let _ = decode_hard_state_file(bytes);
    let _ = decode_checkpoint_file(&file);
    let _ = decode_checkpoint_file(bytes);
    if bytes.len() >= INDEX_ENTRY_BYTES {
        let _ = decode_index_entry(&bytes[..INDEX_ENTRY_BYTES], MAX_RECORD_BYTES);
    }
    if bytes.len() < 9 {
        return;
    }
    let segment_bytes = 4096 * (1 + u64::from(bytes[0] % 4));
    let g = SegmentGeometry::new(segment_bytes).expect("a valid segment size");
    let offset = u64::from(u16::from_be_bytes([bytes[1], bytes[2]])) % segment_bytes;
    let start = LogCursor {
        pos: segment_bytes * u64::from(bytes[3] % 3) + offset,
        next_index: 1 + u64::from(bytes[4]),
        last_term: u64::from(bytes[5]),
        last_crc: 0,
    };
    let seg = &bytes[9..];
    let seg = &seg[..seg.len().min((segment_bytes - offset) as usize)];
    let input = ScanInput {
        geometry: g,
        start,
        max_record_bytes: 64 + u32::from(bytes[6]) * 16,
        protected_end_pos: start.pos + u64::from(bytes[7]) * 8,
        protected_index: start.next_index + u64::from(bytes[8] % 4),
        input_is_file_end: bytes[8] & 0x80 != 0,
    };
    let mut next_index = start.next_index;
    if let Ok(end) = scan_segment(seg, &input, |h| {
        assert_eq!(h.index, next_index);
        next_index += 1;
    }) {
        assert!(end.end_pos >= start.pos && end.end_pos - start.pos <= seg.len() as u64);
        assert_eq!(end.next.next_index, next_index);
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    if data[0] & 1 == 0 {
        structured(usize::from(data[1]) * 16, usize::from(data[2]), &data[3..]);
    } else {
        raw(&data[3..]);
    }
});

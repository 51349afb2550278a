//! Recovery: read the segments of a group and find where its log really ends.
//!
//! Walks the records from the first segment on, checking every header and body CRC,
//! that each record sits at the position it names, that indexes follow one another
//! and that terms never go down. The first record that fails ends the log: past the
//! durable commit point that is a torn or unsynced tail (truncated by the caller);
//! at or below it, corruption (the caller refuses to open).

use std::collections::VecDeque;
use std::path::PathBuf;

use dledger::raft::TermRun;
use dledger::store::record::{HEADER_BYTES, decode_header, verify_body};
use dledger::store::segment::{FILLER_BYTES, SegmentGeometry, read_filler};
use glommio::io::{DmaFile, ReadResult};

use super::error::DiskError;
use super::files::GroupPaths;

/// Bytes read per window while scanning.
const SCAN_WINDOW_BYTES: u64 = 1 << 20;

/// Why the scan stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ScanEnd {
    /// An all-zero header, the end of a segment file, or no more segments.
    Clean,
    /// A record that fails a check (torn write, stale bytes, flipped bit).
    Bad { reason: String },
}

/// What the scan found.
#[derive(Debug)]
pub(crate) struct Scanned {
    pub first_index: u64,
    /// Position of each record, `first_index` first.
    pub positions: VecDeque<u64>,
    pub term_runs: Vec<TermRun>,
    /// Where the next record goes (just past the last good one).
    pub end_pos: u64,
    pub end: ScanEnd,
    /// File and in-file offset where the scan stopped.
    pub end_file: PathBuf,
    pub end_offset: u64,
}

impl Scanned {
    pub(crate) fn last_index(&self) -> u64 {
        self.first_index + self.positions.len() as u64 - 1
    }
}

/// A window of one segment file read with direct I/O.
pub(crate) struct SegmentReader<'a> {
    file: &'a DmaFile,
    seg_bytes: u64,
    win_start: u64,
    win: Option<ReadResult>,
}

impl<'a> SegmentReader<'a> {
    pub(crate) fn new(file: &'a DmaFile, seg_bytes: u64) -> Self {
        SegmentReader {
            file,
            seg_bytes,
            win_start: 0,
            win: None,
        }
    }

    /// Bytes `[off, off + n)` of the segment; fewer when the file ends first.
    pub(crate) async fn get(&mut self, off: u64, n: usize) -> Result<&[u8], String> {
        let end = (off + n as u64).min(self.seg_bytes);
        let have = self.win.as_ref().map_or(0, |w| w.len() as u64);
        let in_window = off >= self.win_start && end <= self.win_start + have;
        // Also re-read when the window ended early only because the file did.
        if !in_window {
            let start = self.file.align_down(off);
            let len = self
                .file
                .align_up((end - start).max(SCAN_WINDOW_BYTES))
                .min(self.seg_bytes - start);
            let r = self
                .file
                .read_at_aligned(start, len as usize)
                .await
                .map_err(|e| format!("read at {start}: {e}"))?;
            self.win_start = start;
            self.win = Some(r);
        }
        let w = self.win.as_ref().map_or(&[][..], |w| &w[..]);
        let from = ((off - self.win_start) as usize).min(w.len());
        let to = ((end - self.win_start) as usize).min(w.len());
        Ok(&w[from..to])
    }
}

/// Scans the segments `starts` (ascending, contiguous) of a group.
pub(crate) async fn scan(
    paths: &GroupPaths,
    geometry: &SegmentGeometry,
    starts: &[u64],
    max_record_bytes: u32,
) -> Result<Scanned, DiskError> {
    let seg_bytes = geometry.segment_bytes();
    let mut out = Scanned {
        first_index: 1,
        positions: VecDeque::new(),
        term_runs: Vec::new(),
        end_pos: starts.first().copied().unwrap_or(0),
        end: ScanEnd::Clean,
        end_file: paths.segment(starts.first().copied().unwrap_or(0)),
        end_offset: 0,
    };
    let mut last_term = 0u64;
    'segments: for (k, &start) in starts.iter().enumerate() {
        let path = paths.segment(start);
        if k > 0 && start != out.end_pos {
            // The previous segment ended early: this one must hold no records.
            break;
        }
        let file = super::files::open_dma(&path, false, false).await?;
        let mut reader = SegmentReader::new(&file, seg_bytes);
        let mut off = 0u64;
        out.end_file = path.clone();
        loop {
            out.end_pos = start + off;
            out.end_offset = off;
            let remaining = seg_bytes - off;
            if remaining < FILLER_BYTES as u64 {
                out.end_pos = start + seg_bytes;
                break;
            }
            let bad = |reason: String| ScanEnd::Bad { reason };
            let head = reader
                .get(off, HEADER_BYTES)
                .await
                .map_err(|e| DiskError::io("read segment", &path, e))?;
            if head.len() < FILLER_BYTES || head.iter().all(|&b| b == 0) {
                out.end = ScanEnd::Clean;
                break 'segments;
            }
            if let Some(filler_len) = read_filler(head) {
                if u64::from(filler_len) == remaining {
                    out.end_pos = start + seg_bytes;
                    break;
                }
                out.end = bad(format!(
                    "filler says {filler_len} bytes remain, the segment has {remaining}"
                ));
                break 'segments;
            }
            let header = match decode_header(head, max_record_bytes) {
                Ok(h) => h,
                Err(e) => {
                    out.end = bad(format!("record header: {e}"));
                    break 'segments;
                }
            };
            let expected_index = if out.positions.is_empty() {
                header.index
            } else {
                out.last_index() + 1
            };
            if header.pos != start + off
                || header.index != expected_index
                || header.term < last_term
            {
                out.end = bad(format!(
                    "record (index {}, term {}, pos {}) does not continue the log \
                     (expected index {expected_index}, pos {}, term >= {last_term})",
                    header.index,
                    header.term,
                    header.pos,
                    start + off
                ));
                break 'segments;
            }
            if header.record_bytes() > remaining {
                out.end = bad(format!(
                    "record of {} bytes crosses the segment end",
                    header.record_bytes()
                ));
                break 'segments;
            }
            let whole = reader
                .get(off, header.record_bytes() as usize)
                .await
                .map_err(|e| DiskError::io("read segment", &path, e))?;
            if let Err(e) = verify_body(&header, &whole[HEADER_BYTES.min(whole.len())..]) {
                out.end = bad(format!("record index {}: {e}", header.index));
                break 'segments;
            }
            if out.positions.is_empty() {
                out.first_index = header.index;
            }
            if header.term != last_term {
                out.term_runs.push(TermRun {
                    first_index: header.index,
                    term: header.term,
                });
                last_term = header.term;
            }
            out.positions.push_back(header.pos);
            off += header.record_bytes();
        }
        file.close()
            .await
            .map_err(|e| DiskError::io("close", &path, e))?;
    }
    Ok(out)
}

//! Recovery I/O: read the segments of a group and feed them to the store's recovery
//! scan (`dledger::store::recovery::scan_segment`), which checks every record (CRCs,
//! position, index, term, chain) and decides where the log ends. Damage past the
//! checkpoint's durable point is a torn or unsynced tail (the caller truncates it);
//! at or below it, corruption (the caller refuses to open, naming file and offset).

use std::collections::VecDeque;
use std::path::PathBuf;

use dledger::raft::TermRun;
use dledger::store::cursor::LogCursor;
use dledger::store::index::IndexEntry;
use dledger::store::record::{HEADER_BYTES, decode_header};
use dledger::store::recovery::{ScanError, ScanInput, ScanStop, scan_segment};
use dledger::store::segment::SegmentGeometry;
use dledger::store::state::Checkpoint;
use glommio::io::{DmaFile, ReadResult};

use super::error::DiskError;
use super::files::GroupPaths;
use super::index::DenseIndex;

/// Bytes read per window while scanning.
const SCAN_WINDOW_BYTES: u64 = 1 << 20;

/// What the scan found.
#[derive(Debug)]
pub(crate) struct Scanned {
    pub first_index: u64,
    /// Position of each record, `first_index` first.
    pub positions: VecDeque<u64>,
    pub term_runs: Vec<TermRun>,
    /// The end of the log: where the next record goes and what it chains to.
    pub end: LogCursor,
    /// Damage past the durable point that ended the log (a torn or unsynced tail):
    /// file, offset in it, what was wrong.
    pub torn: Option<(PathBuf, u64, String)>,
    /// Index entries of the records the scan read (from `scanned_from` on); the ones
    /// before came from the dense index.
    pub entries: Vec<IndexEntry>,
    pub scanned_from: u64,
}

/// A window of one segment file read with direct I/O.
pub(crate) struct SegmentReader<'a> {
    file: &'a DmaFile,
    seg_bytes: u64,
    min_read_bytes: u64,
    win_start: u64,
    win: Option<ReadResult>,
}

impl<'a> SegmentReader<'a> {
    /// A reader for sequential scans: reads at least 1 MiB at a time.
    pub(crate) fn new(file: &'a DmaFile, seg_bytes: u64) -> Self {
        Self::with_min_read(file, seg_bytes, SCAN_WINDOW_BYTES)
    }

    /// A reader for one record: reads at least a page, no more than the record needs.
    pub(crate) fn for_point_read(file: &'a DmaFile, seg_bytes: u64) -> Self {
        Self::with_min_read(file, seg_bytes, 4096)
    }

    fn with_min_read(file: &'a DmaFile, seg_bytes: u64, min_read_bytes: u64) -> Self {
        SegmentReader {
            file,
            seg_bytes,
            min_read_bytes,
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
                .align_up((end - start).max(self.min_read_bytes))
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

/// The cursor a scan of the group starts from: the start of the first segment file.
/// After retention deleted older segments its first record's predecessor is gone, so
/// the chain link is not known (0: any link accepted) and the index comes from the
/// first header.
async fn start_cursor(
    paths: &GroupPaths,
    first_segment: u64,
    max_record_bytes: u32,
) -> Result<LogCursor, DiskError> {
    if first_segment == 0 {
        return Ok(LogCursor::empty_at(0));
    }
    let path = paths.segment(first_segment);
    let file = super::files::open_dma(&path, false, false).await?;
    let mut reader = SegmentReader::for_point_read(&file, u64::from(max_record_bytes).max(4096));
    let head = reader
        .get(0, HEADER_BYTES)
        .await
        .map_err(|e| DiskError::io("read segment", &path, e))?
        .to_vec();
    file.close()
        .await
        .map_err(|e| DiskError::io("close", &path, e))?;
    if head.iter().all(|&b| b == 0) {
        return Ok(LogCursor::empty_at(first_segment));
    }
    let h = decode_header(&head, max_record_bytes).map_err(|e| DiskError::Corruption {
        file: path.clone(),
        offset: 0,
        reason: format!("first record of the oldest segment: {e}"),
    })?;
    Ok(LogCursor {
        pos: first_segment,
        next_index: h.index,
        last_term: 0,
        last_crc: 0,
    })
}

/// Scans the segments `starts` (ascending, contiguous) of a group with the store's
/// recovery scan, protecting everything the checkpoint records as durable.
pub(crate) async fn scan(
    paths: &GroupPaths,
    geometry: &SegmentGeometry,
    starts: &[u64],
    max_record_bytes: u32,
    checkpoint: &Checkpoint,
    index: &DenseIndex,
) -> Result<Scanned, DiskError> {
    let seg_bytes = geometry.segment_bytes();
    let mut cursor = match starts.first() {
        Some(&first) => start_cursor(paths, first, max_record_bytes).await?,
        None => checkpoint.scan_from,
    };
    let mut out = Scanned {
        first_index: cursor.next_index,
        positions: VecDeque::new(),
        term_runs: Vec::new(),
        end: cursor,
        torn: None,
        entries: Vec::new(),
        scanned_from: cursor.next_index,
    };
    // Entries below the checkpoint's scan-from point come from the dense index; only
    // the data after it is read and verified.
    let from = checkpoint.scan_from;
    if from.next_index > cursor.next_index
        && from.pos >= cursor.pos
        && starts.contains(&geometry.segment_start(from.pos))
    {
        if index
            .load(
                cursor.next_index,
                from.next_index,
                &mut out.positions,
                &mut out.term_runs,
            )
            .await?
        {
            cursor = from;
            out.scanned_from = from.next_index;
        } else {
            tracing::warn!(
                dir = %paths.dir.display(),
                "dense index incomplete; scanning the whole log"
            );
        }
    }
    let mut seg_index = starts
        .iter()
        .position(|&s| s == geometry.segment_start(cursor.pos))
        .unwrap_or(starts.len());
    let protected = checkpoint.scan_input(*geometry, max_record_bytes);
    // A window must hold a whole record for the scan to make progress.
    let window = (u64::from(max_record_bytes) + 4096).max(SCAN_WINDOW_BYTES) as usize;
    'segments: while let Some(&seg) = starts.get(seg_index) {
        if geometry.segment_start(cursor.pos) != seg {
            break;
        }
        let path = paths.segment(seg);
        let file = super::files::open_dma(&path, false, false).await?;
        let mut reader = SegmentReader::new(&file, seg_bytes);
        loop {
            let off = cursor.pos - seg;
            let bytes = reader
                .get(off, window.min((seg_bytes - off) as usize))
                .await
                .map_err(|e| DiskError::io("read segment", &path, e))?;
            let input = ScanInput {
                start: cursor,
                input_is_file_end: off + bytes.len() as u64 >= seg_bytes
                    || bytes.len() < window.min((seg_bytes - off) as usize),
                ..protected
            };
            let end = scan_segment(bytes, &input, |h| {
                out.positions.push_back(h.pos);
                if let Some(e) = IndexEntry::from_header(h) {
                    out.entries.push(e);
                }
                if out.term_runs.last().is_none_or(|r| r.term != h.term) {
                    out.term_runs.push(TermRun {
                        first_index: h.index,
                        term: h.term,
                    });
                }
            })
            .map_err(|e| match e {
                ScanError::Corruption(c) => DiskError::Corruption {
                    file: paths.segment(geometry.segment_start(c.pos)),
                    offset: c.offset,
                    reason: c.to_string(),
                },
                other => DiskError::Corruption {
                    file: path.clone(),
                    offset: off,
                    reason: other.to_string(),
                },
            })?;
            cursor = end.next;
            match end.stop {
                ScanStop::NeedMoreInput => continue,
                ScanStop::SegmentEnd => {
                    seg_index += 1;
                    break;
                }
                ScanStop::Zeros | ScanStop::EndOfFile => break 'segments,
                ScanStop::TornTail(damage) => {
                    out.torn = Some((path.clone(), end.end_pos - seg, damage.to_string()));
                    break 'segments;
                }
            }
        }
        file.close()
            .await
            .map_err(|e| DiskError::io("close", &path, e))?;
    }
    // The segments ran out (or one is missing) before the durable point.
    if cursor.next_index <= checkpoint.durable_index() {
        return Err(DiskError::Corruption {
            file: paths.segment(geometry.segment_start(cursor.pos)),
            offset: geometry.offset_in_segment(cursor.pos),
            reason: format!(
                "the log ends at index {} but the checkpoint records index {} as durable",
                cursor.next_index - 1,
                checkpoint.durable_index()
            ),
        });
    }
    out.end = cursor;
    Ok(out)
}

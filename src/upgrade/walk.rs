//! What the two foreign-log scanners (RocketMQ CommitLog, DLedger 0.3.x data files)
//! share: both walk a run of equal, preallocated files named by their 20-digit start
//! offset, in name order, chunk by chunk; only the newest file may end early. This
//! module keeps that bookkeeping (file order, the open file's offset, the end of the
//! walk) and the shapes every chunk's answer takes, so each scanner only decodes its
//! own records. [`ChunkScanner`] and [`drive_files`] let one driver feed either.

use std::fmt;

use thiserror::Error;

use crate::store::SegmentName;

/// Why a chunk's scan returned (`End`: how a log ends cleanly; `Tail`: the record the
/// newest file cuts short).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileStop<End, Tail> {
    /// The chunk ended inside a record or a filler: call again with bytes from
    /// [`FileChunkEnd::next_offset`].
    NeedMoreInput,
    /// The file ended with its filler: open the next file.
    FileDone,
    /// The log ended cleanly in the newest file. Nothing more may be fed.
    LogEnd(End),
    /// The newest file ends inside a record. Nothing more may be fed.
    TruncatedTail(Tail),
}

/// Where a chunk's scan ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileChunkEnd<End, Tail> {
    /// Offset in the file where the next chunk must start (after the last whole record).
    pub next_offset: u64,
    /// Records accepted in this call.
    pub items: u64,
    pub stop: FileStop<End, Tail>,
}

/// Files fed out of order, or bytes fed that the open file cannot hold. `what` names
/// the kind of file ("CommitLog file", "DLedger data file").
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WalkError {
    #[error("{what} {found} is not at a multiple of the file size {file_bytes}")]
    MisalignedFile {
        what: &'static str,
        found: SegmentName,
        file_bytes: u64,
    },
    #[error("{what} {found} follows {previous}, but {expected} must come next (a file is missing)")]
    FileGap {
        what: &'static str,
        previous: SegmentName,
        expected: SegmentName,
        found: SegmentName,
    },
    #[error("{what} {found} opened while {open} is not finished")]
    FileStillOpen {
        what: &'static str,
        open: SegmentName,
        found: SegmentName,
    },
    #[error("{what} {found} comes after the newest file {newest}")]
    AfterNewest {
        what: &'static str,
        newest: SegmentName,
        found: SegmentName,
    },
    #[error("no {what} is open (call begin_file first)")]
    NoOpenFile { what: &'static str },
    #[error("{bytes} bytes at offset {offset} of {what} {file} run past its {file_bytes} bytes")]
    InputBeyondFile {
        what: &'static str,
        file: SegmentName,
        offset: u64,
        bytes: u64,
        file_bytes: u64,
    },
}

/// The file a chunk belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct OpenFile {
    pub start: u64,
    /// Where the next chunk starts.
    pub offset: u64,
    pub is_newest: bool,
}

impl OpenFile {
    pub fn name(&self) -> SegmentName {
        SegmentName(self.start)
    }
}

/// File order and progress of one walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileWalk {
    what: &'static str,
    file_bytes: u64,
    open: Option<OpenFile>,
    /// The file that finished last (with its filler), so the next one must follow it.
    previous: Option<u64>,
    /// Set once the newest file is done: no more input is accepted.
    finished: Option<u64>,
}

impl FileWalk {
    pub fn new(what: &'static str, file_bytes: u64) -> Self {
        debug_assert!(file_bytes > 0, "callers check the file size first");
        FileWalk {
            what,
            file_bytes,
            open: None,
            previous: None,
            finished: None,
        }
    }

    pub fn file_offset(&self) -> Option<u64> {
        self.open.map(|f| f.offset)
    }

    pub fn is_finished(&self) -> bool {
        self.finished.is_some()
    }

    /// Opens the file starting at `file_start`: files come in name order without gaps;
    /// `is_newest` marks the last one, the only one that may end without a filler.
    pub fn begin_file(&mut self, file_start: u64, is_newest: bool) -> Result<(), WalkError> {
        let what = self.what;
        let found = SegmentName(file_start);
        if let Some(newest) = self.finished {
            return Err(WalkError::AfterNewest {
                what,
                newest: SegmentName(newest),
                found,
            });
        }
        if let Some(open) = self.open {
            return Err(WalkError::FileStillOpen {
                what,
                open: open.name(),
                found,
            });
        }
        if file_start % self.file_bytes != 0 {
            return Err(WalkError::MisalignedFile {
                what,
                found,
                file_bytes: self.file_bytes,
            });
        }
        if let Some(prev) = self.previous {
            let expected = prev.saturating_add(self.file_bytes);
            if file_start != expected {
                return Err(WalkError::FileGap {
                    what,
                    previous: SegmentName(prev),
                    expected: SegmentName(expected),
                    found,
                });
            }
        }
        self.open = Some(OpenFile {
            start: file_start,
            offset: 0,
            is_newest,
        });
        Ok(())
    }

    /// The open file, for a chunk of `len` bytes starting at its offset.
    pub fn chunk_file(&self, len: usize) -> Result<OpenFile, WalkError> {
        let what = self.what;
        let file = self.open.ok_or(WalkError::NoOpenFile { what })?;
        if len as u64 > self.file_bytes - file.offset {
            return Err(WalkError::InputBeyondFile {
                what,
                file: file.name(),
                offset: file.offset,
                bytes: len as u64,
                file_bytes: self.file_bytes,
            });
        }
        Ok(file)
    }

    /// Records where a chunk of `file` ended: `consumed` bytes taken, `items` records.
    pub fn end_chunk<End, Tail>(
        &mut self,
        mut file: OpenFile,
        consumed: usize,
        items: u64,
        stop: FileStop<End, Tail>,
    ) -> FileChunkEnd<End, Tail> {
        file.offset += consumed as u64;
        debug_assert!(file.offset <= self.file_bytes, "a chunk ran past its file");
        match stop {
            FileStop::NeedMoreInput => self.open = Some(file),
            FileStop::FileDone => {
                self.open = None;
                self.previous = Some(file.start);
            }
            FileStop::LogEnd(_) | FileStop::TruncatedTail(_) => {
                self.open = None;
                self.finished = Some(file.start);
            }
        }
        FileChunkEnd {
            next_offset: file.offset,
            items,
            stop,
        }
    }
}

/// The chunked-scanner interface both scanners implement (see each module's docs).
pub trait ChunkScanner {
    /// What the callback gets for each record (besides the bytes).
    type Item;
    type End: Copy + fmt::Debug;
    type Tail: Copy + fmt::Debug;
    type Error;

    fn begin_file(&mut self, file_start: u64, is_newest: bool) -> Result<(), Self::Error>;
    fn file_offset(&self) -> Option<u64>;
    fn is_finished(&self) -> bool;
    /// One chunk: see the scanners' `scan`. The callback gets each record and the bytes
    /// the scanner hands out for it (a whole message; an entry's body).
    fn scan_chunk(
        &mut self,
        bytes: &[u8],
        input_is_file_end: bool,
        on_item: &mut dyn FnMut(&Self::Item, &[u8]),
    ) -> Result<FileChunkEnd<Self::End, Self::Tail>, Self::Error>;
}

/// Feeds whole files held in memory (`(start, bytes)` in name order, the last one the
/// newest) to `scanner` in chunks of `chunk_bytes`, reading on from `file_offset` the
/// way the import command does; a chunk that makes no progress is doubled before the
/// next read. Returns how the walk stopped.
pub fn drive_files<S: ChunkScanner>(
    scanner: &mut S,
    files: &[(u64, &[u8])],
    chunk_bytes: usize,
    on_item: &mut dyn FnMut(&S::Item, &[u8]),
) -> Result<FileStop<S::End, S::Tail>, S::Error> {
    let mut stop = FileStop::NeedMoreInput;
    for (i, (start, bytes)) in files.iter().enumerate() {
        scanner.begin_file(*start, i + 1 == files.len())?;
        let mut chunk = chunk_bytes.max(1);
        loop {
            let from = scanner.file_offset().unwrap_or(0) as usize;
            let to = from.saturating_add(chunk).min(bytes.len());
            let end = scanner.scan_chunk(&bytes[from.min(to)..to], to == bytes.len(), on_item)?;
            stop = end.stop;
            match end.stop {
                FileStop::NeedMoreInput => {
                    if end.items == 0 && end.next_offset as usize == from {
                        chunk = chunk.saturating_mul(2);
                    }
                }
                _ => break,
            }
        }
        if scanner.is_finished() {
            break;
        }
    }
    Ok(stop)
}

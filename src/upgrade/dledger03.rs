//! DLedger 0.3.x store scanner: walks a DLedger data directory's entries (and checks
//! them against its index files) so they can become the start of a group's log.
//!
//! # Data files
//!
//! Equal files (`mappedFileSizeForEntryData`, 1 GiB by default) named by their
//! 20-digit start position, preallocated with zeros. Entry layout (big-endian):
//!
//! | offset | bytes | field                                                       |
//! |-------:|------:|-------------------------------------------------------------|
//! |      0 |     4 | magic: 1 normal (0.3.x); later versions: 2 no-op, 3 config  |
//! |      4 |     4 | size = 48 + body length                                     |
//! |      8 |     8 | index (DLedger counts from 0)                               |
//! |     16 |     8 | term                                                        |
//! |     24 |     8 | pos: absolute position of this entry                        |
//! |     32 |     4 | channel (0)                                                 |
//! |     36 |     4 | chainCrc (never computed: 0)                                |
//! |     40 |     4 | bodyCrc (never computed: 0)                                 |
//! |     44 |     4 | body length                                                 |
//! |     48 |     n | body                                                        |
//!
//! An entry never spans files: the unused tail of a file starts with int -1 then the
//! bytes left in the file (the layout our own segments use, see
//! [`crate::store::segment`]); with fewer than 8 bytes left nothing is written.
//!
//! # Index files
//!
//! 32-byte records — magic(4) pos(8) size(4) index(8) term(8) — with entry `i` at byte
//! `i × 32` of the index address space, cut into files of
//! `mappedFileSizeForEntryIndex` (160 MiB by default) named like the data files.
//!
//! # Checks
//!
//! DLedger's own recovery checks only structure, and so do we, since 0.3.x never
//! computes the CRC fields (their values are not checked): magic, size = 48 + body
//! length, size within bounds and inside the file, pos equal to where the entry lies,
//! index exactly one more than the previous, term not below the previous. Each entry
//! is also compared with its index record ([`check_index_records`]). Failures name the
//! file and byte offset. In the newest data file the store may end at zeros, at the end
//! of the bytes, at a filler, or with an entry cut by the end of the file (a
//! [`DLedgerTruncatedTail`], not an error); every older file must end with a filler or
//! with too few bytes left for one.
//!
//! # Streaming
//!
//! As for the CommitLog scanner: [`DLedgerScanner::begin_file`] per data file in name
//! order, then [`DLedgerScanner::scan`] per chunk starting at
//! [`DLedgerScanner::file_offset`]; a chunk of at least `max_entry_bytes` (or reaching
//! the file end) always makes progress.

use std::fmt;
use std::ops::Range;

use thiserror::Error;

use super::be::{i32_at, i64_at};
use super::rocketmq::{MessageFields, MessageProblem, parse_message};
use super::walk::{ChunkScanner, FileChunkEnd, FileStop, FileWalk, WalkError};
use crate::store::{RecordKind, SegmentName};

/// DLedger's entry header size (its `DLedgerEntry.BODY_OFFSET`).
pub const DLEDGER_HEADER_BYTES: usize = 48;
/// One index record.
pub const DLEDGER_INDEX_RECORD_BYTES: usize = 32;
/// Magic of a normal entry (the only kind 0.3.x writes).
pub const DLEDGER_MAGIC_NORMAL: i32 = 1;
/// Magic of a no-op entry (later DLedger versions).
pub const DLEDGER_MAGIC_NOOP: i32 = 2;
/// Magic of a configuration-change entry (later DLedger versions; not importable).
pub const DLEDGER_MAGIC_CONFIG: i32 = 3;
/// First word of a data file's unused tail.
pub const DLEDGER_BLANK_MAGIC: i32 = -1;
/// Default data file size (`mappedFileSizeForEntryData`).
pub const DEFAULT_DLEDGER_DATA_FILE_BYTES: u64 = 1 << 30;
/// Default index file size (`mappedFileSizeForEntryIndex`).
pub const DEFAULT_DLEDGER_INDEX_FILE_BYTES: u64 = 160 << 20;

const FILLER_BYTES: u64 = 8;

/// Scanner settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DLedgerScanConfig {
    /// `mappedFileSizeForEntryData` of the store.
    pub data_file_bytes: u64,
    /// Largest entry (header + body) accepted; at most our `max_record_bytes`, since
    /// entries keep their size in our log.
    pub max_entry_bytes: u32,
}

/// One valid entry, as handed to the scanner's callback.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DLedgerEntry {
    pub file: SegmentName,
    /// Byte offset of the entry in its file.
    pub offset: u64,
    pub magic: i32,
    /// [`RecordKind::Normal`] for magic 1, [`RecordKind::Noop`] for magic 2.
    pub kind: RecordKind,
    pub index: u64,
    pub term: u64,
    pub pos: u64,
    /// Header + body.
    pub size: u32,
    /// The body in the chunk passed to [`DLedgerScanner::scan`].
    pub body: Range<usize>,
}

/// What is wrong with an entry (or what stands where one should).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum EntryProblem {
    #[error("bad magic {found} (1 normal, 2 no-op; -1 file tail)")]
    BadMagic { found: i32 },
    #[error("configuration-change entry (magic 3) cannot be imported")]
    ConfigEntry,
    #[error("size {size} is below the {DLEDGER_HEADER_BYTES}-byte header")]
    SizeTooSmall { size: i32 },
    #[error("size {size} exceeds the import limit of {max} bytes")]
    SizeTooLarge { size: i32, max: u32 },
    #[error("size {size} runs past the end of the file ({remaining} bytes left)")]
    PastFileEnd { size: u64, remaining: u64 },
    #[error("size {size} differs from 48 + body length {body_len}")]
    SizeMismatch { size: i32, body_len: i32 },
    #[error("entry claims pos {found}, but lies at {expected}")]
    PosMismatch { found: i64, expected: u64 },
    #[error("negative index {found}")]
    NegativeIndex { found: i64 },
    #[error("negative term {found}")]
    NegativeTerm { found: i64 },
    #[error("index {found} does not follow index {last}")]
    IndexGap { found: u64, last: u64 },
    #[error("term {found} is below the previous entry's term {last}")]
    TermWentBack { found: u64, last: u64 },
    #[error("file tail marker says {found} bytes, but {expected} remain in the file")]
    BadFillerLength { found: i32, expected: u64 },
    #[error(
        "zeros where an entry or the file tail marker must be (only the newest file may end this way)"
    )]
    ZerosInOlderFile,
    #[error("the file's bytes end before its tail marker (only the newest file may end this way)")]
    OlderFileEndsEarly,
    #[error("body is not a valid RocketMQ message: {0}")]
    RocketMqBody(MessageProblem),
}

/// The newest data file ends inside an entry: the import stops before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DLedgerTruncatedTail {
    pub file: SegmentName,
    pub offset: u64,
    pub pos: u64,
    /// Bytes the entry needs (its size, or the header when even that is cut).
    pub needed: u64,
    pub have: u64,
}

impl fmt::Display for DLedgerTruncatedTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "truncated tail at offset {} of DLedger data file {} (pos {}): the file ends {} \
             bytes into an entry of {} bytes; the import stops before it",
            self.offset, self.file, self.pos, self.have, self.needed
        )
    }
}

/// How the store ended in the newest data file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DLedgerEndKind {
    Zeros,
    EndOfFile,
    /// A tail marker (or too few bytes for one): the newest file is full.
    Filler,
}

/// Why a [`DLedgerScanner::scan`] call returned.
pub type DLedgerChunkStop = FileStop<DLedgerEndKind, DLedgerTruncatedTail>;

/// Where a chunk's scan ended (`items`: entries accepted in this call).
pub type DLedgerChunkEnd = FileChunkEnd<DLedgerEndKind, DLedgerTruncatedTail>;

/// Why a DLedger store cannot be imported.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DLedgerError {
    #[error("DLedger data file {file}, byte offset {offset}: {problem}")]
    Entry {
        file: SegmentName,
        offset: u64,
        problem: EntryProblem,
    },
    #[error(transparent)]
    Files(#[from] WalkError),
    #[error("data file size {file_bytes} cannot hold an entry header and a tail marker")]
    BadFileBytes { file_bytes: u64 },
}

/// What the scanner calls its files in errors.
const FILE_KIND: &str = "DLedger data file";

/// Walks a DLedger store's data files in order, chunk by chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DLedgerScanner {
    config: DLedgerScanConfig,
    walk: FileWalk,
    /// (index, term) of the last entry accepted.
    last: Option<(u64, u64)>,
    entries: u64,
}

impl DLedgerScanner {
    pub fn new(config: DLedgerScanConfig) -> Result<Self, DLedgerError> {
        if config.data_file_bytes < DLEDGER_HEADER_BYTES as u64 + FILLER_BYTES {
            return Err(DLedgerError::BadFileBytes {
                file_bytes: config.data_file_bytes,
            });
        }
        Ok(DLedgerScanner {
            config,
            walk: FileWalk::new(FILE_KIND, config.data_file_bytes),
            last: None,
            entries: 0,
        })
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// (index, term) of the last entry accepted.
    pub fn last_entry(&self) -> Option<(u64, u64)> {
        self.last
    }

    pub fn file_offset(&self) -> Option<u64> {
        self.walk.file_offset()
    }

    pub fn is_finished(&self) -> bool {
        self.walk.is_finished()
    }

    /// Opens the data file starting at `file_start`; files come in name order without
    /// gaps, `is_newest` marks the last one.
    pub fn begin_file(&mut self, file_start: u64, is_newest: bool) -> Result<(), DLedgerError> {
        Ok(self.walk.begin_file(file_start, is_newest)?)
    }

    /// Walks the whole entries in `bytes` (starting at [`Self::file_offset`] of the
    /// open file), calling `on_entry` with each valid entry and its body, in order.
    pub fn scan(
        &mut self,
        bytes: &[u8],
        input_is_file_end: bool,
        mut on_entry: impl FnMut(&DLedgerEntry, &[u8]),
    ) -> Result<DLedgerChunkEnd, DLedgerError> {
        let file = self.walk.chunk_file(bytes.len())?;
        let file_bytes = self.config.data_file_bytes;
        let name = file.name();
        let err = |offset: u64, problem| DLedgerError::Entry {
            file: name,
            offset,
            problem,
        };
        let mut at = 0usize;
        let mut entries = 0u64;
        let stop = loop {
            let rest = &bytes[at..];
            let offset = file.offset + at as u64;
            let remaining = file_bytes - offset;
            let pos = file.start + offset;
            let have_all = input_is_file_end || rest.len() as u64 == remaining;
            let file_full = if file.is_newest {
                FileStop::LogEnd(DLedgerEndKind::Filler)
            } else {
                FileStop::FileDone
            };
            if remaining < FILLER_BYTES {
                // Too short for a tail marker: the writer moved on without writing here.
                break file_full;
            }
            let probe = rest.len().min(DLEDGER_HEADER_BYTES);
            if probe < DLEDGER_HEADER_BYTES && !have_all {
                break FileStop::NeedMoreInput;
            }
            if rest[..probe].iter().all(|&b| b == 0) {
                if !file.is_newest {
                    return Err(err(
                        offset,
                        if rest.is_empty() {
                            EntryProblem::OlderFileEndsEarly
                        } else {
                            EntryProblem::ZerosInOlderFile
                        },
                    ));
                }
                break FileStop::LogEnd(if rest.is_empty() {
                    DLedgerEndKind::EndOfFile
                } else {
                    DLedgerEndKind::Zeros
                });
            }
            let truncated = |needed: u64| {
                FileStop::TruncatedTail(DLedgerTruncatedTail {
                    file: name,
                    offset,
                    pos,
                    needed,
                    have: rest.len() as u64,
                })
            };
            let cut_short = |needed: u64| {
                if file.is_newest {
                    Ok(truncated(needed))
                } else {
                    Err(err(offset, EntryProblem::OlderFileEndsEarly))
                }
            };
            let Some(magic) = i32_at(rest, 0) else {
                break cut_short(DLEDGER_HEADER_BYTES as u64)?;
            };
            if magic == DLEDGER_BLANK_MAGIC {
                let Some(len) = i32_at(rest, 4) else {
                    break cut_short(FILLER_BYTES)?;
                };
                if u64::try_from(len).ok() != Some(remaining) {
                    return Err(err(
                        offset,
                        EntryProblem::BadFillerLength {
                            found: len,
                            expected: remaining,
                        },
                    ));
                }
                break file_full;
            }
            let kind = match magic {
                DLEDGER_MAGIC_NORMAL => RecordKind::Normal,
                DLEDGER_MAGIC_NOOP => RecordKind::Noop,
                DLEDGER_MAGIC_CONFIG => return Err(err(offset, EntryProblem::ConfigEntry)),
                found => return Err(err(offset, EntryProblem::BadMagic { found })),
            };
            let Some(size) = i32_at(rest, 4) else {
                break cut_short(DLEDGER_HEADER_BYTES as u64)?;
            };
            if size < DLEDGER_HEADER_BYTES as i32 {
                return Err(err(offset, EntryProblem::SizeTooSmall { size }));
            }
            if size as u32 > self.config.max_entry_bytes {
                return Err(err(
                    offset,
                    EntryProblem::SizeTooLarge {
                        size,
                        max: self.config.max_entry_bytes,
                    },
                ));
            }
            let size_bytes = size as u64;
            if size_bytes > remaining {
                return Err(err(
                    offset,
                    EntryProblem::PastFileEnd {
                        size: size_bytes,
                        remaining,
                    },
                ));
            }
            if rest.len() < DLEDGER_HEADER_BYTES {
                break cut_short(size_bytes)?;
            }
            let header = Header::read(rest);
            if i64::from(header.body_len) + DLEDGER_HEADER_BYTES as i64 != i64::from(size) {
                return Err(err(
                    offset,
                    EntryProblem::SizeMismatch {
                        size,
                        body_len: header.body_len,
                    },
                ));
            }
            if u64::try_from(header.pos).ok() != Some(pos) {
                return Err(err(
                    offset,
                    EntryProblem::PosMismatch {
                        found: header.pos,
                        expected: pos,
                    },
                ));
            }
            let index = u64::try_from(header.index).map_err(|_| {
                err(
                    offset,
                    EntryProblem::NegativeIndex {
                        found: header.index,
                    },
                )
            })?;
            let term = u64::try_from(header.term)
                .map_err(|_| err(offset, EntryProblem::NegativeTerm { found: header.term }))?;
            if let Some((last_index, last_term)) = self.last {
                if Some(index) != last_index.checked_add(1) {
                    return Err(err(
                        offset,
                        EntryProblem::IndexGap {
                            found: index,
                            last: last_index,
                        },
                    ));
                }
                if term < last_term {
                    return Err(err(
                        offset,
                        EntryProblem::TermWentBack {
                            found: term,
                            last: last_term,
                        },
                    ));
                }
            }
            if (rest.len() as u64) < size_bytes {
                if !have_all {
                    break FileStop::NeedMoreInput;
                }
                break cut_short(size_bytes)?;
            }
            let entry = DLedgerEntry {
                file: name,
                offset,
                magic,
                kind,
                index,
                term,
                pos,
                size: size as u32,
                body: at + DLEDGER_HEADER_BYTES..at + size as usize,
            };
            on_entry(&entry, &bytes[entry.body.clone()]);
            self.last = Some((index, term));
            entries += 1;
            at += size as usize;
        };
        self.entries += entries;
        Ok(self.walk.end_chunk(file, at, entries, stop))
    }
}

impl ChunkScanner for DLedgerScanner {
    type Item = DLedgerEntry;
    type End = DLedgerEndKind;
    type Tail = DLedgerTruncatedTail;
    type Error = DLedgerError;

    fn begin_file(&mut self, file_start: u64, is_newest: bool) -> Result<(), DLedgerError> {
        DLedgerScanner::begin_file(self, file_start, is_newest)
    }
    fn file_offset(&self) -> Option<u64> {
        DLedgerScanner::file_offset(self)
    }
    fn is_finished(&self) -> bool {
        DLedgerScanner::is_finished(self)
    }
    fn scan_chunk(
        &mut self,
        bytes: &[u8],
        input_is_file_end: bool,
        on_item: &mut dyn FnMut(&DLedgerEntry, &[u8]),
    ) -> Result<DLedgerChunkEnd, DLedgerError> {
        self.scan(bytes, input_is_file_end, on_item)
    }
}

/// For a RocketMQ-on-DLedger store: checks that a normal entry's body is a whole
/// RocketMQ message whose PHYSICALOFFSET is the entry's pos + 48 (how RocketMQ's
/// DLedgerCommitLog writes it), including the message's body CRC. DLedger 0.3.x never
/// computes its own CRCs, so this is the only check that covers the bytes of a body.
/// No-op entries carry no message and pass unchecked (`None`).
pub fn check_rocketmq_body(
    entry: &DLedgerEntry,
    body: &[u8],
) -> Result<Option<MessageFields>, DLedgerError> {
    if entry.kind == RecordKind::Noop {
        return Ok(None);
    }
    let physical_offset = entry.pos.saturating_add(DLEDGER_HEADER_BYTES as u64);
    parse_message(body, physical_offset)
        .map(Some)
        .map_err(|p| DLedgerError::Entry {
            file: entry.file,
            offset: entry.offset,
            problem: EntryProblem::RocketMqBody(p),
        })
}

/// The fixed header fields after magic and size (the CRC fields and channel are
/// never checked: 0.3.x leaves them 0).
struct Header {
    index: i64,
    term: i64,
    pos: i64,
    body_len: i32,
}

impl Header {
    /// `b` holds at least [`DLEDGER_HEADER_BYTES`].
    fn read(b: &[u8]) -> Self {
        debug_assert!(b.len() >= DLEDGER_HEADER_BYTES);
        Header {
            index: i64_at(b, 8).unwrap_or(-1),
            term: i64_at(b, 16).unwrap_or(-1),
            pos: i64_at(b, 24).unwrap_or(-1),
            body_len: i32_at(b, 44).unwrap_or(-1),
        }
    }
}

/// One index file record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DLedgerIndexRecord {
    pub magic: i32,
    pub pos: i64,
    pub size: i32,
    pub index: i64,
    pub term: i64,
}

/// Decodes the 32-byte index record at the start of `b` (`None` if shorter).
pub fn decode_dledger_index_record(b: &[u8]) -> Option<DLedgerIndexRecord> {
    Some(DLedgerIndexRecord {
        magic: i32_at(b, 0)?,
        pos: i64_at(b, 4)?,
        size: i32_at(b, 12)?,
        index: i64_at(b, 16)?,
        term: i64_at(b, 24)?,
    })
}

/// Where the index record of `index` lives: (index file, byte offset in it).
pub fn dledger_index_location(index: u64, index_file_bytes: u64) -> Option<(SegmentName, u64)> {
    let addr = index.checked_mul(DLEDGER_INDEX_RECORD_BYTES as u64)?;
    let file_bytes = index_file_bytes.max(1);
    Some((SegmentName(addr - addr % file_bytes), addr % file_bytes))
}

/// An entry and its index record disagree (or the record is missing).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "DLedger index file {index_file}, byte offset {offset} (entry {entry_index} at data pos \
     {entry_pos}): {problem}"
)]
pub struct IndexMismatch {
    pub index_file: SegmentName,
    pub offset: u64,
    pub entry_index: u64,
    pub entry_pos: u64,
    pub problem: IndexProblem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum IndexProblem {
    #[error("the index bytes given do not cover this record")]
    NotCovered,
    #[error("index record has {field} {found}, the entry has {expected}")]
    Differs {
        field: &'static str,
        found: i64,
        expected: i64,
    },
}

/// Compares `entries` (from the data scan, in order) with their index records.
/// `index_bytes` is a stretch of the index address space starting at address
/// `index_bytes_addr` (entry `i`'s record is at address `i × 32`) that covers them all;
/// `index_file_bytes` only names files in errors.
pub fn check_index_records(
    entries: &[DLedgerEntry],
    index_bytes: &[u8],
    index_bytes_addr: u64,
    index_file_bytes: u64,
) -> Result<(), IndexMismatch> {
    for e in entries {
        let (index_file, offset) =
            dledger_index_location(e.index, index_file_bytes).unwrap_or((SegmentName(u64::MAX), 0));
        let mismatch = |problem| IndexMismatch {
            index_file,
            offset,
            entry_index: e.index,
            entry_pos: e.pos,
            problem,
        };
        let record = e
            .index
            .checked_mul(DLEDGER_INDEX_RECORD_BYTES as u64)
            .and_then(|addr| addr.checked_sub(index_bytes_addr))
            .and_then(|rel| usize::try_from(rel).ok())
            .and_then(|rel| index_bytes.get(rel..))
            .and_then(decode_dledger_index_record)
            .ok_or_else(|| mismatch(IndexProblem::NotCovered))?;
        let pairs: [(&'static str, i64, i64); 5] = [
            ("magic", i64::from(record.magic), i64::from(e.magic)),
            ("pos", record.pos, e.pos as i64),
            ("size", i64::from(record.size), i64::from(e.size)),
            ("index", record.index, e.index as i64),
            ("term", record.term, e.term as i64),
        ];
        for (field, found, expected) in pairs {
            if found != expected {
                return Err(mismatch(IndexProblem::Differs {
                    field,
                    found,
                    expected,
                }));
            }
        }
    }
    Ok(())
}

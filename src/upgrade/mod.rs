//! The pure part of adopting an existing log as the start of a group's log (issue 5):
//! a RocketMQ CommitLog, or a DLedger 0.3.x store. Functions over byte slices, no I/O:
//! the `dledger import` command reads the files in name order and feeds their bytes
//! in bounded chunks, so a 1 GiB file is never in memory at once.
//!
//! - [`rocketmq`]: CommitLog message codec checks and the chunked scanner.
//! - [`dledger03`]: DLedger data-file scanner and index-file cross-check.
//! - [`plan`]: turns scanned entries into our records (placed, indexed, chained) and
//!   digests the imported prefix so nodes can refuse to form a group from different
//!   prefixes.
//! - [`compare`]: first divergent record between two replicas (`dledger check`).
//! - [`fixtures`]: byte-by-byte builders of both foreign formats, for tests.
//!
//! # Import recipe (the command's side)
//!
//! 1. List the source directory, parse each name with
//!    [`crate::store::parse_segment_name`], sort; the last file is the newest.
//! 2. `scanner.begin_file(start, is_newest)`; read from `scanner.file_offset()` chunks
//!    of at least the scanner's max entry size (or to the file end), call `scan` with
//!    `input_is_file_end` set on the chunk that reaches the end, and push each entry
//!    into the [`plan::ImportPlan`], writing the returned record (filler first).
//!    Repeat while `stop` is `NeedMoreInput`; `FileDone` opens the next file.
//! 3. `LogEnd` is a clean end; `TruncatedTail` is printed (its Display says "truncated
//!    tail at offset X") and the import ends before it; an error stops the import
//!    with the file and offset named.
//! 4. For a DLedger store, check each chunk's entries against the index files with
//!    [`dledger03::check_index_records`]; for a RocketMQ-on-DLedger store also check
//!    each body with [`dledger03::check_rocketmq_body`] (the only body check there is).
//! 5. Store the plan's [`plan::PrefixDigest`]; every node of the group must hold the
//!    same digest before the group forms ([`plan::PrefixDigest::first_difference`]).

pub(crate) mod be;
pub mod compare;
pub mod digest_file;
pub mod dledger03;
pub mod fixtures;
pub mod plan;
pub mod rocketmq;
pub mod walk;

pub use compare::{Divergence, DivergenceKind, RecordSummary, first_divergence};
pub use digest_file::{DIGEST_BYTES_MAX, DIGEST_SEGMENTS_MAX, DigestFileError, IMPORT_DIGEST_FILE};
pub use dledger03::{
    DLedgerChunkEnd, DLedgerChunkStop, DLedgerEndKind, DLedgerEntry, DLedgerError,
    DLedgerIndexRecord, DLedgerScanConfig, DLedgerScanner, DLedgerTruncatedTail, EntryProblem,
    IndexMismatch, IndexProblem, check_index_records, check_rocketmq_body,
    decode_dledger_index_record, dledger_index_location,
};
pub use plan::{
    DEFAULT_MAX_IMPORTED_MESSAGE_BYTES, DLEDGER_INDEX_SHIFT, DigestSummary, ImportPlan, PlanError,
    PlannedRecord, PrefixDigest, PrefixMismatch, SegmentDigest, Source, SourceEntry,
};
pub use rocketmq::{
    ChunkEnd, ChunkStop, CommitLogError, CommitLogMessage, CommitLogScanConfig, CommitLogScanner,
    LogEndKind, MessageFields, MessageProblem, MessageVersion, TruncatedTail, parse_message,
    rocketmq_body_crc,
};
pub use walk::{ChunkScanner, FileChunkEnd, FileStop, WalkError, drive_files};

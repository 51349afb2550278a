//! The commitlog's on-disk format and the pure math around it: functions over byte
//! slices, no I/O (the disk layer in `shards/` calls them).
//!
//! - [`record`]: the record codec (48-byte CRC-protected header + body).
//! - [`segment`]: segment file naming, position math, end-of-segment fillers.
//! - [`cursor`]: the end-of-log chain state (next position, index, lowest term).
//! - [`align`]: block alignment for direct I/O and the in-memory tail block.
//! - [`index`]: the dense 32-byte-per-entry index codec and its position math.
//! - [`recovery`]: the recovery scan (valid records, clean end, torn tail, corruption).
//! - [`state`]: the checkpoint and Raft hard-state file codecs.
//!
//! # Format decisions
//!
//! - One byte address space per group (DLedger's `pos`), cut into equal segments named by
//!   their 20-digit start position. Every replica uses the same segment size, so a
//!   record has the same position on every replica and followers check it.
//! - Records are big-endian like DLedger's, with the same 48-byte header size (so
//!   RocketMQ's `PHYSICALOFFSET = pos + 48` still holds), but every CRC is real: the body
//!   CRC is computed once by the leader, the header CRC covers it, and followers and
//!   recovery verify both. Each header also carries the previous record's header CRC (a
//!   real chain CRC). `pos`, index continuity, non-decreasing terms and the chain are
//!   checked on every record read in order.
//! - Records never span segments; the unused rest of a segment starts with DLedger's
//!   filler (`-1`, remaining length) when at least 8 bytes are left.
//! - Segments are preallocated with zeros, so zeros mean "nothing written yet" and
//!   appends are pure overwrites.
//! - The index is derived data (no CRC), rebuilt from the records after the checkpoint.
//! - Recovery trusts nothing it reads: it scans from the checkpoint's scan-from point,
//!   truncates only damage past the durable point (a torn or unsynced tail), and reports
//!   anything wrong below it as corruption naming the segment file and byte offset.
//!
//! # What the disk layer must uphold
//!
//! - Zero-filled (or zeroed before reuse) segments.
//! - A filler durable no later than the first record after it.
//! - Every record chained to the one before it ([`LogCursor::next_header`]): stale records
//!   past the end of the log (writes that landed past a lost one, entries Raft truncated)
//!   then cannot be re-linked behind a rewritten record, so neither a truncation nor a
//!   recovery has to zero what lies after the new end.
//! - Checkpoints advance with [`Checkpoint::advanced`] and record only what an fsync (or
//!   an O_DSYNC write) has completed; before a Raft truncation below the durable point,
//!   [`Checkpoint::truncated_to`] is written first.

pub mod align;
pub mod cursor;
pub mod index;
pub mod record;
pub mod recovery;
pub mod segment;
pub mod state;

pub use align::{BlockSize, BlockSizeError, TailSplit};
pub use cursor::{ChainError, LogCursor};
pub use index::{
    INDEX_ENTRY_BYTES, IndexDecodeError, IndexEntry, decode_index_entry, encode_index_entry,
    index_at_offset, index_offset,
};
pub use record::{
    DEFAULT_MAX_RECORD_BYTES, DecodeError, EncodeError, FieldError, HEADER_BYTES, RecordHeader,
    RecordKind, decode_header, encode_header, encode_record, record_body, seal_record_in_place,
    verify_body, verify_record, verify_records,
};
pub use recovery::{Corruption, Damage, ScanEnd, ScanError, ScanInput, ScanStop, scan_segment};
pub use segment::{
    DEFAULT_INDEX_SEGMENT_BYTES, DEFAULT_SEGMENT_BYTES, FILLER_BYTES, Filler, GeometryError,
    PlaceError, Placement, SegmentGeometry, SegmentName, SegmentNameError, encode_filler,
    parse_segment_name, read_filler,
};
pub use state::{
    CHECKPOINT_BYTES, CHECKPOINT_FILE_BYTES, CHECKPOINT_SLOT_BYTES, Checkpoint, CheckpointFile,
    HARD_STATE_BYTES, HARD_STATE_FILE_BYTES, HARD_STATE_SLOT_BYTES, HardStateFile,
    PersistedHardState, StateDecodeError, decode_checkpoint, decode_checkpoint_file,
    decode_hard_state, decode_hard_state_file, encode_checkpoint, encode_checkpoint_slot,
    encode_hard_state, encode_hard_state_slot,
};

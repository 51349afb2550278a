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
    CHECKPOINT_BYTES, Checkpoint, HARD_STATE_BYTES, PersistedHardState, StateDecodeError,
    decode_checkpoint, decode_hard_state, encode_checkpoint, encode_hard_state,
};

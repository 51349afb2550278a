//! The commitlog's on-disk format and the pure math around it: functions over byte
//! slices, no I/O (the disk layer in `shards/` calls them).
//!
//! - [`record`]: the record codec (48-byte CRC-protected header + body).
//! - [`segment`]: segment file naming, position math, end-of-segment fillers.
//! - [`align`]: block alignment for direct I/O and the in-memory tail block.

pub mod align;
pub mod record;
pub mod segment;

pub use align::{BlockSize, BlockSizeError, TailSplit};
pub use record::{
    DEFAULT_MAX_RECORD_BYTES, DecodeError, EncodeError, FieldError, HEADER_BYTES, RecordHeader,
    RecordKind, decode_header, encode_header, encode_record, record_body, seal_record_in_place,
    verify_body, verify_record, verify_records,
};
pub use segment::{
    DEFAULT_INDEX_SEGMENT_BYTES, DEFAULT_SEGMENT_BYTES, FILLER_BYTES, Filler, GeometryError,
    PlaceError, Placement, SegmentGeometry, SegmentName, SegmentNameError, encode_filler,
    parse_segment_name, read_filler,
};

//! Wire protocol: binary, length-prefixed frames for clients and peers. Layouts are
//! written above each codec and collected in docs/wire.md.
//!
//! - [`frame`]: the 24-byte header (magic, version, kind, request id, length, CRC) and the
//!   incremental [`FrameDecoder`] / zero-copy [`parse_frame`]; the length is checked
//!   against `max_frame_bytes` before anything is allocated.
//! - [`client`]: append, get, metadata, cluster view, and the error response that carries
//!   DLedger's [`ResponseCode`]s (NOT_LEADER with the leader's client address).
//! - [`hello`]: the peer handshake [`Hello`].
//! - [`peer`]: the [`PeerBatch`] that carries many groups' Raft messages (with their entry
//!   records as opaque byte ranges) and compact heartbeat sections, from one node to one
//!   node's shard.
//! - [`gather`]: [`GatherBuf`], a send buffer whose large parts (entry bodies) are
//!   referenced rather than copied; peer batches are written into one and sent with a
//!   gather write.
//!
//! Encoders write into the caller's `BytesMut` (peer batches: `GatherBuf`); decoders hand out slices of the received
//! frame for bodies and entry records. Every count and length read from the wire is
//! bounded by [`WireLimits`] and by the bytes actually present.

pub mod body;
pub mod client;
pub mod code;
pub mod codec;
pub mod error;
pub mod frame;
pub mod gather;
pub mod hello;
pub mod limits;
pub mod peer;

#[cfg(test)]
mod tests;

pub use body::Body;
pub use client::{
    AppendRequest, AppendResponse, AppendedEntry, ClientMessage, ClusterViewRequest,
    ClusterViewResponse, ErrorResponse, GetRequest, GetResponse, GotEntry, GroupRow, LeaderHint,
    MetadataRequest, MetadataResponse, PeerInfo,
};
pub use code::ResponseCode;
pub use error::WireError;
pub use frame::{
    Frame, FrameDecoder, FrameHeader, FrameWriter, GatherFrameWriter, HEADER_LEN, Kind, parse_frame,
};
pub use gather::{GatherBuf, Mark};
pub use hello::{Hello, HelloRejected, PROTOCOL_VERSION};
pub use limits::WireLimits;
pub use peer::{EntryParts, GroupMessage, PeerBatch, PeerBatchWriter};

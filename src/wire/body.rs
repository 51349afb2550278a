//! The common shape of every single-message frame: a fixed kind and a body codec.

use bytes::{Bytes, BytesMut};

use super::error::WireError;
use super::frame::{Frame, FrameWriter, Kind};
use super::limits::WireLimits;

/// A message that is the whole body of one frame of a fixed kind.
pub trait Body: Sized {
    const KIND: Kind;
    /// Writes the body (no header). Fails, leaving partial bytes the caller discards, when a
    /// field exceeds what its length prefix or `limits` allow.
    fn write_body(&self, out: &mut BytesMut, limits: &WireLimits) -> Result<(), WireError>;
    /// Reads a body; every count and length is bounded by `limits` and by the body's size.
    fn read_body(body: &Bytes, limits: &WireLimits) -> Result<Self, WireError>;

    /// Encodes one whole frame into `out`. On error `out` is left as it was.
    fn encode(
        &self,
        request_id: u64,
        limits: &WireLimits,
        out: &mut BytesMut,
    ) -> Result<usize, WireError> {
        let w = FrameWriter::begin(out, Self::KIND, request_id);
        if let Err(e) = self.write_body(out, limits) {
            w.abort(out);
            return Err(e);
        }
        w.finish(out, limits.max_frame_bytes)
    }

    /// Decodes a frame of this kind.
    fn decode(frame: &Frame, limits: &WireLimits) -> Result<Self, WireError> {
        if frame.header.kind != Self::KIND {
            return Err(WireError::WrongKind {
                expected: kind_name(Self::KIND),
                found: frame.header.kind as u8,
            });
        }
        Self::read_body(&frame.body, limits)
    }
}

pub(crate) fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Hello => "Hello",
        Kind::PeerBatch => "PeerBatch",
        Kind::AppendRequest => "AppendRequest",
        Kind::AppendResponse => "AppendResponse",
        Kind::GetRequest => "GetRequest",
        Kind::GetResponse => "GetResponse",
        Kind::MetadataRequest => "MetadataRequest",
        Kind::MetadataResponse => "MetadataResponse",
        Kind::ClusterViewRequest => "ClusterViewRequest",
        Kind::ClusterViewResponse => "ClusterViewResponse",
        Kind::ErrorResponse => "ErrorResponse",
    }
}

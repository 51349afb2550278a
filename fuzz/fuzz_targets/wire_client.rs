//! Every client-protocol message decoder (and the wire Hello) on an arbitrary body,
//! the frame CRC bypassed by building the `Frame` directly.
//!
//! Input: `u8 kind selector | u8 limits selector | body`. Checked: no panic; a body that
//! decodes re-encodes into a frame that decodes to the same message (with the same
//! limits), within max_frame_bytes.
#![no_main]

use bytes::{Bytes, BytesMut};
use dledger::wire::body::Body;
use dledger::wire::{ClientMessage, Frame, FrameDecoder, FrameHeader, Hello, Kind, WireLimits};
use libfuzzer_sys::fuzz_target;

const KINDS: [Kind; 11] = [
    Kind::Hello,
    Kind::PeerBatch,
    Kind::AppendRequest,
    Kind::AppendResponse,
    Kind::GetRequest,
    Kind::GetResponse,
    Kind::MetadataRequest,
    Kind::MetadataResponse,
    Kind::ClusterViewRequest,
    Kind::ClusterViewResponse,
    Kind::ErrorResponse,
];

/// Small limits reach every "too many" branch with short inputs.
fn limits(selector: u8) -> WireLimits {
    if selector & 1 == 0 {
        return WireLimits::default();
    }
    WireLimits {
        max_frame_bytes: 4096,
        max_body_bytes: 64,
        max_bodies_per_append: 4,
        max_messages_per_batch: 4,
        max_groups_per_batch: 4,
        max_entries_per_append: 4,
        max_peers: 3,
    }
}

fn reparse(out: &mut BytesMut, limits: &WireLimits) -> Frame {
    let frame = FrameDecoder::new(limits.max_frame_bytes)
        .decode(out)
        .expect("an encoded frame parses")
        .expect("an encoded frame is complete");
    assert!(out.is_empty(), "one frame, nothing after it");
    frame
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let kind = KINDS[usize::from(data[0]) % KINDS.len()];
    let limits = limits(data[1]);
    let body = Bytes::copy_from_slice(&data[2..]);
    let frame = Frame {
        header: FrameHeader {
            kind,
            flags: 0,
            request_id: 7,
            body_len: body.len() as u32,
        },
        body,
    };
    if let Ok(msg) = ClientMessage::decode(&frame, &limits) {
        let mut out = BytesMut::new();
        // A decoded message can fail to encode only for the frame limit (the body came
        // without a header here); everything else the decoder accepted, the encoder must.
        match msg.encode(7, &limits, &mut out) {
            Ok(len) => {
                assert!(len <= limits.max_frame_bytes as usize);
                let again = ClientMessage::decode(&reparse(&mut out, &limits), &limits)
                    .expect("a re-encoded message decodes");
                assert_eq!(again, msg);
            }
            Err(e) => assert!(
                matches!(e, dledger::wire::WireError::FrameTooLarge { .. }),
                "decoded but cannot encode: {e}"
            ),
        }
    }
    if let Ok(hello) = Hello::decode(&frame, &limits) {
        let mut out = BytesMut::new();
        hello
            .encode(9, &limits, &mut out)
            .expect("a decoded hello encodes");
        let again = Hello::decode(&reparse(&mut out, &limits), &limits).expect("decodes again");
        assert_eq!(again, hello);
    }
});

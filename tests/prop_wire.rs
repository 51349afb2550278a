//! Hostile input against the wire decoders, measured: whatever bytes arrive, decoding
//! never panics and never allocates more than the bytes present justify.
//!
//! A counting global allocator records, per thread, the bytes allocated while a decode
//! runs; each property bounds that figure by a small multiple of the input's size (the
//! decoded form holds a `Bytes` handle or a `String` per item, each item at least a few
//! wire bytes). A length prefix claiming gigabytes therefore shows up as a failure here
//! long before it could hurt a node. The fuzz targets in fuzz/ (README, "Fuzzing") run
//! the same decoders for much longer.

// Test helpers outside #[test] fns: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use dledger::wire::body::Body;
use dledger::wire::{
    ClientMessage, Frame, FrameDecoder, FrameHeader, FrameWriter, HEADER_LEN, Hello, Kind,
    PeerBatch, WireError, WireLimits,
};
use proptest::prelude::*;

/// Counts the bytes each thread allocates (reallocations count their growth).
struct Counting;

thread_local! {
    static ALLOCATED_BYTES: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    // `try_with`: allocations during thread teardown are not counted (and cannot fail).
    let _ = ALLOCATED_BYTES.try_with(|c| c.set(c.get().saturating_add(bytes)));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter only
// reads the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size.saturating_sub(layout.size()));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes this thread allocated while `f` ran.
fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED_BYTES.with(Cell::get);
    let out = f();
    (out, ALLOCATED_BYTES.with(Cell::get) - before)
}

/// What any decode may allocate for `input_bytes` of input: a fixed allowance (error
/// messages, one small vector) plus a bounded amount per input byte. The worst legal
/// case is a vector of 32-byte `Bytes` handles or 40-byte items per 4-byte length
/// prefix (10 per byte) growing by doubling (20 per byte).
fn allowance(input_bytes: usize) -> usize {
    1024 + 24 * input_bytes
}

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

/// Decodes `frame` with the decoder its kind calls for; the outcome does not matter.
fn decode_any(frame: &Frame, limits: &WireLimits) {
    match frame.header.kind {
        Kind::Hello => drop(Hello::decode(frame, limits)),
        Kind::PeerBatch => {
            let mut batch = PeerBatch::default();
            if batch.decode_into(frame, limits, 1, 2).is_err() {
                assert!(batch.items.is_empty(), "a refused batch leaves nothing");
            }
        }
        _ => drop(ClientMessage::decode(frame, limits)),
    }
}

/// A body that is mostly plausible: counts and lengths drawn large, small and exact,
/// so decoders get past the first field often.
fn hostile_body() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        // A count or length prefix: huge, at a limit, or tiny.
        prop_oneof![
            Just(u32::MAX),
            Just(0x7FFF_FFFF),
            Just(65_536u32),
            Just(1024u32),
            0u32..8
        ]
        .prop_map(|n| n.to_be_bytes().to_vec()),
        // A short string with its u8 length.
        "[a-z]{0,6}".prop_map(|s| {
            let mut v = vec![s.len() as u8];
            v.extend_from_slice(s.as_bytes());
            v
        }),
        proptest::collection::vec(any::<u8>(), 0..24),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

fn frame_of(kind: Kind, body: &[u8]) -> Frame {
    Frame {
        header: FrameHeader {
            kind,
            flags: 0,
            request_id: 1,
            body_len: body.len() as u32,
        },
        body: Bytes::copy_from_slice(body),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    /// Every body decoder, on hostile bodies, allocates within the allowance.
    #[test]
    fn body_decoders_allocate_only_what_the_input_justifies(
        kind in proptest::sample::select(KINDS.to_vec()),
        body in hostile_body(),
    ) {
        let limits = WireLimits::default();
        let frame = frame_of(kind, &body);
        let ((), bytes) = allocated_by(|| decode_any(&frame, &limits));
        prop_assert!(bytes <= allowance(body.len()),
            "{kind:?}: {bytes} bytes allocated for a {}-byte body", body.len());
    }

    /// The frame layer on a stream with an arbitrary length prefix: nothing is
    /// allocated for a body that has not arrived, and a prefix above the limit is an
    /// error as soon as the length field is in.
    #[test]
    fn a_length_prefix_reserves_nothing(
        len in prop_oneof![Just(u32::MAX), Just(u32::MAX - HEADER_LEN as u32), any::<u32>(), 0u32..64],
        max_frame_bytes in (HEADER_LEN as u32)..(1 << 24),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut out = BytesMut::new();
        let w = FrameWriter::begin(&mut out, Kind::AppendRequest, 3);
        w.finish(&mut out, u32::MAX).unwrap();
        out[16..20].copy_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&tail);
        let input_bytes = out.len();
        let decoder = FrameDecoder::new(max_frame_bytes);
        let (result, bytes) = allocated_by(|| decoder.decode(&mut out));
        prop_assert!(bytes <= allowance(input_bytes), "{bytes} bytes for {input_bytes} of input");
        let too_large = HEADER_LEN as u64 + u64::from(len) > u64::from(max_frame_bytes);
        // Above the limit: refused from the header alone. Within it: a frame that is
        // still incomplete waits, a complete one fails its CRC (the length was changed).
        let refused_for_size = matches!(result, Err(WireError::FrameTooLarge { .. }));
        prop_assert_eq!(too_large, refused_for_size, "{:?}", result);
        prop_assert!(decoder.bytes_needed(&out) <= max_frame_bytes as usize);
    }

    /// Arbitrary bytes fed as a stream, one random-sized read at a time, the way the
    /// server reads a client connection: no panic, and the buffer never holds more than
    /// what arrived.
    #[test]
    fn a_garbage_stream_is_refused_or_starves(
        stream in proptest::collection::vec(any::<u8>(), 0..512),
        read_bytes in 1usize..64,
    ) {
        let decoder = FrameDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut fed = 0;
        let ((), bytes) = allocated_by(|| loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => decode_any(&frame, &WireLimits::default()),
                Ok(None) if fed < stream.len() => {
                    let n = read_bytes.min(stream.len() - fed);
                    buf.extend_from_slice(&stream[fed..fed + n]);
                    fed += n;
                }
                Ok(None) | Err(_) => break,
            }
        });
        prop_assert!(bytes <= allowance(stream.len()));
    }

    /// Client messages that decode re-encode to a frame that decodes to the same
    /// message: what the server accepts, it can also echo back unchanged.
    #[test]
    fn whatever_decodes_round_trips(
        kind in proptest::sample::select(KINDS[2..].to_vec()),
        body in hostile_body(),
    ) {
        let limits = WireLimits::default();
        if let Ok(msg) = ClientMessage::decode(&frame_of(kind, &body), &limits) {
            let mut out = BytesMut::new();
            msg.encode(9, &limits, &mut out).unwrap();
            let frame = FrameDecoder::new(limits.max_frame_bytes).decode(&mut out).unwrap().unwrap();
            prop_assert_eq!(ClientMessage::decode(&frame, &limits).unwrap(), msg);
            prop_assert_eq!(&frame.body[..], &body[..], "the encoding is canonical");
        }
    }
}

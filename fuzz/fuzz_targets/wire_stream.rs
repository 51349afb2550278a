//! The client/peer frame layer (`dledger::wire::FrameDecoder`, `parse_frame`) on an
//! arbitrary byte stream, fed in arbitrary chunks.
//!
//! Input: `u8 mode | u16 max_frame_bytes selector | u8 chunk | stream`. Mode bit 0 makes
//! the target repair the length and CRC of each frame first (so the fuzzer gets past the
//! CRC and reaches the body decoders). Checked: no panic; chunked decoding gives exactly
//! the frames and the error of whole-buffer decoding; no frame exceeds max_frame_bytes;
//! `bytes_needed` never exceeds it either; every frame body decodes or fails cleanly.
#![no_main]

use bytes::BytesMut;
use dledger::wire::{
    ClientMessage, Frame, FrameDecoder, HEADER_LEN, PeerBatch, WireError, WireLimits,
};
use libfuzzer_sys::fuzz_target;

/// Rewrites length and CRC of consecutive frames in place (length clamped to what is
/// left), leaving magic, version, kind and reserved bytes as the fuzzer wrote them.
fn repair(stream: &mut [u8]) {
    let mut at = 0;
    while stream.len() - at >= HEADER_LEN {
        let rest = stream.len() - at - HEADER_LEN;
        let claimed = u32::from_be_bytes([
            stream[at + 16],
            stream[at + 17],
            stream[at + 18],
            stream[at + 19],
        ]) as usize;
        let body_len = claimed % (rest + 1);
        stream[at + 16..at + 20].copy_from_slice(&(body_len as u32).to_be_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&stream[at..at + 20]);
        h.update(&stream[at + HEADER_LEN..at + HEADER_LEN + body_len]);
        stream[at + 20..at + 24].copy_from_slice(&h.finalize().to_be_bytes());
        at += HEADER_LEN + body_len;
    }
}

fn decode_all(
    decoder: &FrameDecoder,
    max_frame_bytes: u32,
    stream: &[u8],
    chunk: usize,
) -> (Vec<Frame>, Option<WireError>) {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => {
                assert!(decoder.bytes_needed(&buf) <= max_frame_bytes as usize);
                if fed == stream.len() {
                    return (frames, None);
                }
                let take = chunk.min(stream.len() - fed);
                buf.extend_from_slice(&stream[fed..fed + take]);
                fed += take;
            }
            Err(e) => return (frames, Some(e)),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let mode = data[0];
    let max_frame_bytes = HEADER_LEN as u32 + u32::from(u16::from_be_bytes([data[1], data[2]]));
    let chunk = usize::from(data[3]).max(1);
    let mut stream = data[4..].to_vec();
    if mode & 1 != 0 {
        repair(&mut stream);
    }
    let decoder = FrameDecoder::new(max_frame_bytes);
    let (whole, whole_err) = decode_all(&decoder, max_frame_bytes, &stream, stream.len().max(1));
    let (chunked, chunked_err) = decode_all(&decoder, max_frame_bytes, &stream, chunk);
    // An error is found at the same frame either way; a chunked feed may see a header
    // error before the whole frame is there, but never a different one.
    assert_eq!(whole, chunked);
    assert_eq!(whole_err, chunked_err);
    let mut limits = WireLimits::default();
    limits.max_frame_bytes = max_frame_bytes;
    for f in &whole {
        assert!(HEADER_LEN + f.body.len() <= max_frame_bytes as usize);
        assert_eq!(f.header.body_len as usize, f.body.len());
        if let Err(e) = ClientMessage::decode(f, &limits) {
            let _ = e.to_string();
            let _ = e.response_code();
        }
        let mut batch = PeerBatch::default();
        if batch.decode_into(f, &limits, 1, 2).is_err() {
            assert!(batch.items.is_empty());
        }
    }
});

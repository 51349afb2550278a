//! The peer transport's own envelope (`dledger_shards::net::frame`): the 12-byte header,
//! Hello / HelloAck / HelloReject payloads, and the length-prefixed item splitter.
//!
//! Input: `u8 selector | u16 max payload | bytes`. Checked: no panic; a header that
//! decodes never announces more than the limit; a payload that decodes re-encodes to
//! the same bytes; the splitter yields items that tile the payload exactly, or one error
//! and then nothing.
#![no_main]

use dledger_shards::net::frame::{
    FRAME_HEADER_BYTES, Hello, HelloAck, RejectReason, decode_header,
};
use dledger_shards::net::split_length_prefixed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let max_payload = usize::from(u16::from_be_bytes([data[1], data[2]]));
    let bytes = &data[3..];
    match data[0] % 4 {
        0 => {
            if let Some(h) = bytes.get(..FRAME_HEADER_BYTES) {
                let h: &[u8; FRAME_HEADER_BYTES] = h.try_into().expect("12 bytes");
                if let Ok(header) = decode_header(h, max_payload) {
                    assert!(header.payload_len <= max_payload);
                }
            }
        }
        1 => {
            if let Ok(hello) = Hello::decode_payload(bytes) {
                let mut out = Vec::new();
                hello.encode_frame(&mut out);
                assert_eq!(&out[FRAME_HEADER_BYTES..], bytes);
                let header: &[u8; FRAME_HEADER_BYTES] =
                    out[..FRAME_HEADER_BYTES].try_into().expect("12 bytes");
                let header = decode_header(header, usize::MAX).expect("own header");
                assert_eq!(header.payload_len, bytes.len());
            }
        }
        2 => {
            if let Ok(ack) = HelloAck::decode_payload(bytes) {
                let mut out = Vec::new();
                ack.encode_frame(&mut out);
                assert_eq!(&out[FRAME_HEADER_BYTES..], bytes);
            }
            if let Some(&code) = bytes.first() {
                assert_eq!(RejectReason::from_code(code).code(), code);
            }
        }
        _ => {
            let mut covered = 0usize;
            let mut failed = false;
            for item in split_length_prefixed(bytes) {
                assert!(!failed, "nothing after an error");
                match item {
                    Ok(item) => covered += 4 + item.len(),
                    Err(_) => failed = true,
                }
            }
            assert!(failed || covered == bytes.len());
            assert!(covered <= bytes.len());
        }
    }
});

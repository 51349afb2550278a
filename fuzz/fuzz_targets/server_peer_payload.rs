//! The server's peer payload decoder (`dledger_shards::server::decode_peer_payload`):
//! tagged items (client addresses, wire PeerBatch frames) inside one transport frame.
//!
//! Input: `u8 mode | bytes`. Mode bit 0: `bytes` is the payload as is. Otherwise the
//! target wraps `bytes` as the body of one valid wire PeerBatch frame (correct length
//! and CRC, from/to taken from its first 8 bytes) behind the Raft tag, so the fuzzer
//! reaches the batch decoder. Checked: no panic; nothing is reported for a payload
//! that fails before its first item; every Raft item carries the connection's ids.
#![no_main]

use bytes::BytesMut;
use dledger::wire::{FrameWriter, Kind, WireLimits};
use dledger_shards::server::{PeerInbound, decode_peer_payload};
use libfuzzer_sys::fuzz_target;

const TAG_RAFT: u8 = 1;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let limits = WireLimits::default();
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (from, to) = (word(0), word(4));
    let payload = if mode & 1 != 0 {
        bytes.to_vec()
    } else {
        let mut out = BytesMut::new();
        let w = FrameWriter::begin(&mut out, Kind::PeerBatch, 0);
        out.extend_from_slice(bytes);
        if w.finish(&mut out, limits.max_frame_bytes).is_err() {
            return;
        }
        let mut payload = vec![TAG_RAFT];
        payload.extend_from_slice(&out);
        payload
    };
    let result = decode_peer_payload(bytes::Bytes::from(payload), from, to, &limits, |item| {
        if let PeerInbound::Raft(batch) = item {
            assert_eq!((batch.from, batch.to), (from, to));
            for i in &batch.items {
                assert_eq!((i.msg.from, i.msg.to), (from, to));
            }
        }
    });
    if let Err(e) = result {
        assert!(!e.is_empty(), "an error names what was wrong");
    }
});

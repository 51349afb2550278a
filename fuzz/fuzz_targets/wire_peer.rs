//! The wire peer batch decoder (`PeerBatch::decode_into`) on an arbitrary body.
//!
//! Input: `u8 limits/mismatch selector | body`; the connection's expected sender and
//! receiver are taken from the body's own first 8 bytes (so the fuzzer reaches the
//! sections) unless bit 1 of the selector asks for a mismatch. Checked: no panic; on an
//! error the batch is left empty; on success every item carries the handshake's ids, the
//! counts respect the limits, and one batch reused for a second decode gives the same
//! result.
#![no_main]

use bytes::Bytes;
use dledger::raft::MsgBody;
use dledger::wire::{Frame, FrameHeader, Kind, PeerBatch, WireLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let selector = data[0];
    let body = Bytes::copy_from_slice(&data[1..]);
    let mut limits = WireLimits::default();
    if selector & 1 != 0 {
        limits.max_messages_per_batch = 3;
        limits.max_groups_per_batch = 3;
        limits.max_entries_per_append = 3;
    }
    let word = |at: usize| {
        body.get(at..at + 4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (mut from, to) = (word(0), word(4));
    if selector & 2 != 0 {
        from ^= 1;
    }
    let frame = Frame {
        header: FrameHeader {
            kind: Kind::PeerBatch,
            flags: 0,
            request_id: 1,
            body_len: body.len() as u32,
        },
        body,
    };
    let mut batch = PeerBatch::default();
    let first = batch.decode_into(&frame, &limits, from, to);
    match &first {
        Err(_) => assert!(
            batch.items.is_empty(),
            "a refused batch leaves nothing behind"
        ),
        Ok(()) => {
            assert_eq!((batch.from, batch.to), (from, to));
            for item in &batch.items {
                assert_eq!((item.msg.from, item.msg.to), (from, to));
                match item.msg.body {
                    MsgBody::Append { count, .. } => {
                        assert!(count <= limits.max_entries_per_append);
                        assert_eq!(count == 0, item.entries.is_empty());
                    }
                    _ => assert!(item.entries.is_empty()),
                }
            }
        }
    }
    let items = batch.items.clone();
    let second = batch.decode_into(&frame, &limits, from, to);
    assert_eq!(first, second);
    assert_eq!(items, batch.items);
});

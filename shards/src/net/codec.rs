//! What the transport needs from a peer codec, and a length-prefixed codec for byte items.
//!
//! The transport batches *items* (one Raft message with its entries, say) into frames;
//! it never looks inside them. A codec turns one item into bytes that delimit themselves,
//! so the receiver can split a batch payload back into items.

use std::collections::VecDeque;

use dledger::wire::GatherBuf;

/// What one call of [`PeerCodec::encode_batch`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchEncoded {
    /// Items encoded into the payload (removed from the queue).
    pub items: u64,
    /// Items removed because one alone cannot fit `max_payload_bytes` (dropped).
    pub dropped: u64,
}

/// Encodes the items groups enqueue for a peer into batch payloads.
///
/// Batch-level rather than item-level so a codec can lay a batch out as it likes (for
/// example all heartbeats of all groups in one section ahead of the other messages).
pub trait PeerCodec: 'static {
    /// One unit a group enqueues (a message).
    type Item: 'static;

    /// Appends the payload of one Batch frame to `out`, at most `max_payload_bytes`
    /// (large parts may be spliced rather than copied: see [`GatherBuf`]),
    /// taking items from `queue` (which it may reorder) and removing every item it
    /// encoded or dropped. Must make progress: when `queue` is not empty, it takes or
    /// drops at least one item.
    fn encode_batch(
        &self,
        queue: &mut VecDeque<Self::Item>,
        out: &mut GatherBuf,
        max_payload_bytes: usize,
    ) -> BatchEncoded;
}

/// Items are opaque byte strings, each written as `len u32 BE | bytes`, in queue order.
#[derive(Clone, Copy, Debug, Default)]
pub struct LengthPrefixedCodec;

impl PeerCodec for LengthPrefixedCodec {
    type Item = Vec<u8>;

    fn encode_batch(
        &self,
        queue: &mut VecDeque<Vec<u8>>,
        out: &mut GatherBuf,
        max_payload_bytes: usize,
    ) -> BatchEncoded {
        let mut encoded = BatchEncoded::default();
        let mut payload_bytes = 0usize;
        while let Some(item) = queue.front() {
            let item_bytes = 4 + item.len();
            if item_bytes > max_payload_bytes {
                tracing::warn!(
                    item_bytes,
                    max_payload_bytes,
                    "dropping a peer item larger than a frame"
                );
                queue.pop_front();
                encoded.dropped += 1;
                continue;
            }
            if payload_bytes + item_bytes > max_payload_bytes {
                break;
            }
            // item.len() < max_payload_bytes <= u32::MAX (checked by PeerNetConfig).
            out.put_slice(&(item.len() as u32).to_be_bytes());
            out.put_slice(item);
            payload_bytes += item_bytes;
            queue.pop_front();
            encoded.items += 1;
        }
        encoded
    }
}

/// Splits a payload of [`LengthPrefixedCodec`] items. Yields an error (then stops) at
/// the first item whose length runs past the payload.
pub fn split_length_prefixed(payload: &[u8]) -> impl Iterator<Item = Result<&[u8], String>> {
    let mut rest = payload;
    let mut failed = false;
    std::iter::from_fn(move || {
        if rest.is_empty() || failed {
            return None;
        }
        if rest.len() < 4 {
            failed = true;
            return Some(Err(format!(
                "{} trailing bytes, less than a length",
                rest.len()
            )));
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if rest.len() - 4 < len {
            failed = true;
            return Some(Err(format!(
                "item of {len} bytes runs past the payload ({} left)",
                rest.len() - 4
            )));
        }
        let item = &rest[4..4 + len];
        rest = &rest[4 + len..];
        Some(Ok(item))
    })
}

#[cfg(test)]
mod tests {
    fn encode_all(items: &[Vec<u8>]) -> Vec<u8> {
        let mut queue: VecDeque<Vec<u8>> = items.iter().cloned().collect();
        let mut payload = GatherBuf::new();
        let encoded = LengthPrefixedCodec.encode_batch(&mut queue, &mut payload, usize::MAX);
        assert_eq!(encoded.items, items.len() as u64);
        payload.to_bytes().to_vec()
    }

    use super::*;

    #[test]
    fn items_round_trip() {
        let items: Vec<Vec<u8>> = vec![vec![], vec![1], vec![2; 300]];
        let payload = encode_all(&items);
        let back: Vec<&[u8]> = split_length_prefixed(&payload)
            .collect::<Result<_, _>>()
            .expect("valid payload");
        assert_eq!(back, items.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }

    #[test]
    fn truncated_payload_is_an_error() {
        let payload = encode_all(&[vec![7; 10]]);
        for cut in 1..payload.len() {
            assert!(
                split_length_prefixed(&payload[..cut]).any(|r| r.is_err()),
                "cut at {cut}"
            );
        }
    }
}

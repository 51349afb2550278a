//! What the transport needs from a peer codec, and a length-prefixed codec for byte items.
//!
//! The transport batches *items* (one Raft message with its entries, say) into frames;
//! it never looks inside them. A codec turns one item into bytes that delimit themselves,
//! so the receiver can split a batch payload back into items.

/// Encodes the items groups enqueue for a peer.
pub trait PeerCodec: 'static {
    /// One unit a group enqueues (a message).
    type Item: 'static;

    /// Appends one self-delimiting encoding of `item` to `out`.
    fn encode_item(&self, item: &Self::Item, out: &mut Vec<u8>);
}

/// Items are opaque byte strings, each written as `len u32 BE | bytes`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LengthPrefixedCodec;

impl PeerCodec for LengthPrefixedCodec {
    type Item = Vec<u8>;

    fn encode_item(&self, item: &Vec<u8>, out: &mut Vec<u8>) {
        let len = u32::try_from(item.len()).expect("items are bounded by max_frame_bytes (u32)");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(item);
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
    use super::*;

    #[test]
    fn items_round_trip() {
        let items: Vec<Vec<u8>> = vec![vec![], vec![1], vec![2; 300]];
        let mut payload = Vec::new();
        for item in &items {
            LengthPrefixedCodec.encode_item(item, &mut payload);
        }
        let back: Vec<&[u8]> = split_length_prefixed(&payload)
            .collect::<Result<_, _>>()
            .expect("valid payload");
        assert_eq!(back, items.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }

    #[test]
    fn truncated_payload_is_an_error() {
        let mut payload = Vec::new();
        LengthPrefixedCodec.encode_item(&vec![7; 10], &mut payload);
        for cut in 1..payload.len() {
            assert!(
                split_length_prefixed(&payload[..cut]).any(|r| r.is_err()),
                "cut at {cut}"
            );
        }
    }
}

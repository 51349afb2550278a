//! A send buffer whose large parts are referenced, not copied.
//!
//! Frames are written as a byte stream made of two kinds of pieces, in order:
//!
//! ```text
//! head[0..a0] | part0 | head[a0..a1] | part1 | ... | head[a_last..]
//! ```
//!
//! `head` holds everything written in place (frame headers, counts, message fields, a
//! record's 48-byte header); each *part* is a `Bytes` shared with its owner (a record
//! body in the log's tail cache), spliced in after `head[..a_i]`. A socket sends the
//! pieces with one gather write ([`GatherBuf::pieces`]); a frame's CRC is computed over
//! them in order ([`GatherBuf::crc_since`]). Nothing is concatenated.
//!
//! Positions: [`GatherBuf::len`] counts every byte of the stream; a [`Mark`] records a
//! point of it (taken with [`GatherBuf::mark`]) to measure, checksum or cut back to.
//! In-place bytes are patched by their offset in `head` ([`GatherBuf::patch`]).

use bytes::{Bytes, BytesMut};

/// A part spliced into the stream after `head[..head_at]`.
#[derive(Clone, Debug)]
struct Part {
    head_at: usize,
    bytes: Bytes,
}

/// A point in a [`GatherBuf`]'s stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// `head` bytes before the point (where in-place bytes written next will go).
    pub head_len: usize,
    parts: usize,
    len: usize,
}

/// See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct GatherBuf {
    head: BytesMut,
    parts: Vec<Part>,
    parts_bytes: usize,
}

impl GatherBuf {
    pub fn new() -> GatherBuf {
        GatherBuf::default()
    }

    pub fn with_head_capacity(head_bytes: usize) -> GatherBuf {
        GatherBuf {
            head: BytesMut::with_capacity(head_bytes),
            ..GatherBuf::default()
        }
    }

    /// Bytes in the stream (in place and spliced).
    pub fn len(&self) -> usize {
        self.head.len() + self.parts_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Spliced parts (each one piece of a gather write, besides the head pieces).
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// Capacity of the in-place buffer (to give memory back after a burst).
    pub fn head_capacity(&self) -> usize {
        self.head.capacity()
    }

    /// The in-place bytes (without the parts).
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// The in-place buffer, to append to. Bytes must only be added at its end (or
    /// patched with [`Self::patch`]): cutting it would misplace the parts.
    pub fn head_mut(&mut self) -> &mut BytesMut {
        &mut self.head
    }

    /// Appends `bytes` by copying them in place.
    pub fn put_slice(&mut self, bytes: &[u8]) {
        self.head.extend_from_slice(bytes);
    }

    /// Appends `part` without copying it (a reference count). Empty parts add nothing.
    pub fn splice(&mut self, part: &Bytes) {
        if part.is_empty() {
            return;
        }
        self.parts_bytes += part.len();
        self.parts.push(Part {
            head_at: self.head.len(),
            bytes: part.clone(),
        });
    }

    /// The current end of the stream.
    pub fn mark(&self) -> Mark {
        Mark {
            head_len: self.head.len(),
            parts: self.parts.len(),
            len: self.len(),
        }
    }

    /// Stream bytes written since `mark`.
    pub fn len_since(&self, mark: Mark) -> usize {
        debug_assert!(mark.len <= self.len(), "a mark from a cut-back stream");
        self.len() - mark.len
    }

    /// Overwrites in-place bytes at `head_at..head_at + bytes.len()` of the head.
    ///
    /// # Panics
    /// When the range is not within the head.
    pub fn patch(&mut self, head_at: usize, bytes: &[u8]) {
        self.head[head_at..head_at + bytes.len()].copy_from_slice(bytes);
    }

    /// Cuts the stream back to `mark`, dropping every part spliced after it.
    pub fn truncate(&mut self, mark: Mark) {
        assert!(
            mark.parts <= self.parts.len() && mark.head_len <= self.head.len(),
            "a mark from a cut-back stream"
        );
        for p in self.parts.drain(mark.parts..) {
            self.parts_bytes -= p.bytes.len();
        }
        self.head.truncate(mark.head_len);
        debug_assert_eq!(self.len(), mark.len);
    }

    /// Empties the buffer, keeping the head's capacity and releasing every part.
    pub fn clear(&mut self) {
        self.head.clear();
        self.parts.clear();
        self.parts_bytes = 0;
    }

    /// Feeds the stream's bytes from `mark` to the end, in order, to `hasher`,
    /// skipping the first `skip_head` in-place bytes after the mark (a header whose CRC
    /// field is being computed).
    pub fn crc_since(&self, mark: Mark, skip_head: usize, hasher: &mut crc32fast::Hasher) {
        let from = mark.head_len + skip_head;
        debug_assert!(
            self.parts[mark.parts..].iter().all(|p| p.head_at >= from),
            "no part may lie inside the skipped head bytes"
        );
        self.for_each_piece(mark.parts, from, |piece| hasher.update(piece));
    }

    /// Every piece of the stream, in order (the iovecs of a gather write). Empty head
    /// pieces are left out.
    pub fn pieces(&self) -> Vec<&[u8]> {
        let mut out = Vec::with_capacity(2 * self.parts.len() + 1);
        self.for_each_piece(0, 0, |piece| out.push(piece));
        out
    }

    /// The whole stream in one buffer (a copy: for tests and tools).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len());
        self.for_each_piece(0, 0, |piece| out.extend_from_slice(piece));
        out.freeze()
    }

    /// Calls `each` with the pieces from `head[head_from..]` and `parts[first_part..]`
    /// interleaved in stream order.
    fn for_each_piece<'a>(
        &'a self,
        first_part: usize,
        head_from: usize,
        mut each: impl FnMut(&'a [u8]),
    ) {
        let mut at = head_from;
        for p in &self.parts[first_part..] {
            if p.head_at > at {
                each(&self.head[at..p.head_at]);
                at = p.head_at;
            }
            each(&p.bytes);
        }
        if self.head.len() > at {
            each(&self.head[at..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_interleave_in_write_order_and_parts_are_not_copied() {
        let body = Bytes::from(vec![7u8; 100]);
        let mut g = GatherBuf::new();
        g.put_slice(b"ab");
        g.splice(&body);
        g.splice(&Bytes::from_static(b"xyz"));
        g.put_slice(b"cd");
        g.splice(&Bytes::new());
        assert_eq!(g.len(), 2 + 100 + 3 + 2);
        let pieces = g.pieces();
        assert_eq!(pieces.len(), 4);
        assert_eq!(
            pieces[1].as_ptr(),
            body.as_ptr(),
            "the part itself, not a copy"
        );
        let mut want = b"ab".to_vec();
        want.extend_from_slice(&body);
        want.extend_from_slice(b"xyzcd");
        assert_eq!(&g.to_bytes()[..], &want[..]);
    }

    #[test]
    fn truncate_and_crc_follow_marks() {
        let mut g = GatherBuf::new();
        g.put_slice(b"head");
        g.splice(&Bytes::from_static(b"PART"));
        let m = g.mark();
        g.put_slice(b"HDRbody");
        g.splice(&Bytes::from_static(b"tail"));
        assert_eq!(g.len_since(m), 11);
        let mut h = crc32fast::Hasher::new();
        g.crc_since(m, 3, &mut h);
        assert_eq!(h.finalize(), crc32fast::hash(b"bodytail"));
        g.patch(m.head_len, b"hdr");
        assert_eq!(&g.to_bytes()[..], b"headPARThdrbodytail");
        g.truncate(m);
        assert_eq!(&g.to_bytes()[..], b"headPART");
        assert_eq!(g.part_count(), 1);
    }
}

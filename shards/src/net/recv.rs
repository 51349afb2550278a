//! A receive buffer that frames are cut out of without copying.
//!
//! The socket reads straight into a zeroed *region*; received bytes are a `BytesMut`
//! (`filled`) followed, in the same allocation, by the free rest of the region (`room`).
//! A read fills the front of `room`, which is then joined to `filled` (`unsplit`: no copy,
//! the two are contiguous). A decoder cuts complete frames off the front of `filled`
//! (`split_to`, no copy), so a frame's body — and an append's entry bodies sliced from
//! it — stay in the region until they are dropped. Only when the region runs out is a
//! new one allocated, and the partly received frame at its end (if any) is moved there:
//! that is the one copy this layer makes, at most one frame per region.
//!
//! Bounds: a region is `region_bytes`, or — for a frame larger than that (its size
//! checked by the caller's decoder against its frame limit) — twice the bytes of it
//! received so far, up to the frame's size. Old regions live as long as frames cut from
//! them are held.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::BytesMut;
use futures_lite::AsyncRead;

/// A new region is started when less than this is left (a read this small would cost a
/// syscall for little data).
const ROOM_MIN_BYTES: usize = 4096;

#[derive(Debug)]
pub struct RecvBuffer {
    filled: BytesMut,
    room: BytesMut,
    region_bytes: usize,
    /// Bytes moved to a new region (a frame straddling the end of the old one).
    moved_bytes: u64,
    /// Whether any byte has arrived yet; until then the room is small (see `make_room`).
    received_any: bool,
}

impl RecvBuffer {
    pub fn new(region_bytes: usize) -> RecvBuffer {
        assert!(
            region_bytes >= 2 * ROOM_MIN_BYTES,
            "a receive region must hold a few reads"
        );
        RecvBuffer {
            filled: BytesMut::new(),
            room: BytesMut::new(),
            region_bytes,
            moved_bytes: 0,
            received_any: false,
        }
    }

    /// The received bytes not yet taken: decoders split frames off its front.
    pub fn filled(&mut self) -> &mut BytesMut {
        &mut self.filled
    }

    /// Bytes copied so far because a frame straddled the end of a region.
    pub fn moved_bytes(&self) -> u64 {
        self.moved_bytes
    }

    /// Reads once from `reader` (at least `want` bytes of `filled` plus the read must fit
    /// the region: `want` is what the next frame needs in total). Returns the bytes
    /// read; 0 is the end of the stream.
    pub async fn read_from<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        want: usize,
    ) -> std::io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read_from(cx, reader, want)).await
    }

    /// [`Self::read_from`] for poll-based callers.
    pub fn poll_read_from<R: AsyncRead + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
        want: usize,
    ) -> Poll<std::io::Result<usize>> {
        self.make_room(want);
        let n = ready!(Pin::new(reader).poll_read(cx, &mut self.room[..]))?;
        let got = self.room.split_to(n);
        self.filled.unsplit(got);
        self.received_any |= n > 0;
        Poll::Ready(Ok(n))
    }

    /// Ensures `room` can take the rest of a `want`-byte frame and is not tiny. A frame
    /// larger than a region grows its room by doubling what has arrived, so memory
    /// follows received bytes, not the announced length (a peer announcing many large
    /// frames it never sends cannot make us allocate them); the copies this costs are
    /// bounded by twice the frame.
    fn make_room(&mut self, want: usize) {
        let missing = want.saturating_sub(self.filled.len());
        if self.room.len() >= missing.max(ROOM_MIN_BYTES) {
            return;
        }
        if want > self.region_bytes && self.room.len() >= ROOM_MIN_BYTES {
            // A large frame: fill this region before growing.
            return;
        }
        let size = if !self.received_any && self.filled.is_empty() {
            // Nothing has arrived on this connection yet: a room for the first frame
            // only, not a region. Idle connections (up to maxClientConnections of them)
            // then hold a few KiB each, and none of a region's pages: a region that was
            // allocated but never read into was free only while the allocator handed out
            // fresh mmapped pages for it, which glibc stops doing once such regions are
            // freed (its mmap threshold rises) — then each idle connection cost a whole
            // zeroed region (seen: +140 MB for ~1,000 idle connections).
            (want + ROOM_MIN_BYTES).min(self.region_bytes)
        } else {
            let grown = want.min(self.filled.len().saturating_mul(2).max(self.region_bytes));
            self.region_bytes.max(grown + ROOM_MIN_BYTES)
        };
        let mut region = BytesMut::zeroed(size);
        let keep = self.filled.len();
        region[..keep].copy_from_slice(&self.filled);
        self.moved_bytes += keep as u64;
        self.filled = region.split_to(keep);
        self.room = region;
        debug_assert!(self.room.len() >= ROOM_MIN_BYTES);
        debug_assert!(want > self.region_bytes || self.room.len() >= missing);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns the script's chunks one per read.
    struct Chunks(std::collections::VecDeque<Vec<u8>>);

    impl AsyncRead for Chunks {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let Some(mut c) = self.0.pop_front() else {
                return std::task::Poll::Ready(Ok(0));
            };
            let n = c.len().min(buf.len());
            buf[..n].copy_from_slice(&c[..n]);
            if n < c.len() {
                self.0.push_front(c.split_off(n));
            }
            std::task::Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn frames_come_out_in_order_and_only_straddling_bytes_move() {
        // 10-byte "frames" read in 7-byte chunks through an 8 KiB region.
        let data: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
        let chunks = data.chunks(7).map(<[u8]>::to_vec).collect();
        let mut reader = Chunks(chunks);
        let mut buf = RecvBuffer::new(8192);
        let mut out = Vec::new();
        futures_lite::future::block_on(async {
            loop {
                while buf.filled().len() >= 10 {
                    out.extend_from_slice(&buf.filled().split_to(10));
                }
                if buf.read_from(&mut reader, 10).await.expect("scripted read") == 0 {
                    break;
                }
            }
        });
        assert_eq!(out, data);
        // Each region switch moves fewer than one frame's bytes.
        let switches = data.len() as u64 / (8192 - 4096) + 1;
        assert!(
            buf.moved_bytes() < 10 * switches,
            "moved {}",
            buf.moved_bytes()
        );
    }

    #[test]
    fn a_frame_larger_than_the_region_grows_with_what_arrives() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 241) as u8).collect();
        let mut reader = Chunks(std::collections::VecDeque::from([data.clone()]));
        let mut buf = RecvBuffer::new(8192);
        let mut reads = 0;
        futures_lite::future::block_on(async {
            while buf.filled().len() < data.len() {
                let n = buf
                    .read_from(&mut reader, data.len())
                    .await
                    .expect("scripted read");
                assert!(n > 0, "the frame arrives whole");
                reads += 1;
                // Room never runs more than a region (plus slack) ahead of what arrived.
                assert!(buf.room.len() <= (2 * buf.filled().len()).max(8192) + ROOM_MIN_BYTES);
            }
        });
        assert_eq!(&buf.filled()[..], &data[..]);
        assert!(
            reads > 1,
            "the room grew in steps, not to the announced size at once"
        );
        // Doubling moves fewer bytes than twice the frame.
        assert!(buf.moved_bytes() < 2 * data.len() as u64);
    }

    #[test]
    fn an_announced_frame_that_never_comes_costs_one_region() {
        // A header says 16 MiB follow; only 100 bytes come.
        let mut reader = Chunks(std::collections::VecDeque::from([vec![1u8; 100]]));
        let mut buf = RecvBuffer::new(8192);
        futures_lite::future::block_on(async {
            let n = buf
                .read_from(&mut reader, 16 << 20)
                .await
                .expect("scripted read");
            assert_eq!(n, 100);
        });
        assert!(buf.filled().len() + buf.room.len() <= 8192 + ROOM_MIN_BYTES);
    }

    #[test]
    fn a_connection_that_sent_nothing_holds_a_small_room_not_a_region() {
        let region = 256 << 10;
        let mut buf = RecvBuffer::new(region);
        // The first read waits on a small room (the reader has nothing yet).
        let mut reader = Chunks(std::collections::VecDeque::from([
            vec![7u8; 16],
            vec![8u8; 100],
        ]));
        futures_lite::future::block_on(async {
            buf.read_from(&mut reader, 16).await.expect("scripted read");
        });
        assert!(buf.filled().len() + buf.room.len() <= 16 + ROOM_MIN_BYTES);
        // Once bytes have come, later rooms are whole regions again.
        buf.filled().clear();
        futures_lite::future::block_on(async {
            buf.read_from(&mut reader, 2 * ROOM_MIN_BYTES)
                .await
                .expect("scripted read");
        });
        assert!(buf.filled().len() + buf.room.len() >= region);
    }
}

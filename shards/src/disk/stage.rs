//! The write stage: the DMA buffer that records are encoded into, and the aligned
//! chunks it is cut into for the device.
//!
//! A stage covers positions `[start_pos, start_pos + capacity)` of one segment, with
//! `start_pos` block aligned. Its first `carried` bytes are the partly filled tail
//! block of the previous chunk: already written once, rewritten (with more bytes in
//! it) by the next chunk, because direct I/O writes whole blocks only.

use dledger::store::align::BlockSize;
use dledger::store::cursor::LogCursor;
use dledger::store::record::RecordHeader;
use glommio::io::DmaBuffer;

/// An aligned write ready for the device.
#[derive(Debug)]
pub(crate) struct Chunk {
    /// Start of the segment the chunk belongs to.
    pub seg_start: u64,
    /// Aligned position of the first byte of `buf`.
    pub pos: u64,
    /// Whole blocks: valid bytes, then zero padding to the block end.
    pub buf: DmaBuffer,
    /// The log's cursor after the last record complete in this chunk (monotone over
    /// chunks): what becomes durable when the chunk is.
    pub cursor: LogCursor,
    /// Bytes appended since the previous chunk (not counting rewritten tail bytes).
    pub new_bytes: u64,
}

/// Smallest stage buffer after a round was cut for the writer. Not smaller: a round
/// that outgrows its stage is cut into two chunks written one after the other (with 16
/// KiB, 16 clients' 1 KiB appends did often: c=16 fell from a median 13,182 to 11,618
/// appends/s in 5 alternating runs); still below glibc's mmap threshold (128 KiB), so a
/// buffer that glommio's arena cannot give comes from the heap, not from an mmap.
pub(crate) const STAGE_BYTES_MIN: usize = 64 << 10;

/// Capacity of the stage that continues after one holding `used_bytes` was cut for a
/// write: room for twice as much (appends tend to keep the last round's pace), within
/// [`STAGE_BYTES_MIN`] and `write_buffer_bytes` (a burst that fills it continues in a
/// stage of `write_buffer_bytes`). With many groups each round holds a record or two:
/// a `write_buffer_bytes` (1 MiB) buffer per group per round came from the system
/// allocator (an mmap, page faults and a munmap each), a small one from glommio's
/// registered arena or the heap.
pub(crate) fn next_stage_bytes(used_bytes: usize, write_buffer_bytes: usize) -> usize {
    (2 * used_bytes).clamp(STAGE_BYTES_MIN.min(write_buffer_bytes), write_buffer_bytes)
}

/// The stage's bytes: a buffer is taken only when the first new byte is staged. Until
/// then the stage holds just the carried tail (less than a block): every log has a
/// stage at all times, and a node hosting a thousand idle groups held a
/// [`STAGE_BYTES_MIN`] buffer for each (64 MiB, most of the node's memory).
#[derive(Debug)]
enum StageBytes {
    /// No new byte yet: the carried bytes, and the capacity the buffer will have.
    Waiting {
        carried: Vec<u8>,
        capacity: usize,
    },
    Buffer(DmaBuffer),
}

#[derive(Debug)]
pub(crate) struct Stage {
    pub seg_start: u64,
    pub start_pos: u64,
    bytes: StageBytes,
    len: usize,
    carried: usize,
    /// The log's cursor after the last record in the stage.
    pub cursor: LogCursor,
}

impl Stage {
    /// A stage at aligned `start_pos` whose buffer starts with `carried` (the bytes
    /// `[start_pos, start_pos + carried.len())`, already written once).
    pub(crate) fn new(
        seg_start: u64,
        start_pos: u64,
        capacity: usize,
        carried: &[u8],
        cursor: LogCursor,
    ) -> Stage {
        let capacity = capacity.max(carried.len()).next_multiple_of(4096);
        Stage {
            seg_start,
            start_pos,
            bytes: StageBytes::Waiting {
                carried: carried.to_vec(),
                capacity,
            },
            len: carried.len(),
            carried: carried.len(),
            cursor,
        }
    }

    pub(crate) fn end_pos(&self) -> u64 {
        self.start_pos + self.len as u64
    }

    fn capacity(&self) -> usize {
        match &self.bytes {
            StageBytes::Waiting { capacity, .. } => *capacity,
            StageBytes::Buffer(buf) => buf.len(),
        }
    }

    /// Whether the stage holds its buffer yet (it takes one with the first new byte).
    #[cfg(test)]
    fn holds_buffer(&self) -> bool {
        matches!(self.bytes, StageBytes::Buffer(_))
    }

    pub(crate) fn free_bytes(&self) -> usize {
        self.capacity() - self.len
    }

    /// The stage's buffer, taken (with the carried bytes copied in) on first use.
    fn buffer(&mut self) -> &mut DmaBuffer {
        if let StageBytes::Waiting { carried, capacity } = &self.bytes {
            debug_assert_eq!(carried.len(), self.len, "nothing new before the buffer");
            let mut buf = glommio::allocate_dma_buffer(*capacity);
            buf.as_bytes_mut()[..carried.len()].copy_from_slice(carried);
            self.bytes = StageBytes::Buffer(buf);
        }
        let StageBytes::Buffer(buf) = &mut self.bytes else {
            unreachable!("the buffer was just taken")
        };
        buf
    }

    /// Bytes in the stage, the carried tail block included.
    pub(crate) fn used_bytes(&self) -> usize {
        self.len
    }

    /// True when bytes were appended since the stage was made.
    pub(crate) fn has_new_bytes(&self) -> bool {
        self.len > self.carried
    }

    /// The next `n` free bytes, to be filled and then [`Stage::commit`]ted.
    pub(crate) fn spare_mut(&mut self, n: usize) -> &mut [u8] {
        debug_assert!(n <= self.free_bytes());
        let len = self.len;
        &mut self.buffer().as_bytes_mut()[len..len + n]
    }

    /// Takes the `n` bytes filled after [`Stage::spare_mut`]: a record (`Some`) or a
    /// filler (`None`).
    pub(crate) fn commit(&mut self, n: usize, record: Option<&RecordHeader>) {
        assert!(n <= self.free_bytes(), "commit past the stage buffer");
        debug_assert!(
            n == 0 || matches!(self.bytes, StageBytes::Buffer(_)),
            "bytes are committed after spare_mut filled them"
        );
        self.len += n;
        if let Some(h) = record {
            self.cursor.advance(h);
        }
    }

    /// Bytes `[pos, pos + n)` of the stage.
    pub(crate) fn bytes(&self, pos: u64, n: usize) -> &[u8] {
        let at = (pos - self.start_pos) as usize;
        match &self.bytes {
            StageBytes::Waiting { carried, .. } => &carried[at..at + n],
            StageBytes::Buffer(buf) => &buf.as_bytes()[at..at + n],
        }
    }

    /// Cuts the stage into an aligned chunk (zero padded to the block end) and, when
    /// the last block is partly filled and `continue_capacity` is given, the stage
    /// that continues after it with that tail block carried.
    pub(crate) fn seal(
        mut self,
        block: BlockSize,
        continue_capacity: Option<usize>,
    ) -> (Chunk, Option<Stage>) {
        // A stage with nothing new is sealed only when a record does not fit it: its
        // carried tail is then written again, as it would be from a buffer.
        self.buffer();
        let StageBytes::Buffer(mut buf) = self.bytes else {
            unreachable!("the buffer was just taken")
        };
        let end = self.start_pos + self.len as u64;
        let split = block
            .split_tail(self.start_pos, end)
            .expect("a stage starts block aligned and stays inside a segment");
        let tail_at = (split.full_end - self.start_pos) as usize;
        let write_len = (split.write_end - split.write_start) as usize;
        let next = continue_capacity.map(|cap| {
            Stage::new(
                self.seg_start,
                split.full_end,
                cap,
                &buf.as_bytes()[tail_at..self.len],
                self.cursor,
            )
        });
        buf.as_bytes_mut()[self.len..write_len].fill(0);
        buf.trim_to_size(write_len);
        let chunk = Chunk {
            seg_start: self.seg_start,
            pos: split.write_start,
            buf,
            cursor: self.cursor,
            new_bytes: (self.len - self.carried) as u64,
        };
        (chunk, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_stage_has_room_for_twice_the_last_round_within_bounds() {
        let max = 1 << 20;
        assert_eq!(next_stage_bytes(0, max), STAGE_BYTES_MIN);
        assert_eq!(next_stage_bytes(1100, max), STAGE_BYTES_MIN);
        assert_eq!(next_stage_bytes(100 << 10, max), 200 << 10);
        assert_eq!(next_stage_bytes(900 << 10, max), max);
        // A configured buffer below the floor wins.
        assert_eq!(next_stage_bytes(0, 4096), 4096);
    }

    #[test]
    fn a_stage_takes_its_buffer_with_its_first_new_byte() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let block = BlockSize::new(4096).expect("a power of two");
                let carried: Vec<u8> = (0..100u8).collect();
                let cursor = LogCursor::default();
                let mut stage = Stage::new(1 << 20, (1 << 20) + 8192, 64 << 10, &carried, cursor);
                // Only the carried bytes until something is staged.
                assert!(!stage.holds_buffer());
                assert_eq!(stage.bytes((1 << 20) + 8192, 100), &carried[..]);
                assert_eq!(stage.free_bytes(), (64 << 10) - 100);
                assert!(!stage.has_new_bytes());
                stage.spare_mut(10).fill(7);
                stage.commit(10, None);
                assert!(stage.holds_buffer());
                // The carried bytes were copied in front of the new ones.
                assert_eq!(stage.bytes((1 << 20) + 8192, 100), &carried[..]);
                assert_eq!(stage.bytes((1 << 20) + 8292, 10), &[7u8; 10]);
                let (chunk, next) = stage.seal(block, Some(64 << 10));
                assert_eq!(chunk.pos, (1 << 20) + 8192);
                assert_eq!(&chunk.buf.as_bytes()[..100], &carried[..]);
                assert_eq!(chunk.buf.len(), 4096, "one whole block, zero padded");
                // The partial tail block goes on, again without a buffer.
                let next = next.expect("a partial block is carried");
                assert!(!next.holds_buffer());
                assert_eq!(next.used_bytes(), 110);
            })
            .expect("executor starts")
            .join()
            .expect("test body ran");
    }
}

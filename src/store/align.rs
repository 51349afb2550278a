//! Block alignment math for direct I/O.
//!
//! Direct I/O reads and writes whole device blocks at block-aligned file offsets. An
//! append therefore writes the aligned window around the new bytes; the last block is
//! usually only partly filled, so the writer keeps that *tail block* in memory and
//! rewrites it (with more bytes in it) on the next append. Segment starts are multiples
//! of every supported block size, so position alignment and file-offset alignment agree.

use std::ops::Range;

use thiserror::Error;

/// Smallest supported device block.
pub const BLOCK_BYTES_MIN: u32 = 512;
/// Largest supported device block; divides every segment size
/// ([`super::segment::SEGMENT_GRANULE_BYTES`]).
pub const BLOCK_BYTES_MAX: u32 = 4096;

/// Why a block size is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum BlockSizeError {
    #[error(
        "block size {block_bytes} must be a power of two between {BLOCK_BYTES_MIN} and \
         {BLOCK_BYTES_MAX} bytes"
    )]
    Invalid { block_bytes: u64 },
}

/// A device's logical block size: a power of two in `512..=4096`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockSize(u32);

/// The parts of a write that ends at `end` inside a buffer starting at a block boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TailSplit {
    /// Aligned start of the write (where the in-memory buffer begins).
    pub write_start: u64,
    /// End of the fully written blocks: `[write_start, full_end)` will not be rewritten.
    pub full_end: u64,
    /// Aligned end of the write: `[full_end, write_end)` is the tail block (zero padded
    /// past `end`), empty when `end` is aligned.
    pub write_end: u64,
    /// Valid bytes in the tail block (`end - full_end`); the next append starts its
    /// write at `full_end` with these bytes at the front of its buffer.
    pub tail_len: u64,
}

impl BlockSize {
    pub const B512: BlockSize = BlockSize(512);
    pub const B4096: BlockSize = BlockSize(4096);

    /// Checks a block size reported by a device or a config.
    pub fn new(block_bytes: u64) -> Result<Self, BlockSizeError> {
        if block_bytes.is_power_of_two()
            && (u64::from(BLOCK_BYTES_MIN)..=u64::from(BLOCK_BYTES_MAX)).contains(&block_bytes)
        {
            // In range, so it fits in u32.
            Ok(BlockSize(block_bytes as u32))
        } else {
            Err(BlockSizeError::Invalid { block_bytes })
        }
    }

    pub const fn bytes(self) -> u64 {
        self.0 as u64
    }

    const fn mask(self) -> u64 {
        debug_assert!(self.0.is_power_of_two());
        self.0 as u64 - 1
    }

    pub const fn is_aligned(self, offset: u64) -> bool {
        offset & self.mask() == 0
    }

    /// The largest multiple of the block size not above `offset`.
    pub const fn align_down(self, offset: u64) -> u64 {
        offset & !self.mask()
    }

    /// The smallest multiple of the block size not below `offset` (`None` on overflow).
    pub const fn align_up(self, offset: u64) -> Option<u64> {
        match offset.checked_add(self.mask()) {
            Some(v) => Some(v & !self.mask()),
            None => None,
        }
    }

    /// The aligned window `[align_down(start), align_up(end))` covering `[start, end)`;
    /// `None` if `start > end` or on overflow.
    pub const fn window(self, start: u64, end: u64) -> Option<Range<u64>> {
        if start > end {
            return None;
        }
        match self.align_up(end) {
            Some(e) => Some(self.align_down(start)..e),
            None => None,
        }
    }

    /// Splits a write of the bytes `[write_start, end)`, where `write_start` is block
    /// aligned, into the fully written blocks and the partial tail block.
    /// `None` if `write_start` is not aligned, `end < write_start`, or on overflow.
    pub const fn split_tail(self, write_start: u64, end: u64) -> Option<TailSplit> {
        if !self.is_aligned(write_start) || end < write_start {
            return None;
        }
        let full_end = self.align_down(end);
        match self.align_up(end) {
            Some(write_end) => Some(TailSplit {
                write_start,
                full_end,
                write_end,
                tail_len: end - full_end,
            }),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_powers_of_two_in_range() {
        for ok in [512, 1024, 2048, 4096] {
            assert_eq!(BlockSize::new(ok).unwrap().bytes(), ok);
        }
        for bad in [0, 1, 256, 511, 513, 3000, 8192, u64::MAX] {
            assert!(BlockSize::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn align_math() {
        let b = BlockSize::B4096;
        assert_eq!(b.align_down(4095), 0);
        assert_eq!(b.align_down(4096), 4096);
        assert_eq!(b.align_up(0), Some(0));
        assert_eq!(b.align_up(1), Some(4096));
        assert_eq!(b.align_up(4096), Some(4096));
        assert_eq!(b.align_up(u64::MAX), None);
        assert!(b.is_aligned(8192) && !b.is_aligned(8193));
        assert_eq!(b.window(100, 5000), Some(0..8192));
        assert_eq!(b.window(4096, 4096), Some(4096..4096));
        assert_eq!(b.window(5, 4), None);
        let s = BlockSize::B512;
        assert_eq!(s.window(513, 1024), Some(512..1024));
    }

    #[test]
    fn tail_split() {
        let b = BlockSize::B512;
        assert_eq!(
            b.split_tail(1024, 2100),
            Some(TailSplit {
                write_start: 1024,
                full_end: 2048,
                write_end: 2560,
                tail_len: 52
            })
        );
        // Ends on a boundary: no tail block.
        let t = b.split_tail(0, 1536).unwrap();
        assert_eq!((t.full_end, t.write_end, t.tail_len), (1536, 1536, 0));
        // Shorter than one block: everything is tail.
        let t = b.split_tail(512, 600).unwrap();
        assert_eq!((t.full_end, t.write_end, t.tail_len), (512, 1024, 88));
        assert_eq!(b.split_tail(100, 600), None);
        assert_eq!(b.split_tail(1024, 600), None);
    }
}

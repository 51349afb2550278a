//! The end of a log as the next record sees it: where it goes, which index it must carry,
//! and the lowest term it may have.
//!
//! One cursor rule serves three places, so they cannot disagree: the leader placing a new
//! record, a follower accepting a record the leader placed (same geometry on every
//! replica, so the same positions), and the recovery scan walking a segment.

use thiserror::Error;

use super::record::{EncodeError, FieldError, HEADER_BYTES_U64, RecordHeader, RecordKind};
use super::segment::{PlaceError, Placement, SegmentGeometry};

/// The chain state at the end of a log (or at a record boundary inside it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LogCursor {
    /// Where the valid data ends: the next record goes here, or at the next segment's
    /// start when it does not fit.
    pub pos: u64,
    /// The index the next record must carry (1 for an empty log).
    pub next_index: u64,
    /// The term of the entry before `next_index` (0 for an empty log).
    pub last_term: u64,
    /// The header CRC of the record before `next_index`, which the next record must
    /// chain to (0 when unknown: an empty log, or a log whose predecessor is gone; then
    /// any link is accepted).
    pub last_crc: u32,
}

/// Why a record cannot be the next one after a cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ChainError {
    #[error("record has index {found}, expected {expected}")]
    IndexGap { found: u64, expected: u64 },
    #[error("record term {found} is below the previous term {last}")]
    TermWentBack { found: u64, last: u64 },
    #[error("record claims pos {found}, but belongs at {expected}")]
    PosMismatch { found: u64, expected: u64 },
    #[error(
        "record chains to header CRC {found:#010x}, but the previous record's is {expected:#010x}"
    )]
    PrevCrcMismatch { found: u32, expected: u32 },
    #[error("record cannot be placed: {0}")]
    Place(#[from] PlaceError),
    #[error("record cannot be encoded: {0}")]
    Encode(#[from] EncodeError),
}

impl LogCursor {
    /// The cursor of an empty log starting at `pos` (a segment start, or 0).
    pub const fn empty_at(pos: u64) -> Self {
        LogCursor {
            pos,
            next_index: 1,
            last_term: 0,
            last_crc: 0,
        }
    }

    /// Where a record of `record_bytes` goes (and the filler to write before it).
    pub fn place(&self, g: &SegmentGeometry, record_bytes: u64) -> Result<Placement, PlaceError> {
        g.place_record(self.pos, record_bytes)
    }

    /// The header of the next record of this log (the leader's side): placed, indexed
    /// and chained. Returns the placement too, whose filler (if any) goes first.
    pub fn next_header(
        &self,
        g: &SegmentGeometry,
        kind: RecordKind,
        term: u64,
        body: &[u8],
    ) -> Result<(Placement, RecordHeader), ChainError> {
        let record_bytes = HEADER_BYTES_U64 + body.len() as u64;
        let placement = self.place(g, record_bytes)?;
        let header = match kind {
            RecordKind::Normal => {
                RecordHeader::normal(self.next_index, term, placement.record_pos, body)?
            }
            RecordKind::Noop if body.is_empty() => {
                RecordHeader::noop(self.next_index, term, placement.record_pos)
            }
            RecordKind::Noop => {
                return Err(ChainError::Encode(EncodeError::Field(
                    FieldError::NoopWithBody {
                        body_len: u32::try_from(body.len()).unwrap_or(u32::MAX),
                    },
                )));
            }
        }
        .chained_to(self.last_crc);
        self.check_chain(&header)?;
        Ok((placement, header))
    }

    /// The index, term and chain rules alone (the scan checks positions itself).
    pub fn check_chain(&self, header: &RecordHeader) -> Result<(), ChainError> {
        if header.index != self.next_index {
            return Err(ChainError::IndexGap {
                found: header.index,
                expected: self.next_index,
            });
        }
        if header.term < self.last_term {
            return Err(ChainError::TermWentBack {
                found: header.term,
                last: self.last_term,
            });
        }
        // A cursor's 0 means its predecessor is unknown (start of the log): any link is
        // accepted. Otherwise the record must chain to it; an unchained record (0) after
        // a known one is refused, so a writer that forgets to chain fails loudly.
        if self.last_crc != 0 && header.prev_crc != self.last_crc {
            return Err(ChainError::PrevCrcMismatch {
                found: header.prev_crc,
                expected: self.last_crc,
            });
        }
        Ok(())
    }

    /// Checks that `header` (e.g. of a record a follower received and verified) is
    /// exactly the next record of this log: next index, term not going back, and the
    /// position this log's placement gives it. Returns that placement, whose filler (if
    /// any) the caller writes before the record.
    pub fn check_next(
        &self,
        g: &SegmentGeometry,
        header: &RecordHeader,
    ) -> Result<Placement, ChainError> {
        self.check_chain(header)?;
        let placement = self.place(g, header.record_bytes())?;
        if header.pos != placement.record_pos {
            return Err(ChainError::PosMismatch {
                found: header.pos,
                expected: placement.record_pos,
            });
        }
        Ok(placement)
    }

    /// Moves past `header`, which must have passed [`LogCursor::check_next`] (or the
    /// scan's checks).
    pub fn advance(&mut self, header: &RecordHeader) {
        debug_assert_eq!(
            header.index, self.next_index,
            "advance past a non-next record"
        );
        debug_assert!(
            header.term >= self.last_term,
            "advance with a term going back"
        );
        debug_assert!(header.pos >= self.pos, "advance backwards");
        self.pos = header.end_pos();
        self.next_index = header.index.saturating_add(1);
        self.last_term = header.term;
        self.last_crc = header.header_crc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::segment::Filler;

    #[test]
    fn follower_accepts_exactly_the_leaders_placement() {
        let g = SegmentGeometry::new(4096).unwrap();
        let mut c = LogCursor::empty_at(0);
        c.pos = 4000;
        let h = RecordHeader::normal(1, 1, 4096, &[0; 100]).unwrap();
        // 148 bytes do not fit in the 96 left: the leader put it at 4096.
        assert_eq!(
            c.check_next(&g, &h),
            Ok(Placement {
                filler: Some(Filler { pos: 4000, len: 96 }),
                record_pos: 4096
            })
        );
        c.advance(&h);
        assert_eq!(
            c,
            LogCursor {
                pos: 4096 + 148,
                next_index: 2,
                last_term: 1,
                last_crc: h.header_crc(),
            }
        );

        let wrong_pos = RecordHeader::noop(2, 1, c.pos + 8).chained_to(h.header_crc());
        assert!(matches!(
            c.check_next(&g, &wrong_pos),
            Err(ChainError::PosMismatch { .. })
        ));
        let gap = RecordHeader::noop(3, 1, c.pos);
        assert!(matches!(
            c.check_next(&g, &gap),
            Err(ChainError::IndexGap {
                found: 3,
                expected: 2
            })
        ));
        c.last_term = 2;
        let old = RecordHeader::noop(2, 1, c.pos);
        assert!(matches!(
            c.check_next(&g, &old),
            Err(ChainError::TermWentBack { .. })
        ));
        let ok = RecordHeader::noop(2, 2, c.pos).chained_to(h.header_crc());
        assert_eq!(c.check_next(&g, &ok).map(|p| p.record_pos), Ok(c.pos));
        assert_eq!(ok.record_bytes(), HEADER_BYTES_U64);
        // Chained to the right record: accepted. Chained elsewhere, or not chained: not.
        assert!(c.check_next(&g, &ok.chained_to(h.header_crc())).is_ok());
        for bad in [h.header_crc() ^ 1, 0] {
            assert!(matches!(
                c.check_next(&g, &ok.chained_to(bad)),
                Err(ChainError::PrevCrcMismatch { .. })
            ));
        }
        // An unknown predecessor accepts any link.
        c.last_crc = 0;
        assert!(c.check_next(&g, &ok.chained_to(12345)).is_ok());
    }

    #[test]
    fn leader_headers_are_placed_indexed_and_chained() {
        let g = SegmentGeometry::new(4096).unwrap();
        let mut c = LogCursor::empty_at(0);
        let (p, a) = c.next_header(&g, RecordKind::Normal, 3, b"first").unwrap();
        assert_eq!((p.record_pos, a.index, a.term, a.prev_crc), (0, 1, 3, 0));
        c.advance(&a);
        let (_, b) = c.next_header(&g, RecordKind::Noop, 4, b"").unwrap();
        assert_eq!(
            (b.pos, b.index, b.prev_crc),
            (a.end_pos(), 2, a.header_crc())
        );
        assert!(c.check_next(&g, &b).is_ok());
        c.advance(&b);
        assert!(matches!(
            c.next_header(&g, RecordKind::Normal, 3, b"old term"),
            Err(ChainError::TermWentBack { .. })
        ));
        assert!(matches!(
            c.next_header(&g, RecordKind::Noop, 4, b"x"),
            Err(ChainError::Encode(_))
        ));
        c.pos = 4090;
        let (p, d) = c
            .next_header(&g, RecordKind::Normal, 4, b"moves on")
            .unwrap();
        assert_eq!((p.filler, d.pos), (None, 4096));
    }
}

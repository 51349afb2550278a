//! Replica comparison for `dledger check`: walks two replicas' record streams of the
//! same group in step and reports the first record where they part, with its position
//! and segment file, so an operator can look at both files there.
//!
//! Each stream is what a recovery scan reports per record ([`RecordSummary::from_header`]
//! of every header `scan_segment` hands out), in log order; the streams may be fed
//! segment by segment, so nothing is held in memory beyond one summary per side.

use std::fmt;

use crate::store::{RecordHeader, SegmentGeometry, SegmentName};

/// What is compared per record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordSummary {
    pub index: u64,
    pub term: u64,
    pub pos: u64,
    pub record_bytes: u64,
    pub body_crc: u32,
}

impl RecordSummary {
    pub fn from_header(h: &RecordHeader) -> Self {
        RecordSummary {
            index: h.index,
            term: h.term,
            pos: h.pos,
            record_bytes: h.record_bytes(),
            body_crc: h.body_crc,
        }
    }
}

/// How the two replicas differ at the first divergent record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DivergenceKind {
    /// Both have a record with this index, but not the same one.
    Differs { a: RecordSummary, b: RecordSummary },
    /// The records before match, but the two streams disagree on which index comes
    /// next (a gap in one of them).
    IndexMismatch { a: RecordSummary, b: RecordSummary },
    /// Replica A has this record, replica B ends before it.
    OnlyInA(RecordSummary),
    /// Replica B has this record, replica A ends before it.
    OnlyInB(RecordSummary),
}

/// The first place two replicas part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Divergence {
    pub index: u64,
    /// Log position (of replica A's record when both have one).
    pub pos: u64,
    pub segment: SegmentName,
    /// Byte offset in the segment file.
    pub offset: u64,
    /// Records that matched before it.
    pub matching: u64,
    pub kind: DivergenceKind,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replicas diverge at index {} (pos {}, segment file {} byte offset {}) after {} \
             matching records: ",
            self.index, self.pos, self.segment, self.offset, self.matching
        )?;
        let show = |f: &mut fmt::Formatter<'_>, r: &RecordSummary| {
            write!(
                f,
                "index {} term {} pos {} {} bytes body crc {:#010x}",
                r.index, r.term, r.pos, r.record_bytes, r.body_crc
            )
        };
        match &self.kind {
            DivergenceKind::Differs { a, b } | DivergenceKind::IndexMismatch { a, b } => {
                f.write_str("A has ")?;
                show(f, a)?;
                f.write_str(", B has ")?;
                show(f, b)
            }
            DivergenceKind::OnlyInA(a) => {
                f.write_str("only A has ")?;
                show(f, a)
            }
            DivergenceKind::OnlyInB(b) => {
                f.write_str("only B has ")?;
                show(f, b)
            }
        }
    }
}

/// Compares two replicas' record streams; `None` when they hold the same records.
pub fn first_divergence(
    geometry: &SegmentGeometry,
    a: impl IntoIterator<Item = RecordSummary>,
    b: impl IntoIterator<Item = RecordSummary>,
) -> Option<Divergence> {
    let mut a = a.into_iter();
    let mut b = b.into_iter();
    let mut matching = 0u64;
    loop {
        let (kind, at) = match (a.next(), b.next()) {
            (None, None) => return None,
            (Some(x), Some(y)) if x == y => {
                matching += 1;
                continue;
            }
            (Some(x), Some(y)) if x.index == y.index => (DivergenceKind::Differs { a: x, b: y }, x),
            (Some(x), Some(y)) => (DivergenceKind::IndexMismatch { a: x, b: y }, x),
            (Some(x), None) => (DivergenceKind::OnlyInA(x), x),
            (None, Some(y)) => (DivergenceKind::OnlyInB(y), y),
        };
        return Some(Divergence {
            index: at.index,
            pos: at.pos,
            segment: geometry.segment_name(at.pos),
            offset: geometry.offset_in_segment(at.pos),
            matching,
            kind,
        });
    }
}

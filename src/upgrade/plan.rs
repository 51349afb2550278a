//! The import plan: turns the entries a scanner found (RocketMQ messages, DLedger
//! entries) into the records of our log for one group, and digests the imported prefix
//! so the nodes of a group can check they all start from the same one.
//!
//! Records are placed, indexed and chained with [`LogCursor::next_header`], exactly as
//! a leader would write them, so the result recovers and replicates like any log.
//!
//! - RocketMQ messages: each message, unchanged, is one normal entry; all get the term
//!   the operator chose (e.g. 1) and indexes from the start cursor (1 for a new log).
//!   The PHYSICALOFFSET inside each message keeps its old CommitLog value.
//! - DLedger entries: terms are kept. DLedger counts indexes from 0 and we count from
//!   1, so our index is always DLedger's + 1 ([`DLEDGER_INDEX_SHIFT`]); the start cursor
//!   is `LogCursor { pos: first data file start, next_index: first DLedger index + 1,
//!   .. }`. Our header is 48 bytes like DLedger's and placement follows the same rule,
//!   so with the same segment size every entry keeps its position — which keeps
//!   RocketMQ-on-DLedger's `PHYSICALOFFSET = pos + 48` inside the bodies right. The plan
//!   checks both and refuses an entry whose index or position would change.
//!
//! # Prefix digest
//!
//! A 64-bit running hash over each entry's (index, term, kind, body length, body),
//! with the running value kept at the end of every segment of our log. Two nodes that
//! imported the same prefix have equal digests; when they differ,
//! [`PrefixDigest::first_difference`] narrows it to the first segment that differs
//! (`dledger check` with [`super::compare`] then finds the exact record). The hash
//! detects accidental divergence (different source files, a different cut); it is not
//! meant to resist a crafted collision.

use std::fmt;

use thiserror::Error;

use crate::store::{
    ChainError, DEFAULT_MAX_RECORD_BYTES, HEADER_BYTES, LogCursor, Placement, RecordHeader,
    RecordKind, SegmentGeometry, SegmentName,
};

/// Our index minus DLedger's for the same entry.
pub const DLEDGER_INDEX_SHIFT: u64 = 1;

/// Largest RocketMQ message that fits one record body with the default record limit.
pub const DEFAULT_MAX_IMPORTED_MESSAGE_BYTES: u32 = DEFAULT_MAX_RECORD_BYTES - HEADER_BYTES as u32;

/// Where an entry came from, for the checks that keep DLedger indexes and positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// A RocketMQ CommitLog message at this physical offset.
    RocketMq { physical_offset: u64 },
    /// A DLedger entry with its own index and position.
    DLedger { index: u64, pos: u64 },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::RocketMq { physical_offset } => {
                write!(f, "RocketMQ message at physical offset {physical_offset}")
            }
            Source::DLedger { index, pos } => {
                write!(f, "DLedger entry {index} at pos {pos}")
            }
        }
    }
}

/// One entry to import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceEntry<'a> {
    pub kind: RecordKind,
    pub term: u64,
    pub body: &'a [u8],
    pub source: Source,
}

/// One record of the imported log: write `placement.filler` (if any), then the header
/// and the body at `header.pos`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PlannedRecord {
    pub placement: Placement,
    pub header: RecordHeader,
}

/// Why an entry cannot be imported.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PlanError {
    #[error("group {group}: entry {index} ({from}) cannot be placed: {error}")]
    Chain {
        group: String,
        index: u64,
        from: Source,
        error: ChainError,
    },
    #[error("group {group}: term 0 cannot be imported (our terms start at 1): {from}")]
    TermZero { group: String, from: Source },
    #[error(
        "group {group}: DLedger entry {dledger_index} would become index {ours}, not {expected} \
         (indexes must be DLedger's + {DLEDGER_INDEX_SHIFT})"
    )]
    IndexShift {
        group: String,
        dledger_index: u64,
        ours: u64,
        expected: u64,
    },
    #[error(
        "group {group}: DLedger entry {dledger_index} at pos {dledger_pos} would move to pos \
         {ours}; the segment size must equal the DLedger data file size and the log must \
         start at the first data file's start"
    )]
    PositionShift {
        group: String,
        dledger_index: u64,
        dledger_pos: u64,
        ours: u64,
    },
    #[error("group {group}: the import must start at a segment start, not pos {pos}")]
    StartNotSegmentStart { group: String, pos: u64 },
    #[error("group {group}: record of {record_bytes} bytes exceeds the record limit {max}")]
    TooLarge {
        group: String,
        record_bytes: u64,
        max: u32,
    },
}

/// Builds the imported log of one group, entry by entry, and its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportPlan {
    group: String,
    geometry: SegmentGeometry,
    max_record_bytes: u32,
    cursor: LogCursor,
    digest: PrefixDigest,
}

impl ImportPlan {
    /// A plan for `group` whose first record goes at `start` (a segment start; for a
    /// new log [`LogCursor::empty_at`]`(0)`, for a DLedger store see the module docs).
    pub fn new(
        group: &str,
        geometry: SegmentGeometry,
        max_record_bytes: u32,
        start: LogCursor,
    ) -> Result<Self, PlanError> {
        if !geometry.is_segment_start(start.pos) {
            return Err(PlanError::StartNotSegmentStart {
                group: group.into(),
                pos: start.pos,
            });
        }
        Ok(ImportPlan {
            group: group.into(),
            geometry,
            max_record_bytes,
            cursor: start,
            digest: PrefixDigest::new(start.next_index),
        })
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// The end of the imported log so far (where the group's log goes on).
    pub fn cursor(&self) -> LogCursor {
        self.cursor
    }

    pub fn digest(&self) -> &PrefixDigest {
        &self.digest
    }

    /// Places the next entry: returns the record to write and advances the plan.
    pub fn push(&mut self, entry: &SourceEntry<'_>) -> Result<PlannedRecord, PlanError> {
        let group = || self.group.clone();
        if entry.term == 0 {
            return Err(PlanError::TermZero {
                group: group(),
                from: entry.source,
            });
        }
        let record_bytes = (HEADER_BYTES + entry.body.len()) as u64;
        if record_bytes > u64::from(self.max_record_bytes) {
            return Err(PlanError::TooLarge {
                group: group(),
                record_bytes,
                max: self.max_record_bytes,
            });
        }
        let (placement, header) = self
            .cursor
            .next_header(&self.geometry, entry.kind, entry.term, entry.body)
            .map_err(|error| PlanError::Chain {
                group: group(),
                index: self.cursor.next_index,
                from: entry.source,
                error,
            })?;
        if let Source::DLedger { index, pos } = entry.source {
            let expected = index.saturating_add(DLEDGER_INDEX_SHIFT);
            if header.index != expected {
                return Err(PlanError::IndexShift {
                    group: group(),
                    dledger_index: index,
                    ours: header.index,
                    expected,
                });
            }
            if header.pos != pos {
                return Err(PlanError::PositionShift {
                    group: group(),
                    dledger_index: index,
                    dledger_pos: pos,
                    ours: header.pos,
                });
            }
        }
        self.digest
            .add(&self.geometry, &header, entry.kind, entry.body);
        self.cursor.advance(&header);
        Ok(PlannedRecord { placement, header })
    }
}

/// The digest of one segment's part of the prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SegmentDigest {
    pub segment: SegmentName,
    pub first_index: u64,
    pub last_index: u64,
    /// The running hash after this segment's last entry.
    pub hash: u64,
}

/// What the nodes of a group compare before forming it (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PrefixDigest {
    /// Index of the first imported entry.
    pub first_index: u64,
    pub entries: u64,
    /// Last imported (index, term); (first_index - 1, 0) when empty.
    pub last_index: u64,
    pub last_term: u64,
    pub hash: u64,
    /// One per segment holding imported entries, in order.
    pub segments: Vec<SegmentDigest>,
}

/// The compact part of a digest nodes exchange first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DigestSummary {
    pub first_index: u64,
    pub entries: u64,
    pub last_index: u64,
    pub last_term: u64,
    pub hash: u64,
}

/// Size of an encoded [`DigestSummary`].
pub const DIGEST_SUMMARY_BYTES: usize = 44;

impl DigestSummary {
    /// Layout (big-endian): first_index u64 | entries u64 | last_index u64 |
    /// last_term u64 | hash u64 | crc32 of bytes 0..40 u32.
    pub fn to_bytes(&self) -> [u8; DIGEST_SUMMARY_BYTES] {
        let mut out = [0u8; DIGEST_SUMMARY_BYTES];
        let fields = [
            self.first_index,
            self.entries,
            self.last_index,
            self.last_term,
            self.hash,
        ];
        for (slot, v) in out.chunks_exact_mut(8).zip(fields) {
            slot.copy_from_slice(&v.to_be_bytes());
        }
        let crc = crc32fast::hash(&out[..40]);
        out[40..].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// `None` when the length or the CRC is wrong.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != DIGEST_SUMMARY_BYTES || super::be::u32_at(b, 40)? != crc32fast::hash(&b[..40])
        {
            return None;
        }
        let f = |i: usize| super::be::u64_at(b, i * 8);
        Some(DigestSummary {
            first_index: f(0)?,
            entries: f(1)?,
            last_index: f(2)?,
            last_term: f(3)?,
            hash: f(4)?,
        })
    }
}

/// Where two nodes' imported prefixes part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PrefixMismatch {
    /// The first index that may differ (exact when `exact`).
    pub index: u64,
    /// The first segment whose entries differ, if one does.
    pub segment: Option<SegmentName>,
    /// `index` is exactly the first differing entry (one prefix is longer, or they
    /// start at different indexes); otherwise the difference lies in
    /// `index..=segment_last_index`.
    pub exact: bool,
    pub segment_last_index: u64,
}

impl fmt::Display for PrefixMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.exact, self.segment) {
            (true, _) => write!(f, "nodes' imported prefixes differ at index {}", self.index),
            (false, Some(seg)) => write!(
                f,
                "nodes' imported prefixes differ at index {} or later, within segment file {} \
                 (indexes {}..={}); run `dledger check` to find the record",
                self.index, seg, self.index, self.segment_last_index
            ),
            (false, None) => write!(
                f,
                "nodes' imported prefixes differ at index {} or later",
                self.index
            ),
        }
    }
}

const HASH_SEED: u64 = 0x6a09_e667_f3bc_c908;
const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(23) ^ word).wrapping_mul(HASH_MUL)
}

impl PrefixDigest {
    /// The digest of an empty prefix whose first entry will have `first_index`.
    pub fn new(first_index: u64) -> Self {
        PrefixDigest {
            first_index,
            entries: 0,
            last_index: first_index.saturating_sub(1),
            last_term: 0,
            hash: HASH_SEED,
            segments: Vec::new(),
        }
    }

    pub fn summary(&self) -> DigestSummary {
        DigestSummary {
            first_index: self.first_index,
            entries: self.entries,
            last_index: self.last_index,
            last_term: self.last_term,
            hash: self.hash,
        }
    }

    /// Adds the record `header` (already placed) with its body.
    pub fn add(
        &mut self,
        geometry: &SegmentGeometry,
        header: &RecordHeader,
        kind: RecordKind,
        body: &[u8],
    ) {
        debug_assert_eq!(header.index, self.last_index + 1, "digest out of order");
        let mut h = self.hash;
        for w in [
            header.index,
            header.term,
            u64::from(kind.code()),
            body.len() as u64,
        ] {
            h = mix(h, w);
        }
        let mut words = body.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            h = mix(h, u64::from_le_bytes(b));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut b = [0u8; 8];
            b[..tail.len()].copy_from_slice(tail);
            h = mix(h, u64::from_le_bytes(b));
        }
        self.hash = h;
        self.entries += 1;
        self.last_index = header.index;
        self.last_term = header.term;
        let segment = geometry.segment_name(header.pos);
        match self.segments.last_mut() {
            Some(s) if s.segment == segment => {
                s.last_index = header.index;
                s.hash = h;
            }
            _ => self.segments.push(SegmentDigest {
                segment,
                first_index: header.index,
                last_index: header.index,
                hash: h,
            }),
        }
    }

    /// `None` when both nodes imported the same prefix; otherwise where they part.
    pub fn first_difference(&self, other: &PrefixDigest) -> Option<PrefixMismatch> {
        if self.summary() == other.summary() && self.segments == other.segments {
            return None;
        }
        if self.first_index != other.first_index {
            return Some(PrefixMismatch {
                index: self.first_index.min(other.first_index),
                segment: None,
                exact: true,
                segment_last_index: 0,
            });
        }
        for (a, b) in self.segments.iter().zip(&other.segments) {
            if a != b {
                return Some(PrefixMismatch {
                    index: a.first_index.min(b.first_index),
                    segment: Some(a.segment.min(b.segment)),
                    exact: false,
                    segment_last_index: a.last_index.max(b.last_index),
                });
            }
        }
        // Every shared segment matches: one prefix goes on where the other ends.
        Some(PrefixMismatch {
            index: self.last_index.min(other.last_index) + 1,
            segment: None,
            exact: true,
            segment_last_index: 0,
        })
    }
}

//! The imported prefix's digest as stored beside a group's log (file
//! [`IMPORT_DIGEST_FILE`] in the group directory, written by `dledger import`) and as
//! a node announces it to its peers, who refuse to replicate with a node whose
//! imported prefix differs.
//!
//! Layout (big-endian):
//!
//! | offset  | bytes | field                                                    |
//! |--------:|------:|----------------------------------------------------------|
//! |       0 |     4 | magic `"DLID"`                                           |
//! |       4 |     2 | version (1)                                              |
//! |       6 |     2 | reserved, 0                                              |
//! |       8 |    44 | [`DigestSummary`] (with its own CRC)                     |
//! |      52 |     4 | segment count `n` (at most [`DIGEST_SEGMENTS_MAX`])      |
//! |      56 |  32·n | per segment: start u64, first index u64, last index u64, hash u64 |
//! |  56+32n |     4 | CRC32 of all bytes before                                |
//!
//! Decoding checks the CRC and that the segments agree with the summary (ascending,
//! contiguous indexes, the last one ending at the summary's last index and hash), so
//! two nodes never report a difference that is only a damaged file.

use thiserror::Error;

use super::be::{u32_at, u64_at};
use super::plan::{DIGEST_SUMMARY_BYTES, DigestSummary, PrefixDigest, SegmentDigest};
use crate::store::SegmentName;

/// Name of the digest file in a group directory.
pub const IMPORT_DIGEST_FILE: &str = "import-digest";
/// Most segments a digest may list (16 Ki: 16 TiB of 1 GiB segments); an import
/// spanning more is refused, which keeps the file and its announcement bounded.
pub const DIGEST_SEGMENTS_MAX: usize = 16 << 10;
/// Largest encoded digest.
pub const DIGEST_BYTES_MAX: usize = HEADER_BYTES + SEGMENT_BYTES * DIGEST_SEGMENTS_MAX + 4;

const MAGIC: u32 = 0x444C_4944;
const VERSION: u16 = 1;
const HEADER_BYTES: usize = 8 + DIGEST_SUMMARY_BYTES + 4;
const SEGMENT_BYTES: usize = 32;

/// Why digest bytes are not a valid digest.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DigestFileError {
    #[error("{len} bytes cannot hold an import digest (at least {min})")]
    TooShort { len: usize, min: usize },
    #[error("bad magic {found:#010x} (not an import digest)")]
    BadMagic { found: u32 },
    #[error("unsupported import digest version {found}")]
    BadVersion { found: u16 },
    #[error("the digest lists {found} segments, more than {DIGEST_SEGMENTS_MAX}")]
    TooManySegments { found: usize },
    #[error("{len} bytes, but {segments} segments need exactly {expected}")]
    BadLength {
        len: usize,
        segments: usize,
        expected: usize,
    },
    #[error("CRC mismatch (the file is damaged)")]
    BadCrc,
    #[error("summary CRC mismatch (the file is damaged)")]
    BadSummary,
    #[error("segment digests disagree with the summary: {0}")]
    Inconsistent(&'static str),
}

impl PrefixDigest {
    /// The stored form (see the module docs). Fails only for more than
    /// [`DIGEST_SEGMENTS_MAX`] segments.
    pub fn encode(&self) -> Result<Vec<u8>, DigestFileError> {
        let n = self.segments.len();
        if n > DIGEST_SEGMENTS_MAX {
            return Err(DigestFileError::TooManySegments { found: n });
        }
        let mut out = Vec::with_capacity(HEADER_BYTES + SEGMENT_BYTES * n + 4);
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&self.summary().to_bytes());
        out.extend_from_slice(&(n as u32).to_be_bytes());
        for s in &self.segments {
            for v in [s.segment.0, s.first_index, s.last_index, s.hash] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        debug_assert!(out.len() <= DIGEST_BYTES_MAX);
        Ok(out)
    }

    /// Decodes and checks bytes written by [`PrefixDigest::encode`].
    pub fn decode(b: &[u8]) -> Result<PrefixDigest, DigestFileError> {
        let min = HEADER_BYTES + 4;
        if b.len() < min {
            return Err(DigestFileError::TooShort { len: b.len(), min });
        }
        let short = DigestFileError::TooShort { len: b.len(), min };
        let magic = u32_at(b, 0).ok_or(short.clone())?;
        if magic != MAGIC {
            return Err(DigestFileError::BadMagic { found: magic });
        }
        let version = super::be::u16_at(b, 4).ok_or(short.clone())?;
        if version != VERSION {
            return Err(DigestFileError::BadVersion { found: version });
        }
        let n = u32_at(b, HEADER_BYTES - 4).ok_or(short)? as usize;
        if n > DIGEST_SEGMENTS_MAX {
            return Err(DigestFileError::TooManySegments { found: n });
        }
        let expected = HEADER_BYTES + SEGMENT_BYTES * n + 4;
        if b.len() != expected {
            return Err(DigestFileError::BadLength {
                len: b.len(),
                segments: n,
                expected,
            });
        }
        let crc_at = expected - 4;
        if u32_at(b, crc_at) != Some(crc32fast::hash(&b[..crc_at])) {
            return Err(DigestFileError::BadCrc);
        }
        let summary = DigestSummary::from_bytes(&b[8..8 + DIGEST_SUMMARY_BYTES])
            .ok_or(DigestFileError::BadSummary)?;
        let mut segments = Vec::with_capacity(n);
        for i in 0..n {
            let at = HEADER_BYTES + i * SEGMENT_BYTES;
            let f = |k: usize| u64_at(b, at + 8 * k).unwrap_or(0);
            segments.push(SegmentDigest {
                segment: SegmentName(f(0)),
                first_index: f(1),
                last_index: f(2),
                hash: f(3),
            });
        }
        check_segments(&summary, &segments).map_err(DigestFileError::Inconsistent)?;
        Ok(PrefixDigest {
            first_index: summary.first_index,
            entries: summary.entries,
            last_index: summary.last_index,
            last_term: summary.last_term,
            hash: summary.hash,
            segments,
        })
    }
}

/// The invariants [`PrefixDigest::add`] keeps between the summary and the segments.
fn check_segments(s: &DigestSummary, segments: &[SegmentDigest]) -> Result<(), &'static str> {
    if s.first_index == 0 {
        return Err("first index 0 (entries start at 1)");
    }
    if s.last_index.checked_add(1) != s.first_index.checked_add(s.entries) {
        return Err("the entry count does not span first..=last index");
    }
    let Some(last) = segments.last() else {
        return if s.entries == 0 {
            Ok(())
        } else {
            Err("entries but no segments")
        };
    };
    if segments[0].first_index != s.first_index {
        return Err("the first segment does not start at the first index");
    }
    if last.last_index != s.last_index || last.hash != s.hash {
        return Err("the last segment does not end at the summary's index and hash");
    }
    for seg in segments {
        if seg.first_index > seg.last_index {
            return Err("a segment's first index is above its last");
        }
    }
    for w in segments.windows(2) {
        if w[1].segment <= w[0].segment || w[1].first_index != w[0].last_index + 1 {
            return Err("segments are not ascending and contiguous");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LogCursor, RecordKind, SegmentGeometry};
    use crate::upgrade::plan::{ImportPlan, Source, SourceEntry};

    fn digest(entries: u64, body_len: usize) -> PrefixDigest {
        let g = SegmentGeometry::new(4096).unwrap();
        let mut plan = ImportPlan::new("G", g, 4096, LogCursor::empty_at(0)).unwrap();
        for i in 0..entries {
            let body = vec![i as u8; body_len];
            plan.push(&SourceEntry {
                kind: RecordKind::Normal,
                term: 1,
                body: &body,
                source: Source::RocketMq { physical_offset: i },
            })
            .unwrap();
        }
        plan.digest().clone()
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        for (n, len) in [(0, 1), (1, 10), (200, 300)] {
            let d = digest(n, len);
            let b = d.encode().unwrap();
            assert_eq!(PrefixDigest::decode(&b), Ok(d.clone()));
            for i in 0..b.len() {
                let mut bad = b.clone();
                bad[i] ^= 0x10;
                assert!(PrefixDigest::decode(&bad).is_err(), "flip at {i}");
            }
            for cut in 0..b.len() {
                assert!(PrefixDigest::decode(&b[..cut]).is_err(), "cut at {cut}");
            }
        }
        assert!(
            digest(200, 300).segments.len() > 1,
            "several segments covered"
        );
    }

    #[test]
    fn segments_must_agree_with_the_summary() {
        let mut d = digest(200, 300);
        d.segments[1].first_index += 1;
        let b = d.encode().unwrap();
        assert!(matches!(
            PrefixDigest::decode(&b),
            Err(DigestFileError::Inconsistent(_))
        ));
        let mut d = digest(5, 3);
        d.segments.clear();
        assert!(PrefixDigest::decode(&d.encode().unwrap()).is_err());
        let mut d = digest(1, 1);
        d.segments = vec![d.segments[0]; DIGEST_SEGMENTS_MAX + 1];
        assert_eq!(
            d.encode(),
            Err(DigestFileError::TooManySegments {
                found: DIGEST_SEGMENTS_MAX + 1
            })
        );
    }
}

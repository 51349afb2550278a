//! Small CRC-protected state files: the recovery checkpoint and the Raft hard state.
//!
//! Both are written whole by the disk layer with write-temp + fsync + rename (+ fsync of
//! the directory), so a reader sees the old or the new content, never a mix; the CRC
//! catches a torn or rotted file anyway. These codecs only turn values into bytes and
//! back.
//!
//! Checkpoint layout ([`CHECKPOINT_BYTES`] = 48, big-endian):
//!
//! | offset | bytes | field                                                         |
//! |-------:|------:|---------------------------------------------------------------|
//! |      0 |     4 | magic `"DLCP"`                                                |
//! |      4 |     2 | version (1)                                                   |
//! |      6 |     2 | reserved, 0                                                   |
//! |      8 |     8 | durable end pos: every byte of the log below it is on disk    |
//! |     16 |     8 | durable index: last entry ending at or below that pos (0: none)|
//! |     24 |     8 | durable term: that entry's term (0 when index is 0)           |
//! |     32 |     8 | commit index known when the checkpoint was taken              |
//! |     40 |     4 | reserved, 0                                                   |
//! |     44 |     4 | CRC32 of bytes 0..44                                          |
//!
//! Hard state layout ([`HARD_STATE_BYTES`] = 24, big-endian):
//!
//! | offset | bytes | field                                          |
//! |-------:|------:|------------------------------------------------|
//! |      0 |     4 | magic `"DLHS"`                                 |
//! |      4 |     1 | version (1)                                    |
//! |      5 |     1 | flags: bit 0 = has voted; other bits 0         |
//! |      6 |     2 | reserved, 0                                    |
//! |      8 |     8 | current term                                   |
//! |     16 |     4 | voted for (node id; 0 when bit 0 is clear)     |
//! |     20 |     4 | CRC32 of bytes 0..20                           |

use thiserror::Error;

use super::record::EncodeError;

/// Size of an encoded [`Checkpoint`].
pub const CHECKPOINT_BYTES: usize = 48;
/// Size of an encoded [`PersistedHardState`].
pub const HARD_STATE_BYTES: usize = 24;
const CHECKPOINT_MAGIC: u32 = 0x444C_4350;
const CHECKPOINT_VERSION: u16 = 1;
const HARD_STATE_MAGIC: u32 = 0x444C_4853;
const HARD_STATE_VERSION: u8 = 1;
const HARD_STATE_VOTED: u8 = 1;

/// The recovery checkpoint: how far the log is known durable, so recovery scans only the
/// tail after it, and treats any damage at or below it as corruption.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// Every log byte below this position was durable when the checkpoint was written
    /// (a record boundary: the end of `durable_index`'s record).
    pub durable_end_pos: u64,
    /// The last entry ending at or below `durable_end_pos` (0 when the log is empty).
    pub durable_index: u64,
    /// The term of `durable_index` (0 when it is 0).
    pub durable_term: u64,
    /// The commit index known then. It may exceed `durable_index` on a lagging follower
    /// or in ASYNC_FLUSH mode; recovery protects only the durable part.
    pub commit_index: u64,
}

/// The Raft hard state as stored: current term and the vote given in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PersistedHardState {
    pub term: u64,
    pub voted_for: Option<u32>,
}

/// Why a state file's bytes are not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum StateDecodeError {
    #[error("{what} file has {have} bytes, expected {expected}")]
    WrongLength {
        what: &'static str,
        have: usize,
        expected: usize,
    },
    #[error("{what} file has bad magic {found:#010x}")]
    BadMagic { what: &'static str, found: u32 },
    #[error("{what} file version {found} is not supported")]
    UnsupportedVersion { what: &'static str, found: u16 },
    #[error("{what} file CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc {
        what: &'static str,
        stored: u32,
        computed: u32,
    },
    #[error("{what} file has reserved bits or fields set")]
    ReservedNotZero { what: &'static str },
    #[error("{what} file is inconsistent: {why}")]
    Inconsistent {
        what: &'static str,
        why: &'static str,
    },
}

const CHECKPOINT: &str = "checkpoint";
const HARD_STATE: &str = "hard state";

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(v)
}

impl Checkpoint {
    fn check(&self) -> Result<(), &'static str> {
        if (self.durable_index == 0) != (self.durable_term == 0) {
            return Err("durable index and durable term must both be 0 or both be set");
        }
        Ok(())
    }
}

/// Encodes `cp` into `out[..CHECKPOINT_BYTES]`.
pub fn encode_checkpoint(cp: &Checkpoint, out: &mut [u8]) -> Result<usize, EncodeError> {
    debug_assert!(
        cp.check().is_ok(),
        "encoding an inconsistent checkpoint: {cp:?}"
    );
    let have = out.len();
    let o = out
        .get_mut(..CHECKPOINT_BYTES)
        .ok_or(EncodeError::OutputTooSmall {
            needed: CHECKPOINT_BYTES,
            have,
        })?;
    o.fill(0);
    o[0..4].copy_from_slice(&CHECKPOINT_MAGIC.to_be_bytes());
    o[4..6].copy_from_slice(&CHECKPOINT_VERSION.to_be_bytes());
    o[8..16].copy_from_slice(&cp.durable_end_pos.to_be_bytes());
    o[16..24].copy_from_slice(&cp.durable_index.to_be_bytes());
    o[24..32].copy_from_slice(&cp.durable_term.to_be_bytes());
    o[32..40].copy_from_slice(&cp.commit_index.to_be_bytes());
    let crc = crc32fast::hash(&o[..44]);
    o[44..48].copy_from_slice(&crc.to_be_bytes());
    Ok(CHECKPOINT_BYTES)
}

/// Decodes a checkpoint file's whole content (its length must be exact).
pub fn decode_checkpoint(bytes: &[u8]) -> Result<Checkpoint, StateDecodeError> {
    if bytes.len() != CHECKPOINT_BYTES {
        return Err(StateDecodeError::WrongLength {
            what: CHECKPOINT,
            have: bytes.len(),
            expected: CHECKPOINT_BYTES,
        });
    }
    let magic = be_u32(bytes, 0);
    if magic != CHECKPOINT_MAGIC {
        return Err(StateDecodeError::BadMagic {
            what: CHECKPOINT,
            found: magic,
        });
    }
    let stored = be_u32(bytes, 44);
    let computed = crc32fast::hash(&bytes[..44]);
    if stored != computed {
        return Err(StateDecodeError::Crc {
            what: CHECKPOINT,
            stored,
            computed,
        });
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if version != CHECKPOINT_VERSION {
        return Err(StateDecodeError::UnsupportedVersion {
            what: CHECKPOINT,
            found: version,
        });
    }
    if bytes[6..8] != [0, 0] || bytes[40..44] != [0; 4] {
        return Err(StateDecodeError::ReservedNotZero { what: CHECKPOINT });
    }
    let cp = Checkpoint {
        durable_end_pos: be_u64(bytes, 8),
        durable_index: be_u64(bytes, 16),
        durable_term: be_u64(bytes, 24),
        commit_index: be_u64(bytes, 32),
    };
    cp.check().map_err(|why| StateDecodeError::Inconsistent {
        what: CHECKPOINT,
        why,
    })?;
    Ok(cp)
}

/// Encodes `hs` into `out[..HARD_STATE_BYTES]`.
pub fn encode_hard_state(hs: &PersistedHardState, out: &mut [u8]) -> Result<usize, EncodeError> {
    let have = out.len();
    let o = out
        .get_mut(..HARD_STATE_BYTES)
        .ok_or(EncodeError::OutputTooSmall {
            needed: HARD_STATE_BYTES,
            have,
        })?;
    o.fill(0);
    o[0..4].copy_from_slice(&HARD_STATE_MAGIC.to_be_bytes());
    o[4] = HARD_STATE_VERSION;
    if let Some(v) = hs.voted_for {
        o[5] = HARD_STATE_VOTED;
        o[16..20].copy_from_slice(&v.to_be_bytes());
    }
    o[8..16].copy_from_slice(&hs.term.to_be_bytes());
    let crc = crc32fast::hash(&o[..20]);
    o[20..24].copy_from_slice(&crc.to_be_bytes());
    Ok(HARD_STATE_BYTES)
}

/// Decodes a hard state file's whole content (its length must be exact).
pub fn decode_hard_state(bytes: &[u8]) -> Result<PersistedHardState, StateDecodeError> {
    if bytes.len() != HARD_STATE_BYTES {
        return Err(StateDecodeError::WrongLength {
            what: HARD_STATE,
            have: bytes.len(),
            expected: HARD_STATE_BYTES,
        });
    }
    let magic = be_u32(bytes, 0);
    if magic != HARD_STATE_MAGIC {
        return Err(StateDecodeError::BadMagic {
            what: HARD_STATE,
            found: magic,
        });
    }
    let stored = be_u32(bytes, 20);
    let computed = crc32fast::hash(&bytes[..20]);
    if stored != computed {
        return Err(StateDecodeError::Crc {
            what: HARD_STATE,
            stored,
            computed,
        });
    }
    if bytes[4] != HARD_STATE_VERSION {
        return Err(StateDecodeError::UnsupportedVersion {
            what: HARD_STATE,
            found: u16::from(bytes[4]),
        });
    }
    let flags = bytes[5];
    if flags & !HARD_STATE_VOTED != 0 || bytes[6..8] != [0, 0] {
        return Err(StateDecodeError::ReservedNotZero { what: HARD_STATE });
    }
    let vote = be_u32(bytes, 16);
    let voted_for = if flags & HARD_STATE_VOTED != 0 {
        Some(vote)
    } else if vote != 0 {
        return Err(StateDecodeError::Inconsistent {
            what: HARD_STATE,
            why: "a vote is stored but the has-voted flag is clear",
        });
    } else {
        None
    };
    Ok(PersistedHardState {
        term: be_u64(bytes, 8),
        voted_for,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trip_and_damage() {
        let cp = Checkpoint {
            durable_end_pos: 1 << 31,
            durable_index: 77,
            durable_term: 5,
            commit_index: 80,
        };
        let mut b = [0u8; CHECKPOINT_BYTES];
        assert_eq!(encode_checkpoint(&cp, &mut b), Ok(CHECKPOINT_BYTES));
        assert_eq!(&b[0..4], b"DLCP");
        assert_eq!(decode_checkpoint(&b), Ok(cp));
        assert_eq!(
            decode_checkpoint(&Checkpoint::default().encoded()),
            Ok(Checkpoint::default())
        );
        for bit in 0..CHECKPOINT_BYTES * 8 {
            let mut d = b;
            d[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_checkpoint(&d).is_err(), "bit {bit}");
        }
        assert!(matches!(
            decode_checkpoint(&b[..47]),
            Err(StateDecodeError::WrongLength { .. })
        ));
        assert!(encode_checkpoint(&cp, &mut b[..47]).is_err());
    }

    #[test]
    fn hard_state_round_trip_and_damage() {
        for hs in [
            PersistedHardState::default(),
            PersistedHardState {
                term: 9,
                voted_for: Some(0),
            },
            PersistedHardState {
                term: u64::MAX,
                voted_for: Some(u32::MAX),
            },
        ] {
            let mut b = [0u8; HARD_STATE_BYTES];
            encode_hard_state(&hs, &mut b).unwrap();
            assert_eq!(decode_hard_state(&b), Ok(hs));
            for bit in 0..HARD_STATE_BYTES * 8 {
                let mut d = b;
                d[bit / 8] ^= 1 << (bit % 8);
                assert!(decode_hard_state(&d).is_err(), "bit {bit} of {hs:?}");
            }
        }
        assert!(decode_hard_state(&[0u8; 24]).is_err());
        assert!(decode_hard_state(&[0u8; 25]).is_err());
    }

    impl Checkpoint {
        fn encoded(&self) -> [u8; CHECKPOINT_BYTES] {
            let mut b = [0u8; CHECKPOINT_BYTES];
            encode_checkpoint(self, &mut b).unwrap();
            b
        }
    }
}

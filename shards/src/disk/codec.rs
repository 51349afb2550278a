//! Codecs of the two small metadata files of a group: `hardstate` and `checkpoint`.
//! Both are written whole and atomically (see [`super::files::write_atomically`]);
//! a CRC guards against a file that is not what we wrote.
//!
//! `hardstate` (24 bytes, big-endian):
//!
//! | offset | bytes | field                                             |
//! |-------:|------:|---------------------------------------------------|
//! |      0 |     4 | magic `DLHS`                                      |
//! |      4 |     1 | version (1)                                       |
//! |      5 |     1 | 1 when a vote is recorded, else 0                 |
//! |      6 |     2 | reserved (0)                                      |
//! |      8 |     8 | term                                              |
//! |     16 |     4 | voted_for (0 when none)                           |
//! |     20 |     4 | CRC32 of bytes 0..20                              |
//!
//! `checkpoint` (32 bytes, big-endian): the commit index known durable and the
//! position of the record carrying it.
//!
//! | offset | bytes | field                                             |
//! |-------:|------:|---------------------------------------------------|
//! |      0 |     4 | magic `DLCP`                                      |
//! |      4 |     1 | version (1)                                       |
//! |      5 |     3 | reserved (0)                                      |
//! |      8 |     8 | commit_index                                      |
//! |     16 |     8 | commit_pos (position of record `commit_index`)    |
//! |     24 |     4 | reserved (0)                                      |
//! |     28 |     4 | CRC32 of bytes 0..28                              |

use dledger::raft::HardState;

pub(crate) const HARD_STATE_BYTES: usize = 24;
pub(crate) const CHECKPOINT_BYTES: usize = 32;
const HARD_STATE_MAGIC: &[u8; 4] = b"DLHS";
const CHECKPOINT_MAGIC: &[u8; 4] = b"DLCP";
const VERSION: u8 = 1;

/// The durable commit point of a group's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Every entry up to this index is committed and durable (0: nothing known).
    pub commit_index: u64,
    /// Position of the record `commit_index` (0 when `commit_index` is 0).
    pub commit_pos: u64,
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(v)
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(v)
}

pub(crate) fn encode_hard_state(hs: &HardState) -> [u8; HARD_STATE_BYTES] {
    let mut b = [0u8; HARD_STATE_BYTES];
    b[0..4].copy_from_slice(HARD_STATE_MAGIC);
    b[4] = VERSION;
    b[5] = u8::from(hs.voted_for.is_some());
    b[8..16].copy_from_slice(&hs.term.to_be_bytes());
    b[16..20].copy_from_slice(&hs.voted_for.unwrap_or(0).to_be_bytes());
    let crc = crc32fast::hash(&b[0..20]);
    b[20..24].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Decodes a `hardstate` file's bytes (trailing block padding is ignored).
pub(crate) fn decode_hard_state(b: &[u8]) -> Result<HardState, String> {
    if b.len() < HARD_STATE_BYTES {
        return Err(format!("{} bytes, need {HARD_STATE_BYTES}", b.len()));
    }
    if &b[0..4] != HARD_STATE_MAGIC || b[4] != VERSION || b[5] > 1 {
        return Err("bad magic, version or vote flag".into());
    }
    let (stored, computed) = (be_u32(b, 20), crc32fast::hash(&b[0..20]));
    if stored != computed {
        return Err(format!(
            "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    Ok(HardState {
        term: be_u64(b, 8),
        voted_for: (b[5] == 1).then(|| be_u32(b, 16)),
    })
}

pub(crate) fn encode_checkpoint(cp: &Checkpoint) -> [u8; CHECKPOINT_BYTES] {
    let mut b = [0u8; CHECKPOINT_BYTES];
    b[0..4].copy_from_slice(CHECKPOINT_MAGIC);
    b[4] = VERSION;
    b[8..16].copy_from_slice(&cp.commit_index.to_be_bytes());
    b[16..24].copy_from_slice(&cp.commit_pos.to_be_bytes());
    let crc = crc32fast::hash(&b[0..28]);
    b[28..32].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Decodes a `checkpoint` file's bytes (trailing block padding is ignored).
pub(crate) fn decode_checkpoint(b: &[u8]) -> Result<Checkpoint, String> {
    if b.len() < CHECKPOINT_BYTES {
        return Err(format!("{} bytes, need {CHECKPOINT_BYTES}", b.len()));
    }
    if &b[0..4] != CHECKPOINT_MAGIC || b[4] != VERSION {
        return Err("bad magic or version".into());
    }
    let (stored, computed) = (be_u32(b, 28), crc32fast::hash(&b[0..28]));
    if stored != computed {
        return Err(format!(
            "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    Ok(Checkpoint {
        commit_index: be_u64(b, 8),
        commit_pos: be_u64(b, 16),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_state_round_trips_and_rejects_flips() {
        for hs in [
            HardState::default(),
            HardState {
                term: 7,
                voted_for: Some(0),
            },
            HardState {
                term: u64::MAX,
                voted_for: Some(6),
            },
        ] {
            let mut b = encode_hard_state(&hs).to_vec();
            assert_eq!(decode_hard_state(&b).unwrap(), hs);
            b.extend_from_slice(&[0u8; 100]);
            assert_eq!(decode_hard_state(&b).unwrap(), hs);
            for bit in 0..HARD_STATE_BYTES * 8 {
                let mut f = b.clone();
                f[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    decode_hard_state(&f).is_err(),
                    "flip of bit {bit} went unnoticed"
                );
            }
        }
        assert!(decode_hard_state(&[0u8; 10]).is_err());
    }

    #[test]
    fn checkpoint_round_trips_and_rejects_flips() {
        let cp = Checkpoint {
            commit_index: 42,
            commit_pos: 1 << 33,
        };
        let b = encode_checkpoint(&cp);
        assert_eq!(decode_checkpoint(&b).unwrap(), cp);
        for bit in 0..CHECKPOINT_BYTES * 8 {
            let mut f = b;
            f[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_checkpoint(&f).is_err(),
                "flip of bit {bit} went unnoticed"
            );
        }
    }
}

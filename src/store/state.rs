//! Small CRC-protected state files: the recovery checkpoint and the Raft hard state.
//!
//! Both files are overwritten in place, in one of two slots (see "Hard state file" and
//! "Checkpoint file" below): one block write and one `fdatasync` of blocks the file
//! already has, so no file is created, renamed or journalled per write (a directory
//! fsync or a rename commits the filesystem journal, which stalls every other flush on
//! the device). A crash while writing damages only the slot being written; the other
//! holds the previous content. The file itself is created whole once (temp file, fsync,
//! rename, fsync of the directory). These codecs only turn values into bytes and back.
//!
//! Checkpoint layout ([`CHECKPOINT_BYTES`] = 88, big-endian):
//!
//! | offset | bytes | field                                                             |
//! |-------:|------:|-------------------------------------------------------------------|
//! |      0 |     4 | magic `"DLCP"`                                                    |
//! |      4 |     2 | version (1)                                                       |
//! |      6 |     2 | reserved, 0                                                       |
//! |      8 |    32 | scan-from cursor: where recovery starts (a record boundary)       |
//! |     40 |    32 | durable cursor: every log byte below its pos was on disk          |
//! |     72 |     8 | commit index known when the checkpoint was written                |
//! |     80 |     4 | reserved, 0                                                       |
//! |     84 |     4 | CRC32 of bytes 0..84                                              |
//!
//! A cursor (32 bytes): pos u64 | next index u64 (index of the record at pos) | last
//! term u64 (term of the entry before; 0 if none) | last CRC u32 (header CRC of the
//! record before; 0 if unknown) | reserved u32 = 0.
//!
//! Why two points: recovery scans from `scan_from` and treats damage or an early end
//! anywhere below `durable` as corruption, and only what lies past `durable` as a
//! torn or unsynced tail. A writer that sets `scan_from` to the previous checkpoint's
//! `durable` (see [`Checkpoint::advanced`]) makes every restart re-verify the last
//! checkpoint interval of durable data, so a bad CRC there stops the group instead of
//! being truncated away.
//!
//! Checkpoint file ([`CHECKPOINT_FILE_BYTES`] = 8192): two slots of
//! [`CHECKPOINT_SLOT_BYTES`] = 4096, each all zeros (never written) or:
//!
//! | offset | bytes | field                                                   |
//! |-------:|------:|---------------------------------------------------------|
//! |      0 |    88 | an encoded checkpoint (the layout above, its own CRC)   |
//! |     88 |     8 | generation: one more than the other slot's when written |
//! |     96 |     4 | CRC32 of bytes 0..96                                    |
//! |    100 |  3996 | zeros                                                   |
//!
//! The valid slot with the higher generation wins (a checkpoint can move down, at a
//! truncation, so its content does not order the slots). A file of exactly 88 bytes is
//! the earlier form (one checkpoint, replaced by rename), read as generation 0.
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
//!
//! Hard state file ([`HARD_STATE_FILE_BYTES`] = 8192): two slots of
//! [`HARD_STATE_SLOT_BYTES`] = 4096 (a multiple of every direct-I/O block size), each
//! holding one encoded hard state in its first 24 bytes and zeros after it, or all
//! zeros while never written. A new hard state is written into the slot that does
//! *not* hold the newest one, then synced; a crash in the middle can only damage that
//! slot, and the other still holds the state that was durable before. The newest valid
//! slot wins: a higher term, or the same term with a vote (terms only grow, and a vote
//! once given in a term never changes). A file of exactly 24 bytes is the earlier form
//! (one hard state, replaced by rename) and is read as such; the next write replaces it
//! with the two-slot form.

use thiserror::Error;

use super::cursor::LogCursor;
use super::record::EncodeError;
use super::recovery::ScanInput;
use super::segment::SegmentGeometry;

/// Size of an encoded [`Checkpoint`].
pub const CHECKPOINT_BYTES: usize = 88;
/// One slot of the two-slot checkpoint file.
pub const CHECKPOINT_SLOT_BYTES: usize = 4096;
/// The two-slot checkpoint file.
pub const CHECKPOINT_FILE_BYTES: usize = 2 * CHECKPOINT_SLOT_BYTES;
const CHECKPOINT_SLOT_CRC_AT: usize = CHECKPOINT_BYTES + 8;
const CHECKPOINT_SLOT_USED: usize = CHECKPOINT_SLOT_CRC_AT + 4;
/// Size of an encoded [`PersistedHardState`].
pub const HARD_STATE_BYTES: usize = 24;
/// One slot of the two-slot hard state file.
pub const HARD_STATE_SLOT_BYTES: usize = 4096;
/// The two-slot hard state file.
pub const HARD_STATE_FILE_BYTES: usize = 2 * HARD_STATE_SLOT_BYTES;
const CHECKPOINT_MAGIC: u32 = 0x444C_4350;
const CHECKPOINT_VERSION: u16 = 1;
const CHECKPOINT_CRC_AT: usize = 84;
const CURSOR_BYTES: usize = 32;
const HARD_STATE_MAGIC: u32 = 0x444C_4853;
const HARD_STATE_VERSION: u8 = 1;
const HARD_STATE_VOTED: u8 = 1;

/// The recovery checkpoint: where recovery starts scanning and how far the log is known
/// durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// Where recovery starts: a record boundary at or below `durable`.
    pub scan_from: LogCursor,
    /// The log's cursor at its durable end when the checkpoint was written: every byte
    /// below `durable.pos`, and every entry below `durable.next_index`, was on disk.
    pub durable: LogCursor,
    /// The commit index known then. It may exceed the durable index on a lagging
    /// follower or in ASYNC_FLUSH mode; recovery protects only the durable part.
    pub commit_index: u64,
}

impl Checkpoint {
    /// The checkpoint of a new, empty log whose first record goes at `start_pos` (0, or
    /// a segment start for an adopted log).
    pub const fn new_log(start_pos: u64) -> Self {
        Checkpoint {
            scan_from: LogCursor::empty_at(start_pos),
            durable: LogCursor::empty_at(start_pos),
            commit_index: 0,
        }
    }

    /// The next checkpoint once the log is durable up to `durable`: recovery will scan
    /// from this checkpoint's durable point, so the interval between the two is
    /// re-verified (and protected) at the next start.
    pub fn advanced(&self, durable: LogCursor, commit_index: u64) -> Self {
        debug_assert!(durable.pos >= self.durable.pos, "durable point went back");
        debug_assert!(durable.next_index >= self.durable.next_index);
        Checkpoint {
            scan_from: self.durable,
            durable,
            commit_index,
        }
    }

    /// The checkpoint to write *before* the log is truncated back to `end` (Raft may
    /// drop durable entries that were never committed): both points move down to `end`
    /// if they lie above it. Otherwise recovery would scan into the rewritten stretch
    /// with a stale chain, or protect a durable point that no longer exists, and report
    /// corruption.
    pub fn truncated_to(&self, end: LogCursor) -> Self {
        let lower = |c: LogCursor| {
            if c.next_index > end.next_index || c.pos > end.pos {
                end
            } else {
                c
            }
        };
        Checkpoint {
            scan_from: lower(self.scan_from),
            durable: lower(self.durable),
            commit_index: self.commit_index,
        }
    }

    /// The last durable index (0 when none).
    pub const fn durable_index(&self) -> u64 {
        self.durable.next_index.saturating_sub(1)
    }

    /// The recovery scan of the segment holding `scan_from.pos`, over bytes that run
    /// from there to the end of that segment's file.
    pub const fn scan_input(&self, geometry: SegmentGeometry, max_record_bytes: u32) -> ScanInput {
        ScanInput {
            geometry,
            start: self.scan_from,
            max_record_bytes,
            protected_end_pos: self.durable.pos,
            protected_index: self.durable_index(),
            input_is_file_end: true,
        }
    }

    fn check(&self) -> Result<(), &'static str> {
        let (s, d) = (&self.scan_from, &self.durable);
        if s.next_index == 0 || d.next_index == 0 {
            return Err("next index 0 (entries start at 1)");
        }
        if s.pos > d.pos || s.next_index > d.next_index || s.last_term > d.last_term {
            return Err("scan-from point lies above the durable point");
        }
        if (s.next_index == 1) != (s.last_term == 0) || (d.next_index == 1) != (d.last_term == 0) {
            return Err("last term must be 0 exactly when no entry precedes the point");
        }
        if (s.next_index == 1 && s.last_crc != 0) || (d.next_index == 1 && d.last_crc != 0) {
            return Err("a chain CRC is set but no entry precedes the point");
        }
        Ok(())
    }
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

/// The big-endian CRC32 at `crc_at` must be that of every byte before it (the callers
/// have checked the length).
fn check_crc(bytes: &[u8], crc_at: usize, what: &'static str) -> Result<(), StateDecodeError> {
    let stored = be_u32(bytes, crc_at);
    let computed = crc32fast::hash(&bytes[..crc_at]);
    if stored != computed {
        return Err(StateDecodeError::Crc {
            what,
            stored,
            computed,
        });
    }
    Ok(())
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(v)
}

/// Writes a cursor's 32 bytes (the reserved word is left as the caller zeroed it).
fn put_cursor(c: &LogCursor, o: &mut [u8]) {
    o[0..8].copy_from_slice(&c.pos.to_be_bytes());
    o[8..16].copy_from_slice(&c.next_index.to_be_bytes());
    o[16..24].copy_from_slice(&c.last_term.to_be_bytes());
    o[24..28].copy_from_slice(&c.last_crc.to_be_bytes());
}

fn get_cursor(b: &[u8], at: usize) -> LogCursor {
    LogCursor {
        pos: be_u64(b, at),
        next_index: be_u64(b, at + 8),
        last_term: be_u64(b, at + 16),
        last_crc: be_u32(b, at + 24),
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
    put_cursor(&cp.scan_from, &mut o[8..8 + CURSOR_BYTES]);
    put_cursor(&cp.durable, &mut o[40..40 + CURSOR_BYTES]);
    o[72..80].copy_from_slice(&cp.commit_index.to_be_bytes());
    let crc = crc32fast::hash(&o[..CHECKPOINT_CRC_AT]);
    o[CHECKPOINT_CRC_AT..].copy_from_slice(&crc.to_be_bytes());
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
    check_crc(bytes, CHECKPOINT_CRC_AT, CHECKPOINT)?;
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if version != CHECKPOINT_VERSION {
        return Err(StateDecodeError::UnsupportedVersion {
            what: CHECKPOINT,
            found: version,
        });
    }
    let reserved = [&bytes[6..8], &bytes[36..40], &bytes[68..72], &bytes[80..84]];
    if reserved.iter().any(|r| r.iter().any(|&b| b != 0)) {
        return Err(StateDecodeError::ReservedNotZero { what: CHECKPOINT });
    }
    let cp = Checkpoint {
        scan_from: get_cursor(bytes, 8),
        durable: get_cursor(bytes, 40),
        commit_index: be_u64(bytes, 72),
    };
    cp.check().map_err(|why| StateDecodeError::Inconsistent {
        what: CHECKPOINT,
        why,
    })?;
    Ok(cp)
}

/// What a checkpoint file holds: the newest checkpoint, its slot and generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointFile {
    pub checkpoint: Checkpoint,
    /// The slot holding `checkpoint`; `None` for the earlier one-checkpoint form.
    pub slot: Option<usize>,
    /// 0 for the earlier form; the next write uses one more.
    pub generation: u64,
}

/// Encodes `cp` as the content of one slot of the two-slot checkpoint file.
pub fn encode_checkpoint_slot(
    cp: &Checkpoint,
    generation: u64,
    out: &mut [u8; CHECKPOINT_SLOT_BYTES],
) -> Result<(), EncodeError> {
    out.fill(0);
    encode_checkpoint(cp, out)?;
    out[CHECKPOINT_BYTES..CHECKPOINT_SLOT_CRC_AT].copy_from_slice(&generation.to_be_bytes());
    let crc = crc32fast::hash(&out[..CHECKPOINT_SLOT_CRC_AT]);
    out[CHECKPOINT_SLOT_CRC_AT..CHECKPOINT_SLOT_USED].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Decodes a whole checkpoint file: the two-slot form ([`CHECKPOINT_FILE_BYTES`]) or the
/// earlier one-checkpoint form ([`CHECKPOINT_BYTES`]). A slot of zeros was never
/// written and a slot that does not decode was torn by a crash while being written; the
/// file is bad only when no slot holds a checkpoint.
pub fn decode_checkpoint_file(bytes: &[u8]) -> Result<CheckpointFile, StateDecodeError> {
    if bytes.len() == CHECKPOINT_BYTES {
        return decode_checkpoint(bytes).map(|checkpoint| CheckpointFile {
            checkpoint,
            slot: None,
            generation: 0,
        });
    }
    let slots = valid_slots(bytes, CHECKPOINT, CHECKPOINT_SLOT_BYTES, |chunk| {
        check_crc(chunk, CHECKPOINT_SLOT_CRC_AT, CHECKPOINT)?;
        if chunk[CHECKPOINT_SLOT_USED..].iter().any(|&b| b != 0) {
            return Err(StateDecodeError::ReservedNotZero { what: CHECKPOINT });
        }
        Ok((
            decode_checkpoint(&chunk[..CHECKPOINT_BYTES])?,
            be_u64(chunk, CHECKPOINT_BYTES),
        ))
    })?;
    let newest = slots
        .into_iter()
        .max_by_key(|(_, (_, generation))| *generation)
        .map(|(slot, (checkpoint, generation))| CheckpointFile {
            checkpoint,
            slot: Some(slot),
            generation,
        });
    newest.ok_or(StateDecodeError::Inconsistent {
        what: CHECKPOINT,
        why: "no slot holds a checkpoint",
    })
}

/// The slots of a two-slot state file (`2 * slot_bytes` long) that `decode` accepts,
/// with their numbers. A slot of zeros was never written and is left out; so is one
/// `decode` refuses (torn by a crash while being written). Fails when the length is
/// wrong or no slot is accepted (with the first refusal, if any).
fn valid_slots<T>(
    bytes: &[u8],
    what: &'static str,
    slot_bytes: usize,
    decode: impl Fn(&[u8]) -> Result<T, StateDecodeError>,
) -> Result<Vec<(usize, T)>, StateDecodeError> {
    if bytes.len() != 2 * slot_bytes {
        return Err(StateDecodeError::WrongLength {
            what,
            have: bytes.len(),
            expected: 2 * slot_bytes,
        });
    }
    let mut valid = Vec::with_capacity(2);
    let mut first_error = None;
    for (slot, chunk) in bytes.chunks_exact(slot_bytes).enumerate() {
        if chunk.iter().all(|&b| b == 0) {
            continue;
        }
        match decode(chunk) {
            Ok(v) => valid.push((slot, v)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if valid.is_empty() {
        return Err(first_error.unwrap_or(StateDecodeError::Inconsistent {
            what,
            why: "both slots are empty",
        }));
    }
    Ok(valid)
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
    check_crc(bytes, 20, HARD_STATE)?;
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

impl PersistedHardState {
    /// Orders the states one node can hold over time: terms only grow, and within a
    /// term the vote goes from none to one candidate and then never changes.
    fn age(&self) -> (u64, bool) {
        (self.term, self.voted_for.is_some())
    }
}

/// What a hard state file holds: the newest state and the slot it is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HardStateFile {
    pub state: PersistedHardState,
    /// The slot holding `state`; `None` for the earlier one-state form (24 bytes).
    pub slot: Option<usize>,
}

/// Decodes a whole hard state file: the two-slot form ([`HARD_STATE_FILE_BYTES`]) or the
/// earlier one-state form ([`HARD_STATE_BYTES`]). In the two-slot form a slot that is
/// all zeros was never written and a slot that does not decode was torn by a crash
/// while being written; the file is bad only when no slot holds a state, or when the
/// two slots disagree about the vote of one term (no crash can cause that).
pub fn decode_hard_state_file(bytes: &[u8]) -> Result<HardStateFile, StateDecodeError> {
    if bytes.len() == HARD_STATE_BYTES {
        return decode_hard_state(bytes).map(|state| HardStateFile { state, slot: None });
    }
    let slots = valid_slots(bytes, HARD_STATE, HARD_STATE_SLOT_BYTES, |chunk| {
        let state = decode_hard_state(&chunk[..HARD_STATE_BYTES])?;
        if chunk[HARD_STATE_BYTES..].iter().any(|&b| b != 0) {
            return Err(StateDecodeError::ReservedNotZero { what: HARD_STATE });
        }
        Ok(state)
    })?;
    let mut newest: Option<HardStateFile> = None;
    for (slot, state) in slots {
        newest = match newest {
            Some(n) if n.state.age() == state.age() && n.state != state => {
                return Err(StateDecodeError::Inconsistent {
                    what: HARD_STATE,
                    why: "the two slots hold different votes in one term",
                });
            }
            Some(n) if n.state.age() >= state.age() => Some(n),
            _ => Some(HardStateFile {
                state,
                slot: Some(slot),
            }),
        };
    }
    newest.ok_or(StateDecodeError::Inconsistent {
        what: HARD_STATE,
        why: "no slot holds a state",
    })
}

/// Encodes `hs` as the content of one slot of the two-slot file (zeros after the state).
pub fn encode_hard_state_slot(
    hs: &PersistedHardState,
    out: &mut [u8; HARD_STATE_SLOT_BYTES],
) -> Result<(), EncodeError> {
    out.fill(0);
    encode_hard_state(hs, out).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_slots(a: Option<PersistedHardState>, b: Option<PersistedHardState>) -> Vec<u8> {
        let mut file = vec![0u8; HARD_STATE_FILE_BYTES];
        for (i, hs) in [a, b].into_iter().enumerate() {
            if let Some(hs) = hs {
                let mut slot = [0u8; HARD_STATE_SLOT_BYTES];
                encode_hard_state_slot(&hs, &mut slot).expect("slot fits");
                file[i * HARD_STATE_SLOT_BYTES..(i + 1) * HARD_STATE_SLOT_BYTES]
                    .copy_from_slice(&slot);
            }
        }
        file
    }

    #[test]
    fn checkpoint_slots_order_by_generation_and_survive_a_torn_write() {
        let low = Checkpoint::new_log(0);
        let high = low.advanced(
            LogCursor {
                pos: 4096,
                next_index: 9,
                last_term: 2,
                last_crc: 7,
            },
            8,
        );
        let file = |slots: [Option<(Checkpoint, u64)>; 2]| {
            let mut f = vec![0u8; CHECKPOINT_FILE_BYTES];
            for (i, s) in slots.into_iter().enumerate() {
                if let Some((cp, generation)) = s {
                    let mut slot = [0u8; CHECKPOINT_SLOT_BYTES];
                    encode_checkpoint_slot(&cp, generation, &mut slot).expect("fits");
                    f[i * CHECKPOINT_SLOT_BYTES..(i + 1) * CHECKPOINT_SLOT_BYTES]
                        .copy_from_slice(&slot);
                }
            }
            f
        };
        let read = |f: &[u8]| decode_checkpoint_file(f).expect("decodes");
        // A later generation wins even when it moved the checkpoint down (truncation).
        let got = read(&file([Some((high, 4)), Some((low, 5))]));
        assert_eq!(
            (got.checkpoint, got.slot, got.generation),
            (low, Some(1), 5)
        );
        let got = read(&file([Some((high, 6)), Some((low, 5))]));
        assert_eq!((got.checkpoint, got.slot), (high, Some(0)));
        // A torn slot (anywhere in its used bytes, or garbage after them) is skipped.
        for at in [0, 40, 87, 88, 95, 97, CHECKPOINT_SLOT_USED + 3] {
            let mut torn = file([Some((high, 6)), Some((low, 7))]);
            torn[CHECKPOINT_SLOT_BYTES + at] ^= 0x10;
            let got = read(&torn);
            assert_eq!(
                (got.checkpoint, got.slot),
                (high, Some(0)),
                "damage at {at}"
            );
        }
        // The earlier form, and files without a checkpoint.
        let mut old = [0u8; CHECKPOINT_BYTES];
        encode_checkpoint(&high, &mut old).expect("fits");
        assert_eq!(read(&old).generation, 0);
        assert!(decode_checkpoint_file(&file([None, None])).is_err());
        assert!(decode_checkpoint_file(&[0u8; 4096]).is_err());
    }

    #[test]
    fn the_newest_valid_slot_wins_and_a_torn_slot_is_skipped() {
        let t3 = PersistedHardState {
            term: 3,
            voted_for: None,
        };
        let t3v = PersistedHardState {
            term: 3,
            voted_for: Some(2),
        };
        let t4 = PersistedHardState {
            term: 4,
            voted_for: Some(1),
        };
        let read = |f: &[u8]| decode_hard_state_file(f).expect("decodes");
        assert_eq!(read(&two_slots(Some(t3), None)).slot, Some(0));
        assert_eq!(read(&two_slots(Some(t3), Some(t4))).state, t4);
        assert_eq!(read(&two_slots(Some(t4), Some(t3))).slot, Some(0));
        // A vote given later in the same term is newer.
        assert_eq!(read(&two_slots(Some(t3v), Some(t3))).state, t3v);
        assert_eq!(read(&two_slots(Some(t3), Some(t3v))).slot, Some(1));
        // A crash while writing slot 1: its bytes are damaged, slot 0 still counts.
        for at in [
            0,
            5,
            10,
            21,
            HARD_STATE_BYTES + 7,
            HARD_STATE_SLOT_BYTES - 1,
        ] {
            let mut torn = two_slots(Some(t3), Some(t4));
            torn[HARD_STATE_SLOT_BYTES + at] ^= 0x40;
            let got = read(&torn);
            assert_eq!((got.state, got.slot), (t3, Some(0)), "damage at {at}");
        }
        // The earlier one-state form.
        let mut old = [0u8; HARD_STATE_BYTES];
        encode_hard_state(&t4, &mut old).expect("fits");
        assert_eq!(
            read(&old),
            HardStateFile {
                state: t4,
                slot: None
            }
        );
    }

    #[test]
    fn a_hard_state_file_without_a_state_is_refused() {
        assert!(decode_hard_state_file(&two_slots(None, None)).is_err());
        assert!(decode_hard_state_file(&[0u8; 100]).is_err());
        let mut both_bad = two_slots(
            Some(PersistedHardState {
                term: 1,
                voted_for: None,
            }),
            Some(PersistedHardState {
                term: 2,
                voted_for: None,
            }),
        );
        both_bad[3] ^= 1;
        both_bad[HARD_STATE_SLOT_BYTES + 9] ^= 1;
        assert!(decode_hard_state_file(&both_bad).is_err());
        let split_vote = two_slots(
            Some(PersistedHardState {
                term: 5,
                voted_for: Some(0),
            }),
            Some(PersistedHardState {
                term: 5,
                voted_for: Some(1),
            }),
        );
        assert!(matches!(
            decode_hard_state_file(&split_vote),
            Err(StateDecodeError::Inconsistent { .. })
        ));
    }

    #[test]
    fn checkpoint_round_trip_and_damage() {
        let first = Checkpoint::new_log(0);
        let cp = first.advanced(
            LogCursor {
                pos: 1 << 31,
                next_index: 78,
                last_term: 5,
                last_crc: 0xDEAD_BEEF,
            },
            80,
        );
        assert_eq!(cp.scan_from, LogCursor::empty_at(0));
        assert_eq!(cp.durable_index(), 77);
        let mut b = [0u8; CHECKPOINT_BYTES];
        assert_eq!(encode_checkpoint(&cp, &mut b), Ok(CHECKPOINT_BYTES));
        assert_eq!(&b[0..4], b"DLCP");
        assert_eq!(decode_checkpoint(&b), Ok(cp));
        assert_eq!(decode_checkpoint(&first.encoded()), Ok(first));
        for bit in 0..CHECKPOINT_BYTES * 8 {
            let mut d = b;
            d[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_checkpoint(&d).is_err(), "bit {bit}");
        }
        assert!(matches!(
            decode_checkpoint(&b[..87]),
            Err(StateDecodeError::WrongLength { .. })
        ));
        assert!(encode_checkpoint(&cp, &mut b[..87]).is_err());

        let next = cp.advanced(
            LogCursor {
                pos: (1 << 31) + 4096,
                next_index: 90,
                last_term: 6,
                last_crc: 7,
            },
            89,
        );
        assert_eq!(next.scan_from, cp.durable);
        let input = next.scan_input(SegmentGeometry::new(1 << 30).unwrap(), 1000);
        assert_eq!(input.start, cp.durable);
        assert_eq!(
            (input.protected_end_pos, input.protected_index),
            ((1 << 31) + 4096, 89)
        );
    }

    #[test]
    fn truncation_moves_both_points_down() {
        let at = |pos, next_index, last_term| LogCursor {
            pos,
            next_index,
            last_term,
            last_crc: pos as u32 + 1,
        };
        let cp = Checkpoint::new_log(0)
            .advanced(at(1000, 10, 2), 5)
            .advanced(at(2000, 20, 3), 15);
        // Above the durable point: nothing changes.
        assert_eq!(cp.truncated_to(at(2500, 25, 3)), cp);
        // Between the two points: the durable point moves down.
        let t = cp.truncated_to(at(1500, 15, 2));
        assert_eq!((t.scan_from, t.durable), (at(1000, 10, 2), at(1500, 15, 2)));
        // Below both.
        let t = cp.truncated_to(at(500, 5, 1));
        assert_eq!((t.scan_from, t.durable), (at(500, 5, 1), at(500, 5, 1)));
        let mut b = [0u8; CHECKPOINT_BYTES];
        encode_checkpoint(&t, &mut b).unwrap();
        assert_eq!(decode_checkpoint(&b), Ok(t));
    }

    #[test]
    fn inconsistent_checkpoint_is_refused() {
        let mut cp = Checkpoint::new_log(0);
        cp.scan_from.pos = 10; // above the durable point
        let mut b = [0u8; CHECKPOINT_BYTES];
        // Encode the bytes by hand (encode_checkpoint asserts consistency in debug).
        cp.durable.pos = 10;
        encode_checkpoint(&cp, &mut b).unwrap();
        b[40..48].copy_from_slice(&0u64.to_be_bytes());
        let crc = crc32fast::hash(&b[..CHECKPOINT_CRC_AT]);
        b[CHECKPOINT_CRC_AT..].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            decode_checkpoint(&b),
            Err(StateDecodeError::Inconsistent { .. })
        ));
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

        // A vote without the has-voted flag (with a valid CRC) is refused.
        let mut b = [0u8; HARD_STATE_BYTES];
        encode_hard_state(
            &PersistedHardState {
                term: 3,
                voted_for: None,
            },
            &mut b,
        )
        .unwrap();
        b[16..20].copy_from_slice(&2u32.to_be_bytes());
        let crc = crc32fast::hash(&b[..20]);
        b[20..].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            decode_hard_state(&b),
            Err(StateDecodeError::Inconsistent { .. })
        ));
        assert!(decode_hard_state(&[0u8; 25]).is_err());
    }

    impl Checkpoint {
        pub(super) fn encoded(&self) -> [u8; CHECKPOINT_BYTES] {
            let mut b = [0u8; CHECKPOINT_BYTES];
            encode_checkpoint(self, &mut b).unwrap();
            b
        }
    }
}

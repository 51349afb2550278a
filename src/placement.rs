//! Which shard hosts a Raft group.
//!
//! Every node must agree on the shard of a group without talking to each other, so that
//! a push from shard `s` of one node lands on shard `s` of its peer and no cross-shard
//! hop is needed (when peers run the same shard count). That asks for a hash that is
//! fixed by this source file, not by the toolchain: Rust's `DefaultHasher` may change
//! between releases and is seeded per process in `HashMap`, so it is never used here.
//!
//! The hash is 32-bit FNV-1a over the UTF-8 bytes of the group name (offset basis
//! 0x811C9DC5, prime 0x01000193), reduced by `% shard_count`. FNV-1a is chosen over a
//! CRC because its low bits mix every input byte, which is what the modulo keeps.
//! Changing this function moves groups between shards and must be treated like a wire
//! format change.

/// FNV-1a 32-bit offset basis.
const FNV32_OFFSET_BASIS: u32 = 0x811C_9DC5;
/// FNV-1a 32-bit prime.
const FNV32_PRIME: u32 = 0x0100_0193;

/// 32-bit FNV-1a of `bytes`. Stable across builds, platforms and processes.
pub fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(FNV32_OFFSET_BASIS, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(FNV32_PRIME)
    })
}

/// The shard (in `0..shard_count`) that hosts the group named `group_name`.
///
/// # Panics
/// When `shard_count == 0`: a node always runs at least one shard, so a zero count is a
/// caller bug, not an input error.
pub fn shard_of(group_name: &str, shard_count: usize) -> usize {
    assert!(shard_count > 0, "shard_of needs at least one shard");
    // u32 -> usize is lossless on every target this server supports (32 and 64 bit).
    let hash = fnv1a_32(group_name.as_bytes()) as usize;
    let shard = hash % shard_count;
    debug_assert!(shard < shard_count);
    shard
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published FNV-1a 32-bit test vectors: the hash matches the specification,
    /// so any other implementation (a peer in another language) can agree with it.
    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a_32(b""), 0x811C_9DC5);
        assert_eq!(fnv1a_32(b"a"), 0xE40C_292C);
        assert_eq!(fnv1a_32(b"foobar"), 0xBF9C_F968);
    }

    /// Fixed expected shards: if this test fails, groups move between shards on upgrade.
    #[test]
    fn shard_of_is_stable() {
        let cases: [(&str, usize, usize); 6] = [
            ("", 4, (0x811C_9DC5u32 % 4) as usize),
            ("a", 7, (0xE40C_292Cu32 % 7) as usize),
            ("foobar", 3, (0xBF9C_F968u32 % 3) as usize),
            ("RaftNode00", 1, 0),
            ("RaftNode00", 2, (fnv1a_32(b"RaftNode00") % 2) as usize),
            ("RaftNode00", 8, (fnv1a_32(b"RaftNode00") % 8) as usize),
        ];
        for (name, shards, expected) in cases {
            assert_eq!(
                shard_of(name, shards),
                expected,
                "{name:?} over {shards} shards"
            );
        }
        // The literal values, pinned so a change of the hash itself is caught too.
        assert_eq!(fnv1a_32(b"RaftNode00"), 0x9426_E74A);
        assert_eq!(shard_of("RaftNode00", 8), 2);
        assert_eq!(shard_of("RaftNode01", 8), 5);
    }

    #[test]
    fn every_group_lands_in_range() {
        for shards in 1..=16 {
            for i in 0..200 {
                assert!(shard_of(&format!("RaftNode{i:02}"), shards) < shards);
            }
        }
    }

    /// DLedger-style names (RaftNode00..RaftNode99) spread over the shards: no shard gets
    /// less than half or more than twice its fair share.
    #[test]
    fn typical_group_names_spread() {
        for shards in [2usize, 3, 4, 8] {
            let mut counts = vec![0usize; shards];
            let groups = 400;
            for i in 0..groups {
                counts[shard_of(&format!("RaftNode{i:02}"), shards)] += 1;
            }
            let fair = groups / shards;
            for (shard, &count) in counts.iter().enumerate() {
                assert!(
                    count >= fair / 2 && count <= fair * 2,
                    "shard {shard} of {shards} got {count} of {groups} groups: {counts:?}"
                );
            }
        }
    }

    #[test]
    #[should_panic(expected = "at least one shard")]
    fn zero_shards_is_a_bug() {
        let _ = shard_of("g", 0);
    }
}

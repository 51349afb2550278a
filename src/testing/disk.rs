//! The simulated storage of one group on one node: a log with bodies, split into a
//! durable prefix and a written-but-not-synced suffix, plus the hard state and a commit
//! checkpoint.
//!
//! Model of a real disk:
//! - an appended entry is volatile until a sync that was issued after it completes;
//! - a `Truncate` is durable at once (the contract: it lands before any later write);
//! - hard state and the commit checkpoint are written atomically and are durable at once;
//! - a crash keeps the durable prefix and possibly *some prefix* of the volatile suffix
//!   (a torn tail), never more and never anything corrupted below the durable length.

use bytes::Bytes;
use rand::Rng;

use crate::raft::{HardState, Index, Recovered, Term, TermRun};

/// One log entry as the driver stores it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub term: Term,
    pub body: Bytes,
    /// Hash of every (index, term, body) from 1 through this entry: two logs with equal
    /// prefix hashes at an index hold identical prefixes (log matching in O(1)).
    pub prefix_hash: u64,
    /// Order of the write that put this entry in the log; a sync covers writes up to a
    /// sequence number.
    write_seq: u64,
}

/// FNV-1a over the body bytes.
pub fn body_hash(body: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in body {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn mix(mut z: u64) -> u64 {
    // splitmix64 finaliser
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The prefix hash of an entry given its predecessor's.
pub fn chain_hash(prev: u64, index: Index, term: Term, body: &[u8]) -> u64 {
    let h = mix(prev ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let h = mix(h ^ term);
    mix(h ^ body_hash(body))
}

/// What a crash did to the log (for traces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashLoss {
    pub volatile_entries: usize,
    pub kept_entries: usize,
}

#[derive(Debug, Default)]
pub struct SimDisk {
    entries: Vec<Entry>,
    durable_len: usize,
    next_write_seq: u64,
    hard_state: HardState,
    commit_checkpoint: Index,
}

impl SimDisk {
    pub fn last_index(&self) -> Index {
        self.entries.len() as Index
    }

    pub fn durable_index(&self) -> Index {
        self.durable_len as Index
    }

    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index == 0 {
            return None;
        }
        self.entries.get(usize::try_from(index - 1).ok()?)
    }

    /// Term at `index` (0 for index 0, None beyond the log).
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == 0 {
            Some(0)
        } else {
            self.entry(index).map(|e| e.term)
        }
    }

    /// Prefix hash through `index` (0 for the empty prefix).
    pub fn prefix_hash(&self, index: Index) -> Option<u64> {
        if index == 0 {
            Some(0)
        } else {
            self.entry(index).map(|e| e.prefix_hash)
        }
    }

    /// Prefix hash through `index` counting only the durable prefix.
    pub fn durable_prefix_hash(&self, index: Index) -> Option<u64> {
        if index > self.durable_index() {
            None
        } else {
            self.prefix_hash(index)
        }
    }

    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    pub fn write_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    pub fn commit_checkpoint(&self) -> Index {
        self.commit_checkpoint
    }

    /// Record a durable commit point; only indices this node holds durably qualify.
    pub fn write_commit_checkpoint(&mut self, commit: Index) {
        let c = commit.min(self.durable_index());
        if c > self.commit_checkpoint {
            self.commit_checkpoint = c;
        }
    }

    /// Remove every entry with index >= `from`, from the written and the durable log.
    /// Returns how many entries were removed.
    pub fn truncate(&mut self, from: Index) -> usize {
        let keep = usize::try_from(from.saturating_sub(1)).unwrap_or(usize::MAX);
        let removed = self.entries.len().saturating_sub(keep);
        self.entries.truncate(keep);
        self.durable_len = self.durable_len.min(keep);
        removed
    }

    /// Append one entry at `last_index() + 1`; returns its prefix hash.
    pub fn append(&mut self, term: Term, body: Bytes) -> u64 {
        let index = self.last_index() + 1;
        let prev = self.entries.last().map_or(0, |e| e.prefix_hash);
        let prefix_hash = chain_hash(prev, index, term, &body);
        let write_seq = self.next_write_seq;
        self.next_write_seq += 1;
        self.entries.push(Entry {
            term,
            body,
            prefix_hash,
            write_seq,
        });
        prefix_hash
    }

    /// A sync issued now covers every write made so far.
    pub fn sync_ticket(&self) -> u64 {
        self.next_write_seq
    }

    /// A sync issued with `ticket` completed: everything written before it is durable.
    /// Returns the new durable (index, term) if the durable prefix grew.
    pub fn complete_sync(&mut self, ticket: u64) -> Option<(Index, Term)> {
        let before = self.durable_len;
        while let Some(e) = self.entries.get(self.durable_len) {
            if e.write_seq >= ticket {
                break;
            }
            self.durable_len += 1;
        }
        if self.durable_len > before {
            let last = self.durable_index();
            self.term_at(last).map(|t| (last, t))
        } else {
            None
        }
    }

    /// A crash: the volatile suffix is lost except a prefix of `kept` of it (a torn tail);
    /// whatever survives is durable from now on.
    pub fn crash(&mut self, rng: &mut impl Rng, keep_some_prob: f64) -> CrashLoss {
        let volatile = self.entries.len() - self.durable_len;
        let kept = if volatile > 0 && rng.random_bool(keep_some_prob) {
            rng.random_range(0..=volatile)
        } else {
            0
        };
        self.entries.truncate(self.durable_len + kept);
        self.durable_len = self.entries.len();
        CrashLoss {
            volatile_entries: volatile,
            kept_entries: kept,
        }
    }

    /// What a restarted node reads back: hard state, log shape and commit checkpoint.
    pub fn recover(&self) -> Recovered {
        debug_assert_eq!(
            self.durable_len,
            self.entries.len(),
            "recover only after a crash"
        );
        let mut term_runs: Vec<TermRun> = Vec::new();
        for (i, e) in self.entries[..self.durable_len].iter().enumerate() {
            if term_runs.last().is_none_or(|r| r.term != e.term) {
                term_runs.push(TermRun {
                    first_index: i as Index + 1,
                    term: e.term,
                });
            }
        }
        Recovered {
            hard_state: self.hard_state,
            last_index: self.durable_index(),
            term_runs,
            commit_index: self.commit_checkpoint.min(self.durable_index()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn sync_covers_only_earlier_writes_and_survives_truncation() {
        let mut d = SimDisk::default();
        d.append(1, b("a"));
        let t1 = d.sync_ticket();
        d.append(1, b("b"));
        assert_eq!(d.complete_sync(t1), Some((1, 1)));
        d.truncate(2);
        d.append(2, b("c"));
        // The ticket issued before "c" must not make "c" durable.
        assert_eq!(d.complete_sync(t1), None);
        assert_eq!(d.durable_index(), 1);
        let t2 = d.sync_ticket();
        assert_eq!(d.complete_sync(t2), Some((2, 2)));
    }

    #[test]
    fn crash_keeps_durable_prefix_and_at_most_the_volatile_suffix() {
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        for _ in 0..200 {
            let mut d = SimDisk::default();
            for i in 0..5 {
                d.append(1, b(&format!("e{i}")));
            }
            let t = d.sync_ticket();
            d.complete_sync(t);
            for i in 5..9 {
                d.append(2, b(&format!("e{i}")));
            }
            let loss = d.crash(&mut rng, 0.5);
            assert_eq!(loss.volatile_entries, 4);
            assert!((5..=9).contains(&d.last_index()));
            assert_eq!(d.durable_index(), d.last_index());
            let rec = d.recover();
            assert_eq!(rec.last_index, d.last_index());
            assert_eq!(
                rec.term_runs[0],
                TermRun {
                    first_index: 1,
                    term: 1
                }
            );
            assert_eq!(rec.term_runs.len(), if d.last_index() > 5 { 2 } else { 1 });
        }
    }

    #[test]
    fn equal_prefix_hash_means_equal_prefix() {
        let mut x = SimDisk::default();
        let mut y = SimDisk::default();
        x.append(1, b("a"));
        y.append(1, b("z"));
        x.append(2, b("b"));
        y.append(2, b("b"));
        assert_ne!(x.prefix_hash(2), y.prefix_hash(2));
        y.truncate(1);
        y.append(1, b("a"));
        y.append(2, b("b"));
        assert_eq!(x.prefix_hash(2), y.prefix_hash(2));
    }
}

//! The core's body-free view of its log: term runs, last, persisted and commit indices.
//!
//! The log is described by one [`TermRun`] per term change, so `term_at` works for any
//! index without the entry bodies, and appending a batch of an existing term costs no
//! allocation (a run is only pushed when the term changes, i.e. once per election).

use super::types::{Index, RejectHint, Term, TermRun};

/// Where the first entry of an `Append` batch differs from this log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BatchFit {
    /// Every entry of the batch is already in the log with the same term.
    AllPresent,
    /// The log agrees up to `from - 1` and ends there: append `from..=batch_end`.
    AppendFrom(Index),
    /// The log holds a different term at `from`: truncate at `from`, then append.
    ConflictAt(Index),
}

#[derive(Debug)]
pub(crate) struct RaftLog {
    /// Ascending by both `first_index` and `term`; covers `1..=last_index` exactly.
    runs: Vec<TermRun>,
    last_index: Index,
    /// The driver's log is durable through here (`<= last_index`).
    persisted_index: Index,
    /// Known committed (never decreases).
    commit_index: Index,
}

impl RaftLog {
    /// A log restored from storage: everything recovered is durable.
    pub(crate) fn recovered(
        runs: &[TermRun],
        last_index: Index,
        commit_index: Index,
    ) -> Result<RaftLog, &'static str> {
        if (last_index == 0) != runs.is_empty() {
            return Err("recovered term runs must be empty exactly when the log is empty");
        }
        if let Some(first) = runs.first()
            && first.first_index != 1
        {
            return Err("the first recovered term run must start at index 1");
        }
        for pair in runs.windows(2) {
            if pair[1].first_index <= pair[0].first_index || pair[1].term <= pair[0].term {
                return Err("recovered term runs must be strictly ascending by index and term");
            }
        }
        if runs.iter().any(|r| r.term == 0) {
            return Err("recovered term runs must not carry term 0");
        }
        if let Some(last) = runs.last()
            && last.first_index > last_index
        {
            return Err("a recovered term run starts beyond the recovered last index");
        }
        if commit_index > last_index {
            return Err("recovered commit index is beyond the recovered log");
        }
        Ok(RaftLog {
            runs: runs.to_vec(),
            last_index,
            persisted_index: last_index,
            commit_index,
        })
    }

    pub(crate) fn last_index(&self) -> Index {
        self.last_index
    }
    pub(crate) fn last_term(&self) -> Term {
        self.runs.last().map_or(0, |r| r.term)
    }
    pub(crate) fn persisted_index(&self) -> Index {
        self.persisted_index
    }
    pub(crate) fn commit_index(&self) -> Index {
        self.commit_index
    }
    pub(crate) fn runs(&self) -> &[TermRun] {
        &self.runs
    }

    /// Position in `runs` of the run holding `index` (`1..=last_index`).
    fn run_pos(&self, index: Index) -> usize {
        debug_assert!(index >= 1 && index <= self.last_index);
        // The first run starts at 1, so at least one run has first_index <= index.
        self.runs.partition_point(|r| r.first_index <= index) - 1
    }

    /// Last index of the run at `pos`.
    fn run_end(&self, pos: usize) -> Index {
        self.runs
            .get(pos + 1)
            .map_or(self.last_index, |next| next.first_index - 1)
    }

    /// Term of the entry at `index`: `Some(0)` for index 0, `None` beyond the log.
    pub(crate) fn term_at(&self, index: Index) -> Option<Term> {
        if index == 0 {
            return Some(0);
        }
        if index > self.last_index {
            return None;
        }
        Some(self.runs[self.run_pos(index)].term)
    }

    /// Last index of the same-term run holding `index` (so a batch starting at `index`
    /// never crosses a term boundary when it stops there).
    pub(crate) fn run_end_at(&self, index: Index) -> Index {
        self.run_end(self.run_pos(index))
    }

    /// The last index this log holds with `term`, if it holds any.
    pub(crate) fn last_index_of_term(&self, term: Term) -> Option<Index> {
        let pos = self.runs.binary_search_by(|r| r.term.cmp(&term)).ok()?;
        Some(self.run_end(pos))
    }

    /// Raft §5.4.1: is a log ending at (`last_index`, `last_term`) at least as up to date
    /// as this one?
    pub(crate) fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        let my_term = self.last_term();
        last_term > my_term || (last_term == my_term && last_index >= self.last_index)
    }

    /// Does this log hold an entry of `term` at `index`?
    pub(crate) fn matches(&self, index: Index, term: Term) -> bool {
        self.term_at(index) == Some(term)
    }

    /// Why an `Append` with `prev_index` does not fit, for the leader's fast backup.
    pub(crate) fn reject_hint(&self, prev_index: Index) -> RejectHint {
        match self.term_at(prev_index) {
            Some(term) if prev_index > 0 => RejectHint {
                last_index: self.last_index,
                conflict_term: term,
                conflict_first_index: self.runs[self.run_pos(prev_index)].first_index,
            },
            _ => RejectHint {
                last_index: self.last_index,
                conflict_term: 0,
                conflict_first_index: 0,
            },
        }
    }

    /// How the batch `prev_index+1 ..= prev_index+count` of `term` fits after a matching
    /// `prev_index`. Terms are non-decreasing along a log, so the entries this log holds
    /// with `term` inside the batch range form one run starting at the batch start.
    pub(crate) fn fit_batch(&self, prev_index: Index, count: u64, term: Term) -> BatchFit {
        debug_assert!(count > 0);
        let first = prev_index + 1;
        let end = prev_index + count;
        if first > self.last_index {
            return BatchFit::AppendFrom(first);
        }
        let pos = self.run_pos(first);
        if self.runs[pos].term != term {
            return BatchFit::ConflictAt(first);
        }
        let same_through = self.run_end(pos);
        if same_through >= end {
            BatchFit::AllPresent
        } else if same_through == self.last_index {
            BatchFit::AppendFrom(same_through + 1)
        } else {
            BatchFit::ConflictAt(same_through + 1)
        }
    }

    /// Append `first..=last`, all of `term`, right after the current last entry.
    pub(crate) fn append(&mut self, first: Index, last: Index, term: Term) {
        assert_eq!(first, self.last_index + 1, "log append must be contiguous");
        debug_assert!(last >= first);
        let last_term = self.last_term();
        assert!(term >= last_term, "log terms never decrease along the log");
        if term != last_term || self.runs.is_empty() {
            self.runs.push(TermRun {
                first_index: first,
                term,
            });
        }
        self.last_index = last;
        self.debug_check();
    }

    /// Remove every entry with index `>= from`.
    pub(crate) fn truncate(&mut self, from: Index) {
        assert!(
            from > self.commit_index,
            "truncation at {from} would remove committed entries (commit {})",
            self.commit_index
        );
        debug_assert!(from >= 1 && from <= self.last_index);
        let keep = self.runs.partition_point(|r| r.first_index < from);
        self.runs.truncate(keep);
        self.last_index = from - 1;
        self.persisted_index = self.persisted_index.min(self.last_index);
        self.debug_check();
    }

    /// Record durability through `index` if the entry there still has `term`.
    /// Returns whether the persisted index advanced.
    pub(crate) fn persist(&mut self, index: Index, term: Term) -> bool {
        if index <= self.persisted_index || !self.matches(index, term) {
            return false;
        }
        self.persisted_index = index;
        self.debug_check();
        true
    }

    /// Advance the commit index. Returns whether it moved.
    pub(crate) fn commit_to(&mut self, index: Index) -> bool {
        if index <= self.commit_index {
            return false;
        }
        assert!(
            index <= self.last_index,
            "commit {index} beyond last index {}",
            self.last_index
        );
        self.commit_index = index;
        true
    }

    fn debug_check(&self) {
        debug_assert!(self.persisted_index <= self.last_index);
        debug_assert!(self.commit_index <= self.last_index);
        debug_assert_eq!(self.last_index == 0, self.runs.is_empty());
        debug_assert!(self.runs.first().is_none_or(|r| r.first_index == 1));
        debug_assert!(
            self.runs
                .windows(2)
                .all(|p| p[0].first_index < p[1].first_index && p[0].term < p[1].term)
        );
        debug_assert!(
            self.runs
                .last()
                .is_none_or(|r| r.first_index <= self.last_index)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(first_index: Index, term: Term) -> TermRun {
        TermRun { first_index, term }
    }

    /// 1..=3 term 1, 4..=6 term 3, 7..=9 term 5.
    fn sample() -> RaftLog {
        RaftLog::recovered(&[run(1, 1), run(4, 3), run(7, 5)], 9, 2).expect("valid")
    }

    #[test]
    fn term_at_every_index() {
        let log = sample();
        let terms: Vec<_> = (0..=10).map(|i| log.term_at(i)).collect();
        assert_eq!(
            terms,
            [0, 1, 1, 1, 3, 3, 3, 5, 5, 5]
                .iter()
                .map(|&t| Some(t))
                .chain([None])
                .collect::<Vec<_>>()
        );
        assert_eq!(log.last_term(), 5);
        assert_eq!(log.persisted_index(), 9);
    }

    #[test]
    fn append_keeps_runs_compact() {
        let mut log = RaftLog::recovered(&[], 0, 0).expect("valid");
        log.append(1, 4, 2);
        log.append(5, 5, 2);
        log.append(6, 8, 7);
        assert_eq!(log.runs(), &[run(1, 2), run(6, 7)]);
        assert_eq!(log.last_index(), 8);
        assert_eq!(log.term_at(5), Some(2));
        assert_eq!(log.run_end_at(2), 5);
        assert_eq!(log.run_end_at(6), 8);
    }

    #[test]
    fn truncate_drops_runs_and_caps_persisted() {
        let mut log = sample();
        log.truncate(5);
        assert_eq!(log.runs(), &[run(1, 1), run(4, 3)]);
        assert_eq!(log.last_index(), 4);
        assert_eq!(log.persisted_index(), 4);
        log.truncate(4);
        assert_eq!(log.runs(), &[run(1, 1)]);
        assert_eq!(log.last_term(), 1);
    }

    #[test]
    #[should_panic(expected = "committed")]
    fn truncate_at_commit_panics() {
        let mut log = sample();
        log.truncate(2);
    }

    #[test]
    fn last_index_of_term() {
        let log = sample();
        assert_eq!(log.last_index_of_term(1), Some(3));
        assert_eq!(log.last_index_of_term(3), Some(6));
        assert_eq!(log.last_index_of_term(5), Some(9));
        assert_eq!(log.last_index_of_term(4), None);
    }

    #[test]
    fn reject_hints() {
        let log = sample();
        assert_eq!(
            log.reject_hint(8),
            RejectHint {
                last_index: 9,
                conflict_term: 5,
                conflict_first_index: 7
            }
        );
        assert_eq!(
            log.reject_hint(20),
            RejectHint {
                last_index: 9,
                conflict_term: 0,
                conflict_first_index: 0
            }
        );
    }

    #[test]
    fn batch_fit() {
        let log = sample();
        // Entirely beyond the log.
        assert_eq!(log.fit_batch(9, 3, 6), BatchFit::AppendFrom(10));
        // Duplicate of entries held.
        assert_eq!(log.fit_batch(6, 3, 5), BatchFit::AllPresent);
        // Overlaps the tail, same term: append only the new suffix.
        assert_eq!(log.fit_batch(7, 5, 5), BatchFit::AppendFrom(10));
        // Different term at the first entry.
        assert_eq!(log.fit_batch(3, 2, 4), BatchFit::ConflictAt(4));
        // Same term for a while, then the log moves to a later term.
        assert_eq!(log.fit_batch(3, 5, 3), BatchFit::ConflictAt(7));
    }

    #[test]
    fn persist_ignores_stale_terms() {
        let mut log = RaftLog::recovered(&[], 0, 0).expect("valid");
        log.append(1, 5, 1);
        assert!(log.persist(3, 1));
        assert!(!log.persist(4, 2));
        assert!(!log.persist(2, 1));
        log.truncate(4);
        log.append(4, 6, 2);
        assert!(!log.persist(5, 1));
        assert!(log.persist(5, 2));
        assert_eq!(log.persisted_index(), 5);
    }

    #[test]
    fn up_to_date() {
        let log = sample();
        assert!(log.is_up_to_date(9, 5));
        assert!(log.is_up_to_date(2, 6));
        assert!(!log.is_up_to_date(8, 5));
        assert!(!log.is_up_to_date(100, 4));
    }

    #[test]
    fn bad_recovery_is_refused() {
        assert!(RaftLog::recovered(&[run(2, 1)], 3, 0).is_err());
        assert!(RaftLog::recovered(&[run(1, 2), run(3, 2)], 4, 0).is_err());
        assert!(RaftLog::recovered(&[run(1, 1)], 0, 0).is_err());
        assert!(RaftLog::recovered(&[run(1, 1)], 3, 4).is_err());
        assert!(RaftLog::recovered(&[run(1, 1), run(5, 2)], 4, 0).is_err());
    }

    /// The run-based log agrees with a plain one-term-per-index model under random
    /// appends and truncations.
    mod model {
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Op {
            /// Append `len` entries, raising the term by `bump` (0 keeps it).
            Append {
                len: u64,
                bump: u64,
            },
            /// Truncate at `at` (taken modulo the log length, above commit).
            Truncate {
                at: u64,
            },
            Commit {
                at: u64,
            },
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                3 => (1u64..6, 0u64..3).prop_map(|(len, bump)| Op::Append { len, bump }),
                1 => (0u64..1000).prop_map(|at| Op::Truncate { at }),
                1 => (0u64..1000).prop_map(|at| Op::Commit { at }),
            ]
        }

        fn model_term(model: &[Term], index: Index) -> Option<Term> {
            if index == 0 {
                return Some(0);
            }
            model.get(index as usize - 1).copied()
        }

        proptest! {
            #[test]
            fn runs_match_plain_model(ops in proptest::collection::vec(op(), 1..60)) {
                let mut log = RaftLog::recovered(&[], 0, 0).expect("empty log");
                let mut model: Vec<Term> = Vec::new();
                let mut term = 1;
                for op in ops {
                    match op {
                        Op::Append { len, bump } => {
                            term += bump;
                            let first = log.last_index() + 1;
                            log.append(first, first + len - 1, term);
                            model.extend((0..len).map(|_| term));
                        }
                        Op::Truncate { at } => {
                            let commit = log.commit_index();
                            let last = log.last_index();
                            if last > commit {
                                let from = commit + 1 + at % (last - commit);
                                log.truncate(from);
                                model.truncate(from as usize - 1);
                            }
                        }
                        Op::Commit { at } => {
                            let last = log.last_index();
                            if last > 0 {
                                log.commit_to(1 + at % last);
                            }
                        }
                    }
                    let last = model.len() as Index;
                    prop_assert_eq!(log.last_index(), last);
                    prop_assert_eq!(log.last_term(), model.last().copied().unwrap_or(0));
                    for i in 0..=last + 1 {
                        prop_assert_eq!(log.term_at(i), model_term(&model, i));
                    }
                    for t in 0..=term + 1 {
                        let expect = model.iter().rposition(|&x| x == t).map(|p| p as Index + 1);
                        prop_assert_eq!(log.last_index_of_term(t), expect);
                    }
                    for prev in 0..=last + 1 {
                        let hint = log.reject_hint(prev);
                        prop_assert_eq!(hint.last_index, last);
                        if prev >= 1 && prev <= last {
                            let t = model[prev as usize - 1];
                            let first = model.iter().position(|&x| x == t).map_or(0, |p| p as Index + 1);
                            prop_assert_eq!(hint.conflict_term, t);
                            prop_assert_eq!(hint.conflict_first_index, first);
                        } else {
                            prop_assert_eq!(hint.conflict_term, 0);
                        }
                    }
                    // fit_batch against the model, for every matching prev and a few
                    // batch shapes.
                    for prev in 0..=last {
                        for (count, t) in [(1, term), (3, term), (4, term + 1), (2, model_term(&model, prev + 1).unwrap_or(term))] {
                            let fit = log.fit_batch(prev, count, t);
                            let expect = (prev + 1..=prev + count)
                                .find(|&i| model_term(&model, i) != Some(t))
                                .map_or(BatchFit::AllPresent, |i| {
                                    if i > last { BatchFit::AppendFrom(i) } else { BatchFit::ConflictAt(i) }
                                });
                            prop_assert_eq!(fit, expect);
                        }
                    }
                }
            }
        }
    }
}

//! Safety invariants of one group, checked incrementally as the driver sees each step.
//!
//! The checker never trusts the core: it looks at the driver's logs (bodies included)
//! and at what the core reports (role, term, commit index).
//!
//! - Election safety: at most one leader per term, over the whole run.
//! - Log matching: every entry ever written carries a prefix hash; two writes of the same
//!   (index, term) anywhere must carry the same prefix hash, i.e. identical logs up to
//!   there, bodies included.
//! - Committed entries never change: the first commit of an index records (term, prefix
//!   hash, body); every later commit anywhere must match, no node may rewrite or
//!   truncate an index it has committed (in any incarnation), and at the first commit the
//!   entry is durable on a majority (sync durability).
//! - Leader completeness (Raft §5.4): a leader of term T holds every entry first committed
//!   by a node in a term below T, and every such acknowledged proposal at its index. (A
//!   leader of an older term can still be elected late; it cannot commit anything, so
//!   entries committed in later terms are not required of it.)

use std::collections::BTreeMap;

use bytes::Bytes;

use super::disk::SimDisk;
use super::report::Violation;
use crate::raft::{Index, NodeId, Term};

#[derive(Clone, Debug)]
struct CommittedEntry {
    term: Term,
    /// Term of the node that first committed this index.
    commit_term: Term,
    prefix_hash: u64,
    body: Bytes,
}

#[derive(Debug)]
pub struct GroupChecker {
    group: usize,
    majority: usize,
    leaders: BTreeMap<Term, NodeId>,
    /// (index, term) → (prefix hash, first writer).
    prefixes: BTreeMap<(Index, Term), (u64, NodeId)>,
    /// Index i at `committed[i - 1]`; contiguous from 1.
    committed: Vec<CommittedEntry>,
    /// Acknowledged proposals: (index, body).
    acked: Vec<(Index, Bytes)>,
}

fn show(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

impl GroupChecker {
    pub fn new(group: usize, nodes: usize) -> GroupChecker {
        GroupChecker {
            group,
            majority: nodes / 2 + 1,
            leaders: BTreeMap::new(),
            prefixes: BTreeMap::new(),
            committed: Vec::new(),
            acked: Vec::new(),
        }
    }

    pub fn committed_len(&self) -> Index {
        self.committed.len() as Index
    }

    pub fn acked_len(&self) -> usize {
        self.acked.len()
    }

    /// Term of the committed entry at `index`, if committed.
    pub fn committed_term(&self, index: Index) -> Option<Term> {
        self.committed_at(index).map(|c| c.term)
    }

    fn committed_at(&self, index: Index) -> Option<&CommittedEntry> {
        let i = usize::try_from(index.checked_sub(1)?).ok()?;
        self.committed.get(i)
    }

    /// `node` wrote (index, term) with `prefix_hash`; `max_commit` is the highest commit
    /// index this node ever reported (any incarnation).
    pub fn on_append(
        &mut self,
        node: NodeId,
        index: Index,
        term: Term,
        prefix_hash: u64,
        max_commit: Index,
    ) -> Result<(), Violation> {
        match self.prefixes.get(&(index, term)) {
            Some(&(h, first)) if h != prefix_hash => {
                return Err(Violation::new(
                    "log-matching",
                    format!(
                        "group {} node {node} wrote ({index},{term}) whose log prefix differs from node {first}'s entry ({index},{term})",
                        self.group
                    ),
                ));
            }
            Some(_) => {}
            None => {
                self.prefixes.insert((index, term), (prefix_hash, node));
            }
        }
        if index <= max_commit {
            if let Some(c) = self.committed_at(index) {
                if c.prefix_hash != prefix_hash {
                    return Err(Violation::new(
                        "committed-changed",
                        format!(
                            "group {} node {node} overwrote index {index} (committed term {}) with term {term} after having committed through {max_commit}",
                            self.group, c.term
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `node` truncates from `from`, removing `removed` entries, after having committed
    /// up to `max_commit` (any incarnation).
    pub fn on_truncate(
        &self,
        node: NodeId,
        from: Index,
        removed: usize,
        max_commit: Index,
    ) -> Result<(), Violation> {
        if removed > 0 && from <= max_commit {
            return Err(Violation::new(
                "committed-truncated",
                format!(
                    "group {} node {node} truncated from index {from} ({removed} entries) but it committed through {max_commit}",
                    self.group
                ),
            ));
        }
        Ok(())
    }

    /// `node`'s commit index moved from `old` to `new`. `disks` are the group's disks of
    /// all nodes (for the durable-majority check), `node`'s own among them.
    pub fn on_commit(
        &mut self,
        node: NodeId,
        node_term: Term,
        old: Index,
        new: Index,
        disks: &[&SimDisk],
    ) -> Result<(), Violation> {
        let g = self.group;
        let own = disks[node as usize];
        if new > own.last_index() {
            return Err(Violation::new(
                "commit-beyond-log",
                format!(
                    "group {g} node {node} commit {new} > its last index {}",
                    own.last_index()
                ),
            ));
        }
        // Compare the part already committed somewhere: equal prefix hash at the highest
        // such index means equal entries at every index up to it.
        let known = new.min(self.committed_len());
        if known > old {
            let c = self.committed_at(known).expect("known <= committed_len");
            let mine = own.prefix_hash(known).expect("known <= new <= last_index");
            if c.prefix_hash != mine {
                return Err(Violation::new(
                    "committed-changed",
                    format!(
                        "group {g} node {node} committed through {new} but its log up to {known} differs from the committed log (committed term at {known}: {}, its term: {:?})",
                        c.term,
                        own.term_at(known)
                    ),
                ));
            }
        }
        if new > self.committed_len() {
            debug_assert!(
                old <= self.committed_len(),
                "a node's commit starts inside the committed prefix"
            );
            let start = self.committed_len().max(old);
            if start > 0
                && own.prefix_hash(start) != self.committed_at(start).map(|c| c.prefix_hash)
            {
                return Err(Violation::new(
                    "committed-changed",
                    format!(
                        "group {g} node {node} extends commit past {start} on a log that differs from the committed one"
                    ),
                ));
            }
            for i in start + 1..=new {
                let e = own.entry(i).expect("i <= new <= last_index");
                self.committed.push(CommittedEntry {
                    term: e.term,
                    commit_term: node_term,
                    prefix_hash: e.prefix_hash,
                    body: e.body.clone(),
                });
            }
            let want = own.prefix_hash(new);
            let durable = disks
                .iter()
                .filter(|d| d.durable_prefix_hash(new) == want)
                .count();
            if durable < self.majority {
                return Err(Violation::new(
                    "commit-not-durable",
                    format!(
                        "group {g} node {node} committed index {new} while only {durable} node(s) hold it durably (majority {})",
                        self.majority
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `node` was observed as leader of `term` with log `disk`. Returns whether this is a
    /// new (term, leader) pair.
    pub fn on_leader(
        &mut self,
        node: NodeId,
        term: Term,
        disk: &SimDisk,
    ) -> Result<bool, Violation> {
        let g = self.group;
        match self.leaders.get(&term) {
            Some(&other) if other != node => {
                return Err(Violation::new(
                    "election-safety",
                    format!("group {g} has two leaders in term {term}: nodes {other} and {node}"),
                ));
            }
            Some(_) => return Ok(false),
            None => {
                self.leaders.insert(term, node);
            }
        }
        let len = self.committed_through_term(term);
        if len > 0 && disk.prefix_hash(len) != self.committed_at(len).map(|c| c.prefix_hash) {
            let first_bad = (1..=len)
                .find(|&i| disk.prefix_hash(i) != self.committed_at(i).map(|c| c.prefix_hash))
                .unwrap_or(len);
            return Err(Violation::new(
                "leader-completeness",
                format!(
                    "group {g} node {node} became leader of term {term} without committed index {first_bad} (committed below term {term} through {len}; its last index {}, its term there {:?}, committed term {:?})",
                    disk.last_index(),
                    disk.term_at(first_bad),
                    self.committed_at(first_bad).map(|c| c.term)
                ),
            ));
        }
        self.check_acked_in(node, disk, len, "leader")?;
        Ok(true)
    }

    /// How many entries were first committed in a term at or below `term`. Commit terms
    /// never decrease along the log (a commit covers a prefix), so those entries are a
    /// prefix. (Nothing can be committed in `term` before its leader exists.)
    fn committed_through_term(&self, term: Term) -> Index {
        self.committed.partition_point(|c| c.commit_term <= term) as Index
    }

    /// Every acknowledged proposal at or below `upto` is in `disk` at its index.
    fn check_acked_in(
        &self,
        node: NodeId,
        disk: &SimDisk,
        upto: Index,
        role: &str,
    ) -> Result<(), Violation> {
        for (index, body) in self.acked.iter().filter(|(i, _)| *i <= upto) {
            let held = disk.entry(*index).map(|e| &e.body);
            if held != Some(body) {
                return Err(Violation::new(
                    "acked-lost",
                    format!(
                        "group {} {role} node {node} lacks acknowledged proposal {:?} at index {index} (holds {:?})",
                        self.group,
                        show(body),
                        held.map(|b| show(b))
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A driver acknowledged `body` at `index` to its client.
    pub fn on_ack(&mut self, index: Index, body: &Bytes) -> Result<(), Violation> {
        match self.committed_at(index) {
            Some(c) if c.body == body => {
                self.acked.push((index, body.clone()));
                Ok(())
            }
            other => Err(Violation::new(
                "ack-not-committed",
                format!(
                    "group {} acknowledged {:?} at index {index} but the committed entry there is {:?}",
                    self.group,
                    show(body),
                    other.map(|c| show(&c.body))
                ),
            )),
        }
    }

    /// A restarted node recovered `disk`; it had committed through `max_commit` before.
    pub fn on_recover(
        &self,
        node: NodeId,
        disk: &SimDisk,
        max_commit: Index,
    ) -> Result<(), Violation> {
        let upto = max_commit.min(disk.last_index()).min(self.committed_len());
        if upto > 0 && disk.prefix_hash(upto) != self.committed_at(upto).map(|c| c.prefix_hash) {
            return Err(Violation::new(
                "committed-changed",
                format!(
                    "group {} node {node} recovered a log that differs from the committed log at or below {upto}",
                    self.group
                ),
            ));
        }
        Ok(())
    }

    /// End of run: every node's log matches the committed log up to its commit index, and
    /// a current leader holds every acknowledged proposal committed up to its term.
    pub fn final_check(
        &self,
        node: NodeId,
        disk: &SimDisk,
        commit: Index,
        leader_term: Option<Term>,
    ) -> Result<(), Violation> {
        let upto = commit.min(self.committed_len());
        if upto > 0 && disk.prefix_hash(upto) != self.committed_at(upto).map(|c| c.prefix_hash) {
            return Err(Violation::new(
                "committed-changed",
                format!(
                    "group {} node {node} at the end: log differs from the committed log at or below {upto}",
                    self.group
                ),
            ));
        }
        if let Some(term) = leader_term {
            let upto = self.committed_through_term(term);
            if upto > 0 && disk.prefix_hash(upto) != self.committed_at(upto).map(|c| c.prefix_hash)
            {
                return Err(Violation::new(
                    "leader-completeness",
                    format!(
                        "group {} leader node {node} of term {term} at the end lacks entries committed through {upto}",
                        self.group
                    ),
                ));
            }
            self.check_acked_in(node, disk, upto, "final leader")?;
        }
        for (index, body) in self.acked.iter().filter(|(i, _)| *i <= commit) {
            if disk.entry(*index).map(|e| &e.body) != Some(body) {
                return Err(Violation::new(
                    "acked-lost",
                    format!(
                        "group {} node {node} at the end lacks acknowledged {:?} at {index}",
                        self.group,
                        show(body)
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(entries: &[(Term, &str)], durable: bool) -> SimDisk {
        let mut d = SimDisk::default();
        for (t, b) in entries {
            d.append(*t, Bytes::copy_from_slice(b.as_bytes()));
        }
        if durable {
            let t = d.sync_ticket();
            d.complete_sync(t);
        }
        d
    }

    #[test]
    fn two_leaders_in_one_term_is_caught() {
        let mut c = GroupChecker::new(0, 3);
        let d = SimDisk::default();
        assert_eq!(c.on_leader(0, 1, &d), Ok(true));
        assert_eq!(c.on_leader(0, 1, &d), Ok(false));
        assert_eq!(
            c.on_leader(1, 1, &d).map_err(|v| v.kind),
            Err("election-safety")
        );
    }

    #[test]
    fn divergent_prefix_under_same_index_and_term_is_caught() {
        let mut c = GroupChecker::new(0, 3);
        let a = disk(&[(1, "x"), (2, "y")], true);
        let b = disk(&[(1, "z"), (2, "y")], true);
        let pa = a.prefix_hash(2).unwrap_or_default();
        let pb = b.prefix_hash(2).unwrap_or_default();
        assert!(c.on_append(0, 2, 2, pa, 0).is_ok());
        assert_eq!(
            c.on_append(1, 2, 2, pb, 0).map_err(|v| v.kind),
            Err("log-matching")
        );
    }

    #[test]
    fn commit_without_durable_majority_is_caught() {
        let mut c = GroupChecker::new(0, 3);
        let leader = disk(&[(1, "a")], true);
        let lagging = disk(&[(1, "a")], false);
        let empty = SimDisk::default();
        let err = c
            .on_commit(0, 1, 0, 1, &[&leader, &lagging, &empty])
            .map_err(|v| v.kind);
        assert_eq!(err, Err("commit-not-durable"));
        let mut c = GroupChecker::new(0, 3);
        let follower = disk(&[(1, "a")], true);
        assert!(
            c.on_commit(0, 1, 0, 1, &[&leader, &follower, &empty])
                .is_ok()
        );
    }

    #[test]
    fn stale_leader_and_changed_commit_are_caught() {
        let mut c = GroupChecker::new(0, 3);
        let a = disk(&[(1, "a"), (1, "b")], true);
        let b = disk(&[(1, "a"), (1, "b")], true);
        let stale = disk(&[(1, "a"), (2, "q")], true);
        assert!(c.on_commit(0, 1, 0, 2, &[&a, &b, &stale]).is_ok());
        let body = Bytes::from_static(b"b");
        assert!(c.on_ack(2, &body).is_ok());
        assert_eq!(
            c.on_leader(2, 3, &stale).map_err(|v| v.kind),
            Err("leader-completeness")
        );
        assert_eq!(
            c.on_commit(2, 1, 0, 2, &[&a, &b, &stale])
                .map_err(|v| v.kind),
            Err("committed-changed")
        );
        assert_eq!(
            c.on_ack(2, &Bytes::from_static(b"q")).map_err(|v| v.kind),
            Err("ack-not-committed")
        );
        assert_eq!(
            c.on_truncate(1, 2, 1, 2).map_err(|v| v.kind),
            Err("committed-truncated")
        );
        assert!(c.on_truncate(1, 3, 0, 2).is_ok());
    }
}

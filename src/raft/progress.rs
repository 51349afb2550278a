//! A leader's replication state for one follower: match/next indices, Probe/Replicate,
//! and the bounded window of appends in flight.

use std::collections::VecDeque;

use super::types::Index;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplState {
    /// Where the follower's log matches is unknown: one append at a time, then wait for
    /// its answer (or the next heartbeat answer).
    Probe,
    /// The follower's log matches through `next_index - 1` as far as we know: stream
    /// batches back to back, at most a window's worth unacknowledged.
    Replicate,
}

/// Last indices of appends sent and not yet acknowledged, oldest first. The capacity is
/// reserved once, so pushing never allocates.
#[derive(Debug)]
pub(crate) struct Inflight {
    last_indices: VecDeque<Index>,
    limit: usize,
}

impl Inflight {
    pub(crate) fn new(limit: usize) -> Inflight {
        Inflight {
            last_indices: VecDeque::with_capacity(limit),
            limit,
        }
    }
    pub(crate) fn is_full(&self) -> bool {
        self.last_indices.len() >= self.limit
    }
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.last_indices.len()
    }
    pub(crate) fn push(&mut self, last_index: Index) {
        assert!(!self.is_full(), "in-flight window overflow");
        debug_assert!(self.last_indices.back().is_none_or(|&b| b < last_index));
        self.last_indices.push_back(last_index);
    }
    /// Forget every append whose entries are all acknowledged by `match_index`.
    pub(crate) fn free_through(&mut self, match_index: Index) {
        while self.last_indices.front().is_some_and(|&f| f <= match_index) {
            self.last_indices.pop_front();
        }
    }
    /// Forget the oldest append (its ack is presumed lost).
    pub(crate) fn free_first(&mut self) {
        self.last_indices.pop_front();
    }
    pub(crate) fn clear(&mut self) {
        self.last_indices.clear();
    }
}

#[derive(Debug)]
pub(crate) struct Progress {
    /// Highest index known durable on the follower and matching our log.
    pub(crate) match_index: Index,
    /// Next index to send.
    pub(crate) next_index: Index,
    pub(crate) state: ReplState,
    /// Probe state: an append is out and we wait for an answer before the next one.
    pub(crate) probe_sent: bool,
    pub(crate) inflight: Inflight,
    /// Heard from in the current check-quorum period.
    pub(crate) recent_active: bool,
}

impl Progress {
    pub(crate) fn new(window: usize) -> Progress {
        Progress {
            match_index: 0,
            next_index: 1,
            state: ReplState::Probe,
            probe_sent: false,
            inflight: Inflight::new(window),
            recent_active: false,
        }
    }

    /// Fresh state for a new term of leadership.
    pub(crate) fn reset(&mut self, next_index: Index) {
        self.match_index = 0;
        self.next_index = next_index;
        self.recent_active = false;
        self.become_probe(next_index);
    }

    pub(crate) fn become_probe(&mut self, next_index: Index) {
        debug_assert!(next_index > self.match_index);
        self.state = ReplState::Probe;
        self.next_index = next_index;
        self.probe_sent = false;
        self.inflight.clear();
    }

    pub(crate) fn become_replicate(&mut self) {
        self.state = ReplState::Replicate;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// The follower durably matches through `index`. Returns whether that is news.
    pub(crate) fn advance_match(&mut self, index: Index) -> bool {
        if index <= self.match_index {
            return false;
        }
        self.match_index = index;
        self.next_index = self.next_index.max(index + 1);
        self.inflight.free_through(index);
        true
    }

    /// May another append go out now?
    pub(crate) fn can_send(&self) -> bool {
        match self.state {
            ReplState::Probe => !self.probe_sent,
            ReplState::Replicate => !self.inflight.is_full(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_fills_and_frees_by_ack() {
        let mut w = Inflight::new(3);
        w.push(10);
        w.push(20);
        w.push(30);
        assert!(w.is_full());
        w.free_through(19);
        assert_eq!(w.len(), 2);
        w.free_through(30);
        assert_eq!(w.len(), 0);
        w.push(40);
        w.free_first();
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn match_only_moves_forward() {
        let mut p = Progress::new(2);
        p.reset(5);
        assert!(p.advance_match(4));
        assert!(!p.advance_match(3));
        assert_eq!(p.next_index, 5);
        p.become_replicate();
        assert_eq!(p.next_index, 5);
        assert!(p.advance_match(9));
        assert_eq!(p.next_index, 10);
    }
}

//! The leader: no-op on election, proposals, pipelined replication with fast backup,
//! commit by majority (current-term entries only), heartbeats, check-quorum, and
//! leadership transfer (to a requested or the preferred node).

use super::node::{Node, Outbox, Transfer};
use super::progress::ReplState;
use super::quorum::{majority, quorum_index};
use super::types::*;

#[cfg(feature = "planted-bugs")]
use super::node::PlantedBug;

impl Node {
    pub(super) fn become_leader(&mut self, out: &mut Outbox) {
        debug_assert_eq!(self.role, Role::Candidate);
        debug_assert_eq!(self.hard_state.voted_for, Some(self.cfg.id));
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.heartbeat_elapsed_ticks = 0;
        self.election_elapsed_ticks = 0;
        self.transfer = None;
        self.preferred_cooldown_ticks = 0;
        self.preferred_backoff_ticks = self.preferred_backoff_min_ticks();
        let next = self.log.last_index() + 1;
        for slot in self.peer_slots() {
            self.progress[slot].reset(next);
        }
        // Raft §5.4.2: entries of earlier terms only commit underneath one of ours, so
        // a new leader appends an empty entry of its term at once.
        let term = self.hard_state.term;
        self.log.append(next, next, term);
        out.log_writes.push(LogWrite::Noop { index: next, term });
        for slot in self.peer_slots() {
            self.send_appends(slot, out);
        }
    }

    pub(super) fn tick_leader(&mut self, out: &mut Outbox) {
        self.heartbeat_elapsed_ticks += 1;
        self.election_elapsed_ticks += 1;
        self.preferred_cooldown_ticks = self.preferred_cooldown_ticks.saturating_sub(1);
        if let Some(t) = &mut self.transfer {
            t.elapsed_ticks += 1;
            if t.elapsed_ticks >= self.cfg.election_timeout_min_ticks {
                self.end_transfer(false, out);
            }
        }
        if self.election_elapsed_ticks >= self.cfg.election_timeout_min_ticks {
            self.election_elapsed_ticks = 0;
            let active = self.take_recent_active();
            if self.cfg.check_quorum && active < majority(self.voter_count) {
                // We cannot know that we still lead: let the others elect someone.
                let term = self.hard_state.term;
                self.become_follower(term, None, out);
                return;
            }
        }
        if self.heartbeat_elapsed_ticks >= self.cfg.heartbeat_interval_ticks {
            self.heartbeat_elapsed_ticks = 0;
            let quiesce = self.can_quiesce();
            self.broadcast_heartbeats(quiesce, out);
            if quiesce {
                self.quiescent = true;
                return;
            }
            self.maybe_hand_to_preferred(out);
        }
    }

    /// The group is fully idle: everything committed and durable here, every follower
    /// whose node is up holds all of it and answered in this check period, a majority is
    /// up, and there is no transfer nor a hand-over to a live preferred node to come.
    /// Followers reported down are left out (they wake the leader when they come back).
    fn can_quiesce(&self) -> bool {
        let last = self.log.last_index();
        if self.transfer.is_some()
            || self.log.commit_index() != last
            || self.log.persisted_index() != last
            || self.alive_voters() < majority(self.voter_count)
        {
            return false;
        }
        if let Some(p) = self.cfg.preferred_leader.and_then(|p| self.slot_of(p)) {
            if p != self.self_slot && self.peer_alive[p] {
                return false;
            }
        }
        self.peer_slots().all(|s| {
            let pr = &self.progress[s];
            !self.peer_alive[s]
                || (pr.recent_active && pr.match_index == last && pr.state == ReplState::Replicate)
        })
    }

    /// Voters heard from since the last check (self included); clears the marks.
    fn take_recent_active(&mut self) -> usize {
        let mut active = 1;
        for slot in self.peer_slots() {
            if std::mem::take(&mut self.progress[slot].recent_active) {
                active += 1;
            }
        }
        active
    }

    fn broadcast_heartbeats(&mut self, quiesce: bool, out: &mut Outbox) {
        let commit = self.log.commit_index();
        for slot in self.peer_slots() {
            // Never tell a follower to commit past what it is known to hold.
            let capped = commit.min(self.progress[slot].match_index);
            let body = MsgBody::Heartbeat {
                commit: capped,
                quiesce,
            };
            self.send(out, self.voters[slot], body);
        }
    }

    pub(super) fn propose_entries(
        &mut self,
        count: u32,
        out: &mut Outbox,
    ) -> Result<(Index, Term), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if self.transfer.is_some() {
            return Err(ProposeError::Transferring);
        }
        if count == 0 {
            return Err(ProposeError::Empty);
        }
        // New work: the group is no longer idle (the Appends below wake the followers).
        self.wake();
        let limit = self.cfg.max_uncommitted_entries;
        let uncommitted = self.log.last_index() - self.log.commit_index();
        if uncommitted + u64::from(count) > limit {
            return Err(ProposeError::PendingFull { limit });
        }
        let term = self.hard_state.term;
        let first = self.log.last_index() + 1;
        let last = first + u64::from(count) - 1;
        self.log.append(first, last, term);
        out.log_writes
            .push(LogWrite::Proposed { first, last, term });
        // Pipelining: ship to every follower with room now, do not wait for a tick.
        for slot in self.peer_slots() {
            self.send_appends(slot, out);
        }
        Ok((first, term))
    }

    /// Send what the follower's state and window allow.
    pub(super) fn send_appends(&mut self, slot: usize, out: &mut Outbox) {
        let last = self.log.last_index();
        while self.progress[slot].can_send() {
            let next = self.progress[slot].next_index;
            match self.progress[slot].state {
                ReplState::Probe => {
                    // One append (possibly empty) to find where the logs meet.
                    self.send_batch(slot, next, out);
                    self.progress[slot].probe_sent = true;
                    return;
                }
                ReplState::Replicate => {
                    if next > last {
                        return;
                    }
                    let end = self.send_batch(slot, next, out);
                    let pr = &mut self.progress[slot];
                    pr.next_index = end + 1;
                    pr.inflight.push(end);
                }
            }
        }
    }

    /// One `Append` starting at `next` (empty when `next` is past our log): at most
    /// `max_batch_entries`, never across a term boundary. Returns its last index.
    fn send_batch(&mut self, slot: usize, next: Index, out: &mut Outbox) -> Index {
        let last = self.log.last_index();
        debug_assert!(next >= 1 && next <= last + 1);
        let (end, entries_term) = if next > last {
            (last, self.hard_state.term)
        } else {
            let batch_end = next + u64::from(self.cfg.max_batch_entries) - 1;
            let end = batch_end.min(self.log.run_end_at(next));
            let term = self.log.term_at(next).expect("next is within the log");
            (end, term)
        };
        let prev_index = next - 1;
        let prev_term = self
            .log
            .term_at(prev_index)
            .expect("prev_index is at most the last index");
        let count = u32::try_from(end + 1 - next).expect("bounded by max_batch_entries (u32)");
        let body = MsgBody::Append {
            prev_index,
            prev_term,
            entries_term,
            count,
            commit: self.log.commit_index(),
        };
        self.send(out, self.voters[slot], body);
        end
    }

    /// An empty append at `prev_index` (a known match, or the tail we believe sent):
    /// lets a follower re-verify its log and learn the commit index.
    fn send_empty_append(&mut self, slot: usize, prev_index: Index, out: &mut Outbox) {
        let prev_term = self
            .log
            .term_at(prev_index)
            .expect("probe point is within the log");
        let body = MsgBody::Append {
            prev_index,
            prev_term,
            entries_term: self.hard_state.term,
            count: 0,
            commit: self.log.commit_index().min(prev_index),
        };
        self.send(out, self.voters[slot], body);
    }

    pub(super) fn handle_append_resp(
        &mut self,
        slot: usize,
        match_index: Index,
        rejected_prev: Index,
        reject: Option<RejectHint>,
        out: &mut Outbox,
    ) {
        if self.role != Role::Leader {
            return;
        }
        self.progress[slot].recent_active = true;
        match reject {
            Some(hint) => self.handle_reject(slot, rejected_prev, hint, out),
            None => self.handle_ack(slot, match_index, out),
        }
    }

    /// The follower durably holds our log through `match_index`.
    fn handle_ack(&mut self, slot: usize, match_index: Index, out: &mut Outbox) {
        if match_index > self.log.last_index() {
            // A follower only acknowledges entries we sent in this term, and we never
            // shrink our log: this answer is malformed.
            debug_assert!(false, "ack {match_index} beyond leader log");
            return;
        }
        let pr = &mut self.progress[slot];
        let advanced = pr.advance_match(match_index);
        if pr.state == ReplState::Probe && match_index + 1 >= pr.next_index {
            // The probe point matched: stream from here on.
            pr.become_replicate();
        }
        if advanced {
            self.maybe_commit(out);
            self.maybe_send_timeout_now(out);
        }
        self.send_appends(slot, out);
    }

    /// Fast backup: jump `next_index` back by the follower's hint, never one by one.
    fn handle_reject(
        &mut self,
        slot: usize,
        rejected_prev: Index,
        hint: RejectHint,
        out: &mut Outbox,
    ) {
        let pr = &self.progress[slot];
        let stale = rejected_prev <= pr.match_index
            || rejected_prev >= pr.next_index
            || (pr.state == ReplState::Probe && rejected_prev + 1 != pr.next_index);
        if stale {
            return;
        }
        let by_term = if hint.conflict_term > 0 {
            // If we hold the conflicting term, the logs agree up to our last entry of
            // it; otherwise the follower's whole run of that term is wrong.
            match self.log.last_index_of_term(hint.conflict_term) {
                Some(our_last) => our_last + 1,
                None => hint.conflict_first_index,
            }
        } else {
            hint.last_index + 1
        };
        let next = by_term
            .min(hint.last_index + 1)
            .min(rejected_prev)
            .max(pr.match_index + 1);
        debug_assert!(next > pr.match_index && next <= rejected_prev);
        self.progress[slot].become_probe(next);
        self.send_appends(slot, out);
    }

    pub(super) fn handle_heartbeat_resp(
        &mut self,
        slot: usize,
        match_index: Index,
        out: &mut Outbox,
    ) {
        if self.role != Role::Leader {
            return;
        }
        self.progress[slot].recent_active = true;
        let pr = &self.progress[slot];
        if match_index > pr.match_index {
            // The ack that would have told us this was lost.
            self.handle_ack(slot, match_index, out);
            return;
        }
        if match_index < pr.match_index {
            // It restarted (or the answer is old): let it re-verify what it holds so it
            // can commit again.
            let known = pr.match_index;
            self.send_empty_append(slot, known, out);
            return;
        }
        let last = self.log.last_index();
        if pr.match_index >= last {
            return;
        }
        // It lags: at most once per heartbeat interval, retry.
        let pr = &mut self.progress[slot];
        match pr.state {
            ReplState::Probe => {
                pr.probe_sent = false;
                self.send_appends(slot, out);
            }
            ReplState::Replicate => {
                if pr.inflight.is_full() {
                    pr.inflight.free_first();
                }
                if pr.next_index > last {
                    // Everything was sent: probe the tail; a follower that lost the
                    // last append rejects it and we back up.
                    let tail = pr.next_index - 1;
                    self.send_empty_append(slot, tail, out);
                } else {
                    self.send_appends(slot, out);
                }
            }
        }
    }

    /// Advance the commit index to the highest index durable on a majority (our own
    /// log counts only through `persisted`), if that entry is of our term (§5.4.2).
    pub(super) fn maybe_commit(&mut self, out: &mut Outbox) {
        let mut matches = [0; MAX_PEERS];
        for (slot, m) in matches[..self.voter_count].iter_mut().enumerate() {
            *m = if slot == self.self_slot {
                self.log.persisted_index()
            } else {
                self.progress[slot].match_index
            };
        }
        let candidate = quorum_index(&mut matches[..self.voter_count]);
        if candidate <= self.log.commit_index() {
            return;
        }
        let of_our_term = self.log.term_at(candidate) == Some(self.hard_state.term);
        #[cfg(feature = "planted-bugs")]
        let of_our_term = of_our_term || self.planted(PlantedBug::CommitOldTerm);
        if of_our_term {
            self.commit_to(candidate, out);
        }
    }

    pub(super) fn mark_unreachable(&mut self, peer: NodeId) {
        if self.role != Role::Leader || peer == self.cfg.id {
            return;
        }
        let Some(slot) = self.slot_of(peer) else {
            return;
        };
        let pr = &mut self.progress[slot];
        if pr.state == ReplState::Replicate {
            // What is in flight is likely lost: resume from the known match, one probe
            // at a time (the next heartbeat answer lets it go out).
            let next = pr.match_index + 1;
            pr.become_probe(next);
            pr.probe_sent = true;
        }
    }

    pub(super) fn start_transfer(&mut self, to: NodeId, out: &mut Outbox) {
        if self.role != Role::Leader || to == self.cfg.id {
            return;
        }
        let Some(slot) = self.slot_of(to) else {
            return;
        };
        if let Some(t) = self.transfer {
            if t.to == to {
                return;
            }
            self.end_transfer(false, out);
        }
        self.transfer = Some(Transfer {
            to,
            slot,
            elapsed_ticks: 0,
            timeout_now_sent: false,
        });
        self.maybe_send_timeout_now(out);
        self.send_appends(slot, out);
    }

    /// Once the target holds our whole log durably, tell it to campaign now.
    fn maybe_send_timeout_now(&mut self, out: &mut Outbox) {
        let Some(t) = self.transfer else {
            return;
        };
        if t.timeout_now_sent || self.progress[t.slot].match_index != self.log.last_index() {
            return;
        }
        self.send(out, t.to, MsgBody::TimeoutNow);
        if let Some(t) = &mut self.transfer {
            t.timeout_now_sent = true;
        }
    }

    pub(super) fn end_transfer(&mut self, succeeded: bool, out: &mut Outbox) {
        if let Some(t) = self.transfer.take() {
            if !succeeded && Some(t.to) == self.cfg.preferred_leader {
                // The preferred node could not take over: try less often.
                let max = self.preferred_backoff_min_ticks().saturating_mul(16);
                self.preferred_backoff_ticks =
                    self.preferred_backoff_ticks.saturating_mul(2).min(max);
            }
            out.events.push(Event::TransferEnded {
                to: t.to,
                succeeded,
            });
        }
    }

    /// A leader that is not the preferred node hands over once the preferred one is
    /// reachable and (nearly) caught up; a transfer stops proposals until it has caught
    /// up fully. Tried at most once per cooldown, and the cooldown doubles (up to 16x)
    /// after each abandoned attempt, so a preferred node that cannot take over does not
    /// keep the group from accepting writes.
    fn maybe_hand_to_preferred(&mut self, out: &mut Outbox) {
        let Some(preferred) = self.cfg.preferred_leader else {
            return;
        };
        if preferred == self.cfg.id || self.transfer.is_some() || self.preferred_cooldown_ticks > 0
        {
            return;
        }
        let Some(slot) = self.slot_of(preferred) else {
            return;
        };
        let pr = &self.progress[slot];
        let caught_up =
            pr.match_index + u64::from(self.cfg.max_batch_entries) >= self.log.last_index();
        if caught_up && pr.recent_active {
            self.preferred_cooldown_ticks = self.preferred_backoff_ticks;
            self.start_transfer(preferred, out);
        }
    }

    /// Cooldown between automatic hand-overs while they succeed in starting.
    fn preferred_backoff_min_ticks(&self) -> u32 {
        self.cfg.election_timeout_max_ticks.saturating_mul(4)
    }
}

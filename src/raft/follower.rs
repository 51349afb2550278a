//! The follower: accept appends that fit the leader's log, acknowledge only what is
//! durable *and* verified against this leader, follow the leader's commit index.

use super::log::BatchFit;
use super::node::{Node, Outbox};
use super::types::*;

#[cfg(feature = "planted-bugs")]
use super::node::PlantedBug;

impl Node {
    /// What we may acknowledge now: durable entries verified to match this term's leader.
    pub(super) fn current_ack(&self) -> Index {
        let ack = self.log.persisted_index().min(self.verified_index);
        #[cfg(feature = "planted-bugs")]
        let ack = if self.planted(PlantedBug::AckBeforePersist) {
            self.verified_index
        } else {
            ack
        };
        ack
    }

    /// The sender leads our (already adjusted) term.
    fn accept_leader(&mut self, leader: NodeId, out: &mut Outbox) {
        assert!(
            self.role != Role::Leader,
            "two leaders in term {}: {} and {}",
            self.hard_state.term,
            self.cfg.id,
            leader
        );
        if self.role == Role::Follower {
            self.election_elapsed_ticks = 0;
        } else {
            let term = self.hard_state.term;
            self.become_follower(term, Some(leader), out);
        }
        self.set_leader(leader);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        entries_term: Term,
        count: u32,
        commit: Index,
        out: &mut Outbox,
    ) {
        let count = u64::from(count);
        if count > 0 && (entries_term < prev_term || entries_term > self.hard_state.term) {
            // No leader of this term can send such a batch; ignore it.
            return;
        }
        self.accept_leader(from, out);
        if !self.log.matches(prev_index, prev_term) {
            let body = MsgBody::AppendResp {
                match_index: self.current_ack(),
                rejected_prev: prev_index,
                reject: Some(self.log.reject_hint(prev_index)),
            };
            self.send(out, from, body);
            return;
        }
        let end = prev_index + count;
        if count > 0 {
            match self.log.fit_batch(prev_index, count, entries_term) {
                BatchFit::AllPresent => {}
                BatchFit::AppendFrom(first) => {
                    self.log.append(first, end, entries_term);
                    out.log_writes.push(LogWrite::FromMessage {
                        first,
                        last: end,
                        term: entries_term,
                    });
                }
                BatchFit::ConflictAt(at) => {
                    assert!(
                        at > self.log.commit_index(),
                        "leader {from} conflicts with committed entry {at} (commit {})",
                        self.log.commit_index()
                    );
                    // This leader's log never changes under what it already sent us,
                    // and a leader never truncates its own log.
                    debug_assert!(at > self.verified_index);
                    debug_assert_ne!(self.role, Role::Leader);
                    out.log_writes.push(LogWrite::Truncate { from: at });
                    self.log.truncate(at);
                    self.log.append(at, end, entries_term);
                    out.log_writes.push(LogWrite::FromMessage {
                        first: at,
                        last: end,
                        term: entries_term,
                    });
                }
            }
        }
        // Everything through `end` now matches this leader's log.
        self.verified_index = self.verified_index.max(end);
        self.commit_to(commit.min(end), out);
        // Answer at once only when the answer covers the whole batch; otherwise the
        // ack leaves from `persisted` once the write is durable (one message, not two).
        let ack = self.current_ack();
        if ack >= end {
            self.send_ack(from, ack, out);
        }
    }

    fn send_ack(&mut self, leader: NodeId, ack: Index, out: &mut Outbox) {
        let body = MsgBody::AppendResp {
            match_index: ack,
            rejected_prev: 0,
            reject: None,
        };
        self.send(out, leader, body);
        self.acked_index = self.acked_index.max(ack);
    }

    /// After `persisted`: acknowledge newly durable, verified entries.
    pub(super) fn send_ack_if_new(&mut self, out: &mut Outbox) {
        let Some(leader) = self.leader else {
            return;
        };
        let ack = self.current_ack();
        if ack > self.acked_index {
            self.send_ack(leader, ack, out);
        }
    }

    pub(super) fn handle_heartbeat(
        &mut self,
        from: NodeId,
        from_slot: usize,
        commit: Index,
        quiesce: bool,
        out: &mut Outbox,
    ) {
        self.accept_leader(from, out);
        // The leader capped `commit` at what it knows we hold; we also cap at what we
        // verified in this term (after a restart we re-verify before committing).
        self.commit_to(commit.min(self.verified_index), out);
        let ack = self.current_ack();
        self.send(out, from, MsgBody::HeartbeatResp { match_index: ack });
        // Go quiet only when nothing is left to do: our log matches the leader's through
        // its commit (durably: our ack covers it), and the driver hears the leader's node
        // (so it will tell us when that node dies). Otherwise keep ticking: if the leader
        // stays silent we campaign, which wakes it.
        if quiesce
            && self.peer_alive[from_slot]
            && ack >= commit
            && self.log.commit_index() >= commit
        {
            self.quiescent = true;
            self.election_elapsed_ticks = 0;
        }
    }

    pub(super) fn handle_timeout_now(&mut self, from: NodeId, out: &mut Outbox) {
        self.accept_leader(from, out);
        // The leader asked: campaign now, skipping pre-vote and the voters' lease.
        self.start_campaign(true, out);
    }
}

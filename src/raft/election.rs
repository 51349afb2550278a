//! Elections: pre-vote (thesis §9.6), vote (§5.2, §5.4.1), and counting answers.

use super::node::{Node, Outbox};
use super::quorum::{VoteResult, tally};
use super::types::*;

#[cfg(feature = "planted-bugs")]
use super::node::PlantedBug;

impl Node {
    /// Election timeout: ask for pre-votes at `term + 1` without changing our term, so a
    /// node cut off from the group cannot disrupt it by inflating terms.
    pub(super) fn start_pre_vote(&mut self, out: &mut Outbox) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.reset_election_timeout();
        self.votes = [None; MAX_PEERS];
        self.votes[self.self_slot] = Some(true);
        if self.count_votes() == VoteResult::Won {
            self.start_campaign(false, out);
            return;
        }
        let body = MsgBody::PreVote {
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        let would_be_term = self.hard_state.term + 1;
        for slot in self.peer_slots() {
            self.send_with_term(out, self.voters[slot], would_be_term, body);
        }
    }

    /// A real campaign: bump the term, vote for ourselves, ask for votes. `transfer` is
    /// set when a leader handed over to us (TimeoutNow), so voters skip their lease.
    pub(super) fn start_campaign(&mut self, transfer: bool, out: &mut Outbox) {
        self.hard_state = HardState {
            term: self.hard_state.term + 1,
            voted_for: Some(self.cfg.id),
        };
        self.save_hard_state(out);
        self.role = Role::Candidate;
        self.leader = None;
        self.verified_index = 0;
        self.acked_index = 0;
        self.reset_election_timeout();
        self.votes = [None; MAX_PEERS];
        self.votes[self.self_slot] = Some(true);
        if self.count_votes() == VoteResult::Won {
            self.become_leader(out);
            return;
        }
        let body = MsgBody::Vote {
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            transfer,
        };
        for slot in self.peer_slots() {
            self.send(out, self.voters[slot], body);
        }
    }

    fn count_votes(&self) -> VoteResult {
        tally(&self.votes[..self.voter_count])
    }

    /// Is a candidate whose log ends at (`last_index`, `last_term`) eligible for our
    /// (pre-)vote as far as logs go?
    fn log_ok_for_vote(&self, last_index: Index, last_term: Term) -> bool {
        let ok = self.log.is_up_to_date(last_index, last_term);
        #[cfg(feature = "planted-bugs")]
        let ok = ok || self.planted(PlantedBug::VoteIgnoresLog);
        ok
    }

    /// Pre-vote request for `would_be_term`: granted to an up-to-date log when that term
    /// is above ours (a lease, if any, was honoured before we got here). Changes nothing.
    pub(super) fn handle_pre_vote(
        &mut self,
        from: NodeId,
        would_be_term: Term,
        last_index: Index,
        last_term: Term,
        out: &mut Outbox,
    ) {
        let granted =
            would_be_term > self.hard_state.term && self.log_ok_for_vote(last_index, last_term);
        // A grant answers in the asker's would-be term (so it counts for that campaign
        // only); a refusal in ours (so a stale asker learns it).
        let term = if granted {
            would_be_term
        } else {
            self.hard_state.term
        };
        self.send_with_term(out, from, term, MsgBody::PreVoteResp { granted });
    }

    /// Vote request in our (already adjusted) term.
    pub(super) fn handle_vote(
        &mut self,
        from: NodeId,
        last_index: Index,
        last_term: Term,
        out: &mut Outbox,
    ) {
        let free_to_vote = self.hard_state.voted_for == Some(from)
            || (self.hard_state.voted_for.is_none() && self.leader.is_none());
        let granted = free_to_vote && self.log_ok_for_vote(last_index, last_term);
        if granted {
            debug_assert!(matches!(self.role, Role::Follower | Role::PreCandidate));
            if self.role == Role::PreCandidate {
                // We back this candidate now; our own pre-campaign is over.
                let term = self.hard_state.term;
                self.become_follower(term, None, out);
            }
            if self.hard_state.voted_for.is_none() {
                self.hard_state.voted_for = Some(from);
                self.save_hard_state(out);
            }
            // Granting a vote is hearing from a would-be leader: do not compete with it.
            self.reset_election_timeout();
        }
        self.send(out, from, MsgBody::VoteResp { granted });
    }

    pub(super) fn handle_pre_vote_resp(
        &mut self,
        from_slot: usize,
        msg_term: Term,
        granted: bool,
        out: &mut Outbox,
    ) {
        if self.role != Role::PreCandidate {
            return;
        }
        // A grant counts only for the campaign of `term + 1`; an old grant for a term we
        // already passed must not.
        if granted && msg_term != self.hard_state.term + 1 {
            return;
        }
        self.votes[from_slot] = Some(granted);
        match self.count_votes() {
            VoteResult::Won => self.start_campaign(false, out),
            VoteResult::Lost => {
                let term = self.hard_state.term;
                self.become_follower(term, None, out);
            }
            VoteResult::Pending => {}
        }
    }

    pub(super) fn handle_vote_resp(&mut self, from_slot: usize, granted: bool, out: &mut Outbox) {
        if self.role != Role::Candidate {
            return;
        }
        self.votes[from_slot] = Some(granted);
        match self.count_votes() {
            VoteResult::Won => self.become_leader(out),
            VoteResult::Lost => {
                let term = self.hard_state.term;
                self.become_follower(term, None, out);
            }
            VoteResult::Pending => {}
        }
    }
}

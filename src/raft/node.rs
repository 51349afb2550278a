//! The public face of one group's Raft node: configuration, recovery input, the outbox,
//! and the dispatcher that routes every input to the role-specific handlers
//! (`election.rs`, `leader.rs`, `follower.rs`).

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::log::RaftLog;
use super::progress::Progress;
use super::types::*;

/// Static settings of one node in one group. Times are in ticks (the driver decides
/// how long a tick is; the server uses `tick_ms`).
#[derive(Clone, Debug)]
pub struct Config {
    pub id: NodeId,
    /// All voters of the group, `id` included. At most [`MAX_PEERS`], no duplicates.
    pub voters: Vec<NodeId>,
    /// Election timeout is drawn uniformly from `[min, max)` after every reset.
    pub election_timeout_min_ticks: u32,
    pub election_timeout_max_ticks: u32,
    /// A leader sends heartbeats (and retries stalled followers) this often.
    pub heartbeat_interval_ticks: u32,
    /// Appends in flight to one follower before the leader waits for acks.
    pub max_inflight_appends: u32,
    /// Entries in one `Append` (the driver may split a batch further by bytes: a batch is
    /// single-term, so any prefix/suffix split keeps `prev_term` exact).
    pub max_batch_entries: u32,
    /// Proposed but uncommitted entries a leader accepts before `PendingFull`.
    pub max_uncommitted_entries: u64,
    /// Leader steps down if it has not heard from a majority within an election timeout.
    pub check_quorum: bool,
    /// The node this group prefers as leader; a leader hands over to it once it has caught up.
    pub preferred_leader: Option<NodeId>,
    /// A deliberately broken behaviour, for proving the simulator can fail.
    #[cfg(feature = "planted-bugs")]
    pub planted: Option<PlantedBug>,
}

/// Deliberate bugs, compiled only with the `planted-bugs` feature.
#[cfg(feature = "planted-bugs")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// Grant votes without the "candidate's log is at least as up to date" check.
    VoteIgnoresLog,
    /// A leader commits an entry of a previous term by counting replicas (§5.4.2).
    CommitOldTerm,
    /// A follower acknowledges an append before it is durable.
    AckBeforePersist,
}

/// What a restarted node recovered from its durable storage.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    pub hard_state: HardState,
    /// Last index in the durable log (0 if empty).
    pub last_index: Index,
    /// Term runs covering `1..=last_index`, ascending (empty if the log is empty).
    pub term_runs: Vec<TermRun>,
    /// A commit index known durable (the store's checkpoint); 0 if unknown.
    pub commit_index: Index,
}

/// The caller-owned output of every `Node` call. The caller drains it (e.g. with
/// [`Outbox::clear`], which keeps capacity) after handling it.
///
/// # Contract (what must be durable before what may leave)
/// 1. `hard_state`: if set, must be durable before **any** message of this outbox or a
///    later one is sent. (Votes and acks therefore never leave before the term and vote
///    they were given in are durable.)
/// 2. `log_writes`: applied in order. They may run in parallel with sending messages:
///    the leader's own write overlaps replication. Durable progress is reported back with
///    [`Node::persisted`]; the core counts its own log toward a quorum only then, and a
///    follower acknowledges only durable entries.
/// 3. `messages`: may be sent in any order, delayed, duplicated or lost; the core copes.
/// 4. `events`: informational (clients, metrics, logs).
///
/// # Quiescence and node liveness (what the driver owes the core)
/// An idle group goes quiet: its leader sends one `Heartbeat { quiesce: true }` and stops
/// heartbeating; followers that take it stop their election clocks. While
/// [`Node::is_quiescent`] is true, [`Node::tick`] is a no-op (asserted), so the driver may
/// skip ticking the node (the server ticks only non-quiescent groups). In exchange the
/// driver reports the *node-level* liveness of every peer with [`Node::peer_liveness`]:
/// "down" as soon as it knows the peer's node is dead or unreachable (its connection
/// closed, or nothing heard from it within a bound), "up" when it hears from it again.
/// Every peer starts "down" until reported "up". A quiesced follower whose leader's node
/// goes down wakes and runs its election timeout; a quiesced leader wakes when a peer
/// comes back up or when fewer than a majority remain up. Any proposal, transfer, or
/// message other than the expected answers to the quiesce heartbeat wakes a node too.
/// Safety never depends on these reports (they only decide when to tick); liveness does:
/// a driver that never reports "down" for a dead leader leaves its quiesced followers
/// waiting until another message arrives.
#[derive(Debug, Default)]
pub struct Outbox {
    pub hard_state: Option<HardState>,
    pub log_writes: Vec<LogWrite>,
    pub messages: Vec<Message>,
    pub events: Vec<Event>,
}

impl Outbox {
    pub fn clear(&mut self) {
        self.hard_state = None;
        self.log_writes.clear();
        self.messages.clear();
        self.events.clear();
    }
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.log_writes.is_empty()
            && self.messages.is_empty()
            && self.events.is_empty()
    }
}

/// One node of one Raft group.
#[derive(Debug)]
pub struct Node {
    pub(super) cfg: Config,
    /// Voters (self included) in `cfg.voters` order; slot `i` is `voters[i]`.
    pub(super) voters: [NodeId; MAX_PEERS],
    pub(super) voter_count: usize,
    pub(super) self_slot: usize,
    pub(super) hard_state: HardState,
    /// The hard state was raised at recovery and must go out with the next outbox.
    pub(super) hard_state_unsaved: bool,
    pub(super) role: Role,
    pub(super) leader: Option<NodeId>,
    pub(super) log: RaftLog,
    pub(super) rng: Pcg64Mcg,
    /// Ticks since the last reset: for followers since the leader was last heard (or a
    /// vote granted), for candidates since the campaign began, for leaders since the
    /// last check-quorum.
    pub(super) election_elapsed_ticks: u32,
    /// This round's election timeout, drawn from `[min, max)`.
    pub(super) election_timeout_ticks: u32,
    pub(super) heartbeat_elapsed_ticks: u32,
    /// Campaign answers per voter slot (self included).
    pub(super) votes: [Option<bool>; MAX_PEERS],
    /// Leader: replication state per voter slot (the own slot is unused).
    pub(super) progress: [Progress; MAX_PEERS],
    /// Follower: highest index verified to match the current leader's log in this term.
    pub(super) verified_index: Index,
    /// Follower: highest `match_index` sent to the leader in this term.
    pub(super) acked_index: Index,
    pub(super) transfer: Option<Transfer>,
    /// The group is idle and this node's clocks are stopped (see [`Node::is_quiescent`]).
    pub(super) quiescent: bool,
    /// Node-level liveness of every voter slot as last reported by the driver (own slot:
    /// always true).
    pub(super) peer_alive: [bool; MAX_PEERS],
    /// Leader: ticks before the next automatic hand-over to the preferred leader.
    pub(super) preferred_cooldown_ticks: u32,
    /// Leader: the cooldown after the next attempt; doubles while attempts fail.
    pub(super) preferred_backoff_ticks: u32,
}

/// A leadership transfer in progress.
#[derive(Clone, Copy, Debug)]
pub(super) struct Transfer {
    pub(super) to: NodeId,
    pub(super) slot: usize,
    pub(super) elapsed_ticks: u32,
    pub(super) timeout_now_sent: bool,
}

/// What `RoleChanged` reports, compared before and after each input.
type RoleView = (Role, Term, Option<NodeId>);

/// State taken before an input, to report changes and check invariants after it.
#[derive(Clone, Copy, Debug)]
struct Before {
    view: RoleView,
    commit_index: Index,
    last_index: Index,
}

impl Node {
    /// A node starting from `recovered` state. `rng_seed` seeds the node's own RNG
    /// (election timeouts); the simulator derives it from its run seed.
    pub fn new(config: Config, recovered: Recovered, rng_seed: u64) -> Result<Node, ConfigError> {
        let invalid = ConfigError::Invalid;
        if config.voters.is_empty() || config.voters.len() > MAX_PEERS {
            return Err(invalid("voters must list 1 to MAX_PEERS (7) nodes"));
        }
        let mut voters = [0; MAX_PEERS];
        for (i, &v) in config.voters.iter().enumerate() {
            if config.voters[..i].contains(&v) {
                return Err(invalid("voters must not repeat a node id"));
            }
            voters[i] = v;
        }
        let self_slot = config
            .voters
            .iter()
            .position(|&v| v == config.id)
            .ok_or(invalid("id must be one of the voters"))?;
        if config.election_timeout_min_ticks == 0
            || config.election_timeout_max_ticks <= config.election_timeout_min_ticks
        {
            return Err(invalid(
                "election timeout needs 0 < election_timeout_min_ticks < election_timeout_max_ticks",
            ));
        }
        if config.heartbeat_interval_ticks == 0
            || config.heartbeat_interval_ticks >= config.election_timeout_min_ticks
        {
            return Err(invalid(
                "heartbeat_interval_ticks must be at least 1 and below election_timeout_min_ticks",
            ));
        }
        if config.max_inflight_appends == 0
            || config.max_batch_entries == 0
            || config.max_uncommitted_entries == 0
        {
            return Err(invalid(
                "max_inflight_appends, max_batch_entries and max_uncommitted_entries must be at least 1",
            ));
        }
        if let Some(p) = config.preferred_leader
            && !config.voters.contains(&p)
        {
            return Err(invalid("preferred_leader must be one of the voters"));
        }
        if let Some(v) = recovered.hard_state.voted_for
            && !config.voters.contains(&v)
        {
            return Err(invalid("recovered vote names a node that is not a voter"));
        }
        // A log entry of a term above the durable hard state: the entry became durable
        // but the hard state written in the same outbox did not (the driver crashed in
        // between). No message of that term can have left (the hard state must be durable
        // first), so in particular no vote: adopting the term with no vote is safe.
        let mut hard_state = recovered.hard_state;
        let mut hard_state_unsaved = false;
        if let Some(last_run) = recovered.term_runs.last()
            && last_run.term > hard_state.term
        {
            hard_state = HardState {
                term: last_run.term,
                voted_for: None,
            };
            hard_state_unsaved = true;
        }
        let log = RaftLog::recovered(
            &recovered.term_runs,
            recovered.last_index,
            recovered.commit_index,
        )
        .map_err(invalid)?;
        let window = config.max_inflight_appends as usize;
        let mut node = Node {
            voters,
            voter_count: config.voters.len(),
            self_slot,
            hard_state,
            hard_state_unsaved,
            role: Role::Follower,
            leader: None,
            log,
            rng: Pcg64Mcg::seed_from_u64(rng_seed),
            election_elapsed_ticks: 0,
            election_timeout_ticks: 0,
            heartbeat_elapsed_ticks: 0,
            votes: [None; MAX_PEERS],
            progress: std::array::from_fn(|_| Progress::new(window)),
            verified_index: 0,
            acked_index: 0,
            transfer: None,
            quiescent: false,
            peer_alive: std::array::from_fn(|slot| slot == self_slot),
            preferred_cooldown_ticks: 0,
            preferred_backoff_ticks: 0,
            cfg: config,
        };
        node.reset_election_timeout();
        Ok(node)
    }

    /// Advance logical time by one tick. A no-op while the node is quiescent (the driver
    /// may skip it then; see the quiescence contract above [`Outbox`]).
    pub fn tick(&mut self, out: &mut Outbox) {
        if self.quiescent {
            debug_assert!(!self.hard_state_unsaved, "a quiescent node saved its state");
            return;
        }
        self.save_recovered_hard_state(out);
        let before = self.before();
        match self.role {
            Role::Leader => self.tick_leader(out),
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                self.election_elapsed_ticks = self.election_elapsed_ticks.saturating_add(1);
                if self.election_elapsed_ticks >= self.election_timeout_ticks {
                    self.start_pre_vote(out);
                }
            }
        }
        self.finish(before, out);
    }

    /// Handle one message from a peer. Messages for another node or of unknown senders
    /// are ignored.
    pub fn step(&mut self, msg: Message, out: &mut Outbox) {
        self.save_recovered_hard_state(out);
        if msg.to != self.cfg.id || msg.from == self.cfg.id {
            return;
        }
        let Some(from_slot) = self.slot_of(msg.from) else {
            return;
        };
        let before = self.before();
        if self.quiescent && !self.expected_while_quiescent(&msg, from_slot) {
            self.wake();
        }
        if self.adjust_term(&msg, out) {
            self.dispatch(msg, from_slot, out);
        }
        self.finish(before, out);
    }

    /// Leader only: append `count` entries whose bodies the caller holds. Returns the
    /// index of the first and the term; the entries are `first..first+count`.
    pub fn propose(&mut self, count: u32, out: &mut Outbox) -> Result<(Index, Term), ProposeError> {
        self.save_recovered_hard_state(out);
        self.propose_entries(count, out)
    }

    /// The caller's log is durable through `index`, and the entry at `index` has `term`
    /// (stale reports after a truncation are recognised by the term and ignored).
    pub fn persisted(&mut self, index: Index, term: Term, out: &mut Outbox) {
        self.save_recovered_hard_state(out);
        if !self.log.persist(index, term) {
            return;
        }
        let before = self.before();
        match self.role {
            Role::Leader => self.maybe_commit(out),
            Role::Follower => self.send_ack_if_new(out),
            Role::PreCandidate | Role::Candidate => {}
        }
        self.finish(before, out);
    }

    /// Leader only: hand leadership to `to` (catch it up, then TimeoutNow). Ignored on a
    /// non-leader, for `to == id` or a non-voter.
    pub fn transfer_leadership(&mut self, to: NodeId, out: &mut Outbox) {
        self.save_recovered_hard_state(out);
        let before = self.before();
        if self.role == Role::Leader {
            self.wake();
        }
        self.start_transfer(to, out);
        self.finish(before, out);
    }

    /// The driver could not deliver to `peer` (connection down, queue full). A leader
    /// stops streaming to it and probes once per heartbeat until it answers again.
    pub fn unreachable(&mut self, peer: NodeId) {
        self.mark_unreachable(peer);
    }

    /// The driver's report of `peer`'s node-level liveness (connection up and heard from
    /// recently, or not). Wakes a quiesced follower whose leader went down, and a quiesced
    /// leader when a peer comes back (it may need catching up) or when fewer than a
    /// majority remain up (check-quorum then steps it down). Reports about unknown nodes
    /// or self are ignored. See the contract above [`Outbox`].
    pub fn peer_liveness(&mut self, peer: NodeId, alive: bool, out: &mut Outbox) {
        self.save_recovered_hard_state(out);
        let Some(slot) = self.slot_of(peer).filter(|&s| s != self.self_slot) else {
            return;
        };
        let was = std::mem::replace(&mut self.peer_alive[slot], alive);
        if !self.quiescent || was == alive {
            return;
        }
        let wake = match self.role {
            Role::Leader => {
                alive || self.alive_voters() < super::quorum::majority(self.voter_count)
            }
            _ => !alive && self.leader == Some(peer),
        };
        if wake {
            self.wake();
        }
    }

    /// True while the group is idle and this node needs no ticks: a leader that sent its
    /// quiesce heartbeat, or a follower that took one from its leader (and hears that
    /// the leader's node is alive). Ticking a quiescent node does nothing.
    pub fn is_quiescent(&self) -> bool {
        self.quiescent
    }

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn term(&self) -> Term {
        self.hard_state.term
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn commit_index(&self) -> Index {
        self.log.commit_index()
    }
    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }
    pub fn persisted_index(&self) -> Index {
        self.log.persisted_index()
    }
    /// Term of the entry at `index` (Some(0) for index 0; None beyond the log).
    pub fn term_at(&self, index: Index) -> Option<Term> {
        self.log.term_at(index)
    }
    /// The log's term runs (one per term change), ascending; they cover `1..=last_index`.
    pub fn term_runs(&self) -> &[TermRun] {
        self.log.runs()
    }
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }
    /// Leader only: the highest index known durable on `peer` (metrics, transfer).
    /// For the leader itself this is its own persisted index.
    pub fn match_index(&self, peer: NodeId) -> Option<Index> {
        if self.role != Role::Leader {
            return None;
        }
        let slot = self.slot_of(peer)?;
        Some(if slot == self.self_slot {
            self.log.persisted_index()
        } else {
            self.progress[slot].match_index
        })
    }
    /// Leader only: the node a leadership transfer is under way to.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|t| t.to)
    }

    // ---- shared helpers used by the role modules ----

    pub(super) fn slot_of(&self, id: NodeId) -> Option<usize> {
        self.voters[..self.voter_count]
            .iter()
            .position(|&v| v == id)
    }

    /// Voter slots other than our own.
    pub(super) fn peer_slots(&self) -> impl Iterator<Item = usize> + use<> {
        let me = self.self_slot;
        (0..self.voter_count).filter(move |&s| s != me)
    }

    pub(super) fn send(&self, out: &mut Outbox, to: NodeId, body: MsgBody) {
        out.messages.push(Message {
            from: self.cfg.id,
            to,
            term: self.hard_state.term,
            body,
        });
    }

    pub(super) fn send_with_term(&self, out: &mut Outbox, to: NodeId, term: Term, body: MsgBody) {
        out.messages.push(Message {
            from: self.cfg.id,
            to,
            term,
            body,
        });
    }

    /// A hard state raised at recovery goes out with the first outbox (before any of its
    /// messages, by the outbox contract); a later change in the same call supersedes it.
    fn save_recovered_hard_state(&mut self, out: &mut Outbox) {
        if std::mem::take(&mut self.hard_state_unsaved) {
            self.save_hard_state(out);
        }
    }

    /// Record a changed term or vote for the driver to persist before any message leaves.
    pub(super) fn save_hard_state(&self, out: &mut Outbox) {
        out.hard_state = Some(self.hard_state);
    }

    pub(super) fn reset_election_timeout(&mut self) {
        self.election_elapsed_ticks = 0;
        self.election_timeout_ticks = self
            .rng
            .random_range(self.cfg.election_timeout_min_ticks..self.cfg.election_timeout_max_ticks);
    }

    /// Move to a (possibly new) term as follower of `leader` (if known).
    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>, out: &mut Outbox) {
        debug_assert!(term >= self.hard_state.term);
        if term > self.hard_state.term {
            self.hard_state = HardState {
                term,
                voted_for: None,
            };
            self.save_hard_state(out);
            self.verified_index = 0;
            self.acked_index = 0;
        }
        if self.role == Role::Leader {
            self.end_transfer(false, out);
        }
        // Only a message that woke the node can move it to another term or role.
        debug_assert!(!self.quiescent, "a quiescent node changed role");
        self.quiescent = false;
        self.role = Role::Follower;
        self.leader = leader;
        self.reset_election_timeout();
    }

    /// Learn that `leader` leads the current term (Election Safety: never two).
    pub(super) fn set_leader(&mut self, leader: NodeId) {
        assert!(
            self.role != Role::Leader,
            "two leaders in term {}: {} and {}",
            self.hard_state.term,
            self.cfg.id,
            leader
        );
        debug_assert!(
            self.leader.is_none_or(|l| l == leader),
            "node {} saw leaders {:?} and {} in term {}",
            self.cfg.id,
            self.leader,
            leader,
            self.hard_state.term
        );
        self.leader = Some(leader);
    }

    pub(super) fn commit_to(&mut self, index: Index, out: &mut Outbox) {
        let before = self.log.commit_index();
        if self.log.commit_to(index) {
            debug_assert!(self.log.commit_index() > before);
            out.events.push(Event::Committed { index });
        }
    }

    /// Voters reported alive, self included.
    pub(super) fn alive_voters(&self) -> usize {
        self.peer_alive[..self.voter_count]
            .iter()
            .filter(|&&a| a)
            .count()
    }

    /// Leave quiescence: clocks run again. A leader heartbeats at its next tick (so
    /// quiesced followers wake too) and starts a fresh check-quorum period in which its
    /// followers must answer again; a follower's election clock starts from zero (it
    /// was stopped right after its leader's last heartbeat).
    pub(super) fn wake(&mut self) {
        if !std::mem::take(&mut self.quiescent) {
            return;
        }
        self.election_elapsed_ticks = 0;
        if self.role == Role::Leader {
            self.heartbeat_elapsed_ticks = self.cfg.heartbeat_interval_ticks.saturating_sub(1);
            for slot in self.peer_slots() {
                self.progress[slot].recent_active = false;
            }
        }
    }

    /// While quiescent, the only messages that leave a node quiet: a follower's answer to
    /// the quiesce heartbeat (leader), a repeat of the quiesce heartbeat (follower).
    fn expected_while_quiescent(&self, msg: &Message, from_slot: usize) -> bool {
        if msg.term != self.hard_state.term {
            return false;
        }
        match (self.role, msg.body) {
            (Role::Leader, MsgBody::HeartbeatResp { match_index }) => {
                match_index == self.log.last_index()
                    && self.progress[from_slot].match_index == match_index
            }
            (Role::Follower, MsgBody::Heartbeat { quiesce: true, .. }) => {
                self.leader == Some(msg.from)
            }
            _ => false,
        }
    }

    /// A follower that heard from its leader recently (or a leader that checks its
    /// quorum) ignores campaigns that were not asked for by a leader.
    pub(super) fn in_lease(&self) -> bool {
        match self.role {
            Role::Leader => self.cfg.check_quorum,
            Role::Follower => {
                self.leader.is_some()
                    && self.election_elapsed_ticks < self.cfg.election_timeout_min_ticks
            }
            Role::PreCandidate | Role::Candidate => false,
        }
    }

    /// Term handling common to every message (Raft §5.1). Returns whether the message
    /// should be handled further.
    fn adjust_term(&mut self, msg: &Message, out: &mut Outbox) -> bool {
        use MsgBody::*;
        let term = self.hard_state.term;
        if msg.term > term {
            match msg.body {
                Vote {
                    transfer: false, ..
                }
                | PreVote { .. }
                    if self.in_lease() =>
                {
                    return false;
                }
                // A pre-vote and a granted pre-vote answer carry the term a campaign
                // *would* use: they change nothing here.
                PreVote { .. } | PreVoteResp { granted: true } => {}
                Append { .. } | Heartbeat { .. } | TimeoutNow => {
                    self.step_down_to(msg, out);
                    self.become_follower(msg.term, Some(msg.from), out);
                }
                Vote { .. }
                | VoteResp { .. }
                | PreVoteResp { granted: false }
                | AppendResp { .. }
                | HeartbeatResp { .. } => {
                    self.step_down_to(msg, out);
                    self.become_follower(msg.term, None, out);
                }
            }
            true
        } else if msg.term < term {
            match msg.body {
                // A leader of an old term: tell it about ours so it steps down (otherwise
                // a node whose term moved on while the lease keeps its votes unheard
                // would never rejoin).
                Append { .. } | Heartbeat { .. } => {
                    let ack = self.current_ack();
                    self.send(out, msg.from, HeartbeatResp { match_index: ack });
                }
                // Let a stale pre-candidate learn our term.
                PreVote { .. } => self.send(out, msg.from, PreVoteResp { granted: false }),
                _ => {}
            }
            false
        } else {
            true
        }
    }

    /// A leader leaving for a higher term ends its transfer; it succeeded when the
    /// target is the one that moved the term on.
    fn step_down_to(&mut self, msg: &Message, out: &mut Outbox) {
        if self.role == Role::Leader {
            let succeeded = self.transfer.is_some_and(|t| t.to == msg.from);
            self.end_transfer(succeeded, out);
        }
    }

    fn dispatch(&mut self, msg: Message, from_slot: usize, out: &mut Outbox) {
        use MsgBody::*;
        match msg.body {
            PreVote {
                last_index,
                last_term,
            } => self.handle_pre_vote(msg.from, msg.term, last_index, last_term, out),
            Vote {
                last_index,
                last_term,
                ..
            } => self.handle_vote(msg.from, last_index, last_term, out),
            PreVoteResp { granted } => self.handle_pre_vote_resp(from_slot, msg.term, granted, out),
            VoteResp { granted } => self.handle_vote_resp(from_slot, granted, out),
            Append {
                prev_index,
                prev_term,
                entries_term,
                count,
                commit,
            } => self.handle_append(
                msg.from,
                prev_index,
                prev_term,
                entries_term,
                count,
                commit,
                out,
            ),
            AppendResp {
                match_index,
                rejected_prev,
                reject,
            } => self.handle_append_resp(from_slot, match_index, rejected_prev, reject, out),
            Heartbeat { commit, quiesce } => {
                self.handle_heartbeat(msg.from, from_slot, commit, quiesce, out)
            }
            HeartbeatResp { match_index } => {
                self.handle_heartbeat_resp(from_slot, match_index, out)
            }
            TimeoutNow => self.handle_timeout_now(msg.from, out),
        }
    }

    fn role_view(&self) -> RoleView {
        (self.role, self.hard_state.term, self.leader)
    }

    fn before(&self) -> Before {
        Before {
            view: self.role_view(),
            commit_index: self.log.commit_index(),
            last_index: self.log.last_index(),
        }
    }

    /// Report a role/term/leader change once per input, and check the invariants.
    fn finish(&mut self, before: Before, out: &mut Outbox) {
        let now = self.role_view();
        if now != before.view {
            out.events.push(Event::RoleChanged {
                role: now.0,
                term: now.1,
                leader: now.2,
            });
        }
        debug_assert!(now.1 >= before.view.1, "term went backwards");
        assert!(
            self.log.commit_index() >= before.commit_index,
            "commit index went back from {} to {}",
            before.commit_index,
            self.log.commit_index()
        );
        debug_assert!(
            before.view.0 != Role::Leader
                || before.view.1 != now.1
                || self.log.last_index() >= before.last_index,
            "a leader shrank its own log"
        );
        debug_assert!(self.log.persisted_index() <= self.log.last_index());
        debug_assert!(self.log.last_term() <= self.hard_state.term);
        debug_assert!(self.role != Role::Leader || self.leader == Some(self.cfg.id));
        debug_assert!(
            !self.quiescent
                || (matches!(self.role, Role::Leader | Role::Follower) && self.leader.is_some()),
            "only a leader or a follower with a leader is quiescent"
        );
        debug_assert!(
            !self.quiescent
                || self.role != Role::Leader
                || (self.transfer.is_none() && self.log.commit_index() == self.log.last_index()),
            "a quiescent leader has everything committed and no transfer"
        );
        debug_assert!(
            self.role != Role::Leader
                || self
                    .peer_slots()
                    .all(|s| self.progress[s].match_index <= self.log.last_index()
                        && self.progress[s].next_index <= self.log.last_index() + 1)
        );
    }

    #[cfg(feature = "planted-bugs")]
    pub(super) fn planted(&self, bug: PlantedBug) -> bool {
        self.cfg.planted == Some(bug)
    }
}

/// A `Config` or `Recovered` that cannot describe a working node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid raft config: {0}")]
    Invalid(&'static str),
}

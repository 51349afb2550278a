//! SKELETON (API contract) — the raft helper replaces the bodies; the signatures and the
//! outbox contract are what the simulator and the shards are written against.

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
    _private: (),
}

#[allow(unused_variables, clippy::missing_panics_doc)]
impl Node {
    /// A node starting from `recovered` state. `rng_seed` seeds the node's own RNG
    /// (election timeouts); the simulator derives it from its run seed.
    pub fn new(config: Config, recovered: Recovered, rng_seed: u64) -> Result<Node, ConfigError> {
        unimplemented!()
    }
    /// Advance logical time by one tick.
    pub fn tick(&mut self, out: &mut Outbox) {
        unimplemented!()
    }
    /// Handle one message from a peer. Messages for another node or of unknown senders
    /// are ignored.
    pub fn step(&mut self, msg: Message, out: &mut Outbox) {
        unimplemented!()
    }
    /// Leader only: append `count` entries whose bodies the caller holds. Returns the
    /// index of the first and the term; the entries are `first..first+count`.
    pub fn propose(&mut self, count: u32, out: &mut Outbox) -> Result<(Index, Term), ProposeError> {
        unimplemented!()
    }
    /// The caller's log is durable through `index`, and the entry at `index` has `term`
    /// (stale reports after a truncation are recognised by the term and ignored).
    pub fn persisted(&mut self, index: Index, term: Term, out: &mut Outbox) {
        unimplemented!()
    }
    /// Leader only: hand leadership to `to` (catch it up, then TimeoutNow).
    pub fn transfer_leadership(&mut self, to: NodeId, out: &mut Outbox) {
        unimplemented!()
    }

    pub fn id(&self) -> NodeId {
        unimplemented!()
    }
    pub fn role(&self) -> Role {
        unimplemented!()
    }
    pub fn term(&self) -> Term {
        unimplemented!()
    }
    pub fn leader(&self) -> Option<NodeId> {
        unimplemented!()
    }
    pub fn commit_index(&self) -> Index {
        unimplemented!()
    }
    pub fn last_index(&self) -> Index {
        unimplemented!()
    }
    pub fn persisted_index(&self) -> Index {
        unimplemented!()
    }
    /// Term of the entry at `index` (Some(0) for index 0; None beyond the log).
    pub fn term_at(&self, index: Index) -> Option<Term> {
        unimplemented!()
    }
    pub fn hard_state(&self) -> HardState {
        unimplemented!()
    }
    /// Leader only: the highest index known durable on `peer` (metrics, transfer).
    pub fn match_index(&self, peer: NodeId) -> Option<Index> {
        unimplemented!()
    }
}

/// A `Config` or `Recovered` that cannot describe a working node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid raft config: {0}")]
    Invalid(&'static str),
}

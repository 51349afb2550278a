//! Plain data shared by the Raft core and its drivers (the shards and the simulator).
//!
//! Every type here is `Copy` or owns no heap memory, so that a message or an outbox
//! entry never allocates on the steady path. Entry *bodies* never enter the core: the
//! core reasons about `(index, term)` only, and the driver moves the bytes (see
//! [`LogWrite`] and [`MsgBody::Append`]).

/// A node's id inside one group (DLedger's `n0` is 0, `n1` is 1, ...).
pub type NodeId = u32;
/// A Raft term. 0 means "no term yet".
pub type Term = u64;
/// A log index. Real entries start at 1; index 0 is the empty prefix (term 0).
pub type Index = u64;

/// The most peers (voters, self included) a group may have. Bounded so per-peer state
/// is a fixed array and quorum math never allocates.
pub const MAX_PEERS: usize = 7;

/// What a node is in its group right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// The part of a node's state that must be durable before it may act on it:
/// a vote or an acknowledgement never leaves before the term and vote it was given in
/// are on stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
}

/// A contiguous run of log entries that all carry one term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TermRun {
    /// First index that has `term`.
    pub first_index: Index,
    pub term: Term,
}

/// A write the driver must apply to its log, in outbox order.
///
/// Writes are applied strictly in order; a `Truncate` removes entries from the log the
/// driver will read from *and* from the durable log before any later write lands (a later
/// `persisted` call must never cover a truncated entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogWrite {
    /// Remove every entry with `index >= from`. Never covers a committed entry
    /// (asserted by the core).
    Truncate { from: Index },
    /// Append the entries `first..=last` (all of `term`) that the driver handed to the
    /// core with `propose` (their bodies are the driver's, in proposal order).
    Proposed {
        first: Index,
        last: Index,
        term: Term,
    },
    /// Append one empty entry (a new leader's no-op, Raft §5.4.2 / §8) at `index`.
    Noop { index: Index, term: Term },
    /// Append the entries `first..=last` (all of `term`) carried by the `Append`
    /// message given to the *latest* `step` call. The driver must take their bodies
    /// from that message before it drops it (e.g. by looking at new `log_writes` after
    /// every `step`). `first` may be above the message's first entry when a prefix of
    /// it was already in the log.
    FromMessage {
        first: Index,
        last: Index,
        term: Term,
    },
}

/// Why a follower refused an `Append`, with the hint for fast backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RejectHint {
    /// The follower's last index (so the leader can skip straight past a short log).
    pub last_index: Index,
    /// The term of the follower's entry at the rejected `prev_index` (0 if it has none).
    pub conflict_term: Term,
    /// The first index the follower holds with `conflict_term` (0 if none).
    pub conflict_first_index: Index,
}

/// A Raft message body. The group is not part of it: drivers route per group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsgBody {
    /// Pre-vote request (Raft thesis §9.6). `Message::term` is the term the sender
    /// *would* campaign in; the receiver's term is not changed by it.
    PreVote {
        last_index: Index,
        last_term: Term,
    },
    PreVoteResp {
        granted: bool,
    },
    /// Vote request. `transfer` is set when the leader asked for it (TimeoutNow), so
    /// receivers grant it even while they still hear a leader (leader lease).
    Vote {
        last_index: Index,
        last_term: Term,
        transfer: bool,
    },
    VoteResp {
        granted: bool,
    },
    /// Append entries `prev_index+1 ..= prev_index+count`, all of `entries_term`
    /// (a batch never crosses a term boundary, so one term describes it). The driver
    /// attaches the bodies when it sends the message and carries them to the receiver.
    /// `count == 0` is a probe / commit update.
    Append {
        prev_index: Index,
        prev_term: Term,
        entries_term: Term,
        count: u32,
        commit: Index,
    },
    /// `reject == None`: the follower durably holds entries matching the leader's log
    /// through `match_index`. `Some(hint)`: it does not match at `rejected_prev`.
    AppendResp {
        match_index: Index,
        rejected_prev: Index,
        reject: Option<RejectHint>,
    },
    /// Leader liveness and commit propagation. `commit` is capped by the leader at the
    /// follower's known match index, so a follower never commits what it may not have.
    /// `quiesce`: the leader's last heartbeat before the group goes quiet (see
    /// [`crate::raft::Node::is_quiescent`]): a follower whose log matches through `commit`
    /// stops its election clock while the driver reports the leader's node alive.
    Heartbeat {
        commit: Index,
        quiesce: bool,
    },
    /// `match_index`: what the follower would acknowledge right now (durable and verified
    /// against this leader's log in this term). Lets the leader find a follower whose ack
    /// was lost, whose last append was lost, or that restarted and must re-verify.
    HeartbeatResp {
        match_index: Index,
    },
    /// Leadership transfer: the receiver starts an election at once (skipping pre-vote).
    TimeoutNow,
}

/// One Raft message between two nodes of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: MsgBody,
}

/// Something the driver should know about (for clients, metrics and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// The role, term or known leader changed.
    RoleChanged {
        role: Role,
        term: Term,
        leader: Option<NodeId>,
    },
    /// The commit index advanced to `index` (never goes back).
    Committed { index: Index },
    /// A leadership transfer this node led finished or was abandoned.
    TransferEnded { to: NodeId, succeeded: bool },
}

/// Why a proposal was refused. Nothing was appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("leadership transfer in progress")]
    Transferring,
    #[error("too many uncommitted entries (limit {limit})")]
    PendingFull { limit: u64 },
    #[error("empty proposal")]
    Empty,
}

//! One Raft group on its shard: the sans-IO node, its log, and the driver that applies
//! every outbox in order (the contract above `dledger::raft::Outbox`).
//!
//! Inputs (`tick`, `step`, `propose`, `persisted`) run synchronously on the shard and
//! leave their effects in one shared outbox; a single driver task takes that outbox and
//! applies it: hard state first (awaited), then log writes in order, then messages, then
//! events. Because only the driver applies outboxes, one at a time, no message of a
//! later outbox can leave before an earlier hard state is durable, and log writes land in
//! the order the core produced them.

use std::{
    cell::{Cell, RefCell},
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    rc::Rc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use dledger::{
    config::{GroupConfig, NodeConfig},
    raft::{
        Event, Index, LogWrite, Message, MsgBody, Node, NodeId, Outbox, ProposeError, Role, Term,
    },
    store::record::decode_header,
    wire::{AppendedEntry, ErrorResponse, GroupMessage, LeaderHint, ResponseCode},
};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

use super::{peer::PeerItem, reply::Reply};
use crate::{
    disk::{DiskError, Entry, GroupLog},
    net::PeerNet,
    runtime::ShardStop,
};

/// Raft messages queued for a group before the driver steps them; beyond, new ones are
/// dropped (Raft copes with loss; the bound keeps a flood from growing memory).
pub const INBOX_MESSAGES_MAX: usize = 8192;
/// How far the commit index moves between two recovery checkpoints: keeps recovery
/// short without a checkpoint write per commit (a final one is written at stop).
pub const CHECKPOINT_STRIDE_ENTRIES: Index = 1024;
/// How often an idle group samples its disk's usage (for retention and the log line
/// when the DISK_FULL state changes).
pub const DISK_CHECK_INTERVAL_MS: u64 = 1000;
/// Oldest disk-usage sample a batch of appends may be admitted on: before proposing,
/// the driver samples again (one `statvfs`) when its sample is older. So no append is
/// accepted later than this after the disk went above the hard ratio.
pub const DISK_SAMPLE_MAX_AGE_MS: u64 = 10;
/// How often retention (`fileReservedHours`, disk ratios) runs.
pub const PURGE_INTERVAL_MS: u64 = 60_000;

/// What a client append gets back.
pub type AppendOutcome = Result<Vec<AppendedEntry>, ErrorResponse>;

/// A client append waiting for its commit.
struct PendingAppend {
    first: Index,
    last: Index,
    term: Term,
    deadline: Instant,
    /// When the driver proposed it (the append-latency metric's start).
    proposed_at: Instant,
    reply: Reply,
}

/// A client append the driver has not proposed yet.
struct Incoming {
    bodies: Vec<Bytes>,
    reply: Reply,
}

/// Where the other nodes serve clients (learned from their ClientAddr items).
pub type ClientAddrs = Rc<RefCell<HashMap<NodeId, SocketAddr>>>;

/// One group on this shard.
pub struct Group {
    pub cfg: GroupConfig,
    node_cfg: Rc<NodeConfig>,
    pub log: GroupLog,
    node: RefCell<Node>,
    /// Effects of inputs not yet applied by the driver.
    outbox: RefCell<Outbox>,
    /// Records of `FromMessage` writes still in `outbox`, in order.
    from_message_records: RefCell<VecDeque<Bytes>>,
    /// Bodies of `Proposed` writes still in `outbox`, in index order.
    proposed_bodies: RefCell<VecDeque<Bytes>>,
    /// Appends taken from clients since the driver last ran: proposed together, as one
    /// batch of entries (one log write, one Append per follower).
    incoming: RefCell<VecDeque<Incoming>>,
    pending: RefCell<VecDeque<PendingAppend>>,
    /// `(index, position)` of the leader's own entries written for pending appends, in
    /// index order (read when they are answered).
    positions: RefCell<VecDeque<(Index, u64)>>,
    /// The newest `(index, term)` whose durability the core has not been told of yet;
    /// one watcher task waits for it ([`Group::run_persist_watcher`]).
    persist_target: Cell<Option<(Index, Term)>>,
    persist_tx: LocalSender<()>,
    persist_rx: RefCell<Option<LocalReceiver<()>>>,
    inbox: RefCell<VecDeque<GroupMessage>>,
    wake_tx: LocalSender<()>,
    wake_rx: RefCell<Option<LocalReceiver<()>>>,
    net: Rc<PeerNet<PeerItem>>,
    client_addrs: ClientAddrs,
    /// Set on a fatal log error: the group stops acknowledging and says why.
    failure: RefCell<Option<DiskError>>,
    /// Set while the disk is above `diskSpaceRatioToForceClean`'s write limit: new
    /// appends are refused with DISK_FULL before they reach the Raft core (reads go on).
    disk_full: RefCell<Option<String>>,
    disk_sampled_at: Cell<Option<Instant>>,
    last_checkpoint: Cell<Index>,
    /// The newest commit index a checkpoint is wanted for; the checkpoint task
    /// ([`Group::run_checkpointer`]) writes it, off the driver (a checkpoint takes
    /// several device flushes: on the driver it stalled every append and ack behind it).
    checkpoint_wanted: Cell<Index>,
    checkpoint_tx: LocalSender<()>,
    checkpoint_rx: RefCell<Option<LocalReceiver<()>>>,
    /// Entries appended per second over the last maintenance interval.
    append_tps: Cell<u32>,
    /// When `append_tps` was last computed, and the ledger end then.
    rate_sampled: Cell<(Instant, Index)>,
    /// Written on this shard only; read by the metrics endpoint.
    pub metrics: std::sync::Arc<super::metrics::GroupMetrics>,
    /// The shard's set of groups whose clocks run, and this group's place in it.
    ticking: Rc<Ticking>,
    tick_slot: usize,
    in_ticking: Cell<bool>,
    /// Set by the driver once the log can take an append (`GroupLog::wait_writable`):
    /// until then the group's clock does not run, whatever wakes it.
    clock_started: Cell<bool>,
    /// The file system holding the group's directory (`st_dev`), so the shard samples
    /// each file system once, not each group; `None`: sample this group on its own.
    disk_dev: Option<u64>,
}

/// The groups of one shard whose Raft clocks run (not quiescent, or with appends
/// waiting to expire), by slot; the shard's ticker walks only these. A group adds itself
/// when it wakes ([`Group::note_clock`]); the ticker drops it once it is quiet again.
#[derive(Default)]
pub struct Ticking {
    slots: RefCell<Vec<usize>>,
    /// The ticker, parked while the set is empty.
    waker: Cell<Option<std::task::Waker>>,
}

impl std::fmt::Debug for Ticking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticking")
            .field("slots", &self.slots.borrow().len())
            .finish_non_exhaustive()
    }
}

impl Ticking {
    fn add(&self, slot: usize) {
        self.slots.borrow_mut().push(slot);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Resolves once some group needs ticks.
    pub async fn wait_for_work(&self) {
        std::future::poll_fn(|cx| {
            if self.slots.borrow().is_empty() {
                self.waker.set(Some(cx.waker().clone()));
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
    }

    /// The slots now (copied into `into`, which keeps its capacity).
    pub fn snapshot(&self, into: &mut Vec<usize>) {
        into.clear();
        into.extend_from_slice(&self.slots.borrow());
    }

    /// Drops every slot whose group no longer needs ticks.
    pub fn prune(&self, groups: &[Rc<Group>]) {
        self.slots.borrow_mut().retain(|&slot| {
            let g = &groups[slot];
            let keep = g.needs_ticks();
            g.in_ticking.set(keep);
            keep
        });
    }
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("name", &self.cfg.name)
            .field("role", &self.role())
            .field("term", &self.term())
            .field("commit_index", &self.commit_index())
            .finish_non_exhaustive()
    }
}

impl Group {
    pub fn new(
        cfg: GroupConfig,
        node_cfg: Rc<NodeConfig>,
        log: GroupLog,
        net: Rc<PeerNet<PeerItem>>,
        client_addrs: ClientAddrs,
        rng_seed: u64,
        (ticking, tick_slot): (Rc<Ticking>, usize),
    ) -> Result<Rc<Group>, String> {
        let recovered = log.recovered();
        let checkpoint = recovered.commit_index;
        let last_index = log.last_index();
        let node = Node::new(node_cfg.raft_config(&cfg), recovered, rng_seed)
            .map_err(|e| format!("group {}: raft config: {e}", cfg.name))?;
        let (wake_tx, wake_rx) = local_channel::new_bounded(1);
        let metrics = std::sync::Arc::new(super::metrics::GroupMetrics::new(&cfg, &node_cfg));
        let (persist_tx, persist_rx) = local_channel::new_bounded(1);
        let (checkpoint_tx, checkpoint_rx) = local_channel::new_bounded(1);
        let disk_dev = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(log.config().group_dir())
                .map(|m| m.dev())
                .ok()
        };
        Ok(Rc::new(Group {
            cfg,
            node_cfg,
            log,
            node: RefCell::new(node),
            outbox: RefCell::new(Outbox::default()),
            from_message_records: RefCell::new(VecDeque::new()),
            proposed_bodies: RefCell::new(VecDeque::new()),
            incoming: RefCell::new(VecDeque::new()),
            pending: RefCell::new(VecDeque::new()),
            positions: RefCell::new(VecDeque::new()),
            persist_target: Cell::new(None),
            persist_tx,
            persist_rx: RefCell::new(Some(persist_rx)),
            inbox: RefCell::new(VecDeque::new()),
            wake_tx,
            wake_rx: RefCell::new(Some(wake_rx)),
            net,
            client_addrs,
            failure: RefCell::new(None),
            disk_full: RefCell::new(None),
            disk_sampled_at: Cell::new(None),
            last_checkpoint: Cell::new(checkpoint),
            checkpoint_wanted: Cell::new(checkpoint),
            checkpoint_tx,
            checkpoint_rx: RefCell::new(Some(checkpoint_rx)),
            append_tps: Cell::new(0),
            rate_sampled: Cell::new((Instant::now(), last_index)),
            metrics,
            ticking,
            tick_slot,
            // The driver starts the clock once the log can take an append.
            in_ticking: Cell::new(false),
            clock_started: Cell::new(false),
            disk_dev,
        }))
    }

    fn wake(&self) {
        // A full channel already holds a wake-up: nothing is lost.
        let _ = self.wake_tx.try_send(());
    }

    /// A message from a peer; stepped by the driver.
    pub fn deliver(&self, msg: GroupMessage) {
        let mut inbox = self.inbox.borrow_mut();
        if inbox.len() >= INBOX_MESSAGES_MAX {
            tracing::debug!(group = %self.cfg.name, "inbox full: dropping a peer message");
            return;
        }
        inbox.push_back(msg);
        drop(inbox);
        self.wake();
    }

    // ---- queries for clients ----

    pub fn role(&self) -> Role {
        self.node.borrow().role()
    }
    pub fn term(&self) -> Term {
        self.node.borrow().term()
    }
    pub fn commit_index(&self) -> Index {
        self.node.borrow().commit_index()
    }
    pub fn last_index(&self) -> Index {
        self.node.borrow().last_index()
    }
    pub fn failure(&self) -> Option<DiskError> {
        self.failure.borrow().clone()
    }

    /// This group's row of a cluster view.
    pub fn row(&self) -> dledger::wire::GroupRow {
        let node = self.node.borrow();
        let ledger_end = node.last_index();
        let max_lag = if node.role() == Role::Leader {
            self.cfg
                .members
                .iter()
                .filter_map(|&m| node.match_index(m))
                .map(|matched| ledger_end.saturating_sub(matched))
                .max()
                .unwrap_or(0)
        } else {
            0
        };
        dledger::wire::GroupRow {
            group: self.cfg.name.clone(),
            role: node.role(),
            term: node.term(),
            leader: node.leader(),
            ledger_end,
            commit_index: node.commit_index(),
            max_lag,
            append_tps: self.append_tps.get(),
        }
    }

    /// Leader only: how far `id`'s log is known to match (for metrics).
    pub fn match_index(&self, id: NodeId) -> Option<Index> {
        self.node.borrow().match_index(id)
    }

    /// (client appends waiting for their quorum, Raft messages waiting for the driver).
    pub fn queue_depths(&self) -> (usize, usize) {
        (self.pending.borrow().len(), self.inbox.borrow().len())
    }

    /// The client address of `id` if known.
    pub fn client_addr_of(&self, id: NodeId) -> Option<SocketAddr> {
        if id == self.node_cfg.self_id {
            return format!("{}", self.node_cfg.client_listen).parse().ok();
        }
        self.client_addrs.borrow().get(&id).copied()
    }

    /// The leader as known, with its client address when known.
    pub fn leader_hint(&self) -> Option<LeaderHint> {
        let id = self.node.borrow().leader()?;
        Some(LeaderHint {
            id,
            client_addr: self.client_addr_of(id).map(host_port),
        })
    }

    fn error(&self, code: ResponseCode, message: impl Into<String>) -> ErrorResponse {
        ErrorResponse {
            code,
            leader: self.leader_hint(),
            message: message.into(),
        }
    }

    fn not_leader(&self) -> ErrorResponse {
        let text = match self.node.borrow().leader() {
            Some(l) => format!("group {}: node {l} is the leader", self.cfg.name),
            None => format!("group {}: no leader known yet", self.cfg.name),
        };
        self.error(ResponseCode::NotLeader, text)
    }

    /// Proposes `bodies` as consecutive entries; the receiver answers once they are
    /// committed (or why not).
    pub fn propose(&self, bodies: Vec<Bytes>) -> LocalReceiver<AppendOutcome> {
        let (reply, rx) = local_channel::new_bounded(1);
        self.submit(bodies, Reply::Chan(reply));
        rx
    }

    /// Takes a client append: `reply` gets the outcome once the entries are committed
    /// (or at once, why not). Checks that need no Raft step answer here; the rest are
    /// proposed by the driver together with every other append that arrived meanwhile.
    pub fn submit(&self, bodies: Vec<Bytes>, reply: Reply) {
        if let Err(e) = self.admit(&bodies) {
            reply.failed(e);
            return;
        }
        self.incoming
            .borrow_mut()
            .push_back(Incoming { bodies, reply });
        self.wake();
    }

    fn admit(&self, bodies: &[Bytes]) -> Result<(), ErrorResponse> {
        if let Some(f) = self.failure() {
            // A stopping node (log closed after its hand-over) sends clients on to the
            // leader: a refusal, not an error of the request.
            if matches!(f, DiskError::Closed) {
                return Err(self.not_leader());
            }
            return Err(disk_error(self, &f));
        }
        if let Some(why) = self.disk_full.borrow().as_ref() {
            return Err(self.error(ResponseCode::DiskFull, why.clone()));
        }
        if bodies.is_empty() {
            return Err(self.error(ResponseCode::RequestWithEmptyBodys, "append without bodies"));
        }
        if self.role() != Role::Leader {
            return Err(self.not_leader());
        }
        let waiting = self.pending.borrow().len() + self.incoming.borrow().len();
        if waiting as u64 >= self.cfg.max_pending_requests {
            return Err(self.error(
                ResponseCode::LeaderPendingFull,
                format!(
                    "group {}: {} appends already wait for their quorum (maxPendingRequestsNum)",
                    self.cfg.name, self.cfg.max_pending_requests
                ),
            ));
        }
        Ok(())
    }

    /// Proposes every incoming append as one batch of entries.
    fn propose_incoming(&self) {
        if self.incoming.borrow().is_empty() {
            return;
        }
        let batch = std::mem::take(&mut *self.incoming.borrow_mut());
        if let Some(f) = self.failure() {
            let e = disk_error(self, &f);
            batch.into_iter().for_each(|i| i.reply.failed(e.clone()));
            return;
        }
        if self
            .disk_sampled_at
            .get()
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(DISK_SAMPLE_MAX_AGE_MS))
        {
            self.sample_disk();
        }
        if let Some(why) = self.disk_full.borrow().clone() {
            let e = self.error(ResponseCode::DiskFull, why);
            batch.into_iter().for_each(|i| i.reply.failed(e.clone()));
            return;
        }
        let total: usize = batch.iter().map(|i| i.bodies.len()).sum();
        let proposed = match u32::try_from(total) {
            Ok(count) => {
                let mut node = self.node.borrow_mut();
                let mut out = self.outbox.borrow_mut();
                node.propose(count, &mut out)
            }
            Err(_) => Err(ProposeError::PendingFull { limit: 0 }),
        };
        let deadline = Instant::now() + Duration::from_millis(u64::from(self.cfg.max_wait_ack_ms));
        match proposed {
            Ok((first, term)) => {
                let mut next = first;
                for inc in batch {
                    next = self.accept(inc, next, term, deadline);
                }
                debug_assert_eq!(next, first + total as u64);
            }
            Err(ProposeError::PendingFull { .. }) if batch.len() > 1 => {
                // The core's uncommitted-entries bound: take what fits, one at a time.
                for inc in batch {
                    let count = inc.bodies.len() as u32; // <= maxBodiesPerAppend
                    let one = {
                        let mut node = self.node.borrow_mut();
                        let mut out = self.outbox.borrow_mut();
                        node.propose(count, &mut out)
                    };
                    match one {
                        Ok((first, term)) => {
                            self.accept(inc, first, term, deadline);
                        }
                        Err(e) => inc.reply.failed(self.propose_error(e)),
                    }
                }
            }
            Err(e) => {
                let e = self.propose_error(e);
                batch.into_iter().for_each(|i| i.reply.failed(e.clone()));
            }
        }
    }

    /// Records a proposed append (entries `first..`); returns the index after it.
    fn accept(&self, inc: Incoming, first: Index, term: Term, deadline: Instant) -> Index {
        let last = first + inc.bodies.len() as u64 - 1;
        self.proposed_bodies.borrow_mut().extend(inc.bodies);
        self.pending.borrow_mut().push_back(PendingAppend {
            first,
            last,
            term,
            deadline,
            proposed_at: Instant::now(),
            reply: inc.reply,
        });
        last + 1
    }

    fn propose_error(&self, e: ProposeError) -> ErrorResponse {
        match e {
            ProposeError::NotLeader { .. } => self.not_leader(),
            ProposeError::Transferring => self.error(
                ResponseCode::LeaderTransferring,
                "leadership transfer in progress",
            ),
            ProposeError::PendingFull { limit } => self.error(
                ResponseCode::LeaderPendingFull,
                format!("{limit} entries already wait for their quorum"),
            ),
            ProposeError::Empty => {
                self.error(ResponseCode::RequestWithEmptyBodys, "append without bodies")
            }
        }
    }

    // ---- the driver ----

    /// One tick of the group's logical clock (the shard's ticker calls it every `tick_ms`
    /// while the group [`needs_ticks`](Self::needs_ticks)): advances the Raft core and
    /// expires waiting appends. The driver is woken only when the tick produced something
    /// to apply, so an idle follower's tick is a counter increment, not a task wake-up.
    pub fn tick(&self) {
        let produced = {
            let mut node = self.node.borrow_mut();
            let mut out = self.outbox.borrow_mut();
            node.tick(&mut out);
            !out.is_empty()
        };
        if !self.pending.borrow().is_empty() {
            self.expire_pending();
        }
        if produced {
            self.wake();
        }
    }

    /// Does the Raft clock need ticks (the core is not quiescent, or appends wait to
    /// expire)? A quiet group costs the shard's ticker nothing.
    pub fn needs_ticks(&self) -> bool {
        !self.node.borrow().is_quiescent() || !self.pending.borrow().is_empty()
    }

    /// After any input to the core: a group that woke joins the ticking set.
    fn note_clock(&self) {
        if self.clock_started.get() && !self.in_ticking.get() && self.needs_ticks() {
            self.in_ticking.set(true);
            self.ticking.add(self.tick_slot);
        }
    }

    /// The transport's report of `peer`'s node-level liveness (see the quiescence
    /// contract above `dledger::raft::Outbox`).
    pub fn peer_liveness(&self, peer: NodeId, alive: bool) {
        let produced = {
            let mut node = self.node.borrow_mut();
            let mut out = self.outbox.borrow_mut();
            node.peer_liveness(peer, alive, &mut out);
            !out.is_empty()
        };
        if produced {
            self.wake();
        }
        self.note_clock();
    }

    /// Updates the append rate (entries per second since the previous call; the shard's
    /// maintenance calls it every `DISK_CHECK_INTERVAL_MS`) and the disk usage: one
    /// `statvfs` per file system per round (`disk_by_dev` caches this round's samples).
    pub fn sample_rate_and_disk(&self, disk_by_dev: &mut HashMap<u64, f64>) {
        let now = (Instant::now(), self.last_index());
        let (then, end_before) = self.rate_sampled.replace(now);
        let secs = now.0.duration_since(then).as_secs_f64();
        if secs > 0.0 {
            let per_sec = now.1.saturating_sub(end_before) as f64 / secs;
            self.append_tps.set(per_sec.min(f64::from(u32::MAX)) as u32);
        }
        let Some(dev) = self.disk_dev else {
            self.sample_disk();
            return;
        };
        let ratio = match disk_by_dev.get(&dev) {
            Some(&r) => r,
            None => {
                let dir = self.log.config().group_dir();
                match crate::disk::space::disk_used_ratio(&dir) {
                    Ok(r) => {
                        disk_by_dev.insert(dev, r);
                        r
                    }
                    Err(e) => {
                        tracing::warn!(group = %self.cfg.name, error = %e, "cannot sample disk usage");
                        return;
                    }
                }
            }
        };
        self.disk_sampled_at.set(Some(Instant::now()));
        self.set_disk_ratio(ratio);
    }

    /// Applies retention (`fileReservedHours`, disk ratios) once; the shard's maintenance
    /// calls it every `PURGE_INTERVAL_MS` per group, the groups spread over the interval.
    pub async fn apply_retention(&self) {
        let keep_from = self.retention_floor();
        match self
            .log
            .purge(std::time::SystemTime::now(), keep_from)
            .await
        {
            Ok(r) if !r.segments_deleted.is_empty() => tracing::info!(
                group = %self.cfg.name,
                deleted = r.segments_deleted.len(),
                first_index = r.first_index,
                "retention removed old segments"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(group = %self.cfg.name, error = %e, "retention failed")
            }
        }
    }

    /// Samples the disk usage (`statvfs`) and sets or clears the DISK_FULL state. The
    /// group, not the log, refuses appends above the hard ratio: the log must never refuse
    /// an entry the Raft core has already counted (the group would have to stop).
    fn sample_disk(&self) {
        let dir = self.log.config().group_dir();
        self.disk_sampled_at.set(Some(Instant::now()));
        match crate::disk::space::disk_used_ratio(&dir) {
            Ok(ratio) => self.set_disk_ratio(ratio),
            Err(e) => {
                tracing::warn!(group = %self.cfg.name, error = %e, "cannot sample disk usage");
            }
        }
    }

    /// Sets or clears the DISK_FULL state from a fresh usage sample of the group's disk.
    fn set_disk_ratio(&self, ratio: f64) {
        let limit = self.node_cfg.storage.disk_ratio_refuse_writes;
        let full = (ratio > limit).then(|| {
            format!(
                "{} is {:.1}% used, above the {:.1}% limit for writes",
                self.log.config().group_dir().display(),
                ratio * 100.0,
                limit * 100.0
            )
        });
        if full.is_some() != self.disk_full.borrow().is_some() {
            tracing::warn!(group = %self.cfg.name, full = full.is_some(), "disk-full state changed");
        }
        *self.disk_full.borrow_mut() = full;
    }

    /// The lowest index retention must keep: nothing uncommitted, and on a leader nothing
    /// a known follower still lacks (there are no snapshots to catch it up otherwise).
    fn retention_floor(&self) -> Index {
        let node = self.node.borrow();
        let mut floor = node.commit_index() + 1;
        if node.role() == Role::Leader {
            for &m in &self.cfg.members {
                if let Some(matched) = node.match_index(m) {
                    floor = floor.min(matched + 1);
                }
            }
        }
        floor
    }

    fn expire_pending(&self) {
        let now = Instant::now();
        loop {
            let expired = {
                let mut pending = self.pending.borrow_mut();
                match pending.front() {
                    Some(p) if p.deadline <= now => pending.pop_front(),
                    _ => None,
                }
            };
            let Some(p) = expired else { break };
            let e = self.error(
                ResponseCode::WaitQuorumAckTimeout,
                format!(
                    "entries {}..={} not committed within maxWaitAckTimeMs ({} ms)",
                    p.first, p.last, self.cfg.max_wait_ack_ms
                ),
            );
            p.reply.failed(e);
        }
    }

    /// Steps inbound messages and applies outboxes until the shard stops.
    pub async fn run_driver(self: Rc<Self>, stop: ShardStop) {
        let Some(wake_rx) = self.wake_rx.borrow_mut().take() else {
            tracing::error!(group = %self.cfg.name, "driver started twice");
            return;
        };
        glommio::spawn_local(self.clone().run_persist_watcher(stop.clone())).detach();
        glommio::spawn_local(self.clone().run_checkpointer(stop.clone())).detach();
        // No clock (no election of its own) and no message stepped until the log can
        // take an append without waiting: at a cold start of a thousand new groups the
        // first segments are created a few at a time, and a group that ran meanwhile
        // stalled in its first write (its driver awaits it) while its ticks went on: its
        // leader missed heartbeats and lost its quorum, its followers timed out, and every
        // group was elected three times over (docs/decisions.md, "Cold start of many new
        // groups"). Peers' messages wait in the bounded inbox meanwhile.
        if crate::net::until_stop(&stop, self.log.wait_writable())
            .await
            .is_none()
        {
            return;
        }
        self.clock_started.set(true);
        self.note_clock();
        let mut spare = Outbox::default();
        while !stop.is_stopped() {
            if crate::net::until_stop(&stop, wake_rx.recv())
                .await
                .is_none()
            {
                break;
            }
            self.step_inbox();
            self.propose_incoming();
            loop {
                spare.clear();
                std::mem::swap(&mut spare, &mut *self.outbox.borrow_mut());
                if spare.is_empty() {
                    break;
                }
                if self.failure.borrow().is_some() {
                    // A failed group applies nothing more: no acks, no votes.
                    continue;
                }
                if let Err(e) = self.apply(&spare).await {
                    self.fail(e);
                }
                self.step_inbox();
                self.propose_incoming();
            }
            // Every input but a tick or a liveness report reaches the core through this
            // task: a group that woke rejoins the ticking set here.
            self.note_clock();
        }
    }

    fn step_inbox(&self) {
        loop {
            let Some(gm) = self.inbox.borrow_mut().pop_front() else {
                return;
            };
            let mut node = self.node.borrow_mut();
            let mut out = self.outbox.borrow_mut();
            let writes_before = out.log_writes.len();
            node.step(gm.msg, &mut out);
            // Keep the records of any FromMessage write this step produced: they are
            // the message's, which is dropped after this.
            for w in &out.log_writes[writes_before..] {
                if let LogWrite::FromMessage { first, last, .. } = *w {
                    let MsgBody::Append { prev_index, .. } = gm.msg.body else {
                        debug_assert!(false, "FromMessage after a non-Append step");
                        continue;
                    };
                    match slice_records(&gm.entries, first - prev_index - 1, last - first + 1) {
                        Ok(records) => self.from_message_records.borrow_mut().push_back(records),
                        Err(e) => {
                            // The wire CRC passed, so this is a leader bug: refuse to
                            // write what we cannot place.
                            tracing::error!(group = %self.cfg.name, error = %e, "bad pushed records");
                            self.from_message_records
                                .borrow_mut()
                                .push_back(Bytes::new());
                        }
                    }
                }
            }
        }
    }

    /// Stops the group before its log closes (node stop): nothing more is applied, and
    /// waiting appends are told the node is going away.
    pub fn halt(&self) {
        // Not LEADER_NOT_READY (retry-safe): the entries are in the log and the next
        // leader may still commit them, so their outcome is unknown.
        let err = self.error(
            ResponseCode::TermChanged,
            format!(
                "group {}: this node is stopping; waiting entries may still commit",
                self.cfg.name
            ),
        );
        *self.failure.borrow_mut() = Some(DiskError::Closed);
        self.answer_all_waiting(&err, &self.not_leader());
    }

    /// Answers every append not yet committed: those already proposed with `proposed`,
    /// those still queued (never in the log) with `not_proposed`.
    fn answer_all_waiting(&self, proposed: &ErrorResponse, not_proposed: &ErrorResponse) {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        let incoming = std::mem::take(&mut *self.incoming.borrow_mut());
        self.positions.borrow_mut().clear();
        for p in pending {
            p.reply.failed(proposed.clone());
        }
        for i in incoming {
            i.reply.failed(not_proposed.clone());
        }
    }

    fn fail(&self, e: DiskError) {
        if self.failure.borrow().is_some() {
            return;
        }
        tracing::error!(group = %self.cfg.name, error = %e, "group stops: fatal log error");
        let err = disk_error(self, &e);
        *self.failure.borrow_mut() = Some(e);
        self.answer_all_waiting(&err, &err);
    }

    async fn apply(self: &Rc<Self>, out: &Outbox) -> Result<(), DiskError> {
        if let Some(hs) = out.hard_state {
            self.log.persist_hard_state(hs).await?;
        }
        for w in &out.log_writes {
            self.apply_write(*w).await?;
        }
        for m in &out.messages {
            self.send(m).await;
        }
        for ev in &out.events {
            self.on_event(*ev).await;
        }
        Ok(())
    }

    async fn apply_write(self: &Rc<Self>, w: LogWrite) -> Result<(), DiskError> {
        match w {
            LogWrite::Truncate { from } => {
                // The core asserted `from` above its commit index when it emitted this;
                // the same step may since have committed the entries that replace the
                // cut ones, so today's commit index is no floor for this cut.
                let commit = self
                    .node
                    .borrow()
                    .commit_index()
                    .min(from.saturating_sub(1));
                self.log.truncate_suffix(from, commit).await?;
            }
            LogWrite::Proposed { first, last, term } => {
                let n = usize::try_from(last + 1 - first).unwrap_or(usize::MAX);
                let bodies: Vec<Bytes> = {
                    let mut queued = self.proposed_bodies.borrow_mut();
                    if queued.len() < n {
                        return Err(DiskError::Inconsistent {
                            message: format!("no bodies for proposed entries {first}..={last}"),
                        });
                    }
                    queued.drain(..n).collect()
                };
                // The log's tail cache keeps these `Bytes` (slices of the clients' receive
                // regions): the copy into the write buffer is the body's only one.
                let appended = self.log.append_bytes(term, &bodies).await?;
                check_placed(first, last, appended.first_index, appended.last_index)?;
                if self.role() == Role::Leader {
                    let mut positions = self.positions.borrow_mut();
                    // Entries at `first` and later were replaced (a truncation between
                    // terms): their positions must not answer the new ones.
                    while positions.back().is_some_and(|&(i, _)| i >= first) {
                        positions.pop_back();
                    }
                    positions.extend((first..).zip(appended.positions));
                }
                self.watch_persisted(last, term);
            }
            LogWrite::Noop { index, term } => {
                let appended = self.log.append_noop(term).await?;
                check_placed(index, index, appended.first_index, appended.last_index)?;
                self.watch_persisted(index, term);
            }
            LogWrite::FromMessage { first, last, term } => {
                let records = self
                    .from_message_records
                    .borrow_mut()
                    .pop_front()
                    .unwrap_or_default();
                let appended = self.log.append_encoded_bytes(&records).await?;
                check_placed(first, last, appended.first_index, appended.last_index)?;
                self.watch_persisted(last, term);
            }
        }
        Ok(())
    }

    /// Asks the durability watcher to report `index` (of `term`) to the core once the
    /// log says it is durable (in the group's flush mode).
    fn watch_persisted(&self, index: Index, term: Term) {
        let before = self.persist_target.replace(Some((index, term)));
        // The watcher waits for the old target; it only needs a nudge when it has none
        // or the new one is lower (after a truncation the old may never be reached).
        if before.is_none_or(|(old, _)| index < old) {
            let _ = self.persist_tx.try_send(());
        }
    }

    /// One task per group: waits until the newest written entry is durable and tells the
    /// core, once for everything that became durable together (one wake-up per flush,
    /// not one per write).
    async fn run_persist_watcher(self: Rc<Self>, stop: ShardStop) {
        let Some(nudges) = self.persist_rx.borrow_mut().take() else {
            return;
        };
        while !stop.is_stopped() {
            let Some((index, term)) = self.persist_target.get() else {
                if crate::net::until_stop(&stop, nudges.recv()).await.is_none() {
                    return;
                }
                continue;
            };
            let waiting_since = Instant::now();
            let durable = futures_lite::future::or(
                async { Some(self.log.wait_persisted(index).await) },
                async {
                    nudges.recv().await;
                    None
                },
            );
            match crate::net::until_stop(&stop, durable).await {
                None => return,
                Some(None) => continue,       // a new target: look again
                Some(Some(Err(_))) => return, // the log stopped; the driver reports why
                Some(Some(Ok(()))) => {
                    self.metrics.flush_latency_ns.observe_since(waiting_since);
                    if self.persist_target.get() == Some((index, term)) {
                        self.persist_target.set(None);
                    }
                    {
                        let mut node = self.node.borrow_mut();
                        let mut out = self.outbox.borrow_mut();
                        node.persisted(index, term, &mut out);
                    }
                    #[cfg(feature = "planted-bugs")]
                    if super::planted::ack_without_quorum() && self.role() == Role::Leader {
                        self.resolve_committed(index); // planted: ack on the own write alone
                    }
                    self.wake();
                }
            }
        }
    }

    /// One task per group: writes a recovery checkpoint for the newest wanted commit
    /// index, at most one at a time and one per `checkPointInterval`, so the driver never
    /// waits for one (requests that arrive meanwhile fold into the next). A checkpoint
    /// costs several device flushes (the index file, the checkpoint file, its directory)
    /// that share the device with the appends' flushes: at 100k appends/s the entry
    /// stride alone would ask for one every 10 ms.
    async fn run_checkpointer(self: Rc<Self>, stop: ShardStop) {
        let Some(nudges) = self.checkpoint_rx.borrow_mut().take() else {
            return;
        };
        let interval =
            Duration::from_millis(u64::from(self.node_cfg.timing.check_point_interval_ms));
        while !stop.is_stopped() {
            if crate::net::until_stop(&stop, nudges.recv()).await.is_none() {
                return;
            }
            // The checkpoint must be durable here: followers commit only what they hold
            // durably, a leader only what a majority (itself included) does; so the
            // checkpoint never names a commit index above the local durable point.
            let index = self.checkpoint_wanted.get().min(self.log.durable_index());
            if index <= self.last_checkpoint.get() {
                continue;
            }
            let started = Instant::now();
            match self.log.persist_checkpoint(index).await {
                Ok(()) => self.last_checkpoint.set(index),
                Err(e) => {
                    if self.log.failure().is_some() {
                        return; // the log stopped; the driver reports why
                    }
                    tracing::warn!(group = %self.cfg.name, error = %e, "checkpoint failed");
                }
            }
            if let Some(left) = interval.checked_sub(started.elapsed()) {
                if crate::net::until_stop(&stop, glommio::timer::sleep(left))
                    .await
                    .is_none()
                {
                    return;
                }
            }
        }
    }

    async fn send(&self, m: &Message) {
        let Some(sender) = self.net.sender(m.to) else {
            return;
        };
        let records = match m.body {
            MsgBody::Append {
                prev_index, count, ..
            } if count > 0 => match self.read_records(prev_index + 1, count).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(group = %self.cfg.name, error = %e, "cannot read entries to push");
                    return;
                }
            },
            _ => Vec::new(),
        };
        for (msg, records) in split_append(m, records, self.node_cfg.limits.max_batch_push_bytes) {
            let item = PeerItem::Raft {
                group: self.cfg.id,
                msg,
                records,
            };
            if sender.try_send(item).is_err() {
                self.node.borrow_mut().unreachable(m.to);
                return;
            }
        }
    }

    /// The records `first..first + count` as the log holds them (the tail cache: header
    /// and body parts, no copy of a body when hot).
    async fn read_records(&self, first: Index, count: u32) -> Result<Vec<Entry>, DiskError> {
        let mut out = Vec::with_capacity(count as usize);
        for i in first..first + Index::from(count) {
            out.push(self.log.entry(i).await?);
        }
        Ok(out)
    }

    async fn on_event(&self, ev: Event) {
        match ev {
            Event::Committed { index } => {
                self.resolve_committed(index);
                if index >= self.last_checkpoint.get() + CHECKPOINT_STRIDE_ENTRIES {
                    self.checkpoint_wanted
                        .set(self.checkpoint_wanted.get().max(index));
                    let _ = self.checkpoint_tx.try_send(());
                }
            }
            Event::RoleChanged { role, term, leader } => {
                tracing::info!(group = %self.cfg.name, ?role, term, ?leader, "role changed");
                if role != Role::Leader {
                    // Not NOT_LEADER (a redirect, retried as never applied): these
                    // entries are in the log and the new leader may commit them.
                    let err = self.error(
                        ResponseCode::TermChanged,
                        format!(
                            "group {}: leadership lost while entries waited for their \
                             quorum; they may still commit",
                            self.cfg.name
                        ),
                    );
                    // Appends not yet proposed were never in the log: safe to redirect.
                    self.answer_all_waiting(&err, &self.not_leader());
                }
            }
            Event::TransferEnded { to, succeeded } => {
                tracing::info!(group = %self.cfg.name, to, succeeded, "leadership transfer ended");
            }
        }
    }

    fn resolve_committed(&self, commit: Index) {
        let mut found: Vec<u64> = Vec::new();
        loop {
            let done = {
                let mut pending = self.pending.borrow_mut();
                match pending.front() {
                    Some(p) if p.last <= commit => pending.pop_front(),
                    _ => None,
                }
            };
            let Some(p) = done else { return };
            found.clear();
            {
                let mut positions = self.positions.borrow_mut();
                while positions.front().is_some_and(|&(i, _)| i < p.first) {
                    positions.pop_front();
                }
                while let Some(&(i, pos)) = positions.front() {
                    if i > p.last {
                        break;
                    }
                    found.push(pos);
                    positions.pop_front();
                }
            }
            let same_term = self.node.borrow().term_at(p.last) == Some(p.term);
            if same_term && found.len() as u64 == p.last - p.first + 1 {
                self.metrics.append_acked(found.len(), p.proposed_at);
                p.reply.appended(p.first, &found);
            } else {
                p.reply.failed(self.error(
                    ResponseCode::TermChanged,
                    format!(
                        "entries {}..={} were replaced by another leader",
                        p.first, p.last
                    ),
                ));
            }
        }
    }

    /// Leader only: hands leadership to the most caught-up follower, and waits (up to
    /// `wait`) until this node is no longer the leader.
    pub async fn transfer_away(&self, wait: Duration) {
        let target = {
            let node = self.node.borrow();
            if node.role() != Role::Leader {
                return;
            }
            self.cfg
                .members
                .iter()
                .filter(|&&m| m != self.node_cfg.self_id)
                .max_by_key(|&&m| node.match_index(m).unwrap_or(0))
                .copied()
        };
        let Some(target) = target else { return };
        {
            let mut node = self.node.borrow_mut();
            let mut out = self.outbox.borrow_mut();
            node.transfer_leadership(target, &mut out);
        }
        self.wake();
        let until = Instant::now() + wait;
        while Instant::now() < until && self.role() == Role::Leader {
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!(group = %self.cfg.name, target, still_leader = self.role() == Role::Leader, "leadership hand-over at stop");
    }
}

fn host_port(a: SocketAddr) -> dledger::config::HostPort {
    dledger::config::HostPort {
        host: a.ip().to_string(),
        port: a.port(),
    }
}

fn disk_error(g: &Group, e: &DiskError) -> ErrorResponse {
    let code = ResponseCode::from_u16(e.code()).unwrap_or(ResponseCode::DiskError);
    g.error(code, format!("group {}: {e}", g.cfg.name))
}

fn check_placed(
    first: Index,
    last: Index,
    got_first: Index,
    got_last: Index,
) -> Result<(), DiskError> {
    if first == got_first && last == got_last {
        Ok(())
    } else {
        Err(DiskError::Inconsistent {
            message: format!(
                "raft placed entries {first}..={last} but the log wrote {got_first}..={got_last}"
            ),
        })
    }
}

/// The `count` records after skipping `skip` from back-to-back encoded `records`.
fn slice_records(records: &Bytes, skip: u64, count: u64) -> Result<Bytes, String> {
    let mut at = 0usize;
    let mut start = 0usize;
    for i in 0..skip + count {
        if i == skip {
            start = at;
        }
        let h = decode_header(&records[at..], u32::MAX).map_err(|e| format!("record {i}: {e}"))?;
        let len = usize::try_from(h.record_bytes()).map_err(|_| format!("record {i} too long"))?;
        if records.len() - at < len {
            return Err(format!("record {i} runs past the message"));
        }
        at += len;
    }
    Ok(records.slice(start..at))
}

/// Splits an Append whose records exceed `max_bytes` into consecutive Appends (a batch
/// is single-term, so every chunk's `prev_term` is the batch's term except the first's).
fn split_append(m: &Message, records: Vec<Entry>, max_bytes: u32) -> Vec<(Message, Vec<Entry>)> {
    let MsgBody::Append {
        prev_index,
        prev_term,
        entries_term,
        count,
        commit,
    } = m.body
    else {
        return vec![(*m, records)];
    };
    let total: usize = records.iter().map(Entry::record_bytes).sum();
    if total <= max_bytes as usize || count <= 1 {
        return vec![(*m, records)];
    }
    debug_assert_eq!(records.len(), count as usize);
    let mut out = Vec::new();
    let mut chunk_prev = prev_index;
    let mut current: Vec<Entry> = Vec::new();
    let mut current_bytes = 0usize;
    let close = |chunk_prev: Index, current: Vec<Entry>, out: &mut Vec<(Message, Vec<Entry>)>| {
        let n = current.len() as u32;
        out.push((
            chunk(
                m,
                chunk_prev,
                prev_index,
                prev_term,
                entries_term,
                n,
                commit,
            ),
            current,
        ));
        chunk_prev + Index::from(n)
    };
    for r in records {
        if !current.is_empty() && current_bytes + r.record_bytes() > max_bytes as usize {
            chunk_prev = close(chunk_prev, std::mem::take(&mut current), &mut out);
            current_bytes = 0;
        }
        current_bytes += r.record_bytes();
        current.push(r);
    }
    let end = close(chunk_prev, current, &mut out);
    debug_assert_eq!(end - prev_index, u64::from(count));
    out
}

fn chunk(
    m: &Message,
    chunk_prev: Index,
    prev_index: Index,
    prev_term: Term,
    entries_term: Term,
    count: u32,
    commit: Index,
) -> Message {
    Message {
        body: MsgBody::Append {
            prev_index: chunk_prev,
            prev_term: if chunk_prev == prev_index {
                prev_term
            } else {
                entries_term
            },
            entries_term,
            count,
            commit,
        },
        ..*m
    }
}

#[cfg(test)]
mod tests {
    use dledger::store::record::{HEADER_BYTES, RecordHeader, encode_record};

    use super::*;

    /// `n` records of `body_bytes` each, indices `first..`, back to back.
    fn records(first: Index, n: u64, body_bytes: usize) -> Bytes {
        let mut out = bytes::BytesMut::new();
        let body = vec![0xAB; body_bytes];
        for i in 0..n {
            let pos = i * (HEADER_BYTES + body_bytes) as u64;
            let h = RecordHeader::normal(first + i, 4, pos, &body).expect("small body");
            let mut buf = vec![0u8; HEADER_BYTES + body_bytes];
            encode_record(&h, &body, &mut buf).expect("buffer fits");
            out.extend_from_slice(&buf);
        }
        out.freeze()
    }

    /// `records` cut into its `n` equal records, as the log's cache holds them.
    fn record_parts(records: &Bytes, n: usize) -> Vec<Entry> {
        let one = records.len() / n;
        (0..n)
            .map(|i| {
                let at = i * one;
                Entry {
                    index: i as u64,
                    term: 4,
                    pos: at as u64,
                    header: records[at..at + HEADER_BYTES]
                        .try_into()
                        .expect("a record starts with a whole header"),
                    body: records.slice(at + HEADER_BYTES..at + one),
                }
            })
            .collect()
    }

    fn append(prev_index: Index, count: u32) -> Message {
        Message {
            from: 0,
            to: 1,
            term: 4,
            body: MsgBody::Append {
                prev_index,
                prev_term: 3,
                entries_term: 4,
                count,
                commit: 9,
            },
        }
    }

    #[test]
    fn split_append_keeps_prev_terms_exact_and_covers_every_record() {
        let recs = records(11, 5, 100);
        let one = (HEADER_BYTES + 100) as u32;
        let parts = record_parts(&recs, 5);
        let chunks = split_append(&append(10, 5), parts.clone(), 2 * one);
        let shape: Vec<(Index, Term, u32, usize)> = chunks
            .iter()
            .map(|(m, r)| match m.body {
                MsgBody::Append {
                    prev_index,
                    prev_term,
                    count,
                    ..
                } => (
                    prev_index,
                    prev_term,
                    count,
                    r.iter().map(Entry::record_bytes).sum(),
                ),
                other => panic!("not an append: {other:?}"),
            })
            .collect();
        let two = 2 * one as usize;
        assert_eq!(
            shape,
            vec![(10, 3, 2, two), (12, 4, 2, two), (14, 4, 1, one as usize)]
        );
        let joined: Vec<u8> = chunks
            .iter()
            .flat_map(|(_, r)| r.iter().flat_map(|e| e.record().to_vec()))
            .collect();
        assert_eq!(&joined[..], &recs[..]);
        // Under the limit: untouched.
        assert_eq!(split_append(&append(10, 5), parts, 10 * one).len(), 1);
    }

    #[test]
    fn slice_records_skips_a_known_prefix() {
        let recs = records(11, 4, 10);
        let one = HEADER_BYTES + 10;
        let got = slice_records(&recs, 1, 2).expect("valid records");
        assert_eq!(&got[..], &recs[one..3 * one]);
        assert!(slice_records(&recs, 3, 2).is_err(), "past the end");
        assert!(
            slice_records(&recs.slice(..one + 5), 0, 2).is_err(),
            "cut record"
        );
    }
}

//! One shard of the server: opens its groups' logs, starts the peer transport, the group
//! drivers and the client service, and drains on stop.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::Rc,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use dledger::{
    config::{DiskSyncMethod, FlushDiskType, GroupId, NodeConfig},
    raft::NodeId,
    wire::{Frame, GroupMessage, GroupRow, WireLimits},
};
use glommio::channels::{
    channel_mesh::{Receivers, Senders},
    local_channel::LocalSender,
};

use super::{
    client,
    group::{ClientAddrs, DISK_CHECK_INTERVAL_MS, Group, PURGE_INTERVAL_MS, Ticking},
    import_gate::ImportGate,
    peer::{Inbound, PeerItem, ServerPeerCodec, decode_payload},
};
use crate::{
    disk::{FlushMode, LogConfig, OPEN_CONCURRENCY_DEFAULT, SyncMethod, open_logs},
    net::{FrameRejected, PeerFrameHandler, PeerNet, PeerNetConfig},
    runtime::{ShardContext, ShardStop},
};

/// Most groups the shard's ticker ticks at one instant; more groups are spread over
/// more slices of the tick, up to [`TICK_SLICES_MAX`].
const TICK_SLICE_GROUPS: usize = 32;
/// Most timer wake-ups per tick of the shard's ticker (at the default `tickMs` of 10:
/// 1,000 wake-ups per second, whatever the group count).
const TICK_SLICES_MAX: usize = 10;
/// How often each shard tells its peers where it serves clients.
const CLIENT_ADDR_ANNOUNCE_MS: u64 = 1000;
/// How often a serving shard looks whether the node started draining (an idle shard's
/// only periodic wake-up besides keepalives, metrics and maintenance).
const DRAIN_POLL_MS: u64 = 100;
/// How long a stopping leader waits for a follower to take over.
pub const STOP_TRANSFER_WAIT_MS: u64 = 1000;

/// What the shards share with the main thread.
#[derive(Debug, Default)]
pub struct Shared {
    /// Set when a stop signal arrived: shards hand over leadership and flush.
    pub draining: AtomicBool,
    /// Shards that finished draining.
    pub drained: AtomicUsize,
    /// Shards that could not start (they ask the others to drain and stop).
    pub failed: AtomicUsize,
    /// Every shard's and group's metrics, read by the metrics endpoint.
    pub metrics: Arc<super::metrics::NodeMetrics>,
    /// Wakes the main thread's stopper when `draining` is set (it sleeps, not polls).
    drain_requested: (std::sync::Mutex<bool>, std::sync::Condvar),
}

impl Shared {
    /// Asks every shard to drain, and wakes the stopper.
    pub fn request_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        let (lock, cv) = &self.drain_requested;
        *lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        cv.notify_all();
    }

    /// Blocks the calling (non-shard) thread until [`Self::request_drain`].
    pub fn wait_for_drain_request(&self) {
        let (lock, cv) = &self.drain_requested;
        let requested = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _requested = cv
            .wait_while(requested, |r| !*r)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}

/// The node's listening sockets, bound once by the main thread; each shard accepts on a
/// duplicate (see [`crate::net::listen`]).
#[derive(Debug)]
pub struct Listeners {
    pub client: std::net::TcpListener,
    pub peer: Arc<std::net::TcpListener>,
}

/// Messages between shards: a client request for a group that lives on another shard
/// than the one that accepted the connection, and its answer.
#[derive(Debug)]
pub enum ShardMsg {
    Request {
        from_shard: usize,
        token: u64,
        frame: Frame,
    },
    /// The whole encoded answer frame (it carries the request id).
    Answer {
        token: u64,
        frame: Bytes,
    },
    /// A peer's Raft message that arrived on a shard that does not host its group (the
    /// peer runs another shard count).
    Peer(GroupMessage),
    /// A cluster view asks every shard for its groups' rows.
    RowsRequest {
        from_shard: usize,
        token: u64,
    },
    RowsAnswer {
        token: u64,
        rows: Vec<GroupRow>,
    },
}

/// Forwarded requests a shard waits for at once; beyond, OVERLOADED.
pub const FORWARDED_MAX: usize = 4096;

/// What the client service of a shard needs.
pub struct ShardState {
    pub node_cfg: Rc<NodeConfig>,
    pub limits: WireLimits,
    pub shard_id: usize,
    pub shard_count: usize,
    /// Groups on this shard.
    pub groups: HashMap<String, Rc<Group>>,
    pub client_connections: Cell<usize>,
    pub mesh_tx: Senders<ShardMsg>,
    /// Forwarded requests waiting for their answer, by token.
    pub forwarded: RefCell<HashMap<u64, LocalSender<Bytes>>>,
    /// Cluster-view row requests waiting for other shards, by token.
    pub rows_wanted: RefCell<HashMap<u64, LocalSender<Vec<GroupRow>>>>,
    pub next_token: Cell<u64>,
}

impl ShardState {
    pub fn take_token(&self) -> u64 {
        let token = self.next_token.get();
        self.next_token.set(token.wrapping_add(1));
        token
    }

    /// Rows of this shard's groups.
    pub fn local_rows(&self) -> Vec<GroupRow> {
        self.groups.values().map(|g| g.row()).collect()
    }
}

/// Serves the requests other shards forward here, and routes answers to forwarded
/// requests back to their connections, until the shard stops.
async fn mesh_loop(state: Rc<ShardState>, mut mesh_rx: Receivers<ShardMsg>, stop: ShardStop) {
    let mut loops = Vec::new();
    for (_, rx) in mesh_rx.streams() {
        let state = state.clone();
        let stop = stop.clone();
        loops.push(glommio::spawn_local(async move {
            while let Some(Some(msg)) = crate::net::until_stop(&stop, rx.recv()).await {
                match msg {
                    ShardMsg::Request {
                        from_shard,
                        token,
                        frame,
                    } => {
                        let state = state.clone();
                        glommio::spawn_local(async move {
                            let answer = client::handle_frame(&state, &frame).await;
                            let back = ShardMsg::Answer {
                                token,
                                frame: answer,
                            };
                            if state.mesh_tx.send_to(from_shard, back).await.is_err() {
                                tracing::debug!(from_shard, "cannot return a forwarded answer");
                            }
                        })
                        .detach();
                    }
                    ShardMsg::Answer { token, frame } => {
                        if let Some(tx) = state.forwarded.borrow_mut().remove(&token) {
                            let _ = tx.try_send(frame);
                        }
                    }
                    ShardMsg::RowsRequest { from_shard, token } => {
                        let back = ShardMsg::RowsAnswer {
                            token,
                            rows: state.local_rows(),
                        };
                        if state.mesh_tx.try_send_to(from_shard, back).is_err() {
                            tracing::debug!(from_shard, "cannot return cluster-view rows");
                        }
                    }
                    ShardMsg::RowsAnswer { token, rows } => {
                        if let Some(tx) = state.rows_wanted.borrow_mut().remove(&token) {
                            let _ = tx.try_send(rows);
                        }
                    }
                    ShardMsg::Peer(gm) => {
                        let group = state
                            .node_cfg
                            .group_by_id(gm.group)
                            .and_then(|g| state.groups.get(&g.name));
                        match group {
                            Some(g) => g.deliver(gm),
                            None => tracing::debug!(
                                group = gm.group,
                                "forwarded peer message for a group not here"
                            ),
                        }
                    }
                }
            }
        }));
    }
    for l in loops {
        l.await;
    }
}

/// Routes inbound peer items to this shard's groups.
struct PeerInbox {
    self_id: NodeId,
    limits: WireLimits,
    groups: RefCell<HashMap<GroupId, Rc<Group>>>,
    client_addrs: ClientAddrs,
    /// Set once the shard is up: where messages for other shards' groups go.
    state: RefCell<Option<Rc<ShardState>>>,
    /// Drops a peer's messages for a group whose imported prefix differs from ours.
    import_gate: ImportGate,
    /// Peers whose node this shard's transport reports up (told to groups that open
    /// after the report).
    peers_up: RefCell<std::collections::BTreeSet<NodeId>>,
}

impl PeerInbox {
    /// Hands a message for a group hosted on another shard to that shard (dropped if
    /// its channel is full: Raft copes with loss).
    fn route_elsewhere(&self, gm: GroupMessage, from: NodeId) {
        let state = self.state.borrow();
        let target = state.as_ref().and_then(|st| {
            let name = &st.node_cfg.group_by_id(gm.group)?.name;
            let t = dledger::placement::shard_of(name, st.shard_count);
            (t != st.shard_id).then_some((st, t))
        });
        match target {
            Some((st, t)) => {
                if st.mesh_tx.try_send_to(t, ShardMsg::Peer(gm)).is_err() {
                    tracing::debug!(
                        from,
                        shard = t,
                        "cross-shard channel full: dropping a peer message"
                    );
                }
            }
            None => tracing::debug!(group = gm.group, from, "peer message for an unknown group"),
        }
    }
}

impl PeerFrameHandler for PeerInbox {
    fn on_peer_frame(
        &self,
        from: NodeId,
        _from_shard: u32,
        payload: Bytes,
    ) -> Result<(), FrameRejected> {
        let groups = self.groups.borrow();
        decode_payload(
            payload,
            from,
            self.self_id,
            &self.limits,
            |item| match item {
                Inbound::Raft(batch) => {
                    for gm in batch.items {
                        if !self.import_gate.admits(gm.group, from) {
                            continue;
                        }
                        match groups.get(&gm.group) {
                            Some(g) => g.deliver(gm),
                            None => self.route_elsewhere(gm, from),
                        }
                    }
                }
                Inbound::ClientAddr(addr) => {
                    self.client_addrs.borrow_mut().insert(from, addr);
                }
                Inbound::ImportDigest { group, digest } => {
                    self.import_gate.observe(from, group, digest);
                }
            },
        )
        .map_err(FrameRejected)
    }

    /// One transition: every group of the shard hears it (bounded work: once per
    /// transition, not per tick).
    fn on_peer_liveness(&self, peer: NodeId, alive: bool) {
        if alive {
            self.peers_up.borrow_mut().insert(peer);
        } else {
            self.peers_up.borrow_mut().remove(&peer);
        }
        tracing::info!(peer, alive, "peer node liveness");
        for g in self.groups.borrow().values() {
            g.peer_liveness(peer, alive);
        }
    }
}

pub(crate) fn log_config(cfg: &NodeConfig, group: &dledger::config::GroupConfig) -> LogConfig {
    let mut lc = LogConfig::new(&cfg.storage.dledger_base_dir, &cfg.self_name, &group.name);
    lc.segment_bytes = cfg.storage.data_segment_bytes;
    lc.index_segment_bytes = cfg.storage.index_segment_bytes;
    lc.max_record_bytes = cfg
        .limits
        .max_body_bytes
        .saturating_add(dledger::store::record::HEADER_BYTES as u32);
    lc.flush_mode = match group.flush {
        FlushDiskType::SyncFlush => FlushMode::SyncFlush,
        FlushDiskType::AsyncFlush => FlushMode::AsyncFlush {
            flush_interval_ms: u64::from(cfg.timing.flush_file_interval_ms),
        },
    };
    lc.file_reserved_hours = u64::from(group.file_reserved_hours);
    lc.sync_method = match cfg.storage.sync_method {
        DiskSyncMethod::ODsync => SyncMethod::ODsync,
        DiskSyncMethod::Fdatasync => SyncMethod::Fdatasync,
        DiskSyncMethod::Adaptive => SyncMethod::Adaptive,
    };
    lc.shared_flush = cfg.storage.shared_flush;
    lc.disk_ratio_check_expired = cfg.storage.disk_ratio_check_expired;
    lc.disk_ratio_force_clean = cfg.storage.disk_ratio_force_clean;
    // The group refuses appends above the hard ratio before the Raft core counts them
    // (`Group::sample_disk`); a refusal by the log itself would stop the group.
    lc.disk_ratio_refuse_writes = 1.0;
    if let Some(&hour) = cfg.storage.delete_when_hours.first() {
        lc.delete_when_hour = hour;
    }
    lc
}

/// A shard's life: start, serve until draining, drain, wait for the stop.
pub async fn shard_main(
    ctx: ShardContext<ShardMsg>,
    node_cfg: Arc<NodeConfig>,
    shared: Arc<Shared>,
    listeners: Arc<Listeners>,
) -> Result<(), String> {
    let (groups, stop) = match start(ctx, node_cfg, &shared.metrics, &listeners).await {
        Ok(started) => started,
        Err(e) => {
            // The node cannot serve without this shard's groups: stop the others too.
            tracing::error!("{e}");
            shared.failed.fetch_add(1, Ordering::SeqCst);
            shared.request_drain();
            return Err(e);
        }
    };
    while !shared.draining.load(Ordering::SeqCst) && !stop.is_stopped() {
        glommio::timer::sleep(Duration::from_millis(DRAIN_POLL_MS)).await;
    }
    // Hand over leadership (bounded), then flush and close every log.
    let transfers = groups.values().map(|g| {
        let g = g.clone();
        glommio::spawn_local(async move {
            g.transfer_away(Duration::from_millis(STOP_TRANSFER_WAIT_MS))
                .await;
        })
    });
    let transfers: Vec<_> = transfers.collect();
    for t in transfers {
        t.await;
    }
    for g in groups.values() {
        g.halt();
        let commit = g.commit_index();
        if commit > g.log.checkpoint().commit_index && commit <= g.log.durable_index() {
            if let Err(e) = g.log.persist_checkpoint(commit).await {
                tracing::warn!(group = %g.cfg.name, error = %e, "final checkpoint failed");
            }
        }
        if let Err(e) = g.log.clone().close().await {
            tracing::warn!(group = %g.cfg.name, error = %e, "closing the log failed");
        }
    }
    shared.drained.fetch_add(1, Ordering::SeqCst);
    stop.wait().await;
    Ok(())
}

type Started = (HashMap<String, Rc<Group>>, ShardStop);

async fn start(
    mut ctx: ShardContext<ShardMsg>,
    node_cfg: Arc<NodeConfig>,
    metrics: &super::metrics::NodeMetrics,
    listeners: &Listeners,
) -> Result<Started, String> {
    let cfg = Rc::new((*node_cfg).clone());
    let limits = WireLimits::from_config(&cfg);
    let mine: Vec<_> = cfg
        .groups
        .iter()
        .filter(|g| dledger::placement::shard_of(&g.name, ctx.shard_count) == ctx.shard_id)
        .cloned()
        .collect();

    // Peer transport.
    let mut nodes = HashMap::new();
    for p in &cfg.peers {
        nodes.insert(p.id, client::resolve(&p.peer_addr)?);
    }
    let listen = client::resolve(&cfg.peer_listen)?;
    let mut net_cfg = PeerNetConfig::new(cfg.cluster_name.clone(), cfg.self_id, listen, nodes);
    net_cfg.max_frame_bytes = cfg.limits.max_frame_bytes as usize;
    // Node liveness: a keepalive per heartbeat interval, down after the silence DLedger
    // tolerates from a leader (heartbeat × maxHeartBeatLeak).
    net_cfg.keepalive_interval_ms = u64::from(cfg.timing.heartbeat_interval_ms).max(1);
    net_cfg.liveness_timeout_ms = cfg
        .timing
        .silence_tolerated_ms()
        .max(net_cfg.keepalive_interval_ms + 1);
    net_cfg.listener = Some(listeners.peer.clone());
    let client_addrs: ClientAddrs = Rc::new(RefCell::new(HashMap::new()));
    let inbox = Rc::new(PeerInbox {
        self_id: cfg.self_id,
        limits,
        groups: RefCell::new(HashMap::new()),
        client_addrs: client_addrs.clone(),
        state: RefCell::new(None),
        import_gate: ImportGate::load(&cfg)?,
        peers_up: RefCell::new(std::collections::BTreeSet::new()),
    });
    let codec = Rc::new(ServerPeerCodec { limits });
    let net = Rc::new(
        PeerNet::start(&mut ctx, Rc::new(net_cfg), codec, inbox.clone())
            .map_err(|e| format!("peer transport: {e}"))?,
    );

    // Our import digests go out before any Raft message (and again every second).
    let announcements: Vec<_> = mine
        .iter()
        .map(|g| (g.id, inbox.import_gate.announcement(g.id).map(Bytes::from)))
        .collect();
    announce_digests(&net, &announcements);

    // Groups.
    // Logs first, a bounded number at a time (an open is mostly device waits).
    // Each log's writer and syncer run in the replication queue, beside the drivers.
    let configs = mine
        .iter()
        .map(|gc| LogConfig {
            task_queue: Some(ctx.queues.replication),
            ..log_config(&cfg, gc)
        })
        .collect();
    let logs = open_logs(configs, OPEN_CONCURRENCY_DEFAULT).await;
    let mut groups = HashMap::new();
    let mut ordered: Vec<Rc<Group>> = Vec::with_capacity(mine.len());
    let ticking = Rc::new(Ticking::default());
    for (i, (gc, opened)) in mine.into_iter().zip(logs).enumerate() {
        let log = opened.map_err(|e| format!("group {}: cannot open its log: {e}", gc.name))?;
        let seed = seed_for(cfg.self_id, i);
        let group = Group::new(
            gc.clone(),
            cfg.clone(),
            log,
            net.clone(),
            client_addrs.clone(),
            seed,
            (ticking.clone(), i),
        )?;
        for &peer in inbox.peers_up.borrow().iter() {
            group.peer_liveness(peer, true);
        }
        tracing::info!(
            group = %gc.name,
            shard = ctx.shard_id,
            last_index = group.last_index(),
            term = group.term(),
            "group opened"
        );
        inbox.groups.borrow_mut().insert(gc.id, group.clone());
        glommio::spawn_local_into(
            group.clone().run_driver(ctx.stop.clone()),
            ctx.queues.replication,
        )
        .map_err(|e| format!("cannot spawn a group driver: {e}"))?
        .detach();
        ordered.push(group.clone());
        groups.insert(gc.name.clone(), group);
    }

    // One ticker and one maintenance task for all of the shard's groups: a timer per
    // group would wake the shard once per group per tick.
    let ordered: Rc<[Rc<Group>]> = ordered.into();
    let tick = Duration::from_millis(u64::from(cfg.timing.tick_ms));
    glommio::spawn_local_into(
        run_ticker(ordered.clone(), ticking, tick, ctx.stop.clone()),
        ctx.queues.replication,
    )
    .map_err(|e| format!("cannot spawn the group ticker: {e}"))?
    .detach();
    // Append rate (cluster-list #InTPS), disk usage and retention, off the replication
    // queue.
    glommio::spawn_local_into(
        run_maintenance(ordered, ctx.stop.clone()),
        ctx.queues.background,
    )
    .map_err(|e| format!("cannot spawn the groups' maintenance: {e}"))?
    .detach();

    // Tell peers where clients reach this node, now and then (they may restart).
    let client_addr = client::resolve(&cfg.client_listen)?;
    {
        let net = net.clone();
        let stop = ctx.stop.clone();
        glommio::spawn_local_into(
            async move {
                while !stop.is_stopped() {
                    for s in net.senders() {
                        let _ = s.try_send(PeerItem::ClientAddr(client_addr));
                    }
                    announce_digests(&net, &announcements);
                    glommio::timer::sleep(Duration::from_millis(CLIENT_ADDR_ANNOUNCE_MS)).await;
                }
            },
            ctx.queues.background,
        )
        .map_err(|e| format!("cannot spawn the address announcer: {e}"))?
        .detach();
    }

    // Client service.
    let listener = crate::net::listen::shard_listener(&listeners.client)
        .map_err(|e| format!("cannot listen for clients on {client_addr}: {e}"))?;
    let state = Rc::new(ShardState {
        node_cfg: cfg.clone(),
        limits,
        shard_id: ctx.shard_id,
        shard_count: ctx.shard_count,
        groups: groups.clone(),
        client_connections: Cell::new(0),
        mesh_tx: ctx.mesh_tx,
        forwarded: RefCell::new(HashMap::new()),
        rows_wanted: RefCell::new(HashMap::new()),
        next_token: Cell::new(0),
    });
    *inbox.state.borrow_mut() = Some(state.clone());
    super::metrics::start_shard(
        metrics,
        &state,
        &net,
        ctx.queues.background,
        ctx.stop.clone(),
    )?;
    glommio::spawn_local_into(
        mesh_loop(state.clone(), ctx.mesh_rx, ctx.stop.clone()),
        ctx.queues.client,
    )
    .map_err(|e| format!("cannot spawn the cross-shard loop: {e}"))?
    .detach();
    glommio::spawn_local_into(
        client::accept_loop(state, listener, ctx.stop.clone()),
        ctx.queues.client,
    )
    .map_err(|e| format!("cannot spawn the client service: {e}"))?
    .detach();
    tracing::info!(shard = ctx.shard_id, %client_addr, peer_addr = %listen, groups = groups.len(), "shard serving");
    Ok((groups, ctx.stop.clone()))
}

/// Ticks every group of the shard that needs ticks ([`Ticking`]: not quiescent) once per
/// `tick`, until the shard stops; parks while every group is quiet, so an idle shard's
/// ticker costs nothing. The groups of one tick are walked in up to
/// [`TICK_SLICES_MAX`] slices spread evenly over the tick (one timer wake-up per slice),
/// not all at one instant: with 1,000 groups whose clocks all advanced together,
/// elections after a start-up did not settle for minutes on the loaded 2-core test
/// machine (four runs), while slices settled them in ~20 s like the per-group timers
/// this replaces (their phases were spread at random). Like those timers, a busy shard
/// stretches its ticks (each sleep starts after the slice ran) rather than catching up
/// in a burst. Groups that wake during a tick are ticked from the next one on.
async fn run_ticker(
    groups: Rc<[Rc<Group>]>,
    ticking: Rc<Ticking>,
    tick: Duration,
    stop: ShardStop,
) {
    debug_assert!(!tick.is_zero(), "tickMs is at least 1");
    let mut round: Vec<usize> = Vec::with_capacity(groups.len());
    while !stop.is_stopped() {
        if crate::net::until_stop(&stop, ticking.wait_for_work())
            .await
            .is_none()
        {
            return;
        }
        ticking.snapshot(&mut round);
        debug_assert!(
            round.len() <= groups.len(),
            "a group is in the ticking set twice"
        );
        let slices = round
            .len()
            .div_ceil(TICK_SLICE_GROUPS)
            .clamp(1, TICK_SLICES_MAX);
        let per_slice = round.len().div_ceil(slices).max(1);
        let pause = tick / slices as u32;
        for slice in round.chunks(per_slice) {
            glommio::timer::sleep(pause).await;
            for &slot in slice {
                groups[slot].tick();
            }
        }
        ticking.prune(&groups);
    }
}

/// Every `DISK_CHECK_INTERVAL_MS`: each group's append rate and its disk usage (one
/// `statvfs` per file system per round, not per group); and each group's retention once
/// per `PURGE_INTERVAL_MS`, the groups spread evenly over that interval (a shard of many
/// groups never purges them all in one round).
async fn run_maintenance(groups: Rc<[Rc<Group>]>, stop: ShardStop) {
    let rounds_per_purge = (PURGE_INTERVAL_MS / DISK_CHECK_INTERVAL_MS).max(1);
    let mut round: u64 = 0;
    let mut disk_by_dev = HashMap::new();
    while !stop.is_stopped() {
        glommio::timer::sleep(Duration::from_millis(DISK_CHECK_INTERVAL_MS)).await;
        round += 1;
        disk_by_dev.clear();
        for g in groups.iter() {
            g.sample_rate_and_disk(&mut disk_by_dev);
        }
        for (slot, g) in (0u64..).zip(groups.iter()) {
            if (round + slot) % rounds_per_purge == 0 && !stop.is_stopped() {
                g.apply_retention().await;
            }
        }
    }
}

/// Tells every peer this shard's groups' import digests (a full queue drops one: it
/// goes again with the next round).
fn announce_digests(net: &PeerNet<PeerItem>, announcements: &[(GroupId, Option<Bytes>)]) {
    for s in net.senders() {
        for (group, digest) in announcements {
            let _ = s.try_send(PeerItem::ImportDigest {
                group: *group,
                digest: digest.clone(),
            });
        }
    }
}

/// Election timeouts are drawn from a per-node, per-group seed so nodes differ.
fn seed_for(self_id: NodeId, group_slot: usize) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(self_id) << 48) ^ (group_slot as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

//! Prometheus metrics of a node, served over HTTP on `metricsPort` (off when the key is
//! absent) at `GET /metrics` in the OpenMetrics text format.
//!
//! Where the values come from, and why nothing locks on the hot path:
//! - Histograms (append latency, flush latency, append batch sizes) are fixed-bucket
//!   arrays of atomics owned by one group ([`GroupMetrics`]); only that group's shard
//!   writes them (relaxed `fetch_add` on memory no other core writes), the scrape thread
//!   only reads them.
//! - Gauges of a group (role, term, commit index, ledger end, follower lag, append rate,
//!   queue depths) and of a shard (client connections, forwarded requests, peer send
//!   queues) live in the shard's `Rc`/`RefCell` state, so each shard copies them into its
//!   atomics every [`SAMPLE_INTERVAL_MS`] from a background-priority task. A scrape sees
//!   values at most that old.
//! - [`NodeMetrics`] lists every group's and shard's metrics; it is locked only when a
//!   shard registers (once, at start) and when a scrape reads the list.
//!
//! The exposition format is written by the `prometheus-client` crate (the Prometheus
//! project's Rust client) through a [`Collector`] that reads the atomics at scrape time.
//!
//! Metric names (every one prefixed `dledger_`; `group`, `shard`, `follower`, `peer` are
//! labels):
//! - `group_role{group,role}` 1 for the current role, 0 for the others
//! - `group_term`, `group_commit_index`, `group_ledger_end_index`
//! - `group_follower_lag_entries{group,follower}` leader only: ledger end − match index
//! - `group_append_rate_entries_per_second` growth of the ledger end (leader and
//!   followers) over the last sample interval
//! - `group_append_latency_seconds` histogram: leader, client append received → answered
//!   committed
//! - `group_flush_latency_seconds` histogram: a log write issued → durable (the group
//!   commit flush covering it; in ASYNC_FLUSH mode: written)
//! - `group_append_batch_entries` histogram: bodies per acknowledged client append
//! - `group_pending_appends`, `group_inbox_messages`: appends waiting for their quorum,
//!   Raft messages waiting for the group's driver
//! - `shard_client_connections{shard}`, `shard_forwarded_requests{shard}`,
//!   `shard_peer_queue_items{shard,peer}`
//! - counters `shard_shared_flush_rounds_total`, `shard_shared_flush_joins_total`,
//!   `shard_solo_dsync_writes_total` (the shard's device flushes and `O_DSYNC` rounds)
//! - counters `shard_executor_busy_seconds_total`, `shard_executor_tasks_total`,
//!   `shard_executor_queue_runs_total`: the shard's glommio executor, from its own
//!   statistics (busy: running tasks or polling I/O, not sleeping), so a shard's load
//!   shows without an OS thread view

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dledger::config::{GroupConfig, NodeConfig};
use dledger::raft::{NodeId, Role};
use glommio::TaskQueueHandle;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::peer::PeerItem;
use super::shard::ShardState;
use crate::net::PeerNet;
use crate::runtime::ShardStop;

/// How often each shard copies its gauges into its atomics.
pub const SAMPLE_INTERVAL_MS: u64 = 500;
/// Largest HTTP request accepted (request line and headers).
const REQUEST_BYTES_MAX: usize = 8 * 1024;
/// Bound on reading a request and on writing an answer.
const HTTP_IO_TIMEOUT_MS: u64 = 2000;

/// Latency bucket upper bounds in ns: 50 µs … 10 s.
const LATENCY_BOUNDS_NS: &[u64] = &[
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];
/// Batch-size bucket upper bounds in entries.
const BATCH_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384];

/// A histogram over fixed buckets whose counts are atomics: recording is a bucket search
/// over a short constant table and two relaxed additions, no lock, no allocation.
#[derive(Debug)]
pub struct AtomicHistogram {
    /// Upper bounds (inclusive), ascending; one more bucket catches everything above.
    bounds: &'static [u64],
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl AtomicHistogram {
    fn new(bounds: &'static [u64]) -> AtomicHistogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "ascending bounds");
        AtomicHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&b| b < value);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    pub fn observe_since(&self, start: Instant) {
        self.observe(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }

    /// (sum, count, per-bucket (upper bound, count)) with values divided by `unit`; the
    /// last bound is `f64::MAX` (+Inf). The count is the buckets' total, so the two agree
    /// even while the shard records.
    fn snapshot(&self, unit: f64) -> (f64, u64, Vec<(f64, u64)>) {
        let mut buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .map(|&b| b as f64 / unit)
            .chain(std::iter::once(f64::MAX))
            .zip(self.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        buckets.shrink_to_fit();
        let count = buckets.iter().map(|(_, c)| c).sum();
        let sum = self.sum.load(Ordering::Relaxed) as f64 / unit;
        (sum, count, buckets)
    }
}

/// One group's metrics (see the module docs). Written by its shard only.
#[derive(Debug)]
pub struct GroupMetrics {
    group: String,
    pub append_latency_ns: AtomicHistogram,
    pub flush_latency_ns: AtomicHistogram,
    pub append_batch_entries: AtomicHistogram,
    role: AtomicU64,
    term: AtomicU64,
    commit_index: AtomicU64,
    ledger_end: AtomicU64,
    /// f64 bits.
    append_rate: AtomicU64,
    pending_appends: AtomicU64,
    inbox_messages: AtomicU64,
    /// (follower id, its name, lag in entries or -1 when unknown / not the leader).
    follower_lag: Box<[(NodeId, String, AtomicI64)]>,
}

const ROLES: [(Role, &str); 4] = [
    (Role::Leader, "leader"),
    (Role::Follower, "follower"),
    (Role::Candidate, "candidate"),
    (Role::PreCandidate, "precandidate"),
];

fn role_code(r: Role) -> u64 {
    match r {
        Role::Leader => 0,
        Role::Follower => 1,
        Role::Candidate => 2,
        Role::PreCandidate => 3,
    }
}

impl GroupMetrics {
    pub fn new(group: &GroupConfig, node: &NodeConfig) -> GroupMetrics {
        let follower_lag = group
            .members
            .iter()
            .filter(|&&m| m != node.self_id)
            .map(|&m| {
                let name = node
                    .peers
                    .iter()
                    .find(|p| p.id == m)
                    .map_or_else(|| m.to_string(), |p| p.name.clone());
                (m, name, AtomicI64::new(-1))
            })
            .collect();
        GroupMetrics {
            group: group.name.clone(),
            append_latency_ns: AtomicHistogram::new(LATENCY_BOUNDS_NS),
            flush_latency_ns: AtomicHistogram::new(LATENCY_BOUNDS_NS),
            append_batch_entries: AtomicHistogram::new(BATCH_BOUNDS),
            role: AtomicU64::new(role_code(Role::Follower)),
            term: AtomicU64::new(0),
            commit_index: AtomicU64::new(0),
            ledger_end: AtomicU64::new(0),
            append_rate: AtomicU64::new(0f64.to_bits()),
            pending_appends: AtomicU64::new(0),
            inbox_messages: AtomicU64::new(0),
            follower_lag,
        }
    }

    /// An acknowledged client append of `entries` bodies received at `received`.
    pub fn append_acked(&self, entries: usize, received: Instant) {
        self.append_latency_ns.observe_since(received);
        self.append_batch_entries.observe(entries as u64);
    }
}

/// One shard's gauges (see the module docs).
#[derive(Debug)]
pub struct ShardMetrics {
    shard: usize,
    client_connections: AtomicU64,
    forwarded_requests: AtomicU64,
    /// (peer id, its name, items queued for it).
    peer_queue_items: Box<[(NodeId, String, AtomicU64)]>,
    /// The shard's shared device flushes, summed over its devices: rounds (one
    /// `fdatasync` each) and the log sync rounds they served.
    shared_flush_rounds: AtomicU64,
    shared_flush_joins: AtomicU64,
    /// Log rounds written `O_DSYNC` instead (`diskSyncMethod=ADAPTIVE`'s solo rounds).
    solo_dsync_writes: AtomicU64,
    /// The shard's glommio executor (`ExecutorStats`): ns spent running tasks and
    /// polling I/O (not sleeping), tasks run, and the scheduler's picks (one per task
    /// queue run, plus one per pass of its loop that finds no more work).
    executor_busy_ns: AtomicU64,
    executor_tasks: AtomicU64,
    executor_queue_runs: AtomicU64,
}

/// Every group's and shard's metrics of this node.
#[derive(Debug, Default)]
pub struct NodeMetrics {
    groups: Mutex<Vec<Arc<GroupMetrics>>>,
    shards: Mutex<Vec<Arc<ShardMetrics>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Registration pushes whole entries: a panic elsewhere cannot leave a torn list.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers a shard's groups and its gauges with `node`, and starts the task that
/// samples them every [`SAMPLE_INTERVAL_MS`] until the shard stops.
pub fn start_shard(
    node: &NodeMetrics,
    state: &Rc<ShardState>,
    net: &Rc<PeerNet<PeerItem>>,
    queue: TaskQueueHandle,
    stop: ShardStop,
) -> Result<(), String> {
    let cfg = &state.node_cfg;
    let shard = Arc::new(ShardMetrics {
        shard: state.shard_id,
        client_connections: AtomicU64::new(0),
        forwarded_requests: AtomicU64::new(0),
        peer_queue_items: cfg
            .peers
            .iter()
            .filter(|p| p.id != cfg.self_id)
            .map(|p| (p.id, p.name.clone(), AtomicU64::new(0)))
            .collect(),
        shared_flush_rounds: AtomicU64::new(0),
        shared_flush_joins: AtomicU64::new(0),
        solo_dsync_writes: AtomicU64::new(0),
        executor_busy_ns: AtomicU64::new(0),
        executor_tasks: AtomicU64::new(0),
        executor_queue_runs: AtomicU64::new(0),
    });
    lock(&node.groups).extend(state.groups.values().map(|g| g.metrics.clone()));
    lock(&node.shards).push(shard.clone());
    let (state, net) = (state.clone(), net.clone());
    glommio::spawn_local_into(
        async move {
            let mut last = Instant::now();
            let mut ends: Vec<u64> = Vec::new();
            while !stop.is_stopped() {
                glommio::timer::sleep(Duration::from_millis(SAMPLE_INTERVAL_MS)).await;
                let secs = last.elapsed().as_secs_f64();
                last = Instant::now();
                ends.resize(state.groups.len(), u64::MAX);
                for (g, end_before) in state.groups.values().zip(ends.iter_mut()) {
                    sample_group(g, secs, end_before);
                }
                shard
                    .client_connections
                    .store(state.client_connections.get() as u64, Ordering::Relaxed);
                shard
                    .forwarded_requests
                    .store(state.forwarded.borrow().len() as u64, Ordering::Relaxed);
                for (id, _, items) in shard.peer_queue_items.iter() {
                    let queued = net.sender(*id).map_or(0, |s| s.queued());
                    items.store(queued as u64, Ordering::Relaxed);
                }
                let totals = shared_flush_totals(&state);
                shard
                    .shared_flush_rounds
                    .store(totals.rounds, Ordering::Relaxed);
                shard
                    .shared_flush_joins
                    .store(totals.joins, Ordering::Relaxed);
                shard
                    .solo_dsync_writes
                    .store(totals.solo_dsync_writes, Ordering::Relaxed);
                // glommio hands out its counters since the previous call and zeroes
                // them (`mem::take`): this sampler is their only reader, so it adds.
                let ex = glommio::executor().executor_stats();
                let busy_ns = u64::try_from(ex.total_runtime().as_nanos()).unwrap_or(u64::MAX);
                shard.executor_busy_ns.fetch_add(busy_ns, Ordering::Relaxed);
                shard
                    .executor_tasks
                    .fetch_add(ex.tasks_executed(), Ordering::Relaxed);
                shard
                    .executor_queue_runs
                    .fetch_add(ex.scheduler_runs(), Ordering::Relaxed);
            }
        },
        queue,
    )
    .map_err(|e| format!("cannot spawn the metrics sampler: {e}"))?
    .detach();
    Ok(())
}

/// The counters of the shard's shared device flushes, summed (one flusher per device its
/// groups' logs joined; each counted once).
fn shared_flush_totals(state: &ShardState) -> crate::disk::SharedFlushStats {
    let mut seen: Vec<Rc<crate::disk::SharedFlush>> = Vec::new();
    for g in state.groups.values() {
        if let Some(f) = g.log.shared_flush() {
            if !seen.iter().any(|s| Rc::ptr_eq(s, &f)) {
                seen.push(f);
            }
        }
    }
    seen.iter().fold(Default::default(), |sum, f| {
        let st = f.stats();
        crate::disk::SharedFlushStats {
            rounds: sum.rounds + st.rounds,
            joins: sum.joins + st.joins,
            single_joiner_rounds: sum.single_joiner_rounds + st.single_joiner_rounds,
            abandoned: sum.abandoned + st.abandoned,
            failures: sum.failures + st.failures,
            solo_dsync_writes: sum.solo_dsync_writes + st.solo_dsync_writes,
        }
    })
}

/// Copies a group's gauges into its metrics; `end_before` is its ledger end at the last
/// sample (`u64::MAX` before the first), `secs` the time since.
fn sample_group(g: &super::group::Group, secs: f64, end_before: &mut u64) {
    let m = &g.metrics;
    let role = g.role();
    let end = g.last_index();
    m.role.store(role_code(role), Ordering::Relaxed);
    m.term.store(g.term(), Ordering::Relaxed);
    m.commit_index.store(g.commit_index(), Ordering::Relaxed);
    m.ledger_end.store(end, Ordering::Relaxed);
    if *end_before != u64::MAX && secs > 0.0 {
        // A truncated suffix can move the end back: a rate is never negative.
        let rate = end.saturating_sub(*end_before) as f64 / secs;
        m.append_rate.store(rate.to_bits(), Ordering::Relaxed);
    }
    *end_before = end;
    let (pending, inbox) = g.queue_depths();
    m.pending_appends.store(pending as u64, Ordering::Relaxed);
    m.inbox_messages.store(inbox as u64, Ordering::Relaxed);
    for (id, _, lag) in m.follower_lag.iter() {
        let v = match g.match_index(*id) {
            Some(matched) if role == Role::Leader => {
                i64::try_from(end.saturating_sub(matched)).unwrap_or(i64::MAX)
            }
            _ => -1,
        };
        lag.store(v, Ordering::Relaxed);
    }
}

// ---- exposition ----

/// Reads [`NodeMetrics`] at scrape time.
#[derive(Debug)]
struct NodeCollector(Arc<NodeMetrics>);

type Labels<'a> = Vec<(&'static str, &'a str)>;

fn gauge_family<'a, V: prometheus_client::encoding::EncodeGaugeValue + Clone + 'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels<'a>, V)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in series {
        ConstGauge::new(v).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counter_family<'a, V: prometheus_client::encoding::EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels<'a>, V)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in series {
        ConstCounter::new(v).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn histogram_family<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: f64,
    series: impl IntoIterator<Item = (Labels<'a>, &'a AtomicHistogram)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, h) in series {
        let (sum, count, buckets) = h.snapshot(unit);
        metric
            .encode_family(&labels)?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                sum, count, &buckets, None,
            )?;
    }
    Ok(())
}

fn group_labels(m: &GroupMetrics) -> Labels<'_> {
    vec![("group", m.group.as_str())]
}

impl Collector for NodeCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let groups: Vec<Arc<GroupMetrics>> = lock(&self.0.groups).clone();
        let shards: Vec<Arc<ShardMetrics>> = lock(&self.0.shards).clone();
        let g = group_labels;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);

        let roles = groups.iter().flat_map(|m| {
            let current = load(&m.role);
            ROLES.iter().map(move |&(r, name)| {
                let mut l = g(m);
                l.push(("role", name));
                (l, i64::from(role_code(r) == current))
            })
        });
        gauge_family(
            &mut e,
            "dledger_group_role",
            "1 for the group's current Raft role on this node",
            roles,
        )?;
        gauge_family(
            &mut e,
            "dledger_group_term",
            "current Raft term",
            groups.iter().map(|m| (g(m), load(&m.term))),
        )?;
        gauge_family(
            &mut e,
            "dledger_group_commit_index",
            "highest committed index",
            groups.iter().map(|m| (g(m), load(&m.commit_index))),
        )?;
        gauge_family(
            &mut e,
            "dledger_group_ledger_end_index",
            "last index in this node's log",
            groups.iter().map(|m| (g(m), load(&m.ledger_end))),
        )?;
        let lags = groups.iter().flat_map(|m| {
            m.follower_lag.iter().filter_map(move |(_, name, lag)| {
                let v = lag.load(Ordering::Relaxed);
                (v >= 0).then(|| {
                    let mut l = g(m);
                    l.push(("follower", name.as_str()));
                    (l, v)
                })
            })
        });
        gauge_family(
            &mut e,
            "dledger_group_follower_lag_entries",
            "leader only: entries a follower is behind the leader's ledger end",
            lags,
        )?;
        gauge_family(
            &mut e,
            "dledger_group_append_rate_entries_per_second",
            "growth of the ledger end over the last sample interval",
            groups
                .iter()
                .map(|m| (g(m), f64::from_bits(load(&m.append_rate)))),
        )?;
        gauge_family(
            &mut e,
            "dledger_group_pending_appends",
            "client appends waiting for their quorum",
            groups.iter().map(|m| (g(m), load(&m.pending_appends))),
        )?;
        gauge_family(
            &mut e,
            "dledger_group_inbox_messages",
            "Raft messages waiting for the group's driver",
            groups.iter().map(|m| (g(m), load(&m.inbox_messages))),
        )?;
        histogram_family(
            &mut e,
            "dledger_group_append_latency_seconds",
            "leader: client append received to answered committed",
            1e9,
            groups.iter().map(|m| (g(m), &m.append_latency_ns)),
        )?;
        histogram_family(
            &mut e,
            "dledger_group_flush_latency_seconds",
            "log write issued to durable (the group-commit flush covering it)",
            1e9,
            groups.iter().map(|m| (g(m), &m.flush_latency_ns)),
        )?;
        histogram_family(
            &mut e,
            "dledger_group_append_batch_entries",
            "bodies per acknowledged client append",
            1.0,
            groups.iter().map(|m| (g(m), &m.append_batch_entries)),
        )?;

        let shard_ids: Vec<String> = shards.iter().map(|s| s.shard.to_string()).collect();
        let s = |i: usize| -> Labels<'_> { vec![("shard", shard_ids[i].as_str())] };
        gauge_family(
            &mut e,
            "dledger_shard_client_connections",
            "open client connections",
            shards
                .iter()
                .enumerate()
                .map(|(i, m)| (s(i), load(&m.client_connections))),
        )?;
        gauge_family(
            &mut e,
            "dledger_shard_forwarded_requests",
            "client requests waiting for another shard",
            shards
                .iter()
                .enumerate()
                .map(|(i, m)| (s(i), load(&m.forwarded_requests))),
        )?;
        let peer_queues = shards.iter().enumerate().flat_map(|(i, m)| {
            m.peer_queue_items.iter().map(move |(_, name, q)| {
                let mut l = s(i);
                l.push(("peer", name.as_str()));
                (l, q.load(Ordering::Relaxed))
            })
        });
        gauge_family(
            &mut e,
            "dledger_shard_peer_queue_items",
            "messages queued for a peer connection",
            peer_queues,
        )?;
        counter_family(
            &mut e,
            "dledger_shard_shared_flush_rounds",
            "shared device flushes (one fdatasync each) run for the shard's logs",
            shards
                .iter()
                .enumerate()
                .map(|(i, m)| (s(i), load(&m.shared_flush_rounds))),
        )?;
        counter_family(
            &mut e,
            "dledger_shard_shared_flush_joins",
            "log flush rounds served by a shared device flush (joins / rounds = logs per fdatasync)",
            shards
                .iter()
                .enumerate()
                .map(|(i, m)| (s(i), load(&m.shared_flush_joins))),
        )?;
        counter_family(
            &mut e,
            "dledger_shard_solo_dsync_writes",
            "log write rounds made durable by one O_DSYNC write (diskSyncMethod=ADAPTIVE, a log alone on the device)",
            shards
                .iter()
                .enumerate()
                .map(|(i, m)| (s(i), load(&m.solo_dsync_writes))),
        )?;
        counter_family(
            &mut e,
            "dledger_shard_executor_busy_seconds",
            "time the shard's executor spent running tasks and polling I/O (not sleeping)",
            shards
                .iter()
                .enumerate()
                .map(|(i, m)| (s(i), load(&m.executor_busy_ns) as f64 / 1e9)),
        )?;
        counter_family(
            &mut e,
            "dledger_shard_executor_tasks",
            "tasks the shard's executor ran",
            shards
                .iter()
                .enumerate()
                .map(|(i, m)| (s(i), load(&m.executor_tasks))),
        )?;
        counter_family(
            &mut e,
            "dledger_shard_executor_queue_runs",
            "scheduler picks of the shard's executor: one per task-queue run plus one per pass of its loop",
            shards
                .iter()
                .enumerate()
                .map(|(i, m)| (s(i), load(&m.executor_queue_runs))),
        )?;
        Ok(())
    }
}

/// The exposition text of `node` (OpenMetrics, ends with `# EOF`).
pub fn render(node: &Arc<NodeMetrics>) -> Result<String, String> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(NodeCollector(node.clone())));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .map_err(|e| format!("encoding metrics: {e}"))?;
    Ok(out)
}

// ---- HTTP ----

/// Starts the metrics HTTP listener on the client host and `metricsPort` when the port is
/// configured. A plain thread: it inherits the caller's signal mask and ends with the
/// process; requests are served one at a time, each bounded in size and time.
pub fn spawn_http(cfg: &NodeConfig, node: Arc<NodeMetrics>) -> Result<Option<SocketAddr>, String> {
    let Some(port) = cfg.metrics_port else {
        return Ok(None);
    };
    let host = cfg.client_listen.host.as_str();
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("metricsPort: cannot resolve {host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("metricsPort: {host}:{port} resolves to no address"))?;
    let listener = TcpListener::bind(addr)
        .map_err(|e| format!("metricsPort: cannot listen on {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("metricsPort: {e}"))?;
    std::thread::Builder::new()
        .name("dledger-metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => {
                        if let Err(e) = serve_one(stream, &node) {
                            tracing::debug!("metrics request: {e}");
                        }
                    }
                    Err(e) => tracing::debug!("metrics accept: {e}"),
                }
            }
        })
        .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
    tracing::info!(%bound, "metrics served at /metrics");
    Ok(Some(bound))
}

fn serve_one(mut stream: TcpStream, node: &Arc<NodeMetrics>) -> Result<(), String> {
    let timeout = Some(Duration::from_millis(HTTP_IO_TIMEOUT_MS));
    stream
        .set_read_timeout(timeout)
        .and_then(|()| stream.set_write_timeout(timeout))
        .map_err(|e| e.to_string())?;
    let request = read_head(&mut stream)?;
    let (status, content_type, body) = match parse_request_line(&request) {
        Ok("/metrics") => match render(node) {
            Ok(text) => (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            ),
            Err(e) => ("500 Internal Server Error", "text/plain", e),
        },
        Ok(_) => (
            "404 Not Found",
            "text/plain",
            "only /metrics is served\n".into(),
        ),
        Err(status) => (status, "text/plain", format!("{status}\n")),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| e.to_string())
}

/// Reads up to the blank line that ends an HTTP request head, at most `REQUEST_BYTES_MAX`.
fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() >= REQUEST_BYTES_MAX {
            return Err(format!("request head over {REQUEST_BYTES_MAX} bytes"));
        }
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            break; // a client that sent a bare request line and closed its side
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf)
}

/// The path of a `GET` request, or the status line to refuse it with.
fn parse_request_line(head: &[u8]) -> Result<&str, &'static str> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line)
        .map_err(|_| "400 Bad Request")?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err("400 Bad Request");
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return Err("400 Bad Request");
    }
    if method != "GET" {
        return Err("405 Method Not Allowed");
    }
    // A query string (e.g. Prometheus' own parameters) does not change the answer.
    Ok(target.split('?').next().unwrap_or(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_upper_bounds_inclusive() {
        let h = AtomicHistogram::new(&[1, 2, 4]);
        for v in [0, 1, 2, 3, 4, 5, 100] {
            h.observe(v);
        }
        let (sum, count, buckets) = h.snapshot(1.0);
        assert_eq!(count, 7);
        assert_eq!(sum, 115.0);
        let counts: Vec<u64> = buckets.iter().map(|b| b.1).collect();
        assert_eq!(counts, [2, 1, 2, 2]);
        assert_eq!(buckets.last().map(|b| b.0), Some(f64::MAX));
    }

    #[test]
    fn request_lines_are_checked() {
        assert_eq!(
            parse_request_line(b"GET /metrics HTTP/1.1\r\n\r\n"),
            Ok("/metrics")
        );
        assert_eq!(
            parse_request_line(b"GET /metrics?x=1 HTTP/1.0\r\n"),
            Ok("/metrics")
        );
        assert_eq!(
            parse_request_line(b"POST /metrics HTTP/1.1\r\n"),
            Err("405 Method Not Allowed")
        );
        assert_eq!(
            parse_request_line(b"GET /metrics\r\n"),
            Err("400 Bad Request")
        );
        assert_eq!(parse_request_line(b"\xff\xfe"), Err("400 Bad Request"));
        assert_eq!(parse_request_line(b""), Err("400 Bad Request"));
    }

    #[test]
    fn exposition_names_every_family_with_labels() {
        let node = Arc::new(NodeMetrics::default());
        let cfg = dledger::config::parse_file_contents(
            "t.conf",
            "brokerClusterName=C\nbrokerName=G\nlistenPort=30911\nstorePathRootDir=/tmp/x\n\
             enableDLegerCommitLog=true\ndLegerGroup=G\n\
             dLegerPeers=n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913\n\
             dLegerSelfId=n0\n",
        )
        .expect("a valid config")
        .config;
        let gm = Arc::new(GroupMetrics::new(&cfg.groups[0], &cfg));
        gm.append_acked(3, Instant::now());
        gm.flush_latency_ns.observe(300_000);
        gm.role.store(role_code(Role::Leader), Ordering::Relaxed);
        gm.follower_lag[0].2.store(7, Ordering::Relaxed);
        lock(&node.groups).push(gm);
        lock(&node.shards).push(Arc::new(ShardMetrics {
            shard: 0,
            client_connections: AtomicU64::new(2),
            forwarded_requests: AtomicU64::new(0),
            peer_queue_items: Box::new([]),
            shared_flush_rounds: AtomicU64::new(4),
            shared_flush_joins: AtomicU64::new(40),
            solo_dsync_writes: AtomicU64::new(9),
            executor_busy_ns: AtomicU64::new(1_500_000_000),
            executor_tasks: AtomicU64::new(77),
            executor_queue_runs: AtomicU64::new(12),
        }));
        let text = render(&node).expect("encodes");
        for want in [
            "dledger_group_role{group=\"G\",role=\"leader\"} 1",
            "dledger_group_role{group=\"G\",role=\"follower\"} 0",
            "dledger_group_follower_lag_entries{group=\"G\",follower=\"n1\"} 7",
            "dledger_group_append_batch_entries_bucket{le=\"4.0\",group=\"G\"} 1",
            "dledger_group_append_latency_seconds_count{group=\"G\"} 1",
            "dledger_group_flush_latency_seconds_bucket{le=\"0.0005\",group=\"G\"} 1",
            "dledger_group_flush_latency_seconds_sum{group=\"G\"} 0.0003",
            "# TYPE dledger_shard_peer_queue_items gauge",
            "dledger_shard_client_connections{shard=\"0\"} 2",
            "# TYPE dledger_shard_shared_flush_rounds counter",
            "dledger_shard_shared_flush_rounds_total{shard=\"0\"} 4",
            "dledger_shard_shared_flush_joins_total{shard=\"0\"} 40",
            "dledger_shard_solo_dsync_writes_total{shard=\"0\"} 9",
            "dledger_shard_executor_busy_seconds_total{shard=\"0\"} 1.5",
            "dledger_shard_executor_tasks_total{shard=\"0\"} 77",
            "dledger_shard_executor_queue_runs_total{shard=\"0\"} 12",
            "# EOF",
        ] {
            assert!(text.contains(want), "{want:?} missing from:\n{text}");
        }
        // n2's lag is unknown (-1): no series rather than a made-up value.
        assert!(!text.contains("follower=\"n2\""), "{text}");
    }
}

//! The simulation: state of every node and group, the event loop, and `run_seed`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::checker::GroupChecker;
use super::client::{Client, Pending};
use super::clock::{Scheduler, SimMs};
use super::disk::SimDisk;
use super::keepalive::{PeerView, QuietPhase};
use super::net::Network;
use super::options::SimOptions;
use super::profile::{self, ClientTuning, FaultProfile, RaftTuning};
use super::report::{SeedReport, SeedStats, Violation};
use crate::raft::{Config, Index, Message, Node, NodeId, Outbox, Term};

/// A message in flight with the entry bodies the driver attached.
#[derive(Debug)]
pub(super) struct Packet {
    pub from: usize,
    pub group: usize,
    pub msg: Message,
    /// Bodies of `prev_index+1 ..= prev_index+count` for an `Append`, else empty.
    pub bodies: Vec<Bytes>,
}

#[derive(Debug)]
pub(super) enum Ev {
    Tick {
        node: usize,
    },
    Deliver(Box<Packet>),
    SyncDone(SyncDone),
    Client {
        client: usize,
    },
    Fault,
    /// Leader churn: take `node` down or cut it off if it still leads `group` in `term`.
    Churn {
        node: usize,
        group: usize,
        term: Term,
    },
    HealCut {
        id: u64,
    },
    Restart {
        node: usize,
        /// The crash this restart ends (a restart of an earlier crash is stale).
        crash: u32,
    },
    RestartGroup {
        node: usize,
        group: usize,
    },
    Heal,
    Deadline,
    /// `node` evaluates its view of its peers' liveness.
    Keepalive {
        node: usize,
    },
    QuietCheck,
}

/// A sync of one group's log on one node that completes later.
#[derive(Debug)]
pub(super) struct SyncDone {
    pub node: usize,
    pub group: usize,
    pub incarnation: u32,
    /// Covers every write made before it was issued.
    pub ticket: u64,
    /// (last index, its term) when the sync was issued.
    pub issued: (Index, Term),
}

#[derive(Debug)]
pub(super) struct NodeState {
    pub up: bool,
    /// The node processes nothing before this time.
    pub paused_until: SimMs,
    /// This node's tick length (clocks drift a little between nodes).
    pub tick_ms: SimMs,
    /// Crashes so far (a restart event names the crash it ends).
    pub crashes: u32,
}

/// One group on one node: the raft node and its storage.
#[derive(Debug, Default)]
pub(super) struct Replica {
    pub raft: Option<Node>,
    pub disk: SimDisk,
    /// Bumped on every crash; events of an older incarnation are stale.
    pub incarnation: u32,
    /// Commit index seen in this incarnation (never goes back).
    pub last_commit: Index,
    /// Highest commit index over all incarnations.
    pub max_commit: Index,
    /// Proposals the core accepted whose `Proposed` write has not landed yet.
    pub proposed: std::collections::BTreeMap<Index, (Term, Bytes)>,
    /// Proposals waiting for their acknowledgement.
    pub pending: Vec<Pending>,
}

/// The whole simulated cluster of one seed.
#[derive(Debug)]
pub struct Sim {
    pub(super) opts: SimOptions,
    pub(super) rng: Pcg64Mcg,
    pub(super) sched: Scheduler<Ev>,
    pub(super) net: Network,
    pub(super) faults: FaultProfile,
    pub(super) tuning: RaftTuning,
    pub(super) client_tuning: ClientTuning,
    pub(super) nodes: Vec<NodeState>,
    /// `replicas[node * groups + group]`.
    pub(super) replicas: Vec<Replica>,
    pub(super) checkers: Vec<GroupChecker>,
    pub(super) clients: Vec<Client>,
    pub(super) preferred: Vec<Option<NodeId>>,
    pub(super) outbox: Outbox,
    pub(super) stats: SeedStats,
    pub(super) heal_ms: SimMs,
    pub(super) healed: bool,
    /// Per group: a proposal made after healing was committed.
    pub(super) live: Vec<bool>,
    /// Per group: (first index, term) of proposals accepted after healing.
    pub(super) post_heal: Vec<Vec<(Index, Term)>>,
    /// Per group: committed length at the previous liveness check.
    pub(super) progress_mark: Vec<(Index, Option<(Term, Index)>)>,
    /// `views[at * nodes + peer]`: what `at` believes of `peer`'s liveness.
    pub(super) views: Vec<PeerView>,
    /// A peer not heard from for this long turns down.
    pub(super) liveness_timeout_ms: SimMs,
    /// Tick quiescent nodes anyway (checking it is a no-op) instead of skipping them.
    pub(super) tick_quiescent: bool,
    pub(super) clients_stopped: bool,
    pub(super) quiet: QuietPhase,
}

impl Sim {
    pub fn new(opts: &SimOptions, seed: u64) -> Sim {
        assert!(
            opts.nodes >= 1 && opts.nodes <= crate::raft::MAX_PEERS,
            "nodes out of range"
        );
        assert!(opts.groups >= 1, "at least one group");
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let tick_ms = opts.tick_ms.max(2);
        let faults = profile::draw_faults(&mut rng, tick_ms);
        let tuning = profile::draw_raft(&mut rng);
        let client_tuning = profile::draw_clients(&mut rng, tick_ms);
        let nodes = (0..opts.nodes)
            .map(|_| NodeState {
                up: true,
                paused_until: 0,
                tick_ms: rng.random_range(tick_ms - tick_ms / 10..=tick_ms + tick_ms / 10),
                crashes: 0,
            })
            .collect();
        let preferred = (0..opts.groups)
            .map(|_| {
                (tuning.preferred_leader_prob > 0.0
                    && rng.random_bool(tuning.preferred_leader_prob))
                .then(|| rng.random_range(0..opts.nodes) as NodeId)
            })
            .collect();
        let mut clients = Vec::new();
        for g in 0..opts.groups {
            for c in 0..client_tuning.clients_per_group {
                clients.push(Client::new(g, c, rng.random_range(0..opts.nodes)));
            }
        }
        let net = Network::new(opts.nodes, faults.link.clone());
        let keepalive_ms = SimMs::from(tuning.heartbeat_interval_ticks) * tick_ms;
        let liveness_timeout_ms = keepalive_ms * rng.random_range(2..=4);
        let tick_quiescent = rng.random_bool(0.3);
        Sim {
            opts: SimOptions {
                tick_ms,
                ..opts.clone()
            },
            rng,
            sched: Scheduler::default(),
            net,
            faults,
            tuning,
            client_tuning,
            nodes,
            replicas: (0..opts.nodes * opts.groups)
                .map(|_| Replica::default())
                .collect(),
            checkers: (0..opts.groups)
                .map(|g| GroupChecker::new(g, opts.nodes))
                .collect(),
            clients,
            preferred,
            outbox: Outbox::default(),
            stats: SeedStats::default(),
            heal_ms: SimMs::from(opts.fault_ticks) * tick_ms,
            healed: false,
            live: vec![false; opts.groups],
            post_heal: vec![Vec::new(); opts.groups],
            progress_mark: vec![(0, None); opts.groups],
            views: vec![PeerView::default(); opts.nodes * opts.nodes],
            liveness_timeout_ms,
            tick_quiescent,
            clients_stopped: false,
            quiet: QuietPhase::Off,
        }
    }

    pub(super) fn idx(&self, node: usize, group: usize) -> usize {
        node * self.opts.groups + group
    }

    pub(super) fn trace(&self, what: impl FnOnce() -> String) {
        if self.opts.verbose {
            eprintln!("[{:>7}ms] {}", self.sched.now_ms(), what());
        }
    }

    pub(super) fn config(&self, node: usize, group: usize) -> Config {
        let t = &self.tuning;
        Config {
            id: node as NodeId,
            voters: (0..self.opts.nodes as NodeId).collect(),
            election_timeout_min_ticks: t.election_timeout_min_ticks,
            election_timeout_max_ticks: t.election_timeout_max_ticks,
            heartbeat_interval_ticks: t.heartbeat_interval_ticks,
            max_inflight_appends: t.max_inflight_appends,
            max_batch_entries: t.max_batch_entries,
            max_uncommitted_entries: t.max_uncommitted_entries,
            check_quorum: t.check_quorum,
            preferred_leader: self.preferred[group],
            #[cfg(feature = "planted-bugs")]
            planted: self.opts.planted,
        }
    }

    /// Run to the end: the fault period, healing, and the liveness window.
    pub fn run(&mut self) -> Result<(), Violation> {
        for n in 0..self.opts.nodes {
            for g in 0..self.opts.groups {
                self.start_replica(n, g)?;
            }
            let first_tick = self.rng.random_range(0..self.nodes[n].tick_ms);
            self.sched.after(first_tick, Ev::Tick { node: n });
        }
        for c in 0..self.clients.len() {
            let d = self.rng.random_range(0..=self.client_tuning.gap_max_ms);
            self.sched.after(d, Ev::Client { client: c });
        }
        self.schedule_keepalives();
        let gap = self.fault_gap();
        self.sched.after(gap, Ev::Fault);
        self.sched.at(self.heal_ms, Ev::Heal);
        while let Some(ev) = self.sched.pop() {
            self.stats.events += 1;
            self.handle(ev)?;
            let live = self.healed && self.live.iter().all(|&l| l);
            let off = matches!(self.quiet, QuietPhase::Off);
            if (off && live && !self.begin_quiet_phase()) || matches!(self.quiet, QuietPhase::Done)
            {
                break;
            }
        }
        self.final_check()
    }

    fn handle(&mut self, ev: Ev) -> Result<(), Violation> {
        match ev {
            Ev::Tick { node } => self.on_tick(node),
            Ev::Deliver(p) => self.on_deliver(p),
            Ev::SyncDone(s) => self.on_sync_done(s),
            Ev::Client { client } => self.on_client(client),
            Ev::Fault => self.on_fault(),
            Ev::Churn { node, group, term } => self.on_churn(node, group, term),
            Ev::HealCut { id } => {
                self.net.heal_cut(id);
                self.trace(|| format!("heal cut {id}"));
                Ok(())
            }
            Ev::Restart { node, crash } => {
                if crash == self.nodes[node].crashes {
                    self.restart_node(node)?;
                }
                Ok(())
            }
            Ev::RestartGroup { node, group } => {
                if self.nodes[node].up && self.replicas[self.idx(node, group)].raft.is_none() {
                    self.start_replica(node, group)?;
                }
                Ok(())
            }
            Ev::Heal => self.on_heal(),
            Ev::Deadline => self.on_deadline(),
            Ev::Keepalive { node } => self.on_keepalive(node),
            Ev::QuietCheck => self.on_quiet_check(),
        }
    }

    fn on_tick(&mut self, node: usize) -> Result<(), Violation> {
        let st = &self.nodes[node];
        let next = self.sched.now_ms().max(st.paused_until) + st.tick_ms;
        self.sched.at(next, Ev::Tick { node });
        if !st.up || st.paused_until > self.sched.now_ms() {
            return Ok(());
        }
        for g in 0..self.opts.groups {
            let quiescent = self.replicas[self.idx(node, g)]
                .raft
                .as_ref()
                .is_some_and(|n| n.is_quiescent());
            if !quiescent {
                self.call(node, g, None, |n, out| n.tick(out))?;
            } else if self.tick_quiescent {
                self.tick_quiescent_node(node, g)?;
            }
        }
        Ok(())
    }

    fn on_deliver(&mut self, p: Box<Packet>) -> Result<(), Violation> {
        let to = p.msg.to as usize;
        if !self.nodes[to].up || self.net.is_blocked(p.from, to) {
            return Ok(());
        }
        let until = self.nodes[to].paused_until;
        if until > self.sched.now_ms() {
            self.sched.at(until, Ev::Deliver(p));
            return Ok(());
        }
        let msg = p.msg;
        self.trace(|| format!("g{} deliver {msg:?} (+{} bodies)", p.group, p.bodies.len()));
        self.call(to, p.group, Some(&p), |n, out| n.step(msg, out))
    }

    fn on_sync_done(&mut self, s: SyncDone) -> Result<(), Violation> {
        let (node, group) = (s.node, s.group);
        let i = self.idx(node, group);
        if !self.nodes[node].up
            || self.replicas[i].incarnation != s.incarnation
            || self.replicas[i].raft.is_none()
        {
            return Ok(());
        }
        let until = self.nodes[node].paused_until;
        if until > self.sched.now_ms() {
            self.sched.at(until, Ev::SyncDone(s));
            return Ok(());
        }
        if self.faults.disk_error_prob > 0.0 && self.rng.random_bool(self.faults.disk_error_prob) {
            return self.disk_error(node, group);
        }
        let durable = self.replicas[i].disk.complete_sync(s.ticket);
        let report = if self.faults.naive_persist_reports {
            // What a simple driver reports: the log end when the sync was issued, even if
            // a truncation has since replaced it (the core must see it is stale).
            Some(s.issued).filter(|&(index, _)| index > 0)
        } else {
            durable
        };
        if let Some((index, term)) = report {
            self.call(node, group, None, |n, out| n.persisted(index, term, out))?;
        }
        Ok(())
    }

    fn on_client(&mut self, ci: usize) -> Result<(), Violation> {
        if self.clients_stopped {
            return Ok(());
        }
        let ct = &self.client_tuning;
        let mut gap = self.rng.random_range(ct.gap_min_ms..=ct.gap_max_ms);
        if ct.pause_prob > 0.0 && self.rng.random_bool(ct.pause_prob) {
            gap += self.rng.random_range(0..=ct.pause_max_ms);
        }
        self.sched.after(gap, Ev::Client { client: ci });
        if self.clients[ci].outstanding >= self.client_tuning.window {
            return Ok(());
        }
        let (n, g) = (self.clients[ci].target, self.clients[ci].group);
        let reachable = self.nodes[n].up
            && self.nodes[n].paused_until <= self.sched.now_ms()
            && self.replicas[self.idx(n, g)].raft.is_some();
        if !reachable {
            self.clients[ci].target = self.rng.random_range(0..self.opts.nodes);
            return Ok(());
        }
        let count = self
            .rng
            .random_range(1..=self.client_tuning.max_bodies_per_proposal);
        let pad = self.client_tuning.body_pad_max_bytes;
        let bodies = self.clients[ci].make_bodies(count, pad, &mut self.rng);
        match self.propose(n, g, &bodies)? {
            Ok((first, term)) => {
                self.stats.proposals += 1;
                self.clients[ci].outstanding += 1;
                if self.healed {
                    self.post_heal[g].push((first, term));
                }
                let i = self.idx(n, g);
                let r = &mut self.replicas[i];
                r.pending.push(Pending {
                    client: ci,
                    incarnation: r.incarnation,
                    first,
                    term,
                    bodies,
                    proposed_ms: self.sched.now_ms(),
                });
                // A proposal can commit within the same call only in a one-node group.
                self.settle_pending(n, g)
            }
            Err(crate::raft::ProposeError::NotLeader { leader }) => {
                let next = match leader {
                    Some(l) if l as usize != n && (l as usize) < self.opts.nodes => l as usize,
                    _ => self.rng.random_range(0..self.opts.nodes),
                };
                self.clients[ci].target = next;
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }

    fn stats(&mut self) -> SeedStats {
        let mut s = self.stats.clone();
        s.committed = self.checkers.iter().map(|c| c.committed_len()).sum();
        s.sim_ms = self.sched.now_ms();
        s
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Run one seed to completion. A panic in the core (or the driver) is reported as a
/// violation of kind `panic`, so it never takes the runner down.
pub fn run_seed(opts: &SimOptions, seed: u64) -> SeedReport {
    let mut sim = Sim::new(opts, seed);
    let outcome = catch_unwind(AssertUnwindSafe(|| sim.run()));
    let now = sim.sched.now_ms();
    let violation = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(mut v)) => {
            v.at_ms = now;
            Some(v)
        }
        Err(payload) => Some(Violation {
            at_ms: now,
            kind: "panic",
            detail: panic_message(payload.as_ref()),
        }),
    };
    SeedReport {
        seed,
        violation,
        stats: sim.stats(),
    }
}

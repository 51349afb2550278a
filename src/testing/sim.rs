//! The simulation: state of every node and group, the event loop, and `run_seed`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::checker::GroupChecker;
use super::client::{Client, Pending};
use super::clock::{Scheduler, SimMs};
use super::disk::SimDisk;
use super::net::Network;
use super::profile::{self, ClientTuning, FaultProfile, RaftTuning};
use super::report::{SeedReport, SeedStats, Violation};
#[cfg(feature = "planted-bugs")]
use crate::raft::PlantedBug;
use crate::raft::{Config, Index, Message, Node, NodeId, Outbox, Term};

/// What every seed of a run shares (the seed picks everything else).
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Nodes per group (3 or 5 in practice; every node hosts every group).
    pub nodes: usize,
    /// Raft groups hosted on every node.
    pub groups: usize,
    /// Length of the fault period, in ticks; then every fault heals.
    pub fault_ticks: u32,
    /// After healing, every group must keep its commit index moving (at least once per
    /// this many ticks) until a proposal made after healing commits, and get there within
    /// [`LIVENESS_CAP_FACTOR`] times this many ticks.
    pub liveness_ticks: u32,
    /// Simulated milliseconds per raft tick.
    pub tick_ms: SimMs,
    /// Print a trace of the run to stderr.
    pub verbose: bool,
    #[cfg(feature = "planted-bugs")]
    pub planted: Option<PlantedBug>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            nodes: 3,
            groups: 2,
            fault_ticks: 1000,
            liveness_ticks: 300,
            tick_ms: 10,
            verbose: false,
            #[cfg(feature = "planted-bugs")]
            planted: None,
        }
    }
}

/// The hard cap on the post-heal window, in units of `liveness_ticks`: a slow but moving
/// catch-up (tiny batches, one append in flight) may need several windows.
pub const LIVENESS_CAP_FACTOR: u64 = 10;

/// Names accepted by `--plant`.
#[cfg(feature = "planted-bugs")]
pub const PLANTED_BUGS: [(&str, PlantedBug); 3] = [
    ("vote-ignores-log", PlantedBug::VoteIgnoresLog),
    ("commit-old-term", PlantedBug::CommitOldTerm),
    ("ack-before-persist", PlantedBug::AckBeforePersist),
];

#[cfg(feature = "planted-bugs")]
pub fn parse_planted(name: &str) -> Result<PlantedBug, String> {
    PLANTED_BUGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
        .ok_or_else(|| {
            let names: Vec<&str> = PLANTED_BUGS.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown planted bug {name:?}; expected one of {}",
                names.join(", ")
            )
        })
}

impl SimOptions {
    /// The command that replays `seed` with these options.
    pub fn replay_command(&self, seed: u64) -> String {
        let d = SimOptions::default();
        let mut cmd = String::from("cargo run --release -p dledger --example sim");
        #[cfg(feature = "planted-bugs")]
        if self.planted.is_some() {
            cmd.push_str(" --features planted-bugs");
        }
        cmd.push_str(&format!(
            " -- --seeds 1 --seed {seed} --nodes {} --groups {}",
            self.nodes, self.groups
        ));
        if self.fault_ticks != d.fault_ticks {
            cmd.push_str(&format!(" --ticks {}", self.fault_ticks));
        }
        if self.liveness_ticks != d.liveness_ticks {
            cmd.push_str(&format!(" --liveness-ticks {}", self.liveness_ticks));
        }
        #[cfg(feature = "planted-bugs")]
        if let Some(bug) = self.planted {
            if let Some((name, _)) = PLANTED_BUGS.iter().find(|(_, b)| *b == bug) {
                cmd.push_str(&format!(" --plant {name}"));
            }
        }
        cmd
    }
}

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
    },
    RestartGroup {
        node: usize,
        group: usize,
    },
    Heal,
    Deadline,
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
    pub(super) progress_mark: Vec<Index>,
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
            progress_mark: vec![0; opts.groups],
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
        let gap = self.fault_gap();
        self.sched.after(gap, Ev::Fault);
        self.sched.at(self.heal_ms, Ev::Heal);
        while let Some(ev) = self.sched.pop() {
            self.stats.events += 1;
            self.handle(ev)?;
            if self.healed && self.live.iter().all(|&l| l) {
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
            Ev::Restart { node } => self.restart_node(node),
            Ev::RestartGroup { node, group } => {
                if self.nodes[node].up && self.replicas[self.idx(node, group)].raft.is_none() {
                    self.start_replica(node, group)?;
                }
                Ok(())
            }
            Ev::Heal => self.on_heal(),
            Ev::Deadline => self.on_deadline(),
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
            self.call(node, g, None, |n, out| n.tick(out))?;
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
        let ct = &self.client_tuning;
        let gap = self.rng.random_range(ct.gap_min_ms..=ct.gap_max_ms);
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

    /// After healing: did a proposal made since then commit in `group`?
    pub(super) fn update_live(&mut self, group: usize) {
        if !self.healed || self.live[group] {
            return;
        }
        let c = &self.checkers[group];
        let committed = c.committed_len();
        // A proposal whose index committed with another term was replaced: forget it.
        self.post_heal[group].retain(|&(i, t)| i > committed || c.committed_term(i) == Some(t));
        if self.post_heal[group].iter().any(|&(i, _)| i <= committed) {
            self.live[group] = true;
        }
    }

    /// Periodic liveness check after healing: every group still waiting for a post-heal
    /// commit must have moved its commit index since the previous check, and the whole
    /// wait is capped.
    fn on_deadline(&mut self) -> Result<(), Violation> {
        let window_ms = SimMs::from(self.opts.liveness_ticks) * self.opts.tick_ms;
        let capped = self.sched.now_ms() >= self.heal_ms + LIVENESS_CAP_FACTOR * window_ms;
        let mut stuck = Vec::new();
        for g in 0..self.opts.groups {
            let len = self.checkers[g].committed_len();
            if !self.live[g] && (capped || len == self.progress_mark[g]) {
                stuck.push(g);
            }
            self.progress_mark[g] = len;
        }
        if stuck.is_empty() {
            self.sched.after(window_ms, Ev::Deadline);
            return Ok(());
        }
        let mut detail = if capped {
            format!(
                "{} ticks after healing, group(s) {stuck:?} have not committed a proposal made after healing;",
                LIVENESS_CAP_FACTOR * u64::from(self.opts.liveness_ticks)
            )
        } else {
            format!(
                "after healing, group(s) {stuck:?} committed nothing for {} ticks and no proposal made after healing committed;",
                self.opts.liveness_ticks
            )
        };
        for &g in &stuck {
            for n in 0..self.opts.nodes {
                let r = &self.replicas[self.idx(n, g)];
                if let Some(node) = &r.raft {
                    detail.push_str(&format!(
                        " g{g}/n{n}: {:?} term {} leader {:?} commit {} last {};",
                        node.role(),
                        node.term(),
                        node.leader(),
                        node.commit_index(),
                        node.last_index()
                    ));
                } else {
                    detail.push_str(&format!(" g{g}/n{n}: down;"));
                }
            }
        }
        Err(Violation::new("liveness", detail))
    }

    fn final_check(&mut self) -> Result<(), Violation> {
        for g in 0..self.opts.groups {
            for n in 0..self.opts.nodes {
                let r = &self.replicas[self.idx(n, g)];
                if let Some(node) = &r.raft {
                    let leader = (node.role() == crate::raft::Role::Leader).then(|| node.term());
                    self.checkers[g].final_check(
                        n as NodeId,
                        &r.disk,
                        node.commit_index(),
                        leader,
                    )?;
                }
            }
        }
        Ok(())
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

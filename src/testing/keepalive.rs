//! Node-level liveness as the server's transport provides it, and the quiet phase that
//! checks failover of quiesced groups.
//!
//! # Liveness model
//! Every node keeps a view of every other node: up or down. Each node evaluates its
//! views every keepalive interval (the heartbeat interval): a peer that is running, not
//! paused, and reachable both ways (a TCP connection needs both directions) counts as
//! heard now; one not heard for `liveness_timeout_ms` turns down. A crash turns the
//! crashed node down at every other node at once (its connections reset), and a
//! restarted node starts with every peer down until it hears them. Every transition is
//! reported to each group on the viewing node with [`crate::raft::Node::peer_liveness`],
//! and a replica that (re)starts is told the current view.
//!
//! # Quiet phase
//! Once every group committed a proposal made after healing, clients stop. Every group
//! must then go quiescent on every node within a bound; then the leader of group 0 is
//! crashed or cut off, and every group it led must elect a new leader within
//! `liveness_timeout + QUIET_FAILOVER_ELECTIONS × election_timeout_max` (plus delivery
//! slack): quiesced followers learn of the loss only through liveness.

use rand::Rng;

use super::clock::SimMs;
use super::report::Violation;
use super::sim::{Ev, Sim};
use crate::raft::{NodeId, Role, Term};

/// Election rounds (a split vote costs one) the failover of a quiesced group may take.
pub const QUIET_FAILOVER_ELECTIONS: u64 = 6;
/// Election timeouts within which an idle healed cluster must have gone quiescent
/// (covers a hand-over to a preferred leader first).
pub const QUIESCE_WITHIN_ELECTIONS: u64 = 40;

/// One node's view of another.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PeerView {
    pub alive: bool,
    pub heard_ms: SimMs,
}

/// Where the quiet phase is.
#[derive(Clone, Debug, Default)]
pub(super) enum QuietPhase {
    /// Clients still run (or the phase does not apply).
    #[default]
    Off,
    /// Clients stopped; every group must go quiescent before `until`.
    Quiescing { until: SimMs },
    /// `victim` was taken down at `since`; these groups (with the victim's term) need a
    /// new leader before `until`.
    Failover {
        victim: usize,
        since: SimMs,
        until: SimMs,
        groups: Vec<(usize, Term)>,
    },
    /// Passed: the run may end.
    Done,
}

impl Sim {
    pub(super) fn view(&self, at: usize, peer: usize) -> PeerView {
        self.views[at * self.opts.nodes + peer]
    }

    fn keepalive_ms(&self) -> SimMs {
        SimMs::from(self.tuning.heartbeat_interval_ticks) * self.opts.tick_ms
    }

    pub(super) fn schedule_keepalives(&mut self) {
        for n in 0..self.opts.nodes {
            let first = self.rng.random_range(0..self.keepalive_ms());
            self.sched.after(first, Ev::Keepalive { node: n });
        }
    }

    /// `at` evaluates its view of every peer.
    pub(super) fn on_keepalive(&mut self, at: usize) -> Result<(), Violation> {
        let now = self.sched.now_ms();
        let period = self.keepalive_ms();
        self.sched.after(period, Ev::Keepalive { node: at });
        if !self.nodes[at].up || self.nodes[at].paused_until > now {
            return Ok(());
        }
        for peer in (0..self.opts.nodes).filter(|&p| p != at) {
            let p = &self.nodes[peer];
            let heard = p.up
                && p.paused_until <= now
                && !self.net.is_blocked(peer, at)
                && !self.net.is_blocked(at, peer);
            let i = at * self.opts.nodes + peer;
            if heard {
                self.views[i].heard_ms = now;
            }
            let alive = heard
                || (self.views[i].alive
                    && now.saturating_sub(self.views[i].heard_ms) <= self.liveness_timeout_ms);
            if alive != self.views[i].alive {
                self.set_view(at, peer, alive)?;
            }
        }
        Ok(())
    }

    /// `node` crashed: every other node sees its connections reset now, and the node
    /// itself will start with every peer down.
    pub(super) fn liveness_on_crash(&mut self, node: usize) -> Result<(), Violation> {
        for at in (0..self.opts.nodes).filter(|&a| a != node) {
            if self.view(at, node).alive {
                self.set_view(at, node, false)?;
            }
        }
        for peer in 0..self.opts.nodes {
            self.views[node * self.opts.nodes + peer] = PeerView::default();
        }
        Ok(())
    }

    fn set_view(&mut self, at: usize, peer: usize, alive: bool) -> Result<(), Violation> {
        self.views[at * self.opts.nodes + peer].alive = alive;
        self.trace(|| format!("n{at} sees n{peer} {}", if alive { "UP" } else { "DOWN" }));
        for g in 0..self.opts.groups {
            self.call(at, g, None, |n, out| {
                n.peer_liveness(peer as NodeId, alive, out)
            })?;
        }
        Ok(())
    }

    /// A replica that just started learns its node's current view.
    pub(super) fn tell_view(&mut self, node: usize, group: usize) -> Result<(), Violation> {
        for peer in (0..self.opts.nodes).filter(|&p| p != node) {
            if self.view(node, peer).alive {
                self.call(node, group, None, |n, out| {
                    n.peer_liveness(peer as NodeId, true, out)
                })?;
            }
        }
        Ok(())
    }

    // ---- the quiet phase ----

    fn election_max_ms(&self) -> SimMs {
        SimMs::from(self.tuning.election_timeout_max_ticks) * self.opts.tick_ms
    }

    /// Every group is live after healing: stop the clients and start the quiet phase.
    /// Returns false when the phase does not apply (the run ends).
    pub(super) fn begin_quiet_phase(&mut self) -> bool {
        if self.opts.nodes < 3 || !self.opts.quiet_phase {
            return false;
        }
        self.clients_stopped = true;
        let until = self.sched.now_ms() + QUIESCE_WITHIN_ELECTIONS * self.election_max_ms();
        self.quiet = QuietPhase::Quiescing { until };
        self.trace(|| "QUIET: clients stopped".to_string());
        self.sched.after(self.keepalive_ms(), Ev::QuietCheck);
        true
    }

    fn all_quiescent(&self) -> bool {
        self.replicas
            .iter()
            .all(|r| r.raft.as_ref().is_some_and(|n| n.is_quiescent()))
    }

    fn detail_of(&self, groups: impl Iterator<Item = usize>) -> String {
        let mut s = String::new();
        for g in groups {
            for n in 0..self.opts.nodes {
                match &self.replicas[self.idx(n, g)].raft {
                    Some(x) => s.push_str(&format!(
                        " g{g}/n{n}: {:?} term {} leader {:?} commit {} last {} quiescent {};",
                        x.role(),
                        x.term(),
                        x.leader(),
                        x.commit_index(),
                        x.last_index(),
                        x.is_quiescent()
                    )),
                    None => s.push_str(&format!(" g{g}/n{n}: down;")),
                }
            }
        }
        s
    }

    pub(super) fn on_quiet_check(&mut self) -> Result<(), Violation> {
        let now = self.sched.now_ms();
        match std::mem::take(&mut self.quiet) {
            QuietPhase::Quiescing { until } => {
                if self.all_quiescent() {
                    return self.take_down_a_quiesced_leader();
                }
                if now > until {
                    return Err(Violation::new(
                        "quiesce",
                        format!(
                            "with no client traffic, the groups did not all go quiescent within {} election timeouts;{}",
                            QUIESCE_WITHIN_ELECTIONS,
                            self.detail_of(0..self.opts.groups)
                        ),
                    ));
                }
                self.quiet = QuietPhase::Quiescing { until };
            }
            QuietPhase::Failover {
                victim,
                since,
                until,
                groups,
            } => {
                let pending: Vec<(usize, Term)> = groups
                    .into_iter()
                    .filter(|&(g, term)| {
                        !(0..self.opts.nodes).any(|n| {
                            n != victim
                                && self.replicas[self.idx(n, g)]
                                    .raft
                                    .as_ref()
                                    .is_some_and(|x| x.role() == Role::Leader && x.term() > term)
                        })
                    })
                    .collect();
                if pending.is_empty() {
                    self.stats.quiet_failover_ms = now - since;
                    self.trace(|| format!("QUIET: failover took {} ms", now - since));
                    self.quiet = QuietPhase::Done;
                    return Ok(());
                }
                if now > until {
                    return Err(Violation::new(
                        "quiesced-failover",
                        format!(
                            "n{victim}, leader of quiesced groups, went down {} ms ago; groups {:?} have no new leader (bound {} ms);{}",
                            now - since,
                            pending.iter().map(|p| p.0).collect::<Vec<_>>(),
                            until - since,
                            self.detail_of(pending.iter().map(|p| p.0))
                        ),
                    ));
                }
                self.quiet = QuietPhase::Failover {
                    victim,
                    since,
                    until,
                    groups: pending,
                };
            }
            phase @ (QuietPhase::Off | QuietPhase::Done) => {
                self.quiet = phase;
                return Ok(());
            }
        }
        self.sched.after(self.keepalive_ms(), Ev::QuietCheck);
        Ok(())
    }

    fn take_down_a_quiesced_leader(&mut self) -> Result<(), Violation> {
        let Some(victim) = self.leader_of(0) else {
            return Err(Violation::new(
                "quiesce",
                format!(
                    "group 0 is quiescent without a leader;{}",
                    self.detail_of(0..1)
                ),
            ));
        };
        let groups: Vec<(usize, Term)> = (0..self.opts.groups)
            .filter_map(|g| {
                let r = self.replicas[self.idx(victim, g)].raft.as_ref()?;
                (r.role() == Role::Leader).then(|| (g, r.term()))
            })
            .collect();
        let now = self.sched.now_ms();
        let crash = self.rng.random_bool(0.5);
        self.trace(|| {
            format!(
                "QUIET: all quiescent; {} n{victim}, leader of groups {groups:?}",
                if crash { "crash" } else { "isolate" }
            )
        });
        let detect_ms = if crash {
            0
        } else {
            self.liveness_timeout_ms + self.keepalive_ms()
        };
        let slack_ms = 4 * self.net.faults().delay_max_ms + 2 * self.opts.tick_ms;
        let until = now
            + detect_ms
            + QUIET_FAILOVER_ELECTIONS * self.election_max_ms() * 11 / 10
            + slack_ms;
        // The victim stays down past the bound, so the others must manage alone.
        let outage = until - now + self.opts.tick_ms;
        if crash {
            self.crash_node_for(victim, outage)?;
        } else {
            let rest: Vec<usize> = (0..self.opts.nodes).filter(|&n| n != victim).collect();
            self.cut_for(vec![victim], rest, true, outage);
        }
        self.quiet = QuietPhase::Failover {
            victim,
            since: now,
            until,
            groups,
        };
        self.sched.after(self.keepalive_ms(), Ev::QuietCheck);
        Ok(())
    }
}

impl Sim {
    /// Ticks a quiescent node the way a driver that does not skip it would: the tick
    /// must change nothing.
    pub(super) fn tick_quiescent_node(
        &mut self,
        node: usize,
        group: usize,
    ) -> Result<(), Violation> {
        let i = self.idx(node, group);
        let mut out = std::mem::take(&mut self.outbox);
        let outcome = match self.replicas[i].raft.as_mut() {
            Some(raft) => {
                let before = (raft.role(), raft.term(), raft.commit_index());
                raft.tick(&mut out);
                let after = (raft.role(), raft.term(), raft.commit_index());
                if out.is_empty() && raft.is_quiescent() && before == after {
                    Ok(())
                } else {
                    Err(Violation::new(
                        "quiescent-tick",
                        format!(
                            "g{group}/n{node}: a tick on a quiescent node did something: {out:?}"
                        ),
                    ))
                }
            }
            None => Ok(()),
        };
        out.clear();
        self.outbox = out;
        outcome
    }
}

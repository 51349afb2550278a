//! Discrete faults (partitions, crashes, pauses, leadership transfers, disk errors),
//! restarts, and the healing that ends the fault period.

use rand::Rng;
use rand::seq::IndexedRandom;

use super::clock::SimMs;
use super::report::Violation;
use super::sim::{Ev, Sim};
use crate::raft::{Node, NodeId, Role, Term};

impl Sim {
    pub(super) fn fault_gap(&mut self) -> SimMs {
        self.rng
            .random_range(self.faults.fault_gap_min_ms..=self.faults.fault_gap_max_ms)
    }

    fn outage(&mut self) -> SimMs {
        self.rng
            .random_range(self.faults.outage_min_ms..=self.faults.outage_max_ms)
    }

    /// The node leading `group` in the highest term, if any runs.
    pub(super) fn leader_of(&self, group: usize) -> Option<usize> {
        (0..self.opts.nodes)
            .filter_map(|n| {
                let r = &self.replicas[self.idx(n, group)];
                r.raft
                    .as_ref()
                    .filter(|x| x.role() == Role::Leader)
                    .map(|x| (x.term(), n))
            })
            .max()
            .map(|(_, n)| n)
    }

    fn random_leader(&mut self) -> Option<usize> {
        let g = self.rng.random_range(0..self.opts.groups);
        self.leader_of(g)
    }

    fn random_others(&mut self, node: usize) -> Vec<usize> {
        let others: Vec<usize> = (0..self.opts.nodes).filter(|&n| n != node).collect();
        let k = self.rng.random_range(1..=others.len().max(1));
        let mut picked: Vec<usize> = others.choose_multiple(&mut self.rng, k).copied().collect();
        picked.sort_unstable();
        picked
    }

    pub(super) fn on_fault(&mut self) -> Result<(), Violation> {
        let gap = self.fault_gap();
        if self.sched.now_ms() + gap < self.heal_ms {
            self.sched.after(gap, Ev::Fault);
        }
        let w = self.faults.weights.clone();
        if w.total() == 0 || self.opts.nodes < 2 {
            return Ok(());
        }
        let mut pick = self.rng.random_range(0..w.total());
        let mut take = |weight: u32| {
            let hit = pick < weight;
            pick = pick.saturating_sub(weight);
            hit
        };
        let nodes = self.opts.nodes;
        let victim = self.rng.random_range(0..nodes);
        if take(w.partition_symmetric) {
            let mut side: Vec<usize> = (0..nodes).filter(|_| self.rng.random_bool(0.5)).collect();
            if side.is_empty() || side.len() == nodes {
                side = vec![victim];
            }
            let rest: Vec<usize> = (0..nodes).filter(|n| !side.contains(n)).collect();
            self.cut(side, rest, true);
        } else if take(w.partition_one_way) {
            let to = self.random_others(victim);
            self.cut(vec![victim], to, false);
        } else if take(w.isolate_leader) {
            let l = self.random_leader().unwrap_or(victim);
            let rest: Vec<usize> = (0..nodes).filter(|&n| n != l).collect();
            self.cut(vec![l], rest, true);
        } else if take(w.crash_node) {
            self.crash_node(victim)?;
        } else if take(w.crash_leader) {
            let l = self.random_leader().unwrap_or(victim);
            self.crash_node(l)?;
        } else if take(w.pause_node) {
            let until = self.sched.now_ms() + self.outage() / 2;
            let st = &mut self.nodes[victim];
            if st.up && st.paused_until < until {
                st.paused_until = until;
                self.stats.pauses += 1;
                self.trace(|| format!("pause n{victim} until {until}ms"));
            }
        } else {
            let g = self.rng.random_range(0..self.opts.groups);
            let now = self.sched.now_ms();
            let leader = self
                .leader_of(g)
                .filter(|&l| self.nodes[l].paused_until <= now);
            if let Some(l) = leader {
                let to = self.random_others(l)[0];
                self.trace(|| format!("g{g}/n{l} transfer leadership to n{to}"));
                self.call(l, g, None, |n, out| {
                    n.transfer_leadership(to as NodeId, out)
                })?;
            }
        }
        Ok(())
    }

    /// A new leader was elected: maybe schedule its early end (leader churn).
    pub(super) fn maybe_churn(&mut self, node: usize, group: usize, term: Term) {
        let p = self.faults.churn_prob;
        if self.healed || p <= 0.0 || !self.rng.random_bool(p) {
            return;
        }
        let d = self.rng.random_range(0..=self.faults.churn_delay_max_ms);
        self.sched.after(d, Ev::Churn { node, group, term });
    }

    pub(super) fn on_churn(
        &mut self,
        node: usize,
        group: usize,
        term: Term,
    ) -> Result<(), Violation> {
        let leads = self.replicas[self.idx(node, group)]
            .raft
            .as_ref()
            .is_some_and(|r| r.role() == Role::Leader && r.term() == term);
        if self.healed || !self.nodes[node].up || !leads {
            return Ok(());
        }
        let outage = self
            .rng
            .random_range(self.faults.outage_min_ms..=self.faults.churn_outage_max_ms);
        self.trace(|| format!("g{group}/n{node} CHURN leader of term {term}"));
        if self.rng.random_bool(0.5) {
            self.crash_node_for(node, outage)?;
        } else {
            let rest: Vec<usize> = (0..self.opts.nodes).filter(|&n| n != node).collect();
            self.cut_for(vec![node], rest, true, outage);
        }
        Ok(())
    }

    fn cut(&mut self, from: Vec<usize>, to: Vec<usize>, symmetric: bool) {
        let d = self.outage();
        self.cut_for(from, to, symmetric, d);
    }

    pub(super) fn cut_for(
        &mut self,
        from: Vec<usize>,
        to: Vec<usize>,
        symmetric: bool,
        outage_ms: SimMs,
    ) {
        if to.is_empty() {
            return;
        }
        self.trace(|| {
            format!(
                "cut {from:?} {} {to:?}",
                if symmetric { "<->" } else { "->" }
            )
        });
        let id = self.net.cut(from, to, symmetric);
        self.stats.partitions += 1;
        self.sched.after(outage_ms, Ev::HealCut { id });
    }

    fn crash_node(&mut self, node: usize) -> Result<(), Violation> {
        let d = self.outage();
        self.crash_node_for(node, d)
    }

    pub(super) fn crash_node_for(
        &mut self,
        node: usize,
        outage_ms: SimMs,
    ) -> Result<(), Violation> {
        if !self.nodes[node].up {
            return Ok(());
        }
        self.stats.crashes += 1;
        self.nodes[node].up = false;
        for g in 0..self.opts.groups {
            self.crash_replica(node, g);
        }
        self.nodes[node].crashes += 1;
        let crash = self.nodes[node].crashes;
        self.sched.after(outage_ms, Ev::Restart { node, crash });
        self.liveness_on_crash(node)
    }

    /// Stop one group on one node as a crash would: unsynced writes are lost except a
    /// possibly torn prefix of them; pending proposals there are abandoned.
    fn crash_replica(&mut self, node: usize, group: usize) {
        let i = self.idx(node, group);
        let keep_prob = self.faults.torn_keep_prob;
        let r = &mut self.replicas[i];
        if r.raft.is_none() {
            return;
        }
        r.raft = None;
        r.incarnation += 1;
        r.last_commit = 0;
        r.proposed.clear();
        let loss = r.disk.crash(&mut self.rng, keep_prob);
        for p in std::mem::take(&mut r.pending) {
            self.clients[p.client].outstanding -= 1;
        }
        self.trace(|| format!("g{group}/n{node} CRASH {loss:?}"));
    }

    /// A failed sync: fatal for the group on this node until it restarts.
    pub(super) fn disk_error(&mut self, node: usize, group: usize) -> Result<(), Violation> {
        self.stats.disk_errors += 1;
        self.trace(|| format!("g{group}/n{node} DISK ERROR"));
        self.crash_replica(node, group);
        let d = self.outage();
        self.sched.after(d, Ev::RestartGroup { node, group });
        Ok(())
    }

    pub(super) fn restart_node(&mut self, node: usize) -> Result<(), Violation> {
        if self.nodes[node].up {
            return Ok(());
        }
        self.nodes[node].up = true;
        self.nodes[node].paused_until = self.sched.now_ms();
        for g in 0..self.opts.groups {
            self.start_replica(node, g)?;
        }
        Ok(())
    }

    /// Build a fresh raft node from what the disk recovered.
    pub(super) fn start_replica(&mut self, node: usize, group: usize) -> Result<(), Violation> {
        let i = self.idx(node, group);
        if self.replicas[i].raft.is_some() {
            return Ok(());
        }
        let rec = self.replicas[i].disk.recover();
        let max_commit = self.replicas[i].max_commit;
        self.checkers[group].on_recover(node as NodeId, &self.replicas[i].disk, max_commit)?;
        let config = self.config(node, group);
        let seed = self.rng.random();
        let raft = Node::new(config, rec.clone(), seed).map_err(|e| {
            Violation::new(
                "driver-contract",
                format!("g{group}/n{node} Node::new refused {rec:?}: {e}"),
            )
        })?;
        let commit = raft.commit_index();
        if commit < rec.commit_index || commit > max_commit.max(rec.commit_index) {
            return Err(Violation::new(
                "commit-regressed",
                format!(
                    "g{group}/n{node} restarted with commit {commit}; recovered checkpoint {}, highest commit before {max_commit}",
                    rec.commit_index
                ),
            ));
        }
        self.trace(|| format!("g{group}/n{node} START {rec:?}"));
        let r = &mut self.replicas[i];
        r.raft = Some(raft);
        r.last_commit = commit;
        self.tell_view(node, group)
    }

    pub(super) fn on_heal(&mut self) -> Result<(), Violation> {
        self.healed = true;
        self.trace(|| "HEAL: partitions removed, nodes restarted, no more drops".to_string());
        self.net.heal_all();
        let link = self.net.faults().healed();
        self.net.set_faults(link);
        self.faults.disk_error_prob = 0.0;
        let now = self.sched.now_ms();
        for n in 0..self.opts.nodes {
            self.nodes[n].paused_until = self.nodes[n].paused_until.min(now);
            if self.nodes[n].up {
                for g in 0..self.opts.groups {
                    self.start_replica(n, g)?;
                }
            } else {
                self.restart_node(n)?;
            }
        }
        for g in 0..self.opts.groups {
            self.progress_mark[g] = (self.checkers[g].committed_len(), None);
        }
        let window_ms = SimMs::from(self.opts.liveness_ticks) * self.opts.tick_ms;
        self.sched.after(window_ms, Ev::Deadline);
        Ok(())
    }
}

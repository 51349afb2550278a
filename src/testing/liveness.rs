//! The end of a run: liveness after healing and the final checks.

use super::clock::SimMs;
use super::options::LIVENESS_CAP_FACTOR;
use super::report::Violation;
use super::sim::{Ev, Sim};
use crate::raft::{Index, NodeId, Role, Term};

impl Sim {
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

    /// What must keep moving in `group` until a post-heal proposal commits: the commit
    /// index, and the highest-term leader's view of its followers (a long catch-up of
    /// diverged followers commits nothing new until they reach the leader's no-op).
    fn progress(&self, group: usize) -> (Index, Option<(Term, Index)>) {
        let leader = self.leader_of(group).and_then(|l| {
            let raft = self.replicas[self.idx(l, group)].raft.as_ref()?;
            let matched = (0..self.opts.nodes as NodeId)
                .filter_map(|p| raft.match_index(p))
                .sum();
            Some((raft.term(), matched))
        });
        (self.checkers[group].committed_len(), leader)
    }

    /// Periodic liveness check after healing: every group still waiting for a post-heal
    /// commit must have made progress since the previous check (see [`Sim::progress`]),
    /// and the whole wait is capped.
    pub(super) fn on_deadline(&mut self) -> Result<(), Violation> {
        let window_ms = SimMs::from(self.opts.liveness_ticks) * self.opts.tick_ms;
        let capped = self.sched.now_ms() >= self.heal_ms + LIVENESS_CAP_FACTOR * window_ms;
        let mut stuck = Vec::new();
        for g in 0..self.opts.groups {
            let now = self.progress(g);
            if !self.live[g] && (capped || now == self.progress_mark[g]) {
                stuck.push(g);
            }
            self.progress_mark[g] = now;
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
                "after healing, group(s) {stuck:?} made no progress (commit, leader, replication) for {} ticks and no proposal made after healing committed;",
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

    pub(super) fn final_check(&mut self) -> Result<(), Violation> {
        for g in 0..self.opts.groups {
            for n in 0..self.opts.nodes {
                let r = &self.replicas[self.idx(n, g)];
                if let Some(node) = &r.raft {
                    let leader = (node.role() == Role::Leader).then(|| node.term());
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
}

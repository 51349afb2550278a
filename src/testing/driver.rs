//! The driver side of the outbox contract: every `Node` call goes through here, its
//! outbox is applied in contract order, and the invariants are checked right after.

use bytes::Bytes;
use rand::Rng;

use super::report::Violation;
use super::sim::{Ev, Packet, Sim, SyncDone};
use crate::raft::{
    Index, LogWrite, Message, MsgBody, Node, NodeId, Outbox, ProposeError, Role, Term,
};

fn contract(detail: String) -> Violation {
    Violation::new("driver-contract", detail)
}

impl Sim {
    /// Call `f` on the raft node of (`node`, `group`) if it runs, then apply its outbox.
    /// `incoming` is the packet just stepped (the source of `FromMessage` bodies).
    pub(super) fn call(
        &mut self,
        node: usize,
        group: usize,
        incoming: Option<&Packet>,
        f: impl FnOnce(&mut Node, &mut Outbox),
    ) -> Result<(), Violation> {
        let i = self.idx(node, group);
        let mut out = std::mem::take(&mut self.outbox);
        let Some(raft) = self.replicas[i].raft.as_mut() else {
            self.outbox = out;
            return Ok(());
        };
        f(raft, &mut out);
        let res = self.finish_call(node, group, &out, incoming);
        out.clear();
        self.outbox = out;
        res
    }

    /// Propose `bodies` at (`node`, `group`); the accepted bodies are kept until the
    /// core's `Proposed` write asks for them.
    pub(super) fn propose(
        &mut self,
        node: usize,
        group: usize,
        bodies: &[Bytes],
    ) -> Result<Result<(Index, Term), ProposeError>, Violation> {
        let i = self.idx(node, group);
        let mut out = std::mem::take(&mut self.outbox);
        let r = &mut self.replicas[i];
        let Some(raft) = r.raft.as_mut() else {
            self.outbox = out;
            return Ok(Err(ProposeError::NotLeader { leader: None }));
        };
        let count = u32::try_from(bodies.len()).expect("proposals carry a handful of bodies");
        let res = raft.propose(count, &mut out);
        if let Ok((first, term)) = res {
            for (k, b) in bodies.iter().enumerate() {
                r.proposed.insert(first + k as Index, (term, b.clone()));
            }
            self.trace(|| format!("g{group}/n{node} propose {count} at {first} term {term}"));
        }
        let done = self.finish_call(node, group, &out, None);
        out.clear();
        self.outbox = out;
        done.map(|()| res)
    }

    fn finish_call(
        &mut self,
        node: usize,
        group: usize,
        out: &Outbox,
        incoming: Option<&Packet>,
    ) -> Result<(), Violation> {
        self.apply_outbox(node, group, out, incoming)?;
        self.after_call(node, group)
    }

    /// Apply one outbox in contract order: hard state, log writes, messages, events.
    fn apply_outbox(
        &mut self,
        node: usize,
        group: usize,
        out: &Outbox,
        incoming: Option<&Packet>,
    ) -> Result<(), Violation> {
        let i = self.idx(node, group);
        if let Some(hs) = out.hard_state {
            let old = self.replicas[i].disk.hard_state();
            if hs.term < old.term
                || (hs.term == old.term && old.voted_for.is_some() && hs.voted_for != old.voted_for)
            {
                return Err(Violation::new(
                    "hard-state-regressed",
                    format!("g{group}/n{node} hard state {old:?} replaced by {hs:?}"),
                ));
            }
            // Durable before any message of this outbox leaves: written synchronously.
            self.replicas[i].disk.write_hard_state(hs);
            self.trace(|| format!("g{group}/n{node} hard state {hs:?}"));
        }
        if !out.log_writes.is_empty() {
            for w in &out.log_writes {
                self.apply_write(node, group, *w, incoming)?;
            }
            let r = &self.replicas[i];
            let last = r.disk.last_index();
            let sync = SyncDone {
                node,
                group,
                incarnation: r.incarnation,
                ticket: r.disk.sync_ticket(),
                issued: (last, r.disk.term_at(last).unwrap_or(0)),
            };
            let delay = self
                .rng
                .random_range(self.faults.sync_delay_min_ms..=self.faults.sync_delay_max_ms);
            self.sched.after(delay, Ev::SyncDone(sync));
        }
        for m in &out.messages {
            self.send(node, group, *m)?;
        }
        if self.opts.verbose {
            for e in &out.events {
                self.trace(|| format!("g{group}/n{node} event {e:?}"));
            }
        }
        Ok(())
    }

    fn apply_write(
        &mut self,
        node: usize,
        group: usize,
        w: LogWrite,
        incoming: Option<&Packet>,
    ) -> Result<(), Violation> {
        let i = self.idx(node, group);
        self.trace(|| format!("g{group}/n{node} write {w:?}"));
        let next = self.replicas[i].disk.last_index() + 1;
        let (first, last, term) = match w {
            LogWrite::Truncate { from } => {
                if from == 0 {
                    return Err(contract(format!("g{group}/n{node} Truncate from index 0")));
                }
                let r = &mut self.replicas[i];
                let removed = r.disk.truncate(from);
                let max_commit = r.max_commit.max(r.last_commit);
                return self.checkers[group].on_truncate(node as NodeId, from, removed, max_commit);
            }
            LogWrite::Proposed { first, last, term } => (first, last, term),
            LogWrite::Noop { index, term } => (index, index, term),
            LogWrite::FromMessage { first, last, term } => (first, last, term),
        };
        if first != next || last < first {
            return Err(contract(format!(
                "g{group}/n{node} {w:?} does not append at the log end (last index {})",
                next - 1
            )));
        }
        for index in first..=last {
            let body = match w {
                LogWrite::Proposed { .. } => match self.replicas[i].proposed.remove(&index) {
                    Some((t, b)) if t == term => b,
                    other => {
                        return Err(contract(format!(
                            "g{group}/n{node} {w:?}: no proposal of term {term} at {index} (have {:?})",
                            other.map(|(t, _)| t)
                        )));
                    }
                },
                LogWrite::Noop { .. } => Bytes::new(),
                _ => message_body(incoming, index, term)
                    .map_err(|e| contract(format!("g{group}/n{node} {w:?}: {e}")))?,
            };
            let r = &mut self.replicas[i];
            let prefix = r.disk.append(term, body);
            let max_commit = r.max_commit.max(r.last_commit);
            self.checkers[group].on_append(node as NodeId, index, term, prefix, max_commit)?;
        }
        Ok(())
    }

    /// Send `m` from `node`: attach bodies to an `Append`, maybe split it by bytes, and
    /// hand every piece to the network.
    fn send(&mut self, node: usize, group: usize, m: Message) -> Result<(), Violation> {
        self.stats.messages += 1;
        let to = m.to as usize;
        if m.from as usize != node || to >= self.opts.nodes {
            return Err(contract(format!(
                "g{group}/n{node} sent a message with from/to {}/{}",
                m.from, m.to
            )));
        }
        let hs = self.replicas[self.idx(node, group)].disk.hard_state();
        let pre_vote = matches!(
            m.body,
            MsgBody::PreVote { .. } | MsgBody::PreVoteResp { .. }
        );
        if !pre_vote && m.term > hs.term {
            return Err(contract(format!(
                "g{group}/n{node} sent {m:?} in a term above its durable term {}",
                hs.term
            )));
        }
        // A follower acknowledges only what it holds durably.
        let acked = match m.body {
            MsgBody::AppendResp {
                match_index,
                reject: None,
                ..
            }
            | MsgBody::HeartbeatResp { match_index } => Some(match_index),
            _ => None,
        };
        let durable = self.replicas[self.idx(node, group)].disk.durable_index();
        if let Some(acked) = acked.filter(|&a| a > durable) {
            return Err(Violation::new(
                "ack-not-durable",
                format!(
                    "g{group}/n{node} acknowledged through {acked} while durable through {durable}: {m:?}"
                ),
            ));
        }
        let MsgBody::Append {
            prev_index,
            prev_term,
            entries_term,
            count,
            commit,
        } = m.body
        else {
            self.transmit(node, group, m, Vec::new());
            return Ok(());
        };
        let disk = &self.replicas[self.idx(node, group)].disk;
        if disk.term_at(prev_index) != Some(prev_term) {
            return Err(contract(format!(
                "g{group}/n{node} sent {m:?} but its log has term {:?} at {prev_index}",
                disk.term_at(prev_index)
            )));
        }
        let mut bodies = Vec::with_capacity(count as usize);
        for index in prev_index + 1..=prev_index + Index::from(count) {
            match disk.entry(index) {
                Some(e) if e.term == entries_term => bodies.push(e.body.clone()),
                e => {
                    return Err(contract(format!(
                        "g{group}/n{node} sent {m:?} but its log has {:?} at {index}",
                        e.map(|e| e.term)
                    )));
                }
            }
        }
        let budget = self
            .faults
            .append_budget_bytes
            .filter(|_| count > 1 && self.rng.random_bool(0.5));
        let Some(budget) = budget else {
            self.transmit(node, group, m, bodies);
            return Ok(());
        };
        // Split a single-term batch into consecutive chunks of at most `budget` body bytes
        // (at least one entry each); later chunks follow an entry of `entries_term`.
        let mut start = 0usize;
        while start < bodies.len() {
            let mut end = start + 1;
            let mut bytes = bodies[start].len();
            while end < bodies.len() && bytes + bodies[end].len() <= budget {
                bytes += bodies[end].len();
                end += 1;
            }
            let chunk_prev = prev_index + start as Index;
            let body = MsgBody::Append {
                prev_index: chunk_prev,
                prev_term: if start == 0 { prev_term } else { entries_term },
                entries_term,
                count: (end - start) as u32,
                commit,
            };
            self.transmit(
                node,
                group,
                Message { body, ..m },
                bodies[start..end].to_vec(),
            );
            start = end;
        }
        Ok(())
    }

    fn transmit(&mut self, from: usize, group: usize, msg: Message, bodies: Vec<Bytes>) {
        let to = msg.to as usize;
        let (delays, copies) = self.net.plan(&mut self.rng, from, to);
        if copies == 0 {
            self.trace(|| format!("g{group} lost {msg:?}"));
            return;
        }
        if copies == 2 {
            let dup = Packet {
                from,
                group,
                msg,
                bodies: bodies.clone(),
            };
            self.sched.after(delays[1], Ev::Deliver(Box::new(dup)));
        }
        self.sched.after(
            delays[0],
            Ev::Deliver(Box::new(Packet {
                from,
                group,
                msg,
                bodies,
            })),
        );
    }

    /// Checks after every call, once its outbox is applied.
    fn after_call(&mut self, node: usize, group: usize) -> Result<(), Violation> {
        let i = self.idx(node, group);
        let r = &self.replicas[i];
        let Some(raft) = r.raft.as_ref() else {
            return Ok(());
        };
        let (role, term, commit) = (raft.role(), raft.term(), raft.commit_index());
        let last = raft.last_index();
        if last != r.disk.last_index() || raft.term_at(last) != r.disk.term_at(last) {
            return Err(contract(format!(
                "g{group}/n{node} core log ends at ({last}, {:?}) but the driver's at ({}, {:?})",
                raft.term_at(last),
                r.disk.last_index(),
                r.disk.term_at(r.disk.last_index())
            )));
        }
        if raft.hard_state() != r.disk.hard_state() {
            return Err(contract(format!(
                "g{group}/n{node} core hard state {:?} was never handed out for persisting (durable: {:?})",
                raft.hard_state(),
                r.disk.hard_state()
            )));
        }
        if raft.persisted_index() > r.disk.durable_index() {
            return Err(contract(format!(
                "g{group}/n{node} core believes {} is durable, the disk has {}",
                raft.persisted_index(),
                r.disk.durable_index()
            )));
        }
        if role == Role::Leader && self.checkers[group].on_leader(node as NodeId, term, &r.disk)? {
            self.stats.elections += 1;
            self.trace(|| format!("g{group}/n{node} LEADER term {term} last {last}"));
            self.maybe_churn(node, group, term);
        }
        let r = &self.replicas[i];
        if commit < r.last_commit {
            return Err(Violation::new(
                "commit-regressed",
                format!(
                    "g{group}/n{node} commit went from {} back to {commit}",
                    r.last_commit
                ),
            ));
        }
        if commit > r.last_commit {
            let old = r.last_commit;
            let groups = self.opts.groups;
            let replicas = &self.replicas;
            let disks: Vec<_> = (0..self.opts.nodes)
                .map(|n| &replicas[n * groups + group].disk)
                .collect();
            self.checkers[group].on_commit(node as NodeId, term, old, commit, &disks)?;
            let ckpt = self.faults.checkpoint_prob > 0.0
                && self.rng.random_bool(self.faults.checkpoint_prob);
            let r = &mut self.replicas[i];
            r.last_commit = commit;
            r.max_commit = r.max_commit.max(commit);
            if ckpt {
                r.disk.write_commit_checkpoint(commit);
            }
            self.update_live(group);
        }
        if !self.replicas[i].pending.is_empty() {
            self.settle_pending(node, group)?;
        }
        Ok(())
    }

    /// Acknowledge the proposals of (`node`, `group`) that committed while the node still
    /// leads their term (or still holds their term at their index); abandon those whose
    /// entries were replaced or that timed out.
    pub(super) fn settle_pending(&mut self, node: usize, group: usize) -> Result<(), Violation> {
        let i = self.idx(node, group);
        let now = self.sched.now_ms();
        let timeout = self.client_tuning.timeout_ms;
        let r = &mut self.replicas[i];
        let Some(raft) = r.raft.as_ref() else {
            return Ok(());
        };
        let (role, term, commit) = (raft.role(), raft.term(), raft.commit_index());
        let mut acked = Vec::new();
        let mut dropped = Vec::new();
        let (disk, proposed) = (&r.disk, &r.proposed);
        r.pending.retain(|p| {
            let at = disk.term_at(p.last());
            let held = at == Some(p.term);
            // Replaced by another term, or gone and not waiting for its write either.
            let replaced = at.map_or(!proposed.contains_key(&p.last()), |t| t != p.term);
            if commit >= p.last() && ((role == Role::Leader && term == p.term) || held) {
                acked.push(p.clone());
                false
            } else if replaced || now.saturating_sub(p.proposed_ms) > timeout {
                dropped.push(p.client);
                false
            } else {
                true
            }
        });
        for c in dropped {
            self.clients[c].outstanding -= 1;
        }
        for p in acked {
            self.clients[p.client].outstanding -= 1;
            for (k, body) in p.bodies.iter().enumerate() {
                self.checkers[group].on_ack(p.first + k as Index, body)?;
            }
            self.stats.acked += p.bodies.len() as u64;
            self.trace(|| {
                format!(
                    "g{group}/n{node} ack {}..={} term {}",
                    p.first,
                    p.last(),
                    p.term
                )
            });
        }
        Ok(())
    }
}

/// The body of entry `index` (of `term`) carried by the `Append` just stepped.
fn message_body(incoming: Option<&Packet>, index: Index, term: Term) -> Result<Bytes, String> {
    let Some(p) = incoming else {
        return Err("no message was stepped".into());
    };
    let MsgBody::Append {
        prev_index,
        entries_term,
        count,
        ..
    } = p.msg.body
    else {
        return Err(format!("the stepped message is not an Append: {:?}", p.msg));
    };
    if entries_term != term || index <= prev_index || index > prev_index + Index::from(count) {
        return Err(format!(
            "entry ({index}, {term}) is not in the stepped {:?}",
            p.msg
        ));
    }
    let k = usize::try_from(index - prev_index - 1).map_err(|e| e.to_string())?;
    p.bodies
        .get(k)
        .cloned()
        .ok_or_else(|| format!("the stepped message lacks body {k}"))
}

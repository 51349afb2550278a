//! Scenario tests: a few nodes wired by hand, with a body-free driver log per node
//! (one term per index), explicit durability, and a cuttable network.

use std::collections::VecDeque;

use super::*;

const MIN_TICKS: u32 = 10;
const MAX_TICKS: u32 = 20;

fn config(id: NodeId, n: u32) -> Config {
    Config {
        id,
        voters: (0..n).collect(),
        election_timeout_min_ticks: MIN_TICKS,
        election_timeout_max_ticks: MAX_TICKS,
        heartbeat_interval_ticks: 2,
        max_inflight_appends: 4,
        max_batch_entries: 8,
        max_uncommitted_entries: 1000,
        check_quorum: true,
        preferred_leader: None,
        #[cfg(feature = "planted-bugs")]
        planted: None,
    }
}

/// A log given as the term of each index from 1.
fn recovered(term: Term, terms: &[Term], commit: Index) -> Recovered {
    let mut runs: Vec<TermRun> = Vec::new();
    for (i, &t) in terms.iter().enumerate() {
        if runs.last().is_none_or(|r| r.term != t) {
            runs.push(TermRun {
                first_index: i as Index + 1,
                term: t,
            });
        }
    }
    Recovered {
        hard_state: HardState {
            term,
            voted_for: None,
        },
        last_index: terms.len() as Index,
        term_runs: runs,
        commit_index: commit,
    }
}

struct Cluster {
    nodes: Vec<Node>,
    /// Driver log: `logs[n][i - 1]` is the term of index `i`.
    logs: Vec<Vec<Term>>,
    durable: Vec<Index>,
    hard: Vec<HardState>,
    queue: VecDeque<Message>,
    /// `cut[a][b]`: messages from a to b are dropped.
    cut: Vec<Vec<bool>>,
    /// Make every write durable right after it is applied.
    auto_persist: bool,
    /// Messages matching this are lost.
    lose: Option<fn(&Message) -> bool>,
    events: Vec<(NodeId, Event)>,
    sent: Vec<Message>,
}

impl Cluster {
    fn new(n: u32) -> Cluster {
        Cluster::with((0..n).map(|_| recovered(0, &[], 0)).collect(), |_| {})
    }

    fn with(recs: Vec<Recovered>, tweak: impl Fn(&mut Config)) -> Cluster {
        let n = recs.len();
        let mut nodes = Vec::new();
        let mut logs = Vec::new();
        let mut hard = Vec::new();
        for (i, rec) in recs.into_iter().enumerate() {
            let mut terms = Vec::new();
            for (k, r) in rec.term_runs.iter().enumerate() {
                let end = rec
                    .term_runs
                    .get(k + 1)
                    .map_or(rec.last_index, |x| x.first_index - 1);
                terms.extend((r.first_index..=end).map(|_| r.term));
            }
            logs.push(terms);
            hard.push(rec.hard_state);
            let mut cfg = config(i as NodeId, n as u32);
            tweak(&mut cfg);
            nodes.push(Node::new(cfg, rec, 7 + i as u64).expect("valid config"));
        }
        let durable = logs.iter().map(|l| l.len() as Index).collect();
        Cluster {
            nodes,
            logs,
            durable,
            hard,
            queue: VecDeque::new(),
            cut: vec![vec![false; n]; n],
            auto_persist: true,
            lose: None,
            events: Vec::new(),
            sent: Vec::new(),
        }
    }

    fn apply(&mut self, i: usize, out: &mut Outbox) {
        if let Some(hs) = out.hard_state {
            self.hard[i] = hs;
        }
        for w in &out.log_writes {
            let log = &mut self.logs[i];
            match *w {
                LogWrite::Truncate { from } => {
                    log.truncate(from as usize - 1);
                    self.durable[i] = self.durable[i].min(from - 1);
                }
                LogWrite::Proposed { first, last, term }
                | LogWrite::FromMessage { first, last, term } => {
                    assert_eq!(first, log.len() as Index + 1, "write lands at the end");
                    log.extend((first..=last).map(|_| term));
                }
                LogWrite::Noop { index, term } => {
                    assert_eq!(index, log.len() as Index + 1);
                    log.push(term);
                }
            }
        }
        for m in &out.messages {
            assert!(
                m.term <= self.hard[i].term
                    || matches!(
                        m.body,
                        MsgBody::PreVote { .. } | MsgBody::PreVoteResp { .. }
                    ),
                "message sent in a term not yet durable"
            );
            self.sent.push(*m);
            let lost = self.lose.is_some_and(|lose| lose(m));
            if !self.cut[m.from as usize][m.to as usize] && !lost {
                self.queue.push_back(*m);
            }
        }
        for e in &out.events {
            self.events.push((i as NodeId, *e));
        }
        out.clear();
        let node = &self.nodes[i];
        assert_eq!(node.last_index(), self.logs[i].len() as Index);
        assert_eq!(node.hard_state(), self.hard[i]);
        if self.auto_persist {
            self.persist(i);
        }
    }

    fn persist(&mut self, i: usize) {
        let last = self.logs[i].len() as Index;
        if last == 0 || self.durable[i] == last {
            return;
        }
        self.durable[i] = last;
        let term = self.logs[i][last as usize - 1];
        let mut out = Outbox::default();
        self.nodes[i].persisted(last, term, &mut out);
        self.apply(i, &mut out);
    }

    fn tick(&mut self, i: usize) {
        let mut out = Outbox::default();
        self.nodes[i].tick(&mut out);
        self.apply(i, &mut out);
    }

    fn tick_all(&mut self, ticks: u32) {
        for _ in 0..ticks {
            for i in 0..self.nodes.len() {
                self.tick(i);
            }
            self.deliver();
        }
    }

    fn deliver(&mut self) {
        let mut out = Outbox::default();
        let mut steps = 0;
        while let Some(m) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "message storm");
            let to = m.to as usize;
            self.nodes[to].step(m, &mut out);
            self.apply(to, &mut out);
        }
    }

    /// Tick only node `i` until it leaves the follower role, then deliver everything.
    fn campaign(&mut self, i: usize) {
        for _ in 0..MAX_TICKS {
            self.tick(i);
            if self.nodes[i].role() != Role::Follower {
                break;
            }
        }
        assert_ne!(self.nodes[i].role(), Role::Follower);
        self.deliver();
    }

    fn propose(&mut self, i: usize, count: u32) -> Result<(Index, Term), ProposeError> {
        let mut out = Outbox::default();
        let r = self.nodes[i].propose(count, &mut out);
        self.apply(i, &mut out);
        r
    }

    fn isolate(&mut self, i: usize, isolated: bool) {
        for j in 0..self.nodes.len() {
            if j != i {
                self.cut[i][j] = isolated;
                self.cut[j][i] = isolated;
            }
        }
    }

    fn leaders(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].role() == Role::Leader)
            .collect()
    }

    /// Node `at`'s driver reports `peer`'s node as up or down.
    fn liveness(&mut self, at: usize, peer: usize, alive: bool) {
        let mut out = Outbox::default();
        self.nodes[at].peer_liveness(peer as NodeId, alive, &mut out);
        self.apply(at, &mut out);
    }

    /// Every driver reports every other node up.
    fn all_alive(&mut self) {
        for at in 0..self.nodes.len() {
            for peer in 0..self.nodes.len() {
                if peer != at {
                    self.liveness(at, peer, true);
                }
            }
        }
    }

    fn quiescent(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_quiescent())
            .collect()
    }

    fn count_sent(&self, f: impl Fn(&Message) -> bool) -> usize {
        self.sent.iter().filter(|m| f(m)).count()
    }
}

#[test]
fn elects_a_leader_and_commits_its_noop() {
    let mut c = Cluster::new(3);
    c.campaign(0);
    assert_eq!(c.leaders(), vec![0]);
    assert_eq!(c.nodes[0].term(), 1);
    assert_eq!(c.logs[0], vec![1], "the new leader appended one no-op");
    assert_eq!(c.nodes[0].commit_index(), 1);
    c.tick_all(3);
    for n in &c.nodes {
        assert_eq!(n.leader(), Some(0));
        assert_eq!(n.commit_index(), 1);
    }
    assert!(c.events.contains(&(
        0,
        Event::RoleChanged {
            role: Role::Leader,
            term: 1,
            leader: Some(0)
        }
    )));
}

#[test]
fn replicates_and_commits_proposals() {
    let mut c = Cluster::new(3);
    c.campaign(0);
    let (first, term) = c.propose(0, 20).expect("leader accepts");
    assert_eq!((first, term), (2, 1));
    c.deliver();
    assert_eq!(c.nodes[0].commit_index(), 21);
    c.tick_all(3);
    for i in 0..3 {
        assert_eq!(c.logs[i].len(), 21);
        assert_eq!(c.nodes[i].commit_index(), 21);
    }
    // Batches of at most 8, so 20 entries took at least 3 appends per follower.
    assert!(c.count_sent(|m| matches!(m.body, MsgBody::Append { count, .. } if count > 8)) == 0);
    assert_eq!(
        c.propose(1, 1),
        Err(ProposeError::NotLeader { leader: Some(0) })
    );
    assert_eq!(c.propose(0, 0), Err(ProposeError::Empty));
}

#[test]
fn pre_vote_does_not_bump_terms_of_an_isolated_node() {
    let mut c = Cluster::new(3);
    c.campaign(0);
    c.tick_all(3);
    c.isolate(2, true);
    c.tick_all(10 * MAX_TICKS);
    assert_eq!(c.nodes[2].term(), 1, "pre-votes never reached a majority");
    assert_ne!(c.nodes[2].role(), Role::Leader);
    c.isolate(2, false);
    c.tick_all(3 * MAX_TICKS);
    assert_eq!(
        c.leaders(),
        vec![0],
        "the rejoining node did not disrupt the leader"
    );
    assert_eq!(c.nodes[0].term(), 1);
    assert_eq!(c.nodes[2].leader(), Some(0));
}

#[test]
fn noop_commit_rule_and_follower_acks_only_durable_entries() {
    // n0 and n1 hold an entry of term 2 that n2 lacks; nobody knows it committed.
    let mut c = Cluster::with(
        vec![
            recovered(2, &[1, 2], 1),
            recovered(2, &[1, 2], 1),
            recovered(2, &[1], 1),
        ],
        |_| {},
    );
    c.auto_persist = false;
    c.campaign(0);
    assert_eq!(c.leaders(), vec![0]);
    assert_eq!(c.nodes[0].term(), 3);
    // Leader persists its no-op; n1 received it but has not made it durable.
    c.persist(0);
    c.deliver();
    c.tick_all(6);
    assert_eq!(c.logs[1], vec![1, 2, 3]);
    assert_eq!(
        c.nodes[0].match_index(1),
        Some(2),
        "n1 acknowledged only its durable prefix"
    );
    assert!(
        c.count_sent(
            |m| m.from == 1 && matches!(m.body, MsgBody::AppendResp { match_index: 3, .. })
        ) == 0
    );
    // Index 2 is on a majority (n0, n1) but is of term 2: it must not commit by count.
    assert_eq!(c.nodes[0].commit_index(), 1);
    c.persist(1);
    c.deliver();
    assert_eq!(
        c.nodes[0].commit_index(),
        3,
        "committing the no-op commits index 2"
    );
}

#[test]
fn reject_hint_jumps_back_a_term_at_a_time() {
    // n1 has a divergent tail of terms 2 and 3; n0/n2 hold term 5 there.
    let mut c = Cluster::with(
        vec![
            recovered(5, &[1, 1, 1, 5, 5, 5], 3),
            recovered(5, &[1, 1, 1, 2, 2, 3, 3, 3], 3),
            recovered(5, &[1, 1, 1, 5, 5, 5], 3),
        ],
        |_| {},
    );
    c.campaign(0);
    assert_eq!(c.leaders(), vec![0]);
    c.tick_all(3);
    assert_eq!(c.logs[1], vec![1, 1, 1, 5, 5, 5, 6]);
    let rejects = c.count_sent(|m| {
        m.from == 1
            && matches!(
                m.body,
                MsgBody::AppendResp {
                    reject: Some(_),
                    ..
                }
            )
    });
    // One rejection per divergent term (3, then 2), not one per index (5 indices).
    assert_eq!(rejects, 2);
    assert_eq!(c.nodes[0].commit_index(), 7);
    assert_eq!(c.nodes[1].commit_index(), 7);
}

#[test]
fn follower_commit_is_capped_by_what_it_holds() {
    let mut c = Cluster::new(3);
    c.campaign(0);
    c.tick_all(3);
    c.cut[0][2] = true;
    c.propose(0, 5).expect("leader");
    c.deliver();
    assert_eq!(c.nodes[0].commit_index(), 6);
    c.tick_all(4);
    assert_eq!(c.nodes[2].commit_index(), 1, "n2 holds nothing new");
    c.cut[0][2] = false;
    c.tick_all(4);
    assert_eq!(c.nodes[2].commit_index(), 6);
}

#[test]
fn check_quorum_steps_an_isolated_leader_down() {
    let mut c = Cluster::new(3);
    c.campaign(0);
    c.tick_all(3);
    c.isolate(0, true);
    for _ in 0..2 * MIN_TICKS {
        c.tick(0);
    }
    assert_eq!(c.nodes[0].role(), Role::Follower);
    assert_eq!(c.nodes[0].leader(), None);
    assert_eq!(c.nodes[0].term(), 1);
}

#[test]
fn lease_ignores_vote_requests_while_the_leader_is_heard() {
    let mut c = Cluster::new(3);
    c.campaign(0);
    c.tick_all(3);
    let mut out = Outbox::default();
    let vote = Message {
        from: 2,
        to: 1,
        term: 9,
        body: MsgBody::Vote {
            last_index: 100,
            last_term: 8,
            transfer: false,
        },
    };
    c.nodes[1].step(vote, &mut out);
    assert!(out.is_empty(), "ignored entirely: {out:?}");
    assert_eq!(c.nodes[1].term(), 1);
    // A transfer vote is not subject to the lease.
    let transfer_vote = Message {
        body: MsgBody::Vote {
            last_index: 100,
            last_term: 8,
            transfer: true,
        },
        ..vote
    };
    c.nodes[1].step(transfer_vote, &mut out);
    assert_eq!(c.nodes[1].term(), 9);
    assert_eq!(out.messages[0].body, MsgBody::VoteResp { granted: true });
}

#[test]
fn rejected_pre_vote_with_higher_term_is_adopted_but_granted_one_is_not() {
    let mut c = Cluster::new(3);
    c.tick(0);
    let mut out = Outbox::default();
    for _ in 0..MAX_TICKS {
        c.nodes[1].tick(&mut out);
    }
    assert_eq!(c.nodes[1].role(), Role::PreCandidate);
    out.clear();
    let granted = Message {
        from: 2,
        to: 1,
        term: 1,
        body: MsgBody::PreVoteResp { granted: true },
    };
    c.nodes[1].step(granted, &mut out);
    // That was a majority (self + n2): a real campaign at term 1 began.
    assert_eq!(c.nodes[1].role(), Role::Candidate);
    assert_eq!(c.nodes[1].term(), 1);
    out.clear();
    let refused = Message {
        from: 0,
        to: 1,
        term: 4,
        body: MsgBody::PreVoteResp { granted: false },
    };
    c.nodes[1].step(refused, &mut out);
    assert_eq!(c.nodes[1].term(), 4);
    assert_eq!(c.nodes[1].role(), Role::Follower);
    assert_eq!(out.hard_state.map(|h| h.term), Some(4));
}

#[test]
fn leadership_transfer_hands_over_and_blocks_proposals() {
    let mut c = Cluster::new(3);
    c.campaign(0);
    c.tick_all(3);
    c.cut[0][1] = true;
    c.propose(0, 3).expect("leader");
    c.deliver();
    let mut out = Outbox::default();
    c.nodes[0].transfer_leadership(1, &mut out);
    c.apply(0, &mut out);
    assert_eq!(c.propose(0, 1), Err(ProposeError::Transferring));
    c.queue.clear();
    c.cut[0][1] = false;
    c.tick_all(3);
    assert_eq!(c.leaders(), vec![1]);
    assert_eq!(c.nodes[1].term(), 2);
    assert!(c.events.contains(&(
        0,
        Event::TransferEnded {
            to: 1,
            succeeded: true
        }
    )));
    c.tick_all(3);
    assert_eq!(c.nodes[0].leader(), Some(1));
    assert_eq!(c.nodes[0].commit_index(), c.nodes[1].commit_index());
}

#[test]
fn transfer_is_abandoned_after_an_election_timeout() {
    let mut c = Cluster::new(3);
    c.campaign(0);
    c.tick_all(3);
    c.cut[0][2] = true;
    c.propose(0, 2).expect("leader");
    c.deliver();
    let mut out = Outbox::default();
    c.nodes[0].transfer_leadership(2, &mut out);
    c.apply(0, &mut out);
    c.deliver();
    for _ in 0..MIN_TICKS {
        c.tick(0);
        c.deliver();
    }
    assert!(c.events.contains(&(
        0,
        Event::TransferEnded {
            to: 2,
            succeeded: false
        }
    )));
    assert_eq!(c.leaders(), vec![0]);
    assert!(c.propose(0, 1).is_ok());
}

#[test]
fn preferred_leader_takes_over_once_caught_up() {
    let recs = (0..3).map(|_| recovered(0, &[], 0)).collect();
    let mut c = Cluster::with(recs, |cfg| cfg.preferred_leader = Some(2));
    c.campaign(0);
    assert_eq!(c.leaders(), vec![0]);
    c.tick_all(10);
    assert_eq!(c.leaders(), vec![2]);
    c.tick_all(3 * MAX_TICKS);
    assert_eq!(c.leaders(), vec![2], "and it stays there");
}

#[test]
fn restart_recovers_everything_as_durable() {
    let rec = recovered(4, &[1, 1, 3, 4], 2);
    let node = Node::new(config(1, 3), rec, 1).expect("valid");
    assert_eq!(node.last_index(), 4);
    assert_eq!(node.persisted_index(), 4);
    assert_eq!(node.commit_index(), 2);
    assert_eq!(node.term_at(3), Some(3));
    assert_eq!(node.term(), 4);
    assert!(Node::new(config(5, 3), recovered(0, &[], 0), 1).is_err());
}

#[test]
fn restart_with_a_log_term_above_the_hard_state_adopts_it_and_saves_it() {
    // The entry of term 3 became durable, the hard state of its outbox did not.
    let mut node = Node::new(config(1, 3), recovered(2, &[1, 3], 0), 1).expect("valid");
    assert_eq!(
        node.hard_state(),
        HardState {
            term: 3,
            voted_for: None
        }
    );
    let mut out = Outbox::default();
    node.tick(&mut out);
    assert_eq!(out.hard_state, Some(node.hard_state()));
    out.clear();
    node.tick(&mut out);
    assert_eq!(out.hard_state, None, "saved once");
}

#[test]
fn restarted_follower_reverifies_before_committing() {
    let mut c = Cluster::new(3);
    c.campaign(0);
    c.propose(0, 4).expect("leader");
    c.deliver();
    c.tick_all(3);
    // Restart n2 from what it has durably; the leader's commit moves on meanwhile.
    let rec = Recovered {
        hard_state: c.hard[2],
        last_index: c.logs[2].len() as Index,
        term_runs: c.nodes[2].term_runs().to_vec(),
        commit_index: 1,
    };
    c.nodes[2] = Node::new(config(2, 3), rec, 99).expect("valid");
    c.tick_all(6);
    assert_eq!(c.nodes[2].commit_index(), 5);
}

#[test]
fn lost_acks_and_lost_tail_appends_are_recovered_by_heartbeats() {
    let mut c = Cluster::new(3);
    c.campaign(0);
    c.tick_all(3);
    // Everything n0 sends to n1 in this burst is lost.
    c.cut[0][1] = true;
    c.propose(0, 3).expect("leader");
    c.deliver();
    c.cut[0][1] = false;
    c.tick_all(6);
    assert_eq!(c.logs[1].len(), 4);
    assert_eq!(c.nodes[0].match_index(1), Some(4));
    // Now n1's acks are lost.
    c.cut[1][0] = true;
    c.propose(0, 2).expect("leader");
    c.deliver();
    c.cut[1][0] = false;
    c.tick_all(4);
    assert_eq!(c.nodes[0].match_index(1), Some(6));
}

#[test]
fn single_node_group_leads_and_commits_alone() {
    let mut c = Cluster::new(1);
    c.campaign(0);
    assert_eq!(c.leaders(), vec![0]);
    c.propose(0, 3).expect("leader");
    assert_eq!(c.nodes[0].commit_index(), 4);
}

/// The planted CommitOldTerm bug really does commit an entry of an earlier term by count
/// (the same setup as `noop_commit_rule_and_follower_acks_only_durable_entries`).
#[cfg(feature = "planted-bugs")]
#[test]
fn planted_commit_old_term_commits_by_count() {
    let mut c = Cluster::with(
        vec![
            recovered(2, &[1, 2], 1),
            recovered(2, &[1, 2], 1),
            recovered(2, &[1], 1),
        ],
        |cfg| cfg.planted = Some(PlantedBug::CommitOldTerm),
    );
    c.auto_persist = false;
    c.campaign(0);
    c.persist(0);
    c.deliver();
    c.tick_all(6);
    assert_eq!(
        c.nodes[0].commit_index(),
        2,
        "the bug commits index 2 of term 2"
    );
}

/// The planted AckBeforePersist bug acknowledges entries that are not durable.
#[cfg(feature = "planted-bugs")]
#[test]
fn planted_ack_before_persist_acks_early() {
    let recs = (0..3).map(|_| recovered(0, &[], 0)).collect();
    let mut c = Cluster::with(recs, |cfg| cfg.planted = Some(PlantedBug::AckBeforePersist));
    c.auto_persist = false;
    c.campaign(0);
    c.persist(0);
    c.deliver();
    assert_eq!(c.durable[1], 0);
    assert_eq!(
        c.nodes[0].commit_index(),
        1,
        "committed with one durable copy"
    );
}

/// The planted VoteIgnoresLog bug grants a vote to a candidate with a shorter log.
#[cfg(feature = "planted-bugs")]
#[test]
fn planted_vote_ignores_log_elects_a_stale_node() {
    let mut c = Cluster::with(
        vec![
            recovered(2, &[1], 1),
            recovered(2, &[1, 2, 2], 1),
            recovered(2, &[1, 2, 2], 1),
        ],
        |cfg| cfg.planted = Some(PlantedBug::VoteIgnoresLog),
    );
    c.campaign(0);
    assert_eq!(c.leaders(), vec![0]);
}

#[test]
fn unreachable_peer_is_probed_not_streamed_to() {
    let mut c = Cluster::new(3);
    c.campaign(0);
    c.tick_all(3);
    c.nodes[0].unreachable(1);
    let sent_before = c.sent.len();
    c.cut[0][1] = true;
    c.propose(0, 3).expect("leader");
    c.deliver();
    assert_eq!(
        c.sent[sent_before..]
            .iter()
            .filter(|m| m.to == 1 && matches!(m.body, MsgBody::Append { .. }))
            .count(),
        0,
        "no streaming to an unreachable peer"
    );
    c.cut[0][1] = false;
    c.tick_all(6);
    assert_eq!(c.nodes[0].match_index(1), Some(4));
}

#[test]
fn pipelining_sends_at_once_and_respects_the_window() {
    let mut c = Cluster::new(3);
    c.campaign(0);
    c.tick_all(3);
    // n1's acks are lost: the window (4) fills and then nothing more goes to n1.
    c.cut[1][0] = true;
    let before = c.sent.len();
    for _ in 0..10 {
        c.propose(0, 1).expect("leader");
    }
    let appends_to_1 = |c: &Cluster, from: usize| {
        c.sent[from..]
            .iter()
            .filter(|m| m.to == 1 && matches!(m.body, MsgBody::Append { count, .. } if count > 0))
            .count()
    };
    assert_eq!(
        appends_to_1(&c, before),
        4,
        "one append per proposal, up to the window"
    );
    c.deliver();
    assert_eq!(
        c.nodes[0].commit_index(),
        11,
        "n2 alone completes the majority"
    );
    c.cut[1][0] = false;
    c.tick_all(6);
    assert_eq!(c.nodes[0].match_index(1), Some(11));
}

#[test]
fn a_probing_follower_is_probed_at_most_once_per_heartbeat_interval() {
    // n1 diverges in term 2, so the leader must probe it.
    let mut c = Cluster::with(
        vec![
            recovered(3, &[1, 3, 3], 1),
            recovered(3, &[1, 2, 2, 2], 1),
            recovered(3, &[1, 3, 3], 1),
        ],
        |_| {},
    );
    // Every append to n1 is lost; heartbeats and their answers go through.
    c.lose = Some(|m| m.to == 1 && matches!(m.body, MsgBody::Append { .. }));
    c.campaign(0);
    c.tick_all(3);
    let before = c.sent.len();
    let heartbeats: usize = 20;
    c.tick_all(2 * heartbeats as u32);
    let probes = c.sent[before..]
        .iter()
        .filter(|m| m.from == 0 && m.to == 1 && matches!(m.body, MsgBody::Append { .. }))
        .count();
    assert!(
        (heartbeats - 1..=heartbeats + 1).contains(&probes),
        "one probe per heartbeat answer: {probes} in {heartbeats} heartbeat intervals"
    );
    c.lose = None;
    c.tick_all(6);
    assert_eq!(c.logs[1], c.logs[0]);
}

#[test]
fn a_healthy_busy_group_keeps_its_leader() {
    let mut c = Cluster::new(5);
    c.campaign(0);
    for _ in 0..2_000 {
        for i in 0..5 {
            c.tick(i);
        }
        c.propose(0, 3).expect("still the leader");
        c.deliver();
    }
    assert_eq!(c.leaders(), vec![0]);
    assert!(c.nodes.iter().all(|n| n.term() == 1));
    assert_eq!(c.nodes[0].commit_index(), 1 + 3 * 2_000);
    let elections = c
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Event::RoleChanged {
                    role: Role::PreCandidate,
                    ..
                }
            )
        })
        .count();
    assert_eq!(elections, 1);
}

// ---- quiescence ----

/// A 3-node group led by n0, every node reporting the others up, ticked until quiet.
fn quiesced_cluster() -> Cluster {
    let mut c = Cluster::new(3);
    c.all_alive();
    c.campaign(0);
    c.tick_all(2 * MIN_TICKS);
    assert_eq!(c.quiescent(), vec![0, 1, 2], "an idle group goes quiet");
    c
}

#[test]
fn an_idle_group_quiesces_and_then_sends_nothing() {
    let mut c = quiesced_cluster();
    let quiesce_beats =
        c.count_sent(|m| matches!(m.body, MsgBody::Heartbeat { quiesce: true, .. }));
    assert_eq!(quiesce_beats, 2, "one quiesce heartbeat per follower");
    let sent = c.sent.len();
    let events = c.events.len();
    // Ticks on quiescent nodes are no-ops: no message, no event, no election.
    c.tick_all(20 * MAX_TICKS);
    assert_eq!(c.sent.len(), sent);
    assert_eq!(c.events.len(), events);
    assert_eq!(c.leaders(), vec![0]);
    assert!(
        c.nodes
            .iter()
            .all(|n| n.term() == 1 && n.commit_index() == 1)
    );
}

#[test]
fn without_liveness_reports_nobody_quiesces() {
    let mut c = Cluster::new(3);
    c.campaign(0);
    c.tick_all(10 * MAX_TICKS);
    assert!(c.quiescent().is_empty());
    let sent = c.sent.len();
    c.tick_all(10);
    assert!(c.sent.len() > sent, "the leader keeps heartbeating");
}

#[test]
fn a_proposal_wakes_the_group_which_quiets_again() {
    let mut c = quiesced_cluster();
    c.propose(0, 3)
        .expect("a quiesced leader accepts proposals");
    assert!(!c.nodes[0].is_quiescent());
    c.deliver();
    assert!(c.quiescent().is_empty(), "the appends woke the followers");
    c.tick_all(3);
    assert!(c.nodes.iter().all(|n| n.commit_index() == 4));
    c.tick_all(2 * MIN_TICKS);
    assert_eq!(c.quiescent(), vec![0, 1, 2]);
    assert_eq!(c.leaders(), vec![0]);
}

#[test]
fn quiesced_followers_elect_a_new_leader_once_the_leaders_node_is_reported_down() {
    let mut c = quiesced_cluster();
    c.isolate(0, true);
    // Nobody is told: the followers keep waiting (liveness, not safety, needs reports).
    c.tick_all(10 * MAX_TICKS);
    assert_eq!(c.quiescent(), vec![0, 1, 2]);
    c.liveness(1, 0, false);
    c.liveness(2, 0, false);
    assert_eq!(c.quiescent(), vec![0], "the followers woke");
    c.tick_all(3 * MAX_TICKS);
    let leaders = c.leaders();
    assert!(
        leaders.len() == 2 && leaders[0] == 0 && c.nodes[leaders[1]].term() == 2,
        "a follower took over in term 2 while the isolated old leader sleeps: {leaders:?}"
    );
    // The old leader hears of its loss once it is reachable and woken.
    c.isolate(0, false);
    c.liveness(0, 1, false);
    c.liveness(0, 2, false);
    c.tick_all(3 * MAX_TICKS);
    assert_eq!(c.leaders().len(), 1);
    assert_ne!(c.leaders()[0], 0);
}

#[test]
fn a_quiesced_leader_that_loses_its_majority_wakes_and_steps_down() {
    let mut c = quiesced_cluster();
    c.isolate(0, true);
    c.liveness(0, 1, false);
    assert!(
        c.nodes[0].is_quiescent(),
        "one of two followers down: a majority is up"
    );
    c.liveness(0, 2, false);
    assert!(!c.nodes[0].is_quiescent());
    c.tick_all(2 * MAX_TICKS);
    assert_ne!(
        c.nodes[0].role(),
        Role::Leader,
        "check-quorum stepped it down"
    );
}

#[test]
fn a_leader_quiesces_without_a_down_follower_and_wakes_when_it_returns() {
    let mut c = Cluster::new(3);
    c.all_alive();
    c.campaign(0);
    c.isolate(2, true);
    c.liveness(0, 2, false);
    c.liveness(1, 2, false);
    c.tick_all(2 * MIN_TICKS);
    assert_eq!(c.quiescent(), vec![0, 1], "quiet with a majority up");
    c.propose(0, 2).expect("leader");
    c.deliver();
    c.tick_all(2 * MIN_TICKS);
    assert_eq!(c.quiescent(), vec![0, 1]);
    assert_eq!(c.nodes[0].commit_index(), 3);
    c.isolate(2, false);
    c.liveness(0, 2, true);
    assert!(
        !c.nodes[0].is_quiescent(),
        "a returning peer wakes the leader"
    );
    c.tick_all(3 * MAX_TICKS);
    assert_eq!(c.logs[2].len(), 3, "the returning follower caught up");
    assert_eq!(c.nodes[2].commit_index(), 3);
    assert_eq!(c.leaders(), vec![0]);
    assert_eq!(c.quiescent(), vec![0, 1, 2]);
}

#[test]
fn a_quiesced_follower_refuses_pre_votes_while_its_leader_is_up() {
    let mut c = quiesced_cluster();
    let pre_vote = Message {
        from: 2,
        to: 1,
        term: 2,
        body: MsgBody::PreVote {
            last_index: 1,
            last_term: 1,
        },
    };
    let mut out = Outbox::default();
    c.nodes[1].step(pre_vote, &mut out);
    assert!(out.messages.is_empty(), "in lease: not even a refusal");
    assert!(!c.nodes[1].is_quiescent(), "an unexpected message wakes it");
    assert_eq!(c.nodes[1].leader(), Some(0));
    c.apply(1, &mut out);
}

#[test]
fn answers_to_the_quiesce_heartbeat_keep_the_leader_quiet_and_others_wake_it() {
    let mut c = quiesced_cluster();
    let resp = Message {
        from: 1,
        to: 0,
        term: 1,
        body: MsgBody::HeartbeatResp { match_index: 1 },
    };
    let mut out = Outbox::default();
    c.nodes[0].step(resp, &mut out);
    assert!(c.nodes[0].is_quiescent() && out.is_empty());
    let lagging = Message {
        body: MsgBody::HeartbeatResp { match_index: 0 },
        ..resp
    };
    c.nodes[0].step(lagging, &mut out);
    assert!(
        !c.nodes[0].is_quiescent(),
        "a restarted follower's answer wakes it"
    );
    c.apply(0, &mut out);
    c.deliver();
    c.tick_all(2 * MIN_TICKS);
    assert_eq!(c.quiescent(), vec![0, 1, 2]);
}

#[test]
fn a_transfer_wakes_a_quiesced_leader_and_hands_over() {
    let mut c = quiesced_cluster();
    let mut out = Outbox::default();
    c.nodes[0].transfer_leadership(1, &mut out);
    c.apply(0, &mut out);
    c.deliver();
    c.tick_all(3);
    assert_eq!(c.leaders(), vec![1]);
    c.tick_all(2 * MIN_TICKS);
    assert_eq!(c.quiescent(), vec![0, 1, 2]);
}

#[test]
fn no_quiescence_before_the_preferred_leader_took_over() {
    let mut c = Cluster::with((0..3).map(|_| recovered(0, &[], 0)).collect(), |cfg| {
        cfg.preferred_leader = Some(2)
    });
    c.all_alive();
    c.campaign(0);
    c.tick_all(10 * MAX_TICKS);
    assert_eq!(c.leaders(), vec![2]);
    assert_eq!(c.quiescent(), vec![0, 1, 2]);
    assert_eq!(
        c.count_sent(|m| m.from == 0 && matches!(m.body, MsgBody::Heartbeat { quiesce: true, .. })),
        0,
        "n0 handed over instead of going quiet"
    );
}

//! The history checker: what the clients saw against what every replica holds.
//!
//! Pure: it takes the recorded attempts and the committed logs read back from every node
//! after all faults healed, and counts violations. Definitions (per group):
//!
//! - **reference log**: the longest committed log among the replicas read;
//! - **lost**: an acknowledged append whose value is not in the reference log at the
//!   index its acknowledgement gave (absent, or present elsewhere);
//! - **duplicated**: a value present more often than its outcome allows: an acknowledged
//!   or unknown-outcome append at most once, an append refused with a definite error
//!   (not applied) never;
//! - **misordered**: an acknowledged append B whose index is not above the index of some
//!   append A acknowledged before B was sent (real-time order);
//! - **divergent**: an index where a replica's committed entry (term or body) differs from
//!   the reference, a replica whose committed log is shorter than the reference after the
//!   heal (or could not be read), and an entry whose body no client ever attempted.

use std::collections::HashMap;

use super::value::{ValueId, decode};

/// How many examples of each kind of violation the verdict keeps.
pub const EXAMPLES_MAX: usize = 10;

/// What the client was told about an append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Committed at `index`.
    Acked { index: u64 },
    /// Refused with an error that says it was not applied.
    Failed,
    /// It may or may not have been applied (timeout, connection loss, term change, …).
    Unknown,
}

/// One append call: which value, when it was sent and answered (µs since the run
/// started, one clock), and how it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub id: ValueId,
    pub invoked_us: u64,
    pub completed_us: u64,
    pub outcome: Outcome,
}

/// One committed entry as a node returned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub index: u64,
    pub term: u64,
    pub body: Vec<u8>,
}

/// A node's committed log of one group: `entries` are consecutive from their first
/// index; `error` says why it could not be read (then `entries` holds what was read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaLog {
    pub node: String,
    pub entries: Vec<LogEntry>,
    pub error: Option<String>,
}

impl ReplicaLog {
    fn last_index(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.index)
    }
}

/// Every replica's log of one group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupLogs {
    pub group: u32,
    pub replicas: Vec<ReplicaLog>,
}

/// The counts of the last line, and a few examples of each violation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub attempted: u64,
    pub acked: u64,
    pub unknown: u64,
    pub failed: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub misordered: u64,
    pub divergent: u64,
    /// Up to [`EXAMPLES_MAX`] examples of each kind of violation.
    pub examples: Vec<String>,
    /// When the first acknowledgement that turned out wrong (lost, duplicated or
    /// misordered) reached its client: µs since the run started.
    pub first_bad_ack_us: Option<u64>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.misordered == 0 && self.divergent == 0
    }

    /// Keeps `text` if fewer than [`EXAMPLES_MAX`] examples of its kind (the word before
    /// the first ':') are kept.
    fn example(&mut self, text: String) {
        let kind = |t: &str| t.split(':').next().unwrap_or("").to_string();
        let mine = kind(&text);
        if self.examples.iter().filter(|e| kind(e) == mine).count() < EXAMPLES_MAX {
            self.examples.push(text);
        }
    }

    fn bad_ack(&mut self, a: &Attempt) {
        if matches!(a.outcome, Outcome::Acked { .. }) {
            self.first_bad_ack_us = Some(
                self.first_bad_ack_us
                    .map_or(a.completed_us, |t| t.min(a.completed_us)),
            );
        }
    }
}

/// Checks `attempts` (of run `run`) against the replicas' logs. Every group an attempt
/// names must be in `groups`; a group missing there counts its acknowledged appends as
/// lost.
pub fn check(run: u64, attempts: &[Attempt], groups: &[GroupLogs]) -> Verdict {
    let mut v = Verdict::default();
    for a in attempts {
        v.attempted += 1;
        match a.outcome {
            Outcome::Acked { .. } => v.acked += 1,
            Outcome::Unknown => v.unknown += 1,
            Outcome::Failed => v.failed += 1,
        }
    }
    let mut by_group: HashMap<u32, Vec<&Attempt>> = HashMap::new();
    for a in attempts {
        by_group.entry(a.id.group).or_default().push(a);
    }
    for logs in groups {
        let mine = by_group.remove(&logs.group).unwrap_or_default();
        check_group(run, logs, &mine, &mut v);
    }
    // Attempts of groups that were not read at all.
    for (group, mine) in by_group {
        for a in mine {
            if matches!(a.outcome, Outcome::Acked { .. }) {
                v.lost += 1;
                v.example(format!("lost: {} (group {group} was not read)", a.id));
            }
        }
    }
    v
}

fn check_group(run: u64, logs: &GroupLogs, attempts: &[&Attempt], v: &mut Verdict) {
    let Some(reference) = logs
        .replicas
        .iter()
        .filter(|r| r.error.is_none())
        .max_by_key(|r| (r.last_index(), std::cmp::Reverse(r.node.clone())))
        .or_else(|| logs.replicas.first())
    else {
        v.divergent += 1;
        v.example(format!("divergent: group {} has no replica", logs.group));
        for a in attempts {
            if matches!(a.outcome, Outcome::Acked { .. }) {
                v.lost += 1;
            }
        }
        return;
    };
    compare_replicas(logs, reference, v);

    // Where each value sits in the reference log.
    let attempted: HashMap<ValueId, &Attempt> = attempts.iter().map(|a| (a.id, *a)).collect();
    let mut seen_at: HashMap<ValueId, Vec<u64>> = HashMap::new();
    for e in &reference.entries {
        if e.body.is_empty() {
            continue; // a new leader's noop
        }
        match decode(run, &e.body) {
            Some(id) if id.group == logs.group && attempted.contains_key(&id) => {
                seen_at.entry(id).or_default().push(e.index);
            }
            _ => {
                v.divergent += 1;
                v.example(format!(
                    "divergent: group {} index {} holds a value no client attempted: {:?}",
                    logs.group,
                    e.index,
                    String::from_utf8_lossy(&e.body[..e.body.len().min(80)])
                ));
            }
        }
    }
    for a in attempts {
        let at = seen_at.get(&a.id).map_or(&[][..], Vec::as_slice);
        let allowed = match a.outcome {
            Outcome::Acked { .. } | Outcome::Unknown => 1,
            Outcome::Failed => 0,
        };
        if at.len() > allowed {
            v.duplicated += 1;
            v.bad_ack(a);
            v.example(format!(
                "duplicated: {} ({:?}) is at indexes {at:?}",
                a.id, a.outcome
            ));
        }
        if let Outcome::Acked { index } = a.outcome
            && !at.contains(&index)
        {
            v.lost += 1;
            v.bad_ack(a);
            v.example(format!(
                "lost: {} acknowledged at index {index}, found at {at:?}",
                a.id
            ));
        }
    }
    count_misordered(attempts, v);
}

/// Every replica against the reference: differing entries, and logs that end early.
fn compare_replicas(logs: &GroupLogs, reference: &ReplicaLog, v: &mut Verdict) {
    let ref_first = reference.entries.first().map_or(1, |e| e.index);
    for r in &logs.replicas {
        if std::ptr::eq(r, reference) {
            continue;
        }
        if let Some(err) = &r.error {
            v.divergent += 1;
            v.example(format!(
                "divergent: group {} on {} could not be read: {err}",
                logs.group, r.node
            ));
            continue;
        }
        for e in &r.entries {
            let Some(off) = e.index.checked_sub(ref_first) else {
                continue;
            };
            let Some(theirs) = reference.entries.get(off as usize) else {
                continue;
            };
            debug_assert_eq!(theirs.index, e.index, "reference entries are consecutive");
            if theirs.term != e.term || theirs.body != e.body {
                v.divergent += 1;
                v.example(format!(
                    "divergent: group {} index {}: {} has term {} {:?}, {} has term {} {:?}",
                    logs.group,
                    e.index,
                    r.node,
                    e.term,
                    String::from_utf8_lossy(&e.body),
                    reference.node,
                    theirs.term,
                    String::from_utf8_lossy(&theirs.body)
                ));
            }
        }
        if r.last_index() < reference.last_index() {
            v.divergent += 1;
            v.example(format!(
                "divergent: group {}: {} committed up to {}, {} up to {} after the heal",
                logs.group,
                r.node,
                r.last_index(),
                reference.node,
                reference.last_index()
            ));
        }
    }
}

/// Real-time order: sweeping the acknowledged appends by send time, every append must
/// land above each append acknowledged before it was sent.
fn count_misordered(attempts: &[&Attempt], v: &mut Verdict) {
    let mut acked: Vec<(u64, u64, u64, ValueId)> = attempts
        .iter()
        .filter_map(|a| match a.outcome {
            Outcome::Acked { index } => Some((a.invoked_us, a.completed_us, index, a.id)),
            _ => None,
        })
        .collect();
    let mut by_completion: Vec<(u64, u64, ValueId)> = acked
        .iter()
        .map(|&(_, done, idx, id)| (done, idx, id))
        .collect();
    acked.sort_unstable_by_key(|&(sent, ..)| sent);
    by_completion.sort_unstable_by_key(|&(done, ..)| done);
    let mut next = 0usize;
    // The highest index acknowledged so far, and whose it was.
    let mut highest: Option<(u64, ValueId)> = None;
    for &(sent, done, index, id) in &acked {
        while next < by_completion.len() && by_completion[next].0 < sent {
            let (_, idx, done_id) = by_completion[next];
            if highest.is_none_or(|(h, _)| idx > h) {
                highest = Some((idx, done_id));
            }
            next += 1;
        }
        if let Some((h, earlier)) = highest
            && index <= h
        {
            v.misordered += 1;
            v.first_bad_ack_us = Some(v.first_bad_ack_us.map_or(done, |t| t.min(done)));
            v.example(format!(
                "misordered: {id} sent after {earlier} was acknowledged at index {h}, \
                 yet acknowledged at index {index}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::value::encode;
    use super::*;

    const RUN: u64 = 42;

    fn id(client: u32, seq: u64) -> ValueId {
        ValueId {
            group: 0,
            client,
            seq,
        }
    }

    fn acked(client: u32, seq: u64, sent: u64, done: u64, index: u64) -> Attempt {
        Attempt {
            id: id(client, seq),
            invoked_us: sent,
            completed_us: done,
            outcome: Outcome::Acked { index },
        }
    }

    fn with(client: u32, seq: u64, outcome: Outcome) -> Attempt {
        Attempt {
            id: id(client, seq),
            invoked_us: 0,
            completed_us: 1,
            outcome,
        }
    }

    /// A log holding a noop at 1, then `values` from index 2, all in term 1.
    fn log(node: &str, values: &[ValueId]) -> ReplicaLog {
        let mut entries = vec![LogEntry {
            index: 1,
            term: 1,
            body: Vec::new(),
        }];
        for (i, v) in values.iter().enumerate() {
            entries.push(LogEntry {
                index: i as u64 + 2,
                term: 1,
                body: encode(RUN, *v),
            });
        }
        ReplicaLog {
            node: node.into(),
            entries,
            error: None,
        }
    }

    fn three(values: &[ValueId]) -> Vec<GroupLogs> {
        vec![GroupLogs {
            group: 0,
            replicas: ["n0", "n1", "n2"].iter().map(|n| log(n, values)).collect(),
        }]
    }

    fn good_history() -> (Vec<Attempt>, Vec<ValueId>) {
        let attempts = vec![
            acked(0, 0, 0, 10, 2),
            acked(1, 0, 5, 12, 3),
            with(2, 0, Outcome::Unknown),
            acked(0, 1, 11, 20, 5),
            with(1, 1, Outcome::Failed),
            with(2, 1, Outcome::Unknown),
        ];
        // c2/s0's unknown outcome landed at 4; c2/s1's never did.
        (attempts, vec![id(0, 0), id(1, 0), id(2, 0), id(0, 1)])
    }

    #[test]
    fn a_correct_history_passes() {
        let (attempts, values) = good_history();
        let v = check(RUN, &attempts, &three(&values));
        assert!(v.passed(), "{v:#?}");
        assert_eq!(
            (v.attempted, v.acked, v.unknown, v.failed),
            (6, 3, 2, 1),
            "{v:#?}"
        );
    }

    #[test]
    fn a_lost_acknowledged_append_is_caught() {
        let (attempts, mut values) = good_history();
        values.remove(1); // c1/s0 gone: later entries move down
        let v = check(RUN, &attempts, &three(&values));
        assert!(v.lost >= 1, "{v:#?}");
        assert_eq!(v.first_bad_ack_us, Some(12), "c1/s0's ack came at 12 µs");
        assert!(!v.passed());
    }

    #[test]
    fn an_append_at_another_index_than_acknowledged_is_lost() {
        let (mut attempts, values) = good_history();
        attempts[0].outcome = Outcome::Acked { index: 3 };
        attempts[1].outcome = Outcome::Acked { index: 2 };
        let v = check(RUN, &attempts, &three(&values));
        assert_eq!(v.lost, 2, "{v:#?}");
    }

    #[test]
    fn duplicates_are_caught_for_every_outcome() {
        let (attempts, mut values) = good_history();
        values.push(id(0, 0)); // acknowledged, twice
        values.push(id(2, 0)); // unknown, twice
        values.push(id(1, 1)); // refused, yet present
        let v = check(RUN, &attempts, &three(&values));
        assert_eq!(v.duplicated, 3, "{v:#?}");
        assert_eq!(v.lost, 0, "{v:#?}");
    }

    #[test]
    fn real_time_order_violations_are_caught() {
        // c1/s0 was sent after c0/s0 was acknowledged at 3, but got index 2.
        let attempts = vec![acked(0, 0, 0, 10, 3), acked(1, 0, 11, 20, 2)];
        let v = check(RUN, &attempts, &three(&[id(1, 0), id(0, 0)]));
        assert_eq!(v.misordered, 1, "{v:#?}");
        assert_eq!(v.lost, 0);
        // Overlapping calls may land in either order.
        let attempts = vec![acked(0, 0, 0, 10, 3), acked(1, 0, 9, 20, 2)];
        let v = check(RUN, &attempts, &three(&[id(1, 0), id(0, 0)]));
        assert!(v.passed(), "{v:#?}");
    }

    #[test]
    fn divergent_replicas_are_caught() {
        let (attempts, values) = good_history();
        let mut groups = three(&values);
        // n2 has another body at index 3 and a different term at index 4.
        groups[0].replicas[2].entries[2].body = encode(RUN, id(1, 1));
        groups[0].replicas[2].entries[3].term = 2;
        let v = check(RUN, &attempts, &groups);
        assert_eq!(v.divergent, 2, "{v:#?}");
    }

    #[test]
    fn a_short_or_unreadable_replica_is_divergent() {
        let (attempts, values) = good_history();
        let mut groups = three(&values);
        groups[0].replicas[1].entries.truncate(2);
        groups[0].replicas[2].error = Some("connection refused".into());
        let v = check(RUN, &attempts, &groups);
        assert_eq!(v.divergent, 2, "{v:#?}");
        assert_eq!(v.lost, 0, "the reference still holds everything");
    }

    #[test]
    fn values_never_attempted_are_caught() {
        let (attempts, mut values) = good_history();
        values.push(id(9, 9));
        let mut groups = three(&values);
        for r in &mut groups[0].replicas {
            r.entries.push(LogEntry {
                index: 7,
                term: 1,
                body: b"garbage".to_vec(),
            });
        }
        let v = check(RUN, &attempts, &groups);
        assert_eq!(v.divergent, 2, "{v:#?}");
    }

    #[test]
    fn an_unread_group_loses_its_acknowledged_appends() {
        let (attempts, _) = good_history();
        let v = check(RUN, &attempts, &[]);
        assert_eq!(v.lost, 3, "{v:#?}");
    }
}

//! The nemesis's fault schedule: a pure function of the seed, the node count and the
//! run length, so the same `--seed` replays the same faults at the same times.
//!
//! Faults come one at a time: a quiet gap, a fault held for a while, its heal, the next
//! gap. Which process "the leader" is gets decided when the fault starts (it depends on
//! the run), but that a fault aims at the leader is part of the schedule.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// Quiet time before each fault, ms.
pub const GAP_MS: (u64, u64) = (300, 2_000);
/// How long a fault is held before it heals, ms.
pub const HOLD_MS: (u64, u64) = (400, 3_000);
/// Faults start no later than this before the end, so the last heal is inside the run.
pub const TAIL_MS: u64 = 1_000;

/// A node chosen by the schedule, or the leader of group 0 when the fault starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Node(usize),
    Leader,
}

/// One fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL, restarted when the fault heals.
    Kill(Target),
    /// SIGSTOP, SIGCONT when the fault heals.
    Pause(Target),
    /// Every peer link to and from the node drops all traffic.
    Isolate(Target),
    /// The nodes in `minority` (fewer than half) hear nothing from the others and the
    /// others nothing from them.
    Split { minority: Vec<usize> },
    /// The node's messages to its peers are dropped; it still hears them (`outbound`),
    /// or the reverse.
    OneWay { node: Target, outbound: bool },
    /// The leader is asked to stop (SIGTERM): it hands leadership to a caught-up
    /// follower before it exits, and is restarted at once. The client protocol has no
    /// transfer request; this is the server's own hand-over path.
    Transfer,
}

impl Fault {
    /// A short name for the report.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Kill(_) => "kill",
            Fault::Pause(_) => "pause",
            Fault::Isolate(_) => "isolate",
            Fault::Split { .. } => "split",
            Fault::OneWay { .. } => "one-way",
            Fault::Transfer => "transfer",
        }
    }
}

/// A fault, when it starts and how long it is held (ms since the run started).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub at_ms: u64,
    pub hold_ms: u64,
    pub fault: Fault,
}

/// The schedule of a `run_ms` run over `nodes` nodes (at least 3).
pub fn schedule(seed: u64, nodes: usize, run_ms: u64) -> Vec<Step> {
    assert!(nodes >= 3, "chaos needs a group that tolerates a failure");
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut at = 0u64;
    loop {
        at += rng.random_range(GAP_MS.0..=GAP_MS.1);
        let hold_ms = rng.random_range(HOLD_MS.0..=HOLD_MS.1);
        if at + hold_ms + TAIL_MS > run_ms {
            return out;
        }
        let fault = pick(&mut rng, nodes);
        out.push(Step {
            at_ms: at,
            hold_ms,
            fault,
        });
        at += hold_ms;
    }
}

fn pick(rng: &mut Pcg64, nodes: usize) -> Fault {
    let target = |rng: &mut Pcg64| {
        if rng.random_bool(0.5) {
            Target::Leader
        } else {
            Target::Node(rng.random_range(0..nodes))
        }
    };
    match rng.random_range(0..6u32) {
        0 => Fault::Kill(target(rng)),
        1 => Fault::Pause(target(rng)),
        2 => Fault::Isolate(target(rng)),
        3 => {
            // A random minority: the largest that still leaves a majority.
            let size = rng.random_range(1..=(nodes - 1) / 2);
            let mut all: Vec<usize> = (0..nodes).collect();
            let mut minority = Vec::with_capacity(size);
            for _ in 0..size {
                minority.push(all.swap_remove(rng.random_range(0..all.len())));
            }
            minority.sort_unstable();
            Fault::Split { minority }
        }
        4 => Fault::OneWay {
            node: target(rng),
            outbound: rng.random_bool(0.5),
        },
        _ => Fault::Transfer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_others_differ() {
        let a = schedule(7, 3, 60_000);
        assert_eq!(a, schedule(7, 3, 60_000));
        assert_ne!(a, schedule(8, 3, 60_000));
        assert!(a.len() >= 10, "a minute holds many faults: {}", a.len());
    }

    #[test]
    fn faults_are_sequential_and_heal_inside_the_run() {
        for seed in 0..20 {
            let s = schedule(seed, 5, 30_000);
            let mut free_from = 0;
            for step in &s {
                assert!(step.at_ms >= free_from + GAP_MS.0, "{step:?}");
                assert!(step.at_ms + step.hold_ms + TAIL_MS <= 30_000);
                free_from = step.at_ms + step.hold_ms;
            }
        }
    }

    #[test]
    fn splits_keep_a_majority_and_every_kind_appears() {
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..10 {
            for step in schedule(seed, 5, 60_000) {
                kinds.insert(step.fault.kind());
                match &step.fault {
                    Fault::Split { minority } => {
                        assert!(!minority.is_empty() && minority.len() <= 2, "{minority:?}");
                        assert!(minority.windows(2).all(|w| w[0] < w[1]));
                    }
                    Fault::Kill(Target::Node(n)) | Fault::Pause(Target::Node(n)) => {
                        assert!(*n < 5)
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(kinds.len(), 6, "{kinds:?}");
    }
}

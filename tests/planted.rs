//! Each planted raft bug must be caught by the simulator within 2,000 seeds.
#![cfg(feature = "planted-bugs")]

use dledger::raft::PlantedBug;
use dledger::testing::{SimOptions, run_seed};

const SEED_BUDGET: u64 = 2_000;

fn caught(bug: PlantedBug) {
    let opts = SimOptions {
        planted: Some(bug),
        ..SimOptions::default()
    };
    for seed in 0..SEED_BUDGET {
        let r = run_seed(&opts, seed);
        if let Some(v) = &r.violation {
            eprintln!(
                "{bug:?} caught at seed {seed}: {v}\n  replay: {}",
                opts.replay_command(seed)
            );
            // The failing seed must replay to the very same violation.
            assert_eq!(
                run_seed(&opts, seed),
                r,
                "seed {seed} did not replay identically"
            );
            return;
        }
    }
    panic!("{bug:?} was not caught within {SEED_BUDGET} seeds");
}

#[test]
fn vote_ignores_log_is_caught() {
    caught(PlantedBug::VoteIgnoresLog);
}

#[test]
fn commit_old_term_is_caught() {
    caught(PlantedBug::CommitOldTerm);
}

#[test]
fn ack_before_persist_is_caught() {
    caught(PlantedBug::AckBeforePersist);
}

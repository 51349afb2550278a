//! A fixed set of simulator seeds over 3 and 5 nodes and several group counts: the real
//! raft core must keep every invariant and recover liveness after the faults heal.

use dledger::testing::{SimOptions, run_seed};

fn run_range(nodes: usize, groups: usize, seeds: std::ops::Range<u64>) {
    let opts = SimOptions {
        nodes,
        groups,
        ..SimOptions::default()
    };
    let mut failures = Vec::new();
    let mut committed = 0;
    for seed in seeds.clone() {
        let r = run_seed(&opts, seed);
        committed += r.stats.committed;
        if let Some(v) = &r.violation {
            failures.push(format!(
                "seed {seed}: {v}\n  replay: {}",
                opts.replay_command(seed)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing seed(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every seed ends only after each group committed a post-heal proposal.
    assert!(
        committed >= (seeds.end - seeds.start) * groups as u64,
        "too little was committed: {committed}"
    );
}

#[test]
fn three_nodes_one_group() {
    run_range(3, 1, 0..200);
}

#[test]
fn three_nodes_four_groups() {
    run_range(3, 4, 1000..1080);
}

#[test]
fn five_nodes_one_group() {
    run_range(5, 1, 2000..2120);
}

#[test]
fn five_nodes_three_groups() {
    run_range(5, 3, 3000..3050);
}

#[test]
fn three_nodes_sixteen_groups() {
    run_range(3, 16, 4000..4010);
}

#[test]
fn a_seed_replays_identically() {
    let opts = SimOptions {
        nodes: 5,
        groups: 3,
        ..SimOptions::default()
    };
    for seed in [7, 8, 9] {
        let a = run_seed(&opts, seed);
        let b = run_seed(&opts, seed);
        assert!(a == b, "seed {seed} ran differently:\n{a:?}\n{b:?}");
        assert!(a.stats.events > 0 && a.stats.elections > 0);
    }
}

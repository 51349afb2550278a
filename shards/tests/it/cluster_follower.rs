//! A SIGKILLed follower misses appends, restarts, catches up, and then counts toward the
//! quorum again (the other follower is killed and appends still commit).

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use common::cluster::TestCluster;
use common::log::{
    append_tasks, assert_acked_in, read_group, replica_log, test_client, wait_until,
};
use dledger::config::HostPort;
use dledger_shards::client::block_on;

const GROUP: &str = "RaftNode00";

/// Appends `n` bodies `<tag>-<i>` from 8 tasks; returns (index, body) of each.
fn append_many(peers: Vec<HostPort>, tag: &'static str, n: u64) -> Vec<(u64, Bytes)> {
    const TASKS: u64 = 8;
    block_on("load", || async move {
        let client = test_client(peers, GROUP).await;
        let bodies = (0..TASKS)
            .map(|t| {
                (t..n)
                    .step_by(TASKS as usize)
                    .map(|i| Bytes::from(format!("{tag}-{i}")))
                    .collect()
            })
            .collect();
        append_tasks(&client, bodies).await.concat()
    })
    .expect("executor")
}

#[test]
fn killed_follower_catches_up_and_serves_the_quorum_again() {
    let mut c = TestCluster::three_nodes();
    c.start_all();
    let leader = c.wait_for_leader(GROUP, Duration::from_secs(20));
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let (lagger, other) = (followers[0], followers[1]);
    let peers = c.client_addrs();

    let mut acked = append_many(peers.clone(), "before", 100);
    c.kill(lagger);
    acked.extend(append_many(peers.clone(), "while-down", 1000));
    let target = acked.iter().map(|a| a.0).max().expect("acked");
    c.restart(lagger);
    wait_until(
        Duration::from_secs(30),
        "the restarted follower to catch up",
        || {
            let m = c.metadata_of(lagger, GROUP).ok()?;
            (m.ledger_end >= target && m.commit_index >= target).then_some(())
        },
    );
    // Now the caught-up follower is needed: without it there is no majority.
    c.kill(other);
    acked.extend(append_many(peers.clone(), "after", 100));
    let log = read_group(peers, GROUP);
    assert_acked_in(&log, &acked);
    // The restarted follower's own copy equals the leader's, entry by entry (index, term,
    // position, body), up to what it has committed.
    let addr = c.nodes[lagger].client_addr.clone();
    match replica_log(&addr, GROUP) {
        Some(replica) => {
            assert!(
                replica.len() as u64 >= target,
                "{} < {target}",
                replica.len()
            );
            for (r, l) in replica.iter().zip(&log) {
                assert_eq!(r, l, "replica differs from the leader at index {}", l.index);
            }
        }
        None => eprintln!("the follower serves gets only as leader; replica not compared"),
    }
}

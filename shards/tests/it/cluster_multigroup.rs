//! 3 nodes x 8 groups (conf/multigroup): every group elects, takes appends concurrently with
//! the others, keeps its own log, and ends up led by its preferred leader.

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use common::cluster::TestCluster;
use common::log::{assert_acked_in, read_committed, test_client, wait_until};
use dledger_shards::client::block_on;

#[test]
fn eight_groups_on_three_nodes_keep_separate_logs() {
    let mut c = TestCluster::multigroup();
    c.start_all();
    let groups = c.groups();
    assert_eq!(groups.len(), 8);
    for g in &groups {
        c.wait_for_leader(g, Duration::from_secs(30));
    }
    let peers = c.client_addrs();
    block_on("multigroup", || async move {
        let mut tasks = Vec::new();
        for g in groups.clone() {
            let peers = peers.clone();
            tasks.push(glommio::spawn_local(async move {
                let client = test_client(peers, &g).await;
                let mut acked = Vec::new();
                for i in 0..40 {
                    let body = Bytes::from(format!("{g}-{i}"));
                    let e = client
                        .append(std::slice::from_ref(&body))
                        .await
                        .expect("append");
                    acked.push((e[0].index, body));
                }
                let log = read_committed(&client).await.expect("read");
                assert_acked_in(&log, &acked);
                // Nothing from another group.
                let prefix = format!("{g}-");
                assert!(
                    log.iter()
                        .filter(|e| !e.body.is_empty())
                        .all(|e| e.body.starts_with(prefix.as_bytes())),
                    "{g} holds another group's entries"
                );
            }));
        }
        for t in tasks {
            t.await;
        }
    })
    .expect("executor");
}

#[test]
fn each_group_ends_up_led_by_its_preferred_leader() {
    let mut c = TestCluster::multigroup();
    c.start_all();
    // conf/multigroup: RaftNode0k prefers n(k mod 3).
    for (k, g) in c.groups().iter().enumerate() {
        let preferred = k % 3;
        wait_until(Duration::from_secs(30), "the preferred leader", || {
            let m = c.metadata_of(preferred, g).ok()?;
            (m.role == dledger::raft::Role::Leader).then_some(())
        });
    }
}

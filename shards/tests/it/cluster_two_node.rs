//! A two-node group: both are needed for a majority. With one down appends fail (with a
//! clear error, within the call deadline); after the restart they succeed again and
//! nothing acknowledged before is lost.

use crate::common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::cluster::TestCluster;
use common::log::{assert_acked_in, read_group, test_options};
use dledger_shards::client::{Client, ClientOptions, block_on};

const GROUP: &str = "RaftNode00";

#[test]
fn two_node_group_needs_both_and_recovers_after_restart() {
    let mut c = TestCluster::two_nodes();
    c.start_all();
    let leader = c.wait_for_leader(GROUP, Duration::from_secs(20));
    let follower = 1 - leader;
    let peers = c.client_addrs();
    let append = |tag: String, deadline_ms: u64| {
        let peers = peers.clone();
        block_on("append", || async move {
            let opts = ClientOptions {
                call_deadline_ms: deadline_ms,
                ..test_options()
            };
            let client = Client::connect(peers, GROUP, opts).await?;
            let mut acked = Vec::new();
            for i in 0..20 {
                let body = Bytes::from(format!("{tag}-{i}"));
                let e = client.append(std::slice::from_ref(&body)).await?;
                acked.push((e[0].index, body));
            }
            Ok::<_, dledger_shards::client::ClientError>(acked)
        })
        .expect("executor")
    };
    let mut acked = append("both-up".into(), 20_000).expect("appends with both nodes");
    c.kill(follower);
    let started = Instant::now();
    let err = append("one-down".into(), 3_000).expect_err("no majority with one of two");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "bounded failure"
    );
    eprintln!("with one of two nodes down: {err}");
    c.restart(follower);
    c.wait_for_leader(GROUP, Duration::from_secs(20));
    acked.extend(append("both-again".into(), 20_000).expect("appends after restart"));
    assert_acked_in(&read_group(peers, GROUP), &acked);
}

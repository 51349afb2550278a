//! SIGKILL the leader under load: a new leader serves within seconds and the log accounts
//! for every append exactly: each acknowledged body once, at its acknowledged index; each
//! append whose outcome is unknown at most once; each refused append not at all; nothing
//! else.

use crate::common;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::cluster::TestCluster;
use common::log::{read_group, test_options};
use dledger::config::HostPort;
use dledger_shards::client::{Client, ClientOptions, block_on};

const GROUP: &str = "RaftNode00";
const WORKERS: u64 = 16;
/// A new leader must serve within this (liveness, not speed: speed is the perf harness's).
const FAILOVER_BOUND: Duration = Duration::from_secs(15);

#[derive(Debug)]
enum Outcome {
    /// `sent`: when the call started; `at`: when it was acknowledged.
    Acked {
        index: u64,
        sent: Instant,
        at: Instant,
    },
    Unknown,
    Refused,
}

fn run_load(peers: Vec<HostPort>, stop: Arc<AtomicBool>) -> Vec<(Bytes, Outcome)> {
    block_on("load", || async move {
        let opts = ClientOptions {
            // Exactly-once accounting needs to see ambiguous outcomes, not retry them.
            retry_unknown_outcome: false,
            call_deadline_ms: 3_000,
            ..test_options()
        };
        let client = Rc::new(Client::connect(peers, GROUP, opts).await.expect("connect"));
        let tasks: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (client, stop) = (client.clone(), stop.clone());
                glommio::spawn_local(async move {
                    let mut out = Vec::new();
                    let mut last_index = 0;
                    let mut seq = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let body = Bytes::from(format!("w{w}-{seq}"));
                        seq += 1;
                        let sent = Instant::now();
                        let outcome = match client.append(std::slice::from_ref(&body)).await {
                            Ok(e) => {
                                // A worker's appends are sequential: indexes increase.
                                assert!(
                                    e[0].index > last_index,
                                    "{} after {last_index}",
                                    e[0].index
                                );
                                last_index = e[0].index;
                                Outcome::Acked {
                                    index: e[0].index,
                                    sent,
                                    at: Instant::now(),
                                }
                            }
                            Err(e) if e.outcome_unknown => Outcome::Unknown,
                            Err(_) => Outcome::Refused,
                        };
                        out.push((body, outcome));
                    }
                    out
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await);
        }
        all
    })
    .expect("executor")
}

#[test]
fn leader_kill_under_load_loses_no_acknowledged_append_and_duplicates_none() {
    let mut c = TestCluster::three_nodes();
    c.start_all();
    let old_leader = c.wait_for_leader(GROUP, Duration::from_secs(20));
    let peers = c.client_addrs();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (peers, stop) = (peers.clone(), stop.clone());
        std::thread::spawn(move || run_load(peers, stop))
    };
    std::thread::sleep(Duration::from_secs(1));
    let killed_at = Instant::now();
    c.kill(old_leader);
    let new_leader = c.wait_for_leader(GROUP, FAILOVER_BOUND);
    assert_ne!(new_leader, old_leader);
    std::thread::sleep(Duration::from_secs(1));
    c.restart(old_leader);
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let outcomes = load.join().expect("load thread");

    // Only a call started after the kill must have been served by a new leader (acks of
    // earlier calls may still arrive from the old one).
    let first_ack_after_kill = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Acked { sent, at, .. } if *sent > killed_at => Some(*at),
            _ => None,
        })
        .min()
        .expect("appends are acknowledged again after the kill");
    let failover = first_ack_after_kill - killed_at;
    eprintln!(
        "failover: first append started after the SIGKILL acknowledged {failover:?} after it"
    );
    assert!(failover < FAILOVER_BOUND, "{failover:?}");

    let log = read_group(peers, GROUP);
    let mut where_in_log: HashMap<&[u8], Vec<u64>> = HashMap::new();
    for e in &log {
        if !e.body.is_empty() {
            where_in_log.entry(&e.body[..]).or_default().push(e.index);
        }
    }
    let (mut acked, mut unknown, mut refused) = (0, 0, 0);
    for (body, outcome) in &outcomes {
        let found = where_in_log.remove(&body[..]).unwrap_or_default();
        match outcome {
            Outcome::Acked { index, .. } => {
                acked += 1;
                assert_eq!(found, vec![*index], "acked {body:?} at {index}");
            }
            Outcome::Unknown => {
                unknown += 1;
                assert!(found.len() <= 1, "{body:?} appears {} times", found.len());
            }
            Outcome::Refused => {
                refused += 1;
                assert!(
                    found.is_empty(),
                    "refused {body:?} is in the log at {found:?}"
                );
            }
        }
    }
    assert!(
        where_in_log.is_empty(),
        "bodies nobody appended are in the log: {:?}",
        where_in_log.keys().take(5).collect::<Vec<_>>()
    );
    eprintln!("acked {acked}, outcome unknown {unknown}, refused {refused}");
    assert!(acked > 0);

    // The restarted old leader catches up with the log.
    let end = log.last().map_or(0, |e| e.index);
    common::log::wait_until(
        Duration::from_secs(20),
        "the old leader to catch up",
        || {
            let m = c.metadata_of(old_leader, GROUP).ok()?;
            (m.commit_index >= end).then_some(())
        },
    );
}

//! Three real nodes (conf/dledger/broker-n{0,1,2}.conf): election, pipelined appends, reads
//! back, every replica's commit point, and the CLI against the running cluster.

mod common;

use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use common::cluster::TestCluster;
use common::log::{read_committed, test_options, wait_until};
use dledger_shards::client::{Client, block_on};

const GROUP: &str = "RaftNode00";

#[test]
fn three_nodes_elect_append_pipelined_and_read_back() {
    let mut c = TestCluster::three_nodes();
    c.start_all();
    c.wait_for_leader(GROUP, Duration::from_secs(20));
    let peers = c.client_addrs();
    const TASKS: u64 = 16;
    const PER_TASK: u64 = 25;
    let (acked, last) = block_on("basic", || async move {
        let client = Rc::new(
            Client::connect(peers, GROUP, test_options())
                .await
                .expect("connect"),
        );
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let client = client.clone();
                glommio::spawn_local(async move {
                    let mut acked = Vec::new();
                    for s in 0..PER_TASK {
                        let body = Bytes::from(format!("t{t}-s{s}"));
                        let e = client
                            .append(std::slice::from_ref(&body))
                            .await
                            .expect("append");
                        acked.push((e[0].index, body));
                    }
                    acked
                })
            })
            .collect();
        let mut acked = Vec::new();
        for t in tasks {
            let mine = t.await;
            // One task's appends are sequential: their indexes increase.
            assert!(mine.windows(2).all(|w| w[0].0 < w[1].0), "{mine:?}");
            acked.extend(mine);
        }
        // A batch is committed together, at consecutive indexes.
        let batch: Vec<Bytes> = (0..10).map(|i| Bytes::from(format!("batch-{i}"))).collect();
        let e = client.append(&batch).await.expect("batch append");
        assert!(e.windows(2).all(|w| w[1].index == w[0].index + 1), "{e:?}");
        assert!(e.windows(2).all(|w| w[1].pos > w[0].pos), "{e:?}");
        acked.extend(e.iter().map(|x| x.index).zip(batch));
        let log = read_committed(&client).await.expect("read back");
        for (index, body) in &acked {
            let got = log
                .iter()
                .find(|g| g.index == *index)
                .expect("acked index present");
            assert_eq!(&got.body, body, "index {index}");
        }
        let last = acked.iter().map(|a| a.0).max().expect("some");
        (acked.len(), last)
    })
    .expect("executor");
    assert_eq!(acked as u64, TASKS * PER_TASK + 10);
    // Every replica reaches the last acknowledged index.
    for i in 0..c.len() {
        wait_until(Duration::from_secs(10), "replicas to commit", || {
            let m = c.metadata_of(i, GROUP).ok()?;
            (m.commit_index >= last && m.ledger_end >= last).then_some(())
        });
    }
}

#[test]
fn cli_append_get_and_metadata_against_a_cluster() {
    let mut c = TestCluster::three_nodes();
    c.start_all();
    c.wait_for_leader(GROUP, Duration::from_secs(20));
    let dledger = env!("CARGO_BIN_EXE_dledger");
    let peers = c.peers_arg();
    let out = Command::new(dledger)
        .args(["append", "--peers", &peers, "--group", GROUP])
        .args(["-d", "hello-cli", "-c", "2000"])
        .output()
        .expect("run append");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("last index: "))
        .expect("prints the last index")
        .trim()
        .parse()
        .expect("a number");
    assert!(stdout.contains("appended 2000 entries"), "{stdout}");
    eprintln!("{stdout}");
    assert!(stdout.contains("p99"), "{stdout}");

    let out = Command::new(dledger)
        .args([
            "get",
            "--peers",
            &peers,
            "--group",
            GROUP,
            "-i",
            &last.to_string(),
        ])
        .output()
        .expect("run get");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with(&format!("index={last} ")), "{stdout}");
    assert!(stdout.trim_end().ends_with("body=hello-cli"), "{stdout}");

    let out = Command::new(dledger)
        .args(["metadata", "--peers", &peers, "--group", GROUP])
        .output()
        .expect("run metadata");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for key in ["leader", "term", "commit", "ledger", "peers"] {
        assert!(stdout.contains(key), "{key} missing in:\n{stdout}");
    }
    assert_eq!(stdout.matches(" peer 127.0.0.1:").count(), 3, "{stdout}");

    // Past the end: a clear error and a non-zero exit.
    let out = Command::new(dledger)
        .args([
            "get",
            "--peers",
            &peers,
            "--group",
            GROUP,
            "-i",
            &(last + 1000).to_string(),
        ])
        .output()
        .expect("run get");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no committed entry"));

    // An unknown group: the code name and the address in the message.
    let out = Command::new(dledger)
        .args([
            "metadata",
            "--peers",
            &peers,
            "--group",
            "NoSuchGroup",
            "--timeout-ms",
            "3000",
        ])
        .output()
        .expect("run metadata");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("UNKNOWN_GROUP") && err.contains("127.0.0.1:"),
        "{err}"
    );
}

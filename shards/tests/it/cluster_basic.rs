//! Three real nodes (conf/dledger/broker-n{0,1,2}.conf): election, pipelined appends, reads
//! back, every replica's commit point, and the CLI against the running cluster.

use crate::common;

use std::process::{Command, Output};
use std::time::Duration;

use bytes::Bytes;
use common::cluster::TestCluster;
use common::log::{append_tasks, assert_acked_in, read_committed, test_client, wait_until};
use dledger_shards::client::block_on;

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
        let client = test_client(peers, GROUP).await;
        let bodies = (0..TASKS)
            .map(|t| {
                (0..PER_TASK)
                    .map(|s| Bytes::from(format!("t{t}-s{s}")))
                    .collect()
            })
            .collect();
        let mut acked = Vec::new();
        for mine in append_tasks(&client, bodies).await {
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
        assert_acked_in(&log, &acked);
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
    let peers = c.peers_arg();
    let stdout = cli_ok(&[
        "append",
        "--peers",
        &peers,
        "--group",
        GROUP,
        "-d",
        "hello-cli",
        "-c",
        "2000",
    ]);
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

    let get = |index: u64| {
        cli(&[
            "get",
            "--peers",
            &peers,
            "--group",
            GROUP,
            "-i",
            &index.to_string(),
        ])
    };
    let stdout = ok_stdout(get(last));
    assert!(stdout.starts_with(&format!("index={last} ")), "{stdout}");
    assert!(stdout.trim_end().ends_with("body=hello-cli"), "{stdout}");

    let stdout = cli_ok(&["metadata", "--peers", &peers, "--group", GROUP]);
    for key in ["leader", "term", "commit", "ledger", "peers"] {
        assert!(stdout.contains(key), "{key} missing in:\n{stdout}");
    }
    assert_eq!(stdout.matches(" peer 127.0.0.1:").count(), 3, "{stdout}");

    // Past the end: a clear error and a non-zero exit.
    let out = get(last + 1000);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no committed entry"));

    // An unknown group: the code name and the address in the message.
    let out = cli(&[
        "metadata",
        "--peers",
        &peers,
        "--group",
        "NoSuchGroup",
        "--timeout-ms",
        "3000",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("UNKNOWN_GROUP") && err.contains("127.0.0.1:"),
        "{err}"
    );
}

/// Runs this build's `dledger` CLI with `args`.
fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dledger"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running dledger {args:?}: {e}"))
}

/// The standard output of a run that must succeed.
fn ok_stdout(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs the CLI with `args`, which must succeed; its standard output.
fn cli_ok(args: &[&str]) -> String {
    ok_stdout(cli(args))
}

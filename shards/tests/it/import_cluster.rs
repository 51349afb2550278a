//! Imported prefixes with real `dledger server` processes: three nodes that imported
//! identical copies of a CommitLog form the group and replicate from there; a node
//! that imported a different copy refuses to form the group with the others (and they
//! with it), saying where the prefixes differ, while the other two go on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::import_common;

use std::time::{Duration, Instant};

use common::cluster::TestCluster;
use dledger::upgrade::fixtures::CommitLogImage;
use import_common::{GROUP, dledger, import_on, sample_commitlog, text};

const MESSAGES: u32 = 120;

fn commitlog(changed: Option<u32>) -> CommitLogImage {
    sample_commitlog(MESSAGES, changed)
}

/// Waits until `check` holds for node `i`'s metadata.
fn wait_node(
    cluster: &TestCluster,
    i: usize,
    what: &str,
    check: impl Fn(&dledger::wire::MetadataResponse) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if cluster.metadata_of(i, GROUP).is_ok_and(|m| check(&m)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "node {i}: {what} did not happen; last metadata {:?}; logs:\n{}",
        cluster.metadata_of(i, GROUP),
        cluster.all_log_tails(3000)
    );
}

fn append(cluster: &TestCluster, data: &str) {
    let out = dledger(&[
        "append",
        "--peers",
        &cluster.peers_arg(),
        "--group",
        GROUP,
        "-d",
        data,
    ]);
    assert!(
        out.status.success(),
        "append: {}\n{}",
        text(&out),
        cluster.all_log_tails(3000)
    );
}

#[test]
fn identical_imports_form_a_group_and_a_differing_one_is_refused() {
    let n = u64::from(MESSAGES);

    // Identical copies on all three nodes.
    let mut same = import_common::three_nodes();
    let img = commitlog(None);
    for node in 0..3 {
        import_on(&same, node, &img);
    }
    same.start_all();
    same.wait_for_leader(GROUP, Duration::from_secs(20));
    append(&same, "after-the-import");
    // The leader's own empty entry (n + 1), then the append (n + 2), on every node.
    for i in 0..3 {
        wait_node(&same, i, "replicating past the import", |m| {
            m.ledger_end >= n + 2 && m.commit_index >= n + 2
        });
    }
    let got = dledger(&[
        "get",
        "--peers",
        &same.peers_arg(),
        "--group",
        GROUP,
        "-i",
        "1",
        "--hex",
    ]);
    assert!(got.status.success(), "{}", text(&got));
    let hex: String = img.messages[0]
        .1
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        String::from_utf8_lossy(&got.stdout).contains(&format!(
            "index=1 term=1 pos=0 len={}",
            img.messages[0].1.len()
        )) && String::from_utf8_lossy(&got.stdout).contains(&hex),
        "{}",
        text(&got)
    );
    // The running replicas agree, checked through the client protocol.
    let live = dledger(&["check", "--peers", &same.peers_arg(), "--group", GROUP]);
    assert!(live.status.success(), "{}", text(&live));
    assert!(
        String::from_utf8_lossy(&live.stdout).contains("replicas agree on"),
        "{}",
        text(&live)
    );
    drop(same);

    // Node 2 imports a copy whose message 70 differs.
    let mut split = import_common::three_nodes();
    let other = commitlog(Some(70));
    import_on(&split, 0, &img);
    import_on(&split, 1, &img);
    import_on(&split, 2, &other);
    split.start_all();
    let leader = split.wait_for_leader(GROUP, Duration::from_secs(20));
    assert_ne!(leader, 2, "the odd node cannot lead");
    append(&split, "without-node-2");
    for i in 0..2 {
        wait_node(&split, i, "replicating without node 2", |m| {
            m.commit_index >= n + 2
        });
    }
    // Node 2 got nothing from the others and says where the prefixes part.
    let m2 = split.metadata_of(2, GROUP).expect("node 2 answers");
    assert_eq!(m2.ledger_end, n, "node 2 keeps only its own import");
    let log2 = split.log_tail(2, 1 << 16);
    assert!(
        log2.contains("refusing to form the group with node")
            && log2.contains("imported prefixes differ at index"),
        "node 2's log:\n{log2}"
    );
    let log_leader = split.log_tail(leader, 1 << 16);
    assert!(
        log_leader.contains("refusing to form the group with node 2"),
        "leader's log:\n{log_leader}"
    );
}

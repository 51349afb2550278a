//! `dledger check`: replicas built with the real import (so in the real store format)
//! agree; flipping one byte of one replica's record, or importing a copy with one
//! message changed, is reported at the first divergent index with its position and
//! segment file, and the exit code is non-zero.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::import_common;

use common::cluster::TestCluster;
use dledger::store::SegmentName;
use dledger::upgrade::fixtures::CommitLogImage;
use import_common::{GROUP, dledger, group_dir, import_on, read_log, sample_commitlog, text};

const MESSAGES: u32 = 60;

fn commitlog(changed: Option<u32>) -> CommitLogImage {
    sample_commitlog(MESSAGES, changed)
}

fn check(cluster: &TestCluster) -> std::process::Output {
    let mut args = vec!["check", "--group", GROUP];
    for n in &cluster.nodes {
        args.push("-c");
        args.push(n.config_path.to_str().unwrap());
    }
    dledger(&args)
}

#[test]
fn a_flipped_byte_in_one_replica_is_reported_at_its_index() {
    let cluster = import_common::three_nodes();
    let img = commitlog(None);
    for node in 0..3 {
        import_on(&cluster, node, &img);
    }
    let ok = check(&cluster);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("replicas agree"),
        "{}",
        text(&ok)
    );

    // Flip one body byte of entry 37 in node 2's segment file.
    let config0 = &cluster.nodes[0].config_path;
    let (index, _, pos, _) = read_log(config0, GROUP)[36].clone();
    let seg_bytes = import_common::log_config(config0, GROUP).segment_bytes;
    let seg = pos - pos % seg_bytes;
    let path = group_dir(&cluster.nodes[2].config_path, GROUP)
        .join("data")
        .join(SegmentName(seg).to_string());
    let mut bytes = std::fs::read(&path).unwrap();
    let at = (pos - seg) as usize + 48 + 100;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let bad = check(&cluster);
    assert!(!bad.status.success(), "{}", text(&bad));
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(
        out.contains(&format!(
            "DIVERGENCE at index {index} pos {pos}: segment file {} byte offset {}",
            SegmentName(seg),
            pos - seg
        )),
        "{}",
        text(&bad)
    );
    assert!(
        out.contains("only n0 has") && out.contains("n2's log stops at"),
        "{}",
        text(&bad)
    );
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains(&format!("first divergent index {index}")),
        "{}",
        text(&bad)
    );
}

#[test]
fn a_replica_with_a_different_record_is_reported_with_both_sides() {
    let cluster = import_common::three_nodes();
    import_on(&cluster, 0, &commitlog(None));
    import_on(&cluster, 1, &commitlog(Some(20)));
    import_on(&cluster, 2, &commitlog(None));
    let bad = check(&cluster);
    assert!(!bad.status.success(), "{}", text(&bad));
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(
        out.contains("DIVERGENCE at index 21 ")
            && out.contains("n0 has index 21")
            && out.contains("n1 has index 21"),
        "{}",
        text(&bad)
    );
}

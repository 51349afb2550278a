//! Hosts, not just ports: three nodes in three network namespaces with their own
//! addresses; the nemesis cuts nodes off by taking their links down (and kills, pauses,
//! hands over); appends go on and the checker passes after the heal.
//!
//! Needs root and `ip netns`; without them the test says why and passes as skipped.

use std::process::Command;

mod chaos_support;
use chaos_support::{field, last_line};

#[test]
fn chaos_in_network_namespaces_passes() {
    if let Err(why) = dledger_perf::chaos::netns::available() {
        eprintln!("chaos_in_network_namespaces_passes: skipped: {why}");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_dledger-perf"))
        .args(["chaos", "--netns", "--seconds", "20", "--seed", "11"])
        .output()
        .expect("run dledger-perf chaos --netns");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = last_line(&stdout);
    let report = || format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "chaos --netns failed:\n{}", report());
    assert!(field(&line, "faults") > 0, "{}", report());
    assert!(field(&line, "acked") > 0, "{}", report());
    assert!(
        stdout.contains("isolate") || stdout.contains("split") || stdout.contains("drop"),
        "no link was taken down:\n{}",
        report()
    );
}

//! The chaos checker catches a server that acknowledges without a quorum.
//!
//! Runs `dledger-perf chaos` with every node started as `server --planted-bug
//! ack-without-quorum` (the leader acknowledges on its own durable write alone) and
//! expects the run to fail with lost or divergent appends. Needs the `planted-bugs`
//! feature: `cargo test -p dledger-perf --release --features planted-bugs --test
//! chaos_planted`.

#![cfg(feature = "planted-bugs")]

use std::process::Command;

mod chaos_support;
use chaos_support::{field, last_line};

#[test]
fn chaos_catches_acks_without_quorum() {
    let out = Command::new(env!("CARGO_BIN_EXE_dledger-perf"))
        .args([
            "chaos",
            "--seconds",
            "20",
            "--seed",
            "3",
            "--planted-bug",
            "ack-without-quorum",
        ])
        .output()
        .expect("run dledger-perf chaos");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = last_line(&stdout);
    let lost = field(&line, "lost");
    let divergent = field(&line, "divergent");
    assert!(
        lost > 0 || divergent > 0,
        "the planted bug went unnoticed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "a failing check must fail the run");
}

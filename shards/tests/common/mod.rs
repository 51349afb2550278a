//! Helpers shared by the cluster integration tests.
#![allow(dead_code)] // each test binary uses a different part

pub mod cluster;
pub mod log;

/// True when this build's `dledger server` can run a node (the server is merged): the
/// cluster tests are `#[ignore]`d otherwise; see their attributes.
pub fn server_available() -> bool {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dledger"))
        .args(["server", "-c", "/nonexistent/dledger-probe.conf"])
        .output()
        .expect("run dledger");
    !String::from_utf8_lossy(&out.stderr).contains("not yet merged")
}

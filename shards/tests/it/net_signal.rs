//! SIGTERM stops every shard. The signal flag and the handlers are process-wide (a raised
//! SIGTERM would stop the runtimes of every other test in this binary), so the test runs
//! in a child process of its own: this binary, re-executed for `sigterm_child` only.

use dledger_shards::runtime::{Runtime, RuntimeConfig, ShardContext, install_signal_handlers};

use crate::common::child::child_test;

/// Set for the child; without it `sigterm_child` does nothing (e.g. in a plain
/// `--ignored` run, which would otherwise raise SIGTERM in the shared process).
const CHILD_ENV: &str = "DLEDGER_SIGTERM_CHILD";
const CHILD: &str = "net_signal::sigterm_child";

#[test]
fn sigterm_stops_every_shard() {
    let out = child_test(CHILD)
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the child failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Proof that the child ran the test rather than filtering it out.
    assert!(
        stdout.contains(&format!("test {CHILD} ... ok")) && stdout.contains("1 passed"),
        "{stdout}"
    );
}

#[test]
#[ignore = "run by sigterm_stops_every_shard in a child process"]
fn sigterm_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    install_signal_handlers().expect("install handlers");
    let config = RuntimeConfig {
        shards: Some(2),
        pin: false,
        io_memory_bytes: 256 << 10,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::start(&config, |context: ShardContext<()>| async move {
        context.stop.wait().await;
    })
    .expect("start");
    assert!(!runtime.stop_handle().is_stopping());
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).expect("raise SIGTERM");
    assert!(runtime.stop_handle().is_stopping());
    assert_eq!(runtime.join().expect("every shard returns").len(), 2);
}

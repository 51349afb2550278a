//! SIGTERM stops every shard (its own test binary: the signal flag is process-wide).

use dledger_shards::runtime::{Runtime, RuntimeConfig, ShardContext, install_signal_handlers};

#[test]
fn sigterm_stops_every_shard() {
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

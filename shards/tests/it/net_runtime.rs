//! The shard runtime: shard ids, the cross-shard mesh, pinning and the stop request.

use std::time::Duration;

use dledger_shards::runtime::{Runtime, RuntimeConfig, ShardContext, shard_count};

fn small(shards: usize) -> RuntimeConfig {
    RuntimeConfig {
        shards: Some(shards),
        pin: false,
        io_memory_bytes: 256 << 10,
        mesh_channel_capacity: 4,
        ..RuntimeConfig::default()
    }
}

/// Every shard sends its id to every other shard over the mesh built at start-up and
/// returns the sum of what it received.
#[test]
fn shards_get_distinct_ids_and_talk_over_the_mesh() {
    const SHARDS: usize = 3;
    let runtime = Runtime::start(
        &small(SHARDS),
        |mut context: ShardContext<usize>| async move {
            assert_eq!(context.shard_count, SHARDS);
            for other in (0..SHARDS).filter(|&other| other != context.shard_id) {
                context
                    .mesh_tx
                    .send_to(other, context.shard_id)
                    .await
                    .expect("mesh peer alive");
            }
            let mut received = Vec::new();
            for (from, receiver) in context.mesh_rx.streams() {
                let value = receiver.recv().await.expect("a message from every shard");
                assert_eq!(value, from);
                received.push(value);
            }
            (context.shard_id, received.iter().sum::<usize>())
        },
    )
    .expect("start");
    assert_eq!(runtime.shard_count(), SHARDS);
    let results = runtime.join().expect("join");
    let total: usize = (0..SHARDS).sum();
    for (shard, (id, sum)) in results.into_iter().enumerate() {
        assert_eq!(id, shard, "results come back in shard order");
        assert_eq!(
            sum,
            total - shard,
            "shard {shard} heard from every other shard"
        );
    }
}

#[test]
fn pinned_shards_run_on_the_configured_cpu() {
    let config = RuntimeConfig {
        pin: true,
        cpus: Some(vec![0]),
        ..small(2)
    };
    let runtime = Runtime::start(&config, |_context: ShardContext<()>| async {
        allowed_cpu_of_current_thread()
    })
    .expect("start pinned");
    for cpu in runtime.join().expect("join") {
        assert_eq!(cpu, Some(0), "both shards pinned to CPU 0");
    }
}

/// The CPU the calling thread is allowed on, when it is exactly one (from /proc).
fn allowed_cpu_of_current_thread() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))?
        .trim()
        .to_owned();
    list.parse().ok()
}

#[test]
fn stop_request_reaches_every_shard() {
    let runtime = Runtime::start(&small(2), |context: ShardContext<()>| async move {
        context.stop.wait().await;
        context.stop.is_stopped()
    })
    .expect("start");
    std::thread::sleep(Duration::from_millis(10));
    runtime.stop_handle().stop();
    assert_eq!(runtime.join().expect("join"), vec![true, true]);
}

#[test]
fn shard_count_defaults_to_cores_and_is_capped() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let default = RuntimeConfig::default();
    assert_eq!(shard_count(&default).expect("valid"), cores);
    let capped = RuntimeConfig {
        shards_max: Some(1),
        ..RuntimeConfig::default()
    };
    assert_eq!(shard_count(&capped).expect("valid"), 1);
    let explicit = RuntimeConfig {
        shards: Some(5),
        shards_max: Some(3),
        ..RuntimeConfig::default()
    };
    assert_eq!(shard_count(&explicit).expect("valid"), 3);
    let zero = RuntimeConfig {
        shards: Some(0),
        ..RuntimeConfig::default()
    };
    assert!(shard_count(&zero).is_err());
}

#[test]
fn empty_cpu_list_is_refused() {
    let config = RuntimeConfig {
        pin: true,
        cpus: Some(vec![]),
        ..small(1)
    };
    let error =
        Runtime::start(&config, |_context: ShardContext<()>| async {}).expect_err("refused");
    assert!(error.to_string().contains("cpus"), "{error}");
}

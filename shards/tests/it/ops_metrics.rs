//! The metrics endpoint of running nodes: three nodes with `metricsPort` set, a few
//! appends, then `GET /metrics` on the leader and a follower shows each family with the
//! values the cluster is known to have; bad requests get HTTP errors, not a hang.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use common::cluster::TestCluster;
use common::log::{test_options, wait_until};
use dledger_shards::client::{Client, block_on};

const GROUP: &str = "RaftNode00";
const APPENDS: u64 = 40;

/// One HTTP/1.1 exchange: (status line, body).
fn http(port: u16, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a timeout");
    s.write_all(request.as_bytes()).expect("send the request");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, body.to_string())
}

fn scrape(port: u16) -> String {
    let (status, body) = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    body
}

/// The value of the series whose line starts with `series ` (name and labels exactly).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn nodes_serve_prometheus_metrics_with_the_clusters_values() {
    let mut c = TestCluster::three_nodes();
    let ports: Vec<u16> = (0..c.len())
        .map(|_| crate::common::ports::free_port())
        .collect();
    for (n, port) in c.nodes.iter().zip(&ports) {
        let mut conf = std::fs::read_to_string(&n.config_path).expect("read a node config");
        conf.push_str(&format!("metricsPort={port}\n"));
        std::fs::write(&n.config_path, conf).expect("write a node config");
    }
    c.start_all();
    let leader = c.wait_for_leader(GROUP, Duration::from_secs(20));
    let peers = c.client_addrs();
    let last = block_on("append", || async move {
        let client = Client::connect(peers, GROUP, test_options())
            .await
            .expect("connect");
        let mut last = 0;
        for i in 0..APPENDS {
            let body = Bytes::from(format!("metrics-{i}"));
            last = client.append(&[body]).await.expect("append")[0].index;
        }
        last
    })
    .expect("executor");

    // Gauges are sampled every 500 ms: wait for the leader's sample to show the appends.
    let g = |name: &str| format!("{name}{{group=\"{GROUP}\"}}");
    let text = wait_until(Duration::from_secs(5), "the leader's metrics", || {
        let t = scrape(ports[leader]);
        (value(&t, &g("dledger_group_commit_index"))? >= last as f64).then_some(t)
    });
    let role = |t: &str, r: &str| {
        value(
            t,
            &format!("dledger_group_role{{group=\"{GROUP}\",role=\"{r}\"}}"),
        )
    };
    assert_eq!(role(&text, "leader"), Some(1.0), "{text}");
    assert_eq!(role(&text, "follower"), Some(0.0), "{text}");
    assert!(value(&text, &g("dledger_group_term")).is_some_and(|t| t >= 1.0));
    assert!(value(&text, &g("dledger_group_ledger_end_index")).is_some_and(|e| e >= last as f64));
    assert!(
        value(&text, &g("dledger_group_append_latency_seconds_count"))
            .is_some_and(|n| n >= APPENDS as f64),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("dledger_group_append_batch_entries_bucket{{le=\"1.0\",group=\"{GROUP}\"}}")
        ),
        value(&text, &g("dledger_group_append_batch_entries_count")),
        "one body per append"
    );
    assert!(
        value(&text, &g("dledger_group_flush_latency_seconds_count")).is_some_and(|n| n >= 1.0)
    );
    for (i, n) in c.nodes.iter().enumerate() {
        if i != leader {
            let lag = format!(
                "dledger_group_follower_lag_entries{{group=\"{GROUP}\",follower=\"{}\"}}",
                n.id
            );
            assert!(value(&text, &lag).is_some(), "{lag} missing:\n{text}");
        }
    }
    assert!(text.contains("dledger_shard_client_connections{shard=\"0\"}"));
    assert!(text.contains("# TYPE dledger_shard_peer_queue_items gauge"));
    assert!(text.contains("# TYPE dledger_shard_solo_dsync_writes counter"));
    // The executor's own counters: the leader's shard ran at least a task and a queue
    // per append it answered, and was busy for some of the time.
    let shard0 = |name: &str| value(&text, &format!("{name}{{shard=\"0\"}}"));
    for name in [
        "dledger_shard_executor_tasks_total",
        "dledger_shard_executor_queue_runs_total",
    ] {
        assert!(
            shard0(name).is_some_and(|n| n >= APPENDS as f64),
            "{name}:\n{text}"
        );
    }
    assert!(
        shard0("dledger_shard_executor_busy_seconds_total").is_some_and(|s| s > 0.0),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"));

    // A follower: its role, the commit it learned, no lag series.
    let follower = (leader + 1) % c.len();
    let text = wait_until(Duration::from_secs(5), "a follower's metrics", || {
        let t = scrape(ports[follower]);
        (value(&t, &g("dledger_group_commit_index"))? >= last as f64).then_some(t)
    });
    assert_eq!(role(&text, "follower"), Some(1.0), "{text}");
    assert!(
        !text.contains("dledger_group_follower_lag_entries{"),
        "{text}"
    );

    // Anything but GET /metrics is refused with a status.
    let (status, _) = http(ports[leader], "GET / HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = http(ports[leader], "POST /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    let (status, _) = http(ports[leader], "nonsense\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
}

//! Smoke test of `dledger-perf bench`: a short run against its own 3-node cluster; the
//! last line has the documented keys in order, and the JSON, hgrm and SVG files exist
//! and agree with it. Asserts nothing about speed.
//!
//! Needs the `dledger` binary of this build (`cargo test --workspace` builds it; alone:
//! `cargo build [--release] -p dledger-shards --bin dledger` first) or DLEDGER_SERVER_BIN.

use std::path::PathBuf;
use std::process::Command;

const KEYS: [&str; 6] = [
    "p50_us",
    "p99_us",
    "p999_us",
    "ops_per_s",
    "raw_fsync_p99_us",
    "p99_ratio",
];

fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("DLEDGER_SERVER_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/dledger-perf → target/<profile>/dledger
    let perf = PathBuf::from(env!("CARGO_BIN_EXE_dledger-perf"));
    let bin = perf.with_file_name("dledger");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p dledger-shards --bin dledger` (same profile) or set DLEDGER_SERVER_BIN",
        bin.display()
    );
    bin
}

#[test]
fn short_run_reports_agree() {
    let dir = std::env::temp_dir().join(format!("dledger-bench-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (json, hgrm, svg) = (dir.join("r.json"), dir.join("r.hgrm"), dir.join("r.svg"));
    let out = Command::new(env!("CARGO_BIN_EXE_dledger-perf"))
        .args([
            "bench",
            "--concurrency",
            "4",
            "--groups",
            "2",
            "--seconds",
            "2",
        ])
        .args(["--warmup", "0.5", "--baseline-seconds", "0.3", "--quiet"])
        .arg("--dir")
        .arg(&dir)
        .arg("--server-bin")
        .arg(server_bin())
        .arg("--json")
        .arg(&json)
        .arg("--hgrm")
        .arg(&hgrm)
        .arg("--plot")
        .arg(&svg)
        .output()
        .expect("run dledger-perf");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench failed ({}):\n{stdout}\n{stderr}",
        out.status
    );

    // The last line: exactly the six keys, in order, with numbers.
    let last = stdout.lines().last().expect("some output");
    let pairs: Vec<(&str, &str)> = last
        .split(' ')
        .map(|kv| kv.split_once('=').expect("key=value"))
        .collect();
    assert_eq!(
        pairs.iter().map(|p| p.0).collect::<Vec<_>>(),
        KEYS,
        "last line: {last}"
    );
    let int = |k: &str| -> u64 {
        pairs
            .iter()
            .find(|p| p.0 == k)
            .and_then(|p| p.1.parse().ok())
            .unwrap_or_else(|| panic!("{k} is not an integer in {last}"))
    };
    let (p50, p99, p999, ops, raw99) = (
        int("p50_us"),
        int("p99_us"),
        int("p999_us"),
        int("ops_per_s"),
        int("raw_fsync_p99_us"),
    );
    let ratio: f64 = pairs[5].1.parse().expect("p99_ratio is a number");
    assert!(p50 > 0 && p50 <= p99 && p99 <= p999, "{last}");
    assert!(ops > 0 && raw99 > 0);
    assert!((ratio - p99 as f64 / raw99 as f64).abs() < 0.01, "{last}");

    // The JSON holds the same figures, and the line itself.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
            .expect("valid JSON");
    assert_eq!(doc["summary_line"], last);
    assert_eq!(doc["latency_us"]["p50"], p50);
    assert_eq!(doc["latency_us"]["p99"], p99);
    assert_eq!(doc["latency_us"]["p999"], p999);
    assert_eq!(doc["baselines"]["raw_fsync_us"]["p99"], raw99);
    assert_eq!(
        doc["appends_per_s"].as_f64().expect("number").round() as u64,
        ops
    );
    assert_eq!(doc["config"]["groups"], 2);
    assert!(doc["git_commit"].as_str().is_some_and(|c| !c.is_empty()));
    let count = doc["latency_us"]["count"].as_u64().expect("count");
    let max = doc["latency_us"]["max"].as_u64().expect("max");

    // The hgrm's last row is the maximum at 100%, with every sample counted.
    let hgrm = std::fs::read_to_string(&hgrm).expect("hgrm written");
    let rows: Vec<Vec<&str>> = hgrm
        .lines()
        .skip(2)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    let end = rows.last().expect("hgrm rows");
    assert_eq!(end[0].parse::<f64>().expect("value") as u64, max);
    assert_eq!(end[1].parse::<f64>().expect("percentile"), 1.0);
    assert_eq!(end[2].parse::<u64>().expect("count"), count);
    // p99 lies between the rows either side of the 99th percentile.
    let pct = |r: &Vec<&str>| r[1].parse::<f64>().expect("percentile");
    let val = |r: &Vec<&str>| r[0].parse::<f64>().expect("value") as u64;
    let below = rows
        .iter()
        .rev()
        .find(|r| pct(r) < 0.99)
        .expect("a row below 99%");
    let above = rows
        .iter()
        .find(|r| pct(r) >= 0.99)
        .expect("a row from 99%");
    assert!(val(below) <= p99 && p99 <= val(above), "p99 {p99} vs hgrm");

    // The chart has both curves.
    let svg = std::fs::read_to_string(&svg).expect("svg written");
    assert!(svg.contains("<svg") && svg.contains("cluster append"));
    assert!(svg.contains("raw 4 KiB write+fdatasync"));

    // Nothing of the cluster is left in the directory.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("dledger-bench-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
}

//! A run's report: the table, the summary line, the JSON document and the HdrHistogram
//! percentile distribution (`.hgrm`), all made from the same [`RunReport`].

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use super::baseline::Baselines;
use super::load::LoadResult;
use crate::error::{PerfError, PerfResult};
use crate::hist::LatencyHistogram;
use crate::report::{SummaryLine, ratio};
use crate::table::{Table, cell_f64};

/// Percentile rows per halving of the distance to 100% (HdrHistogram's usual 5).
const PERCENTILE_TICKS_PER_HALF_DISTANCE: u32 = 5;
/// Bytes in the decimal megabyte of every MB/s figure.
const BYTES_PER_MB: f64 = 1_000_000.0;

/// Latency percentiles of one histogram, microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl Percentiles {
    pub fn of(h: &LatencyHistogram) -> Option<Percentiles> {
        let s = h.summary()?;
        Some(Percentiles {
            count: s.count,
            p50_us: s.p50_us,
            p90_us: h.value_at_quantile(0.90),
            p99_us: s.p99_us,
            p999_us: s.p999_us,
            max_us: s.max_us,
            mean_us: s.mean_us,
        })
    }

    fn json(&self) -> Value {
        json!({
            "count": self.count, "p50": self.p50_us, "p90": self.p90_us, "p99": self.p99_us,
            "p999": self.p999_us, "max": self.max_us, "mean": self.mean_us,
        })
    }
}

/// `(quantile iterated to, value µs, samples up to it)` rows, as HdrHistogram lists them.
pub fn percentile_curve(h: &LatencyHistogram) -> Vec<(f64, u64, u64)> {
    let mut total = 0;
    h.hdr()
        .iter_quantiles(PERCENTILE_TICKS_PER_HALF_DISTANCE)
        .map(|v| {
            total += v.count_since_last_iteration();
            (v.quantile_iterated_to(), v.value_iterated_to(), total)
        })
        .collect()
}

/// The settings of a run, as reported.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// `local` or the addresses of the existing cluster.
    pub target: String,
    pub groups: usize,
    /// `closed` or `open`.
    pub mode: &'static str,
    pub concurrency: Option<usize>,
    pub rate_calls_per_s: Option<f64>,
    pub body_bytes: usize,
    pub batch: usize,
    pub seconds: f64,
    pub warmup_seconds: f64,
    /// Local cluster only.
    pub flush: Option<&'static str>,
    pub shards: Option<usize>,
    pub data_segment_bytes: Option<u64>,
    pub storage_dir: String,
}

/// Everything one run produced.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub config: RunConfig,
    pub git_commit: String,
    pub latency: Percentiles,
    pub load: LoadResult,
    pub baselines: Baselines,
    pub raw_fsync: Percentiles,
    /// The raw probe with one core kept busy (see `baseline`).
    pub raw_fsync_busy: Percentiles,
    pub tcp_rtt: Percentiles,
}

impl RunReport {
    pub fn new(
        config: RunConfig,
        load: LoadResult,
        baselines: Baselines,
        git_commit: String,
    ) -> PerfResult<RunReport> {
        let latency = Percentiles::of(&load.hist).ok_or_else(|| PerfError::NoSamples {
            phase: match &load.first_error {
                Some(e) => format!("appends (every call failed; first error: {e})"),
                None => "appends".into(),
            },
        })?;
        let raw_fsync =
            Percentiles::of(&baselines.raw_fsync_hist).ok_or_else(|| PerfError::NoSamples {
                phase: "raw 4 KiB write+fdatasync".into(),
            })?;
        let raw_fsync_busy = Percentiles::of(&baselines.raw_fsync_busy_hist).ok_or_else(|| {
            PerfError::NoSamples {
                phase: "raw 4 KiB write+fdatasync, one core busy".into(),
            }
        })?;
        let tcp_rtt =
            Percentiles::of(&baselines.tcp_rtt_hist).ok_or_else(|| PerfError::NoSamples {
                phase: "loopback TCP round trip".into(),
            })?;
        Ok(RunReport {
            config,
            git_commit,
            latency,
            load,
            baselines,
            raw_fsync,
            raw_fsync_busy,
            tcp_rtt,
        })
    }

    pub fn mb_per_s(&self) -> f64 {
        self.load.appends_per_s() * self.config.body_bytes as f64 / BYTES_PER_MB
    }

    /// Server CPU seconds per million appends.
    pub fn server_cpu_s_per_million(&self) -> Option<f64> {
        let cpu = self.load.server_cpu?;
        ratio(cpu.as_secs_f64() * 1e6, self.load.appends as f64)
    }

    /// Load generator CPU as a percentage of one core.
    pub fn loadgen_cpu_percent(&self) -> f64 {
        100.0 * self.load.loadgen_cpu.as_secs_f64() / self.load.measured.as_secs_f64()
    }

    pub fn p99_ratio(&self) -> Option<f64> {
        ratio(self.latency.p99_us as f64, self.raw_fsync.p99_us as f64)
    }

    /// The last line of the output.
    pub fn summary_line(&self) -> String {
        SummaryLine::new()
            .int("p50_us", self.latency.p50_us)
            .int("p99_us", self.latency.p99_us)
            .int("p999_us", self.latency.p999_us)
            .int("ops_per_s", self.load.appends_per_s().round() as u64)
            .int("raw_fsync_p99_us", self.raw_fsync.p99_us)
            .real("p99_ratio", self.p99_ratio().unwrap_or(f64::NAN), 2)
            .finish()
    }

    /// The human-readable tables.
    pub fn render(&self) -> String {
        let mut lat = Table::new(&["latency (µs)", "count", "p50", "p90", "p99", "p99.9", "max"]);
        let tcp = &self.tcp_rtt;
        let percentile_row = |name: &str, p: &Percentiles| {
            vec![
                name.to_owned(),
                p.count.to_string(),
                p.p50_us.to_string(),
                p.p90_us.to_string(),
                p.p99_us.to_string(),
                p.p999_us.to_string(),
                p.max_us.to_string(),
            ]
        };
        lat.push_row(percentile_row("append (per call)", &self.latency));
        lat.push_row(percentile_row("raw 4 KiB write+fdatasync", &self.raw_fsync));
        lat.push_row(percentile_row(
            "  same, one core busy",
            &self.raw_fsync_busy,
        ));
        lat.push_row(percentile_row("loopback TCP round trip", tcp));
        let mut fig = Table::new(&["figure", "value"]);
        let l = &self.load;
        let mut row = |name: &str, value: String| fig.push_row(vec![name.to_owned(), value]);
        row("appends/s", format!("{:.0}", l.appends_per_s()));
        row(
            "append calls/s",
            format!("{:.0}", l.calls as f64 / l.measured.as_secs_f64()),
        );
        row("MB/s (bodies)", format!("{:.2}", self.mb_per_s()));
        row(
            "server CPU s / 1M appends",
            cell_f64(self.server_cpu_s_per_million(), 2),
        );
        row(
            "server CPU % of one core",
            cell_f64(
                l.server_cpu
                    .map(|c| 100.0 * c.as_secs_f64() / l.measured.as_secs_f64()),
                1,
            ),
        );
        row(
            "load generator CPU % of one core",
            format!("{:.1}", self.loadgen_cpu_percent()),
        );
        row("p99 / raw fsync p99", cell_f64(self.p99_ratio(), 2));
        row(
            "p50 / raw fsync p50",
            cell_f64(
                ratio(self.latency.p50_us as f64, self.raw_fsync.p50_us as f64),
                2,
            ),
        );
        row(
            "p99 / TCP round trip p99",
            cell_f64(ratio(self.latency.p99_us as f64, tcp.p99_us as f64), 2),
        );
        row(
            "raw 4 KiB O_DSYNC write p99 µs",
            self.baselines.raw.write_dsync.p99_us.to_string(),
        );
        row(
            "raw sequential write MB/s",
            format!("{:.1}", self.baselines.raw.seq_write_mb_per_s()),
        );
        row("errors", l.errors.values().sum::<u64>().to_string());
        row(
            "client retries / redirects",
            format!("{} / {}", l.client.retries, l.client.redirects),
        );
        if l.sender_stalls > 0 {
            row("open-loop sender stalls", l.sender_stalls.to_string());
        }
        let mut out = String::new();
        let c = &self.config;
        let _ = writeln!(
            out,
            "bench: {} cluster, {} group(s), {}, {} B bodies x{} per call, {:.1} s measured after {:.1} s warm-up, flush {}",
            c.target,
            c.groups,
            match (c.concurrency, c.rate_calls_per_s) {
                (_, Some(r)) => format!("open loop at {r:.0} calls/s"),
                (Some(n), None) => format!("closed loop, concurrency {n}"),
                (None, None) => "no load".into(),
            },
            c.body_bytes,
            c.batch,
            c.seconds,
            c.warmup_seconds,
            c.flush.unwrap_or("as configured"),
        );
        out.push_str(&lat.render());
        out.push('\n');
        out.push_str(&fig.render());
        for (code, n) in &l.errors {
            let _ = writeln!(out, "errors {code}: {n}");
        }
        if let Some(e) = &l.first_error {
            let _ = writeln!(out, "first error: {e}");
        }
        out
    }

    /// The JSON document of `--json`.
    pub fn json(&self) -> Value {
        let c = &self.config;
        let l = &self.load;
        let b = &self.baselines;
        let curve = |h: &LatencyHistogram| -> Vec<Value> {
            percentile_curve(h)
                .into_iter()
                .map(|(q, v, _)| json!([q, v]))
                .collect()
        };
        json!({
            "tool": "dledger-perf bench",
            "git_commit": self.git_commit,
            "config": {
                "target": c.target, "groups": c.groups, "mode": c.mode,
                "concurrency": c.concurrency, "rate_calls_per_s": c.rate_calls_per_s,
                "body_bytes": c.body_bytes, "batch": c.batch, "seconds": c.seconds,
                "warmup_seconds": c.warmup_seconds, "flush": c.flush, "shards": c.shards,
                "data_segment_bytes": c.data_segment_bytes, "storage_dir": c.storage_dir,
                "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            },
            "latency_us": self.latency.json(),
            "appends": l.appends,
            "calls": l.calls,
            "measured_s": l.measured.as_secs_f64(),
            "appends_per_s": l.appends_per_s(),
            "mb_per_s": self.mb_per_s(),
            "server_cpu_s": l.server_cpu.map(|d| d.as_secs_f64()),
            "server_cpu_s_per_million_appends": self.server_cpu_s_per_million(),
            "server_rss_bytes": l.server_rss_bytes,
            "loadgen_cpu_s": l.loadgen_cpu.as_secs_f64(),
            "loadgen_cpu_percent_of_one_core": self.loadgen_cpu_percent(),
            "errors": l.errors,
            "first_error": l.first_error,
            "client": {
                "retries": l.client.retries, "redirects": l.client.redirects,
                "connects": l.client.connects, "discoveries": l.client.discoveries,
            },
            "open_loop_sender_stalls": l.sender_stalls,
            "baselines": {
                "raw_fsync_us": self.raw_fsync.json(),
                "raw_fsync_one_core_busy_us": self.raw_fsync_busy.json(),
                "raw_dsync_us": {
                    "p50": b.raw.write_dsync.p50_us, "p99": b.raw.write_dsync.p99_us,
                    "count": b.raw.write_dsync.count,
                },
                "raw_seq_write_mb_per_s": b.raw.seq_write_mb_per_s(),
                "direct_io_alignment_bytes": b.raw.alignment_bytes,
                "tcp_rtt_us": self.tcp_rtt.json(),
                "tcp_rtt_message_bytes": b.tcp_rtt_message_bytes,
            },
            "ratios": {
                "p99_over_raw_fsync_p99": self.p99_ratio(),
                "p50_over_raw_fsync_p50": ratio(self.latency.p50_us as f64, self.raw_fsync.p50_us as f64),
                "p99_over_tcp_rtt_p99": ratio(self.latency.p99_us as f64, self.tcp_rtt.p99_us as f64),
            },
            "percentiles_us": curve(&l.hist),
            "raw_fsync_percentiles_us": curve(&b.raw_fsync_hist),
            "summary_line": self.summary_line(),
        })
    }
}

/// HdrHistogram's percentile distribution text (as `outputPercentileDistribution`
/// prints it), values in microseconds.
pub fn hgrm(h: &LatencyHistogram) -> String {
    let mut out = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for (q, v, total) in percentile_curve(h) {
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{:12.3} {:2.12} {:10} {:14.2}",
                v as f64,
                q,
                total,
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{:12.3} {:2.12} {:10}", v as f64, q, total);
        }
    }
    let hd = h.hdr();
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        hd.mean(),
        hd.stdev()
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        hd.max() as f64,
        hd.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        hd.buckets(),
        hd.distinct_values()
    );
    out
}

/// Writes `text` to `path`.
pub fn write_file(path: &Path, text: &str) -> PerfResult<()> {
    std::fs::write(path, text).map_err(|e| PerfError::io("writing", path, e))
}

/// `git rev-parse HEAD` of the workspace this was built from (`-dirty` when the tree
/// has changes), or `unknown`.
pub fn git_commit() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .current_dir(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "HEAD"]) {
        Some(head) if !head.is_empty() => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{head}-dirty") } else { head }
        }
        _ => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn hgrm_ends_at_the_max_and_counts_every_sample() {
        let mut h = LatencyHistogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let text = hgrm(&h);
        let rows: Vec<&str> = text
            .lines()
            .skip(2)
            .filter(|l| !l.starts_with('#'))
            .collect();
        let last: Vec<&str> = rows.last().expect("rows").split_whitespace().collect();
        assert_eq!(last.len(), 3, "the 100% row has no 1/(1-p) column");
        assert_eq!(last[0].parse::<f64>().expect("value"), 1000.0);
        assert_eq!(last[1].parse::<f64>().expect("percentile"), 1.0);
        assert_eq!(last[2], "1000");
        assert!(text.contains("Total count    =         1000"));
    }
}

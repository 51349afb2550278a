//! CPU time and resident memory of a process, from `/proc/<pid>/stat`.
//!
//! `/proc/<pid>/stat` is one line: `pid (comm) state ppid ...`; `comm` may contain spaces
//! and `)`, so fields are counted after the last `)`. Counting from `state` as field 3
//! (proc(5) numbering): `utime` is 14, `stime` 15 (clock ticks), `rss` 24 (pages).

use std::time::Duration;

use crate::error::{PerfError, PerfResult};

/// Index of `utime` among the fields after the command name (`state` is index 0).
const UTIME_AFTER_COMM: usize = 14 - 3;
/// Index of `stime`, likewise.
const STIME_AFTER_COMM: usize = 15 - 3;
/// Index of `rss`, likewise.
const RSS_AFTER_COMM: usize = 24 - 3;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcSample {
    /// User + system CPU time consumed so far, all threads.
    pub cpu: Duration,
    /// Resident set size.
    pub rss_bytes: u64,
}

/// The kernel's clock-tick rate and page size, read once.
#[derive(Debug, Clone, Copy)]
pub struct ProcUnits {
    ticks_per_s: u64,
    page_bytes: u64,
}

impl ProcUnits {
    /// Reads `_SC_CLK_TCK` and `_SC_PAGESIZE`.
    pub fn read() -> PerfResult<ProcUnits> {
        use nix::unistd::{SysconfVar, sysconf};
        let get = |var, what: &str| -> PerfResult<u64> {
            match sysconf(var) {
                Ok(Some(v)) if v > 0 => Ok(v as u64),
                other => Err(PerfError::Proc(format!("sysconf {what}: {other:?}"))),
            }
        };
        Ok(ProcUnits {
            ticks_per_s: get(SysconfVar::CLK_TCK, "CLK_TCK")?,
            page_bytes: get(SysconfVar::PAGE_SIZE, "PAGE_SIZE")?,
        })
    }

    /// Reads `/proc/<pid>/stat` (`pid` 0: this process).
    pub fn sample(&self, pid: u32) -> PerfResult<ProcSample> {
        let path = if pid == 0 {
            "/proc/self/stat".to_owned()
        } else {
            format!("/proc/{pid}/stat")
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| PerfError::Proc(format!("reading {path}: {e}")))?;
        self.parse(&text)
            .ok_or_else(|| PerfError::Proc(format!("{path}: unexpected layout: {text:?}")))
    }

    fn parse(&self, text: &str) -> Option<ProcSample> {
        let (_, rest) = text.rsplit_once(')')?;
        let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
        let num = |i: usize| fields.get(i)?.parse::<u64>().ok();
        let ticks = num(UTIME_AFTER_COMM)? + num(STIME_AFTER_COMM)?;
        Some(ProcSample {
            cpu: Duration::from_secs_f64(ticks as f64 / self.ticks_per_s as f64),
            rss_bytes: num(RSS_AFTER_COMM)? * self.page_bytes,
        })
    }
}

/// CPU seconds `pids` spent between two sets of samples (same order).
pub fn cpu_between(before: &[ProcSample], after: &[ProcSample]) -> Duration {
    debug_assert_eq!(before.len(), after.len(), "samples of the same processes");
    before
        .iter()
        .zip(after)
        .map(|(b, a)| a.cpu.saturating_sub(b.cpu))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_name_with_spaces_and_parens() {
        let units = ProcUnits {
            ticks_per_s: 100,
            page_bytes: 4096,
        };
        // Fields 3..=24 after the name: state, then 21 numbers; utime=250, stime=50, rss=10.
        let line = "42 (a) b)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 99 1000 10 rest";
        let s = units.parse(line).expect("a well-formed line");
        assert_eq!(s.cpu, Duration::from_secs(3));
        assert_eq!(s.rss_bytes, 40960);
        assert_eq!(units.parse("42 (x) S 1 2"), None);
    }

    #[test]
    fn own_process_is_readable_and_cpu_grows() {
        let units = ProcUnits::read().expect("sysconf works on Linux");
        let a = units.sample(0).expect("/proc/self/stat");
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let b = units.sample(0).expect("/proc/self/stat");
        assert!(b.cpu > a.cpu, "60 ms of spinning shows as CPU time");
        assert!(a.rss_bytes > 0);
    }
}

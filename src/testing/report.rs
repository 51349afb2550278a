//! What one seed produced: counters and the first broken invariant, if any.

use std::fmt;

use super::clock::SimMs;

/// A broken invariant (or a broken driver contract, or a panic in the core).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub at_ms: SimMs,
    /// Short stable name of the invariant, e.g. `leader-completeness`.
    pub kind: &'static str,
    pub detail: String,
}

impl Violation {
    pub fn new(kind: &'static str, detail: String) -> Violation {
        Violation {
            at_ms: 0,
            kind,
            detail,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[t={}ms] {}: {}", self.at_ms, self.kind, self.detail)
    }
}

/// Counters of one seed's run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedStats {
    /// Distinct (group, term) leaders observed.
    pub elections: u64,
    /// Entries committed, summed over groups.
    pub committed: u64,
    pub proposals: u64,
    pub acked: u64,
    pub messages: u64,
    pub crashes: u64,
    pub disk_errors: u64,
    pub partitions: u64,
    pub pauses: u64,
    pub events: u64,
    pub sim_ms: SimMs,
    /// Quiet phase: from taking down the leader of quiesced groups to new leaders.
    pub quiet_failover_ms: SimMs,
}

/// The outcome of one seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedReport {
    pub seed: u64,
    /// The first violation; a run stops at it.
    pub violation: Option<Violation>,
    pub stats: SeedStats,
}

/// Totals over many seeds, printed as the runner's last line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub seeds: u64,
    pub violations: u64,
    pub elections: u64,
    pub committed: u64,
}

impl Summary {
    pub fn add(&mut self, r: &SeedReport) {
        self.seeds += 1;
        self.violations += u64::from(r.violation.is_some());
        self.elections += r.stats.elections;
        self.committed += r.stats.committed;
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seeds={} violations={} elections={} committed={}",
            self.seeds, self.violations, self.elections, self.committed
        )
    }
}

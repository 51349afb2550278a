//! Per-seed choices: how hostile the run is and how the raft nodes are tuned.
//! Everything is drawn from the run's RNG, so a seed fixes the whole mix.

use rand::Rng;

use super::clock::SimMs;
use super::net::LinkFaults;

/// Relative weights of the discrete faults the fault scheduler injects.
#[derive(Clone, Debug)]
pub struct FaultWeights {
    pub partition_symmetric: u32,
    pub partition_one_way: u32,
    pub isolate_leader: u32,
    pub crash_node: u32,
    pub crash_leader: u32,
    pub pause_node: u32,
    pub transfer_leader: u32,
}

impl FaultWeights {
    pub fn total(&self) -> u32 {
        self.partition_symmetric
            + self.partition_one_way
            + self.isolate_leader
            + self.crash_node
            + self.crash_leader
            + self.pause_node
            + self.transfer_leader
    }
}

/// How hostile one run is.
#[derive(Clone, Debug)]
pub struct FaultProfile {
    /// 0.0 (calm) ..= 1.0 (hostile); the other knobs are drawn around it.
    pub intensity: f64,
    pub link: LinkFaults,
    pub sync_delay_min_ms: SimMs,
    pub sync_delay_max_ms: SimMs,
    /// Chance that one sync fails (fatal for that group on that node until restart).
    pub disk_error_prob: f64,
    /// Gap between two discrete faults.
    pub fault_gap_min_ms: SimMs,
    pub fault_gap_max_ms: SimMs,
    pub weights: FaultWeights,
    pub outage_min_ms: SimMs,
    pub outage_max_ms: SimMs,
    /// On a crash, chance that some of the unsynced tail survives (torn write).
    pub torn_keep_prob: f64,
    /// Split `Append` batches into chunks of at most this many body bytes (if set).
    pub append_budget_bytes: Option<usize>,
    /// Chance that a commit advance also writes a durable commit checkpoint.
    pub checkpoint_prob: f64,
    /// Report each completed sync as the (index, term) the log ended at when it was
    /// issued, stale or not (as a simple driver would), instead of the durable end.
    pub naive_persist_reports: bool,
    /// Leader churn: chance that a freshly elected leader is crashed or cut off soon
    /// after its election (while its no-op and older entries are half replicated, which
    /// is when an old-term commit would be unsafe, Raft Figure 8).
    pub churn_prob: f64,
    pub churn_delay_max_ms: SimMs,
    /// Outage of a churned leader.
    pub churn_outage_max_ms: SimMs,
}

/// Raft settings drawn per run (the same for every node and group of the run).
#[derive(Clone, Debug)]
pub struct RaftTuning {
    pub election_timeout_min_ticks: u32,
    pub election_timeout_max_ticks: u32,
    pub heartbeat_interval_ticks: u32,
    pub max_inflight_appends: u32,
    pub max_batch_entries: u32,
    pub max_uncommitted_entries: u64,
    pub check_quorum: bool,
    /// Some groups get a preferred leader when this is set.
    pub preferred_leader_prob: f64,
}

/// Client behaviour per run.
#[derive(Clone, Debug)]
pub struct ClientTuning {
    pub clients_per_group: usize,
    pub window: usize,
    pub max_bodies_per_proposal: u32,
    pub gap_min_ms: SimMs,
    pub gap_max_ms: SimMs,
    pub body_pad_max_bytes: usize,
    /// A proposal not acknowledged within this long is abandoned (outcome unknown).
    pub timeout_ms: SimMs,
    /// Chance that a client pauses after a proposal (its group may go quiescent), and
    /// the longest pause.
    pub pause_prob: f64,
    pub pause_max_ms: SimMs,
}

pub fn draw_faults(rng: &mut impl Rng, tick_ms: SimMs) -> FaultProfile {
    let intensity: f64 = rng.random_range(0.0..1.0);
    let delay_min_ms = rng.random_range(1..=3);
    let delay_max_ms = delay_min_ms + rng.random_range(1..=tick_ms * 2);
    let link = LinkFaults {
        drop_prob: intensity * rng.random_range(0.0..0.25),
        dup_prob: intensity * rng.random_range(0.0..0.1),
        delay_min_ms,
        delay_max_ms,
        spike_prob: intensity * rng.random_range(0.0..0.05),
        spike_max_ms: delay_max_ms + rng.random_range(tick_ms..=tick_ms * 30),
    };
    // Syncs are often slower than a round trip, so an ack sent before a sync completes
    // would be counted before the data is durable.
    let sync_delay_min_ms = rng.random_range(1..=tick_ms / 2);
    let sync_delay_max_ms = sync_delay_min_ms + rng.random_range(1..=tick_ms * 4);
    let gap = 3 * tick_ms + ((1.0 - intensity) * (40 * tick_ms) as f64) as SimMs;
    FaultProfile {
        intensity,
        link,
        sync_delay_min_ms,
        sync_delay_max_ms,
        disk_error_prob: if rng.random_bool(0.3) {
            intensity * 0.002
        } else {
            0.0
        },
        fault_gap_min_ms: gap / 2,
        fault_gap_max_ms: gap,
        weights: FaultWeights {
            partition_symmetric: rng.random_range(0..=4),
            partition_one_way: rng.random_range(0..=3),
            isolate_leader: rng.random_range(0..=4),
            crash_node: rng.random_range(0..=3),
            crash_leader: rng.random_range(1..=6),
            pause_node: rng.random_range(0..=3),
            transfer_leader: rng.random_range(0..=2),
        },
        outage_min_ms: tick_ms,
        outage_max_ms: tick_ms * rng.random_range(5..=60),
        torn_keep_prob: rng.random_range(0.0..1.0),
        append_budget_bytes: if rng.random_bool(0.4) {
            Some(rng.random_range(8..=96))
        } else {
            None
        },
        naive_persist_reports: rng.random_bool(0.5),
        churn_prob: if rng.random_bool(0.5) {
            rng.random_range(0.1..0.8)
        } else {
            0.0
        },
        churn_delay_max_ms: rng.random_range(1..=tick_ms * 3),
        churn_outage_max_ms: tick_ms * rng.random_range(3..=30),
        checkpoint_prob: if rng.random_bool(0.5) {
            rng.random_range(0.0..1.0)
        } else {
            0.0
        },
    }
}

pub fn draw_raft(rng: &mut impl Rng) -> RaftTuning {
    let heartbeat_interval_ticks = rng.random_range(1..=3);
    let election_timeout_min_ticks = heartbeat_interval_ticks * 3 + rng.random_range(2..=8);
    RaftTuning {
        election_timeout_min_ticks,
        election_timeout_max_ticks: election_timeout_min_ticks * 2 + rng.random_range(0..=4),
        heartbeat_interval_ticks,
        max_inflight_appends: rng.random_range(1..=8),
        max_batch_entries: rng.random_range(1..=16),
        max_uncommitted_entries: rng.random_range(8..=256),
        check_quorum: rng.random_bool(0.85),
        preferred_leader_prob: if rng.random_bool(0.3) {
            rng.random_range(0.0..1.0)
        } else {
            0.0
        },
    }
}

pub fn draw_clients(rng: &mut impl Rng, tick_ms: SimMs) -> ClientTuning {
    let gap_min_ms = rng.random_range(1..=tick_ms);
    ClientTuning {
        clients_per_group: rng.random_range(1..=3),
        window: rng.random_range(1..=4),
        max_bodies_per_proposal: rng.random_range(1..=4),
        gap_min_ms,
        gap_max_ms: gap_min_ms + rng.random_range(1..=tick_ms * 3),
        body_pad_max_bytes: rng.random_range(0..=24),
        timeout_ms: tick_ms * 60,
        pause_prob: if rng.random_bool(0.5) {
            rng.random_range(0.01..0.3)
        } else {
            0.0
        },
        pause_max_ms: tick_ms * rng.random_range(20..=200),
    }
}

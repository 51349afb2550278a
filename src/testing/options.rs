//! Options shared by every seed of a run, planted-bug names, and the replay command.

#[cfg(feature = "planted-bugs")]
use crate::raft::PlantedBug;

use super::clock::SimMs;

/// What every seed of a run shares (the seed picks everything else).
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Nodes per group (3 or 5 in practice; every node hosts every group).
    pub nodes: usize,
    /// Raft groups hosted on every node.
    pub groups: usize,
    /// Length of the fault period, in ticks; then every fault heals.
    pub fault_ticks: u32,
    /// After healing, every group must keep its commit index moving (at least once per
    /// this many ticks) until a proposal made after healing commits, and get there within
    /// [`LIVENESS_CAP_FACTOR`] times this many ticks.
    pub liveness_ticks: u32,
    /// Simulated milliseconds per raft tick.
    pub tick_ms: SimMs,
    /// Print a trace of the run to stderr.
    pub verbose: bool,
    /// End with the quiet phase (clients stop, groups quiesce, a quiesced leader goes
    /// down, new leaders within a bound); needs 3 nodes or more.
    pub quiet_phase: bool,
    #[cfg(feature = "planted-bugs")]
    pub planted: Option<PlantedBug>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            nodes: 3,
            groups: 2,
            fault_ticks: 1000,
            liveness_ticks: 300,
            tick_ms: 10,
            verbose: false,
            quiet_phase: true,
            #[cfg(feature = "planted-bugs")]
            planted: None,
        }
    }
}

/// The hard cap on the post-heal window, in units of `liveness_ticks`: a slow but moving
/// catch-up (tiny batches, one append in flight) may need several windows.
pub const LIVENESS_CAP_FACTOR: u64 = 20;

/// Names accepted by `--plant`.
#[cfg(feature = "planted-bugs")]
pub const PLANTED_BUGS: [(&str, PlantedBug); 3] = [
    ("vote-ignores-log", PlantedBug::VoteIgnoresLog),
    ("commit-old-term", PlantedBug::CommitOldTerm),
    ("ack-before-persist", PlantedBug::AckBeforePersist),
];

#[cfg(feature = "planted-bugs")]
pub fn parse_planted(name: &str) -> Result<PlantedBug, String> {
    PLANTED_BUGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
        .ok_or_else(|| {
            let names: Vec<&str> = PLANTED_BUGS.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown planted bug {name:?}; expected one of {}",
                names.join(", ")
            )
        })
}

impl SimOptions {
    /// The command that replays `seed` with these options.
    pub fn replay_command(&self, seed: u64) -> String {
        let d = SimOptions::default();
        let mut cmd = String::from("cargo run --release -p dledger --example sim");
        #[cfg(feature = "planted-bugs")]
        if self.planted.is_some() {
            cmd.push_str(" --features planted-bugs");
        }
        cmd.push_str(&format!(
            " -- --seeds 1 --seed {seed} --nodes {} --groups {}",
            self.nodes, self.groups
        ));
        if self.fault_ticks != d.fault_ticks {
            cmd.push_str(&format!(" --ticks {}", self.fault_ticks));
        }
        if self.liveness_ticks != d.liveness_ticks {
            cmd.push_str(&format!(" --liveness-ticks {}", self.liveness_ticks));
        }
        #[cfg(feature = "planted-bugs")]
        if let Some(bug) = self.planted {
            if let Some((name, _)) = PLANTED_BUGS.iter().find(|(_, b)| *b == bug) {
                cmd.push_str(&format!(" --plant {name}"));
            }
        }
        cmd
    }
}

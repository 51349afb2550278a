//! Who leads: each node's own view of its groups (the wire ClusterView request, one
//! exchange per node, no redirects), and the two questions the harnesses ask of those
//! views: is there a leader of a group that the others agree on, and how many of a
//! cluster's groups have their preferred leaders yet.
//!
//! Nodes are named `n<i>` with node id `i`, so a view's node id and a leader id are
//! indexes into the cluster.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dledger::raft::{Role, Term};
use dledger::wire::{ClusterViewResponse, GroupRow};
use dledger_shards::cluster_view::cluster_view;

use super::Cluster;
use crate::error::{PerfError, PerfResult};

/// Poll period while waiting for leaders.
const POLL_INTERVAL_MS: u64 = 100;
/// Period of the "waiting for leaders" line.
const WAIT_REPORT_INTERVAL_MS: u64 = 5_000;
/// Bytes of each node's log shown when the leaders do not come.
const LOG_TAIL_BYTES: u64 = 3_000;

/// What one node said about one group.
#[derive(Debug, Clone)]
pub struct NodeRow {
    /// Index of the node in the cluster.
    pub node: usize,
    pub row: GroupRow,
}

impl Cluster {
    /// Every node's view, in node order; a node that is not running is an error too.
    pub fn views(&self, timeout: Duration) -> Vec<Result<ClusterViewResponse, String>> {
        self.nodes()
            .iter()
            .map(|n| {
                if n.is_running() {
                    cluster_view(&n.client_addr.to_string(), timeout)
                } else {
                    Err(format!("{} is not running", n.name))
                }
            })
            .collect()
    }

    /// What each running node that answers says about `group`.
    pub fn rows_of(&self, group: &str, timeout: Duration) -> Vec<NodeRow> {
        self.views(timeout)
            .into_iter()
            .enumerate()
            .filter_map(|(node, view)| {
                let row = view.ok()?.rows.into_iter().find(|r| r.group == group)?;
                Some(NodeRow { node, row })
            })
            .collect()
    }

    /// Waits until every group has its preferred leader (`preferred(g)` for the `g`th
    /// group), agreed by all nodes. A node that exits fails at once with its log; at the
    /// deadline, groups that have some agreed leader are accepted (with a warning),
    /// others fail. `who` prefixes the progress lines.
    pub fn wait_for_preferred_leaders(
        &mut self,
        groups: &[String],
        preferred: impl Fn(usize) -> usize,
        view_timeout: Duration,
        timeout: Duration,
        who: &str,
    ) -> PerfResult<()> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut next_report = started + Duration::from_millis(WAIT_REPORT_INTERVAL_MS);
        loop {
            self.check_running()?;
            let state = count_leaders(&self.views(view_timeout), groups, &preferred);
            if state.preferred == groups.len() {
                return Ok(());
            }
            if Instant::now() >= next_report {
                next_report += Duration::from_millis(WAIT_REPORT_INTERVAL_MS);
                eprintln!(
                    "{who}: {:.0} s: {} of {} groups have a leader, {} their preferred one; {}",
                    started.elapsed().as_secs_f64(),
                    state.agreed,
                    groups.len(),
                    state.preferred,
                    state.problem
                );
            }
            if Instant::now() >= deadline {
                if state.agreed == groups.len() {
                    eprintln!(
                        "{who}: warning: {} of {} groups are led by a node other than their preferred leader",
                        groups.len() - state.preferred,
                        groups.len()
                    );
                    return Ok(());
                }
                return Err(PerfError::Cluster(format!(
                    "{} of {} groups have no agreed leader after {timeout:?} (last problem: {}); logs:\n{}",
                    groups.len() - state.agreed,
                    groups.len(),
                    state.problem,
                    self.log_tails(LOG_TAIL_BYTES)
                )));
            }
            std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
        }
    }
}

/// The node that leads the group of `rows` in the newest term any node reports, with
/// that term, once the other answering nodes of that term name it too.
pub fn agreed_leader(rows: &[NodeRow]) -> Option<(usize, Term)> {
    let newest = rows.iter().map(|s| s.row.term).max()?;
    let leader = rows
        .iter()
        .find(|s| s.row.role == Role::Leader && s.row.term == newest)?;
    let id = u32::try_from(leader.node).ok()?;
    rows.iter()
        .filter(|s| s.row.term == newest && s.node != leader.node)
        .all(|s| s.row.leader == Some(id))
        .then_some((leader.node, newest))
}

/// How far a cluster's groups are from having leaders.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LeaderCount {
    /// Groups whose nodes all answer and name the same leader, which alone says it leads.
    pub agreed: usize,
    /// Of those, groups led by their preferred leader.
    pub preferred: usize,
    /// The last thing found wrong, for progress and error lines.
    pub problem: String,
}

/// Counts the groups of `views` (every node's, in node order) with agreed and with
/// preferred leaders (`preferred(g)` is the `g`th group's preferred node).
pub fn count_leaders(
    views: &[Result<ClusterViewResponse, String>],
    groups: &[String],
    preferred: impl Fn(usize) -> usize,
) -> LeaderCount {
    let mut state = LeaderCount::default();
    // group → (leaders named, leaders claiming) over the nodes.
    let mut named: BTreeMap<&str, Vec<Option<u32>>> = BTreeMap::new();
    let mut claimed: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    let mut incomplete = Vec::new();
    for v in views {
        match v {
            Ok(v) => {
                if v.rows.len() < groups.len() {
                    incomplete.push(format!(
                        "n{} hosts {} of {} groups so far",
                        v.node_id,
                        v.rows.len(),
                        groups.len()
                    ));
                }
                for row in &v.rows {
                    named.entry(&row.group).or_default().push(row.leader);
                    if row.role == Role::Leader {
                        claimed.entry(&row.group).or_default().push(v.node_id);
                    }
                }
            }
            Err(e) => state.problem = e.clone(),
        }
    }
    for (g, name) in groups.iter().enumerate() {
        let names = named.get(name.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        let claims = claimed.get(name.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        let agreed = match (names.first(), claims) {
            (Some(Some(l)), [c])
                if names.len() == views.len() && names.iter().all(|n| *n == Some(*l)) && c == l =>
            {
                Some(*l)
            }
            _ => None,
        };
        match agreed {
            Some(l) => {
                state.agreed += 1;
                if l as usize == preferred(g) {
                    state.preferred += 1;
                }
            }
            None => {
                state.problem =
                    format!("group {name}: leaders named {names:?}, claimed by {claims:?}")
            }
        }
    }
    if !incomplete.is_empty() {
        state.problem = format!("{} (still opening groups, or stuck)", incomplete.join(", "));
    }
    state
}

#[cfg(test)]
mod tests {
    use dledger::config::HostPort;

    use super::*;

    fn row(group: &str, role: Role, term: Term, leader: Option<u32>) -> GroupRow {
        GroupRow {
            group: group.into(),
            role,
            term,
            leader,
            ledger_end: 0,
            commit_index: 0,
            max_lag: 0,
            append_tps: 0,
        }
    }

    fn view(node_id: u32, rows: Vec<GroupRow>) -> Result<ClusterViewResponse, String> {
        Ok(ClusterViewResponse {
            cluster: "C".into(),
            node_id,
            client_addr: HostPort {
                host: "127.0.0.1".into(),
                port: 1,
            },
            rows,
        })
    }

    #[test]
    fn a_leader_counts_once_the_newest_term_agrees() {
        let at = |node, role, term, leader| NodeRow {
            node,
            row: row("G", role, term, leader),
        };
        let rows = [
            at(0, Role::Follower, 3, Some(1)),
            at(1, Role::Leader, 3, Some(1)),
            at(2, Role::Follower, 2, Some(0)),
        ];
        assert_eq!(agreed_leader(&rows), Some((1, 3)));
        let disputed = [
            at(0, Role::Leader, 3, Some(0)),
            at(1, Role::Leader, 3, Some(1)),
        ];
        assert_eq!(agreed_leader(&disputed), None);
        // A newer term without a leader yet: no leader.
        let newer = [
            at(0, Role::Leader, 3, Some(0)),
            at(1, Role::Candidate, 4, None),
        ];
        assert_eq!(agreed_leader(&newer), None);
        assert_eq!(agreed_leader(&[]), None);
    }

    #[test]
    fn preferred_leaders_are_counted_apart_from_agreed_ones() {
        let groups = vec!["G0".to_owned(), "G1".to_owned()];
        // G0 led by n0 (preferred), G1 led by n0 (preferred n1).
        let views: Vec<_> = (0..2)
            .map(|n| {
                let role = if n == 0 { Role::Leader } else { Role::Follower };
                view(
                    n,
                    vec![row("G0", role, 1, Some(0)), row("G1", role, 1, Some(0))],
                )
            })
            .collect();
        let c = count_leaders(&views, &groups, |g| g);
        assert_eq!((c.agreed, c.preferred), (2, 1));
        // A node that does not answer: nothing is agreed.
        let mut partial = views.clone();
        partial[1] = Err("n1: refused".into());
        let c = count_leaders(&partial, &groups, |g| g);
        assert_eq!(c.agreed, 0);
        assert!(!c.problem.is_empty());
    }
}

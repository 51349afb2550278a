//! `dledger cluster-list (--peers ADDRS | -n NAMESRV) [--json]`: one row per node per
//! group, asking each node directly (wire ClusterView request) or a name server.
//!
//! Rows gathered from several nodes are not one snapshot: a killed leader's last
//! registration can sit next to its successor's. A leader row of an older term than its
//! group's newest is shown as `STALE_LEADER` with BID -1 (see `crate::cluster_view`), so
//! the table never shows two BID 0 for one group.

use std::time::Duration;

use argh::FromArgs;
use dledger::raft::Role;
use dledger::wire::ClusterViewResponse;

use crate::client::parse_peers;
use crate::cluster_view::{cluster_view, is_stale_leader, namesrv_views, newest_terms, shown_bid};

/// Print every group of every node: cluster, group, BID, address, role, term, ledger end,
/// commit, lag and append rate.
#[derive(FromArgs, Debug, Clone, PartialEq, Eq)]
#[argh(subcommand, name = "cluster-list")]
pub struct ClusterListArgs {
    /// ask the nodes directly: client addresses, host:port separated by ';' or ','
    #[argh(option)]
    pub peers: Option<String>,
    /// ask this name server (host:port) instead
    #[argh(option, short = 'n')]
    pub namesrv: Option<String>,
    /// print one JSON object per row instead of a table
    #[argh(switch)]
    pub json: bool,
    /// per-node timeout in ms (default 2000)
    #[argh(option, default = "2000")]
    pub timeout_ms: u64,
}

/// One node's answer, or why there is none.
pub type NodeView = (String, Result<ClusterViewResponse, String>);

pub fn run(args: ClusterListArgs) -> Result<(), String> {
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let views: Vec<NodeView> = match (&args.peers, &args.namesrv) {
        (Some(peers), None) => {
            let addrs = parse_peers(peers).map_err(|e| format!("--peers: {e}"))?;
            addrs
                .iter()
                .map(|a| (a.to_string(), cluster_view(&a.to_string(), timeout)))
                .collect()
        }
        (None, Some(ns)) => from_namesrv(ns, timeout)?,
        _ => return Err("give exactly one of --peers ADDRS or -n NAMESRV".into()),
    };
    print!("{}", render(&views, args.json));
    Ok(())
}

/// Every node the name server at `addr` knows; one it has not heard from lately (sent
/// with no rows) is a gone row.
pub fn from_namesrv(addr: &str, timeout: Duration) -> Result<Vec<NodeView>, String> {
    let answers = namesrv_views(addr, timeout)?;
    Ok(answers
        .into_iter()
        .map(|v| {
            let who = v.client_addr.to_string();
            if v.rows.is_empty() {
                let why = format!(
                    "{} n{}: no registration for {} ms",
                    v.cluster,
                    v.node_id,
                    super::namesrv::EXPIRE_MS
                );
                (who, Err(why))
            } else {
                (who, Ok(v))
            }
        })
        .collect())
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Leader => "LEADER",
        Role::Follower => "FOLLOWER",
        Role::PreCandidate => "PRECANDIDATE",
        Role::Candidate => "CANDIDATE",
    }
}

/// The table (or JSON lines) for `views`; an unreachable node is one `gone` row.
pub fn render(views: &[NodeView], json: bool) -> String {
    let mut out = String::new();
    if !json {
        out.push_str(&format!(
            "{:<16} {:<16} {:>4} {:<22} {:<12} {:>6} {:>10} {:>10} {:>8} {:>8}\n",
            "#Cluster Name",
            "#Broker Name",
            "#BID",
            "#Addr",
            "#Role",
            "#Term",
            "#LedgerEnd",
            "#Commit",
            "#Lag",
            "#InTPS"
        ));
    }
    let newest = newest_terms(views.iter().filter_map(|(_, v)| v.as_ref().ok()));
    for (addr, view) in views {
        match view {
            Err(why) => {
                if json {
                    out.push_str(&format!(
                        "{{\"addr\":\"{}\",\"role\":\"GONE\",\"error\":\"{}\"}}\n",
                        json_escape(addr),
                        json_escape(why)
                    ));
                } else {
                    out.push_str(&format!(
                        "{:<16} {:<16} {:>4} {:<22} {:<12} ({why})\n",
                        "-", "-", "-", addr, "GONE"
                    ));
                }
            }
            Ok(v) => {
                for r in &v.rows {
                    let newest_term = newest
                        .get(&(v.cluster.as_str(), r.group.as_str()))
                        .copied()
                        .unwrap_or(r.term);
                    let b = shown_bid(r, v.node_id, newest_term);
                    let role = if is_stale_leader(r, newest_term) {
                        "STALE_LEADER"
                    } else {
                        role_name(r.role)
                    };
                    if json {
                        out.push_str(&format!(
                            "{{\"cluster\":\"{}\",\"group\":\"{}\",\"bid\":{b},\"addr\":\"{}\",\
                             \"role\":\"{}\",\"term\":{},\"ledgerEnd\":{},\"commit\":{},\
                             \"lag\":{},\"inTps\":{}}}\n",
                            json_escape(&v.cluster),
                            json_escape(&r.group),
                            v.client_addr,
                            role,
                            r.term,
                            r.ledger_end,
                            r.commit_index,
                            r.max_lag,
                            r.append_tps
                        ));
                    } else {
                        out.push_str(&format!(
                            "{:<16} {:<16} {:>4} {:<22} {:<12} {:>6} {:>10} {:>10} {:>8} {:>8}\n",
                            v.cluster,
                            r.group,
                            b,
                            v.client_addr.to_string(),
                            role,
                            r.term,
                            r.ledger_end,
                            r.commit_index,
                            r.max_lag,
                            r.append_tps
                        ));
                    }
                }
            }
        }
    }
    out
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_quotes_and_controls() {
        assert_eq!(json_escape("a\"b\\c\n"), "a\\\"b\\\\c\\u000a");
    }

    #[test]
    fn unreachable_node_is_a_gone_row() {
        let views = vec![(
            "127.0.0.1:1".to_string(),
            Err("connect: refused".to_string()),
        )];
        let t = render(&views, false);
        assert!(t.lines().nth(1).is_some_and(|l| l.contains("GONE")));
        let j = render(&views, true);
        assert!(j.contains("\"role\":\"GONE\""));
    }
}

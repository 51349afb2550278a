//! `dledger cluster-list --peers ADDRS [--json]`: one row per node per group, asking each
//! node directly with the wire ClusterView request (the name-server source, `-n`, is not
//! built yet).
//!
//! The call is a plain blocking `std::net` exchange (one request, one answer, bounded
//! timeouts) so `fast-try` can poll nodes without starting a glommio executor.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use argh::FromArgs;
use bytes::BytesMut;
use dledger::raft::Role;
use dledger::wire::{
    Body, ClusterViewRequest, ClusterViewResponse, ErrorResponse, FrameDecoder, Kind, WireLimits,
};

use crate::client::parse_peers;

/// Print every group of every node: cluster, group, BID, address, role, term, ledger end,
/// commit, lag and append rate.
#[derive(FromArgs, Debug, Clone, PartialEq, Eq)]
#[argh(subcommand, name = "cluster-list")]
pub struct ClusterListArgs {
    /// client addresses of the nodes, host:port separated by ';' or ','
    #[argh(option)]
    pub peers: String,
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
    let addrs = parse_peers(&args.peers).map_err(|e| format!("--peers: {e}"))?;
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let views: Vec<NodeView> = addrs
        .iter()
        .map(|a| (a.to_string(), cluster_view(&a.to_string(), timeout)))
        .collect();
    print!("{}", render(&views, args.json));
    Ok(())
}

/// Sends one ClusterViewRequest to `addr` and waits (connect, write and each read bounded
/// by `timeout`) for its answer.
pub fn cluster_view(addr: &str, timeout: Duration) -> Result<ClusterViewResponse, String> {
    let limits = WireLimits::default();
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: cannot resolve: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: resolves to no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&sock, timeout).map_err(|e| format!("{addr}: connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("{addr}: setting timeouts: {e}"))?;
    let mut out = BytesMut::new();
    ClusterViewRequest
        .encode(1, &limits, &mut out)
        .map_err(|e| format!("encoding ClusterViewRequest: {e}"))?;
    stream
        .write_all(&out)
        .map_err(|e| format!("{addr}: send: {e}"))?;
    let decoder = FrameDecoder::new(limits.max_frame_bytes);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(frame) = decoder
            .decode(&mut buf)
            .map_err(|e| format!("{addr}: bad frame: {e}"))?
        {
            return match frame.header.kind {
                Kind::ClusterViewResponse => ClusterViewResponse::decode(&frame, &limits)
                    .map_err(|e| format!("{addr}: bad ClusterViewResponse: {e}")),
                Kind::ErrorResponse => {
                    let e = ErrorResponse::decode(&frame, &limits)
                        .map_err(|e| format!("{addr}: bad ErrorResponse: {e}"))?;
                    Err(format!("{addr}: {:?}: {}", e.code, e.message))
                }
                other => Err(format!("{addr}: unexpected answer kind {other:?}")),
            };
        }
        // The decoder refuses lengths above max_frame_bytes, so this buffer is bounded.
        let n = stream
            .read(&mut chunk)
            .map_err(|e| format!("{addr}: receive: {e}"))?;
        if n == 0 {
            return Err(format!("{addr}: connection closed before an answer"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// RocketMQ's broker id: 0 for a leader whose ledger is fully committed, the node id + 1
/// for followers and candidates, -1 for a leader still committing its ledger end.
pub fn bid(role: Role, node_id: u32, ledger_end: u64, commit_index: u64) -> i64 {
    match role {
        Role::Leader if ledger_end == commit_index => 0,
        Role::Leader => -1,
        Role::Follower | Role::PreCandidate | Role::Candidate => i64::from(node_id) + 1,
    }
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
                    let b = bid(r.role, v.node_id, r.ledger_end, r.commit_index);
                    if json {
                        out.push_str(&format!(
                            "{{\"cluster\":\"{}\",\"group\":\"{}\",\"bid\":{b},\"addr\":\"{}\",\
                             \"role\":\"{}\",\"term\":{},\"ledgerEnd\":{},\"commit\":{},\
                             \"lag\":{},\"inTps\":{}}}\n",
                            json_escape(&v.cluster),
                            json_escape(&r.group),
                            v.client_addr,
                            role_name(r.role),
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
                            role_name(r.role),
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
    fn bid_follows_rocketmq() {
        assert_eq!(bid(Role::Leader, 2, 10, 10), 0);
        assert_eq!(bid(Role::Leader, 2, 11, 10), -1);
        assert_eq!(bid(Role::Follower, 2, 10, 10), 3);
        assert_eq!(bid(Role::Candidate, 0, 0, 0), 1);
    }

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

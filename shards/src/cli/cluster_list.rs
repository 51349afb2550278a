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
    let answers = exchange(addr, timeout, true)?;
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

/// Sends one ClusterViewRequest to `addr` and waits (connect, write and each read bounded
/// by `timeout`) for its answer.
pub fn cluster_view(addr: &str, timeout: Duration) -> Result<ClusterViewResponse, String> {
    exchange(addr, timeout, false)?
        .pop()
        .ok_or_else(|| format!("{addr}: no answer"))
}

/// One ClusterViewRequest; a node answers with one frame, a name server (`until_eof`)
/// with one per node and then closes the connection.
fn exchange(
    addr: &str,
    timeout: Duration,
    until_eof: bool,
) -> Result<Vec<ClusterViewResponse>, String> {
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
    let mut views = Vec::new();
    loop {
        while let Some(frame) = decoder
            .decode(&mut buf)
            .map_err(|e| format!("{addr}: bad frame: {e}"))?
        {
            match frame.header.kind {
                Kind::ClusterViewResponse => {
                    if views.len() >= MAX_NODES_LISTED {
                        return Err(format!("{addr}: more than {MAX_NODES_LISTED} nodes"));
                    }
                    views.push(
                        ClusterViewResponse::decode(&frame, &limits)
                            .map_err(|e| format!("{addr}: bad ClusterViewResponse: {e}"))?,
                    );
                    if !until_eof {
                        return Ok(views);
                    }
                }
                Kind::ErrorResponse => {
                    let e = ErrorResponse::decode(&frame, &limits)
                        .map_err(|e| format!("{addr}: bad ErrorResponse: {e}"))?;
                    return Err(format!("{addr}: {:?}: {}", e.code, e.message));
                }
                other => return Err(format!("{addr}: unexpected answer kind {other:?}")),
            }
        }
        // The decoder refuses lengths above max_frame_bytes, so this buffer is bounded.
        let n = stream
            .read(&mut chunk)
            .map_err(|e| format!("{addr}: receive: {e}"))?;
        if n == 0 {
            if until_eof {
                return Ok(views);
            }
            return Err(format!("{addr}: connection closed before an answer"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Bound on the nodes one name-server answer may list.
const MAX_NODES_LISTED: usize = 4096;

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

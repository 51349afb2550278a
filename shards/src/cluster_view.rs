//! The ClusterView exchange shared by the CLI (`cluster-list`, `fast-try`), the name-server
//! registration of a running node and the name server's readers, and the rules that turn
//! a view into RocketMQ's broker ids.
//!
//! The calls are plain blocking `std::net` exchanges (one request, bounded timeouts) so
//! they work from any thread without a glommio executor.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::BytesMut;
use dledger::raft::{Role, Term};
use dledger::wire::{
    Body, ClusterViewRequest, ClusterViewResponse, ErrorResponse, FrameDecoder, GroupRow, Kind,
    WireLimits,
};

/// Bound on the nodes one name-server answer may list.
pub const MAX_NODES_LISTED: usize = 4096;

/// Sends one ClusterViewRequest to the node at `addr` and waits (connect, write and each
/// read bounded by `timeout`) for its answer.
pub fn cluster_view(addr: &str, timeout: Duration) -> Result<ClusterViewResponse, String> {
    exchange(addr, timeout, false)?
        .pop()
        .ok_or_else(|| format!("{addr}: no answer"))
}

/// Asks the name server at `addr` for every node it knows: one view per node (a node whose
/// registration expired comes with no rows).
pub fn namesrv_views(addr: &str, timeout: Duration) -> Result<Vec<ClusterViewResponse>, String> {
    exchange(addr, timeout, true)
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

/// RocketMQ's broker id: 0 for a leader whose ledger is fully committed, the node id + 1
/// for followers and candidates, -1 for a leader still committing its ledger end.
pub fn bid(role: Role, node_id: u32, ledger_end: u64, commit_index: u64) -> i64 {
    match role {
        Role::Leader if ledger_end == commit_index => 0,
        Role::Leader => -1,
        Role::Follower | Role::PreCandidate | Role::Candidate => i64::from(node_id) + 1,
    }
}

/// The newest term any row reports, per (cluster, group), over `views`.
///
/// A node that was killed (or cut off) keeps the role it had in its last answer, so a
/// view gathered from several sources can hold a leader row of an older term next to the
/// new leader's. With pre-vote a node only moves to a newer term once a majority stopped
/// hearing the old leader, so a leader row older than this term is stale.
pub fn newest_terms<'a>(
    views: impl IntoIterator<Item = &'a ClusterViewResponse>,
) -> HashMap<(&'a str, &'a str), Term> {
    let mut newest: HashMap<(&str, &str), Term> = HashMap::new();
    for v in views {
        for r in &v.rows {
            let t = newest
                .entry((v.cluster.as_str(), r.group.as_str()))
                .or_default();
            *t = (*t).max(r.term);
        }
    }
    newest
}

/// Whether `row` claims leadership of a term older than `newest` (its group's newest term).
pub fn is_stale_leader(row: &GroupRow, newest: Term) -> bool {
    row.role == Role::Leader && row.term < newest
}

/// The broker id shown for `row` of node `node_id`: [`bid`], except that a stale leader
/// row (see [`newest_terms`]) is -1 (unknown), never 0.
pub fn shown_bid(row: &GroupRow, node_id: u32, newest: Term) -> i64 {
    if is_stale_leader(row, newest) {
        return -1;
    }
    bid(row.role, node_id, row.ledger_end, row.commit_index)
}

#[cfg(test)]
pub(crate) mod tests {
    use dledger::config::HostPort;

    use super::*;

    /// Node `node_id` of cluster C on 127.0.0.1:30911+id with one row of group G.
    pub(crate) fn view(node_id: u32, role: Role, term: Term) -> ClusterViewResponse {
        ClusterViewResponse {
            cluster: "C".into(),
            node_id,
            client_addr: HostPort {
                host: "127.0.0.1".into(),
                port: 30911 + node_id as u16,
            },
            rows: vec![GroupRow {
                group: "G".into(),
                role,
                term,
                leader: None,
                ledger_end: 5,
                commit_index: 5,
                max_lag: 0,
                append_tps: 0,
            }],
        }
    }

    #[test]
    fn bid_follows_rocketmq() {
        assert_eq!(bid(Role::Leader, 2, 10, 10), 0);
        assert_eq!(bid(Role::Leader, 2, 11, 10), -1);
        assert_eq!(bid(Role::Follower, 2, 10, 10), 3);
        assert_eq!(bid(Role::Candidate, 0, 0, 0), 1);
    }

    #[test]
    fn an_older_terms_leader_row_is_never_bid_0() {
        // n0 led term 3 and was killed; n1 leads term 4; n2 follows in term 4.
        let views = [
            view(0, Role::Leader, 3),
            view(1, Role::Leader, 4),
            view(2, Role::Follower, 4),
        ];
        let newest = newest_terms(&views);
        assert_eq!(newest.get(&("C", "G")), Some(&4));
        let bids: Vec<i64> = views
            .iter()
            .map(|v| shown_bid(&v.rows[0], v.node_id, newest[&("C", "G")]))
            .collect();
        assert_eq!(bids, [-1, 0, 3]);
        // Alone, the old leader row is still the leader.
        let alone = [view(0, Role::Leader, 3)];
        let newest = newest_terms(&alone);
        assert_eq!(shown_bid(&alone[0].rows[0], 0, newest[&("C", "G")]), 0);
    }
}

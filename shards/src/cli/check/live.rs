//! `dledger check --peers ADDRS --group G`: compare the replicas of a running group
//! through the client protocol. Each node is asked directly (not through the leader)
//! for its committed entries with `get`, in pages, and the streams are compared entry
//! by entry (index, term, position, body CRC) up to the smallest commit index: what a
//! node has committed must be the same everywhere (Raft's log matching), so any
//! difference there is a real divergence.

use std::time::Duration;

use dledger::config::HostPort;
use dledger::store::SegmentGeometry;
use dledger::upgrade::{Divergence, RecordSummary, first_divergence};
use dledger::wire::{ClientMessage, GetRequest, GetResponse};

use crate::client::{ClientOptions, Connection, block_on, parse_peers};

/// Body bytes asked for per `get`.
const PAGE_BYTES: u32 = 1 << 20;
/// Timeout of one `get`.
const CALL_TIMEOUT_MS: u64 = 10_000;

/// One node's committed entries, fetched page by page.
struct NodeStream {
    addr: HostPort,
    conn: Connection,
    next: u64,
    /// The node's commit index, from its first answer.
    commit: u64,
}

async fn fetch(
    s: &NodeStream,
    group: &str,
    from: u64,
    opts: &ClientOptions,
) -> Result<GetResponse, String> {
    let frame = s
        .conn
        .call(
            &GetRequest {
                group: group.to_owned(),
                from_index: from,
                max_bytes: PAGE_BYTES,
            },
            Duration::from_millis(CALL_TIMEOUT_MS),
        )
        .await
        .map_err(|e| format!("{}: get from {from}: {e}", s.addr))?;
    match ClientMessage::decode(&frame, &opts.limits) {
        Ok(ClientMessage::GetResponse(r)) => Ok(r),
        Ok(ClientMessage::ErrorResponse(e)) => Err(format!(
            "{}: get from {from}: {:?}: {}",
            s.addr, e.code, e.message
        )),
        Ok(_) => Err(format!(
            "{}: get from {from}: an answer of another kind",
            s.addr
        )),
        Err(e) => Err(format!("{}: get from {from}: {e}", s.addr)),
    }
}

fn summary(e: &dledger::wire::GotEntry) -> RecordSummary {
    RecordSummary {
        index: e.index,
        term: e.term,
        pos: e.pos,
        record_bytes: (dledger::store::record::HEADER_BYTES + e.body.len()) as u64,
        body_crc: crc32fast::hash(&e.body),
    }
}

/// Compares the committed entries of every node at `peers`; `segment_bytes` (when
/// given) names segment files in the report.
pub fn run(peers: &str, group: &str, segment_bytes: Option<u64>) -> Result<(), String> {
    let addrs = parse_peers(peers).map_err(|e| format!("--peers: {e}"))?;
    if addrs.len() < 2 {
        return Err("--peers: at least two nodes are needed to compare".into());
    }
    // Without a segment size only positions are named; any geometry then serves.
    let geometry = SegmentGeometry::new(segment_bytes.unwrap_or(1 << 30))
        .map_err(|e| format!("--segment-bytes: {e}"))?;
    let group = group.to_owned();
    block_on("dledger-check", move || async move {
        let opts = ClientOptions::default();
        let mut nodes = Vec::new();
        for addr in addrs {
            let conn = Connection::connect(&addr, &opts)
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
            nodes.push(NodeStream {
                addr,
                conn,
                next: 1,
                commit: 0,
            });
        }
        // The smallest commit index bounds what every node must agree on.
        let mut first_pages = Vec::new();
        for n in &mut nodes {
            let page = fetch(n, &group, 1, &opts).await?;
            n.commit = page.commit_index;
            first_pages.push(page);
        }
        let upto = nodes.iter().map(|n| n.commit).min().unwrap_or(0);
        println!(
            "group {group}: commit indexes {}; comparing entries 1..={upto}",
            nodes
                .iter()
                .map(|n| format!("{} {}", n.addr, n.commit))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut pages: Vec<std::collections::VecDeque<RecordSummary>> = first_pages
            .iter()
            .map(|p| p.entries.iter().map(summary).collect())
            .collect();
        for (n, p) in nodes.iter_mut().zip(&pages) {
            n.next = p.back().map_or(1, |r| r.index + 1);
        }
        let mut compared = 0u64;
        let mut index = 1u64;
        while index <= upto {
            // Refill every node's page that ran dry.
            for (n, p) in nodes.iter_mut().zip(pages.iter_mut()) {
                if p.is_empty() && n.next <= upto {
                    let page = fetch(n, &group, n.next, &opts).await?;
                    p.extend(page.entries.iter().map(summary));
                    n.next = p.back().map_or(n.next, |r| r.index + 1);
                }
            }
            let heads: Vec<Option<RecordSummary>> =
                pages.iter_mut().map(|p| p.pop_front()).collect();
            let Some(Some(reference)) = heads.first().copied() else {
                return Err(format!(
                    "{}: no entry {index} below its commit index",
                    nodes[0].addr
                ));
            };
            for (k, h) in heads.iter().enumerate().skip(1) {
                if let Some(d) = first_divergence(&geometry, [reference], h.iter().copied()) {
                    let d = Divergence {
                        matching: compared,
                        ..d
                    };
                    let file = match segment_bytes {
                        Some(_) => {
                            format!(" (segment file {} byte offset {})", d.segment, d.offset)
                        }
                        None => String::new(),
                    };
                    println!("DIVERGENCE at index {} pos {}{file}", d.index, d.pos);
                    let text = d
                        .to_string()
                        .replace("A has", &format!("{} has", nodes[0].addr));
                    let text = text.replace("B has", &format!("{} has", nodes[k].addr));
                    println!("  {text}");
                    return Err(format!(
                        "first divergent index {} at pos {}{file}",
                        d.index, d.pos
                    ));
                }
            }
            compared += 1;
            index += 1;
        }
        println!("replicas agree on {compared} committed entries");
        Ok(())
    })?
}

//! After the run: read the group back in full from every node and account for every
//! append the load made.
//!
//! - an acknowledged `(index → body)` must be on every node, at that index, byte for
//!   byte, and nowhere else (else it counts as lost, or as duplicated);
//! - an append with unknown outcome may be on a node at most once;
//! - a refused append must be on no node;
//! - where two nodes both hold an index, they hold the same term and body.

use std::collections::HashMap;
use std::time::Duration;

use dledger::config::HostPort;
use dledger::raft::{Index, Term};
use dledger::wire::{ClientMessage, GetRequest, GotEntry};
use dledger_shards::client::{ClientOptions, Connection, block_on};

use super::cluster::GROUP;
use super::load::{Outcome, Record, body, parse_body};

/// Body bytes asked for per get.
const GET_BUDGET_BYTES: u32 = 1 << 20;
/// Bound on the entries read back from one node (far above what a run appends).
const READ_ENTRIES_MAX: usize = 50_000_000;

/// Every committed entry node `addr` holds (gets sent to that node only).
pub fn read_replica(addr: &HostPort) -> Result<Vec<GotEntry>, String> {
    let opts = ClientOptions::default();
    let addr = addr.clone();
    block_on("failover-read", || async move {
        let conn = Connection::connect(&addr, &opts)
            .await
            .map_err(|e| format!("reading {addr}: {e}"))?;
        let mut out: Vec<GotEntry> = Vec::new();
        let mut from: Index = 1;
        loop {
            let request = GetRequest {
                group: GROUP.into(),
                from_index: from,
                max_bytes: GET_BUDGET_BYTES,
            };
            let frame = conn
                .call(&request, Duration::from_millis(opts.request_timeout_ms))
                .await
                .map_err(|e| format!("get {from} from {addr}: {e}"))?;
            match ClientMessage::decode(&frame, &opts.limits) {
                Ok(ClientMessage::GetResponse(r)) if r.entries.is_empty() => return Ok(out),
                Ok(ClientMessage::GetResponse(r)) => {
                    for e in r.entries {
                        if e.index != from {
                            return Err(format!(
                                "{addr}: asked for entry {from}, got {} (not dense)",
                                e.index
                            ));
                        }
                        from += 1;
                        out.push(e);
                    }
                    if out.len() > READ_ENTRIES_MAX {
                        return Err(format!("{addr}: more than {READ_ENTRIES_MAX} entries"));
                    }
                }
                Ok(ClientMessage::ErrorResponse(e)) => {
                    return Err(format!(
                        "get {from} from {addr}: {:?}: {}",
                        e.code, e.message
                    ));
                }
                Ok(other) => return Err(format!("get from {addr}: unexpected answer {other:?}")),
                Err(e) => return Err(format!("get from {addr}: undecodable answer: {e}")),
            }
        }
    })?
}

/// The accounting of one run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Accounting {
    pub acked: u64,
    pub unknown: u64,
    pub refused: u64,
    /// Acknowledged appends missing (or different) on at least one node.
    pub lost: u64,
    /// Appends found more than once on a node (acknowledged or unknown).
    pub duplicated: u64,
    /// Refused appends found on a node.
    pub phantom: u64,
    /// Indexes where two nodes hold different terms or bodies.
    pub diverged: u64,
    /// Bodies on a node that no worker appended (other than a new leader's empty entry).
    pub foreign: u64,
    /// Up to a few examples of each problem, for the report.
    pub examples: Vec<String>,
}

const EXAMPLES_MAX: usize = 10;

impl Accounting {
    fn example(&mut self, text: String) {
        if self.examples.len() < EXAMPLES_MAX {
            self.examples.push(text);
        }
    }

    pub fn ok(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.phantom == 0
            && self.diverged == 0
            && self.foreign == 0
    }
}

/// Accounts `records` against each node's log (`logs[i]` read from node `i`).
pub fn account(records: &[Record], logs: &[Vec<GotEntry>], body_bytes: usize) -> Accounting {
    let mut a = Accounting::default();
    // Per node: (worker, seq) → indexes where it is.
    let mut found: Vec<HashMap<(u32, u64), Vec<Index>>> = Vec::with_capacity(logs.len());
    for (node, log) in logs.iter().enumerate() {
        let mut m: HashMap<(u32, u64), Vec<Index>> = HashMap::new();
        for e in log {
            if e.body.is_empty() {
                continue; // a new leader's empty entry
            }
            match parse_body(&e.body) {
                Some(key) => m.entry(key).or_default().push(e.index),
                None => {
                    a.foreign += 1;
                    a.example(format!("n{node}: entry {} has a foreign body", e.index));
                }
            }
        }
        found.push(m);
    }
    for r in records {
        let key = (r.worker, r.seq);
        match r.outcome {
            Outcome::Acked { index, .. } => {
                a.acked += 1;
                let want = body(r.worker, r.seq, body_bytes);
                let mut lost = false;
                for (node, log) in logs.iter().enumerate() {
                    let at = found[node].get(&key).map_or(&[][..], Vec::as_slice);
                    let in_place = entry_at(log, index).is_some_and(|e| e.body == want);
                    if !in_place {
                        lost = true;
                        a.example(format!(
                            "n{node}: acknowledged f{}-{} at {index} is not there (found at {at:?})",
                            r.worker, r.seq
                        ));
                    } else if at.len() > 1 {
                        a.duplicated += 1;
                        a.example(format!(
                            "n{node}: acknowledged f{}-{} is at {at:?}",
                            r.worker, r.seq
                        ));
                    }
                }
                a.lost += u64::from(lost);
            }
            Outcome::Unknown { .. } => {
                a.unknown += 1;
                for (node, f) in found.iter().enumerate() {
                    if let Some(at) = f.get(&key).filter(|at| at.len() > 1) {
                        a.duplicated += 1;
                        a.example(format!(
                            "n{node}: f{}-{} (outcome unknown) is at {at:?}",
                            r.worker, r.seq
                        ));
                    }
                }
            }
            Outcome::Refused { .. } => {
                a.refused += 1;
                for (node, f) in found.iter().enumerate() {
                    if let Some(at) = f.get(&key) {
                        a.phantom += 1;
                        a.example(format!(
                            "n{node}: refused f{}-{} is at {at:?}",
                            r.worker, r.seq
                        ));
                    }
                }
            }
        }
    }
    // Every body on a node must be one the load sent.
    let sent: std::collections::HashSet<(u32, u64)> =
        records.iter().map(|r| (r.worker, r.seq)).collect();
    for (node, f) in found.iter().enumerate() {
        for (key, at) in f {
            if !sent.contains(key) {
                a.foreign += 1;
                a.example(format!(
                    "n{node}: f{}-{} at {at:?} was never sent",
                    key.0, key.1
                ));
            }
        }
    }
    // Replicas agree wherever both hold an index.
    if let Some((first, rest)) = logs.split_first() {
        for (k, other) in rest.iter().enumerate() {
            for (x, y) in first.iter().zip(other) {
                if x.index != y.index || x.term != y.term || x.body != y.body {
                    a.diverged += 1;
                    a.example(format!("n0 and n{} differ at entry {}", k + 1, x.index));
                }
            }
        }
    }
    a
}

/// The entry at `index` of a dense log read from index 1.
fn entry_at(log: &[GotEntry], index: Index) -> Option<&GotEntry> {
    let e = log.get(usize::try_from(index.checked_sub(1)?).ok()?)?;
    debug_assert_eq!(e.index, index, "read_replica returns dense logs from 1");
    Some(e)
}

/// The term of each index of a dense log read from index 1.
pub fn term_of(log: &[GotEntry], index: Index) -> Option<Term> {
    entry_at(log, index).map(|e| e.term)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use dledger::wire::ResponseCode;

    use super::*;

    fn entry(index: Index, term: Term, b: Bytes) -> GotEntry {
        GotEntry {
            index,
            term,
            pos: index * 100,
            body: b,
        }
    }

    fn rec(worker: u32, seq: u64, outcome: Outcome) -> Record {
        Record {
            worker,
            seq,
            sent_ns: 0,
            outcome,
        }
    }

    #[test]
    fn accounting_finds_lost_duplicated_phantom_and_diverged_entries() {
        let bb = 16;
        let acked = |seq, index| rec(0, seq, Outcome::Acked { index, at_ns: 1 });
        let records = vec![
            acked(0, 2),
            acked(1, 3),
            rec(
                0,
                2,
                Outcome::Unknown {
                    code: ResponseCode::Timeout,
                },
            ),
            rec(
                0,
                3,
                Outcome::Refused {
                    code: ResponseCode::NotLeader,
                },
            ),
        ];
        let good = vec![
            entry(1, 1, Bytes::new()),
            entry(2, 1, body(0, 0, bb)),
            entry(3, 1, body(0, 1, bb)),
            entry(4, 1, body(0, 2, bb)),
        ];
        let a = account(&records, &[good.clone(), good.clone()], bb);
        assert!(a.ok(), "{a:?}");
        assert_eq!((a.acked, a.unknown, a.refused), (2, 1, 1));

        // Node 1 lost the acknowledged entry 3, holds the unknown one twice and the
        // refused one once.
        let bad = vec![
            entry(1, 1, Bytes::new()),
            entry(2, 1, body(0, 0, bb)),
            entry(3, 2, body(0, 2, bb)),
            entry(4, 2, body(0, 2, bb)),
            entry(5, 2, body(0, 3, bb)),
        ];
        let a = account(&records, &[good, bad], bb);
        assert_eq!(a.lost, 1);
        assert_eq!(a.duplicated, 1);
        assert_eq!(a.phantom, 1);
        assert_eq!(a.diverged, 2, "entries 3 and 4 differ");
        assert!(!a.ok());
    }

    #[test]
    fn foreign_bodies_are_counted() {
        let log = vec![entry(1, 1, Bytes::from_static(b"hello"))];
        let a = account(&[], &[log], 8);
        assert_eq!(a.foreign, 1);
    }
}

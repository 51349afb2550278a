//! Asking every node directly: who leads, and (after the heal) each node's committed log.
//!
//! One request per node on a fresh connection, no retries and no redirects: the point is
//! what that node itself says and holds.

use std::time::{Duration, Instant};

use dledger::config::HostPort;
use dledger::raft::Role;
use dledger::wire::{
    Body, ClientMessage, GetRequest, GetResponse, MetadataRequest, MetadataResponse,
};
use dledger_shards::client::{ClientOptions, Connection, block_on};

use super::checker::{LogEntry, ReplicaLog};

/// One probe's connect and answer timeout.
const PROBE_TIMEOUT_MS: u64 = 1_000;
/// Bytes asked for per page when reading a log.
const PAGE_BYTES: u32 = 1 << 20;
/// One page's answer timeout: a node just restarted reads its log from disk, cold.
const PAGE_TIMEOUT_MS: u64 = 10_000;
/// Tries at reading one node's log before it counts as unreadable.
const READ_TRIES: u32 = 3;
/// Pause between convergence polls.
const POLL_MS: u64 = 200;

fn probe_options() -> ClientOptions {
    ClientOptions {
        connect_timeout_ms: PROBE_TIMEOUT_MS,
        request_timeout_ms: PROBE_TIMEOUT_MS,
        ..ClientOptions::default()
    }
}

async fn ask<B: Body>(
    conn: &Connection,
    req: &B,
    timeout_ms: u64,
) -> Result<ClientMessage, String> {
    let opts = probe_options();
    let frame = conn
        .call(req, Duration::from_millis(timeout_ms))
        .await
        .map_err(|e| e.to_string())?;
    match ClientMessage::decode(&frame, &opts.limits) {
        Ok(ClientMessage::ErrorResponse(e)) => Err(format!("{} ({})", e.code.name(), e.message)),
        Ok(m) => Ok(m),
        Err(e) => Err(format!("undecodable answer: {e}")),
    }
}

async fn metadata(addr: &HostPort, group: &str) -> Result<MetadataResponse, String> {
    let conn = Connection::connect(addr, &probe_options())
        .await
        .map_err(|e| e.to_string())?;
    match ask(
        &conn,
        &MetadataRequest {
            group: group.into(),
        },
        PROBE_TIMEOUT_MS,
    )
    .await?
    {
        ClientMessage::MetadataResponse(m) => Ok(m),
        _ => Err("a metadata request answered with another kind".into()),
    }
}

/// What each of `addrs` says about `group` (`None` where it did not answer).
pub fn metadata_of_all(addrs: &[HostPort], group: &str) -> Vec<Option<MetadataResponse>> {
    let n = addrs.len();
    let addrs = addrs.to_vec();
    let group = group.to_string();
    block_on("chaos-probe", move || async move {
        let mut out = Vec::with_capacity(addrs.len());
        for a in &addrs {
            out.push(metadata(a, &group).await.ok());
        }
        out
    })
    .unwrap_or_else(|_| vec![None; n])
}

/// The node (index into `addrs`) that leads `group` in the highest term any answering
/// node reports, if one says so.
pub fn leader_of(addrs: &[HostPort], group: &str) -> Option<usize> {
    metadata_of_all(addrs, group)
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            m.as_ref()
                .filter(|m| m.role == Role::Leader)
                .map(|m| (i, m.term))
        })
        .max_by_key(|&(_, term)| term)
        .map(|(i, _)| i)
}

/// Waits (up to `wait`) until every node answers for `group`, one leads, and all report
/// the leader's term and its last index as committed. Returns a description of the last
/// state seen when that did not happen.
pub fn wait_converged(addrs: &[HostPort], group: &str, wait: Duration) -> Result<(), String> {
    let until = Instant::now() + wait;
    loop {
        let seen = metadata_of_all(addrs, group);
        let leader = seen
            .iter()
            .flatten()
            .filter(|m| m.role == Role::Leader)
            .max_by_key(|m| m.term);
        let state = describe(&seen);
        if let Some(l) = leader
            && seen.len() == addrs.len()
            && seen.iter().all(|m| {
                m.as_ref()
                    .is_some_and(|m| m.term == l.term && m.commit_index == l.ledger_end)
            })
        {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(state);
        }
        std::thread::sleep(Duration::from_millis(POLL_MS));
    }
}

fn describe(seen: &[Option<MetadataResponse>]) -> String {
    let parts: Vec<String> = seen
        .iter()
        .enumerate()
        .map(|(i, m)| match m {
            Some(m) => format!(
                "n{i}: {:?} term {} commit {} end {}",
                m.role, m.term, m.commit_index, m.ledger_end
            ),
            None => format!("n{i}: no answer"),
        })
        .collect();
    parts.join("; ")
}

/// Node `name` at `addr`: its committed log of `group`, every entry from its first stored.
pub fn read_log(name: &str, addr: &HostPort, group: &str) -> ReplicaLog {
    let addr2 = addr.clone();
    let group = group.to_string();
    let read = block_on("chaos-read", move || async move {
        let mut tries = 0;
        loop {
            tries += 1;
            let mut log = Vec::new();
            match read_pages(&addr2, &group, &mut log).await {
                Ok(()) => return (log, None),
                Err(e) if tries >= READ_TRIES => return (log, Some(e)),
                Err(_) => glommio::timer::sleep(Duration::from_millis(POLL_MS)).await,
            }
        }
    });
    match read {
        Ok((entries, error)) => ReplicaLog {
            node: name.into(),
            entries,
            error,
        },
        Err(e) => ReplicaLog {
            node: name.into(),
            entries: Vec::new(),
            error: Some(e),
        },
    }
}

async fn read_pages(addr: &HostPort, group: &str, log: &mut Vec<LogEntry>) -> Result<(), String> {
    let first = metadata(addr, group).await?.ledger_begin.max(1);
    let conn = Connection::connect(addr, &probe_options())
        .await
        .map_err(|e| e.to_string())?;
    let mut next = first;
    loop {
        let req = GetRequest {
            group: group.into(),
            from_index: next,
            max_bytes: PAGE_BYTES,
        };
        let GetResponse {
            commit_index,
            entries,
        } = match ask(&conn, &req, PAGE_TIMEOUT_MS).await? {
            ClientMessage::GetResponse(r) => r,
            _ => return Err("a get request answered with another kind".into()),
        };
        if entries.is_empty() {
            return if next > commit_index {
                Ok(())
            } else {
                Err(format!(
                    "no entry at {next} though {commit_index} is committed"
                ))
            };
        }
        for e in entries {
            if e.index != next {
                return Err(format!("asked for index {next}, got {}", e.index));
            }
            log.push(LogEntry {
                index: e.index,
                term: e.term,
                body: e.body.to_vec(),
            });
            next += 1;
        }
    }
}

//! The continuous append load: `workers` tasks on one glommio executor thread, each
//! appending one body at a time through the client library, recording every outcome.
//!
//! Appends whose outcome is unknown are not retried (the client's
//! `retry_unknown_outcome = false`), so each body is accounted exactly: acknowledged at
//! an index, unknown (may be in the log at most once), or refused (must not be).
//! Bodies are `f<worker>-<seq>-` padded with `x` to `body_bytes`, so a body read back
//! names its append.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dledger::config::HostPort;
use dledger::wire::ResponseCode;
use dledger_shards::client::{Client, ClientOptions, block_on};

use super::cluster::GROUP;

/// What became of one append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged at `index`, `at_ns` after the load started.
    Acked { index: u64, at_ns: u64 },
    /// Failed after it may have been sent: it may be in the log (at most once).
    Unknown { code: ResponseCode },
    /// Refused before it could take effect: it must not be in the log.
    Refused { code: ResponseCode },
}

/// One append: worker, sequence number within the worker, outcome.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    pub worker: u32,
    pub seq: u64,
    /// When the call started, after the load started.
    pub sent_ns: u64,
    pub outcome: Outcome,
}

/// The body of `(worker, seq)`.
pub fn body(worker: u32, seq: u64, body_bytes: usize) -> Bytes {
    let mut b = format!("f{worker}-{seq}-").into_bytes();
    if b.len() < body_bytes {
        b.resize(body_bytes, b'x');
    }
    Bytes::from(b)
}

/// `(worker, seq)` from a body written by [`body`]; `None` for anything else.
pub fn parse_body(b: &[u8]) -> Option<(u32, u64)> {
    let rest = b.strip_prefix(b"f")?;
    let dash = rest.iter().position(|&c| c == b'-')?;
    let worker = std::str::from_utf8(&rest[..dash]).ok()?.parse().ok()?;
    let rest = &rest[dash + 1..];
    let dash = rest.iter().position(|&c| c == b'-')?;
    let seq = std::str::from_utf8(&rest[..dash]).ok()?.parse().ok()?;
    Some((worker, seq))
}

/// What the main thread sees of the running load.
#[derive(Debug)]
pub struct Progress {
    pub t0: Instant,
    /// Nanoseconds after `t0` of the latest acknowledgement (0: none yet).
    pub last_ack_ns: AtomicU64,
    pub acked: AtomicU64,
    pub stop: AtomicBool,
}

impl Progress {
    /// The latest acknowledgement's instant, if any.
    pub fn last_ack(&self) -> Option<Instant> {
        match self.last_ack_ns.load(Ordering::Acquire) {
            0 => None,
            ns => Some(self.t0 + Duration::from_nanos(ns)),
        }
    }

    fn since_t0_ns(&self) -> u64 {
        u64::try_from(self.t0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Every record, and the first error message seen per (outcome, code).
pub type Finished = (Vec<Record>, Vec<String>);

/// The running load; [`Load::finish`] stops it and returns every record.
#[derive(Debug)]
pub struct Load {
    pub progress: Arc<Progress>,
    thread: JoinHandle<Result<Finished, String>>,
}

/// Client settings of the load: the library's defaults, except that appends with an
/// unknown outcome are reported instead of retried (for exact accounting).
pub fn load_options() -> ClientOptions {
    ClientOptions {
        retry_unknown_outcome: false,
        ..ClientOptions::default()
    }
}

impl Load {
    pub fn start(peers: Vec<HostPort>, workers: u32, body_bytes: usize) -> Result<Load, String> {
        let progress = Arc::new(Progress {
            t0: Instant::now(),
            last_ack_ns: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let p = progress.clone();
        let thread = std::thread::Builder::new()
            .name("failover-load".into())
            .spawn(move || {
                block_on("failover-load", || run(peers, workers, body_bytes, p)).and_then(|r| r)
            })
            .map_err(|e| format!("starting the load thread: {e}"))?;
        Ok(Load { progress, thread })
    }

    pub fn finish(self) -> Result<Finished, String> {
        self.progress.stop.store(true, Ordering::Release);
        self.thread
            .join()
            .map_err(|_| "the load thread panicked".to_string())?
    }
}

async fn run(
    peers: Vec<HostPort>,
    workers: u32,
    body_bytes: usize,
    progress: Arc<Progress>,
) -> Result<Finished, String> {
    let client = Rc::new(
        Client::connect(peers, GROUP, load_options())
            .await
            .map_err(|e| format!("load client: {e}"))?,
    );
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let (client, progress) = (client.clone(), progress.clone());
            glommio::spawn_local(async move {
                let mut out = Vec::new();
                let mut messages: Vec<(bool, ResponseCode, String)> = Vec::new();
                let mut seq = 0u64;
                while !progress.stop.load(Ordering::Acquire) {
                    let b = body(worker, seq, body_bytes);
                    let sent_ns = progress.since_t0_ns();
                    let outcome = match client.append(std::slice::from_ref(&b)).await {
                        Ok(entries) => {
                            let at_ns = progress.since_t0_ns();
                            progress.last_ack_ns.fetch_max(at_ns, Ordering::AcqRel);
                            progress.acked.fetch_add(1, Ordering::Relaxed);
                            // One body in, one entry out (the client checks the count).
                            Outcome::Acked {
                                index: entries[0].index,
                                at_ns,
                            }
                        }
                        Err(e) => {
                            let seen = messages
                                .iter()
                                .any(|(u, c, _)| *u == e.outcome_unknown && *c == e.code);
                            if !seen {
                                messages.push((e.outcome_unknown, e.code, e.to_string()));
                            }
                            if e.outcome_unknown {
                                Outcome::Unknown { code: e.code }
                            } else {
                                Outcome::Refused { code: e.code }
                            }
                        }
                    };
                    out.push(Record {
                        worker,
                        seq,
                        sent_ns,
                        outcome,
                    });
                    seq += 1;
                }
                (out, messages)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut first_messages: Vec<(bool, ResponseCode, String)> = Vec::new();
    for t in tasks {
        let (records, messages) = t.await;
        all.extend(records);
        for m in messages {
            if !first_messages
                .iter()
                .any(|(u, c, _)| *u == m.0 && *c == m.1)
            {
                first_messages.push(m);
            }
        }
    }
    let texts = first_messages
        .into_iter()
        .map(|(unknown, _, text)| {
            format!(
                "{}: {text}",
                if unknown {
                    "unknown outcome"
                } else {
                    "refused"
                }
            )
        })
        .collect();
    Ok((all, texts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_their_append() {
        let b = body(3, 12345, 64);
        assert_eq!(b.len(), 64);
        assert_eq!(parse_body(&b), Some((3, 12345)));
        // Shorter than its name: not padded, still parsed.
        assert_eq!(parse_body(&body(7, 9, 1)), Some((7, 9)));
        assert_eq!(parse_body(b""), None);
        assert_eq!(parse_body(b"f1-x-"), None);
        assert_eq!(parse_body(b"g1-2-"), None);
    }
}

//! Client settings and the `--peers` list.

use std::time::Duration;

use dledger::config::{HostPort, parse_host_port};
use dledger::wire::WireLimits;

/// Bounds and timings of a [`super::Client`]. Every queue, wait and retry is bounded by
/// one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// Requests in flight on one connection; a caller beyond this waits for a slot. Also
    /// bounds the send buffer: at most this many frames of at most `limits.max_frame_bytes`.
    pub max_inflight_per_conn: usize,
    /// Frame and message bounds; a response frame over `limits.max_frame_bytes` closes
    /// the connection (FRAME_TOO_LARGE) before anything is allocated for it. Must match
    /// the nodes' limits (`maxFrameBytes`, `maxBodyBytes`, `maxBodiesPerAppend`).
    pub limits: WireLimits,
    pub connect_timeout_ms: u64,
    /// One request's wait for its answer (the node's own `maxWaitAckTimeMs` should be
    /// shorter, so that the node answers WAIT_QUORUM_ACK_TIMEOUT first).
    pub request_timeout_ms: u64,
    /// Attempts per call (first try, redirects and retries all count).
    pub max_attempts: u32,
    /// A call gives up when this much time has passed since it started, even with
    /// attempts left.
    pub call_deadline_ms: u64,
    /// First back-off before a retry; doubled after each retry up to `backoff_max_ms`.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// Retry an append whose outcome is unknown (TERM_CHANGED, WAIT_QUORUM_ACK_TIMEOUT,
    /// timeout or connection loss after sending). Retrying gives at-least-once: the body
    /// may end up twice in the log. With `false` such an append fails with
    /// `ClientError::outcome_unknown` set, so a caller can account exactly.
    pub retry_unknown_outcome: bool,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            max_inflight_per_conn: 1024,
            limits: WireLimits::default(),
            connect_timeout_ms: 2_000,
            request_timeout_ms: 5_000,
            max_attempts: 32,
            call_deadline_ms: 15_000,
            backoff_initial_ms: 10,
            backoff_max_ms: 400,
            retry_unknown_outcome: true,
        }
    }
}

impl ClientOptions {
    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    pub(crate) fn call_deadline(&self) -> Duration {
        Duration::from_millis(self.call_deadline_ms)
    }

    /// Refuses settings that would make a call unbounded or impossible.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_inflight_per_conn == 0 {
            return Err("max_inflight_per_conn must be at least 1".into());
        }
        if self.max_attempts == 0 {
            return Err("max_attempts must be at least 1".into());
        }
        for (name, v) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("call_deadline_ms", self.call_deadline_ms),
            ("backoff_max_ms", self.backoff_max_ms),
        ] {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.backoff_initial_ms > self.backoff_max_ms {
            return Err(format!(
                "backoff_initial_ms ({}) exceeds backoff_max_ms ({})",
                self.backoff_initial_ms, self.backoff_max_ms
            ));
        }
        if (self.limits.max_frame_bytes as usize) < dledger::wire::HEADER_LEN {
            return Err("limits.max_frame_bytes must hold a frame header".into());
        }
        Ok(())
    }
}

/// Most addresses a `--peers` list may name (a group has at most 7 peers; a few spare for
/// lists that name nodes of several groups).
pub const MAX_PEER_ADDRS: usize = 64;

/// Parses `host:port` client addresses separated by `;` or `,` (blanks around items are
/// ignored, duplicates refused).
pub fn parse_peers(text: &str) -> Result<Vec<HostPort>, String> {
    let mut out: Vec<HostPort> = Vec::new();
    for item in text.split([';', ',']).map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let addr = parse_host_port(item).map_err(|e| format!("peer address {e}"))?;
        if out.contains(&addr) {
            return Err(format!("peer address '{item}' is listed twice"));
        }
        if out.len() == MAX_PEER_ADDRS {
            return Err(format!("more than {MAX_PEER_ADDRS} peer addresses"));
        }
        out.push(addr);
    }
    if out.is_empty() {
        return Err(format!(
            "no peer address in '{text}' (expected host:port items separated by ';' or ',')"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_split_on_both_separators() {
        let p = parse_peers("127.0.0.1:30911; 127.0.0.1:30921,localhost:30931").unwrap();
        let shown: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["127.0.0.1:30911", "127.0.0.1:30921", "localhost:30931"]
        );
    }

    #[test]
    fn bad_peer_lists_are_refused_with_the_reason() {
        assert!(parse_peers("").unwrap_err().contains("no peer address"));
        assert!(parse_peers(" ; ,").unwrap_err().contains("no peer address"));
        assert!(parse_peers("a:1;a:1").unwrap_err().contains("twice"));
        let e = parse_peers("127.0.0.1").unwrap_err();
        assert!(e.starts_with("peer address"), "{e}");
        assert!(parse_peers("h:0").is_err());
    }

    #[test]
    fn defaults_validate_and_zero_bounds_do_not() {
        assert_eq!(ClientOptions::default().validate(), Ok(()));
        let o = ClientOptions {
            max_inflight_per_conn: 0,
            ..ClientOptions::default()
        };
        assert!(o.validate().unwrap_err().contains("max_inflight_per_conn"));
        let o = ClientOptions {
            backoff_initial_ms: 10_000,
            ..ClientOptions::default()
        };
        assert!(o.validate().unwrap_err().contains("backoff_initial_ms"));
    }
}

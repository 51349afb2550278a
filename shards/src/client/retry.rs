//! What to do after a failed attempt, and how long to wait before the next one.

use std::time::Duration;

use dledger::wire::ResponseCode;

use super::options::ClientOptions;

/// The client's reading of a node's error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The node is not the leader: go to the leader it names (or rediscover).
    Redirect,
    /// Refused before it took effect (the leader is busy or not ready): retry after a pause.
    RetrySafe,
    /// It may or may not take effect (the term changed or the quorum ack timed out while
    /// the entry was pending): a retry may duplicate an append.
    RetryOutcomeUnknown,
    /// Retrying cannot help (bad request, unknown group, disk full or broken, …).
    Fail,
}

pub fn verdict(code: ResponseCode) -> Verdict {
    use ResponseCode as C;
    match code {
        C::NotLeader | C::LeaderTransferring => Verdict::Redirect,
        C::LeaderNotReady
        | C::LeaderPendingFull
        | C::Overloaded
        | C::TermNotReady
        | C::TakeLeadershipFailed
        | C::NetworkError => Verdict::RetrySafe,
        C::TermChanged | C::WaitQuorumAckTimeout | C::Timeout => Verdict::RetryOutcomeUnknown,
        _ => Verdict::Fail,
    }
}

/// Exponential back-off with jitter: waits in `[d/2, d]`, `d` doubling from
/// `backoff_initial_ms` to `backoff_max_ms`. The jitter spreads the retries of many
/// concurrent callers that failed together (one leader change fails them all at once).
#[derive(Debug)]
pub struct Backoff {
    next_ms: u64,
    max_ms: u64,
    seed: u64,
}

impl Backoff {
    pub fn new(opts: &ClientOptions, seed: u64) -> Backoff {
        Backoff {
            next_ms: opts.backoff_initial_ms.max(1),
            max_ms: opts.backoff_max_ms.max(1),
            seed,
        }
    }

    /// The next pause (never above `backoff_max_ms`).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next_ms;
        self.next_ms = (self.next_ms.saturating_mul(2)).min(self.max_ms);
        let half = d / 2;
        let jitter = splitmix64(&mut self.seed) % (d - half + 1);
        let ms = half + jitter;
        debug_assert!(ms <= self.max_ms);
        Duration::from_millis(ms)
    }
}

/// A tiny well-mixed generator; jitter needs nothing stronger.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let opts = ClientOptions {
            backoff_initial_ms: 8,
            backoff_max_ms: 100,
            ..ClientOptions::default()
        };
        let mut b = Backoff::new(&opts, 7);
        let mut bound = 8u64;
        for _ in 0..20 {
            let d = b.next_delay().as_millis() as u64;
            assert!(
                d >= bound / 2 && d <= bound,
                "{d} not in [{}, {bound}]",
                bound / 2
            );
            bound = (bound * 2).min(100);
        }
    }

    #[test]
    fn codes_are_read_as_documented() {
        assert_eq!(verdict(ResponseCode::NotLeader), Verdict::Redirect);
        assert_eq!(verdict(ResponseCode::LeaderNotReady), Verdict::RetrySafe);
        assert_eq!(
            verdict(ResponseCode::TermChanged),
            Verdict::RetryOutcomeUnknown
        );
        assert_eq!(verdict(ResponseCode::UnknownGroup), Verdict::Fail);
        assert_eq!(verdict(ResponseCode::DiskFull), Verdict::Fail);
    }
}

//! Bounded exponential reconnect backoff with jitter.
//!
//! Delay `n` (from 0) is drawn uniformly from `[d/2, d]` with `d = min(min_ms * 2^n,
//! max_ms)`: doubling gives a restarting peer room, the cap bounds the time to notice
//! it is back, and the jitter keeps the shards of a node (and all nodes) from
//! reconnecting in lock-step after a peer restarts.

use std::time::Duration;

#[derive(Debug)]
pub struct Backoff {
    min_ms: u64,
    max_ms: u64,
    failures: u32,
    rng_state: u64,
}

impl Backoff {
    /// `seed` only decorrelates writers; it needs no quality.
    pub fn new(min_ms: u64, max_ms: u64, seed: u64) -> Self {
        assert!(0 < min_ms && min_ms <= max_ms, "validated by PeerNetConfig");
        Self {
            min_ms,
            max_ms,
            failures: 0,
            rng_state: seed,
        }
    }

    /// Forget past failures (after a successful handshake).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The delay before the next attempt; advances the failure count.
    pub fn next_delay(&mut self) -> Duration {
        let shift = self.failures.min(32);
        let ceiling_ms = self.min_ms.saturating_mul(1u64 << shift).min(self.max_ms);
        self.failures = self.failures.saturating_add(1);
        let floor_ms = ceiling_ms / 2;
        let span = ceiling_ms - floor_ms + 1;
        let delay_ms = floor_ms + self.next_random() % span;
        debug_assert!(delay_ms <= self.max_ms);
        Duration::from_millis(delay_ms)
    }

    /// splitmix64: a tiny, well-mixed generator; jitter needs nothing stronger.
    fn next_random(&mut self) -> u64 {
        self.rng_state = self.rng_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_stays_within_the_cap() {
        let mut backoff = Backoff::new(10, 1000, 42);
        let mut ceiling = 10u64;
        for _ in 0..40 {
            let delay = backoff.next_delay().as_millis() as u64;
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay} vs {ceiling}"
            );
            ceiling = (ceiling * 2).min(1000);
        }
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::new(10, 1000, 7);
        for _ in 0..10 {
            backoff.next_delay();
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(10));
    }

    #[test]
    fn jitter_varies_between_seeds() {
        let delays: Vec<Duration> = (0..16)
            .map(|seed| {
                let mut backoff = Backoff::new(100, 1000, seed);
                backoff.next_delay();
                backoff.next_delay()
            })
            .collect();
        assert!(delays.iter().any(|d| *d != delays[0]), "{delays:?}");
    }
}

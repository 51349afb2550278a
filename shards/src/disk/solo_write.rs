//! How a write round that has its device to itself becomes durable
//! ([`super::SyncMethod::Adaptive`]): by one `O_DSYNC` write, or by a plain write and
//! then a flush.
//!
//! A lone group's round (a c=1 or c=16 client, one group busy on the shard) waits for
//! its write, returns to the executor, submits an `fdatasync`, which an io-wq worker
//! runs, and returns again. Written `O_DSYNC`, the same round is one request: on this
//! virtio disk without FUA the kernel flushes the device cache from the write's
//! completion. That saves a pass of the executor loop and a worker wake-up per round on
//! every replica (measured with the perf harness; docs/decisions.md "Solo rounds
//! written O_DSYNC"). With many groups busy the shared flush does better (one flush
//! for all of them, where each `O_DSYNC` write would flush on its own), so a round is
//! written `O_DSYNC` only when no other write of this kind and no other log's share of
//! a flush round is in flight or waiting on the shard's device, and the round started
//! last served at most one log.
//!
//! On the same VM the `O_DSYNC` completion has also been seen taking a 4 ms timer tick
//! for half an hour at a time, while write + `fdatasync` stayed near 200 µs. So the
//! choice is measured as it runs: [`SoloChoice`] keeps a smoothed latency of each way
//! and writes `O_DSYNC` only while that is not clearly slower; every
//! [`PROBE_EVERY`]th eligible round goes the other way to keep both figures fresh.
//! No I/O here: the log and the shared flush feed it.

/// One eligible round in this many goes the way not preferred (a fresh sample of it).
pub(crate) const PROBE_EVERY: u64 = 32;
/// `O_DSYNC` stays preferred while its smoothed latency is at most this many
/// quarters of write + flush (a margin against noise: both ways flush the device).
const DSYNC_SLOWER_QUARTERS_MAX: u64 = 6;
/// Weight of a new sample in the smoothed latencies, as a shift (1/8).
const EWMA_SHIFT: u32 = 3;

/// The way one solo round becomes durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Way {
    /// One write through the segment's `O_DSYNC` descriptor.
    DsyncWrite,
    /// A plain write; the log's syncer flushes it.
    WriteThenFlush,
}

/// Smoothed latencies of both ways and the choice they give.
#[derive(Debug, Default)]
pub(crate) struct SoloChoice {
    /// µs from submitting an `O_DSYNC` write to its completion; `None` until seen.
    dsync_us: Option<u64>,
    /// µs of a plain write plus the flush that covered it; `None` until seen.
    plain_us: Option<u64>,
    /// Eligible rounds decided so far.
    decided: u64,
}

impl SoloChoice {
    /// The way `O_DSYNC` stands now, before probing.
    fn preferred(&self) -> Way {
        match (self.dsync_us, self.plain_us) {
            (Some(dsync), Some(plain))
                if dsync.saturating_mul(4) > plain.saturating_mul(DSYNC_SLOWER_QUARTERS_MAX) =>
            {
                Way::WriteThenFlush
            }
            _ => Way::DsyncWrite,
        }
    }

    /// Decides the next eligible round.
    pub(crate) fn decide(&mut self) -> Way {
        self.decided += 1;
        let preferred = self.preferred();
        if self.decided % PROBE_EVERY != 0 {
            return preferred;
        }
        match preferred {
            Way::DsyncWrite => Way::WriteThenFlush,
            Way::WriteThenFlush => Way::DsyncWrite,
        }
    }

    /// One sample of `way`, in µs.
    pub(crate) fn record(&mut self, way: Way, us: u64) {
        let slot = match way {
            Way::DsyncWrite => &mut self.dsync_us,
            Way::WriteThenFlush => &mut self.plain_us,
        };
        *slot = Some(match *slot {
            None => us,
            Some(old) => old - (old >> EWMA_SHIFT) + (us >> EWMA_SHIFT),
        });
    }

    #[cfg(test)]
    pub(crate) fn smoothed(&self) -> (Option<u64>, Option<u64>) {
        (self.dsync_us, self.plain_us)
    }
}

/// The solo slot of one shard and device: at most one `O_DSYNC` solo write in flight,
/// taken only when nothing else is being made durable there and [`SoloChoice`] agrees.
#[derive(Debug, Default)]
pub(crate) struct SoloSlot {
    in_flight: bool,
    choice: SoloChoice,
}

impl SoloSlot {
    /// Takes the slot for one `O_DSYNC` write if it is free, `device_idle` (no shared
    /// flush round running or collecting joiners) and the choice picks that way.
    pub(crate) fn take(&mut self, device_idle: bool) -> bool {
        if self.in_flight || !device_idle || self.choice.decide() != Way::DsyncWrite {
            return false;
        }
        self.in_flight = true;
        true
    }

    /// Gives the slot back, with the write's latency when it completed.
    pub(crate) fn release(&mut self, completed_after_us: Option<u64>) {
        debug_assert!(self.in_flight, "released only once taken");
        self.in_flight = false;
        if let Some(us) = completed_after_us {
            self.choice.record(Way::DsyncWrite, us);
        }
    }

    /// A plain write and the flush that covered it took `us`.
    pub(crate) fn note_write_then_flush(&mut self, us: u64) {
        self.choice.record(Way::WriteThenFlush, us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_solo_write_at_a_time_and_only_on_an_idle_device() {
        let mut s = SoloSlot::default();
        assert!(!s.take(false), "a shared round runs or collects joiners");
        assert!(s.take(true));
        assert!(!s.take(true), "the slot is taken");
        s.release(Some(200));
        assert!(s.take(true), "released on completion");
        s.release(None);
        assert!(
            s.take(true),
            "released when the write failed or was dropped"
        );
    }

    fn feed(c: &mut SoloChoice, dsync_us: u64, plain_us: u64, rounds: u64) -> [u64; 2] {
        let mut ways = [0u64; 2];
        for _ in 0..rounds {
            let way = c.decide();
            ways[usize::from(way == Way::WriteThenFlush)] += 1;
            c.record(
                way,
                match way {
                    Way::DsyncWrite => dsync_us,
                    Way::WriteThenFlush => plain_us,
                },
            );
        }
        ways
    }

    #[test]
    fn dsync_is_tried_first_and_kept_while_not_slower() {
        let mut c = SoloChoice::default();
        assert_eq!(c.decide(), Way::DsyncWrite);
        let [dsync, plain] = feed(&mut c, 250, 300, 320);
        assert_eq!(plain, 320 / PROBE_EVERY, "only the probes go the other way");
        assert_eq!(dsync + plain, 320);
        assert_eq!(c.preferred(), Way::DsyncWrite);
    }

    #[test]
    fn a_slow_dsync_completion_hands_the_rounds_to_write_then_flush_and_back() {
        let mut c = SoloChoice::default();
        feed(&mut c, 250, 300, 200);
        // The 4 ms timer-tick regime: the probes of O_DSYNC keep seeing it.
        feed(&mut c, 4_000, 300, 100);
        assert_eq!(c.preferred(), Way::WriteThenFlush);
        let [dsync, _] = feed(&mut c, 4_000, 300, 320);
        assert_eq!(dsync, 320 / PROBE_EVERY, "only the probes write O_DSYNC");
        // The regime ends: the probes pull the average back down.
        feed(&mut c, 250, 300, 32 * 40);
        assert_eq!(c.preferred(), Way::DsyncWrite);
    }

    #[test]
    fn within_the_margin_dsync_stays() {
        let mut c = SoloChoice::default();
        c.record(Way::DsyncWrite, 440);
        c.record(Way::WriteThenFlush, 300);
        assert_eq!(c.preferred(), Way::DsyncWrite, "440 ≤ 1.5 × 300");
        c.record(Way::DsyncWrite, 4_000);
        assert!(c.smoothed().0 > Some(450));
        assert_eq!(c.preferred(), Way::WriteThenFlush);
    }
}

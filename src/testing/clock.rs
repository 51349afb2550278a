//! Simulated time: one event queue ordered by (time, insertion order).
//!
//! Ties are broken by a sequence number, never by the event's contents, so a run is a
//! pure function of the seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Simulated milliseconds since the start of a run.
pub type SimMs = u64;

#[derive(Debug)]
struct Scheduled<E> {
    at_ms: SimMs,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        self.at_ms == other.at_ms && self.seq == other.seq
    }
}
impl<E> Eq for Scheduled<E> {}
impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Scheduled<E> {
    // Reversed: BinaryHeap is a max-heap and we pop the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_ms, other.seq).cmp(&(self.at_ms, self.seq))
    }
}

/// A discrete-event scheduler. Time only moves forward, to the time of the event popped.
#[derive(Debug)]
pub struct Scheduler<E> {
    now_ms: SimMs,
    next_seq: u64,
    queue: BinaryHeap<Scheduled<E>>,
}

impl<E> Default for Scheduler<E> {
    fn default() -> Self {
        Scheduler {
            now_ms: 0,
            next_seq: 0,
            queue: BinaryHeap::new(),
        }
    }
}

impl<E> Scheduler<E> {
    pub fn now_ms(&self) -> SimMs {
        self.now_ms
    }

    /// Run `event` `delay_ms` from now (0 = after everything already queued for now).
    pub fn after(&mut self, delay_ms: SimMs, event: E) {
        self.at(self.now_ms.saturating_add(delay_ms), event);
    }

    /// Run `event` at `at_ms`; a time in the past means "now".
    pub fn at(&mut self, at_ms: SimMs, event: E) {
        let at_ms = at_ms.max(self.now_ms);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Scheduled { at_ms, seq, event });
    }

    /// The next event, advancing the clock to its time.
    pub fn pop(&mut self) -> Option<E> {
        let next = self.queue.pop()?;
        debug_assert!(next.at_ms >= self.now_ms, "time went backwards");
        self.now_ms = next.at_ms;
        Some(next.event)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut s = Scheduler::default();
        s.after(5, "c");
        s.after(1, "a");
        s.after(5, "d");
        s.after(1, "b");
        let order: Vec<_> = std::iter::from_fn(|| s.pop()).collect();
        assert_eq!(order, ["a", "b", "c", "d"]);
        assert_eq!(s.now_ms(), 5);
    }

    #[test]
    fn past_times_run_now() {
        let mut s = Scheduler::default();
        s.after(10, 1);
        assert_eq!(s.pop(), Some(1));
        s.at(3, 2);
        assert_eq!(s.pop(), Some(2));
        assert_eq!(s.now_ms(), 10);
    }
}

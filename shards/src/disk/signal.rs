//! A single-threaded "something changed" signal: tasks wait until a condition they
//! check holds; whoever changes the state calls [`Signal::notify`].
//!
//! It is the glue between appenders, the flusher and waiters for durability inside one
//! glommio executor (no locks, no threads: `RefCell` and wakers only).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::poll_fn;
use std::task::{Poll, Waker};

#[derive(Debug, Default)]
pub(crate) struct Signal {
    waiters: RefCell<Vec<Waker>>,
}

impl Signal {
    /// Wakes every waiter; each re-checks its own condition.
    pub(crate) fn notify(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }

    /// Resolves with `Some(t)` as soon as `check` returns it, re-checking after every
    /// [`Signal::notify`].
    pub(crate) async fn wait_for<T>(&self, mut check: impl FnMut() -> Option<T>) -> T {
        poll_fn(|cx| match check() {
            Some(t) => Poll::Ready(t),
            None => {
                let mut waiters = self.waiters.borrow_mut();
                if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    waiters.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}

/// Waiters for a watermark (an index) to reach a value: only those whose index is
/// reached are woken, so a group-commit round that makes 256 records durable wakes
/// the 256 waiters once each instead of every waiter on every change.
#[derive(Debug, Default)]
pub(crate) struct IndexWaiters {
    /// Wakers by the index they wait for.
    waiters: RefCell<BTreeMap<u64, Vec<Waker>>>,
}

impl IndexWaiters {
    /// Wakes every waiter for an index `<= reached`.
    pub(crate) fn wake_up_to(&self, reached: u64) {
        let woken = {
            let mut waiters = self.waiters.borrow_mut();
            let later = match reached.checked_add(1) {
                Some(first_later) => waiters.split_off(&first_later),
                None => BTreeMap::new(),
            };
            std::mem::replace(&mut *waiters, later)
        };
        for w in woken.into_values().flatten() {
            w.wake();
        }
    }

    /// Wakes every waiter (failure or close: each re-checks and returns an error).
    pub(crate) fn wake_all(&self) {
        self.wake_up_to(u64::MAX);
    }

    /// Resolves with `Some(t)` as soon as `check` returns it; re-checks when
    /// [`IndexWaiters::wake_up_to`] reaches `index` or on [`IndexWaiters::wake_all`].
    pub(crate) async fn wait_for<T>(&self, index: u64, mut check: impl FnMut() -> Option<T>) -> T {
        poll_fn(|cx| match check() {
            Some(t) => Poll::Ready(t),
            None => {
                let mut waiters = self.waiters.borrow_mut();
                let at = waiters.entry(index).or_default();
                if !at.iter().any(|w| w.will_wake(cx.waker())) {
                    at.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}

//! A single-threaded "something changed" signal: tasks wait until a condition they
//! check holds; whoever changes the state calls [`Signal::notify`].
//!
//! It is the glue between appenders, the flusher and waiters for durability inside one
//! glommio executor (no locks, no threads: `RefCell` and wakers only).

use std::cell::RefCell;
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

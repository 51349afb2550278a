//! One lock for the tests that run real server processes.
//!
//! A 3-node cluster under load keeps both cores of a CI machine busy. When each test
//! file was its own binary, clusters of different files never overlapped (the binaries
//! ran one after another); in the single binary they would, next to whatever the other
//! test thread runs. So a test holds this lock while its servers exist: a
//! [`TestCluster`](super::cluster::TestCluster) takes it at its first start and keeps it
//! until it is dropped; tests that start servers another way take it themselves, first
//! thing (so it is released after their servers are gone).

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard, PoisonError};

static SERVERS: Mutex<()> = Mutex::new(());

thread_local! {
    /// Whether this thread (one test) holds the lock: taking it twice would wait forever.
    static HELD_HERE: Cell<bool> = const { Cell::new(false) };
}

/// The right to run servers; released on drop.
#[derive(Debug)]
pub struct Servers {
    _guard: MutexGuard<'static, ()>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        HELD_HERE.with(|h| h.set(false));
    }
}

/// Waits until no other test runs servers. A test that already holds the lock (two
/// started clusters alive at once) fails here instead of waiting for itself.
pub fn servers() -> Servers {
    assert!(
        !HELD_HERE.with(Cell::get),
        "this test already holds the servers lock: drop its other cluster first"
    );
    // A test that failed while holding it poisons it; the next one may still go.
    let guard = SERVERS.lock().unwrap_or_else(PoisonError::into_inner);
    HELD_HERE.with(|h| h.set(true));
    Servers { _guard: guard }
}

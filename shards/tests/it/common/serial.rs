//! One lock for the tests that run real server processes.
//!
//! A 3-node cluster under load keeps both cores of a CI machine busy. When each test
//! file was its own binary, clusters of different files never overlapped (the binaries
//! ran one after another); in the single binary they would, next to whatever the other
//! test thread runs. So every test that starts servers holds this lock while they exist
//! (take it first, so it is released after they are dropped).

use std::sync::{Mutex, MutexGuard, PoisonError};

static SERVERS: Mutex<()> = Mutex::new(());

/// Waits until no other test runs servers; holds the right to run them until dropped.
pub fn servers() -> MutexGuard<'static, ()> {
    // A test that failed while holding it poisons it; the next one may still go.
    SERVERS.lock().unwrap_or_else(PoisonError::into_inner)
}

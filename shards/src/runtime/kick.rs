//! Kicks shard threads out of a reactor sleep that no wake-up ends.
//!
//! Observed on this project's machines (glommio 0.9, Linux 6.18): with many groups
//! opening at once, a shard thread sometimes parks in `io_uring_enter(GETEVENTS)` on its
//! main ring and stays there although work is ready (a cross-shard message, a blocking-pool
//! completion or a timer), a lost wake-up in the ring linking or the foreign notifier.
//! The node then never finishes opening its groups. Any signal delivered to the thread
//! ends that wait with EINTR, which glommio treats as a normal wake-up: it re-examines
//! every ring, timer and channel and goes on (a debugger attaching did exactly that).
//!
//! So while a node runs, a kicker thread sends every registered shard thread a signal
//! with an empty handler every [`KICK_INTERVAL_MS`]: a lost wake-up then costs at most
//! that long instead of forever. A kick of a thread that is busy or properly asleep is a
//! no-op apart from one extra pass of its reactor (the handler is `SA_RESTART`, so
//! ordinary blocking system calls resume).
//!
//! Not every start-up stall is this one: a shard blocked in a plain `accept(2)` (its
//! `/proc/<pid>/task/<tid>/wchan` says `inet_csk_accept`, not `io_cqring_wait`) was a race
//! on the shared listening socket's flags, fixed in `net::listen::shard_listener`; a kick
//! does not end that wait (accept restarts under `SA_RESTART`).

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use nix::sys::pthread::{Pthread, pthread_kill, pthread_self};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// Longest a lost wake-up can stall a shard once the kicker runs.
pub const KICK_INTERVAL_MS: u64 = 1_000;
/// The kick: ignored by default, so a kick that arrives before the handler is installed
/// (or in a process that never installs it) changes nothing.
const KICK_SIGNAL: Signal = Signal::SIGURG;

/// Shard threads that run now (registered by the runtime, removed before they exit, so
/// the kicker never signals a thread that is gone).
fn threads() -> MutexGuard<'static, Vec<Pthread>> {
    static THREADS: OnceLock<Mutex<Vec<Pthread>>> = OnceLock::new();
    let lock = THREADS.get_or_init(|| Mutex::new(Vec::new()));
    // A poisoned list is still a valid list of thread handles.
    lock.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Registers the calling shard thread until the returned guard drops.
pub(crate) fn register_current() -> Registered {
    let me = pthread_self();
    threads().push(me);
    Registered(me)
}

/// Removes its thread from the kicked ones when dropped (also on unwinding).
#[derive(Debug)]
pub(crate) struct Registered(Pthread);

impl Drop for Registered {
    fn drop(&mut self) {
        threads().retain(|&t| t != self.0);
    }
}

extern "C" fn on_kick(_signal: nix::libc::c_int) {}

/// Installs the empty handler and starts the kicker thread (once per process).
pub fn start_kicker() -> Result<(), String> {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            let action = SigAction::new(
                SigHandler::Handler(on_kick),
                SaFlags::SA_RESTART,
                SigSet::empty(),
            );
            // SAFETY: the handler does nothing, which is async-signal-safe.
            unsafe { sigaction(KICK_SIGNAL, &action) }
                .map_err(|e| format!("cannot install the {KICK_SIGNAL} handler: {e}"))?;
            std::thread::Builder::new()
                .name("dledger-kicker".to_owned())
                .spawn(|| {
                    loop {
                        std::thread::sleep(Duration::from_millis(KICK_INTERVAL_MS));
                        kick_all();
                    }
                })
                .map(|_| ())
                .map_err(|e| format!("cannot start the kicker thread: {e}"))
        })
        .clone()
}

/// Runs `future` on `executor` on the calling thread with that thread kicked (the
/// kicker started if it is not yet): for executors made outside [`super::Runtime`]
/// (the client's `block_on`, the importer), which can lose a wake-up the same way.
pub fn run_kicked<T>(
    executor: &glommio::LocalExecutor,
    future: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    start_kicker()?;
    let _kickable = register_current();
    Ok(executor.run(future))
}

/// Signals every registered shard thread once.
pub fn kick_all() {
    // Held while signalling: a thread cannot deregister (and exit) in between.
    let list = threads();
    for &t in list.iter() {
        if let Err(e) = pthread_kill(t, KICK_SIGNAL) {
            tracing::debug!(error = %e, "kicking a shard thread failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_ends_with_its_guard() {
        let before = threads().len();
        let guard = register_current();
        assert_eq!(threads().len(), before + 1);
        start_kicker().expect("kicker starts");
        // A kick of a registered thread is harmless: the empty handler runs.
        kick_all();
        drop(guard);
        assert_eq!(threads().len(), before);
    }
}

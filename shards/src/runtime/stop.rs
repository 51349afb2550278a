//! Clean shutdown: one process-wide stop request that every shard observes.
//!
//! A stop is requested by [`StopHandle::stop`] (from any thread) or by SIGTERM/SIGINT
//! once [`install_signal_handlers`] ran. Shards sleep in io_uring, so they cannot be
//! woken by an atomic store; each shard runs one watcher task that looks at the flag
//! every [`STOP_POLL_MS`] and then closes the shard-local [`ShardStop`] semaphore, which
//! wakes every task waiting in [`ShardStop::wait`] at once.

use std::{
    cell::Cell,
    rc::Rc,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use glommio::sync::Semaphore;

/// How often a shard looks at the stop flag. Bounds the shutdown delay, costs one
/// timer wake-up per interval per shard.
pub const STOP_POLL_MS: u64 = 50;

/// Set by the signal handler. A static because a signal handler can reach nothing else;
/// an atomic store is async-signal-safe.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_signal: nix::libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

/// Route SIGTERM and SIGINT to a stop request of every [`StopHandle`] in the process.
pub fn install_signal_handlers() -> Result<(), nix::Error> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_stop_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only performs an atomic store, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

/// A cloneable, thread-safe request to stop every shard of one runtime.
#[derive(Clone, Debug, Default)]
pub struct StopHandle {
    requested: Arc<AtomicBool>,
}

impl StopHandle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask every shard to stop. Idempotent.
    pub fn stop(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }

    /// True once a stop was requested here or by a signal.
    pub fn is_stopping(&self) -> bool {
        self.requested.load(Ordering::SeqCst) || SIGNALLED.load(Ordering::SeqCst)
    }
}

/// The shard-local view of the stop request (cheap to clone, `!Send`).
#[derive(Clone, Debug)]
pub struct ShardStop {
    inner: Rc<ShardStopInner>,
}

#[derive(Debug)]
struct ShardStopInner {
    /// Zero permits; closed when the stop is observed, which fails every `acquire`.
    gate: Semaphore,
    stopped: Cell<bool>,
}

impl ShardStop {
    pub(crate) fn new() -> Self {
        Self {
            inner: Rc::new(ShardStopInner {
                gate: Semaphore::new(0),
                stopped: Cell::new(false),
            }),
        }
    }

    /// True once this shard observed the stop request.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.get()
    }

    /// Resolves when this shard observes the stop request.
    pub async fn wait(&self) {
        // With zero permits that are never signalled, acquire only returns when the
        // semaphore is closed (an error), which is exactly the stop.
        let _closed = self.inner.gate.acquire(1).await;
        debug_assert!(self.inner.stopped.get());
    }

    /// Runs on the shard until the stop is requested, then closes the gate.
    pub(crate) async fn watch(self, handle: StopHandle) {
        while !handle.is_stopping() {
            glommio::timer::sleep(Duration::from_millis(STOP_POLL_MS)).await;
        }
        self.inner.stopped.set(true);
        self.inner.gate.close();
    }
}

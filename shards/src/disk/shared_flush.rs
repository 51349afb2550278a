//! One device cache flush per round for every log of a shard on one device.
//!
//! Without it each group's syncer runs its own `fdatasync` per round: with 256 groups
//! writing, that is ~256 device flushes (each a host-side flush on a virtio disk
//! without FUA, and an io-wq worker) per round where one would do.
//!
//! # Why one flush covers them all (the durability argument)
//!
//! A log's writes between two of its syncs are direct (`O_DIRECT`) writes. When every
//! one of them overwrites blocks that are already allocated and initialised on disk
//! with that state durable (the zero-filled, synced prefix of a segment; see
//! `log::unsynced_are_overwrites`), a completed write has handed its data to the
//! device and left no metadata that `fdatasync` would have to commit (the mtime a
//! write bumps is not data-sync metadata). Such data is durable once *any* device cache
//! flush has been issued after the write completed. On ext4 an `fdatasync` of *any*
//! file issues one (`ext4_sync_file`: `blkdev_issue_flush` when barriers are on, or
//! the journal commit's pre-flush it waits for), which is what
//! [`super::flush_probe`] verifies per device before this is used.
//!
//! So a log whose unsynced writes are all such overwrites *joins* the next flush
//! round of its shard's [`SharedFlush`] for that device instead of syncing its files:
//! - a round started after a log joined covers it: the log joined after its writes
//!   completed, and the round's `fdatasync` is issued after the round started;
//! - a log that joins while a round is in flight waits for the next round (its writes
//!   may have completed after the running flush was issued);
//! - one round at a time: while one is in flight, the joiners collect for the next one
//!   (group commit across logs);
//! - the round's `fdatasync` runs on the file of its first joiner, so a round with one
//!   joiner is exactly that log's own `fdatasync` (a single busy group pays nothing);
//! - a failed round fails every joiner and every later one (sticky: the device's cache
//!   state is unknown, as for a failed `fdatasync` of the log's own file).
//!
//! No task of its own: the joiners drive the rounds (the first one to see none in
//! flight starts the next). A driver dropped mid-round (its log closed) puts its round
//! back, merged into the next one; repeating a flush is harmless.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::{Mutex, PoisonError};

use glommio::io::DmaFile;

use super::error::DiskError;
use super::fault::FaultInjector;
use super::flush_probe::{self, DeviceId};
use super::signal::Signal;
use super::solo_write::SoloSlot;

/// Counters of one [`SharedFlush`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SharedFlushStats {
    /// Rounds started: one `fdatasync` (one device flush) each.
    pub rounds: u64,
    /// Log sync rounds served (so joins per round = `joins / rounds`).
    pub joins: u64,
    /// Rounds that had a single joiner (its own file's `fdatasync`).
    pub single_joiner_rounds: u64,
    /// Rounds put back because their driver was dropped mid-flush.
    pub abandoned: u64,
    /// Rounds whose `fdatasync` failed (after the first, every join fails at once).
    pub failures: u64,
    /// Completed writes of a log alone on the device made `O_DSYNC` instead of joining
    /// ([`super::SyncMethod::Adaptive`]).
    pub solo_dsync_writes: u64,
}

/// The round bookkeeping of a [`SharedFlush`], without I/O: who joined which round,
/// which round may start, which joiners a finished round covers. `T` is what a round
/// syncs (a file).
#[derive(Debug)]
pub(crate) struct Rounds<T> {
    /// Every round numbered `<= finished` has completed its flush.
    finished: u64,
    /// The round in flight and how many joined it; it is always `open - 1`.
    running: Option<(u64, u64)>,
    /// The round joiners join now; it starts once none is in flight.
    open: u64,
    open_joined: u64,
    /// What the open round syncs: the first joiner's file (`Some` iff it has joiners).
    open_target: Option<T>,
    /// Joiners of the round started last: more than one means several logs of the
    /// shard are writing, and a solo write's flush would run beside theirs.
    last_started_joined: u64,
    /// The first failed flush: every joiner not yet covered gets it, and every later one.
    failure: Option<DiskError>,
    stats: SharedFlushStats,
}

impl<T> Default for Rounds<T> {
    fn default() -> Self {
        Rounds {
            finished: 0,
            running: None,
            open: 1,
            open_joined: 0,
            open_target: None,
            last_started_joined: 0,
            failure: None,
            stats: SharedFlushStats::default(),
        }
    }
}

impl<T> Rounds<T> {
    fn check_invariants(&self) {
        debug_assert!(self.finished < self.open, "the open round has not finished");
        debug_assert!(
            self.running
                .is_none_or(|(r, _)| r + 1 == self.open && self.finished < r),
            "the running round is the one before the open round and unfinished"
        );
        debug_assert_eq!(
            self.open_joined == 0,
            self.open_target.is_none(),
            "the open round has a file to sync iff it has joiners"
        );
    }

    /// Joins the open round with `target` (used if it is the first joiner); returns the
    /// ticket: the joiner is covered once that round has finished.
    pub(crate) fn join(&mut self, target: T) -> Result<u64, DiskError> {
        if let Some(e) = &self.failure {
            return Err(e.clone());
        }
        if self.open_target.is_none() {
            self.open_target = Some(target);
        }
        self.open_joined += 1;
        self.stats.joins += 1;
        self.check_invariants();
        Ok(self.open)
    }

    /// `Some` once the joiner holding `ticket` is covered (`Ok`) or never will be.
    pub(crate) fn outcome(&self, ticket: u64) -> Option<Result<(), DiskError>> {
        debug_assert!(ticket <= self.open, "tickets come from join");
        if self.finished >= ticket {
            return Some(Ok(()));
        }
        self.failure.clone().map(Err)
    }

    /// Starts the open round if none is in flight and it has joiners: returns its
    /// number and the file to `fdatasync`; the caller then reports [`Rounds::finish`]
    /// (or [`Rounds::abandon`]).
    pub(crate) fn start(&mut self) -> Option<(u64, T)> {
        if self.running.is_some() || self.failure.is_some() || self.open_joined == 0 {
            return None;
        }
        let target = self.open_target.take()?;
        let round = self.open;
        self.running = Some((round, self.open_joined));
        self.last_started_joined = self.open_joined;
        if self.open_joined == 1 {
            self.stats.single_joiner_rounds += 1;
        }
        self.open += 1;
        self.open_joined = 0;
        self.stats.rounds += 1;
        self.check_invariants();
        Some((round, target))
    }

    /// The flush of `round` (the running one) completed with `result`.
    pub(crate) fn finish(&mut self, round: u64, result: Result<(), DiskError>) {
        assert_eq!(
            self.running.map(|(r, _)| r),
            Some(round),
            "only the running round finishes"
        );
        self.running = None;
        match result {
            Ok(()) => {
                debug_assert!(self.finished < round, "rounds finish in order");
                self.finished = round;
            }
            Err(e) => {
                self.stats.failures += 1;
                if self.failure.is_none() {
                    self.failure = Some(e);
                }
            }
        }
        self.check_invariants();
    }

    /// The driver of `round` (the running one) went away before its flush completed:
    /// its joiners move into the open round (a flush started later covers them too).
    pub(crate) fn abandon(&mut self, round: u64, target: T) {
        let Some((r, joined)) = self.running.take() else {
            panic!("abandoning round {round}, but none is running");
        };
        assert_eq!(r, round, "only the running round is abandoned");
        self.stats.abandoned += 1;
        self.open_joined += joined;
        if self.open_target.is_none() {
            self.open_target = Some(target);
        }
        self.check_invariants();
    }

    pub(crate) fn stats(&self) -> SharedFlushStats {
        self.stats
    }

    /// Nothing but the caller's `own_joins` is being made durable through the rounds:
    /// no other joiner in the running round or the open one, the round started last
    /// had at most one joiner (one log busy, not several taking turns), and no failure
    /// to report (a solo write may then go `O_DSYNC`). A log refused here writes
    /// plainly and joins: a round of its own then opens the way again.
    pub(crate) fn idle_but(&self, own_joins: u64) -> bool {
        let running = self.running.map_or(0, |(_, joined)| joined);
        self.failure.is_none()
            && running + self.open_joined <= own_joins
            && self.last_started_joined <= 1
    }
}

/// The shared flush of one shard (glommio executor) for one device. Obtain it with
/// [`for_dir`]; a log uses it through its syncer.
#[derive(Debug)]
pub struct SharedFlush {
    device: DeviceId,
    rounds: RefCell<Rounds<Rc<DmaFile>>>,
    /// A round started or ended.
    changed: Signal,
    /// Test seam, asked before each round's `fdatasync` (no limit set in production).
    fault: FaultInjector,
    solo: RefCell<SoloSlot>,
}

/// What a joiner does next.
enum Step {
    Done(Result<(), DiskError>),
    Drive(u64, Rc<DmaFile>),
}

impl SharedFlush {
    fn new(device: DeviceId) -> Self {
        SharedFlush {
            device,
            rounds: RefCell::new(Rounds::default()),
            changed: Signal::default(),
            fault: FaultInjector::new(),
            solo: RefCell::new(SoloSlot::default()),
        }
    }

    /// May the caller, a log with `own_joins` (0 or 1) sync of its own joined to the
    /// rounds right now, write its next chunk `O_DSYNC`
    /// ([`super::SyncMethod::Adaptive`])? Yes when nothing of another log on this
    /// shard and device is being made durable (no other solo write, no other joiner in
    /// the running or the open round) and the measured choice picks that way. The
    /// answer holds the device's solo slot until dropped; report the write with
    /// [`SoloWrite::completed`].
    pub(crate) fn begin_solo_write(self: &Rc<Self>, own_joins: u64) -> Option<SoloWrite> {
        let idle = self.rounds.borrow().idle_but(own_joins);
        if !self.solo.borrow_mut().take(idle) {
            return None;
        }
        Some(SoloWrite {
            flush: self.clone(),
            completed_after_us: None,
        })
    }

    /// A plain write and the flush that covered it took `us` (a sample of the way an
    /// `O_DSYNC` solo write is weighed against).
    pub(crate) fn note_write_then_flush(&self, us: u64) {
        self.solo.borrow_mut().note_write_then_flush(us);
    }

    pub fn device(&self) -> DeviceId {
        self.device
    }

    pub fn stats(&self) -> SharedFlushStats {
        self.rounds.borrow().stats()
    }

    /// Test seam: make the shared `fdatasync` fail (see [`FaultInjector`]).
    pub fn fault_injector(&self) -> &FaultInjector {
        &self.fault
    }

    /// Whether `file` is on this flusher's device (a flush of another device covers
    /// nothing of it).
    pub(crate) fn serves(&self, file: &DmaFile) -> bool {
        file.dev_major() == self.device.major && file.dev_minor() == self.device.minor
    }

    /// Returns once a device flush issued after this call began has completed: every
    /// write completed before the call is then as durable as an `fdatasync` of its own
    /// file would have made it, *provided* those writes were overwrites of initialised
    /// blocks (the caller's condition). `file` is the caller's (it is synced when the
    /// caller is the first to join a round).
    pub(crate) async fn flush(&self, file: &Rc<DmaFile>) -> Result<(), DiskError> {
        debug_assert!(
            self.serves(file),
            "a log joins the flusher of its own device"
        );
        let ticket = self.rounds.borrow_mut().join(file.clone())?;
        loop {
            let step = self
                .changed
                .wait_for(|| {
                    let mut rounds = self.rounds.borrow_mut();
                    if let Some(out) = rounds.outcome(ticket) {
                        return Some(Step::Done(out));
                    }
                    rounds
                        .start()
                        .map(|(round, target)| Step::Drive(round, target))
                })
                .await;
            match step {
                Step::Done(out) => return out,
                Step::Drive(round, target) => self.drive(round, target).await,
            }
        }
    }

    /// Runs the flush of `round` on `target` and reports it.
    async fn drive(&self, round: u64, target: Rc<DmaFile>) {
        let mut abandon = AbandonOnDrop {
            flush: self,
            round,
            target: Some(target.clone()),
        };
        let result = match self.fault.before_sync() {
            Err(e) => Err(e.to_string()),
            Ok(()) => target.fdatasync().await.map_err(|e| e.to_string()),
        };
        abandon.target = None;
        let result = result.map_err(|e| {
            let path = target.path().map(|p| p.to_path_buf()).unwrap_or_default();
            DiskError::io(
                &format!("fdatasync (shared flush of device {})", self.device),
                &path,
                e,
            )
        });
        if let Err(e) = &result {
            tracing::error!(device = %self.device, error = %e, "shared device flush failed; every log joined to it fails");
        }
        self.rounds.borrow_mut().finish(round, result);
        self.changed.notify();
    }
}

/// The shard's solo slot for one `O_DSYNC` write; released when dropped.
#[derive(Debug)]
pub(crate) struct SoloWrite {
    flush: Rc<SharedFlush>,
    completed_after_us: Option<u64>,
}

impl SoloWrite {
    /// The write completed after `write_us`: counted, and a sample of the `O_DSYNC`
    /// way.
    pub(crate) fn completed(mut self, write_us: u64) {
        self.flush.rounds.borrow_mut().stats.solo_dsync_writes += 1;
        self.completed_after_us = Some(write_us);
    }
}

impl Drop for SoloWrite {
    fn drop(&mut self) {
        self.flush
            .solo
            .borrow_mut()
            .release(self.completed_after_us);
    }
}

/// Puts a round back when its driver is dropped before the flush completed.
struct AbandonOnDrop<'a> {
    flush: &'a SharedFlush,
    round: u64,
    /// `Some` while the flush is in flight.
    target: Option<Rc<DmaFile>>,
}

impl Drop for AbandonOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(target) = self.target.take() {
            self.flush.rounds.borrow_mut().abandon(self.round, target);
            self.flush.changed.notify();
        }
    }
}

/// Flushers by (executor id, device): `None` where the device failed the gate.
type Flushers = HashMap<(usize, DeviceId), Option<Rc<SharedFlush>>>;

thread_local! {
    static FLUSHERS: RefCell<Flushers> = RefCell::new(HashMap::new());
}

/// The gate's verdict per device, for the whole process (the probe runs once).
static VERDICTS: Mutex<Vec<(DeviceId, bool)>> = Mutex::new(Vec::new());

/// The shared flush of the current executor for the device holding `dir` (an existing
/// directory on the logs' filesystem), or `None` when that device did not pass
/// [`flush_probe::verify`] (said once per device in a log line). Must run inside a
/// glommio executor. The first call per device runs the probe (a few `fdatasync`s,
/// blocking the caller's thread).
pub fn for_dir(dir: &Path) -> Option<Rc<SharedFlush>> {
    let device = match DeviceId::of_path(dir) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "shared device flush off: per-file fdatasync");
            return None;
        }
    };
    let key = (glommio::executor().id(), device);
    if let Some(found) = FLUSHERS.with(|m| m.borrow().get(&key).cloned()) {
        return found;
    }
    let made = verified(device, dir).then(|| Rc::new(SharedFlush::new(device)));
    FLUSHERS.with(|m| m.borrow_mut().insert(key, made.clone()));
    made
}

fn verified(device: DeviceId, dir: &Path) -> bool {
    let mut verdicts = VERDICTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(&(_, ok)) = verdicts.iter().find(|(d, _)| *d == device) {
        return ok;
    }
    let ok = match flush_probe::verify(dir) {
        Ok(what) => {
            tracing::info!(%device, "shared device flush on: {what}");
            true
        }
        Err(reason) => {
            tracing::warn!(%device, dir = %dir.display(), "shared device flush off (per-file fdatasync): {reason}");
            false
        }
    };
    verdicts.push((device, ok));
    ok
}

#[cfg(test)]
#[path = "shared_flush_tests.rs"]
mod tests;

//! Background zero-filling of a new segment behind the appends that already use it.
//!
//! A segment is created at full length with only its head zero-filled
//! (`config::SEGMENT_HEAD_BYTES`; `files::create_segment`), so a new log's first record
//! waits for 128 KiB of zeros, not for the whole segment (1 GiB by default: at 256 MiB/s
//! per log and three replicas on one device that took seconds, during which a new
//! group's leader could not append its no-op and lost its quorum). This task then
//! zero-fills the rest of the segment chunk by chunk, ahead of the log's tail:
//! - a chunk is written only when it lies wholly at or past the log's end (`next_pos`)
//!   when it is issued: everything staged or written lies below that end, so zeros
//!   never replace a record;
//! - while a chunk is in flight it is published in `State::zeroing`; a data write that
//!   touches it waits for it ([`wait_for_overlapping_fill`]), so a later record always
//!   lands after the zeros, and a truncation waits for it too;
//! - it runs at most [`fill_lead`] past the log's end (up to `LogConfig::fill_lead_bytes`
//!   once the log holds that much) and then waits for the appends to move on; a segment
//!   creation the log asks for meanwhile goes first (the fill steps aside and resumes
//!   after it). Zero-filling a whole segment in one burst queued tens of MiB of writes
//!   ahead of every replica's appends and flushes on the one device (measurements in
//!   docs/decisions.md, "Segments: allocated whole, zero-filled behind the appends");
//! - when the log's end has passed the next chunk (appends outran the fill, or the log
//!   moved on to the next segment), the fill stops: the blocks it skipped are left to
//!   the appends, whose own `fdatasync` commits their allocation;
//! - every half lead (at least a chunk) and at the end the file is synced and only then
//!   `State::zeroed_bytes` grows: a block counts as initialised when that is durable,
//!   and the synced prefix stays about half a lead ahead of the appends.

use std::rc::Weak;

use super::super::config::{FILL_CHUNK_BYTES, FILL_LEAD_BYTES_MIN};
use super::super::files;
use super::{Inner, PrepareCtx};

/// Waits until no zero-fill write in flight overlaps `[start, end)` (log positions).
pub(super) async fn wait_for_overlapping_fill(inner: &Inner, start: u64, end: u64) {
    let overlaps = |st: &super::State| st.zeroing.is_some_and(|(a, b)| start < b && a < end);
    if !overlaps(&inner.st.borrow()) {
        return;
    }
    inner
        .prepared
        .wait_for(|| (!overlaps(&inner.st.borrow())).then_some(()))
        .await;
}

/// Zero-fills segment `seg` from log position `from` (block aligned; the end of its
/// head for a new segment) to its end, as the module describes. Returns where to
/// resume when it stepped aside for a segment creation. Errors stop the fill (the
/// segment stays usable: appends into unfilled blocks only cost more) and are logged.
pub(super) async fn fill_segment(
    ctx: &PrepareCtx,
    weak: &Weak<Inner>,
    seg: u64,
    from: u64,
) -> Option<u64> {
    let path = ctx.paths.segment(seg);
    match fill(ctx, weak, seg, from).await {
        Ok(Stopped::Done) | Ok(Stopped::Closing) => None,
        Ok(Stopped::Deferred { at }) => Some(at),
        Ok(Stopped::Overtaken { at }) => {
            tracing::debug!(segment = %path.display(), offset = at - seg, "appends passed the zero-fill; it stops there");
            None
        }
        Err(e) => {
            tracing::warn!(segment = %path.display(), error = %e, "zero-filling stopped");
            None
        }
    }
}

enum Stopped {
    Done,
    /// The log's end passed position `at` before the chunk there was written.
    Overtaken {
        at: u64,
    },
    Closing,
    /// A segment creation is due while the fill waits for the appends: resume at `at`
    /// after it.
    Deferred {
        at: u64,
    },
}

/// What the fill does next, once the log lets it.
enum Step {
    Write,
    Defer,
    Stop,
}

/// `None` while the fill must wait: a truncation runs (it rewrites blocks near the end
/// and must not meet a fill chunk), or the chunk `[at, at + n)` lies more than the
/// lead past the log's end and no segment creation is due.
fn next_step(inner: &Inner, at: u64, n: u64) -> Option<Step> {
    let mut st = inner.st.borrow_mut();
    if st.closing || inner.failed.borrow().is_some() {
        return Some(Step::Stop);
    }
    if st.truncating {
        return None;
    }
    if may_fill_to(&st, &inner.cfg, at + n) {
        return Some(Step::Write);
    }
    if st.creation_due() {
        return Some(Step::Defer);
    }
    if st.fill_parked != Some(at + n) {
        st.fill_parked = Some(at + n);
        drop(st);
        // `wait_preallocation` waits for this.
        inner.prepared.notify();
    }
    None
}

/// Whether the fill may write a chunk ending at log position `chunk_end` now.
pub(super) fn may_fill_to(
    st: &super::State,
    cfg: &super::super::LogConfig,
    chunk_end: u64,
) -> bool {
    chunk_end <= st.next_pos.saturating_add(fill_lead(st, cfg))
}

/// How far past the log's end the fill may run now: as far as the log already holds,
/// between two chunks and `fill_lead_bytes`. A new log that stays idle (one of a
/// thousand groups a node opens) zero-fills no more than its segment's head, where a
/// fixed lead would write 28 MiB of zeros for each; a log that appends gets the whole
/// lead once it holds that much, and until then a lead as large as what it wrote.
fn fill_lead(st: &super::State, cfg: &super::super::LogConfig) -> u64 {
    let held = st
        .positions
        .front()
        .map_or(0, |&first| st.next_pos.saturating_sub(first));
    held.clamp(
        FILL_LEAD_BYTES_MIN,
        cfg.fill_lead_bytes.max(FILL_LEAD_BYTES_MIN),
    )
}

/// What became of one chunk.
enum Chunk {
    Written,
    Again,
    Stop(Stopped),
}

async fn fill(
    ctx: &PrepareCtx,
    weak: &Weak<Inner>,
    seg: u64,
    from: u64,
) -> Result<Stopped, super::DiskError> {
    let path = ctx.paths.segment(seg);
    let seg_end = seg + ctx.seg_bytes;
    debug_assert!(
        seg <= from && from <= seg_end,
        "the fill stays in its segment"
    );
    let mut at = from;
    let mut synced = at;
    let started = std::time::Instant::now();
    while at < seg_end {
        let n = FILL_CHUNK_BYTES.min(seg_end - at);
        let Some(inner) = weak.upgrade() else {
            return Ok(Stopped::Closing);
        };
        let step = inner.progress.wait_for(|| next_step(&inner, at, n)).await;
        // Whatever the step, the fill no longer waits for the appends.
        inner.st.borrow_mut().fill_parked = None;
        match step {
            Step::Write => {}
            Step::Stop => return Ok(Stopped::Closing),
            Step::Defer => {
                // Whatever was filled is synced before it counts (and before the
                // creation, which may take a while).
                if at > synced {
                    sync_filled(&inner, seg, synced, at, &path).await?;
                }
                return Ok(Stopped::Deferred { at });
            }
        }
        let file = inner.file(seg).await?;
        let chunk = files::with_fill_permit(&path, async {
            // Checked with the permit held, right before the write is issued.
            {
                let mut st = inner.st.borrow_mut();
                if st.closing || inner.failed.borrow().is_some() {
                    return Ok(Chunk::Stop(Stopped::Closing));
                }
                if st.truncating {
                    // Began while this chunk waited for a permit: wait for it, then
                    // look at the (moved) end again.
                    return Ok(Chunk::Again);
                }
                if st.next_pos > at {
                    st.stats.zero_fills_overtaken += 1;
                    return Ok(Chunk::Stop(Stopped::Overtaken { at }));
                }
                debug_assert!(st.zeroing.is_none(), "one fill chunk at a time per log");
                st.zeroing = Some((at, at + n));
            }
            let written = files::write_zeros(&file, &path, at - seg, n, inner.fault()).await;
            inner.st.borrow_mut().zeroing = None;
            inner.prepared.notify();
            inner.progress.notify();
            written.map(|()| Chunk::Written)
        })
        .await?;
        match chunk {
            Chunk::Written => {}
            Chunk::Again => continue,
            Chunk::Stop(stopped) => return Ok(stopped),
        }
        at += n;
        drop(file);
        // Half the current lead: the synced prefix stays ahead of the appends.
        let sync_every_bytes = (fill_lead(&inner.st.borrow(), &inner.cfg) / 2).max(n);
        if at - synced >= sync_every_bytes || at == seg_end {
            sync_filled(&inner, seg, synced, at, &path).await?;
            synced = at;
        }
        drop(inner);
        files::pace(started, at - from, ctx.zero_bytes_per_sec).await;
    }
    Ok(Stopped::Done)
}

/// Syncs segment `seg` after its fill wrote `[synced, at)` (log positions) and counts
/// those bytes as initialised when they continue the known prefix without a gap.
async fn sync_filled(
    inner: &Inner,
    seg: u64,
    synced: u64,
    at: u64,
    path: &std::path::Path,
) -> Result<(), super::DiskError> {
    debug_assert!(
        seg <= synced && synced <= at,
        "the synced range lies in the segment"
    );
    if let Some(f) = inner.fault() {
        f.before_sync()
            .map_err(|e| super::DiskError::io("fdatasync", path, e))?;
    }
    let file = inner.file(seg).await?;
    file.fdatasync()
        .await
        .map_err(|e| super::DiskError::io("fdatasync", path, e))?;
    let mut st = inner.st.borrow_mut();
    let zeroed = st.zeroed_bytes.get(&seg).copied().unwrap_or(0);
    if zeroed >= synced - seg && zeroed < at - seg {
        st.note_zeroed(seg, at - seg, &inner.geometry);
        st.stats.zero_filled_bytes += at - seg - zeroed;
    }
    Ok(())
}

/// Learns how much of segment `seg` (its file just made durable by the caller's
/// `fdatasync`) is initialised, records it in `State::zeroed_bytes`, and returns where a
/// fill of the rest would start (`None`: nothing left to fill). For segments this log
/// did not zero-fill itself: the one recovery continues in, a recycled one.
pub(super) fn learn_initialised(
    inner: &Inner,
    seg: u64,
    file: &glommio::io::DmaFile,
) -> Result<Option<u64>, super::DiskError> {
    let seg_bytes = inner.geometry.segment_bytes();
    let prefix = files::initialised_prefix(file, &inner.paths.segment(seg), seg_bytes)?;
    let prefix = inner.block.align_down(prefix);
    let mut st = inner.st.borrow_mut();
    st.note_zeroed(seg, prefix, &inner.geometry);
    // Never behind the log's end: those blocks belong to the appends.
    let end = inner.block.align_up(st.next_pos).unwrap_or(u64::MAX);
    let from = (seg + prefix).max(end);
    Ok((from < seg + seg_bytes).then_some(from))
}

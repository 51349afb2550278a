//! Background zero-filling of a new segment behind the appends that already use it.
//!
//! A segment is created at full length with only its head zero-filled
//! ([`SEGMENT_HEAD_BYTES`]; `files::create_segment`), so a new log's first record waits
//! for a few MiB of zeros, not for the whole segment (1 GiB by default: at 256 MiB/s per
//! log and three replicas on one device that took seconds, during which a new group's
//! leader could not append its no-op and lost its quorum). This task then zero-fills
//! the rest of the segment chunk by chunk, ahead of the log's tail:
//! - a chunk is written only when it lies wholly at or past the log's end (`next_pos`)
//!   when it is issued: everything staged or written lies below that end, so zeros
//!   never replace a record;
//! - while a chunk is in flight it is published in `State::zeroing`; a data write that
//!   touches it waits for it ([`wait_for_overlapping_fill`]), so a later record always
//!   lands after the zeros, and a truncation waits for it too;
//! - when the log's end has passed the next chunk (appends outran the fill, or the log
//!   moved on to the next segment), the fill stops: the blocks it skipped are left to
//!   the appends, whose own `fdatasync` commits their allocation;
//! - every [`SYNC_EVERY_BYTES`] and at the end the file is synced and only then
//!   `State::zeroed_bytes` grows: a block counts as initialised when that is durable.

use std::rc::Weak;

use super::super::files::{self, ZERO_CHUNK_BYTES};
use super::{Inner, PrepareCtx};

/// Bytes of a new segment zero-filled before appends may use it: far more than a new
/// group's first records, and at most a few milliseconds of device time.
pub(super) const SEGMENT_HEAD_BYTES: u64 = 4 << 20;
/// Zero-filled bytes between two syncs of the segment being filled.
const SYNC_EVERY_BYTES: u64 = 16 << 20;

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
/// head for a new segment) to its end, as the module describes. Errors stop the fill
/// (the segment stays usable: appends into unfilled blocks only cost more) and are
/// logged.
pub(super) async fn fill_segment(ctx: &PrepareCtx, weak: &Weak<Inner>, seg: u64, from: u64) {
    let path = ctx.paths.segment(seg);
    match fill(ctx, weak, seg, from).await {
        Ok(Stopped::Done) => {}
        Ok(Stopped::Overtaken { at }) => {
            tracing::debug!(segment = %path.display(), offset = at - seg, "appends passed the zero-fill; it stops there");
        }
        Ok(Stopped::Closing) => {}
        Err(e) => {
            tracing::warn!(segment = %path.display(), error = %e, "zero-filling stopped");
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
        let n = ZERO_CHUNK_BYTES.min(seg_end - at);
        let Some(inner) = weak.upgrade() else {
            return Ok(Stopped::Closing);
        };
        // A truncation rewrites blocks near the end and must not meet a fill chunk.
        inner
            .progress
            .wait_for(|| {
                let st = inner.st.borrow();
                (!st.truncating || st.closing).then_some(())
            })
            .await;
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
        if at - synced >= SYNC_EVERY_BYTES || at == seg_end {
            if let Some(f) = inner.fault() {
                f.before_sync()
                    .map_err(|e| super::DiskError::io("fdatasync", &path, e))?;
            }
            file.fdatasync()
                .await
                .map_err(|e| super::DiskError::io("fdatasync", &path, e))?;
            let mut st = inner.st.borrow_mut();
            let zeroed = st.zeroed_bytes.get(&seg).copied().unwrap_or(0);
            // The known prefix grows only when this fill continues it without a gap.
            if zeroed >= synced - seg && zeroed < at - seg {
                st.note_zeroed(seg, at - seg, &inner.geometry);
                st.stats.zero_filled_bytes += at - seg - zeroed;
            }
            synced = at;
        }
        drop(file);
        drop(inner);
        files::pace(started, at - from, ctx.zero_bytes_per_sec).await;
    }
    Ok(Stopped::Done)
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

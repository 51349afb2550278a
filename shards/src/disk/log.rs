//! [`GroupLog`]: the direct-I/O commitlog of one Raft group on one glommio executor.
//!
//! Appends are encoded straight into a DMA buffer (the *stage*) and return at once
//! with their index and position. Two background tasks make them durable as a
//! pipeline: the *writer* cuts what is staged into one block-aligned chunk per round
//! and writes it (one write at a time, so a rewritten tail block never races its
//! older version), and the *syncer* runs one device flush at a time covering every
//! write completed before it started. The writer keeps writing while a flush is in
//! flight, so everything appended during one flush is already on the device when the
//! next flush starts (group commit). Progress is published as two watermarks:
//! `written_index` (write completed) and `durable_index` (covered by a completed
//! device flush); [`GroupLog::persisted_index`] is the one Raft may count, depending
//! on the flush mode.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use dledger::raft::{HardState, Recovered, TermRun};
use dledger::store::align::BlockSize;
use dledger::store::cursor::LogCursor;
use dledger::store::record::{
    HEADER_BYTES, RecordHeader, decode_header, encode_header, verify_record, verify_records,
};
use dledger::store::segment::{FILLER_BYTES, SegmentGeometry, encode_filler, parse_segment_name};
use dledger::store::state::{
    CHECKPOINT_FILE_BYTES, CHECKPOINT_SLOT_BYTES, Checkpoint, HARD_STATE_FILE_BYTES,
    HARD_STATE_SLOT_BYTES, PersistedHardState, decode_checkpoint_file, decode_hard_state_file,
    encode_checkpoint_slot, encode_hard_state_slot,
};
use glommio::io::DmaFile;
use glommio::{Task, spawn_local};

use super::cache::{Entry, TailCache};
use super::config::{FlushMode, LogConfig, SyncMethod};
use super::error::DiskError;
use super::files::{self, GroupPaths, PREALLOC_SUFFIX, RECYCLE_SUFFIX};
use super::index::DenseIndex;
use super::scan::{self, SegmentReader};
use super::shared_flush::{SharedFlush, SoloWrite};
use super::signal::{IndexWaiters, Signal};
use super::space::{self, RetentionRule};
use dledger::store::index::IndexEntry;

mod fill;

/// Bound on `State::fill_pending`: the segment in use, the one prepared after it, and
/// one more that a truncation or a recycled file may leave queued.
const FILLS_PENDING_MAX: usize = 4;

/// Where an append landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub first_index: u64,
    pub last_index: u64,
    /// Position of each record, in index order.
    pub positions: Vec<u64>,
}

/// Counters for benchmarks and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Device flushes (rounds that ended with every touched file synced).
    pub flushes: u64,
    /// Records made durable by those flushes (so records per flush = this / flushes).
    pub records_flushed: u64,
    /// Data write calls and the bytes they wrote (tail-block rewrites included).
    pub writes: u64,
    pub bytes_written: u64,
    /// Segments created (zero-filled) and reused from expired ones (renamed).
    pub segments_created: u64,
    pub segments_recycled: u64,
    /// Bytes zero-filled (and synced) behind the appends after a new segment's head,
    /// and fills that stopped because the log's end passed them (see `fill`).
    pub zero_filled_bytes: u64,
    pub zero_fills_overtaken: u64,
    /// Wall time spent waiting for data writes and for device flushes (µs).
    pub write_wait_us: u64,
    pub sync_wait_us: u64,
    /// Writes made durable by `O_DSYNC` alone ([`SyncMethod::Adaptive`]'s solo
    /// rounds; counted in `writes` and `flushes` too).
    pub solo_dsync_writes: u64,
}

/// What a retention pass removed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PurgeReport {
    pub segments_deleted: Vec<PathBuf>,
    pub first_index: u64,
    pub used_ratio: f64,
}

struct State {
    first_index: u64,
    next_index: u64,
    next_pos: u64,
    /// Header CRC of the last record (what the next one chains to; 0 when unknown).
    last_crc: u32,
    /// The log cursor after the last record handed to the device.
    written_cursor: LogCursor,
    /// Dense index entries not yet in the index files, from index `index_written_to`.
    index_pending: VecDeque<IndexEntry>,
    index_written_to: u64,
    positions: VecDeque<u64>,
    term_runs: Vec<TermRun>,
    stage: Option<super::stage::Stage>,
    ready: VecDeque<super::stage::Chunk>,
    pending_bytes: u64,
    cache: TailCache,
    /// Segments that exist at full length with their head zero-filled (or in use):
    /// every start below this.
    prepared_end: u64,
    prepare_target: u64,
    preparing: bool,
    prepare_error: Option<DiskError>,
    /// A background zero-fill write in flight over `[start, end)` (log positions): a
    /// data write touching those blocks waits until it completes, so zeros never land
    /// over records.
    zeroing: Option<(u64, u64)>,
    /// Segment start -> bytes from its start known zero-filled *and synced* by this
    /// log (see `fill`): a write ending within them overwrites initialised blocks.
    /// Segments not listed (recovered, recycled) count as not known.
    zeroed_bytes: BTreeMap<u64, u64>,
    /// Segments to zero-fill, each from a position on, oldest first: a new one (after
    /// its head), one this log did not create (recovered, recycled), or one whose fill
    /// stepped aside for a creation. At most the segment in use and the prepared ones
    /// ([`FILLS_PENDING_MAX`]).
    fill_pending: VecDeque<(u64, u64)>,
    /// The fill waits for the appends to move on before it writes the chunk ending at
    /// this log position (it is its lead ahead: `fill::fill_lead`).
    fill_parked: Option<u64>,
    /// A write since the last flush started reached past its segment's `zeroed_bytes`:
    /// that flush must also commit the file's block allocation (a per-file
    /// `fdatasync`, never only a device cache flush).
    unsynced_extend: bool,
    /// Expired segment files kept for reuse (at most `recycled_segments_max`).
    recycle_pool: Vec<PathBuf>,
    /// Segments and bytes written (write completed) but not yet covered by a flush.
    unsynced_segments: BTreeSet<u64>,
    unsynced_bytes: u64,
    /// µs the last plain data write took (with the flush after it, a sample for
    /// [`SyncMethod::Adaptive`]'s choice).
    last_plain_write_us: u64,
    /// The flush in flight is this log's join of the shard's shared flush (the solo
    /// slot does not count the log's own round as another log's).
    sync_joined: bool,
    /// An `O_DSYNC` solo write completed while the flush in flight still covered
    /// earlier plain writes (and none was left for a later one): its end becomes
    /// durable when that flush completes.
    durable_after_sync: Option<LogCursor>,
    /// ASYNC_FLUSH: the timer asks for a flush.
    sync_requested: bool,
    /// `close` asks for everything written to be flushed.
    draining: bool,
    /// A write / a device flush is in flight.
    writing: bool,
    syncing: bool,
    /// Bumped by every truncation: a flush that started before one must not publish
    /// its (now stale) durable point.
    epoch: u64,
    truncating: bool,
    /// A checkpoint (index write, then the checkpoint file) is being written. It and a
    /// truncation never overlap: a truncation may lower the checkpoint, and a checkpoint
    /// taken before a cut must not land after it.
    checkpointing: bool,
    closing: bool,
    hard_state: HardState,
    /// The slot of the hard state file holding `hard_state`; `None` while the file is
    /// missing or in its earlier one-state form (the next persist writes the two-slot
    /// form whole).
    hard_state_slot: Option<usize>,
    checkpoint: Checkpoint,
    /// The slot of the checkpoint file holding `checkpoint` and its generation; `None`
    /// while the file is missing or in its earlier one-checkpoint form.
    checkpoint_slot: Option<usize>,
    checkpoint_generation: u64,
    disk_checked_at: Option<Instant>,
    disk_used_ratio: f64,
    stats: LogStats,
}

impl State {
    /// Records that the first `bytes` of segment `seg` are zero-filled (or written)
    /// and synced. Bounded: only the segment in use, the one before it (a truncation
    /// may reach back into it) and the prepared ones are kept.
    fn note_zeroed(&mut self, seg: u64, bytes: u64, geometry: &SegmentGeometry) {
        self.zeroed_bytes.insert(seg, bytes);
        let keep_from = geometry
            .segment_start(self.next_pos)
            .saturating_sub(geometry.segment_bytes());
        self.zeroed_bytes.retain(|&s, _| s >= keep_from);
    }

    /// A segment creation is wanted and has not failed (the preparer runs it before
    /// any fill).
    fn creation_due(&self) -> bool {
        self.prepared_end < self.prepare_target && self.prepare_error.is_none()
    }

    /// The log's end as the next record sees it.
    fn cursor(&self) -> LogCursor {
        LogCursor {
            pos: self.next_pos,
            next_index: self.next_index,
            last_term: self.term_runs.last().map_or(0, |r| r.term),
            last_crc: self.last_crc,
        }
    }
}

struct Inner {
    cfg: LogConfig,
    paths: GroupPaths,
    geometry: SegmentGeometry,
    block: BlockSize,
    index: DenseIndex,
    st: RefCell<State>,
    files: RefCell<BTreeMap<u64, Rc<DmaFile>>>,
    /// The same segments opened `O_DSYNC`, for solo writes ([`SyncMethod::Adaptive`]);
    /// opened at a segment's first solo write.
    dsync_files: RefCell<BTreeMap<u64, Rc<DmaFile>>>,
    written_index: Cell<u64>,
    durable_index: Cell<u64>,
    /// The log cursor at `durable_index` (what a checkpoint records).
    durable_cursor: Cell<LogCursor>,
    failed: RefCell<Option<DiskError>>,
    /// Wakes the writer and the syncer.
    work: Signal,
    /// A write or flush round ended, or a failure happened (truncation waits on it).
    progress: Signal,
    /// Waiters for `written_index` / `durable_index` to reach an index.
    written_waiters: IndexWaiters,
    durable_waiters: IndexWaiters,
    /// Segment preparation finished or failed.
    prepared: Signal,
    /// One hard state write at a time: two in flight could both target the slot not
    /// holding the newest state and land in either order.
    hard_state_writer: glommio::sync::Semaphore,
    /// For background tasks that must not keep the log alive.
    weak_self: std::rc::Weak<Inner>,
    /// The shard's shared device flush, when configured and the device passed its gate.
    shared_flush: Option<Rc<SharedFlush>>,
}

/// One slot of the two-slot hard state file holding `hs`.
fn hard_state_slot(hs: HardState) -> Result<[u8; HARD_STATE_SLOT_BYTES], DiskError> {
    let mut slot = [0u8; HARD_STATE_SLOT_BYTES];
    encode_hard_state_slot(
        &PersistedHardState {
            term: hs.term,
            voted_for: hs.voted_for,
        },
        &mut slot,
    )
    .map_err(|e| DiskError::InvalidArgument {
        message: format!("hard state: {e}"),
    })?;
    Ok(slot)
}

/// A whole two-slot hard state file with `hs` in slot 0 and slot 1 never written.
fn hard_state_image(hs: HardState) -> Result<Vec<u8>, DiskError> {
    let mut whole = vec![0u8; HARD_STATE_FILE_BYTES];
    whole[..HARD_STATE_SLOT_BYTES].copy_from_slice(&hard_state_slot(hs)?);
    Ok(whole)
}

/// The commitlog of one Raft group. Single-threaded: use it on the glommio executor
/// that opened it. Cloning is cheap and shares the log.
#[derive(Clone)]
pub struct GroupLog {
    inner: Rc<Inner>,
    tasks: Rc<RefCell<Vec<Task<()>>>>,
}

impl std::fmt::Debug for GroupLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupLog")
            .field("dir", &self.inner.paths.dir)
            .field("last_index", &self.last_index())
            .field("durable_index", &self.durable_index())
            .finish()
    }
}

fn chunk_limit(cfg: &LogConfig) -> u64 {
    cfg.write_buffer_bytes as u64 + u64::from(cfg.max_record_bytes)
}

/// Bytes past the recovered end that a crash may have left written: one flush round
/// (bounded by `unsynced_bytes_max` plus one chunk), one straddling record and block.
fn crash_window_bytes(cfg: &LogConfig) -> u64 {
    cfg.unsynced_bytes_max + 2 * chunk_limit(cfg) + 2 * u64::from(cfg.max_record_bytes) + 8192
}

impl GroupLog {
    /// Opens (or creates) the log under [`LogConfig::group_dir`] and recovers it.
    ///
    /// Recovery reads `hardstate` and `checkpoint`, scans the segments checking every
    /// record, and ends the log at the first record that fails. A failure past the
    /// checkpoint's commit index is a torn or unsynced tail: it is zeroed (together
    /// with whatever a crash may have written after it) and the log continues there.
    /// A failure at or below it means acknowledged data is damaged: the open fails with
    /// [`DiskError::Corruption`] naming the file and offset.
    ///
    /// Must run inside a glommio executor.
    pub async fn open(cfg: LogConfig) -> Result<GroupLog, DiskError> {
        cfg.validate()?;
        let geometry =
            SegmentGeometry::new(cfg.segment_bytes).map_err(|e| DiskError::InvalidArgument {
                message: format!("segment_bytes: {e}"),
            })?;
        let paths = GroupPaths::new(cfg.group_dir());
        let mut created_dirs = false;
        for dir in [&paths.data_dir, &paths.index_dir] {
            if !dir.is_dir() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| DiskError::io("create directory", dir, e))?;
                created_dirs = true;
            }
        }
        let index_geometry = SegmentGeometry::new(cfg.index_segment_bytes).map_err(|e| {
            DiskError::InvalidArgument {
                message: format!("index_segment_bytes: {e}"),
            }
        })?;
        let index = DenseIndex::new(
            paths.index_dir.clone(),
            index_geometry,
            cfg.max_record_bytes,
        );
        // First, before any other direct-I/O open on this thread (see the probe).
        let device_block = files::device_block_bytes(&paths.dir).await?;
        if created_dirs {
            files::sync_dir(&paths.dir).await?;
        }

        let (hard_state, hard_state_slot) = match files::read_small(&paths.hard_state)? {
            // A new log gets its two-slot file now, while the group opens, so that its
            // first vote is already a plain slot overwrite (at a cold start of many
            // groups every node votes in every group at once).
            None => {
                let empty = HardState::default();
                files::write_atomically(&paths.hard_state, &hard_state_image(empty)?).await?;
                (empty, Some(0))
            }
            Some(b) => {
                let file = decode_hard_state_file(&b).map_err(|e| DiskError::Corruption {
                    file: paths.hard_state.clone(),
                    offset: 0,
                    reason: e.to_string(),
                })?;
                let hs = HardState {
                    term: file.state.term,
                    voted_for: file.state.voted_for,
                };
                (hs, file.slot)
            }
        };
        let (checkpoint, checkpoint_slot, checkpoint_generation) =
            match files::read_small(&paths.checkpoint)? {
                None => (Checkpoint::new_log(0), None, 0),
                Some(b) => {
                    let file = decode_checkpoint_file(&b).map_err(|e| DiskError::Corruption {
                        file: paths.checkpoint.clone(),
                        offset: 0,
                        reason: e.to_string(),
                    })?;
                    (file.checkpoint, file.slot, file.generation)
                }
            };

        let listed = list_segments(&paths)?;
        let starts = listed.starts.clone();
        for w in starts.windows(2) {
            if w[1] != w[0] + geometry.segment_bytes() {
                return Err(DiskError::Corruption {
                    file: paths.segment(w[1]),
                    offset: 0,
                    reason: format!(
                        "segment {} is missing before it",
                        paths.segment(w[0] + geometry.segment_bytes()).display()
                    ),
                });
            }
        }
        let scanned = scan::scan(
            &paths,
            &geometry,
            &starts,
            cfg.max_record_bytes,
            &checkpoint,
            &index,
        )
        .await?;
        let end_cursor = scanned.end;
        let last_index = end_cursor.next_index - 1;
        if let Some((file, offset, reason)) = &scanned.torn {
            tracing::warn!(
                file = %file.display(),
                offset,
                %reason,
                "truncating a torn tail"
            );
        }

        // Probe the device block size with the segment the log continues in.
        let end_pos = end_cursor.pos;
        let end_seg = geometry.segment_start(end_pos);
        let stats = LogStats::default();
        let o_dsync = cfg.sync_method == SyncMethod::ODsync;
        // The segment the log continues in, when it exists. A missing one (a new log, or
        // one that ended exactly at a segment's end) is created in the background:
        // appends wait for it and its zero-filled head (`admit`), the open does not, so
        // a node opening many new groups is not held up by writing their first zeros;
        // the rest of the segment is zero-filled behind the appends (`fill`).
        let end_file = if starts.contains(&end_seg) {
            Some(Rc::new(
                files::open_dma(&paths.segment(end_seg), false, o_dsync).await?,
            ))
        } else {
            None
        };
        let block_bytes = match (&end_file, device_block) {
            (Some(f), _) => f.alignment(),
            (None, Some(bytes)) => bytes,
            (None, None) => {
                return Err(DiskError::io(
                    "learn the device block size",
                    &paths.dir,
                    "no segment to open and the probe file could not be written",
                ));
            }
        };
        let block = BlockSize::new(block_bytes).map_err(|e| DiskError::InvalidArgument {
            message: format!("device block of {}: {e}", paths.data_dir.display()),
        })?;
        let mut file_map = BTreeMap::new();
        if let Some(f) = &end_file {
            file_map.insert(end_seg, f.clone());
        }

        // After a torn tail, zero whatever the crash may have left past the end (hygiene:
        // chained headers already keep stale records from being linked back), then read
        // the tail block.
        let window_end = if scanned.torn.is_some() {
            end_pos.saturating_add(crash_window_bytes(&cfg))
        } else {
            end_pos
        };
        let mut seg = end_seg;
        while seg < window_end && starts.contains(&seg) {
            let from = end_pos.max(seg);
            let to = window_end.min(seg + geometry.segment_bytes());
            let file = recovery_file(end_file.as_ref(), end_seg, seg, &paths, o_dsync).await?;
            zero_dirty(
                &file,
                &paths.segment(seg),
                seg,
                from,
                to,
                geometry.segment_bytes(),
            )
            .await?;
            seg += geometry.segment_bytes();
        }
        // The previous run may have written records it never flushed (it was killed or
        // crashed between a write and its `fdatasync`). They read back like durable ones
        // and the log counts every recovered record durable, so flush them before any
        // is acknowledged again. Only the last `crash_window_bytes` can be unflushed:
        // the writer stops at `unsynced_bytes_max`.
        // The segment the log continues in is synced in any case: what of it is
        // initialised is learnt below, and must be durable to count.
        {
            let from = if last_index > 0 {
                geometry.segment_start(end_pos.saturating_sub(crash_window_bytes(&cfg)))
            } else {
                end_seg
            };
            for &seg in starts.iter().filter(|&&s| s >= from && s <= end_seg) {
                let file = recovery_file(end_file.as_ref(), end_seg, seg, &paths, o_dsync).await?;
                file.fdatasync()
                    .await
                    .map_err(|e| DiskError::io("fdatasync", &paths.segment(seg), e))?;
            }
        }
        let tail_start = block.align_down(end_pos);
        let carried = match &end_file {
            Some(f) if tail_start < end_pos => {
                let r = f
                    .read_at_aligned(tail_start - end_seg, block.bytes() as usize)
                    .await
                    .map_err(|e| DiskError::io("read tail block", &paths.segment(end_seg), e))?;
                r[..(end_pos - tail_start) as usize].to_vec()
            }
            _ => {
                // No segment: the scan ended at its start, which is block aligned.
                debug_assert!(end_file.is_some() || tail_start == end_pos);
                Vec::new()
            }
        };
        // Every segment from `end_seg` on that exists is usable (allocated at full
        // length): they are contiguous (checked above), so the prepared ones end after
        // the last.
        let prepared_end = starts
            .last()
            .map_or(end_seg, |&s| s + geometry.segment_bytes())
            .max(end_seg);

        // Small until appends show their pace (see `next_stage_bytes`): a node opening
        // many groups does not hold a `write_buffer_bytes` buffer for each.
        let stage = super::stage::Stage::new(
            end_seg,
            tail_start,
            super::stage::next_stage_bytes(0, cfg.write_buffer_bytes),
            &carried,
            end_cursor,
        );
        let st = State {
            first_index: scanned.first_index,
            next_index: last_index + 1,
            next_pos: end_pos,
            last_crc: end_cursor.last_crc,
            written_cursor: end_cursor,
            index_pending: scanned.entries.into_iter().collect(),
            index_written_to: scanned.scanned_from,
            positions: scanned.positions,
            term_runs: scanned.term_runs,
            stage: Some(stage),
            ready: VecDeque::new(),
            pending_bytes: 0,
            cache: TailCache::new(cfg.tail_cache_bytes),
            prepared_end,
            prepare_target: prepared_end,
            preparing: false,
            prepare_error: None,
            zeroing: None,
            zeroed_bytes: BTreeMap::new(),
            fill_pending: VecDeque::new(),
            fill_parked: None,
            unsynced_extend: false,
            recycle_pool: listed.recycle_pool,
            unsynced_segments: BTreeSet::new(),
            unsynced_bytes: 0,
            last_plain_write_us: 0,
            sync_joined: false,
            durable_after_sync: None,
            sync_requested: false,
            draining: false,
            writing: false,
            syncing: false,
            epoch: 0,
            truncating: false,
            checkpointing: false,
            closing: false,
            hard_state,
            hard_state_slot,
            checkpoint,
            checkpoint_slot,
            checkpoint_generation,
            disk_checked_at: None,
            disk_used_ratio: 0.0,
            stats,
        };
        let shared_flush = if cfg.shared_flush && cfg.sync_method != SyncMethod::ODsync {
            super::shared_flush::for_dir(&paths.dir)
        } else {
            None
        };
        let inner = Rc::new_cyclic(|weak_self| Inner {
            weak_self: weak_self.clone(),
            shared_flush,
            cfg,
            paths,
            geometry,
            block,
            index,
            st: RefCell::new(st),
            files: RefCell::new(file_map),
            dsync_files: RefCell::new(BTreeMap::new()),
            written_index: Cell::new(last_index),
            durable_index: Cell::new(last_index),
            durable_cursor: Cell::new(end_cursor),
            failed: RefCell::new(None),
            work: Signal::default(),
            progress: Signal::default(),
            written_waiters: IndexWaiters::default(),
            durable_waiters: IndexWaiters::default(),
            prepared: Signal::default(),
            hard_state_writer: glommio::sync::Semaphore::new(1),
        });
        let log = GroupLog {
            inner: inner.clone(),
            tasks: Rc::new(RefCell::new(Vec::new())),
        };
        let queue = inner.cfg.task_queue;
        log.tasks
            .borrow_mut()
            .push(spawn_in(queue, run_writer(inner.clone()))?);
        log.tasks
            .borrow_mut()
            .push(spawn_in(queue, run_syncer(inner.clone()))?);
        if let FlushMode::AsyncFlush { flush_interval_ms } = inner.cfg.flush_mode {
            log.tasks.borrow_mut().push(spawn_in(
                queue,
                run_sync_timer(inner.clone(), Duration::from_millis(flush_interval_ms)),
            )?);
        }
        if let Some(f) = &end_file {
            if let Some(from) = fill::learn_initialised(&log.inner, end_seg, f)? {
                log.inner.queue_fill(end_seg, from);
                log.inner.spawn_preparer();
            }
        }
        if log.inner.st.borrow().prepared_end <= end_seg {
            // Only the segment the next append needs; the one after it is prepared once
            // this one is half written (`prepare_ahead`), so a node opening many new
            // groups writes one segment of zeros for each, not two.
            log.inner.st.borrow_mut().prepare_target = end_seg + log.inner.geometry.segment_bytes();
            log.inner.spawn_preparer();
        } else {
            log.inner.prepare_ahead();
        }
        Ok(log)
    }

    // ----- what the Raft core needs -----

    /// First index still in the log (1 until retention deletes segments).
    pub fn first_index(&self) -> u64 {
        self.inner.st.borrow().first_index
    }

    /// Last index appended (0 when empty); not necessarily durable.
    pub fn last_index(&self) -> u64 {
        self.inner.st.borrow().next_index - 1
    }

    /// Position where the next record goes.
    pub fn end_pos(&self) -> u64 {
        self.inner.st.borrow().next_pos
    }

    /// Last index handed to the device (not necessarily flushed).
    pub fn written_index(&self) -> u64 {
        self.inner.written_index.get()
    }

    /// Last index covered by a completed device flush.
    pub fn durable_index(&self) -> u64 {
        self.inner.durable_index.get()
    }

    /// The index Raft may report as persisted: `durable_index` under SYNC_FLUSH,
    /// `written_index` under ASYNC_FLUSH.
    pub fn persisted_index(&self) -> u64 {
        match self.inner.cfg.flush_mode {
            FlushMode::SyncFlush => self.durable_index(),
            FlushMode::AsyncFlush { .. } => self.written_index(),
        }
    }

    /// Term runs covering `first_index..=last_index`, ascending.
    pub fn term_runs(&self) -> Vec<TermRun> {
        self.inner.st.borrow().term_runs.clone()
    }

    /// Term of entry `index` (`None` outside the log).
    pub fn term_at(&self, index: u64) -> Option<u64> {
        let st = self.inner.st.borrow();
        if index < st.first_index || index >= st.next_index {
            return None;
        }
        let at = st.term_runs.partition_point(|r| r.first_index <= index);
        st.term_runs.get(at.checked_sub(1)?).map(|r| r.term)
    }

    pub fn hard_state(&self) -> HardState {
        self.inner.st.borrow().hard_state
    }

    pub fn checkpoint(&self) -> Checkpoint {
        self.inner.st.borrow().checkpoint
    }

    /// What a restarted Raft node needs from its storage.
    pub fn recovered(&self) -> Recovered {
        let st = self.inner.st.borrow();
        Recovered {
            hard_state: st.hard_state,
            last_index: st.next_index - 1,
            term_runs: st.term_runs.clone(),
            commit_index: st.checkpoint.commit_index,
        }
    }

    pub fn stats(&self) -> LogStats {
        self.inner.st.borrow().stats
    }

    /// The shared device flush this log joins (see [`SharedFlush`]), if any.
    pub fn shared_flush(&self) -> Option<Rc<SharedFlush>> {
        self.inner.shared_flush.clone()
    }

    /// The error that made the log fail, if it did.
    pub fn failure(&self) -> Option<DiskError> {
        self.inner.failed.borrow().clone()
    }

    pub fn config(&self) -> &LogConfig {
        &self.inner.cfg
    }

    // ----- durability -----

    /// Waits until `index` is durable (covered by a device flush).
    pub async fn wait_durable(&self, index: u64) -> Result<(), DiskError> {
        let inner = &self.inner;
        inner
            .durable_waiters
            .wait_for(index, || {
                if inner.durable_index.get() >= index {
                    Some(Ok(()))
                } else {
                    inner.stopped_error().map(Err)
                }
            })
            .await
    }

    /// Waits until `index` is persisted in the sense of [`Self::persisted_index`].
    pub async fn wait_persisted(&self, index: u64) -> Result<(), DiskError> {
        let inner = &self.inner;
        let waiters = match inner.cfg.flush_mode {
            FlushMode::SyncFlush => &inner.durable_waiters,
            FlushMode::AsyncFlush { .. } => &inner.written_waiters,
        };
        waiters
            .wait_for(index, || {
                if self.persisted_index() >= index {
                    Some(Ok(()))
                } else {
                    inner.stopped_error().map(Err)
                }
            })
            .await
    }

    /// Persists term and vote atomically: into the slot of the two-slot hard state file
    /// that does not hold the current state (one block write, one `fdatasync`), so a
    /// crash leaves the old or the new state. The first write of a log (or of a log
    /// still in the one-state form) creates the file whole (temp file, fdatasync,
    /// rename, fsync dir). A failure is fatal for the log.
    pub async fn persist_hard_state(&self, hs: HardState) -> Result<(), DiskError> {
        self.inner.check_usable()?;
        let _one_writer = self
            .inner
            .hard_state_writer
            .acquire_permit(1)
            .await
            .map_err(|e| DiskError::io("wait to write", &self.inner.paths.hard_state, e))?;
        let path = &self.inner.paths.hard_state;
        let current = self.inner.st.borrow().hard_state_slot;
        let (written, slot) = match current {
            Some(slot) => {
                let other = 1 - slot;
                let bytes = hard_state_slot(hs)?;
                (files::overwrite_slot(path, other, &bytes).await, other)
            }
            None => (
                files::write_atomically(path, &hard_state_image(hs)?).await,
                0,
            ),
        };
        match written {
            Ok(()) => {
                let mut st = self.inner.st.borrow_mut();
                debug_assert!(
                    (hs.term, hs.voted_for.is_some())
                        >= (st.hard_state.term, st.hard_state.voted_for.is_some()),
                    "hard state went back from {:?} to {hs:?}",
                    st.hard_state
                );
                st.hard_state = hs;
                st.hard_state_slot = Some(slot);
                Ok(())
            }
            Err(e) => Err(self.inner.fail_with(e)),
        }
    }

    /// Writes a checkpoint: the current durable point and `commit_index`. Recovery
    /// then starts scanning at the previous checkpoint's durable point and refuses to
    /// drop anything below this one's (it reports corruption instead). Call it
    /// periodically (DLedger's `checkPointInterval`); `commit_index` never goes back.
    ///
    /// May run while appends go on (the server writes checkpoints from their own task,
    /// off the append path); it waits for a running truncation or checkpoint to end,
    /// and a truncation waits for it.
    pub async fn persist_checkpoint(&self, commit_index: u64) -> Result<(), DiskError> {
        self.inner.check_usable()?;
        let inner = &self.inner;
        inner
            .progress
            .wait_for(|| {
                let mut st = inner.st.borrow_mut();
                (!st.truncating && !st.checkpointing).then(|| st.checkpointing = true)
            })
            .await;
        let result = self.persist_checkpoint_locked(commit_index).await;
        inner.st.borrow_mut().checkpointing = false;
        inner.progress.notify();
        result
    }

    async fn persist_checkpoint_locked(&self, commit_index: u64) -> Result<(), DiskError> {
        self.inner.check_usable()?;
        let cp = {
            let st = self.inner.st.borrow();
            let durable = self.inner.durable_cursor.get();
            if commit_index < st.checkpoint.commit_index {
                return Err(DiskError::Inconsistent {
                    message: format!(
                        "checkpoint commit index {commit_index} is below the persisted {}",
                        st.checkpoint.commit_index
                    ),
                });
            }
            if commit_index == st.checkpoint.commit_index && durable == st.checkpoint.durable {
                return Ok(());
            }
            st.checkpoint.advanced(durable, commit_index)
        };
        // The dense index must cover everything below the new scan-from point before
        // the checkpoint points past it: write (and sync) the durable entries.
        let entries: Vec<IndexEntry> = {
            let st = self.inner.st.borrow();
            st.index_pending
                .iter()
                .take_while(|e| e.index < cp.durable.next_index)
                .copied()
                .collect()
        };
        if !entries.is_empty() {
            if let Err(e) = self.inner.index.write_synced(&entries).await {
                return Err(self.inner.fail_with(e));
            }
            let mut st = self.inner.st.borrow_mut();
            let written_to = entries[entries.len() - 1].index + 1;
            while st
                .index_pending
                .front()
                .is_some_and(|e| e.index < written_to)
            {
                st.index_pending.pop_front();
            }
            st.index_written_to = written_to;
        }
        match self.inner.write_checkpoint(cp).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.inner.fail_with(e)),
        }
    }

    // ----- appends -----

    /// Appends one record per body, all of `term`, as the leader: encodes them into
    /// the stage (computing each body CRC once) and returns where they landed. They
    /// become durable later: see [`Self::wait_durable`]. Callers serialize appends
    /// (Raft assigns the indexes: check `first_index` against it).
    ///
    /// The tail cache keeps each body `Bytes` as given (a reference, not a copy): the
    /// copy into the stage is the only one this makes. Prefer this to [`Self::append`]
    /// when the bodies already are `Bytes` (a server's receive region).
    pub async fn append_bytes(&self, term: u64, bodies: &[Bytes]) -> Result<Appended, DiskError> {
        self.append_each(term, bodies, Bytes::clone).await
    }

    /// [`Self::append_bytes`] for borrowed bodies: each is copied once more, into a
    /// `Bytes` the tail cache keeps (tools and tests; the server uses `append_bytes`).
    pub async fn append(&self, term: u64, bodies: &[&[u8]]) -> Result<Appended, DiskError> {
        self.append_each(term, bodies, |b| Bytes::copy_from_slice(b))
            .await
    }

    async fn append_each<B: AsRef<[u8]>>(
        &self,
        term: u64,
        bodies: &[B],
        to_bytes: impl Fn(&B) -> Bytes,
    ) -> Result<Appended, DiskError> {
        let count = bodies.len();
        if count == 0 {
            return Err(DiskError::InvalidArgument {
                message: "empty append".into(),
            });
        }
        let sizes = bodies
            .iter()
            .map(|b| HEADER_BYTES as u64 + b.as_ref().len() as u64);
        self.inner.admit(sizes, term).await?;
        let mut st = self.inner.st.borrow_mut();
        let mut out = Appended {
            first_index: st.next_index,
            last_index: st.next_index + count as u64 - 1,
            positions: Vec::with_capacity(count),
        };
        for body in bodies {
            let body = to_bytes(body);
            let n = HEADER_BYTES + body.len();
            let index = st.next_index;
            let prev_crc = st.last_crc;
            let (pos, dst) = self.inner.reserve(&mut st, n as u64);
            // Chained to the previous record, so stale bytes past the end can never be
            // linked behind it by recovery.
            let header = RecordHeader::normal(index, term, pos, &body)
                .map_err(|e| DiskError::InvalidArgument {
                    message: format!("record {index}: {e}"),
                })?
                .chained_to(prev_crc);
            encode_header(&header, dst).map_err(|e| DiskError::InvalidArgument {
                message: format!("record {index}: {e}"),
            })?;
            dst[HEADER_BYTES..n].copy_from_slice(&body);
            self.inner.commit_record(&mut st, &header, n, body);
            out.positions.push(pos);
        }
        drop(st);
        self.inner.after_append();
        Ok(out)
    }

    /// Appends a new leader's empty entry (Raft §5.4.2 / §8).
    pub async fn append_noop(&self, term: u64) -> Result<Appended, DiskError> {
        self.inner
            .admit(std::iter::once(HEADER_BYTES as u64), term)
            .await?;
        let mut st = self.inner.st.borrow_mut();
        let index = st.next_index;
        let prev_crc = st.last_crc;
        let (pos, dst) = self.inner.reserve(&mut st, HEADER_BYTES as u64);
        let header = RecordHeader::noop(index, term, pos).chained_to(prev_crc);
        encode_header(&header, dst).map_err(|e| DiskError::InvalidArgument {
            message: format!("noop {index}: {e}"),
        })?;
        self.inner
            .commit_record(&mut st, &header, HEADER_BYTES, Bytes::new());
        drop(st);
        self.inner.after_append();
        Ok(Appended {
            first_index: index,
            last_index: index,
            positions: vec![pos],
        })
    }

    /// Appends records as encoded by the leader (back to back), after verifying each
    /// one's CRCs and that it continues this log at the position it names. The bytes
    /// are written as received: no re-encoding. The tail cache keeps slices of
    /// `records` (no copy): the copy into the stage is the only one this makes.
    pub async fn append_encoded_bytes(&self, records: &Bytes) -> Result<Appended, DiskError> {
        let max = self.inner.cfg.max_record_bytes;
        let mut headers = Vec::new();
        for r in verify_records(records, max) {
            let (h, _) = r.map_err(|e| DiskError::InvalidArgument {
                message: format!("pushed record {}: {e}", headers.len()),
            })?;
            headers.push(h);
        }
        let Some(first) = headers.first() else {
            return Err(DiskError::InvalidArgument {
                message: "empty push".into(),
            });
        };
        let sizes = headers.iter().map(|h| h.record_bytes());
        self.inner.admit(sizes, first.term).await?;
        let mut st = self.inner.st.borrow_mut();
        // Check the whole batch against the log before taking any of it: index, term,
        // position and chain, by the store's cursor rule.
        let mut cursor = st.cursor();
        for h in &headers {
            cursor
                .check_next(&self.inner.geometry, h)
                .map_err(|e| DiskError::Inconsistent {
                    message: format!(
                        "pushed record (index {}, term {}, pos {}) does not continue this \
                         log: {e}",
                        h.index, h.term, h.pos
                    ),
                })?;
            cursor.advance(h);
        }
        let mut out = Appended {
            first_index: first.index,
            last_index: first.index + headers.len() as u64 - 1,
            positions: Vec::with_capacity(headers.len()),
        };
        let mut at = 0usize;
        for h in &headers {
            let n = h.record_bytes() as usize;
            let (pos, dst) = self.inner.reserve(&mut st, n as u64);
            debug_assert_eq!(pos, h.pos);
            dst.copy_from_slice(&records[at..at + n]);
            let body = records.slice(at + HEADER_BYTES..at + n);
            at += n;
            self.inner.commit_record(&mut st, h, n, body);
            out.positions.push(pos);
        }
        drop(st);
        self.inner.after_append();
        Ok(out)
    }

    /// [`Self::append_encoded_bytes`] for borrowed records: copied once more, into a
    /// `Bytes` the tail cache slices (tools such as import; the server passes `Bytes`).
    pub async fn append_encoded(&self, records: &[u8]) -> Result<Appended, DiskError> {
        self.append_encoded_bytes(&Bytes::copy_from_slice(records))
            .await
    }

    // ----- reads -----

    /// Entry `index`, from the tail cache when hot, else read from disk and verified.
    pub async fn entry(&self, index: u64) -> Result<Entry, DiskError> {
        let (pos, seg_start) = {
            let st = self.inner.st.borrow();
            if index < st.first_index || index >= st.next_index {
                return Err(DiskError::IndexOutOfRange {
                    index,
                    first_index: st.first_index,
                    last_index: st.next_index - 1,
                });
            }
            if let Some(e) = st.cache.get(index) {
                return Ok(e.clone());
            }
            let pos = st.positions[(index - st.first_index) as usize];
            (pos, self.inner.geometry.segment_start(pos))
        };
        debug_assert!(
            index <= self.written_index(),
            "unwritten records stay cached"
        );
        let path = self.inner.paths.segment(seg_start);
        let file = self.inner.file(seg_start).await?;
        let seg_bytes = self.inner.geometry.segment_bytes();
        let mut reader = SegmentReader::for_point_read(&file, seg_bytes);
        let off = pos - seg_start;
        let corrupt = |reason: String| DiskError::Corruption {
            file: path.clone(),
            offset: off,
            reason,
        };
        let head = reader
            .get(off, HEADER_BYTES)
            .await
            .map_err(|e| DiskError::io("read", &path, e))?;
        let header = decode_header(head, self.inner.cfg.max_record_bytes)
            .map_err(|e| corrupt(format!("record {index}: {e}")))?;
        let bytes = reader
            .get(off, header.record_bytes() as usize)
            .await
            .map_err(|e| DiskError::io("read", &path, e))?;
        let h = verify_record(bytes, self.inner.cfg.max_record_bytes)
            .map_err(|e| corrupt(format!("record {index}: {e}")))?;
        if h.index != index || h.pos != pos {
            return Err(corrupt(format!(
                "expected record {index} at {pos}, found index {} pos {}",
                h.index, h.pos
            )));
        }
        let mut record_header = [0u8; HEADER_BYTES];
        record_header.copy_from_slice(&bytes[..HEADER_BYTES]);
        Ok(Entry {
            index,
            term: h.term,
            pos,
            header: record_header,
            body: Bytes::copy_from_slice(&bytes[HEADER_BYTES..]),
        })
    }

    // ----- truncation -----

    /// Removes every entry with index `>= from_index` (a Raft conflict), durably: the
    /// bytes of the removed records are zeroed and synced before this returns, so
    /// recovery can never bring them back. Refuses to cut at or below `commit_index`
    /// or the persisted checkpoint.
    pub async fn truncate_suffix(
        &self,
        from_index: u64,
        commit_index: u64,
    ) -> Result<(), DiskError> {
        let inner = &self.inner;
        inner.check_usable()?;
        {
            let mut st = inner.st.borrow_mut();
            let floor = commit_index.max(st.checkpoint.commit_index);
            if from_index <= floor || from_index < st.first_index || from_index > st.next_index {
                return Err(DiskError::Inconsistent {
                    message: format!(
                        "cannot truncate from {from_index}: log is [{}, {}], commit floor {floor}",
                        st.first_index,
                        st.next_index - 1
                    ),
                });
            }
            if from_index == st.next_index {
                return Ok(());
            }
            if st.truncating {
                return Err(DiskError::Inconsistent {
                    message: "a truncation is already running".into(),
                });
            }
            st.truncating = true;
        }
        // A checkpoint being written (it started before this cut) finishes first; new
        // ones wait for this truncation.
        inner
            .progress
            .wait_for(|| (!inner.st.borrow().checkpointing).then_some(()))
            .await;
        let result = self.truncate_locked(from_index).await;
        inner.st.borrow_mut().truncating = false;
        inner.progress.notify();
        inner.prepared.notify();
        result.map_err(|e| inner.fail_with(e))
    }

    async fn truncate_locked(&self, from_index: u64) -> Result<(), DiskError> {
        let inner = &self.inner;
        // Let the flusher write everything staged, so the disk holds the whole log.
        inner.work.notify();
        inner
            .progress
            .wait_for(|| {
                if let Some(e) = inner.failed.borrow().clone() {
                    return Some(Err(e));
                }
                let st = inner.st.borrow();
                let idle = st.ready.is_empty()
                    && !st.writing
                    && !st.syncing
                    && st.zeroing.is_none()
                    && !st.stage.as_ref().is_some_and(|s| s.has_new_bytes());
                idle.then_some(Ok(()))
            })
            .await?;
        // The new end: just past the last kept record (before any filler after it, so
        // the next record is placed exactly where the leader places it).
        let first_index = inner.st.borrow().first_index;
        let new_cursor = if from_index > first_index {
            let prev = self.entry(from_index - 1).await?;
            let h = decode_header(&prev.header, inner.cfg.max_record_bytes).map_err(|e| {
                DiskError::Corruption {
                    file: inner.paths.segment(inner.geometry.segment_start(prev.pos)),
                    offset: inner.geometry.offset_in_segment(prev.pos),
                    reason: format!("record {}: {e}", from_index - 1),
                }
            })?;
            LogCursor {
                pos: h.end_pos(),
                next_index: from_index,
                last_term: h.term,
                last_crc: h.header_crc(),
            }
        } else {
            let st = inner.st.borrow();
            LogCursor {
                pos: st.positions[0],
                next_index: from_index,
                last_term: 0,
                last_crc: 0,
            }
        };
        let new_end = new_cursor.pos;
        let (old_end, checkpoint) = {
            let st = inner.st.borrow();
            (st.next_pos, st.checkpoint)
        };
        let lowered = checkpoint.truncated_to(new_cursor);
        if lowered != checkpoint {
            // Lower the checkpoint first: Raft may drop durable entries that were never
            // committed, and recovery must not then report them lost.
            inner.write_checkpoint(lowered).await?;
        }
        let seg_bytes = inner.geometry.segment_bytes();
        let mut seg = inner.geometry.segment_start(new_end);
        let mut carried = Vec::new();
        while seg < old_end {
            let file = inner.file(seg).await?;
            let path = inner.paths.segment(seg);
            let from = new_end.max(seg);
            let to = old_end.min(seg + seg_bytes);
            let head = zero_range(&file, &path, seg, from, to, seg_bytes, inner.fault()).await?;
            if seg == inner.geometry.segment_start(new_end) {
                carried = head;
            }
            if let Some(f) = inner.fault() {
                f.before_sync()
                    .map_err(|e| DiskError::io("fdatasync", &path, e))?;
            }
            file.fdatasync()
                .await
                .map_err(|e| DiskError::io("fdatasync", &path, e))?;
            seg += seg_bytes;
        }
        let mut st = inner.st.borrow_mut();
        let keep = (from_index - st.first_index) as usize;
        st.positions.truncate(keep);
        while st
            .term_runs
            .last()
            .is_some_and(|r| r.first_index >= from_index)
        {
            st.term_runs.pop();
        }
        st.cache.truncate_from(from_index);
        while st
            .index_pending
            .back()
            .is_some_and(|e| e.index >= from_index)
        {
            st.index_pending.pop_back();
        }
        st.index_written_to = st.index_written_to.min(from_index);
        st.next_index = from_index;
        st.next_pos = new_end;
        st.last_crc = new_cursor.last_crc;
        let seg_start = inner.geometry.segment_start(new_end);
        st.stage = Some(super::stage::Stage::new(
            seg_start,
            inner.block.align_down(new_end),
            super::stage::next_stage_bytes(0, inner.cfg.write_buffer_bytes),
            &carried,
            new_cursor,
        ));
        st.epoch += 1;
        st.durable_after_sync = None;
        let last = from_index - 1;
        if inner.written_index.get() > last {
            inner.written_index.set(last);
            st.written_cursor = new_cursor;
        }
        if inner.durable_index.get() > last {
            inner.durable_index.set(last);
            inner.durable_cursor.set(new_cursor);
        }
        Ok(())
    }

    // ----- retention -----

    /// Deletes the oldest segments that DLedger's rule allows (age against
    /// `fileReservedHours`, disk usage against the two ratios), never the segment in
    /// use and never one holding an index `>= keep_from_index` (e.g. not yet applied).
    pub async fn purge(
        &self,
        now: SystemTime,
        keep_from_index: u64,
    ) -> Result<PurgeReport, DiskError> {
        let inner = &self.inner;
        let rule = RetentionRule {
            file_reserved: Duration::from_secs(inner.cfg.file_reserved_hours * 3600),
            ratio_check_expired: inner.cfg.disk_ratio_check_expired,
            ratio_force_clean: inner.cfg.disk_ratio_force_clean,
            delete_when_hour: inner.cfg.delete_when_hour,
        };
        let hour = space::local_hour(now);
        let seg_bytes = inner.geometry.segment_bytes();
        let mut report = PurgeReport::default();
        loop {
            let ratio = space::disk_used_ratio(&inner.paths.data_dir)?;
            report.used_ratio = ratio;
            let (oldest, next_first) = {
                let st = inner.st.borrow();
                report.first_index = st.first_index;
                let Some(&first_pos) = st.positions.front() else {
                    break;
                };
                let oldest = inner.geometry.segment_start(first_pos);
                let active = inner.geometry.segment_start(st.next_pos);
                if oldest + seg_bytes > active {
                    break;
                }
                let kept = st.positions.partition_point(|&p| p < oldest + seg_bytes);
                (oldest, st.first_index + kept as u64)
            };
            if next_first > keep_from_index {
                break;
            }
            let path = inner.paths.segment(oldest);
            let modified = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .map_err(|e| DiskError::io("stat", &path, e))?;
            let age = now.duration_since(modified).unwrap_or(Duration::ZERO);
            if !rule.should_delete(age, ratio, hour) {
                break;
            }
            if let Some(f) = inner.files.borrow_mut().remove(&oldest) {
                drop(f);
            }
            if let Some(f) = inner.dsync_files.borrow_mut().remove(&oldest) {
                drop(f);
            }
            let recycle = ratio < inner.cfg.disk_ratio_force_clean
                && inner.st.borrow().recycle_pool.len() < inner.cfg.recycled_segments_max;
            if recycle {
                let mut kept = path.as_os_str().to_owned();
                kept.push(RECYCLE_SUFFIX);
                let kept = PathBuf::from(kept);
                std::fs::rename(&path, &kept).map_err(|e| DiskError::io("rename", &path, e))?;
                inner.st.borrow_mut().recycle_pool.push(kept);
            } else {
                std::fs::remove_file(&path).map_err(|e| DiskError::io("delete", &path, e))?;
            }
            files::sync_dir(&inner.paths.data_dir).await?;
            let mut st = inner.st.borrow_mut();
            let drop_n = (next_first - st.first_index) as usize;
            st.positions.drain(..drop_n);
            st.first_index = next_first;
            let keep_from = st
                .term_runs
                .partition_point(|r| r.first_index <= next_first);
            if keep_from > 1 {
                st.term_runs.drain(..keep_from - 1);
            }
            if let Some(r) = st.term_runs.first_mut() {
                r.first_index = r.first_index.max(next_first);
            }
            report.first_index = next_first;
            report.segments_deleted.push(path);
            while st
                .index_pending
                .front()
                .is_some_and(|e| e.index < next_first)
            {
                st.index_pending.pop_front();
            }
            st.index_written_to = st.index_written_to.max(next_first);
        }
        if !report.segments_deleted.is_empty() {
            inner.index.purge_below(report.first_index)?;
        }
        Ok(report)
    }

    /// Waits until the segment the next append goes into is ready (created, its head
    /// zero-filled and durable), or its preparation failed, or the log closes or fails:
    /// the moment an append would stop waiting in admission. A new log's first segment
    /// is created in the background after the open; a group starts its Raft clock only
    /// after this, so that it never holds an election, or hears a leader's first
    /// append, while a write of its own would wait seconds for that segment behind a
    /// cold start's other creations (and its driver with it).
    pub async fn wait_writable(&self) {
        let inner = &self.inner;
        let seg = inner.geometry.segment_start(inner.st.borrow().next_pos);
        inner.wait_prepared(seg).await;
    }

    /// Waits until no segment is being prepared in the background and the zero-fill
    /// (if any) waits for the appends to move on (benchmarks use it to keep the
    /// zero-filling out of their measurements).
    pub async fn wait_preallocation(&self) {
        let inner = &self.inner;
        inner
            .prepared
            .wait_for(|| {
                let st = inner.st.borrow();
                // A parked fill whose window has opened is about to go on.
                let fill_waits = st.fill_parked.is_some_and(|end| {
                    !st.creation_due() && !fill::may_fill_to(&st, &inner.cfg, end)
                });
                (!st.preparing || fill_waits).then_some(())
            })
            .await;
    }

    // ----- shutdown -----

    /// Writes and flushes everything appended, then stops the background tasks.
    pub async fn close(self) -> Result<(), DiskError> {
        let last = self.last_index();
        self.inner.st.borrow_mut().draining = true;
        self.inner.work.notify();
        let flushed = if self.failure().is_none() {
            self.wait_durable(last).await
        } else {
            Ok(())
        };
        self.inner.st.borrow_mut().closing = true;
        self.inner.work.notify();
        self.inner.prepared.notify();
        // A zero-fill waiting for the appends waits on this one.
        self.inner.progress.notify();
        self.inner.written_waiters.wake_all();
        self.inner.durable_waiters.wake_all();
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        for t in tasks {
            t.await;
        }
        // Let a background segment preparation finish before the files go.
        let inner = &self.inner;
        inner
            .prepared
            .wait_for(|| (!inner.st.borrow().preparing).then_some(()))
            .await;
        let files = std::mem::take(&mut *inner.files.borrow_mut());
        let dsync_files = std::mem::take(&mut *inner.dsync_files.borrow_mut());
        for (seg, f) in dsync_files.into_iter().chain(files) {
            if let Ok(f) = Rc::try_unwrap(f) {
                f.close()
                    .await
                    .map_err(|e| DiskError::io("close", &inner.paths.segment(seg), e))?;
            }
        }
        match self.failure() {
            Some(e) => Err(e),
            None => flushed,
        }
    }
}

impl Inner {
    /// Writes `cp` into the slot of the checkpoint file that does not hold the current
    /// one, with the next generation (one block write, one `fdatasync`); the first write
    /// of a log (or of one in the earlier form) creates the two-slot file whole. Callers
    /// keep checkpoint writes from overlapping (`checkpointing` / `truncating`).
    async fn write_checkpoint(&self, cp: Checkpoint) -> Result<(), DiskError> {
        let (current, generation) = {
            let st = self.st.borrow();
            (st.checkpoint_slot, st.checkpoint_generation + 1)
        };
        let mut slot_bytes = [0u8; CHECKPOINT_SLOT_BYTES];
        encode_checkpoint_slot(&cp, generation, &mut slot_bytes).map_err(|e| {
            DiskError::InvalidArgument {
                message: format!("checkpoint: {e}"),
            }
        })?;
        let path = &self.paths.checkpoint;
        let slot = match current {
            Some(slot) => {
                files::overwrite_slot(path, 1 - slot, &slot_bytes).await?;
                1 - slot
            }
            None => {
                let mut whole = vec![0u8; CHECKPOINT_FILE_BYTES];
                whole[..CHECKPOINT_SLOT_BYTES].copy_from_slice(&slot_bytes);
                files::write_atomically(path, &whole).await?;
                0
            }
        };
        let mut st = self.st.borrow_mut();
        st.checkpoint = cp;
        st.checkpoint_slot = Some(slot);
        st.checkpoint_generation = generation;
        Ok(())
    }

    /// Records that every record before `cursor` is written and wakes its waiters.
    fn publish_written(&self, cursor: LogCursor) {
        let target = cursor.next_index - 1;
        if target > self.written_index.get() {
            self.written_index.set(target);
            self.written_waiters.wake_up_to(target);
        }
    }

    /// Records that every record before `cursor` is durable and wakes its waiters.
    fn publish_durable(&self, cursor: LogCursor) {
        let target = cursor.next_index - 1;
        debug_assert!(
            target <= self.written_index.get(),
            "only written records become durable"
        );
        if target > self.durable_index.get() {
            self.durable_index.set(target);
            self.durable_cursor.set(cursor);
            self.durable_waiters.wake_up_to(target);
        }
    }

    fn fault(&self) -> Option<&super::fault::FaultInjector> {
        self.cfg.fault.as_deref()
    }

    /// The error every waiter should get now, if the log cannot progress.
    fn stopped_error(&self) -> Option<DiskError> {
        if let Some(e) = self.failed.borrow().clone() {
            return Some(e);
        }
        self.st.borrow().closing.then_some(DiskError::Closed)
    }

    fn check_usable(&self) -> Result<(), DiskError> {
        match self.stopped_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Makes the log fail with `e` if it is an I/O error (fatal); returns the error
    /// callers should see.
    fn fail_with(&self, e: DiskError) -> DiskError {
        if !e.is_fatal() {
            return e;
        }
        let mut failed = self.failed.borrow_mut();
        if failed.is_none() {
            tracing::error!(dir = %self.paths.dir.display(), error = %e, "commitlog failed; refusing appends");
            *failed = Some(e.clone());
        }
        let first = failed.clone().unwrap_or(e);
        drop(failed);
        self.progress.notify();
        self.written_waiters.wake_all();
        self.durable_waiters.wake_all();
        self.work.notify();
        self.prepared.notify();
        first
    }

    /// The segment at `seg_start` opened `O_DSYNC` (for a solo write).
    async fn dsync_file(&self, seg_start: u64) -> Result<Rc<DmaFile>, DiskError> {
        if let Some(f) = self.dsync_files.borrow().get(&seg_start) {
            return Ok(f.clone());
        }
        let path = self.paths.segment(seg_start);
        let f = Rc::new(files::open_dma(&path, false, true).await?);
        Ok(self
            .dsync_files
            .borrow_mut()
            .entry(seg_start)
            .or_insert(f)
            .clone())
    }

    /// The shard's solo slot for the next write when it may go `O_DSYNC`
    /// ([`SyncMethod::Adaptive`]): SYNC_FLUSH, and the shared flush agrees (nothing
    /// of another log being made durable on the device, and the measured choice).
    fn solo_write_slot(&self) -> Option<SoloWrite> {
        if self.cfg.sync_method != SyncMethod::Adaptive
            || self.cfg.flush_mode != FlushMode::SyncFlush
        {
            return None;
        }
        let flusher = self.shared_flush.as_ref()?;
        let own_joins = u64::from(self.st.borrow().sync_joined);
        flusher.begin_solo_write(own_joins)
    }

    async fn file(&self, seg_start: u64) -> Result<Rc<DmaFile>, DiskError> {
        if let Some(f) = self.files.borrow().get(&seg_start) {
            return Ok(f.clone());
        }
        let path = self.paths.segment(seg_start);
        let f = Rc::new(
            files::open_dma(&path, false, self.cfg.sync_method == SyncMethod::ODsync).await?,
        );
        Ok(self
            .files
            .borrow_mut()
            .entry(seg_start)
            .or_insert(f)
            .clone())
    }

    /// Waits until a batch of records of `sizes` bytes can be taken as a whole: log
    /// usable, disk not full, pending bound respected, every segment it needs ready.
    async fn admit(
        &self,
        sizes: impl Iterator<Item = u64> + Clone,
        term: u64,
    ) -> Result<(), DiskError> {
        for n in sizes.clone() {
            if n > u64::from(self.cfg.max_record_bytes) {
                return Err(DiskError::InvalidArgument {
                    message: format!(
                        "record of {n} bytes exceeds max_record_bytes {}",
                        self.cfg.max_record_bytes
                    ),
                });
            }
        }
        loop {
            self.check_usable()?;
            self.check_disk_space()?;
            let need_seg = {
                let st = self.st.borrow();
                if st.truncating {
                    return Err(DiskError::Inconsistent {
                        message: "append during a truncation".into(),
                    });
                }
                if let Some(r) = st.term_runs.last() {
                    if term < r.term {
                        return Err(DiskError::Inconsistent {
                            message: format!("term {term} is below the log's last term {}", r.term),
                        });
                    }
                }
                let total: u64 = sizes.clone().sum();
                if st.pending_bytes + total > self.cfg.pending_bytes_max {
                    return Err(DiskError::PendingFull {
                        pending_bytes: st.pending_bytes + total,
                        pending_bytes_max: self.cfg.pending_bytes_max,
                    });
                }
                let mut pos = st.next_pos;
                let mut last_seg = self.geometry.segment_start(pos);
                for n in sizes.clone() {
                    let p = self.geometry.place_record(pos, n).map_err(|e| {
                        DiskError::InvalidArgument {
                            message: format!("record of {n} bytes: {e}"),
                        }
                    })?;
                    last_seg = self.geometry.segment_start(p.record_pos);
                    pos = p.record_pos + n;
                }
                if last_seg < st.prepared_end {
                    return Ok(());
                }
                last_seg
            };
            let err = {
                let mut st = self.st.borrow_mut();
                st.prepare_target = st
                    .prepare_target
                    .max(need_seg + self.geometry.segment_bytes());
                st.prepare_error.take()
            };
            if let Some(e) = err {
                // Report it once; the next append tries again (space may be freed).
                return Err(e);
            }
            self.spawn_preparer();
            self.wait_prepared(need_seg).await;
        }
    }

    /// Waits until the segment starting at `seg` is prepared, or the preparation
    /// failed, or the log closes or failed.
    async fn wait_prepared(&self, seg: u64) {
        self.prepared
            .wait_for(|| {
                let st = self.st.borrow();
                (seg < st.prepared_end
                    || st.prepare_error.is_some()
                    || st.closing
                    || self.failed.borrow().is_some())
                .then_some(())
            })
            .await;
    }

    /// Refuses appends above the hard disk-usage ratio (sampled every
    /// `disk_check_interval_ms`).
    fn check_disk_space(&self) -> Result<(), DiskError> {
        let mut st = self.st.borrow_mut();
        let due = st
            .disk_checked_at
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(self.cfg.disk_check_interval_ms));
        if due {
            st.disk_used_ratio = space::disk_used_ratio(&self.paths.data_dir)?;
            st.disk_checked_at = Some(Instant::now());
        }
        if st.disk_used_ratio > self.cfg.disk_ratio_refuse_writes {
            return Err(DiskError::DiskFull {
                message: format!(
                    "{} is {:.1}% used, above the {:.1}% limit for writes",
                    self.paths.data_dir.display(),
                    st.disk_used_ratio * 100.0,
                    self.cfg.disk_ratio_refuse_writes * 100.0
                ),
            });
        }
        Ok(())
    }

    /// Places a record of `n` bytes at the end of the log (writing a filler and moving
    /// to the next segment when it does not fit) and returns its position and the
    /// stage bytes to fill. `admit` checked the segment is ready.
    fn reserve<'s>(&self, st: &'s mut State, n: u64) -> (u64, &'s mut [u8]) {
        let place = self
            .geometry
            .place_record(st.next_pos, n)
            .expect("admit checked the placement");
        if let Some(filler) = place.filler {
            let stage = self.stage_with_room(st, FILLER_BYTES);
            debug_assert_eq!(stage.end_pos(), filler.pos);
            let dst = stage.spare_mut(FILLER_BYTES);
            encode_filler(filler.len, dst).expect("filler fits its 8 bytes");
            stage.commit(FILLER_BYTES, None);
            st.pending_bytes += FILLER_BYTES as u64;
        }
        let record_seg = self.geometry.segment_start(place.record_pos);
        if st.stage.as_ref().is_some_and(|s| s.seg_start != record_seg) {
            // The record opens the next segment (after a filler, a too-short rest, or a
            // record that ended exactly at the segment end): the current stage is
            // complete and nothing is carried over a segment boundary.
            if let Some(stage) = st.stage.take() {
                let cursor = stage.cursor;
                if stage.has_new_bytes() {
                    let (chunk, _) = stage.seal(self.block, None);
                    st.ready.push_back(chunk);
                }
                st.stage = Some(super::stage::Stage::new(
                    record_seg,
                    place.record_pos,
                    self.cfg.write_buffer_bytes,
                    &[],
                    cursor,
                ));
            }
        }
        st.next_pos = place.record_pos;
        let pos = place.record_pos;
        let stage = self.stage_with_room(st, n as usize);
        debug_assert_eq!(stage.end_pos(), pos);
        (pos, stage.spare_mut(n as usize))
    }

    /// The stage, sealed and continued first when it lacks `n` free bytes.
    fn stage_with_room<'s>(&self, st: &'s mut State, n: usize) -> &'s mut super::stage::Stage {
        let stage = st.stage.take().expect("the log always has a stage");
        let stage = if stage.free_bytes() >= n {
            stage
        } else {
            let cap = self
                .cfg
                .write_buffer_bytes
                .max(n + self.block.bytes() as usize);
            let (chunk, next) = stage.seal(self.block, Some(cap));
            st.ready.push_back(chunk);
            next.expect("continued stage requested")
        };
        st.stage.insert(stage)
    }

    /// Takes the record just encoded into the stage at `header.pos` (`n` bytes) into
    /// the log's state. The tail cache keeps a copy of its 48-byte header and `body`
    /// itself, which must be the bytes encoded after that header.
    fn commit_record(&self, st: &mut State, header: &RecordHeader, n: usize, body: Bytes) {
        let (index, term, pos) = (header.index, header.term, header.pos);
        let stage = st.stage.as_mut().expect("the log always has a stage");
        assert_eq!(
            HEADER_BYTES + body.len(),
            n,
            "record {index}: body and size differ"
        );
        let staged = stage.bytes(pos, n);
        debug_assert_eq!(
            &staged[HEADER_BYTES..],
            &body[..],
            "record {index}: the cached body must be the staged one"
        );
        let mut record_header = [0u8; HEADER_BYTES];
        record_header.copy_from_slice(&staged[..HEADER_BYTES]);
        stage.commit(n, Some(header));
        st.pending_bytes += n as u64;
        st.next_index = index + 1;
        st.next_pos = pos + n as u64;
        st.last_crc = header.header_crc();
        st.positions.push_back(pos);
        if let Some(e) = IndexEntry::from_header(header) {
            st.index_pending.push_back(e);
        }
        if st.term_runs.last().is_none_or(|r| r.term != term) {
            st.term_runs.push(TermRun {
                first_index: index,
                term,
            });
        }
        st.cache.push(Entry {
            index,
            term,
            pos,
            header: record_header,
            body,
        });
    }

    fn after_append(&self) {
        self.work.notify();
        self.prepare_ahead();
    }

    /// Starts preparing the segment after the one in use once that one is half written
    /// (or has room for fewer than two largest records left), if it is not ready yet.
    /// Not at its first record: a node opening a thousand new groups would zero-fill a
    /// second segment for each as soon as its leader's no-op lands, doubling the zeros
    /// written at a cold start for groups that may stay idle. Half a segment of lead
    /// is far more than a fill takes at the append rates one device sustains.
    fn prepare_ahead(self: &Inner) {
        let mut st = self.st.borrow_mut();
        let segment_bytes = self.geometry.segment_bytes();
        let start = self.geometry.segment_start(st.next_pos);
        let next = start + segment_bytes;
        let left = next - st.next_pos;
        let lead_bytes = (segment_bytes / 2).max(2 * u64::from(self.cfg.max_record_bytes));
        if left > lead_bytes {
            return;
        }
        if next >= st.prepared_end && st.prepare_error.is_none() {
            st.prepare_target = st.prepare_target.max(next + self.geometry.segment_bytes());
            drop(st);
            self.spawn_preparer();
        }
    }

    /// Queues a zero-fill of segment `seg` from log position `from` for the preparer.
    fn queue_fill(&self, seg: u64, from: u64) {
        let mut st = self.st.borrow_mut();
        debug_assert!(
            st.fill_pending.iter().all(|&(s, _)| s != seg),
            "one fill per segment"
        );
        if st.fill_pending.len() >= FILLS_PENDING_MAX {
            // Cannot happen (the log prepares one segment ahead); if it did, that
            // segment stays usable unfilled: its appends only cost more.
            debug_assert!(false, "fills pending: {:?}", st.fill_pending);
            tracing::warn!(
                segment = %self.paths.segment(seg).display(),
                pending = st.fill_pending.len(),
                "too many segments waiting for a zero-fill; this one is not filled"
            );
            return;
        }
        st.fill_pending.push_back((seg, from));
    }

    /// Starts the preparer, or tells a running one (maybe a zero-fill waiting for the
    /// appends, which then steps aside) that there may be more to do.
    fn spawn_preparer(&self) {
        let mut st = self.st.borrow_mut();
        if st.preparing || st.closing {
            drop(st);
            self.progress.notify();
            return;
        }
        st.preparing = true;
        drop(st);
        let ctx = PrepareCtx {
            paths: self.paths.clone(),
            seg_bytes: self.geometry.segment_bytes(),
            zero_bytes_per_sec: self.cfg.prealloc_bytes_per_sec,
            fault: self.cfg.fault.clone(),
        };
        spawn_local(prepare_segments(ctx, self.weak_self.clone())).detach();
    }
}

struct PrepareCtx {
    paths: GroupPaths,
    seg_bytes: u64,
    zero_bytes_per_sec: u64,
    fault: Option<Rc<super::fault::FaultInjector>>,
}

impl PrepareCtx {
    /// Bytes of a new segment zero-filled before appends may use it.
    fn head_bytes(&self) -> u64 {
        self.seg_bytes.min(super::config::SEGMENT_HEAD_BYTES)
    }
}

/// Background: creates zero-filled segments until `prepare_target` is covered, and
/// zero-fills the queued segments behind the appends. A creation goes first: the
/// appends may be waiting for it, while a fill only keeps ahead of them (one waiting
/// for the appends steps aside for a creation and is resumed after it).
async fn prepare_segments(ctx: PrepareCtx, weak: std::rc::Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let job = {
            let mut st = inner.st.borrow_mut();
            if st.closing || inner.failed.borrow().is_some() {
                PrepareJob::Idle
            } else if st.prepared_end < st.prepare_target {
                PrepareJob::Create(st.prepared_end)
            } else if let Some((seg, from)) = st.fill_pending.pop_front() {
                PrepareJob::Fill(seg, from)
            } else {
                PrepareJob::Idle
            }
        };
        let start = match job {
            PrepareJob::Create(start) => start,
            PrepareJob::Fill(seg, from) => {
                drop(inner);
                if let Some(at) = fill::fill_segment(&ctx, &weak, seg, from).await {
                    let Some(inner) = weak.upgrade() else { return };
                    inner.st.borrow_mut().fill_pending.push_front((seg, at));
                }
                continue;
            }
            PrepareJob::Idle => {
                let mut st = inner.st.borrow_mut();
                st.preparing = false;
                st.fill_parked = None;
                drop(st);
                inner.prepared.notify();
                return;
            }
        };
        let path = ctx.paths.segment(start);
        let reuse = if path.exists() {
            None
        } else {
            inner.st.borrow_mut().recycle_pool.pop()
        };
        drop(inner);
        if let Some(old) = reuse {
            // A whole segment that was written once: its blocks are allocated and
            // initialised, so appends into it are pure overwrites, as into a
            // zero-filled one. (One of another size, from an older configuration, is
            // not reused.)
            let result = match std::fs::metadata(&old) {
                Ok(m) if m.len() == ctx.seg_bytes => match std::fs::rename(&old, &path) {
                    Ok(()) => files::sync_dir(&ctx.paths.data_dir).await,
                    Err(e) => Err(DiskError::io("rename", &old, e)),
                },
                Ok(m) => Err(DiskError::InvalidArgument {
                    message: format!("{} bytes, segments are {}", m.len(), ctx.seg_bytes),
                }),
                Err(e) => Err(DiskError::io("stat", &old, e)),
            };
            let Some(inner) = weak.upgrade() else { return };
            match result {
                Ok(()) => {
                    {
                        let mut st = inner.st.borrow_mut();
                        st.prepared_end = start + ctx.seg_bytes;
                        st.stats.segments_recycled += 1;
                    }
                    inner.prepared.notify();
                    // Its blocks were written once, but maybe not all (a fill that the
                    // appends overtook): learn which, and fill the rest.
                    match recycled_fill_start(&inner, start).await {
                        Ok(Some(from)) => inner.queue_fill(start, from),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(segment = %path.display(), error = %e, "cannot learn a reused segment's block map");
                        }
                    }
                    continue;
                }
                Err(e) => {
                    // Not fatal: drop the file and zero-fill a new one instead.
                    tracing::warn!(segment = %old.display(), error = %e, "segment not reused");
                    if let Err(e) = std::fs::remove_file(&old) {
                        tracing::warn!(segment = %old.display(), error = %e, "cannot delete");
                    }
                }
            }
        }
        let result = if path.exists() {
            Ok(false)
        } else {
            files::create_segment(
                &path,
                ctx.seg_bytes,
                ctx.head_bytes(),
                ctx.fault.as_deref(),
                ctx.zero_bytes_per_sec,
            )
            .await
            .map(|()| true)
        };
        let Some(inner) = weak.upgrade() else { return };
        let created = match result {
            Ok(created) => {
                let mut st = inner.st.borrow_mut();
                st.prepared_end = start + ctx.seg_bytes;
                if created {
                    st.stats.segments_created += 1;
                    st.note_zeroed(start, ctx.head_bytes(), &inner.geometry);
                }
                created
            }
            Err(e) => {
                tracing::warn!(segment = %path.display(), error = %e, "segment preparation failed");
                {
                    let mut st = inner.st.borrow_mut();
                    st.prepare_error = Some(e);
                    st.preparing = false;
                }
                inner.prepared.notify();
                return;
            }
        };
        if created {
            // Appends may use the segment now; zero the rest of it behind them.
            inner.queue_fill(start, start + ctx.head_bytes());
        }
        inner.prepared.notify();
    }
}

/// The preparer's next job.
enum PrepareJob {
    /// Create (or reuse) the segment starting at this log position.
    Create(u64),
    /// Zero-fill segment `.0` from log position `.1`.
    Fill(u64, u64),
    Idle,
}

/// Recovery: segment `seg`'s file; the one already open when it is the end segment.
async fn recovery_file(
    end_file: Option<&Rc<DmaFile>>,
    end_seg: u64,
    seg: u64,
    paths: &GroupPaths,
    o_dsync: bool,
) -> Result<Rc<DmaFile>, DiskError> {
    match end_file {
        Some(f) if seg == end_seg => Ok(f.clone()),
        _ => Ok(Rc::new(
            files::open_dma(&paths.segment(seg), false, o_dsync).await?,
        )),
    }
}

/// Syncs reused segment `seg` and learns where a fill of it would start.
async fn recycled_fill_start(inner: &Inner, seg: u64) -> Result<Option<u64>, DiskError> {
    let file = inner.file(seg).await?;
    file.fdatasync()
        .await
        .map_err(|e| DiskError::io("fdatasync", &inner.paths.segment(seg), e))?;
    fill::learn_initialised(inner, seg, &file)
}

/// Spawns a log task into `queue`, or the current one.
fn spawn_in<F>(queue: Option<glommio::TaskQueueHandle>, task: F) -> Result<Task<()>, DiskError>
where
    F: std::future::Future<Output = ()> + 'static,
{
    match queue {
        None => Ok(spawn_local(task)),
        Some(q) => glommio::spawn_local_into(task, q).map_err(|e| DiskError::InvalidArgument {
            message: format!("task_queue: cannot spawn the log's tasks: {e}"),
        }),
    }
}

/// Whether anything appended is not yet handed to the writer's device writes.
fn has_staged(st: &State) -> bool {
    !st.ready.is_empty() || st.stage.as_ref().is_some_and(|s| s.has_new_bytes())
}

/// The writer: writes what is staged, one round (one write per chunk, normally one
/// chunk) at a time, while at most `unsynced_bytes_max` is written but not flushed.
async fn run_writer(inner: Rc<Inner>) {
    loop {
        let go = inner
            .work
            .wait_for(|| {
                if inner.failed.borrow().is_some() {
                    return Some(false);
                }
                let st = inner.st.borrow();
                let staged = has_staged(&st);
                if staged && st.unsynced_bytes < inner.cfg.unsynced_bytes_max {
                    return Some(true);
                }
                (st.closing && !staged).then_some(false)
            })
            .await;
        if !go {
            return;
        }
        let result = write_round(&inner).await;
        inner.st.borrow_mut().writing = false;
        // The syncer has new bytes to cover.
        if !round_done(&inner, result) {
            return;
        }
    }
}

/// The syncer: one device flush at a time, each covering every write completed
/// before it started (writes go on meanwhile and wait for the next one).
async fn run_syncer(inner: Rc<Inner>) {
    loop {
        let go = inner
            .work
            .wait_for(|| {
                if inner.failed.borrow().is_some() {
                    return Some(false);
                }
                let st = inner.st.borrow();
                if st.unsynced_segments.is_empty() {
                    return (st.closing && !st.writing && !has_staged(&st)).then_some(false);
                }
                let due = match inner.cfg.flush_mode {
                    FlushMode::SyncFlush => true,
                    FlushMode::AsyncFlush { .. } => {
                        st.sync_requested
                            || st.draining
                            || st.closing
                            || st.unsynced_bytes * 2 >= inner.cfg.unsynced_bytes_max
                    }
                };
                due.then_some(true)
            })
            .await;
        if !go {
            return;
        }
        let result = sync_round(&inner).await;
        inner.st.borrow_mut().syncing = false;
        // The writer may be waiting for unsynced bytes to drop.
        if !round_done(&inner, result) {
            return;
        }
    }
}

/// Ends a writer or syncer round: a failure stops the log (no retry of a failed write or
/// fsync); otherwise the other task and the waiters are told. Returns whether to go on.
fn round_done(inner: &Inner, result: Result<(), DiskError>) -> bool {
    if let Err(e) = result {
        inner.fail_with(e);
        return false;
    }
    inner.work.notify();
    inner.progress.notify();
    true
}

/// Takes the staged chunks (bounded by what `unsynced_bytes_max` leaves), writes them
/// one after another and publishes each as written (and, with O_DSYNC, durable).
async fn write_round(inner: &Rc<Inner>) -> Result<(), DiskError> {
    let chunks = {
        let mut st = inner.st.borrow_mut();
        debug_assert!(!st.writing, "one write round at a time");
        st.writing = true;
        let mut chunks = Vec::new();
        let mut bytes = 0u64;
        let budget = inner
            .cfg
            .unsynced_bytes_max
            .saturating_sub(st.unsynced_bytes)
            .max(1);
        while bytes < budget {
            let Some(c) = st.ready.pop_front() else { break };
            bytes += c.buf.len() as u64;
            chunks.push(c);
        }
        if st.ready.is_empty() && bytes < budget {
            if let Some(stage) = st.stage.take() {
                if stage.has_new_bytes() {
                    let next_bytes = super::stage::next_stage_bytes(
                        stage.used_bytes(),
                        inner.cfg.write_buffer_bytes,
                    );
                    let (chunk, next) = stage.seal(inner.block, Some(next_bytes));
                    chunks.push(chunk);
                    st.stage = next;
                } else {
                    st.stage = Some(stage);
                }
            }
        }
        chunks
    };
    for chunk in chunks {
        // A solo write is durable when it completes (what precedes it: see below).
        let mut solo = inner.solo_write_slot();
        let file = match (&solo, &inner.shared_flush) {
            (Some(_), Some(flusher)) => {
                let file = inner.dsync_file(chunk.seg_start).await?;
                if flusher.serves(&file) {
                    file
                } else {
                    solo = None;
                    inner.file(chunk.seg_start).await?
                }
            }
            _ => inner.file(chunk.seg_start).await?,
        };
        let durable_when_written = inner.cfg.sync_method == SyncMethod::ODsync || solo.is_some();
        // The segment's path names the file in an error only: formatting it per write
        // was a measurable share of the hot path (a format and two allocations).
        let failed = |e: &dyn std::fmt::Display| {
            DiskError::io("write", &inner.paths.segment(chunk.seg_start), e)
        };
        let len = chunk.buf.len();
        fill::wait_for_overlapping_fill(inner, chunk.pos, chunk.pos + len as u64).await;
        // Taken before the write: the zeroed prefix only grows, so this errs on the
        // side of a full `fdatasync`.
        let extends = {
            let st = inner.st.borrow();
            let zeroed = st.zeroed_bytes.get(&chunk.seg_start).copied().unwrap_or(0);
            chunk.pos + len as u64 > chunk.seg_start + zeroed
        };
        if let Some(f) = inner.fault() {
            f.before_write().map_err(|e| failed(&e))?;
        }
        let write_started = Instant::now();
        let written = file
            .write_at(chunk.buf, chunk.pos - chunk.seg_start)
            .await
            .map_err(|e| failed(&e))?;
        let write_us = write_started.elapsed().as_micros() as u64;
        if written != len {
            return Err(failed(&format_args!("short write {written}/{len}")));
        }
        let mut st = inner.st.borrow_mut();
        st.pending_bytes -= chunk.new_bytes;
        st.stats.writes += 1;
        st.stats.bytes_written += len as u64;
        st.stats.write_wait_us += write_us;
        if let Some(solo) = solo {
            st.stats.solo_dsync_writes += 1;
            solo.completed(write_us);
        }
        if !durable_when_written {
            // Even a chunk completing no record (a filler) must be flushed.
            st.unsynced_segments.insert(chunk.seg_start);
            st.unsynced_bytes += len as u64;
            st.unsynced_extend |= extends;
            st.last_plain_write_us = write_us;
        }
        if chunk.cursor.next_index <= st.written_cursor.next_index {
            continue;
        }
        st.written_cursor = chunk.cursor;
        if durable_when_written {
            // The write was durable when it completed; the records before it are durable
            // once every earlier plain write is. Writes are issued one at a time, so
            // those all completed before this one was issued: either they are covered
            // (nothing unsynced, no flush in flight), or a flush in flight covers the
            // last of them (nothing unsynced), or some wait for the next flush, whose
            // cursor (taken when it starts) will include this write.
            let earlier_durable = st.unsynced_segments.is_empty() && !st.syncing;
            if earlier_durable {
                st.stats.flushes += 1;
                st.stats.records_flushed += chunk.cursor.next_index - 1 - inner.durable_index.get();
            } else if st.unsynced_segments.is_empty() {
                st.durable_after_sync = Some(chunk.cursor);
            }
            drop(st);
            inner.publish_written(chunk.cursor);
            if earlier_durable {
                inner.publish_durable(chunk.cursor);
            }
        } else {
            drop(st);
            inner.publish_written(chunk.cursor);
        }
    }
    let written = inner.written_index.get();
    inner.st.borrow_mut().cache.evict(written);
    Ok(())
}

/// Whether every write not yet covered by a flush (`unsynced_segments`) overwrote
/// blocks that were allocated and initialised on disk, with that state durable, before
/// the write was issued: then no metadata is left for this log's own `fdatasync` to
/// commit, and any device cache flush issued after the writes completed makes them
/// durable (the condition of [`SharedFlush`]).
///
/// A segment is renamed into place, its directory synced, before `admit` lets an
/// append into it, but only its `zeroed_bytes` prefix is known initialised with that
/// durable (its zero-filled head and what `fill` has zero-filled and synced since, or
/// what its block map showed after a sync for a recovered or recycled one). Each
/// completed write that reached past that prefix when it was issued set
/// `unsynced_extend`, so the writes are all overwrites exactly when it is clear.
fn unsynced_are_overwrites(st: &State) -> bool {
    !st.unsynced_extend
        && st
            .unsynced_segments
            .last()
            .is_some_and(|&last| last < st.prepared_end)
}

/// Makes every write completed before this round started durable: by one `fdatasync`
/// per segment written since the previous round started, or by joining the shard's
/// shared device flush when those writes were all overwrites.
async fn sync_round(inner: &Rc<Inner>) -> Result<(), DiskError> {
    let (segments, target_cursor, bytes, epoch, overwrites) = {
        let mut st = inner.st.borrow_mut();
        debug_assert!(!st.syncing, "one device flush at a time");
        st.syncing = true;
        st.sync_requested = false;
        let overwrites = unsynced_are_overwrites(&st);
        st.unsynced_extend = false;
        (
            std::mem::take(&mut st.unsynced_segments),
            st.written_cursor,
            st.unsynced_bytes,
            st.epoch,
            overwrites,
        )
    };
    let sync_started = Instant::now();
    let shared = match (&inner.shared_flush, segments.first()) {
        (Some(flusher), Some(&seg)) if overwrites => {
            let file = inner.file(seg).await?;
            flusher.serves(&file).then(|| (flusher.clone(), file, seg))
        }
        _ => None,
    };
    // Joined to the shared flush, no segment is left to sync on its own.
    let own_syncs = match shared {
        Some((flusher, file, seg)) => {
            if let Some(f) = inner.fault() {
                f.before_sync()
                    .map_err(|e| DiskError::io("fdatasync", &inner.paths.segment(seg), e))?;
            }
            inner.st.borrow_mut().sync_joined = true;
            let flushed = flusher.flush(&file).await;
            inner.st.borrow_mut().sync_joined = false;
            flushed?;
            BTreeSet::new()
        }
        None => segments,
    };
    for seg in own_syncs {
        let file = inner.file(seg).await?;
        // As in `write_round`: the path only for an error.
        let failed =
            |e: &dyn std::fmt::Display| DiskError::io("fdatasync", &inner.paths.segment(seg), e);
        if let Some(f) = inner.fault() {
            f.before_sync().map_err(|e| failed(&e))?;
        }
        file.fdatasync().await.map_err(|e| failed(&e))?;
    }
    let mut st = inner.st.borrow_mut();
    let sync_us = sync_started.elapsed().as_micros() as u64;
    st.stats.sync_wait_us += sync_us;
    if inner.cfg.sync_method == SyncMethod::Adaptive
        && let Some(flusher) = &inner.shared_flush
    {
        flusher.note_write_then_flush(st.last_plain_write_us + sync_us);
    }
    st.unsynced_bytes = st.unsynced_bytes.saturating_sub(bytes);
    let after = st.durable_after_sync.take();
    if st.epoch != epoch {
        // A truncation ran meanwhile: the cursor taken above may name removed records.
        return Ok(());
    }
    // A solo write that completed during this flush is durable with it (see
    // `write_round`); its cursor is past the one taken at the start.
    let target_cursor = match after {
        Some(c) if c.next_index > target_cursor.next_index => c,
        _ => target_cursor,
    };
    let target = target_cursor.next_index - 1;
    st.stats.flushes += 1;
    st.stats.records_flushed += target.saturating_sub(inner.durable_index.get());
    drop(st);
    inner.publish_durable(target_cursor);
    Ok(())
}

/// ASYNC_FLUSH: asks for a sync every `interval`.
async fn run_sync_timer(inner: Rc<Inner>, interval: Duration) {
    loop {
        glommio::timer::sleep(interval).await;
        {
            let mut st = inner.st.borrow_mut();
            if st.closing || inner.failed.borrow().is_some() {
                return;
            }
            if st.unsynced_segments.is_empty() {
                continue;
            }
            st.sync_requested = true;
        }
        inner.work.notify();
    }
}

/// What the data directory holds.
struct Listed {
    /// Segment starts, ascending.
    starts: Vec<u64>,
    /// Expired segments kept for reuse.
    recycle_pool: Vec<PathBuf>,
}

/// Lists the data directory; removes leftovers of interrupted segment creation.
fn list_segments(paths: &GroupPaths) -> Result<Listed, DiskError> {
    let dir = std::fs::read_dir(&paths.data_dir)
        .map_err(|e| DiskError::io("list", &paths.data_dir, e))?;
    let mut starts = Vec::new();
    let mut recycle_pool = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|e| DiskError::io("list", &paths.data_dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(PREALLOC_SUFFIX) {
            std::fs::remove_file(entry.path())
                .map_err(|e| DiskError::io("remove", &entry.path(), e))?;
            continue;
        }
        if name.ends_with(RECYCLE_SUFFIX) {
            recycle_pool.push(entry.path());
            continue;
        }
        match parse_segment_name(&name) {
            Ok(start) => starts.push(start),
            Err(e) => {
                tracing::warn!(file = %entry.path().display(), error = %e, "ignoring a file that is not a segment")
            }
        }
    }
    starts.sort_unstable();
    recycle_pool.sort_unstable();
    Ok(Listed {
        starts,
        recycle_pool,
    })
}

/// Zeroes `[from, to)` of segment `seg` (positions), keeping the bytes of the first
/// block before `from`; returns those kept bytes (`[align_down(from), from)`).
async fn zero_range(
    file: &DmaFile,
    path: &std::path::Path,
    seg: u64,
    from: u64,
    to: u64,
    seg_bytes: u64,
    fault: Option<&super::fault::FaultInjector>,
) -> Result<Vec<u8>, DiskError> {
    if from >= to {
        return Ok(Vec::new());
    }
    let block = file.alignment();
    let first = file.align_down(from - seg);
    let end = file.align_up(to - seg).min(seg_bytes);
    let keep = (from - seg - first) as usize;
    let mut kept = Vec::new();
    if keep > 0 {
        let r = file
            .read_at_aligned(first, block as usize)
            .await
            .map_err(|e| DiskError::io("read", path, e))?;
        kept = r[..keep].to_vec();
        let mut buf = file.alloc_dma_buffer(block as usize);
        buf.as_bytes_mut().fill(0);
        buf.as_bytes_mut()[..keep].copy_from_slice(&kept);
        if let Some(f) = fault {
            f.before_write()
                .map_err(|e| DiskError::io("write", path, e))?;
        }
        file.write_at(buf, first)
            .await
            .map_err(|e| DiskError::io("write", path, e))?;
        if first + block < end {
            files::write_zeros(file, path, first + block, end - first - block, fault).await?;
        }
    } else {
        files::write_zeros(file, path, first, end - first, fault).await?;
    }
    Ok(kept)
}

/// Recovery: zeroes `[from, to)` of segment `seg` where a crash left non-zero bytes
/// (and syncs), so stale or torn records past the end can never be read back.
async fn zero_dirty(
    file: &DmaFile,
    path: &std::path::Path,
    seg: u64,
    from: u64,
    to: u64,
    seg_bytes: u64,
) -> Result<(), DiskError> {
    if from >= to {
        return Ok(());
    }
    let mut reader = SegmentReader::new(file, seg_bytes);
    let bytes = reader
        .get(from - seg, (to - from) as usize)
        .await
        .map_err(|e| DiskError::io("read", path, e))?;
    let Some(last_dirty) = bytes.iter().rposition(|&b| b != 0) else {
        return Ok(());
    };
    let dirty_end = from + last_dirty as u64 + 1;
    tracing::info!(file = %path.display(), from = from - seg, to = dirty_end - seg, "zeroing bytes past the recovered end");
    zero_range(file, path, seg, from, dirty_end, seg_bytes, None).await?;
    file.fdatasync()
        .await
        .map_err(|e| DiskError::io("fdatasync", path, e))
}

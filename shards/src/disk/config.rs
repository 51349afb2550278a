//! The commitlog's configuration: DLedger's storage options plus the bounds of this
//! implementation.

use std::path::PathBuf;
use std::rc::Rc;

use dledger::store::record::DEFAULT_MAX_RECORD_BYTES;

use super::error::DiskError;
use super::fault::FaultInjector;

/// Smallest `fill_lead_bytes`: two of the fill's chunks, so it syncs at most every chunk.
pub const FILL_LEAD_BYTES_MIN: u64 = 2 * FILL_CHUNK_BYTES;
/// Bytes of a new segment zero-filled (and synced) before appends may use it: the lead
/// a new log's fill keeps (`log::fill`), which zero-fills the rest as the log grows. A
/// larger head was written for every new group whether it ever appended or not: at a
/// cold start of 1,000 groups the 4 MiB heads made 4 GiB of zeros per node, created two
/// at a time, and a group's first append waited behind them (with 1 MiB segments, the
/// harness's 1,000-group configs reached a leader in every group after 20 s; with
/// these heads, 10 s).
pub const SEGMENT_HEAD_BYTES: u64 = FILL_LEAD_BYTES_MIN;
/// Bytes per background zero-fill write. The fill follows the appends one chunk at a
/// time, so an append's flush that queues behind a chunk waits for that much device
/// time: 256 KiB chunks doubled the p99 of `bench --concurrency 1` (about 1 append in
/// 250 met one); below 64 KiB the extra writes cost more CPU than they saved.
pub const FILL_CHUNK_BYTES: u64 = 64 << 10;

/// When an append counts as persisted (`flushDiskType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushMode {
    /// SYNC_FLUSH: an append is persisted once a device flush covering it completed.
    SyncFlush,
    /// ASYNC_FLUSH (DLedger's own semantics): an append is persisted once written to
    /// the device; a flush follows within `flush_interval_ms`.
    AsyncFlush { flush_interval_ms: u64 },
}

/// How a write is made durable.
///
/// The server takes it from `diskSyncMethod` (default [`SyncMethod::Adaptive`]);
/// [`LogConfig::new`] keeps [`SyncMethod::Fdatasync`], the plain behaviour, for
/// callers that do not choose. Measurements on the target machine
/// (2-core VM, ext4 on virtio without FUA, shared with other builds, so tails are
/// noisy):
/// - session 1, raw, `shards/tests/it/disk_sync_probe.rs`: 4 KiB write + `fdatasync` p50
///   220–290 µs; 4 KiB `O_DSYNC` write p50 3,990–4,210 µs; through the log
///   (`shards/tests/it/disk_append_probe.rs`, c=1): `Fdatasync` p50 432 µs, `ODsync` 6.4 ms;
/// - session 4, same probe on a preallocated zero-filled file: 4 KiB write +
///   `fdatasync` p50 198–219 µs, `O_DSYNC` write p50 375–401 µs (loaded machine); the
///   bench's raw baseline: `O_DSYNC` p99 229 µs next to write + `fdatasync` p99
///   274 µs; the whole server (`perf bench`, back to back, load 4–6): c=1 p50
///   656–819 µs with `ODsync` against 738–931 µs with `Fdatasync`, the same
///   throughput at c=16 and at c=16 × 32 bodies. But 50 minutes later, on a quieter
///   machine, the same probe gave `O_DSYNC` p50 3,980 µs (one 4 ms timer tick) at
///   512 B, 4 KiB and 64 KiB while write + `fdatasync` stayed at 145–314 µs: the
///   `O_DSYNC` completion is bimodal here, so `Fdatasync` stays the plain default and
///   the server's default, `Adaptive`, uses `O_DSYNC` only for lone rounds and only
///   while measured no slower (session 9: the harness at c=16 went from ~11k to
///   ~13–15k appends/s and ~30% less server CPU per append). Without
///   FUA the kernel flushes the device cache after an `O_DSYNC` write itself, from the
///   write's completion (no return to the executor, no second io_uring request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncMethod {
    /// Plain direct write, then one `fdatasync` per touched file per group commit.
    #[default]
    Fdatasync,
    /// Files opened with `O_DSYNC`: each write is durable when it completes.
    ODsync,
    /// [`SyncMethod::Fdatasync`], except that a write round of a log alone on its
    /// shard's device (nothing of another log being made durable there) goes through an
    /// `O_DSYNC` descriptor of the segment and is durable when it completes, or, when
    /// the log's own earlier writes are still being flushed, with that flush: one
    /// request instead of a write, a return to the executor and an `fdatasync`. Chosen by measurement while running: `O_DSYNC` is
    /// used only while its smoothed latency is not clearly above write + flush (see
    /// `solo_write`). Needs the shard's shared flush (`shared_flush` and a device that
    /// passed its gate); without it, this is `Fdatasync`. SYNC_FLUSH only.
    Adaptive,
}

/// Configuration of one group's commitlog.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// `storePathRootDir`: the log lives in `<root>/dledger-<self_id>/<group>/`.
    pub store_root_dir: PathBuf,
    /// `dLegerSelfId`, e.g. `n0`.
    pub self_id: String,
    /// `dLegerGroup`, e.g. `RaftNode00`.
    pub group: String,
    /// `mappedFileSizeForEntryData`: bytes per data segment (multiple of 4096).
    pub segment_bytes: u64,
    /// `mappedFileSizeForEntryIndex`: bytes per dense index file (multiple of 4096).
    pub index_segment_bytes: u64,
    /// Largest record (header + body) accepted.
    pub max_record_bytes: u32,
    /// `flushDiskType` (+ `flushFileInterval`).
    pub flush_mode: FlushMode,
    pub sync_method: SyncMethod,
    /// Pace of the background zero-filling of the next segment (bytes/s, 0 = as fast
    /// as the device goes), so it does not queue ahead of the appends' syncs.
    pub prealloc_bytes_per_sec: u64,
    /// How far past the log's end the background zero-filling may run (bytes), once
    /// the log holds that much (until then, as far as it holds). The appends need
    /// zeros only just ahead of them; a fill that ran on to the segment's
    /// end in one burst queued tens of MiB of writes ahead of every replica's appends
    /// and flushes on the shared device. It is synced every half of this, so the
    /// synced prefix stays at least that far ahead of the appends.
    pub fill_lead_bytes: u64,
    /// Expired segments kept (as `data/*.recycle`) to become the next segments by a
    /// rename instead of a new zero-filled file (0: always delete and zero-fill).
    /// Never used above `disk_ratio_force_clean`: then expired segments are deleted.
    pub recycled_segments_max: usize,
    /// Bytes of the DMA buffer records are encoded into (grown for a larger record).
    pub write_buffer_bytes: usize,
    /// Bound on appended bytes not yet written; an append beyond it gets PENDING_FULL.
    pub pending_bytes_max: u64,
    /// Bound on bytes written but not yet flushed (ASYNC_FLUSH); also bounds what a
    /// crash can leave past the durable end, which recovery zeroes.
    pub unsynced_bytes_max: u64,
    /// Bytes of recent records kept in memory for reads and pushes to followers.
    pub tail_cache_bytes: u64,
    /// `fileReservedHours`: a segment older than this may be deleted.
    pub file_reserved_hours: u64,
    /// `diskSpaceRatioToCheckExpired`: above this disk usage, expired segments are
    /// deleted at any hour (otherwise only at `delete_when_hour`).
    pub disk_ratio_check_expired: f64,
    /// `diskSpaceRatioToForceClean`: above this, the oldest segments are deleted even
    /// when not expired (never beyond the caller's floor).
    pub disk_ratio_force_clean: f64,
    /// Above this disk usage appends fail with DISK_FULL (DLedger: 0.90).
    pub disk_ratio_refuse_writes: f64,
    /// `deleteWhen`: the local hour (0–23) at which expired segments are deleted.
    pub delete_when_hour: u8,
    /// How often (ms) the disk usage is sampled on the append path.
    pub disk_check_interval_ms: u64,
    /// Test seam: inject write/sync failures (`None` in production).
    pub fault: Option<Rc<FaultInjector>>,
    /// The glommio task queue the writer and syncer run in (`None`: the queue of the
    /// task that opens the log). The server puts them in its replication queue, beside
    /// the group's driver: in another queue the scheduler ran the writer only after the
    /// replication queue's turn, so the leader's own write left after its pushes.
    pub task_queue: Option<glommio::TaskQueueHandle>,
    /// Join the shard's shared device flush (`enableSharedFlush`; see
    /// [`super::SharedFlush`]) where the device passed its gate; `false` (the default
    /// here) keeps one `fdatasync` per touched segment per round. Ignored with
    /// [`SyncMethod::ODsync`]; [`SyncMethod::Adaptive`]'s solo writes need it.
    pub shared_flush: bool,
}

impl LogConfig {
    /// DLedger's defaults for a group, storing under `store_root_dir`.
    pub fn new(store_root_dir: impl Into<PathBuf>, self_id: &str, group: &str) -> Self {
        LogConfig {
            store_root_dir: store_root_dir.into(),
            self_id: self_id.to_owned(),
            group: group.to_owned(),
            segment_bytes: dledger::store::segment::DEFAULT_SEGMENT_BYTES,
            index_segment_bytes: dledger::store::segment::DEFAULT_INDEX_SEGMENT_BYTES,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            flush_mode: FlushMode::SyncFlush,
            sync_method: SyncMethod::default(),
            prealloc_bytes_per_sec: 256 << 20,
            fill_lead_bytes: 32 << 20,
            recycled_segments_max: 1,
            write_buffer_bytes: 1 << 20,
            pending_bytes_max: 64 << 20,
            unsynced_bytes_max: 8 << 20,
            tail_cache_bytes: 16 << 20,
            file_reserved_hours: 72,
            disk_ratio_check_expired: 0.70,
            disk_ratio_force_clean: 0.85,
            disk_ratio_refuse_writes: 0.90,
            delete_when_hour: 4,
            disk_check_interval_ms: 1000,
            fault: None,
            task_queue: None,
            shared_flush: false,
        }
    }

    /// `<root>/dledger-<self_id>/<group>`.
    pub fn group_dir(&self) -> PathBuf {
        self.store_root_dir
            .join(format!("dledger-{}", self.self_id))
            .join(&self.group)
    }

    /// Checks the values against each other; the error names the field.
    pub fn validate(&self) -> Result<(), DiskError> {
        let bad = |message: String| Err(DiskError::InvalidArgument { message });
        if self.self_id.is_empty() || self.self_id.contains('/') {
            return bad(format!(
                "self_id {:?} must be a non-empty name",
                self.self_id
            ));
        }
        if self.group.is_empty() || self.group.contains('/') || self.group.starts_with('.') {
            return bad(format!(
                "group {:?} must be a plain directory name",
                self.group
            ));
        }
        if let Err(e) = dledger::store::segment::SegmentGeometry::new(self.segment_bytes) {
            return bad(format!("segment_bytes: {e}"));
        }
        if let Err(e) = dledger::store::segment::SegmentGeometry::new(self.index_segment_bytes) {
            return bad(format!("index_segment_bytes: {e}"));
        }
        let record_max = u64::from(self.max_record_bytes);
        if record_max < dledger::store::record::HEADER_BYTES_U64 || record_max > self.segment_bytes
        {
            return bad(format!(
                "max_record_bytes {} must hold a header and fit in a segment of {} bytes",
                self.max_record_bytes, self.segment_bytes
            ));
        }
        if self.fill_lead_bytes < FILL_LEAD_BYTES_MIN || self.fill_lead_bytes % 4096 != 0 {
            return bad(format!(
                "fill_lead_bytes {} must be a multiple of 4096 and at least {FILL_LEAD_BYTES_MIN}",
                self.fill_lead_bytes
            ));
        }
        if self.write_buffer_bytes < 4096 {
            return bad(format!(
                "write_buffer_bytes {} is below 4096",
                self.write_buffer_bytes
            ));
        }
        if self.pending_bytes_max < record_max || self.unsynced_bytes_max < record_max {
            return bad(format!(
                "pending_bytes_max {} and unsynced_bytes_max {} must each hold the largest \
                 record ({record_max} bytes)",
                self.pending_bytes_max, self.unsynced_bytes_max
            ));
        }
        let ratios = [
            ("disk_ratio_check_expired", self.disk_ratio_check_expired),
            ("disk_ratio_force_clean", self.disk_ratio_force_clean),
            ("disk_ratio_refuse_writes", self.disk_ratio_refuse_writes),
        ];
        for (name, v) in ratios {
            if !(v > 0.0 && v <= 1.0) {
                return bad(format!("{name} {v} must be in (0, 1]"));
            }
        }
        if self.delete_when_hour > 23 {
            return bad(format!(
                "delete_when_hour {} must be 0..=23",
                self.delete_when_hour
            ));
        }
        if let FlushMode::AsyncFlush { flush_interval_ms } = self.flush_mode {
            if flush_interval_ms == 0 {
                return bad("flush_interval_ms must be at least 1".into());
            }
        }
        Ok(())
    }
}

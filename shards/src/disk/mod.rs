//! The direct-I/O commitlog of a Raft group, on glommio.
//!
//! - [`GroupLog`]: open/recover, append (leader and follower), group-committed
//!   durability watermarks, reads, truncation, retention, hard state and checkpoint.
//! - [`LogConfig`], [`FlushMode`], [`SyncMethod`]: configuration.
//! - [`DiskError`]: errors named after DLedger's response codes.
//! - [`FaultInjector`]: the test seam that makes writes or syncs fail.
//!
//! Record format, segment naming, alignment math, the chain rule, the recovery scan
//! and the state codecs come from the pure `dledger::store`; this module does the I/O.
//!
//! # Decisions
//!
//! - **Write path.** Records are encoded straight into a DMA buffer (the stage). A
//!   writer task writes it in block-aligned chunks (direct I/O), normally one write
//!   per round; the partly filled last block stays in memory and is rewritten by the
//!   next chunk. Chunks are written strictly one after another, so an older version
//!   of a rewritten block can never land after a newer one.
//! - **Group commit, pipelined.** A syncer task keeps at most one `fdatasync` in
//!   flight, covering every write completed before it started; the writer goes on
//!   writing what is appended meanwhile, so the next flush starts with its data
//!   already on the device (`LogStats` counts records per flush and the time spent
//!   waiting for writes and flushes). Durability waiters are keyed by index, so a
//!   flush wakes exactly the appends it made durable.
//! - **O_DSYNC or fdatasync** ([`SyncMethod`], the server's `diskSyncMethod`): with
//!   `ODsync` each write is durable when it completes and the syncer has nothing to
//!   do. `Fdatasync` is the plain default: on the target VM an `O_DSYNC` write is
//!   sometimes one 4 ms timer tick (see [`SyncMethod`]). `Adaptive` (the server's
//!   default) writes a round `O_DSYNC` when its log is alone on the shard's device and
//!   that way measures no slower (`solo_write`), else as `Fdatasync`.
//! - **Segments** are created under a temporary name, `fallocate`d, zero-filled,
//!   synced and renamed, in the background one segment ahead, so appends are pure
//!   overwrites (no block allocation or unwritten-extent conversion inside a sync).
//!   Expired segments are recycled instead when retention allows
//!   (`recycled_segments_max`, default 1, never above `disk_ratio_force_clean`):
//!   renamed to `*.recycle`, then into the next segment's name, which skips writing
//!   a whole segment of zeros (a second full write of the device's bandwidth). Their
//!   stale records name other positions and fail the chain, so recovery never links
//!   them.
//! - **Durability modes.** SYNC_FLUSH counts a record once a flush covers it
//!   (`durable_index`); ASYNC_FLUSH once it is written (`written_index`), with a flush
//!   at least every `flush_interval_ms` and whenever `unsynced_bytes_max/2` is
//!   written. `GroupLog::persisted_index` gives the one Raft may use.
//! - **Failures.** A failed write or sync makes the log fail for good: no retry (the
//!   page state is unknown); every later append and wait gets the same DISK_ERROR.
//!   Out of space (statvfs ratio above `disk_ratio_refuse_writes`, or ENOSPC while
//!   creating a segment) is DISK_FULL: not fatal, reads go on.
//! - **Recovery.** `checkpoint` (store format) holds the durable point and the point
//!   recovery scans from (the previous checkpoint's durable point). Positions below it
//!   come from the dense index (`index/`, synced before each checkpoint); the data
//!   after it is verified record by record with the store's scan. Damage past the
//!   durable point is a torn tail (cut; bytes a crash may have left after it are
//!   zeroed); at or below it, the open fails naming file and offset.
//! - **Truncation** (Raft conflicts) lowers the checkpoint first when it covers the cut
//!   entries, zeroes and syncs the removed bytes, and continues the chain from the last
//!   kept record, so the next record is placed exactly where the leader places it.
//! - **glommio io_poll probe.** See [`prime_glommio_iopoll_probe`]: without it, the
//!   first direct-I/O file opened on a thread decides (wrongly, when it is empty) that
//!   the device supports polled I/O, and every read then fails with EOPNOTSUPP.
//! - **Metadata writes are bounded.** `hardstate`/`checkpoint` writes fail with
//!   DISK_ERROR after 30 s instead of waiting for ever (a node was seen parked in
//!   io_uring at start-up with a 0-byte `hardstate.tmp`).
//! - **Start-up** opens groups' logs a few at a time ([`open_logs`]); the first
//!   segment's zero-fill makes a large-segment open device-bound, so the gain is
//!   mostly for small segments.
//! - **Shared device flush** ([`SharedFlush`], `LogConfig::shared_flush`, the server's
//!   `enableSharedFlush`): the logs of one shard on one verified ext4 device join one
//!   `fdatasync` per round instead of one each, when their unsynced writes are all
//!   overwrites of initialised blocks. The argument and its gates: `shared_flush.rs`
//!   and `flush_probe.rs`.

mod cache;

mod config;
mod error;
mod fault;
mod files;
mod flush_probe;
mod index;
mod log;
mod open_many;
mod scan;
mod shared_flush;
mod signal;
mod solo_write;
pub mod space;
mod stage;

pub use cache::Entry;
pub use config::{FlushMode, LogConfig, SEGMENT_HEAD_BYTES, SyncMethod};
pub use dledger::store::state::Checkpoint;
pub use error::DiskError;
pub use fault::FaultInjector;
pub use files::{GroupPaths, prime_glommio_iopoll_probe};
pub use flush_probe::DeviceId;
pub use log::{Appended, GroupLog, LogStats, PurgeReport};
pub use open_many::{OPEN_CONCURRENCY_DEFAULT, open_logs};
pub use shared_flush::{SharedFlush, SharedFlushStats};
#[cfg(test)]
mod open_many_tests;

//! The direct-I/O commitlog of a Raft group, on glommio.
//!
//! - [`GroupLog`]: open/recover, append (leader and follower), group-committed
//!   durability watermarks, reads, truncation, retention, hard state and checkpoint.
//! - [`LogConfig`], [`FlushMode`], [`SyncMethod`]: configuration.
//! - [`DiskError`]: errors named after DLedger's response codes.
//! - [`FaultInjector`]: the test seam that makes writes or syncs fail.
//!
//! Record format, segment naming and alignment math come from the pure
//! `dledger::store`; this module does the I/O.

mod cache;

mod config;
mod error;
mod fault;
mod files;
mod index;
mod log;
mod scan;
mod signal;
pub mod space;
mod stage;

pub use cache::Entry;
pub use config::{FlushMode, LogConfig, SyncMethod};
pub use dledger::store::state::Checkpoint;
pub use error::DiskError;
pub use fault::FaultInjector;
pub use files::{GroupPaths, prime_glommio_iopoll_probe};
pub use log::{Appended, GroupLog, LogStats, PurgeReport};

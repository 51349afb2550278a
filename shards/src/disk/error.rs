//! Errors of the commitlog, named after DLedger's response codes where one fits.

use std::path::PathBuf;

use thiserror::Error;

/// What went wrong in a [`super::GroupLog`] call.
///
/// `Clone` so that the error that made a log fail can be handed to every waiter and
/// to every later call: a failed log keeps answering with the *same* `DiskError`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DiskError {
    /// DISK_ERROR: a write, sync or file operation failed. Fatal for the log: the page
    /// state after a failed write or fsync is unknown, so nothing is retried and every
    /// later append is refused with this same error.
    #[error("DISK_ERROR: {message}")]
    Io { message: String },
    /// DISK_FULL: the disk is above the hard usage ratio or out of space. Not fatal:
    /// reads go on and appends work again once space is freed.
    #[error("DISK_FULL: {message}")]
    DiskFull { message: String },
    /// Stored data failed a check at or below the durable commit point (or is
    /// structurally impossible): the log refuses to open rather than drop it.
    #[error("CORRUPTION in {file} at offset {offset}: {reason}")]
    Corruption {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    /// INDEX_OUT_OF_RANGE: the index is not (or no longer) in the log.
    #[error("INDEX_OUT_OF_RANGE: index {index} is outside [{first_index}, {last_index}]")]
    IndexOutOfRange {
        index: u64,
        first_index: u64,
        last_index: u64,
    },
    /// INCONSISTENT_INDEX / INCONSISTENT_STATE: records handed in do not continue the
    /// log (wrong index, position or term order), or a truncation below the floor.
    #[error("INCONSISTENT_STATE: {message}")]
    Inconsistent { message: String },
    /// UNEXPECTED_ARGUMENT: malformed input (bad record bytes, empty batch, oversized
    /// record, bad configuration).
    #[error("UNEXPECTED_ARGUMENT: {message}")]
    InvalidArgument { message: String },
    /// LEADER_PENDING_FULL: more unwritten bytes are queued than the configured bound.
    #[error("PENDING_FULL: {pending_bytes} bytes wait to be written (bound {pending_bytes_max})")]
    PendingFull {
        pending_bytes: u64,
        pending_bytes_max: u64,
    },
    /// The log was closed.
    #[error("log is closed")]
    Closed,
}

impl DiskError {
    /// DLedger's response code for this error (`DLedgerResponseCode`).
    pub fn code(&self) -> u16 {
        match self {
            DiskError::Io { .. } => 414,
            DiskError::DiskFull { .. } => 415,
            DiskError::Corruption { .. } => 406,
            DiskError::IndexOutOfRange { .. } => 410,
            DiskError::Inconsistent { .. } => 406,
            DiskError::InvalidArgument { .. } => 411,
            DiskError::PendingFull { .. } => 503,
            DiskError::Closed => 500,
        }
    }

    /// DLedger's name for [`Self::code`].
    pub fn code_name(&self) -> &'static str {
        match self {
            DiskError::Io { .. } => "DISK_ERROR",
            DiskError::DiskFull { .. } => "DISK_FULL",
            DiskError::Corruption { .. } => "INCONSISTENT_STATE",
            DiskError::IndexOutOfRange { .. } => "INDEX_OUT_OF_RANGE",
            DiskError::Inconsistent { .. } => "INCONSISTENT_STATE",
            DiskError::InvalidArgument { .. } => "UNEXPECTED_ARGUMENT",
            DiskError::PendingFull { .. } => "LEADER_PENDING_FULL",
            DiskError::Closed => "INTERNAL_ERROR",
        }
    }

    /// A DISK_ERROR naming the operation, the file and the OS error.
    pub(crate) fn io(op: &str, file: &std::path::Path, err: impl std::fmt::Display) -> Self {
        DiskError::Io {
            message: format!("{op} {}: {err}", file.display()),
        }
    }

    /// True for the errors that make the log refuse every later append.
    pub fn is_fatal(&self) -> bool {
        matches!(self, DiskError::Io { .. } | DiskError::Corruption { .. })
    }
}

/// True when an OS error means "no space left" (ENOSPC, EDQUOT).
pub(crate) fn is_no_space(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(code) if code == nix::libc::ENOSPC || code == nix::libc::EDQUOT
    ) || matches!(
        err.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// True when a glommio error wraps an out-of-space OS error.
pub(crate) fn glommio_no_space(err: &glommio::GlommioError<()>) -> bool {
    match err {
        glommio::GlommioError::IoError(e) => is_no_space(e),
        glommio::GlommioError::EnhancedIoError { source, .. } => is_no_space(source),
        _ => false,
    }
}

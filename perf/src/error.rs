//! The one error type of the harnesses: every failure names what was being done.

use std::io;
use std::path::PathBuf;

/// Why a harness run failed.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    /// A command-line value is out of range or inconsistent.
    #[error("bad argument {flag}: {reason}")]
    BadArgument {
        /// The flag as typed on the command line, e.g. `--seconds`.
        flag: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
    /// A file-system or device operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "writing 4 KiB block".
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The kernel returned fewer bytes than asked for a direct write.
    #[error("short write to {}: {written} of {wanted} bytes at offset {offset}", path.display())]
    ShortWrite {
        /// The file concerned.
        path: PathBuf,
        /// Offset of the write.
        offset: u64,
        /// Bytes requested.
        wanted: usize,
        /// Bytes the kernel reported written.
        written: usize,
    },
    /// The locked-memory limit is too low for glommio and cannot be raised.
    #[error("locked memory: {0}")]
    Memlock(String),
    /// The glommio executor could not be built or panicked.
    #[error("glommio executor: {0}")]
    Executor(String),
    /// A measurement produced no sample, so no figure can be reported.
    #[error("{phase}: no samples were recorded")]
    NoSamples {
        /// Name of the measurement.
        phase: String,
    },
    /// The commitlog store could not be used.
    #[error("store: {0}")]
    Store(String),
    /// `/proc` or `sysconf` could not be read (bench).
    #[error("{0}")]
    Proc(String),
    /// The cluster under test could not be started, reached or understood (bench).
    #[error("cluster: {0}")]
    Cluster(String),
    /// The load could not be applied (bench).
    #[error("load: {0}")]
    Load(String),
}

impl PerfError {
    /// Wraps an I/O (or glommio) error with the operation and path it concerns.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: impl Into<io::Error>) -> Self {
        PerfError::Io {
            op,
            path: path.into(),
            source: source.into(),
        }
    }
}

/// Result of harness code.
pub type PerfResult<T> = Result<T, PerfError>;

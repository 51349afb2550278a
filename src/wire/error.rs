//! Why bytes could not be decoded (or a message could not be encoded).

use super::code::ResponseCode;

/// A decode or encode failure. Decoding never panics and never allocates more than the
/// input justifies; every failure lands here.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("FRAME_TOO_LARGE: frame of {len} bytes exceeds maxFrameBytes={max}")]
    FrameTooLarge { len: u64, max: u32 },
    #[error("bad magic {found:#06x} (not a dledger-rs frame)")]
    BadMagic { found: u16 },
    #[error("unsupported frame version {found} (this build speaks {supported})")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("unknown frame kind {kind:#04x}")]
    UnknownKind { kind: u8 },
    #[error("reserved header bits set ({value:#06x})")]
    ReservedBits { value: u16 },
    #[error("frame checksum mismatch (header says {expected:#010x}, computed {computed:#010x})")]
    Checksum { expected: u32, computed: u32 },
    #[error("{what}: message ends early")]
    Truncated { what: &'static str },
    #[error("{count} unread bytes after the message")]
    TrailingBytes { count: usize },
    #[error("{what}: {count} exceeds the limit {max}")]
    TooMany {
        what: &'static str,
        count: u64,
        max: u64,
    },
    #[error("{what}: invalid value {value}")]
    BadValue { what: &'static str, value: u64 },
    #[error("{what}: not UTF-8")]
    BadUtf8 { what: &'static str },
    #[error("REQUEST_WITH_EMPTY_BODYS: an append must carry at least one body")]
    EmptyAppend,
    #[error("unknown response code {0}")]
    UnknownResponseCode(u16),
    #[error("expected a {expected} frame, got kind {found:#04x}")]
    WrongKind { expected: &'static str, found: u8 },
    #[error(
        "peer batch claims to be from node {claimed} to node {to}; the connection is from {expected_from} to {expected_to}"
    )]
    WrongSender {
        claimed: u32,
        to: u32,
        expected_from: u32,
        expected_to: u32,
    },
    #[error("encoder misuse: {0}")]
    Misuse(&'static str),
}

impl WireError {
    /// The code to answer a request that failed to decode with.
    pub fn response_code(&self) -> ResponseCode {
        match self {
            WireError::FrameTooLarge { .. } => ResponseCode::FrameTooLarge,
            WireError::UnsupportedVersion { .. } | WireError::UnknownKind { .. } => {
                ResponseCode::Unsupported
            }
            WireError::TooMany { .. } => ResponseCode::Overloaded,
            WireError::EmptyAppend => ResponseCode::RequestWithEmptyBodys,
            _ => ResponseCode::UnexpectedArgument,
        }
    }

    /// True when the byte stream cannot be resynchronised: the connection must close
    /// (framing itself is broken, so the next frame boundary is unknown).
    pub fn is_fatal_for_connection(&self) -> bool {
        matches!(
            self,
            WireError::FrameTooLarge { .. }
                | WireError::BadMagic { .. }
                | WireError::UnsupportedVersion { .. }
                | WireError::ReservedBits { .. }
                | WireError::Checksum { .. }
        )
    }
}

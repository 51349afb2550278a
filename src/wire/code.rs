//! Response codes: DLedger's `DLedgerResponseCode` values and names, plus two of ours.

use std::fmt;

macro_rules! response_codes {
    ($( $variant:ident = $value:literal => $name:literal, )*) => {
        /// A response status. 200–506 are DLedger's codes with DLedger's names (so logs and
        /// tools read the same); 600+ are dledger-rs additions.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum ResponseCode {
            $( $variant = $value, )*
        }

        impl ResponseCode {
            /// Every code, ascending.
            pub const ALL: &'static [ResponseCode] = &[$( ResponseCode::$variant, )*];

            pub fn from_u16(value: u16) -> Option<ResponseCode> {
                match value {
                    $( $value => Some(ResponseCode::$variant), )*
                    _ => None,
                }
            }

            /// DLedger's name, e.g. `NOT_LEADER`.
            pub fn name(self) -> &'static str {
                match self {
                    $( ResponseCode::$variant => $name, )*
                }
            }
        }
    };
}

response_codes! {
    Success = 200 => "SUCCESS",
    Timeout = 300 => "TIMEOUT",
    MetadataError = 301 => "METADATA_ERROR",
    NetworkError = 302 => "NETWORK_ERROR",
    Unsupported = 303 => "UNSUPPORTED",
    UnknownGroup = 400 => "UNKNOWN_GROUP",
    UnknownMember = 401 => "UNKNOWN_MEMBER",
    UnexpectedMember = 402 => "UNEXPECTED_MEMBER",
    ExpiredTerm = 403 => "EXPIRED_TERM",
    NotLeader = 404 => "NOT_LEADER",
    NotFollower = 405 => "NOT_FOLLOWER",
    InconsistentState = 406 => "INCONSISTENT_STATE",
    InconsistentTerm = 407 => "INCONSISTENT_TERM",
    InconsistentIndex = 408 => "INCONSISTENT_INDEX",
    InconsistentLeader = 409 => "INCONSISTENT_LEADER",
    IndexOutOfRange = 410 => "INDEX_OUT_OF_RANGE",
    UnexpectedArgument = 411 => "UNEXPECTED_ARGUMENT",
    RepeatedRequest = 412 => "REPEATED_REQUEST",
    RepeatedPush = 413 => "REPEATED_PUSH",
    DiskError = 414 => "DISK_ERROR",
    DiskFull = 415 => "DISK_FULL",
    TermNotReady = 416 => "TERM_NOT_READY",
    FallBehindTooMuch = 417 => "FALL_BEHIND_TOO_MUCH",
    TakeLeadershipFailed = 418 => "TAKE_LEADERSHIP_FAILED",
    IndexLessThanLocalBegin = 419 => "INDEX_LESS_THAN_LOCAL_BEGIN",
    RequestWithEmptyBodys = 420 => "REQUEST_WITH_EMPTY_BODYS",
    PushRequestIsFull = 421 => "PUSH_REQUEST_IS_FULL",
    InternalError = 500 => "INTERNAL_ERROR",
    TermChanged = 501 => "TERM_CHANGED",
    WaitQuorumAckTimeout = 502 => "WAIT_QUORUM_ACK_TIMEOUT",
    LeaderPendingFull = 503 => "LEADER_PENDING_FULL",
    IllegalMemberState = 504 => "ILLEGAL_MEMBER_STATE",
    LeaderNotReady = 505 => "LEADER_NOT_READY",
    LeaderTransferring = 506 => "LEADER_TRANSFERRING",
    FrameTooLarge = 600 => "FRAME_TOO_LARGE",
    Overloaded = 601 => "OVERLOADED",
}

impl ResponseCode {
    pub fn as_u16(self) -> u16 {
        self as u16
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_names_match_dledger() {
        assert_eq!(ResponseCode::NotLeader.as_u16(), 404);
        assert_eq!(ResponseCode::NotLeader.to_string(), "NOT_LEADER");
        assert_eq!(
            ResponseCode::from_u16(502),
            Some(ResponseCode::WaitQuorumAckTimeout)
        );
        assert_eq!(
            ResponseCode::from_u16(420).unwrap().name(),
            "REQUEST_WITH_EMPTY_BODYS"
        );
        assert_eq!(
            ResponseCode::from_u16(506).unwrap().name(),
            "LEADER_TRANSFERRING"
        );
        assert_eq!(ResponseCode::from_u16(201), None);
        assert_eq!(ResponseCode::ALL.len(), 36);
        for (i, c) in ResponseCode::ALL.iter().enumerate() {
            assert_eq!(ResponseCode::from_u16(c.as_u16()), Some(*c));
            assert!(
                ResponseCode::ALL[..i].iter().all(|p| p < c),
                "ascending, unique"
            );
        }
    }
}

//! What a client call reports when it fails.

use std::fmt;

use dledger::config::HostPort;
use dledger::wire::{LeaderHint, ResponseCode};

/// Where a failure was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorOrigin {
    /// A node answered with an `ErrorResponse` carrying this code.
    Server,
    /// The client decided: the network failed (NETWORK_ERROR), a deadline passed
    /// (TIMEOUT), the answer could not be decoded, or the input was refused before sending.
    Local,
}

/// A failed client call: DLedger's response code (its name is what logs and the CLI
/// print), the node's (or the client's) message, and which address it concerns.
///
/// Network failures use NETWORK_ERROR and deadlines TIMEOUT, DLedger's own codes for them,
/// so every failure has one vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientError {
    pub code: ResponseCode,
    pub message: String,
    /// The node the failing request went to (or was meant for).
    pub addr: Option<HostPort>,
    /// The leader the node named (NOT_LEADER and friends), when it knew one.
    pub leader: Option<LeaderHint>,
    pub origin: ErrorOrigin,
    /// True when the request may still take effect: it reached a node and the outcome was
    /// not decided (TERM_CHANGED, WAIT_QUORUM_ACK_TIMEOUT, a timeout or a dropped
    /// connection after sending). An append that failed this way may be committed later.
    pub outcome_unknown: bool,
}

impl ClientError {
    pub fn local(code: ResponseCode, addr: Option<&HostPort>, message: impl Into<String>) -> Self {
        ClientError {
            code,
            message: message.into(),
            addr: addr.cloned(),
            leader: None,
            origin: ErrorOrigin::Local,
            outcome_unknown: false,
        }
    }

    pub fn network(addr: &HostPort, message: impl Into<String>) -> Self {
        Self::local(ResponseCode::NetworkError, Some(addr), message)
    }

    pub fn timeout(addr: &HostPort, message: impl Into<String>) -> Self {
        Self::local(ResponseCode::Timeout, Some(addr), message)
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::local(ResponseCode::UnexpectedArgument, None, message)
    }

    /// DLedger's name of the code, e.g. `NOT_LEADER`.
    pub fn code_name(&self) -> &'static str {
        self.code.name()
    }

    pub(crate) fn with_outcome_unknown(mut self, unknown: bool) -> Self {
        self.outcome_unknown = unknown;
        self
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code.name(), self.code.as_u16())?;
        match (&self.addr, self.origin) {
            (Some(a), ErrorOrigin::Server) => write!(f, " from {a}")?,
            (Some(a), ErrorOrigin::Local) => write!(f, " talking to {a}")?,
            (None, _) => {}
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(l) = &self.leader {
            match &l.client_addr {
                Some(a) => write!(f, " (leader n{} at {a})", l.id)?,
                None => write!(f, " (leader n{}, client address unknown)", l.id)?,
            }
        }
        if self.outcome_unknown {
            f.write_str(" [outcome unknown: the request may still take effect]")?;
        }
        Ok(())
    }
}

impl std::error::Error for ClientError {}

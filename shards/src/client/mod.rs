//! The client of the dledger-rs client protocol (docs/wire.md, `dledger::wire::client`).
//!
//! - [`Client`]: one group. `connect(peers, group, options)` asks the nodes for the group's
//!   metadata and learns the leader; `append`, `get` and `metadata` go to the leader,
//!   follow NOT_LEADER redirects (the error names the leader's client address), and retry
//!   network failures, LEADER_NOT_READY, TERM_CHANGED and the like with exponential
//!   back-off, within `max_attempts` and `call_deadline_ms`.
//! - [`Connection`]: one pipelined connection: many requests in flight (up to
//!   `max_inflight_per_conn`), answered by request id in any order.
//! - [`block_on`]: run client code from blocking code (the CLI, tests) on a one-thread
//!   glommio executor, after a locked-memory check.
//!
//! Everything runs on glommio (`net::TcpStream`, timers), so one executor thread can drive
//! thousands of concurrent calls: share the client between tasks with `Rc<Client>`.
//!
//! Retried appends are at-least-once: after TERM_CHANGED, WAIT_QUORUM_ACK_TIMEOUT, a
//! timeout or a lost connection the first attempt may still commit. Set
//! [`ClientOptions::retry_unknown_outcome`] to `false` to get such failures back as errors
//! with [`ClientError::outcome_unknown`] set instead.

mod conn;
mod error;
mod executor;
mod group;
mod options;
mod retry;

#[cfg(test)]
mod tests;

pub use conn::Connection;
pub use dledger::wire::{AppendedEntry, GetResponse, GotEntry, MetadataResponse, PeerInfo};
pub use error::{ClientError, ErrorOrigin};
pub use executor::{CLIENT_IO_MEMORY_BYTES, block_on, check_memlock, client_memlock_bytes};
pub use group::{Client, ClientStats};
pub use options::{ClientOptions, MAX_PEER_ADDRS, parse_peers};
pub use retry::{Backoff, Verdict, verdict};

//! Counters of one shard's peer transport, readable from any thread (metrics, tests).
//! Each shard owns its own set, so the relaxed atomics are never contended.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct NetStats {
    /// Outbound handshakes that completed.
    pub connects: AtomicU64,
    /// Handshaken outbound connections that ended (write error, peer close, stop).
    pub connections_lost: AtomicU64,
    /// Outbound connection attempts that failed (connect, handshake or refused).
    pub connect_failures: AtomicU64,
    /// Outbound handshakes the peer refused.
    pub hellos_refused_by_peer: AtomicU64,
    /// Writes issued by writers (one per wake-up that found work).
    pub writes: AtomicU64,
    pub frames_sent: AtomicU64,
    pub items_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Items dropped because one alone exceeded `max_frame_bytes`.
    pub items_too_large: AtomicU64,
    /// Items that were encoded into a write that failed (lost, like a dropped packet).
    pub items_lost: AtomicU64,
    /// `try_send` refusals (queue full).
    pub overloaded: AtomicU64,

    pub accepted: AtomicU64,
    /// Hellos this node refused (wrong cluster, unknown node, address mismatch, ...).
    pub hellos_rejected: AtomicU64,
    /// Accepted connections sent to another shard after their Hello.
    pub handed_off: AtomicU64,
    /// Connections served by this shard after the handshake.
    pub served: AtomicU64,
    pub frames_received: AtomicU64,
    pub bytes_received: AtomicU64,
    /// Connections closed for bad input (bad header, FRAME_TOO_LARGE, handler refusal).
    pub closed_malformed: AtomicU64,
    /// Of those, for a length prefix above `max_frame_bytes`.
    pub frames_too_large: AtomicU64,
}

impl NetStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

//! The tail cache: the most recent records, for reads and pushes to followers without
//! touching the disk. Records not yet written are always kept; written ones are evicted
//! oldest first beyond a byte budget.
//!
//! A record is held as its 48-byte header (a small fixed copy) and its body as the
//! caller's `Bytes`: on a leader a slice of the client's receive region, on a follower a
//! slice of the received peer frame. The body is never copied into the cache, so the
//! only user-space copy of it between socket and disk is the one into the DMA stage,
//! and a push to a follower can gather-write it from where it already lies.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use dledger::store::record::HEADER_BYTES;

/// One record of the log: header and body as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub index: u64,
    pub term: u64,
    /// Absolute position of the record's header.
    pub pos: u64,
    /// The encoded record header, as on disk.
    pub header: [u8; HEADER_BYTES],
    /// The body (what the client appended), shared with whoever handed it to the log.
    pub body: Bytes,
}

impl Entry {
    /// The body (what the client appended). A reference count, not a copy.
    pub fn body(&self) -> Bytes {
        self.body.clone()
    }

    /// Bytes of the encoded record (header and body).
    pub fn record_bytes(&self) -> usize {
        HEADER_BYTES + self.body.len()
    }

    /// The whole encoded record in one buffer. Copies the body: for tools and tests;
    /// the hot path sends [`Self::header`] and [`Self::body`] as separate parts.
    pub fn record(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.record_bytes());
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&self.body);
        out.freeze()
    }
}

#[derive(Debug)]
pub(crate) struct TailCache {
    entries: VecDeque<Entry>,
    bytes: u64,
    budget_bytes: u64,
}

impl TailCache {
    pub(crate) fn new(budget_bytes: u64) -> Self {
        TailCache {
            entries: VecDeque::new(),
            bytes: 0,
            budget_bytes,
        }
    }

    pub(crate) fn push(&mut self, entry: Entry) {
        if let Some(last) = self.entries.back() {
            if last.index + 1 != entry.index {
                // Not contiguous (e.g. after a purge): start over.
                self.entries.clear();
                self.bytes = 0;
            }
        }
        self.bytes += entry.record_bytes() as u64;
        self.entries.push_back(entry);
    }

    pub(crate) fn get(&self, index: u64) -> Option<&Entry> {
        let first = self.entries.front()?.index;
        let at = usize::try_from(index.checked_sub(first)?).ok()?;
        self.entries.get(at)
    }

    /// Drops every record with `index >= from`.
    pub(crate) fn truncate_from(&mut self, from: u64) {
        while self.entries.back().is_some_and(|e| e.index >= from) {
            if let Some(e) = self.entries.pop_back() {
                self.bytes -= e.record_bytes() as u64;
            }
        }
    }

    /// Evicts written records (index `<= written_index`) beyond the budget.
    pub(crate) fn evict(&mut self, written_index: u64) {
        while self.bytes > self.budget_bytes
            && self
                .entries
                .front()
                .is_some_and(|e| e.index <= written_index)
        {
            if let Some(e) = self.entries.pop_front() {
                self.bytes -= e.record_bytes() as u64;
            }
        }
    }
}

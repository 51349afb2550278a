//! The tail cache: the most recent records, encoded, for reads and pushes to
//! followers without touching the disk. Records not yet written are always kept;
//! written ones are evicted oldest first beyond a byte budget.

use std::collections::VecDeque;

use bytes::Bytes;

/// One record of the log: header and body as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub index: u64,
    pub term: u64,
    /// Absolute position of the record's header.
    pub pos: u64,
    /// The whole encoded record (48-byte header, then the body).
    pub record: Bytes,
}

impl Entry {
    /// The body (what the client appended).
    pub fn body(&self) -> Bytes {
        self.record.slice(dledger::store::record::HEADER_BYTES..)
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
        self.bytes += entry.record.len() as u64;
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
                self.bytes -= e.record.len() as u64;
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
                self.bytes -= e.record.len() as u64;
            }
        }
    }
}

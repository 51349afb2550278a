//! Test fixtures: RocketMQ CommitLog files and DLedger 0.3.x stores built byte by byte
//! from the documented formats (see [`super::rocketmq`] and [`super::dledger03`]), not
//! from our own encoders, so the scanners are checked against the formats themselves.
//! Used by the crate's tests and by the import command's tests; not for production.

use super::dledger03::{
    DLedgerChunkStop, DLedgerEntry, DLedgerError, DLedgerScanConfig, DLedgerScanner,
};
use super::rocketmq::{
    ChunkStop, CommitLogError, CommitLogMessage, CommitLogScanConfig, CommitLogScanner,
};
use super::walk::drive_files;
use crate::store::SegmentName;

const V1_MAGIC: i32 = -626_843_481;
const V2_MAGIC: i32 = -626_843_477;
const BLANK_MAGIC: i32 = -875_286_124;
const SYSFLAG_BORNHOST_V6: i32 = 1 << 4;
const SYSFLAG_STOREHOST_V6: i32 = 1 << 5;

/// The fields of one RocketMQ message to lay out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RmqMessage {
    /// false: v1 (1-byte topic length); true: v2 (2-byte topic length).
    pub v2: bool,
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    /// Extra SYSFLAG bits; the IPv6 bits are set from the host fields.
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host_v6: bool,
    pub store_timestamp: i64,
    pub store_host_v6: bool,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: Vec<u8>,
    pub topic: Vec<u8>,
    pub properties: Vec<u8>,
}

impl RmqMessage {
    /// A v1 message with IPv4 hosts.
    pub fn simple(topic: &str, body: &[u8]) -> Self {
        RmqMessage {
            v2: false,
            queue_id: 3,
            flag: 0,
            queue_offset: 0,
            sys_flag: 0,
            born_timestamp: 1_700_000_000_000,
            born_host_v6: false,
            store_timestamp: 1_700_000_000_005,
            store_host_v6: false,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: body.to_vec(),
            topic: topic.as_bytes().to_vec(),
            properties: b"TAGS\x01a\x02KEYS\x01k1\x02".to_vec(),
        }
    }

    fn host(v6: bool, seed: u8) -> Vec<u8> {
        if v6 {
            // 16-byte address then a 4-byte port.
            let mut h: Vec<u8> = (0..16).map(|i| seed.wrapping_add(i)).collect();
            h.extend_from_slice(&10911i32.to_be_bytes());
            h
        } else {
            let mut h = vec![127, 0, 0, seed];
            h.extend_from_slice(&10911i32.to_be_bytes());
            h
        }
    }

    /// The message's bytes at `physical_offset`, with the body CRC RocketMQ stores.
    pub fn encode(&self, physical_offset: u64) -> Vec<u8> {
        let body_crc = (crc32fast::hash(&self.body) & 0x7FFF_FFFF) as i32;
        self.encode_with_crc(physical_offset, body_crc)
    }

    /// As [`Self::encode`] with a chosen BODYCRC (to build damaged messages).
    pub fn encode_with_crc(&self, physical_offset: u64, body_crc: i32) -> Vec<u8> {
        let mut sys_flag = self.sys_flag & !(SYSFLAG_BORNHOST_V6 | SYSFLAG_STOREHOST_V6);
        if self.born_host_v6 {
            sys_flag |= SYSFLAG_BORNHOST_V6;
        }
        if self.store_host_v6 {
            sys_flag |= SYSFLAG_STOREHOST_V6;
        }
        let mut m = Vec::new();
        m.extend_from_slice(&0i32.to_be_bytes()); // TOTALSIZE, patched below
        m.extend_from_slice(&if self.v2 { V2_MAGIC } else { V1_MAGIC }.to_be_bytes());
        m.extend_from_slice(&body_crc.to_be_bytes());
        m.extend_from_slice(&self.queue_id.to_be_bytes());
        m.extend_from_slice(&self.flag.to_be_bytes());
        m.extend_from_slice(&self.queue_offset.to_be_bytes());
        m.extend_from_slice(&(physical_offset as i64).to_be_bytes());
        m.extend_from_slice(&sys_flag.to_be_bytes());
        m.extend_from_slice(&self.born_timestamp.to_be_bytes());
        m.extend_from_slice(&Self::host(self.born_host_v6, 1));
        m.extend_from_slice(&self.store_timestamp.to_be_bytes());
        m.extend_from_slice(&Self::host(self.store_host_v6, 2));
        m.extend_from_slice(&self.reconsume_times.to_be_bytes());
        m.extend_from_slice(&self.prepared_transaction_offset.to_be_bytes());
        m.extend_from_slice(&(self.body.len() as i32).to_be_bytes());
        m.extend_from_slice(&self.body);
        if self.v2 {
            m.extend_from_slice(&(self.topic.len() as i16).to_be_bytes());
        } else {
            m.push(self.topic.len() as u8);
        }
        m.extend_from_slice(&self.topic);
        m.extend_from_slice(&(self.properties.len() as i16).to_be_bytes());
        m.extend_from_slice(&self.properties);
        let total = m.len() as i32;
        m[..4].copy_from_slice(&total.to_be_bytes());
        m
    }
}

/// A CommitLog being written the way a broker does: preallocated zero files, a
/// blank filler when a message plus 8 spare bytes does not fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitLogImage {
    pub file_bytes: u64,
    /// File start offset (the name) and its full-size contents.
    pub files: Vec<(u64, Vec<u8>)>,
    /// Physical offset where the next message goes.
    pub end: u64,
    /// (physical offset, bytes) of every message written.
    pub messages: Vec<(u64, Vec<u8>)>,
}

impl CommitLogImage {
    /// An empty CommitLog whose first file starts at `first_file_start`.
    pub fn new(file_bytes: u64, first_file_start: u64) -> Self {
        CommitLogImage {
            file_bytes,
            files: vec![(first_file_start, vec![0; file_bytes as usize])],
            end: first_file_start,
            messages: Vec::new(),
        }
    }

    fn file_mut(&mut self, start: u64) -> &mut Vec<u8> {
        if self.files.last().map(|f| f.0) != Some(start) {
            self.files.push((start, vec![0; self.file_bytes as usize]));
        }
        let last = self.files.len() - 1;
        &mut self.files[last].1
    }

    /// Appends `msg` (moving to the next file behind a filler when needed) and returns
    /// its physical offset.
    pub fn append(&mut self, msg: &RmqMessage) -> u64 {
        let probe = msg.encode(self.end);
        let file_start = self.end - self.end % self.file_bytes;
        let offset = (self.end - file_start) as usize;
        let left = self.file_bytes as usize - offset;
        if probe.len() + 8 > left {
            let f = self.file_mut(file_start);
            f[offset..offset + 4].copy_from_slice(&(left as i32).to_be_bytes());
            f[offset + 4..offset + 8].copy_from_slice(&BLANK_MAGIC.to_be_bytes());
            self.end = file_start + self.file_bytes;
            return self.append(msg);
        }
        let f = self.file_mut(file_start);
        f[offset..offset + probe.len()].copy_from_slice(&probe);
        let at = self.end;
        self.end += probe.len() as u64;
        self.messages.push((at, probe));
        at
    }

    /// Writes `bytes` over the CommitLog at physical offset `at` (to damage it).
    pub fn overwrite(&mut self, at: u64, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            let p = at + i as u64;
            let start = p - p % self.file_bytes;
            if let Some(f) = self.files.iter_mut().find(|f| f.0 == start) {
                f.1[(p - start) as usize] = *b;
            }
        }
    }

    pub fn file_name(&self, i: usize) -> SegmentName {
        SegmentName(self.files[i].0)
    }
}

/// A DLedger 0.3.x store being written: data files and the index address space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DLedgerImage {
    pub data_file_bytes: u64,
    pub index_file_bytes: u64,
    /// Data files (start, full-size contents).
    pub data: Vec<(u64, Vec<u8>)>,
    /// Index files (start, full-size contents); record i at address i × 32.
    pub index: Vec<(u64, Vec<u8>)>,
    pub end: u64,
    pub next_index: u64,
    /// (index, term, pos, body) of every entry written.
    pub entries: Vec<(u64, u64, u64, Vec<u8>)>,
}

impl DLedgerImage {
    /// An empty store (first index 0, data at pos 0).
    pub fn new(data_file_bytes: u64, index_file_bytes: u64) -> Self {
        DLedgerImage {
            data_file_bytes,
            index_file_bytes,
            data: vec![(0, vec![0; data_file_bytes as usize])],
            index: vec![(0, vec![0; index_file_bytes as usize])],
            end: 0,
            next_index: 0,
            entries: Vec::new(),
        }
    }

    fn data_file_mut(&mut self, start: u64) -> &mut Vec<u8> {
        if self.data.last().map(|f| f.0) != Some(start) {
            self.data
                .push((start, vec![0; self.data_file_bytes as usize]));
        }
        let last = self.data.len() - 1;
        &mut self.data[last].1
    }

    /// Appends an entry with `magic` (1 normal, 2 no-op) and returns its pos.
    pub fn append(&mut self, magic: i32, term: u64, body: &[u8]) -> u64 {
        let size = 48 + body.len();
        let file_start = self.end - self.end % self.data_file_bytes;
        let offset = (self.end - file_start) as usize;
        let left = self.data_file_bytes as usize - offset;
        if size > left {
            if left >= 8 {
                let f = self.data_file_mut(file_start);
                f[offset..offset + 4].copy_from_slice(&(-1i32).to_be_bytes());
                f[offset + 4..offset + 8].copy_from_slice(&(left as i32).to_be_bytes());
            }
            self.end = file_start + self.data_file_bytes;
            return self.append(magic, term, body);
        }
        let pos = self.end;
        let index = self.next_index;
        let mut e = Vec::with_capacity(size);
        e.extend_from_slice(&magic.to_be_bytes());
        e.extend_from_slice(&(size as i32).to_be_bytes());
        e.extend_from_slice(&(index as i64).to_be_bytes());
        e.extend_from_slice(&(term as i64).to_be_bytes());
        e.extend_from_slice(&(pos as i64).to_be_bytes());
        e.extend_from_slice(&0i32.to_be_bytes()); // channel
        e.extend_from_slice(&0i32.to_be_bytes()); // chainCrc
        e.extend_from_slice(&0i32.to_be_bytes()); // bodyCrc
        e.extend_from_slice(&(body.len() as i32).to_be_bytes());
        e.extend_from_slice(body);
        self.data_file_mut(file_start)[offset..offset + size].copy_from_slice(&e);

        let mut r = Vec::with_capacity(32);
        r.extend_from_slice(&magic.to_be_bytes());
        r.extend_from_slice(&(pos as i64).to_be_bytes());
        r.extend_from_slice(&(size as i32).to_be_bytes());
        r.extend_from_slice(&(index as i64).to_be_bytes());
        r.extend_from_slice(&(term as i64).to_be_bytes());
        let addr = index * 32;
        let istart = addr - addr % self.index_file_bytes;
        if self.index.last().map(|f| f.0) != Some(istart) {
            self.index
                .push((istart, vec![0; self.index_file_bytes as usize]));
        }
        let last = self.index.len() - 1;
        let ioff = (addr - istart) as usize;
        self.index[last].1[ioff..ioff + 32].copy_from_slice(&r);

        self.end += size as u64;
        self.next_index += 1;
        self.entries.push((index, term, pos, body.to_vec()));
        pos
    }

    /// The index address space as one byte string (files joined in order).
    pub fn index_bytes(&self) -> Vec<u8> {
        self.index
            .iter()
            .flat_map(|f| f.1.iter().copied())
            .collect()
    }

    /// Writes `bytes` over the data at `pos` (to damage it).
    pub fn overwrite_data(&mut self, pos: u64, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            let p = pos + i as u64;
            let start = p - p % self.data_file_bytes;
            if let Some(f) = self.data.iter_mut().find(|f| f.0 == start) {
                f.1[(p - start) as usize] = *b;
            }
        }
    }
}

/// What a reference driver saw: the accepted entries and how the log ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Driven<E, S> {
    pub entries: Vec<E>,
    pub stop: S,
}

/// Feeds in-memory CommitLog files (start, bytes; in name order, the last is the
/// newest) to a [`CommitLogScanner`] in chunks of `chunk_bytes`, reading on from
/// `file_offset` the way the import command does, and collects (physical offset,
/// message bytes). A chunk that makes no progress is doubled before the next read.
pub fn drive_commitlog(
    config: CommitLogScanConfig,
    files: &[(u64, &[u8])],
    chunk_bytes: usize,
) -> Result<Driven<(u64, Vec<u8>), ChunkStop>, CommitLogError> {
    let mut entries = Vec::new();
    let stop = drive_files(
        &mut CommitLogScanner::new(config)?,
        files,
        chunk_bytes,
        &mut |m: &CommitLogMessage, b: &[u8]| entries.push((m.physical_offset, b.to_vec())),
    )?;
    Ok(Driven { entries, stop })
}

/// The same for a DLedger store's data files; collects (entry, body bytes).
pub fn drive_dledger(
    config: DLedgerScanConfig,
    files: &[(u64, &[u8])],
    chunk_bytes: usize,
) -> Result<Driven<(DLedgerEntry, Vec<u8>), DLedgerChunkStop>, DLedgerError> {
    let mut entries = Vec::new();
    let stop = drive_files(
        &mut DLedgerScanner::new(config)?,
        files,
        chunk_bytes,
        &mut |e: &DLedgerEntry, b: &[u8]| {
            let mut e = e.clone();
            e.body = 0..b.len();
            entries.push((e, b.to_vec()));
        },
    )?;
    Ok(Driven { entries, stop })
}

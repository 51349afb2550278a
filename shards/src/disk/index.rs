//! The dense index files: where each entry's record is, so that recovery only scans
//! the data written since the previous checkpoint.
//!
//! Entry `i` lives at address `i * 32` of the index address space (DLedger's layout,
//! codec in `dledger::store::index`), cut into files of `index_segment_bytes` named by
//! their 20-digit start address under `index/`. The index is derived data: it is
//! written and synced for the entries below the durable point just before a
//! checkpoint is written, and entries past the checkpoint are rebuilt by the scan.

use std::path::PathBuf;

use dledger::raft::TermRun;
use dledger::store::index::{
    INDEX_ENTRY_BYTES, INDEX_ENTRY_BYTES_U64, IndexEntry, decode_index_entry, encode_index_entry,
};
use dledger::store::segment::{SegmentGeometry, SegmentName, parse_segment_name};
use std::collections::VecDeque;

use super::error::DiskError;
use super::files;

#[derive(Debug)]
pub(crate) struct DenseIndex {
    dir: PathBuf,
    geometry: SegmentGeometry,
    max_record_bytes: u32,
}

impl DenseIndex {
    pub(crate) fn new(dir: PathBuf, geometry: SegmentGeometry, max_record_bytes: u32) -> Self {
        DenseIndex {
            dir,
            geometry,
            max_record_bytes,
        }
    }

    fn path(&self, start: u64) -> PathBuf {
        self.dir.join(SegmentName(start).to_string())
    }

    /// Writes `entries` (consecutive indexes) and syncs the files written.
    pub(crate) async fn write_synced(&self, entries: &[IndexEntry]) -> Result<(), DiskError> {
        let mut at = 0;
        while at < entries.len() {
            let first_addr = entries[at].index * INDEX_ENTRY_BYTES_U64;
            let file_start = self.geometry.segment_start(first_addr);
            let room =
                (self.geometry.remaining_in_segment(first_addr) / INDEX_ENTRY_BYTES_U64) as usize;
            let batch = &entries[at..(at + room).min(entries.len())];
            self.write_in_file(file_start, first_addr - file_start, batch)
                .await?;
            at += batch.len();
        }
        Ok(())
    }

    async fn write_in_file(
        &self,
        file_start: u64,
        offset: u64,
        batch: &[IndexEntry],
    ) -> Result<(), DiskError> {
        let path = self.path(file_start);
        let file = files::open_dma(&path, true, false).await?;
        let block = file.alignment();
        let write_start = file.align_down(offset);
        let end = offset + (batch.len() * INDEX_ENTRY_BYTES) as u64;
        let write_len = (file.align_up(end) - write_start) as usize;
        let mut buf = file.alloc_dma_buffer(write_len);
        buf.as_bytes_mut().fill(0);
        let keep = (offset - write_start) as usize;
        if keep > 0 {
            // The entries before ours in the first block stay as they are.
            let r = file
                .read_at_aligned(write_start, block as usize)
                .await
                .map_err(|e| DiskError::io("read", &path, e))?;
            let have = r.len().min(keep);
            buf.as_bytes_mut()[..have].copy_from_slice(&r[..have]);
        }
        for (k, e) in batch.iter().enumerate() {
            let at = keep + k * INDEX_ENTRY_BYTES;
            encode_index_entry(e, &mut buf.as_bytes_mut()[at..at + INDEX_ENTRY_BYTES]).map_err(
                |err| DiskError::InvalidArgument {
                    message: format!("index entry {}: {err}", e.index),
                },
            )?;
        }
        let written = file
            .write_at(buf, write_start)
            .await
            .map_err(|e| DiskError::io("write", &path, e))?;
        if written != write_len {
            return Err(DiskError::io(
                "write",
                &path,
                format!("short write {written}/{write_len}"),
            ));
        }
        file.fdatasync()
            .await
            .map_err(|e| DiskError::io("fdatasync", &path, e))?;
        file.close()
            .await
            .map_err(|e| DiskError::io("close", &path, e))?;
        Ok(())
    }

    /// Loads the entries `[from, to)` into `positions` and `term_runs`. `Ok(false)`
    /// (and nothing loaded) when any entry is missing or does not fit, so the caller
    /// falls back to a full scan.
    pub(crate) async fn load(
        &self,
        from: u64,
        to: u64,
        positions: &mut VecDeque<u64>,
        term_runs: &mut Vec<TermRun>,
    ) -> Result<bool, DiskError> {
        let mut loaded_pos = VecDeque::new();
        let mut loaded_runs: Vec<TermRun> = Vec::new();
        let mut index = from;
        while index < to {
            let addr = index * INDEX_ENTRY_BYTES_U64;
            let file_start = self.geometry.segment_start(addr);
            let path = self.path(file_start);
            if !path.exists() {
                return Ok(false);
            }
            let file = files::open_dma(&path, false, false).await?;
            let in_file =
                (self.geometry.remaining_in_segment(addr) / INDEX_ENTRY_BYTES_U64).min(to - index);
            let mut done = 0;
            while done < in_file {
                let n = (in_file - done).min(32 << 10);
                let off = addr - file_start + done * INDEX_ENTRY_BYTES_U64;
                let r = file
                    .read_at(off, (n * INDEX_ENTRY_BYTES_U64) as usize)
                    .await
                    .map_err(|e| DiskError::io("read", &path, e))?;
                if (r.len() as u64) < n * INDEX_ENTRY_BYTES_U64 {
                    return Ok(false);
                }
                for k in 0..n as usize {
                    let i = index + done + k as u64;
                    let bytes = &r[k * INDEX_ENTRY_BYTES..(k + 1) * INDEX_ENTRY_BYTES];
                    let Ok(Some(e)) = decode_index_entry(bytes, self.max_record_bytes) else {
                        return Ok(false);
                    };
                    if e.index != i || loaded_runs.last().is_some_and(|r| r.term > e.term) {
                        return Ok(false);
                    }
                    loaded_pos.push_back(e.pos);
                    if loaded_runs.last().is_none_or(|r| r.term != e.term) {
                        loaded_runs.push(TermRun {
                            first_index: i,
                            term: e.term,
                        });
                    }
                }
                done += n;
            }
            file.close()
                .await
                .map_err(|e| DiskError::io("close", &path, e))?;
            index += in_file;
        }
        positions.extend(loaded_pos);
        term_runs.extend(loaded_runs);
        Ok(true)
    }

    /// Deletes the index files whose entries all lie below `first_index`.
    pub(crate) fn purge_below(&self, first_index: u64) -> Result<(), DiskError> {
        let dir = match std::fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(DiskError::io("list", &self.dir, e)),
        };
        for entry in dir {
            let entry = entry.map_err(|e| DiskError::io("list", &self.dir, e))?;
            let Ok(start) = parse_segment_name(&entry.file_name().to_string_lossy()) else {
                continue;
            };
            let end_index = (start + self.geometry.segment_bytes()) / INDEX_ENTRY_BYTES_U64;
            if end_index <= first_index {
                std::fs::remove_file(entry.path())
                    .map_err(|e| DiskError::io("delete", &entry.path(), e))?;
            }
        }
        Ok(())
    }
}

//! Scratch files for the disk benchmark: preallocated, zero-filled, opened for
//! direct I/O, so measured writes are pure overwrites (no block allocation,
//! no unwritten-extent conversion in the timed path).

use std::path::Path;
use std::rc::Rc;

use glommio::io::{DmaBuffer, DmaFile, OpenOptions};

use crate::error::{PerfError, PerfResult};

/// Block used to zero-fill files and for the bandwidth test: 1 MiB.
pub const FILL_BLOCK_BYTES: usize = 1 << 20;

/// Opens `path` for direct reads and writes, creating it if absent, with
/// `extra_flags` (e.g. `O_DSYNC`) added to the open flags.
pub async fn open_direct(path: &Path, extra_flags: i32) -> PerfResult<DmaFile> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .custom_flags(extra_flags)
        .dma_open(path)
        .await
        .map_err(|e| PerfError::io("opening for direct I/O", path, e))
}

/// Writes all of `buf` at `offset`; a short write is an error.
pub async fn write_all_at(
    file: &DmaFile,
    path: &Path,
    buf: Rc<DmaBuffer>,
    offset: u64,
) -> PerfResult<()> {
    let wanted = buf.len();
    let written = file
        .write_rc_at(buf, offset)
        .await
        .map_err(|e| PerfError::io("direct write", path, e))?;
    if written != wanted {
        return Err(PerfError::ShortWrite {
            path: path.to_owned(),
            offset,
            wanted,
            written,
        });
    }
    Ok(())
}

/// Flushes `file`'s data to stable storage.
pub async fn fdatasync(file: &DmaFile, path: &Path) -> PerfResult<()> {
    file.fdatasync()
        .await
        .map_err(|e| PerfError::io("fdatasync", path, e))
}

/// Creates `path` afresh as `bytes` of zeros written through to the device:
/// space is reserved with fallocate, then every block is written (fallocate
/// alone leaves unwritten extents whose first write still costs a metadata
/// commit), then synced.
pub async fn create_zeroed(path: &Path, bytes: u64) -> PerfResult<()> {
    assert!(
        bytes > 0 && bytes % FILL_BLOCK_BYTES as u64 == 0,
        "zero-filled files are whole fill blocks"
    );
    remove_if_present(path)?;
    let file = open_direct(path, 0).await?;
    file.pre_allocate(bytes, false)
        .await
        .map_err(|e| PerfError::io("preallocating", path, e))?;
    let mut zeros = file.alloc_dma_buffer(FILL_BLOCK_BYTES);
    zeros.as_bytes_mut().fill(0);
    let zeros = Rc::new(zeros);
    let mut offset = 0;
    while offset < bytes {
        write_all_at(&file, path, zeros.clone(), offset).await?;
        offset += FILL_BLOCK_BYTES as u64;
    }
    fdatasync(&file, path).await?;
    file.close()
        .await
        .map_err(|e| PerfError::io("closing", path, e))?;
    Ok(())
}

/// Removes a scratch file; a missing file is fine.
pub fn remove_if_present(path: &Path) -> PerfResult<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PerfError::io("removing scratch file", path, e)),
    }
}

//! File operations of the commitlog on glommio: directory layout, atomic metadata
//! files, segment creation and zero-filling.
//!
//! Layout of one group: `<storePathRootDir>/dledger-<selfId>/<group>/`
//! - `data/<20-digit start position>`: data segments (`.prealloc` while being filled;
//!   `.recycle` for an expired segment kept to be renamed into the next one);
//! - `index/<20-digit start address>`: the dense index (32 bytes per entry);
//! - `hardstate`: term and vote; `checkpoint`: the durable commit point.

use std::path::{Path, PathBuf};

use glommio::io::{DmaFile, OpenOptions};

use super::error::{DiskError, glommio_no_space};
use super::fault::FaultInjector;

/// Suffix of a segment being zero-filled; such a file is never part of the log.
pub(crate) const PREALLOC_SUFFIX: &str = ".prealloc";
/// Suffix of an expired segment waiting to be reused as a new one (its stale records
/// name positions the log has left, so the recovery scan never links them).
pub(crate) const RECYCLE_SUFFIX: &str = ".recycle";
/// Bytes per write when zero-filling.
pub(crate) const ZERO_CHUNK_BYTES: u64 = 1 << 20;
/// Segment creations and background fill chunks one thread runs at once. A node opening
/// a thousand new groups would otherwise create a thousand segments together: a thousand
/// `ZERO_CHUNK_BYTES` buffers, a journal busy with a thousand allocations and renames,
/// and a device queue so deep that every other write (hard states, appends) waits
/// behind it. Waiters are served in arrival order; a creation holds its permit
/// throughout (its head is a few chunks), a background fill one chunk at a time, so a
/// long fill and a new log's creation take turns.
pub(crate) const ZERO_CHUNKS_AT_ONCE: u64 = 2;

thread_local! {
    static FILL_PERMITS: std::rc::Rc<glommio::sync::Semaphore> =
        std::rc::Rc::new(glommio::sync::Semaphore::new(ZERO_CHUNKS_AT_ONCE));
    /// Device block size by device id, for the devices this thread has primed
    /// (see [`device_block_bytes`]).
    static PRIMED_DEVICES: std::cell::RefCell<std::collections::HashMap<u64, u64>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The paths of one group's files.
#[derive(Clone, Debug)]
pub struct GroupPaths {
    pub dir: PathBuf,
    pub data_dir: PathBuf,
    pub index_dir: PathBuf,
    pub hard_state: PathBuf,
    pub checkpoint: PathBuf,
}

impl GroupPaths {
    pub fn new(group_dir: PathBuf) -> Self {
        GroupPaths {
            data_dir: group_dir.join("data"),
            index_dir: group_dir.join("index"),
            hard_state: group_dir.join("hardstate"),
            checkpoint: group_dir.join("checkpoint"),
            dir: group_dir,
        }
    }

    pub fn segment(&self, start: u64) -> PathBuf {
        self.data_dir
            .join(dledger::store::segment::SegmentName(start).to_string())
    }
}

/// Makes the directory entries under `dir` durable (after a create, rename or unlink).
pub(crate) async fn sync_dir(dir: &Path) -> Result<(), DiskError> {
    let d = glommio::io::Directory::open(dir)
        .await
        .map_err(|e| DiskError::io("open directory", dir, e))?;
    d.sync()
        .await
        .map_err(|e| DiskError::io("fsync directory", dir, e))?;
    d.close()
        .await
        .map_err(|e| DiskError::io("close directory", dir, e))
}

/// Opens a file for direct I/O.
pub(crate) async fn open_dma(
    path: &Path,
    create: bool,
    o_dsync: bool,
) -> Result<DmaFile, DiskError> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(create);
    if o_dsync {
        opts.custom_flags(nix::fcntl::OFlag::O_DSYNC.bits());
    }
    opts.dma_open(path).await.map_err(|e| {
        if glommio_no_space(&e) {
            disk_full(path, &e)
        } else {
            DiskError::io("open", path, e)
        }
    })
}

fn disk_full(path: &Path, e: &dyn std::fmt::Display) -> DiskError {
    DiskError::DiskFull {
        message: format!("no space for {}: {e}", path.display()),
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new content:
/// write a temporary file, `fdatasync` it, rename it over `path`, fsync the directory.
///
/// Bounded by [`METADATA_WRITE_DEADLINE_MS`]: a write whose completion never shows up
/// (seen at start-up with many groups: a node parked in io_uring with a 0-byte temp
/// file) becomes a DISK_ERROR naming the file instead of a silent, endless wait. The
/// deadline's timer also wakes the reactor, so a merely missed wake-up completes.
pub(crate) async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), DiskError> {
    within_metadata_deadline("write (atomically)", path, async {
        let tmp = path.with_extension("tmp");
        let file = open_dma(&tmp, true, false).await?;
        write_padded_at(&file, &tmp, bytes, 0).await?;
        // Direct I/O wrote whole blocks; the file keeps exactly the encoded bytes.
        file.truncate(bytes.len() as u64)
            .await
            .map_err(|e| DiskError::io("truncate", &tmp, e))?;
        sync_and_close(file, &tmp).await?;
        std::fs::rename(&tmp, path).map_err(|e| DiskError::io("rename over", path, e))?;
        sync_dir(path.parent().unwrap_or(Path::new("."))).await
    })
    .await
}

/// Overwrites slot `slot` (of `bytes.len()` bytes, a multiple of every direct-I/O block
/// size) of a two-slot state file at `path` and syncs it (see `dledger::store::state`):
/// one direct block write and one `fdatasync` of blocks the file already has, so no
/// allocation, no rename and no journal commit. Bounded by
/// [`METADATA_WRITE_DEADLINE_MS`] like [`write_atomically`].
pub(crate) async fn overwrite_slot(
    path: &Path,
    slot: usize,
    bytes: &[u8],
) -> Result<(), DiskError> {
    within_metadata_deadline("overwrite a slot", path, async {
        let file = open_dma(path, false, false).await?;
        write_padded_at(&file, path, bytes, (slot * bytes.len()) as u64).await?;
        sync_and_close(file, path).await
    })
    .await
}

/// Longest a metadata file (`hardstate`, `checkpoint`) write, sync and rename may take.
/// Far above a healthy device's worst case (a few syncs), short enough that a stuck
/// start-up names its cause within a minute.
pub(crate) const METADATA_WRITE_DEADLINE_MS: u64 = 30_000;

/// Runs the metadata write `op` on `path` for at most [`METADATA_WRITE_DEADLINE_MS`].
async fn within_metadata_deadline(
    op: &str,
    path: &Path,
    write: impl std::future::Future<Output = Result<(), DiskError>>,
) -> Result<(), DiskError> {
    let deadline = std::time::Duration::from_millis(METADATA_WRITE_DEADLINE_MS);
    match glommio::timer::timeout(deadline, async { Ok(write.await) }).await {
        Ok(result) => result,
        Err(e) => Err(DiskError::io(
            op,
            path,
            format!("not finished after {METADATA_WRITE_DEADLINE_MS} ms: {e}"),
        )),
    }
}

/// Writes `bytes` at `at` in one direct write, zero-padded to the file's alignment.
async fn write_padded_at(
    file: &DmaFile,
    path: &Path,
    bytes: &[u8],
    at: u64,
) -> Result<(), DiskError> {
    let len = file.align_up(bytes.len() as u64) as usize;
    let mut buf = file.alloc_dma_buffer(len);
    buf.as_bytes_mut().fill(0);
    buf.as_bytes_mut()[..bytes.len()].copy_from_slice(bytes);
    let written = file
        .write_at(buf, at)
        .await
        .map_err(|e| DiskError::io("write", path, e))?;
    if written != len {
        return Err(DiskError::io(
            "write",
            path,
            format!("short write {written}/{len} at {at}"),
        ));
    }
    Ok(())
}

async fn sync_and_close(file: DmaFile, path: &Path) -> Result<(), DiskError> {
    file.fdatasync()
        .await
        .map_err(|e| DiskError::io("fdatasync", path, e))?;
    file.close()
        .await
        .map_err(|e| DiskError::io("close", path, e))
}

/// Reads a small whole file, `None` when it does not exist.
pub(crate) fn read_small(path: &Path) -> Result<Option<Vec<u8>>, DiskError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DiskError::io("read", path, e)),
    }
}

/// Creates segment `path` of `bytes` bytes, durable, with its first `head_bytes`
/// zero-filled, under a temporary name first so that a crash never leaves a
/// half-made segment in the log.
///
/// The whole length is allocated (`fallocate`), so the file has its final size and
/// appends never extend it; the blocks past the head are unwritten extents, which read
/// as zeros (what recovery takes for the end of the log). Zero-filling matters for
/// speed, not for correctness: an unwritten extent's first write needs a metadata
/// commit, which makes an append's `fdatasync` pay a journal write. The log zero-fills
/// the rest in the background (`log::fill`) while appends go on in the head: a
/// new log does not wait for a whole segment of zeros (1 GiB by default) before its
/// first record.
///
/// `zero_bytes_per_sec` (0: unlimited) paces the zero-filling so that a background
/// preparation does not crowd the device queue that appends and their syncs wait in.
pub(crate) async fn create_segment(
    path: &Path,
    bytes: u64,
    head_bytes: u64,
    fault: Option<&FaultInjector>,
    zero_bytes_per_sec: u64,
) -> Result<(), DiskError> {
    debug_assert!(head_bytes <= bytes, "the head is part of the segment");
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(PREALLOC_SUFFIX);
    let tmp = PathBuf::from(tmp);
    // One permit for the whole creation (the head is at most a few chunks): a node
    // opening a thousand new groups then creates their files a few at a time. Taken
    // per chunk instead, all of a shard's creations advanced together (a thousand
    // files created, allocated and renamed at once), their journal commits held up the
    // votes' hard-state syncs, and no group elected a leader for 10 s where before the
    // first did within 5 s (/work/wt/notes/s6/cold1000.sh, not the harness).
    let result = with_fill_permit(&tmp, async {
        let file = open_dma(&tmp, true, false).await?;
        file.pre_allocate(bytes, false)
            .await
            .map_err(|e| no_space_or_io(path, &tmp, "fallocate", e))?;
        let started = std::time::Instant::now();
        let mut pos = 0;
        while pos < head_bytes {
            let n = ZERO_CHUNK_BYTES.min(head_bytes - pos);
            write_zeros(&file, &tmp, pos, n, fault).await?;
            pos += n;
            pace(started, pos, zero_bytes_per_sec).await;
        }
        if let Some(f) = fault {
            f.before_sync()
                .map_err(|e| DiskError::io("fdatasync", &tmp, e))?;
        }
        file.fdatasync()
            .await
            .map_err(|e| no_space_or_io(path, &tmp, "fdatasync", e))?;
        file.close()
            .await
            .map_err(|e| DiskError::io("close", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| DiskError::io("rename to", path, e))?;
        sync_dir(path.parent().unwrap_or(Path::new("."))).await
    })
    .await;
    if result.is_err() {
        // Give the space back; the half-made file is never read.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Runs `fill` (one chunk of zero-filling) once one of this thread's fill permits is
/// free; the future starts only then, so what it checks first is current.
pub(crate) async fn with_fill_permit<T>(
    path: &Path,
    fill: impl std::future::Future<Output = Result<T, DiskError>>,
) -> Result<T, DiskError> {
    let permits = FILL_PERMITS.with(std::rc::Rc::clone);
    let _permit = permits
        .acquire_permit(1)
        .await
        .map_err(|e| DiskError::io("wait to zero-fill", path, e))?;
    fill.await
}

/// Sleeps until `done_bytes` of zeros written since `started` keep to
/// `bytes_per_sec` (0: no pacing).
pub(crate) async fn pace(started: std::time::Instant, done_bytes: u64, bytes_per_sec: u64) {
    if bytes_per_sec == 0 {
        return;
    }
    let due = std::time::Duration::from_secs_f64(done_bytes as f64 / bytes_per_sec as f64);
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        glommio::timer::sleep(wait).await;
    }
}

/// DISK_FULL naming `path` when `e` is ENOSPC, else an I/O error of `op` on `file`.
fn no_space_or_io(path: &Path, file: &Path, op: &str, e: glommio::GlommioError<()>) -> DiskError {
    if glommio_no_space(&e) {
        disk_full(path, &e)
    } else {
        DiskError::io(op, file, e)
    }
}

/// Writes zeros over `[pos, pos + len)` (block aligned) of `file`.
pub(crate) async fn write_zeros(
    file: &DmaFile,
    path: &Path,
    pos: u64,
    len: u64,
    fault: Option<&FaultInjector>,
) -> Result<(), DiskError> {
    debug_assert_eq!(file.align_down(pos), pos, "zeroing must start on a block");
    debug_assert_eq!(file.align_down(len), len, "zeroing must cover whole blocks");
    let mut at = pos;
    while at < pos + len {
        let n = ZERO_CHUNK_BYTES.min(pos + len - at) as usize;
        let mut buf = file.alloc_dma_buffer(n);
        buf.as_bytes_mut().fill(0);
        if let Some(f) = fault {
            f.before_write()
                .map_err(|e| DiskError::io("write zeros", path, e))?;
        }
        let written = file
            .write_at(buf, at)
            .await
            .map_err(|e| no_space_or_io(path, path, "write zeros", e))?;
        if written != n {
            return Err(DiskError::io(
                "write zeros",
                path,
                format!("short write {written}/{n}"),
            ));
        }
        at += n as u64;
    }
    Ok(())
}

/// Makes glommio's io_poll probe for the device holding `dir` give the right answer.
///
/// The first time a thread opens a `DmaFile` on a device, glommio 0.9 decides whether
/// the device supports polled I/O by reading block 0 of *that* file through the poll
/// ring. When the file is new or its first block is unwritten (a fresh segment, a
/// metadata temp file), the kernel answers without touching the device, glommio
/// concludes "pollable", and from then on every read and write of that thread on the
/// device goes through the poll ring and fails with EOPNOTSUPP on devices without
/// poll queues (virtio here). So before any other direct-I/O open, a file whose first
/// block holds real data is opened once; glommio caches the (correct) answer per
/// thread and device. Best effort: when the probe file cannot be written (e.g. the
/// disk is full) nothing is primed and recovery goes on.
pub async fn prime_glommio_iopoll_probe(dir: &Path) -> Result<(), DiskError> {
    probe_device(dir).await.map(|_| ())
}

/// The probe of [`prime_glommio_iopoll_probe`]; the device's direct-I/O block size when
/// the probe file could be written.
async fn probe_device(dir: &Path) -> Result<Option<u64>, DiskError> {
    let path = dir.join(".iopoll-probe");
    if let Err(e) = std::fs::write(&path, [0x5Au8; 4096]) {
        let _ = std::fs::remove_file(&path);
        tracing::warn!(file = %path.display(), error = %e, "cannot write the io_poll probe file");
        return Ok(None);
    }
    let file = OpenOptions::new()
        .read(true)
        .dma_open(&path)
        .await
        .map_err(|e| DiskError::io("open", &path, e))?;
    let block_bytes = file.alignment();
    file.close()
        .await
        .map_err(|e| DiskError::io("close", &path, e))?;
    std::fs::remove_file(&path).map_err(|e| DiskError::io("remove", &path, e))?;
    Ok(Some(block_bytes))
}

/// The direct-I/O block size of the device holding `dir`, priming glommio's io_poll
/// probe for it (see [`prime_glommio_iopoll_probe`]) the first time this thread asks
/// about that device. Later calls for the same device cost one `stat`: a node opening a
/// thousand groups on one disk probes it once per shard, not once per group. `None`
/// when the probe file cannot be written (e.g. the disk is full; tried again next time).
pub(crate) async fn device_block_bytes(dir: &Path) -> Result<Option<u64>, DiskError> {
    use std::os::unix::fs::MetadataExt;
    let device = std::fs::metadata(dir)
        .map_err(|e| DiskError::io("stat", dir, e))?
        .dev();
    if let Some(bytes) = PRIMED_DEVICES.with(|m| m.borrow().get(&device).copied()) {
        return Ok(Some(bytes));
    }
    let probed = probe_device(dir).await?;
    if let Some(bytes) = probed {
        PRIMED_DEVICES.with(|m| m.borrow_mut().insert(device, bytes));
    }
    Ok(probed)
}

/// `FS_IOC_FIEMAP`: `_IOWR('f', 11, struct fiemap)` with the 32-byte `struct fiemap`.
const FS_IOC_FIEMAP: nix::libc::c_ulong = 0xC020_660B;
/// `fiemap_extent.fe_flags` bits that make an extent's blocks not (yet) initialised on
/// disk: unwritten (allocated, reads as zeros), delayed allocation, location unknown.
const FIEMAP_EXTENT_NOT_INITIALISED: u32 = 0x800 | 0x4 | 0x2;
/// Extents asked for per `FS_IOC_FIEMAP` call.
const FIEMAP_EXTENTS_PER_CALL: usize = 32;

/// `struct fiemap` followed by room for [`FIEMAP_EXTENTS_PER_CALL`] extents.
///
/// Layout (kernel uapi `linux/fiemap.h`, native endian):
/// - `fm_start: u64`, `fm_length: u64` (bytes asked about), `fm_flags: u32`,
///   `fm_mapped_extents: u32` (out), `fm_extent_count: u32` (room), `fm_reserved: u32`;
/// - each extent, 56 bytes: `fe_logical: u64`, `fe_physical: u64`, `fe_length: u64`,
///   two reserved `u64`, `fe_flags: u32`, three reserved `u32`.
#[repr(C)]
struct FiemapRequest {
    start: u64,
    length: u64,
    flags: u32,
    mapped_extents: u32,
    extent_count: u32,
    reserved: u32,
    extents: [FiemapExtent; FIEMAP_EXTENTS_PER_CALL],
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct FiemapExtent {
    logical: u64,
    physical: u64,
    length: u64,
    reserved64: [u64; 2],
    flags: u32,
    reserved: [u32; 3],
}

/// Bytes from the start of `file` (of `len` bytes) held by written extents with no gap:
/// blocks a direct write overwrites without changing the file's block map. This is the
/// kernel's current view; it is durable once the file has been `fdatasync`ed after the
/// writes that initialised those blocks. 0 where the filesystem has no `FIEMAP` (then
/// nothing is known, which is always safe).
pub(crate) fn initialised_prefix(
    file: &impl std::os::fd::AsRawFd,
    path: &Path,
    len: u64,
) -> Result<u64, DiskError> {
    const _: () = assert!(std::mem::size_of::<FiemapExtent>() == 56);
    const _: () = assert!(
        std::mem::size_of::<FiemapRequest>() == 32 + 56 * FIEMAP_EXTENTS_PER_CALL,
        "the kernel's layout"
    );
    let mut prefix = 0u64;
    // Each call either ends the walk or moves `prefix` on by at least one extent, and
    // the file has at most one extent per block: bounded.
    while prefix < len {
        let mut req = FiemapRequest {
            start: prefix,
            length: len - prefix,
            flags: 0,
            mapped_extents: 0,
            extent_count: FIEMAP_EXTENTS_PER_CALL as u32,
            reserved: 0,
            extents: [FiemapExtent::default(); FIEMAP_EXTENTS_PER_CALL],
        };
        // SAFETY: `req` is a live, properly laid out `struct fiemap` with room for
        // `extent_count` extents, which is all the kernel writes.
        let rc = unsafe { nix::libc::ioctl(file.as_raw_fd(), FS_IOC_FIEMAP, &mut req) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(nix::libc::EOPNOTSUPP) | Some(nix::libc::ENOTTY) => Ok(0),
                _ => Err(DiskError::io("read the block map (FIEMAP) of", path, e)),
            };
        }
        let mapped = (req.mapped_extents as usize).min(FIEMAP_EXTENTS_PER_CALL);
        let before = prefix;
        for ext in &req.extents[..mapped] {
            if ext.logical > prefix || ext.flags & FIEMAP_EXTENT_NOT_INITIALISED != 0 {
                return Ok(prefix.min(len));
            }
            prefix = prefix.max(ext.logical.saturating_add(ext.length));
        }
        if mapped < FIEMAP_EXTENTS_PER_CALL || prefix == before {
            // The map ended (a hole or the file's end follows), or no progress.
            break;
        }
    }
    Ok(prefix.min(len))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    use super::*;

    /// A file under the temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let n = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            Scratch(
                std::env::temp_dir()
                    .join(format!("dledger-fiemap-{tag}-{}-{n}", std::process::id())),
            )
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const LEN: u64 = 1 << 20;

    /// An ext4 file of `LEN` bytes allocated with `fallocate` (unwritten extents).
    fn allocated(tag: &str) -> Option<(Scratch, std::fs::File)> {
        let s = Scratch::new(tag);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&s.0)
            .expect("create scratch file");
        let fs = nix::sys::statfs::fstatfs(&f).expect("fstatfs");
        if fs.filesystem_type() != nix::sys::statfs::EXT4_SUPER_MAGIC {
            // The project's target filesystem; elsewhere FIEMAP may report otherwise.
            eprintln!("skipped: the temp dir is not on ext4");
            return None;
        }
        nix::fcntl::fallocate(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            nix::fcntl::FallocateFlags::empty(),
            0,
            LEN as i64,
        )
        .expect("fallocate");
        Some((s, f))
    }

    #[test]
    fn an_allocated_file_has_no_initialised_prefix_until_written() {
        let Some((s, mut f)) = allocated("alloc") else {
            return;
        };
        assert_eq!(initialised_prefix(&f, &s.0, LEN).expect("fiemap"), 0);
        f.write_all(&[7u8; 64 << 10]).expect("write");
        f.sync_data().expect("sync");
        assert_eq!(initialised_prefix(&f, &s.0, LEN).expect("fiemap"), 64 << 10);
        // A written block past a gap does not extend the prefix.
        f.write_all_at(&[9u8; 4096], 512 << 10).expect("write");
        f.sync_data().expect("sync");
        assert_eq!(initialised_prefix(&f, &s.0, LEN).expect("fiemap"), 64 << 10);
        f.write_all_at(&vec![0u8; (LEN - (64 << 10)) as usize], 64 << 10)
            .expect("write");
        f.sync_data().expect("sync");
        assert_eq!(initialised_prefix(&f, &s.0, LEN).expect("fiemap"), LEN);
    }
}

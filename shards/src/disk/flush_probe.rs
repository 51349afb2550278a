//! The gate of the shared device flush ([`super::shared_flush`]): may one `fdatasync`
//! on this filesystem stand for the device cache flush every log on it needs?
//!
//! Verified once per device per process, at the first log opened on it. Every check
//! must pass; anything that cannot be read counts as a failed check (the logs then keep
//! their own per-file `fdatasync`):
//! 1. the filesystem is ext4 (`statfs` magic): its `fdatasync` issues a device cache
//!    flush whenever barriers are on, even for a file with nothing to write back
//!    (`ext4_sync_file`: `needs_barrier` in both the journal and the no-journal path);
//! 2. its mount options (`/proc/fs/ext4/<dev>/options`) say `barrier` and neither
//!    `data=journal` (direct writes would fall back to the page cache, which only the
//!    file's own `fdatasync` writes back) nor `dax`;
//! 3. the directory is neither encrypted nor DAX (`statx` attributes: an encrypted
//!    file's direct writes may also fall back to the page cache);
//! 4. an `fdatasync` of a clean file (written and synced before) completes a device
//!    flush: the disk's "flush requests completed" counter (`/sys/dev/block/M:m/stat`
//!    field 16, of the whole disk for a partition: the block layer counts flushes
//!    there) goes up across each of [`PROBE_SYNCS`] such calls.
//!
//! Check 4 can be fooled only by other processes flushing the same disk during each
//! probe call while ours did not; checks 1–3 already rule out the configurations in
//! which ours would not.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// `fdatasync` calls of the probe, each of which must be seen completing a flush.
pub(crate) const PROBE_SYNCS: usize = 3;

/// Bytes the probe file holds (one block of every device this runs on).
const PROBE_FILE_BYTES: usize = 4096;

/// Field (1-based) of `/sys/block/<dev>/stat` counting completed flush requests
/// (Documentation/block/stat.rst, since Linux 5.5).
const FLUSH_FIELD: usize = 16;

/// The block device a filesystem lives on, by its `st_dev`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId {
    pub major: u32,
    pub minor: u32,
}

impl DeviceId {
    pub(crate) fn of_dev(dev: u64) -> Self {
        DeviceId {
            major: nix::sys::stat::major(dev) as u32,
            minor: nix::sys::stat::minor(dev) as u32,
        }
    }

    pub(crate) fn of_path(path: &Path) -> Result<Self, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("stat {}: {e}", path.display()))?;
        Ok(Self::of_dev(meta.dev()))
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// Runs the four checks for the filesystem holding `dir` (an existing directory, where
/// a probe file is written and removed). `Ok` describes what was verified; `Err` names
/// the first check that failed.
pub(crate) fn verify(dir: &Path) -> Result<String, String> {
    let fs = nix::sys::statfs::statfs(dir).map_err(|e| format!("statfs: {e}"))?;
    if fs.filesystem_type() != nix::sys::statfs::EXT4_SUPER_MAGIC {
        return Err(format!(
            "not ext4 (filesystem magic {:#x})",
            fs.filesystem_type().0
        ));
    }
    let device = DeviceId::of_path(dir)?;
    let sys = PathBuf::from(format!("/sys/dev/block/{device}"));
    let name = device_name(&sys)?;
    let options_path = PathBuf::from(format!("/proc/fs/ext4/{name}/options"));
    let options = std::fs::read_to_string(&options_path)
        .map_err(|e| format!("read {}: {e}", options_path.display()))?;
    check_mount_options(&options)?;
    check_dir_attributes(dir)?;
    let counter = flush_counter_path(&sys)?;
    let flushes = probe_flushes(dir, &counter)?;
    Ok(format!(
        "ext4 on {name} ({device}), mounted with barriers; {PROBE_SYNCS} fdatasyncs of a \
         clean file completed {flushes} device flushes ({})",
        counter.display()
    ))
}

/// `DEVNAME` from the device's `uevent` (e.g. `vda`, `nvme0n1p2`).
fn device_name(sys: &Path) -> Result<String, String> {
    let uevent = sys.join("uevent");
    let text =
        std::fs::read_to_string(&uevent).map_err(|e| format!("read {}: {e}", uevent.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .map(str::to_owned)
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| format!("no plain DEVNAME in {}", uevent.display()))
}

/// Check 2 on the comma- or line-separated option list of `/proc/fs/ext4/<dev>/options`.
pub(crate) fn check_mount_options(options: &str) -> Result<(), String> {
    let tokens: Vec<&str> = options
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .collect();
    if !tokens.contains(&"barrier") || tokens.contains(&"nobarrier") {
        return Err("mounted without barriers (no device cache flush on fdatasync)".into());
    }
    if tokens.contains(&"data=journal") {
        return Err("mounted with data=journal (direct writes go through the page cache)".into());
    }
    if tokens.iter().any(|t| t.starts_with("dax")) {
        return Err("mounted with dax".into());
    }
    Ok(())
}

/// Check 3: neither encrypted nor DAX (both are inherited by the files created inside).
fn check_dir_attributes(dir: &Path) -> Result<(), String> {
    use nix::libc;
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| format!("{} holds a NUL byte", dir.display()))?;
    let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: `c_path` is NUL-terminated and outlives the call; `stx` is a writable
    // `statx` buffer the kernel fills on success.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            0,
            libc::STATX_BASIC_STATS,
            stx.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "statx {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: zero-initialised and filled by the successful call above.
    let stx = unsafe { stx.assume_init() };
    for (attr, what) in [
        (libc::STATX_ATTR_ENCRYPTED as u64, "encrypted"),
        (libc::STATX_ATTR_DAX as u64, "DAX"),
    ] {
        if stx.stx_attributes_mask & attr == 0 {
            return Err(format!("statx cannot tell whether it is {what}"));
        }
        if stx.stx_attributes & attr != 0 {
            return Err(format!("{} is {what}", dir.display()));
        }
    }
    Ok(())
}

/// The `stat` file counting the flushes of the disk `sys` (`/sys/dev/block/M:m`) is on:
/// its own for a whole disk, its parent's for a partition.
fn flush_counter_path(sys: &Path) -> Result<PathBuf, String> {
    let real = std::fs::canonicalize(sys).map_err(|e| format!("resolve {}: {e}", sys.display()))?;
    let disk = if real.join("partition").exists() {
        real.parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| format!("{} has no parent disk", real.display()))?
    } else {
        real
    };
    Ok(disk.join("stat"))
}

/// Field [`FLUSH_FIELD`] of a block `stat` line.
pub(crate) fn parse_flush_count(stat_line: &str) -> Result<u64, String> {
    let field = stat_line
        .split_whitespace()
        .nth(FLUSH_FIELD - 1)
        .ok_or_else(|| format!("no field {FLUSH_FIELD} (flushes) in the block stat line"))?;
    field
        .parse()
        .map_err(|e| format!("block stat field {FLUSH_FIELD} {field:?}: {e}"))
}

fn read_flush_count(counter: &Path) -> Result<u64, String> {
    let line =
        std::fs::read_to_string(counter).map_err(|e| format!("read {}: {e}", counter.display()))?;
    parse_flush_count(&line)
}

/// Check 4; returns the flushes counted across the probe's `fdatasync`s.
fn probe_flushes(dir: &Path, counter: &Path) -> Result<u64, String> {
    let path = dir.join(".flush-probe");
    let result = (|| {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("create {}: {e}", path.display()))?;
        std::io::Write::write_all(&mut &file, &[0x5Au8; PROBE_FILE_BYTES])
            .map_err(|e| format!("write {}: {e}", path.display()))?;
        // Now the file is clean: what follows has nothing of its own to write.
        file.sync_all()
            .map_err(|e| format!("fsync {}: {e}", path.display()))?;
        let mut total = 0;
        for _ in 0..PROBE_SYNCS {
            let before = read_flush_count(counter)?;
            file.sync_data()
                .map_err(|e| format!("fdatasync {}: {e}", path.display()))?;
            let after = read_flush_count(counter)?;
            if after <= before {
                return Err(format!(
                    "an fdatasync of a clean file completed no device flush ({} stayed at {before})",
                    counter.display()
                ));
            }
            total += after - before;
        }
        Ok(total)
    })();
    let _ = std::fs::remove_file(&path);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options_need_barriers_and_no_page_cache_fallback() {
        let here = "rw\nbsddf\nbarrier\nauto_da_alloc\ndioread_nolock\n";
        assert_eq!(check_mount_options(here), Ok(()));
        assert_eq!(check_mount_options("rw,barrier,data=ordered"), Ok(()));
        assert!(check_mount_options("rw\nnobarrier\n").is_err());
        assert!(
            check_mount_options("rw\n").is_err(),
            "barrier must be stated"
        );
        assert!(check_mount_options("rw,barrier,data=journal").is_err());
        assert!(check_mount_options("rw,barrier,dax=always").is_err());
    }

    #[test]
    fn flush_count_is_field_16() {
        let line = "35485064 139035 524600301 22342820 50273037 2087195 2227039385 \
                    43699415 0 10284640 73701397 2408027 2443 1676897952 2396425 14850500 5262736\n";
        assert_eq!(parse_flush_count(line), Ok(14_850_500));
        // A kernel before 5.5 has no flush fields: unverifiable, not zero.
        assert!(parse_flush_count("1 2 3 4 5 6 7 8 9 10 11").is_err());
        assert!(parse_flush_count("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x 17").is_err());
    }

    #[test]
    fn tmpfs_is_refused() {
        let dir = Path::new("/dev/shm");
        let Ok(fs) = nix::sys::statfs::statfs(dir) else {
            return;
        };
        if fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC {
            let e = verify(dir).expect_err("tmpfs is not ext4");
            assert!(e.contains("not ext4"), "{e}");
        }
    }
}

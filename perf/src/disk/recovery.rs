//! (d) recovery time of a 4 GiB log.
//!
//! The log is built once under `DIR/recovery-4gib` and kept, so repeated runs
//! only time the reopen: 1 KiB records appended in large batches until the log
//! holds 4 GiB, everything made durable, the checkpoint persisted at that point,
//! then a further tail appended (durable, but past the checkpoint) and the log
//! closed. A marker file written last says the build finished and what it holds;
//! without it (or with `--rebuild-log`) the log is rebuilt. The figure is the
//! wall time of [`GroupLog::open`] on that log, which should read only the tail
//! past the checkpoint.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dledger_shards::disk::{GroupLog, LogConfig};

use super::store::{SELF_ID, TERM, remove_dir_if_present, store_error};
use crate::error::{PerfError, PerfResult};

/// Bytes of log (headers included) below the checkpoint.
pub const RECOVERY_LOG_BYTES: u64 = 4 << 30;
/// Bytes appended after the checkpoint: what recovery has to scan.
const TAIL_BYTES: u64 = 4 << 20;
/// Payload of each record of the recovery log.
const RECORD_BYTES: usize = 1024;
/// Records per append call while building: large batches keep it fast.
const BATCH_RECORDS: usize = 512;
/// Batches in flight while building, before waiting for the oldest to be
/// durable: bounds what the log holds unwritten (well under its pending bound).
const BATCHES_IN_FLIGHT: usize = 8;
/// Directory under DIR holding the cached log.
const ROOT_NAME: &str = "recovery-4gib";
/// Group name of the cached log.
const GROUP: &str = "recovery";
/// Marker written after a complete build.
const MARKER_NAME: &str = "BUILT";
/// First line of the marker; bump when the build recipe changes.
const MARKER_VERSION: &str = "dledger-perf recovery log v1";

/// The recovery figures.
#[derive(Debug, Clone, Copy)]
pub struct Recovery {
    /// Wall time of the timed open.
    pub open_elapsed: Duration,
    /// Last index of the reopened log.
    pub last_index: u64,
    /// Log size in bytes (end position).
    pub log_bytes: u64,
    /// Whether this run built the log (false: reused from an earlier run).
    pub built_now: bool,
    /// Time the build took, when this run built it.
    pub build_elapsed: Option<Duration>,
}

/// What a finished build holds, as recorded in the marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Built {
    last_index: u64,
    end_pos: u64,
    checkpoint_index: u64,
}

/// Root directory of the cached log.
pub fn recovery_root(dir: &Path) -> PathBuf {
    dir.join(ROOT_NAME)
}

fn config(root: &Path) -> LogConfig {
    LogConfig::new(root, SELF_ID, GROUP)
}

/// Builds the log if needed (or when `rebuild`), then times reopening it.
pub async fn measure(dir: &Path, rebuild: bool) -> PerfResult<Recovery> {
    let root = recovery_root(dir);
    let marker = root.join(MARKER_NAME);
    let cached = if rebuild { None } else { read_marker(&marker)? };
    let (built, built_now, build_elapsed) = match cached {
        Some(built) => (built, false, None),
        None => {
            remove_dir_if_present(&root)?;
            let started = Instant::now();
            let built = build(&root).await?;
            write_marker(&marker, &built)?;
            (built, true, Some(started.elapsed()))
        }
    };

    let started = Instant::now();
    let log = GroupLog::open(config(&root))
        .await
        .map_err(|e| store_error("reopening the recovery log", e))?;
    let open_elapsed = started.elapsed();
    let last_index = log.last_index();
    let log_bytes = log.end_pos();
    log.close()
        .await
        .map_err(|e| store_error("closing the recovery log", e))?;
    if last_index != built.last_index || log_bytes != built.end_pos {
        return Err(PerfError::Store(format!(
            "the recovery log in {} reopened at index {last_index} / {log_bytes} bytes, but was \
             built to index {} / {} bytes; rerun with --rebuild-log",
            root.display(),
            built.last_index,
            built.end_pos
        )));
    }
    Ok(Recovery {
        open_elapsed,
        last_index,
        log_bytes,
        built_now,
        build_elapsed,
    })
}

/// Deletes the cached log (for `--clean`).
pub fn remove_cached(dir: &Path) -> PerfResult<()> {
    remove_dir_if_present(&recovery_root(dir))
}

async fn build(root: &Path) -> PerfResult<Built> {
    let log = GroupLog::open(config(root))
        .await
        .map_err(|e| store_error("creating the recovery log", e))?;
    let body: Vec<u8> = (0..RECORD_BYTES).map(|i| (i % 251) as u8 + 1).collect();
    let batch: Vec<&[u8]> = vec![body.as_slice(); BATCH_RECORDS];
    let mut in_flight = std::collections::VecDeque::with_capacity(BATCHES_IN_FLIGHT);
    let mut append_until = async |end_bytes: u64| -> PerfResult<()> {
        while log.end_pos() < end_bytes {
            if in_flight.len() == BATCHES_IN_FLIGHT {
                let oldest = in_flight.pop_front().unwrap_or(0);
                log.wait_durable(oldest)
                    .await
                    .map_err(|e| store_error("waiting for durability", e))?;
            }
            let appended = log
                .append(TERM, &batch)
                .await
                .map_err(|e| store_error("appending to the recovery log", e))?;
            in_flight.push_back(appended.last_index);
        }
        Ok(())
    };
    append_until(RECOVERY_LOG_BYTES).await?;
    let checkpoint_index = log.last_index();
    log.wait_durable(checkpoint_index)
        .await
        .map_err(|e| store_error("waiting for durability", e))?;
    log.persist_checkpoint(checkpoint_index)
        .await
        .map_err(|e| store_error("persisting the checkpoint", e))?;
    append_until(RECOVERY_LOG_BYTES + TAIL_BYTES).await?;
    let built = Built {
        last_index: log.last_index(),
        end_pos: log.end_pos(),
        checkpoint_index,
    };
    // close() flushes everything appended.
    log.close()
        .await
        .map_err(|e| store_error("closing the recovery log", e))?;
    Ok(built)
}

// Marker layout (text, one `key=value` per line after the version line):
//   dledger-perf recovery log v1
//   last_index=<u64>
//   end_pos=<u64>
//   checkpoint_index=<u64>

fn write_marker(path: &Path, built: &Built) -> PerfResult<()> {
    let text = format!(
        "{MARKER_VERSION}\nlast_index={}\nend_pos={}\ncheckpoint_index={}\n",
        built.last_index, built.end_pos, built.checkpoint_index
    );
    std::fs::write(path, text).map_err(|e| PerfError::io("writing marker", path, e))
}

/// The marker's content, or `None` when it is absent or from another recipe
/// (either way the log is rebuilt).
fn read_marker(path: &Path) -> PerfResult<Option<Built>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PerfError::io("reading marker", path, e)),
    };
    Ok(parse_marker(&text))
}

fn parse_marker(text: &str) -> Option<Built> {
    let mut lines = text.lines();
    if lines.next()? != MARKER_VERSION {
        return None;
    }
    let mut field = |key: &str| -> Option<u64> {
        lines
            .next()?
            .strip_prefix(key)?
            .strip_prefix('=')?
            .parse()
            .ok()
    };
    let built = Built {
        last_index: field("last_index")?,
        end_pos: field("end_pos")?,
        checkpoint_index: field("checkpoint_index")?,
    };
    (built.end_pos > RECOVERY_LOG_BYTES && built.checkpoint_index < built.last_index)
        .then_some(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips() {
        let built = Built {
            last_index: 4_100_000,
            end_pos: RECOVERY_LOG_BYTES + 1000,
            checkpoint_index: 4_000_000,
        };
        let dir = std::env::temp_dir().join(format!("dledger-perf-marker-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        let path = dir.join(MARKER_NAME);
        write_marker(&path, &built).expect("marker is writable");
        assert_eq!(read_marker(&path).expect("marker is readable"), Some(built));
        std::fs::remove_dir_all(&dir).expect("temp dir is removable");
    }

    #[test]
    fn foreign_or_partial_markers_mean_rebuild() {
        assert_eq!(parse_marker(""), None);
        assert_eq!(parse_marker("some other file\nlast_index=1\n"), None);
        assert_eq!(
            parse_marker(&format!("{MARKER_VERSION}\nlast_index=7\n")),
            None
        );
        assert_eq!(
            parse_marker(&format!(
                "{MARKER_VERSION}\nlast_index=x\nend_pos=1\ncheckpoint_index=1\n"
            )),
            None
        );
    }
}

//! (d) recovery time of a 4 GiB log.
//!
//! The log is built once under `DIR/recovery-4gib` and kept, so repeated runs
//! only time the reopen: 1 KiB records appended in large batches until the log
//! holds 4 GiB, with a checkpoint persisted every 64 MiB as a server would
//! and one at the end, then a further tail appended (durable, but past the
//! last checkpoint) and the log closed. A marker file written last says the build finished, with which
//! recipe and what it holds; without a matching marker (or with
//! `--rebuild-log`) the log is rebuilt. The figure is the wall time of
//! [`GroupLog::open`] on that log, which should read only the tail past the
//! checkpoint.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dledger::store::DEFAULT_SEGMENT_BYTES;
use dledger_shards::disk::{GroupLog, LogConfig};

use super::store::{SELF_ID, TERM, remove_dir_if_present, store_error};
use crate::error::{PerfError, PerfResult};

/// Payload of each record of the recovery log.
const RECORD_BYTES: usize = 1024;
/// Records per append call while building: large batches keep it fast.
const BATCH_RECORDS: usize = 512;
/// Batches in flight while building, before waiting for the oldest to be
/// durable: bounds what the log holds unwritten (well under its pending bound).
const BATCHES_IN_FLIGHT: usize = 8;
/// Group name of the cached log.
const GROUP: &str = "recovery";
/// Marker written after a complete build.
const MARKER_NAME: &str = "BUILT";
/// First line of the marker; bump when the build steps or the store's record
/// format change (a log in an older format would not reopen).
const MARKER_VERSION: &str = "dledger-perf recovery log v5 (checkpoint every 64 MiB)";

/// What log to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipe {
    /// Bytes of log (headers included) at or below the checkpoint.
    pub checkpoint_bytes: u64,
    /// Bytes appended after the last checkpoint.
    pub tail_bytes: u64,
    /// A checkpoint is persisted after every this many bytes while building,
    /// standing in for a server's periodic checkpoint. Recovery starts at the
    /// point the previous-to-last checkpoint recorded, so it reads about this
    /// much plus the tail.
    pub checkpoint_interval_bytes: u64,
    /// Segment size of the log.
    pub segment_bytes: u64,
    /// Directory under DIR holding the cached log.
    pub root_name: &'static str,
}

impl Recipe {
    /// The benchmark's log: 4 GiB below the last checkpoint, checkpoints every
    /// 64 MiB (about 1.5 s of the store's measured c=256 rate), a 4 MiB tail,
    /// default (1 GiB) segments.
    pub const FOUR_GIB: Recipe = Recipe {
        checkpoint_bytes: 4 << 30,
        tail_bytes: 4 << 20,
        checkpoint_interval_bytes: 64 << 20,
        segment_bytes: DEFAULT_SEGMENT_BYTES,
        root_name: "recovery-4gib",
    };

    /// Root directory of the cached log.
    pub fn root(&self, dir: &Path) -> PathBuf {
        dir.join(self.root_name)
    }

    fn config(&self, dir: &Path) -> LogConfig {
        let mut cfg = LogConfig::new(self.root(dir), SELF_ID, GROUP);
        cfg.segment_bytes = self.segment_bytes;
        cfg
    }
}

/// The recovery figures.
#[derive(Debug, Clone, Copy)]
pub struct Recovery {
    /// Wall time of the timed open.
    pub open_elapsed: Duration,
    /// Last index of the reopened log.
    pub last_index: u64,
    /// Log size in bytes (end position).
    pub log_bytes: u64,
    /// Time the build took when this run built the log; `None` when it was
    /// reused from an earlier run.
    pub build_elapsed: Option<Duration>,
}

/// What a finished build holds, as recorded in the marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Built {
    checkpoint_bytes: u64,
    segment_bytes: u64,
    checkpoint_index: u64,
    last_index: u64,
    end_pos: u64,
}

/// Builds the log of `recipe` under `dir` if needed (or when `rebuild`),
/// then times reopening it.
pub async fn measure(dir: &Path, recipe: Recipe, rebuild: bool) -> PerfResult<Recovery> {
    let root = recipe.root(dir);
    let marker = root.join(MARKER_NAME);
    let cached = if rebuild {
        None
    } else {
        read_marker(&marker)?.filter(|b| {
            b.checkpoint_bytes == recipe.checkpoint_bytes && b.segment_bytes == recipe.segment_bytes
        })
    };
    let (built, build_elapsed) = match cached {
        Some(built) => (built, None),
        None => {
            remove_dir_if_present(&root)?;
            let started = Instant::now();
            let built = build(dir, recipe).await?;
            write_marker(&marker, &built)?;
            (built, Some(started.elapsed()))
        }
    };

    let started = Instant::now();
    let log = GroupLog::open(recipe.config(dir))
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
        build_elapsed,
    })
}

/// Makes everything appended durable and persists a checkpoint covering it,
/// as a server does periodically; returns the checkpoint's commit index.
async fn checkpoint_all(log: &GroupLog) -> PerfResult<u64> {
    let index = log.last_index();
    log.wait_durable(index)
        .await
        .map_err(|e| store_error("waiting for durability", e))?;
    log.persist_checkpoint(index)
        .await
        .map_err(|e| store_error("persisting a checkpoint", e))?;
    Ok(index)
}

/// Deletes the cached log of `recipe` (for `--clean`).
pub fn remove_cached(dir: &Path, recipe: Recipe) -> PerfResult<()> {
    remove_dir_if_present(&recipe.root(dir))
}

async fn build(dir: &Path, recipe: Recipe) -> PerfResult<Built> {
    let log = GroupLog::open(recipe.config(dir))
        .await
        .map_err(|e| store_error("creating the recovery log", e))?;
    let body: Vec<u8> = (0..RECORD_BYTES).map(|i| (i % 251) as u8 + 1).collect();
    let batch: Vec<&[u8]> = vec![body.as_slice(); BATCH_RECORDS];
    let mut in_flight = VecDeque::with_capacity(BATCHES_IN_FLIGHT);
    let mut next_checkpoint_at = recipe.checkpoint_interval_bytes;
    let mut append_until = async |end_bytes: u64, checkpoints: bool| -> PerfResult<()> {
        while log.end_pos() < end_bytes {
            if in_flight.len() == BATCHES_IN_FLIGHT
                && let Some(oldest) = in_flight.pop_front()
            {
                log.wait_durable(oldest)
                    .await
                    .map_err(|e| store_error("waiting for durability", e))?;
            }
            let appended = log
                .append(TERM, &batch)
                .await
                .map_err(|e| store_error("appending to the recovery log", e))?;
            in_flight.push_back(appended.last_index);
            if checkpoints && log.end_pos() >= next_checkpoint_at {
                checkpoint_all(&log).await?;
                next_checkpoint_at += recipe.checkpoint_interval_bytes;
            }
        }
        Ok(())
    };
    append_until(recipe.checkpoint_bytes, true).await?;
    let checkpoint_index = checkpoint_all(&log).await?;
    // The last batch may overshoot checkpoint_bytes: the tail starts where the
    // checkpoint actually is.
    let checkpoint_end = log.end_pos();
    append_until(checkpoint_end + recipe.tail_bytes, false).await?;
    let built = Built {
        checkpoint_bytes: recipe.checkpoint_bytes,
        segment_bytes: recipe.segment_bytes,
        checkpoint_index,
        last_index: log.last_index(),
        end_pos: log.end_pos(),
    };
    // close() flushes everything appended.
    log.close()
        .await
        .map_err(|e| store_error("closing the recovery log", e))?;
    Ok(built)
}

// Marker layout: text, the version line then one `key=value` line per field,
// in this order:
//   dledger-perf recovery log v5 (checkpoint every 64 MiB)
//   checkpoint_bytes=<u64>
//   segment_bytes=<u64>
//   checkpoint_index=<u64>
//   last_index=<u64>
//   end_pos=<u64>

fn write_marker(path: &Path, built: &Built) -> PerfResult<()> {
    let text = format!(
        "{MARKER_VERSION}\ncheckpoint_bytes={}\nsegment_bytes={}\ncheckpoint_index={}\n\
         last_index={}\nend_pos={}\n",
        built.checkpoint_bytes,
        built.segment_bytes,
        built.checkpoint_index,
        built.last_index,
        built.end_pos
    );
    std::fs::write(path, text).map_err(|e| PerfError::io("writing marker", path, e))
}

/// The marker's content, or `None` when it is absent or unreadable as a
/// marker of this version (either way the log is rebuilt).
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
        checkpoint_bytes: field("checkpoint_bytes")?,
        segment_bytes: field("segment_bytes")?,
        checkpoint_index: field("checkpoint_index")?,
        last_index: field("last_index")?,
        end_pos: field("end_pos")?,
    };
    (built.end_pos > built.checkpoint_bytes && built.checkpoint_index < built.last_index)
        .then_some(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dledger-perf-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        dir
    }

    #[test]
    fn marker_round_trips() {
        let built = Built {
            checkpoint_bytes: 4 << 30,
            segment_bytes: 1 << 30,
            checkpoint_index: 4_000_000,
            last_index: 4_100_000,
            end_pos: (4 << 30) + 1000,
        };
        let dir = scratch_dir("marker");
        let path = dir.join(MARKER_NAME);
        write_marker(&path, &built).expect("marker is writable");
        assert_eq!(read_marker(&path).expect("marker is readable"), Some(built));
        std::fs::remove_dir_all(&dir).expect("temp dir is removable");
    }

    #[test]
    fn foreign_or_partial_markers_mean_rebuild() {
        assert_eq!(parse_marker(""), None);
        assert_eq!(parse_marker("some other file\ncheckpoint_bytes=1\n"), None);
        assert_eq!(
            parse_marker(&format!("{MARKER_VERSION}\ncheckpoint_bytes=7\n")),
            None
        );
        assert_eq!(
            parse_marker(&format!(
                "{MARKER_VERSION}\ncheckpoint_bytes=x\nsegment_bytes=1\ncheckpoint_index=1\n\
                 last_index=2\nend_pos=3\n"
            )),
            None
        );
    }

    /// Builds a small log, reuses it, then rebuilds it on request: the cache
    /// logic the 4 GiB run depends on, at a size a test can afford.
    #[test]
    fn builds_once_then_reuses_until_asked_to_rebuild() {
        let dir = scratch_dir("recovery-cache");
        let recipe = Recipe {
            // Small segments, but big enough for the default largest record.
            checkpoint_bytes: 20 << 20,
            tail_bytes: 256 << 10,
            checkpoint_interval_bytes: 4 << 20,
            segment_bytes: 8 << 20,
            root_name: "recovery-small",
        };
        let run_dir = dir.clone();
        let result = crate::runtime::run_on_executor(
            "recovery-test",
            crate::runtime::ExecutorConfig {
                io_memory_bytes: 1 << 20,
                cpu: None,
            },
            move || async move {
                let first = measure(&run_dir, recipe, false).await?;
                let second = measure(&run_dir, recipe, false).await?;
                let third = measure(&run_dir, recipe, true).await?;
                Ok((first, second, third))
            },
        );
        let (first, second, third) = result.expect("the small recovery log builds and reopens");
        assert!(first.build_elapsed.is_some(), "first run builds");
        assert!(second.build_elapsed.is_none(), "second run reuses");
        assert!(third.build_elapsed.is_some(), "--rebuild-log rebuilds");
        assert_eq!(first.last_index, second.last_index);
        assert!(first.log_bytes >= recipe.checkpoint_bytes + recipe.tail_bytes);
        remove_cached(&dir, recipe).expect("cached log is removable");
        assert!(!recipe.root(&dir).exists());
        std::fs::remove_dir_all(&dir).expect("temp dir is removable");
    }
}

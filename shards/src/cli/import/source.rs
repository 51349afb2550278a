//! Reading a foreign log from disk for `dledger import`: list its files in name order
//! and feed them to a scanner ([`dledger::upgrade::ChunkScanner`]) in bounded chunks,
//! so a 1 GiB file is never in memory at once.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use dledger::store::parse_segment_name;
use dledger::upgrade::{ChunkScanner, FileStop};

/// Bytes read per chunk (raised to the largest record the scanner accepts).
pub const CHUNK_BYTES: usize = 8 << 20;

/// One file of a foreign log.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub start: u64,
    pub path: PathBuf,
    pub len: u64,
}

/// The files of `dir` named by a 20-digit start offset, ascending. Other names are
/// returned separately (the caller says it ignored them).
pub fn list_files(dir: &Path) -> Result<(Vec<SourceFile>, Vec<String>), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    let mut ignored = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        match parse_segment_name(&name) {
            Ok(start) if path.is_file() => {
                let len = entry
                    .metadata()
                    .map_err(|e| format!("cannot stat {}: {e}", path.display()))?
                    .len();
                files.push(SourceFile { start, path, len });
            }
            _ => ignored.push(name),
        }
    }
    files.sort_by_key(|f| f.start);
    ignored.sort();
    Ok((files, ignored))
}

/// Checks that no file is longer than `file_bytes` (the format's file size): `hint`
/// says how to set it.
pub fn check_file_sizes(files: &[SourceFile], file_bytes: u64, hint: &str) -> Result<(), String> {
    match files.iter().find(|f| f.len > file_bytes) {
        Some(f) => Err(format!(
            "{} has {} bytes, more than the file size {file_bytes}; {hint}",
            f.path.display(),
            f.len
        )),
        None => Ok(()),
    }
}

/// What a walk hands each accepted record and its bytes to; an error stops the walk.
pub type OnItem<'a, Item> = dyn FnMut(&Item, &[u8]) -> Result<(), String> + 'a;

/// Feeds a run of files to a scanner one chunk per [`Walker::step`], so the caller
/// can do something (write, check) between chunks with one chunk in memory.
pub struct Walker<'f, End, Tail> {
    files: &'f [SourceFile],
    /// The file being read (index into `files`) and its handle.
    at: usize,
    open: Option<File>,
    buf: Vec<u8>,
    /// Records accepted so far.
    pub items: u64,
    /// How the last chunk ended (`LogEnd`/`TruncatedTail` once the walk is over).
    pub stop: FileStop<End, Tail>,
}

impl<'f, End: Copy, Tail: Copy> Walker<'f, End, Tail> {
    pub fn new(files: &'f [SourceFile], chunk_bytes: usize) -> Self {
        Walker {
            files,
            at: 0,
            open: None,
            buf: vec![0u8; chunk_bytes],
            items: 0,
            stop: FileStop::NeedMoreInput,
        }
    }

    /// Scans the next chunk, handing each accepted record and its bytes to `on_item`
    /// (its first error stops the walk). Returns whether more chunks follow.
    pub fn step<S>(
        &mut self,
        scanner: &mut S,
        on_item: &mut OnItem<'_, S::Item>,
    ) -> Result<bool, String>
    where
        S: ChunkScanner<End = End, Tail = Tail>,
        S::Error: std::fmt::Display,
    {
        let Some(f) = self.files.get(self.at) else {
            return Ok(false);
        };
        let file = match self.open.take() {
            Some(file) => file,
            None => {
                scanner
                    .begin_file(f.start, self.at + 1 == self.files.len())
                    .map_err(|e| e.to_string())?;
                File::open(&f.path).map_err(|e| format!("cannot open {}: {e}", f.path.display()))?
            }
        };
        let from = scanner.file_offset().unwrap_or(f.len);
        let want = f.len.saturating_sub(from).min(self.buf.len() as u64) as usize;
        file.read_exact_at(&mut self.buf[..want], from)
            .map_err(|e| format!("cannot read {} at {from}: {e}", f.path.display()))?;
        let mut failed: Option<String> = None;
        let end = scanner
            .scan_chunk(
                &self.buf[..want],
                from + want as u64 == f.len,
                &mut |item, bytes| {
                    if failed.is_none() {
                        if let Err(e) = on_item(item, bytes) {
                            failed = Some(e);
                        }
                    }
                },
            )
            .map_err(|e| e.to_string())?;
        if let Some(e) = failed {
            return Err(e);
        }
        self.items += end.items;
        self.stop = end.stop;
        match end.stop {
            FileStop::NeedMoreInput => {
                // A chunk of at least the largest record (or reaching the file end)
                // always makes progress: the scanners promise it.
                if end.next_offset == from {
                    return Err(format!(
                        "no progress reading {} at offset {from} (a record larger than {} bytes?)",
                        f.path.display(),
                        self.buf.len()
                    ));
                }
                self.open = Some(file);
                Ok(true)
            }
            FileStop::FileDone => {
                self.at += 1;
                Ok(self.at < self.files.len())
            }
            FileStop::LogEnd(_) | FileStop::TruncatedTail(_) => {
                // Only the newest (last) file may end the log.
                debug_assert!(scanner.is_finished() && self.at + 1 == self.files.len());
                self.at = self.files.len();
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_segment_named_files_in_order() {
        let dir = std::env::temp_dir().join(format!("dledger-src-list-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for name in ["00000000000000004096", "00000000000000000000", "notes.txt"] {
            std::fs::write(dir.join(name), b"x").expect("write");
        }
        let (files, ignored) = list_files(&dir).expect("list");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(files.iter().map(|f| f.start).collect::<Vec<_>>(), [0, 4096]);
        assert_eq!(ignored, ["notes.txt"]);
        assert!(check_file_sizes(&files, 1, "h").is_ok());
        assert!(
            check_file_sizes(&files, 0, "hint")
                .unwrap_err()
                .contains("hint")
        );
    }
}

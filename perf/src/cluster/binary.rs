//! Which `dledger` binary a harness runs as its server when it is not its own built-in
//! one: `--server-bin`, `DLEDGER_SERVER_BIN` (as the integration tests use it), or this
//! workspace's `dledger` built by `cargo build` with this binary's profile (a no-op when
//! it is fresh), found next to this binary if cargo is not available.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{PerfError, PerfResult};

/// Bound on the nested `cargo build` of the server.
const CARGO_BUILD_TIMEOUT_S: u64 = 1_800;

/// The `dledger` binary to run as the server; see the module docs.
pub fn server_binary(explicit: Option<&Path>) -> PerfResult<PathBuf> {
    // Found (and built) once per process: the matrix and idle runs start several clusters.
    static FOUND: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(p) = FOUND.get() {
        return Ok(p.clone());
    }
    let p = find_server_binary(explicit)?;
    Ok(FOUND.get_or_init(|| p).clone())
}

fn find_server_binary(explicit: Option<&Path>) -> PerfResult<PathBuf> {
    if let Some(p) = explicit {
        return existing(p, "--server-bin");
    }
    if let Some(p) = std::env::var_os("DLEDGER_SERVER_BIN") {
        return existing(Path::new(&p), "DLEDGER_SERVER_BIN");
    }
    match cargo_build_server() {
        Ok(p) => Ok(p),
        Err(why) => {
            let sibling = sibling_binary()?;
            if sibling.is_file() {
                eprintln!(
                    "dledger-perf: warning: cannot build the server ({why}); using {} as it is",
                    sibling.display()
                );
                Ok(sibling)
            } else {
                Err(PerfError::Cluster(format!(
                    "no server binary: building it failed ({why}) and {} does not exist; pass --server-bin",
                    sibling.display()
                )))
            }
        }
    }
}

fn existing(p: &Path, source: &str) -> PerfResult<PathBuf> {
    if p.is_file() {
        Ok(p.to_owned())
    } else {
        Err(PerfError::Cluster(format!(
            "{source}: {} is not a file",
            p.display()
        )))
    }
}

/// `dledger` in this binary's target profile directory (tests run from `deps/`).
pub fn sibling_binary() -> PerfResult<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| PerfError::Cluster(format!("locating this binary: {e}")))?;
    let mut dir = exe
        .parent()
        .ok_or_else(|| PerfError::Cluster(format!("{} has no directory", exe.display())))?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().unwrap_or(dir);
    }
    Ok(dir.join("dledger"))
}

/// Runs `cargo build -p dledger-shards --bin dledger` (release unless this is a debug
/// build) in this workspace and returns the binary cargo reports.
fn cargo_build_server() -> Result<PathBuf, String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if !workspace.join("Cargo.toml").is_file() {
        return Err(format!("no workspace at {}", workspace.display()));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace).args([
        "build",
        "-p",
        "dledger-shards",
        "--bin",
        "dledger",
        "--message-format=json-render-diagnostics",
    ]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    eprintln!("dledger-perf: building the server: cargo build -p dledger-shards --bin dledger");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("running cargo: {e}"))?;
    let out = wait_bounded(child, Duration::from_secs(CARGO_BUILD_TIMEOUT_S))?;
    let text = String::from_utf8_lossy(&out);
    let mut exe = None;
    for line in text.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["name"] == "dledger"
            && let Some(p) = msg["executable"].as_str()
        {
            exe = Some(PathBuf::from(p));
        }
    }
    exe.ok_or_else(|| "cargo reported no dledger executable".to_owned())
}

/// Waits for `child` (its stdout piped) at most `timeout`; its stdout if it succeeded.
fn wait_bounded(mut child: Child, timeout: Duration) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut stdout = child.stdout.take().ok_or("cargo stdout is not piped")?;
    // Read on a thread: a full pipe would otherwise block cargo forever.
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).map(|_| buf)
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("cargo build took over {timeout:?}"));
            }
            Err(e) => return Err(format!("waiting for cargo: {e}")),
        }
    };
    let out = reader
        .join()
        .map_err(|_| "cargo output reader panicked".to_owned())?
        .map_err(|e| format!("reading cargo output: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build failed ({status})"));
    }
    Ok(out)
}

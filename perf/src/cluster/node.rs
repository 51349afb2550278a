//! One server process of a harness cluster: started from its config file with its output
//! appended to its own log, and signalled, paused, stopped, killed and restarted on the
//! harness's command. Dropping a node kills it.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use dledger::config::HostPort;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{PerfError, PerfResult};

/// How often exit waits look at the process.
const EXIT_POLL_MS: u64 = 5;

/// How to run a node: `program prefix… server -c CONFIG extra…`.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    /// Arguments before `server` (e.g. `netns exec NS BINARY` with program `ip`).
    pub prefix: Vec<String>,
    /// Arguments after the config (e.g. `--planted-bug NAME`).
    pub extra: Vec<String>,
    /// `RUST_LOG` of the node when this process has none.
    pub log_filter: &'static str,
}

impl Launch {
    /// `program server -c CONFIG` (a `dledger` binary, or this harness with its
    /// built-in `server` subcommand), logging at `log_filter` unless `RUST_LOG` is set.
    pub fn server(program: PathBuf, log_filter: &'static str) -> Launch {
        Launch {
            program,
            prefix: Vec::new(),
            extra: Vec::new(),
            log_filter,
        }
    }

    /// This executable's own `server` subcommand (`dledger-perf server`): the server the
    /// harness was built with.
    pub fn own_server(log_filter: &'static str) -> PerfResult<Launch> {
        let exe = std::env::current_exe()
            .map_err(|e| PerfError::Cluster(format!("finding this executable: {e}")))?;
        Ok(Launch::server(exe, log_filter))
    }

    /// `--server-bin` if given, else [`Launch::own_server`].
    pub fn chosen(server_bin: Option<&Path>, log_filter: &'static str) -> PerfResult<Launch> {
        match server_bin {
            Some(bin) => Ok(Launch::server(bin.to_owned(), log_filter)),
            None => Launch::own_server(log_filter),
        }
    }

    fn command(&self, config: &Path) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.prefix)
            .arg("server")
            .arg("-c")
            .arg(config)
            .args(&self.extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| self.log_filter.into()),
            )
            .stdin(Stdio::null());
        // The node gets SIGKILL when the thread that started it ends, so an interrupted
        // or crashed harness leaves no server running. Nodes are started from the
        // harness's main thread, which lives as long as the run.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        cmd
    }
}

/// One node. See the module docs.
#[derive(Debug)]
pub struct Node {
    /// `n0`, `n1`, …
    pub name: String,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    /// Where clients reach it.
    pub client_addr: HostPort,
    launch: Launch,
    child: Option<Child>,
    paused: bool,
    /// How often it has been started.
    pub starts: u32,
}

impl Node {
    /// A node (not started) of config `config_path`, logging to `<dir>/<name>.log`.
    pub fn new(
        dir: &Path,
        name: &str,
        config_path: PathBuf,
        client_addr: HostPort,
        launch: Launch,
    ) -> Node {
        Node {
            name: name.to_owned(),
            config_path,
            log_path: dir.join(format!("{name}.log")),
            client_addr,
            launch,
            child: None,
            paused: false,
            starts: 0,
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the node, its output appended to its log. Starting a running node is a
    /// harness bug and fails.
    pub fn start(&mut self) -> PerfResult<()> {
        if self.child.is_some() {
            return Err(PerfError::Cluster(format!(
                "node {} is already running",
                self.name
            )));
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| PerfError::io("opening", &self.log_path, e))?;
        let err = log
            .try_clone()
            .map_err(|e| PerfError::io("cloning", &self.log_path, e))?;
        let child = self
            .launch
            .command(&self.config_path)
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| {
                PerfError::Cluster(format!(
                    "starting node {} ({}): {e}",
                    self.name,
                    self.launch.program.display()
                ))
            })?;
        self.child = Some(child);
        self.paused = false;
        self.starts += 1;
        Ok(())
    }

    /// Sends `signal`; returns the instant just before it was sent.
    pub fn signal(&self, signal: Signal) -> PerfResult<Instant> {
        let child = self
            .child
            .as_ref()
            .ok_or_else(|| PerfError::Cluster(format!("node {} is not running", self.name)))?;
        // The pid is our unreaped child: it cannot have been reused.
        let pid = Pid::from_raw(i32::try_from(child.id()).map_err(|_| {
            PerfError::Cluster(format!(
                "pid {} of {} is out of range",
                child.id(),
                self.name
            ))
        })?);
        let at = Instant::now();
        kill(pid, signal)
            .map_err(|e| PerfError::Cluster(format!("{signal} to node {}: {e}", self.name)))?;
        Ok(at)
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.paused = false;
    }

    /// SIGSTOP.
    pub fn pause(&mut self) {
        if self.child.is_some() && !self.paused && self.signal(Signal::SIGSTOP).is_ok() {
            self.paused = true;
        }
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        if self.paused {
            let _ = self.signal(Signal::SIGCONT);
            self.paused = false;
        }
    }

    /// Waits up to `timeout` for the node to exit after a signal, then SIGKILLs it.
    /// Fails when it had to be killed.
    pub fn reap(&mut self, timeout: Duration) -> PerfResult<()> {
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        self.paused = false;
        let until = Instant::now() + timeout;
        loop {
            match c.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(EXIT_POLL_MS))
                }
                other => {
                    let _ = c.kill();
                    let _ = c.wait();
                    return Err(PerfError::Cluster(match other {
                        Err(e) => format!("waiting for node {}: {e}", self.name),
                        _ => format!("node {} did not exit within {timeout:?}", self.name),
                    }));
                }
            }
        }
    }

    /// SIGTERM (the node hands its leaderships over and exits), SIGKILL after `grace`.
    /// Returns whether it exited by itself.
    pub fn stop(&mut self, grace: Duration) -> bool {
        self.resume();
        if self.child.is_none() {
            return true;
        }
        let _ = self.signal(Signal::SIGTERM);
        self.reap(grace).is_ok()
    }

    /// Whether a started node has exited on its own (it crashed): then its status.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        self.paused = false;
        Some(status)
    }

    /// The last `bytes` of the node's log.
    pub fn log_tail(&self, bytes: u64) -> String {
        let Ok(mut f) = fs::File::open(&self.log_path) else {
            return format!("(no log at {})", self.log_path.display());
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(bytes)));
        let mut raw = Vec::new();
        let _ = f.read_to_end(&mut raw);
        String::from_utf8_lossy(&raw).into_owned()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

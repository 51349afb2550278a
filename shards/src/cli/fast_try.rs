//! `dledger fast-try start|stop`: a three-node cluster on one machine from
//! `conf/dledger/broker-n*.conf`, the way RocketMQ's `fast-try.sh` does it.
//!
//! `start` runs `dledger server -c <conf>` for each config as a detached process (own
//! session, stdin closed, output to `<root>/logs/<node>.log`), records its pid in
//! `<root>/pids/<node>.pid`, then polls the nodes' ClusterView (bounded by `--wait-ms`)
//! until every group has a leader and prints the cluster view. `stop` signals exactly the
//! recorded pids (after checking `/proc/<pid>/cmdline` is a dledger server), SIGTERM first,
//! SIGKILL after the bounded wait. When the configs name a name server (`namesrvAddr`, the
//! first address's port), `dledger namesrv --port P` is started first the same way
//! (`namesrv.pid`, `namesrv.log`).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use argh::FromArgs;
use dledger::config::{NodeConfig, parse_file_contents};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::cluster_list::{NodeView, render};
use crate::cluster_view::{bid, cluster_view};

/// How often the nodes and processes are polled while waiting.
const POLL_INTERVAL_MS: u64 = 200;
/// Lines of a failed node's log shown.
const LOG_TAIL_LINES: usize = 20;
/// Bytes read from the end of a log to find those lines.
const LOG_TAIL_BYTES_MAX: u64 = 16 * 1024;
/// How long `stop` waits after SIGKILL before giving up.
const KILL_WAIT_MS: u64 = 3000;

/// Start or stop a three-node local cluster from conf/dledger/broker-n*.conf.
#[derive(FromArgs, Debug, Clone, PartialEq, Eq)]
#[argh(subcommand, name = "fast-try")]
pub struct FastTryArgs {
    /// start or stop
    #[argh(positional)]
    pub action: String,
    /// directory holding broker-n*.conf (default conf/dledger)
    #[argh(option, default = "PathBuf::from(\"conf/dledger\")")]
    pub conf_dir: PathBuf,
    /// where logs/ and pids/ go (default /tmp/rmqstore; node storage is as configured)
    #[argh(option, default = "PathBuf::from(\"/tmp/rmqstore\")")]
    pub root: PathBuf,
    /// start: how long to wait for a leader; stop: how long SIGTERM gets (default 20000)
    #[argh(option, default = "20000")]
    pub wait_ms: u64,
}

pub fn run(args: FastTryArgs) -> Result<(), String> {
    match args.action.as_str() {
        "start" => start(&args),
        "stop" => stop(&args),
        other => Err(format!("unknown action {other:?}: expected start or stop")),
    }
}

struct Node {
    name: String,
    conf: PathBuf,
    config: NodeConfig,
}

fn pid_dir(root: &Path) -> PathBuf {
    root.join("pids")
}

fn log_path(root: &Path, name: &str) -> PathBuf {
    root.join("logs").join(format!("{name}.log"))
}

/// The configs `broker-n*.conf` in `dir`, parsed, sorted by file name.
fn load_nodes(dir: &Path) -> Result<Vec<Node>, String> {
    let entries = fs::read_dir(dir).map_err(|e| {
        format!(
            "--conf-dir {}: {e} (run from the repository root or pass --conf-dir)",
            dir.display()
        )
    })?;
    let mut confs = Vec::new();
    for e in entries {
        let path = e
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("broker-n") && name.ends_with(".conf") {
            confs.push(path);
        }
    }
    confs.sort();
    if confs.is_empty() {
        return Err(format!("--conf-dir {}: no broker-n*.conf", dir.display()));
    }
    let mut nodes = Vec::with_capacity(confs.len());
    for conf in confs {
        let text =
            fs::read_to_string(&conf).map_err(|e| format!("reading {}: {e}", conf.display()))?;
        let loaded =
            parse_file_contents(&conf.display().to_string(), &text).map_err(|e| format!("{e}"))?;
        let conf = fs::canonicalize(&conf).map_err(|e| format!("{}: {e}", conf.display()))?;
        nodes.push(Node {
            name: loaded.config.self_name.clone(),
            conf,
            config: loaded.config,
        });
    }
    Ok(nodes)
}

/// Pid files in `<root>/pids`, as (node name, file, pid).
fn pid_files(root: &Path) -> Result<Vec<(String, PathBuf, i32)>, String> {
    let dir = pid_dir(root);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("reading {}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for e in entries {
        let path = e
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".pid"))
        else {
            continue;
        };
        let text =
            fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let pid = text
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{}: not a pid: {:?}", path.display(), text.trim()))?;
        out.push((name.to_string(), path, pid));
    }
    out.sort();
    Ok(out)
}

/// Whether `pid` is running (a zombie waiting for its reaper counts as gone).
fn alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name, which may itself contain ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

/// Whether `pid` runs `dledger server` or `dledger namesrv` (so a reused pid is never signalled).
fn is_dledger_server(pid: i32) -> bool {
    let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let mut args = raw.split(|b| *b == 0).filter(|a| !a.is_empty());
    let exe_ok = args
        .next()
        .and_then(|a| std::str::from_utf8(a).ok())
        .is_some_and(|a| Path::new(a).file_name().is_some_and(|n| n == "dledger"));
    let sub = args.next();
    exe_ok && (sub == Some(b"server".as_slice()) || sub == Some(b"namesrv".as_slice()))
}

fn log_tail(path: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = fs::File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(LOG_TAIL_BYTES_MAX);
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(from)).is_err() || f.read_to_end(&mut buf).is_err() {
        return format!("(cannot read {})", path.display());
    }
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines[start..].join("\n")
}

fn start(args: &FastTryArgs) -> Result<(), String> {
    let running: Vec<_> = pid_files(&args.root)?
        .into_iter()
        .filter(|(_, _, pid)| alive(*pid) && is_dledger_server(*pid))
        .collect();
    if !running.is_empty() {
        let list: Vec<String> = running
            .iter()
            .map(|(n, _, p)| format!("{n} (pid {p})"))
            .collect();
        println!(
            "fast-try: already running: {}; nothing changed (dledger fast-try stop first)",
            list.join(", ")
        );
        return Ok(());
    }
    let nodes = load_nodes(&args.conf_dir)?;
    let exe = std::env::current_exe().map_err(|e| format!("finding the dledger binary: {e}"))?;
    for dir in [pid_dir(&args.root), args.root.join("logs")] {
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    // Stale pid files (their processes are gone) would confuse a later stop.
    for (_, path, _) in pid_files(&args.root)? {
        fs::remove_file(&path).map_err(|e| format!("removing {}: {e}", path.display()))?;
    }
    let mut children: Vec<(String, Child)> = Vec::with_capacity(nodes.len() + 1);
    if let Some(ns) = nodes[0].config.namesrv.first() {
        let port = ns.port.to_string();
        match spawn(&exe, &["namesrv", "--port", &port], "namesrv", &args.root) {
            Ok(child) => {
                println!(
                    "fast-try: started namesrv (pid {}) on port {port}, log {}",
                    child.id(),
                    log_path(&args.root, "namesrv").display()
                );
                children.push(("namesrv".into(), child));
            }
            Err(e) => return Err(e),
        }
    }
    for node in &nodes {
        let conf = node.conf.to_string_lossy();
        match spawn(&exe, &["server", "-c", &conf], &node.name, &args.root) {
            Ok(child) => {
                println!(
                    "fast-try: started {} (pid {}) from {}, log {}",
                    node.name,
                    child.id(),
                    node.conf.display(),
                    log_path(&args.root, &node.name).display()
                );
                children.push((node.name.clone(), child));
            }
            Err(e) => {
                let _ = stop(args);
                return Err(e);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_millis(args.wait_ms);
    loop {
        for (name, child) in &mut children {
            if let Ok(Some(status)) = child.try_wait() {
                let log = log_path(&args.root, name);
                let tail = log_tail(&log);
                let _ = stop(args);
                return Err(format!(
                    "{name} exited during start ({status}); last lines of {}:\n{tail}",
                    log.display()
                ));
            }
        }
        let views = poll_views(&nodes);
        if every_group_has_leader(&nodes, &views) {
            print!("{}", render(&views, false));
            return Ok(());
        }
        if Instant::now() >= deadline {
            print!("{}", render(&views, false));
            return Err(format!(
                "no leader within {} ms; the nodes are left running (fast-try stop ends them)",
                args.wait_ms
            ));
        }
        std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
    }
}

fn spawn(exe: &Path, cmd_args: &[&str], name: &str, root: &Path) -> Result<Child, String> {
    let log = log_path(root, name);
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("opening {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("opening {}: {e}", log.display()))?;
    let mut cmd = Command::new(exe);
    cmd.args(cmd_args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("starting {} for {name}: {e}", exe.display()))?;
    let pid_file = pid_dir(root).join(format!("{name}.pid"));
    fs::write(&pid_file, format!("{}\n", child.id()))
        .map_err(|e| format!("writing {}: {e}", pid_file.display()))?;
    Ok(child)
}

fn poll_views(nodes: &[Node]) -> Vec<NodeView> {
    let timeout = Duration::from_millis(POLL_INTERVAL_MS * 5);
    nodes
        .iter()
        .map(|n| {
            let addr = n.config.client_listen.to_string();
            let v = cluster_view(&addr, timeout);
            (addr, v)
        })
        .collect()
}

fn every_group_has_leader(nodes: &[Node], views: &[NodeView]) -> bool {
    let mut groups: Vec<&str> = nodes
        .iter()
        .flat_map(|n| n.config.groups.iter().map(|g| g.name.as_str()))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups.iter().all(|g| {
        views.iter().any(|(_, v)| {
            v.as_ref().is_ok_and(|v| {
                v.rows.iter().any(|r| {
                    r.group == *g && bid(r.role, v.node_id, r.ledger_end, r.commit_index) == 0
                })
            })
        })
    })
}

fn stop(args: &FastTryArgs) -> Result<(), String> {
    let files = pid_files(&args.root)?;
    if files.is_empty() {
        println!(
            "fast-try: nothing to stop (no pid files in {})",
            pid_dir(&args.root).display()
        );
        return Ok(());
    }
    let mut targets = Vec::new();
    for (name, _, pid) in &files {
        if !alive(*pid) {
            println!("fast-try: {name} (pid {pid}) is not running");
        } else if !is_dledger_server(*pid) {
            println!("fast-try: pid {pid} of {name} is not a dledger server now; not signalled");
        } else {
            match kill(Pid::from_raw(*pid), Signal::SIGTERM) {
                Ok(()) => targets.push((name.clone(), *pid)),
                Err(e) => println!("fast-try: SIGTERM to {name} (pid {pid}): {e}"),
            }
        }
    }
    let left = wait_gone(&targets, args.wait_ms);
    for (name, pid) in &left {
        println!("fast-try: {name} (pid {pid}) ignored SIGTERM; sending SIGKILL");
        if let Err(e) = kill(Pid::from_raw(*pid), Signal::SIGKILL) {
            println!("fast-try: SIGKILL to {name} (pid {pid}): {e}");
        }
    }
    let still = wait_gone(&left, KILL_WAIT_MS);
    for (_, path, _) in &files {
        fs::remove_file(path).map_err(|e| format!("removing {}: {e}", path.display()))?;
    }
    if !still.is_empty() {
        return Err(format!("still running after SIGKILL: {still:?}"));
    }
    for (name, pid) in &targets {
        println!("fast-try: stopped {name} (pid {pid})");
    }
    Ok(())
}

/// Waits up to `wait_ms` for `pids` to end; returns those still running.
fn wait_gone(pids: &[(String, i32)], wait_ms: u64) -> Vec<(String, i32)> {
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    loop {
        let left: Vec<_> = pids.iter().filter(|(_, p)| alive(*p)).cloned().collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS / 4));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::from_args(&["dledger"], args).map_err(|e| e.output)
    }

    #[test]
    fn ops_subcommands_parse_with_defaults() {
        let Ok(Cli {
            command: Some(Command::FastTry(f)),
            ..
        }) = parse(&["fast-try", "start"])
        else {
            panic!("fast-try start")
        };
        assert_eq!(f.action, "start");
        assert_eq!(f.conf_dir, PathBuf::from("conf/dledger"));
        assert_eq!(f.root, PathBuf::from("/tmp/rmqstore"));
        let Ok(Cli {
            command: Some(Command::ClusterList(c)),
            ..
        }) = parse(&["cluster-list", "-n", "127.0.0.1:9876", "--json"])
        else {
            panic!("cluster-list")
        };
        assert_eq!(c.namesrv.as_deref(), Some("127.0.0.1:9876"));
        assert!(c.json && c.peers.is_none());
        let Ok(Cli {
            command: Some(Command::Namesrv(n)),
            ..
        }) = parse(&["namesrv"])
        else {
            panic!("namesrv")
        };
        assert_eq!(n.port, 9876);
    }

    #[test]
    fn unknown_action_and_missing_conf_dir_are_clear_errors() {
        let mut args = FastTryArgs {
            action: "restart".into(),
            conf_dir: PathBuf::from("/nonexistent/conf"),
            root: std::env::temp_dir().join(format!("fast-try-unit-{}", std::process::id())),
            wait_ms: 100,
        };
        assert!(run(args.clone()).is_err_and(|e| e.contains("start or stop")));
        args.action = "start".into();
        assert!(run(args.clone()).is_err_and(|e| e.contains("--conf-dir /nonexistent/conf")));
        let _ = fs::remove_dir_all(&args.root);
    }
}

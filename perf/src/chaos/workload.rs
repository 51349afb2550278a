//! The clients: concurrent tasks per group appending unique values through the client
//! library and recording every call, plus occasional read-backs of acknowledged values.
//!
//! All tasks run on one glommio executor thread (the client library's model); the
//! nemesis and the proxies run on other threads, so faults never wait for the clients.
//! Appends do not retry unknown outcomes (`retry_unknown_outcome = false`): every call's
//! outcome is then exactly acked, refused, or unknown.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dledger::config::HostPort;
use dledger_shards::client::{Client, ClientOptions, block_on};

use super::checker::{Attempt, Outcome};
use super::value::{ValueId, encode};

/// Calls recorded at most; past this the clients stop appending (a bound on memory for
/// very long runs: ~100 MB of history).
pub const ATTEMPTS_MAX: u64 = 2_000_000;
/// Pause after a failed call, so a client without a leader does not spin.
const FAILURE_PAUSE_MS: u64 = 20;
/// How long the clients try to reach the cluster at the start.
const CONNECT_WAIT_MS: u64 = 30_000;
/// Bytes asked for when reading one value back.
const READ_BACK_BYTES: u32 = 4096;

/// What the clients do.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub run: u64,
    pub peers: Vec<HostPort>,
    pub groups: Vec<String>,
    pub clients_per_group: u32,
    /// Every this many acknowledged appends a client reads its value back (0: never).
    pub read_back_every: u64,
}

/// Live counters, for progress lines.
#[derive(Debug, Default)]
pub struct Progress {
    pub attempted: AtomicU64,
    pub acked: AtomicU64,
}

/// What the clients saw.
#[derive(Debug, Default)]
pub struct History {
    pub attempts: Vec<Attempt>,
    pub reads: u64,
    /// Acknowledged values that a read at their index did not return.
    pub read_mismatches: Vec<String>,
}

/// The client options of the chaos clients: no retry of unknown outcomes, bounded calls.
pub fn client_options() -> ClientOptions {
    ClientOptions {
        retry_unknown_outcome: false,
        call_deadline_ms: 10_000,
        ..ClientOptions::default()
    }
}

/// Runs the clients on a new thread until `stop`; the thread returns the history.
pub fn spawn(
    cfg: WorkloadConfig,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
) -> std::io::Result<std::thread::JoinHandle<Result<History, String>>> {
    std::thread::Builder::new()
        .name("chaos-clients".into())
        .spawn(move || block_on("chaos-clients", move || run(cfg, epoch, stop, progress))?)
}

async fn run(
    cfg: WorkloadConfig,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
) -> Result<History, String> {
    let history = Rc::new(RefCell::new(History::default()));
    let mut tasks = Vec::new();
    for (g, group) in cfg.groups.iter().enumerate() {
        let client = Rc::new(connect(&cfg.peers, group).await?);
        for c in 0..cfg.clients_per_group {
            let task = ClientTask {
                run: cfg.run,
                group: g as u32,
                client: c,
                read_back_every: cfg.read_back_every,
                epoch,
                stop: stop.clone(),
                progress: progress.clone(),
                history: history.clone(),
            };
            tasks.push(glommio::spawn_local(task.run(client.clone())));
        }
    }
    for t in tasks {
        t.await;
    }
    Rc::try_unwrap(history)
        .map(RefCell::into_inner)
        .map_err(|_| "client tasks still hold the history".to_string())
}

async fn connect(peers: &[HostPort], group: &str) -> Result<Client, String> {
    let until = Instant::now() + Duration::from_millis(CONNECT_WAIT_MS);
    loop {
        match Client::connect(peers.to_vec(), group, client_options()).await {
            Ok(c) => return Ok(c),
            // No node answered yet (still starting): try again shortly.
            Err(_) if Instant::now() < until => {
                glommio::timer::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(format!("clients cannot reach group {group}: {e}")),
        }
    }
}

struct ClientTask {
    run: u64,
    group: u32,
    client: u32,
    read_back_every: u64,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
    history: Rc<RefCell<History>>,
}

impl ClientTask {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    async fn run(self, client: Rc<Client>) {
        let mut seq = 0u64;
        let mut acked = 0u64;
        while !self.stop.load(Ordering::SeqCst)
            && self.progress.attempted.load(Ordering::Relaxed) < ATTEMPTS_MAX
        {
            let id = ValueId {
                group: self.group,
                client: self.client,
                seq,
            };
            seq += 1;
            let body = Bytes::from(encode(self.run, id));
            self.progress.attempted.fetch_add(1, Ordering::Relaxed);
            let invoked_us = self.now_us();
            let result = client.append(std::slice::from_ref(&body)).await;
            let completed_us = self.now_us();
            let outcome = match &result {
                Ok(entries) => match entries.first() {
                    Some(e) => Outcome::Acked { index: e.index },
                    // The client checks the count; an empty answer would be its bug.
                    None => Outcome::Unknown,
                },
                Err(e) if e.outcome_unknown => Outcome::Unknown,
                Err(_) => Outcome::Failed,
            };
            self.history.borrow_mut().attempts.push(Attempt {
                id,
                invoked_us,
                completed_us,
                outcome,
            });
            match outcome {
                Outcome::Acked { index } => {
                    self.progress.acked.fetch_add(1, Ordering::Relaxed);
                    acked += 1;
                    if self.read_back_every > 0 && acked % self.read_back_every == 0 {
                        self.read_back(&client, id, index, &body).await;
                    }
                }
                _ => glommio::timer::sleep(Duration::from_millis(FAILURE_PAUSE_MS)).await,
            }
        }
    }

    /// Reads `index` back; a committed entry there must be `body`.
    async fn read_back(&self, client: &Client, id: ValueId, index: u64, body: &Bytes) {
        let Ok(r) = client.get(index, READ_BACK_BYTES).await else {
            return; // unavailable now: the final read-back covers it
        };
        let mut h = self.history.borrow_mut();
        h.reads += 1;
        if let Some(e) = r.entries.first().filter(|e| e.index == index)
            && e.body != body
        {
            h.read_mismatches.push(format!(
                "read-back: {id} acknowledged at index {index}, which reads {:?}",
                String::from_utf8_lossy(&e.body)
            ));
        }
    }
}

//! `dledger append`: append COUNT copies of DATA, pipelined, and report throughput and
//! latency.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use argh::FromArgs;
use bytes::Bytes;
use hdrhistogram::Histogram;

use crate::client::{ClientError, block_on};

/// Append entries to a group (COUNT appends of DATA, up to WINDOW in flight).
#[derive(FromArgs, Debug, Clone, PartialEq, Eq)]
#[argh(subcommand, name = "append")]
pub struct AppendArgs {
    /// client addresses of the group's nodes, host:port separated by ';' or ','
    #[argh(option)]
    pub peers: String,
    /// the group (e.g. RaftNode00)
    #[argh(option)]
    pub group: String,
    /// the entry body (UTF-8 text)
    #[argh(option, short = 'd')]
    pub data: String,
    /// how many appends (default 1)
    #[argh(option, short = 'c', default = "1")]
    pub count: u64,
    /// appends in flight at once (default 64)
    #[argh(option, default = "64")]
    pub window: u32,
    /// give up on one append after this many ms of retries (default 15000)
    #[argh(option, default = "15000")]
    pub timeout_ms: u64,
}

/// Latencies recorded in microseconds, up to one hour, 3 significant digits.
const LATENCY_MAX_US: u64 = 3_600_000_000;

pub fn run(args: AppendArgs) -> Result<(), String> {
    if args.count == 0 {
        return Err("-c/--count must be at least 1".into());
    }
    if args.window == 0 {
        return Err("--window must be at least 1".into());
    }
    block_on("dledger-append", move || append(args))?
}

async fn append(args: AppendArgs) -> Result<(), String> {
    let client = Rc::new(
        super::connect(
            &args.peers,
            &args.group,
            super::client_options(args.timeout_ms),
        )
        .await?,
    );
    let body = Bytes::from(args.data.clone().into_bytes());
    let hist = Histogram::<u64>::new_with_bounds(1, LATENCY_MAX_US, 3)
        .map_err(|e| format!("latency histogram: {e}"))?;
    let hist = Rc::new(RefCell::new(hist));
    let issued = Rc::new(Cell::new(0u64));
    let done = Rc::new(Cell::new(0u64));
    let last_index = Rc::new(Cell::new(None::<u64>));
    let failure: Rc<RefCell<Option<ClientError>>> = Rc::new(RefCell::new(None));
    let started = Instant::now();
    let workers = u64::from(args.window).min(args.count);
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (client, body, hist) = (client.clone(), body.clone(), hist.clone());
        let (issued, done, last_index, failure) = (
            issued.clone(),
            done.clone(),
            last_index.clone(),
            failure.clone(),
        );
        let count = args.count;
        tasks.push(glommio::spawn_local(async move {
            while failure.borrow().is_none() && issued.get() < count {
                issued.set(issued.get() + 1);
                let t = Instant::now();
                match client.append(std::slice::from_ref(&body)).await {
                    Ok(entries) => {
                        let us = t.elapsed().as_micros().min(u128::from(LATENCY_MAX_US)) as u64;
                        hist.borrow_mut().saturating_record(us.max(1));
                        done.set(done.get() + 1);
                        let idx = entries.iter().map(|e| e.index).max();
                        last_index.set(last_index.get().max(idx));
                    }
                    Err(e) => {
                        failure.borrow_mut().get_or_insert(e);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await;
    }
    let elapsed = started.elapsed();
    let done = done.get();
    if let Some(i) = last_index.get() {
        println!("last index: {i}");
    }
    let hist = hist.borrow();
    if done > 0 {
        let secs = elapsed.as_secs_f64().max(1e-9);
        println!(
            "appended {done} entries of {} bytes to {} in {:.3} s: {:.0} appends/s; latency \
             p50 {} us, p99 {} us, max {} us (window {}, redirects {}, retries {})",
            body.len(),
            args.group,
            secs,
            done as f64 / secs,
            hist.value_at_quantile(0.50),
            hist.value_at_quantile(0.99),
            hist.max(),
            workers,
            client.stats().redirects,
            client.stats().retries,
        );
    }
    match failure.borrow_mut().take() {
        Some(e) => Err(super::describe(
            &e,
            &format!("append failed after {done} of {} succeeded", args.count),
        )),
        None => Ok(()),
    }
}

//! Loopback round trip of one small item through the peer transport: A's writer → B's
//! reader → B's handler enqueues an echo → B's writer → A's reader. A measurement, not a
//! check: run with
//! `cargo test --release -p dledger-shards --test it net_latency -- --ignored --nocapture`.

use crate::net_support;

use std::{
    cell::RefCell,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use dledger::raft::NodeId;
use dledger_shards::net::{FrameRejected, PeerFrameHandler, PeerSender};
use glommio::channels::local_channel::{LocalReceiver, LocalSender, new_bounded};
use net_support::*;

const A: u32 = 1;
const B: u32 = 2;
const WARM_UP: usize = 500;
const ROUND_TRIPS: usize = 20_000;

/// On B: sends every received item back. On A: signals the waiting script.
struct Echo {
    echo_to: RefCell<Option<PeerSender<Vec<u8>>>>,
    arrived_tx: LocalSender<()>,
    arrived_rx: RefCell<Option<LocalReceiver<()>>>,
}

impl Echo {
    fn new() -> Self {
        let (arrived_tx, arrived_rx) = new_bounded(1024);
        Self {
            echo_to: RefCell::new(None),
            arrived_tx,
            arrived_rx: RefCell::new(Some(arrived_rx)),
        }
    }
}

impl PeerFrameHandler for Echo {
    fn on_peer_frame(
        &self,
        _from: NodeId,
        _shard: u32,
        payload: bytes::Bytes,
    ) -> Result<(), FrameRejected> {
        for item in dledger_shards::net::split_length_prefixed(&payload) {
            let item = item.map_err(FrameRejected)?;
            match &*self.echo_to.borrow() {
                Some(sender) => {
                    sender
                        .try_send(item.to_vec())
                        .map_err(|e| FrameRejected(e.to_string()))?;
                }
                None => {
                    let _ = self.arrived_tx.try_send(());
                }
            }
        }
        Ok(())
    }

    /// The latency probe measures frames only; liveness does not matter to it.
    fn on_peer_liveness(&self, _peer: NodeId, _alive: bool) {}
}

#[test]
#[ignore = "measurement; run explicitly with --release"]
fn loopback_round_trip_latency() {
    let (port_a, port_b) = (free_port(), free_port());
    let nodes = [(A, port_a), (B, port_b)];
    let samples: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let done = samples.clone();

    let node_b = TestNode::start(
        1,
        config("lat", B, &nodes),
        |_| Echo::new(),
        |s: ShardScript<Echo>| async move {
            *s.handler.echo_to.borrow_mut() = Some(s.net.sender(A).expect("peer").clone());
        },
    );
    let node_a = TestNode::start(
        1,
        config("lat", A, &nodes),
        |_| Echo::new(),
        move |s: ShardScript<Echo>| {
            let done = done.clone();
            async move {
                let sender = s.net.sender(B).expect("peer").clone();
                let arrived = s.handler.arrived_rx.borrow_mut().take().expect("receiver");
                let mut rtts = Vec::with_capacity(ROUND_TRIPS);
                let payload = vec![0x5A; 64];
                for i in 0..WARM_UP + ROUND_TRIPS {
                    let start = Instant::now();
                    sender
                        .try_send(payload.clone())
                        .expect("one in flight fits");
                    if arrived.recv().await.is_none() {
                        return;
                    }
                    if i >= WARM_UP {
                        rtts.push(start.elapsed());
                    }
                }
                *done.lock().expect("samples") = rtts;
            }
        },
    );
    wait_until("the round trips finish", || {
        !samples.lock().expect("samples").is_empty()
    });
    let mut rtts = samples.lock().expect("samples").clone();
    rtts.sort_unstable();
    let at = |q: f64| rtts[((rtts.len() as f64 * q) as usize).min(rtts.len() - 1)];
    println!(
        "peer transport loopback RTT, 64-byte item, {} samples: p50 {:?}  p90 {:?}  p99 {:?}  p99.9 {:?}  max {:?}",
        rtts.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(0.999),
        rtts[rtts.len() - 1]
    );
    node_a.stop();
    node_b.stop();
}

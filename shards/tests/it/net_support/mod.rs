//! Shared set-up of the peer transport tests: test "nodes" (a runtime of N shards with a
//! `PeerNet` each) inside the test process, on 127.0.0.1 with free ports.

use std::{
    collections::HashMap,
    future::Future,
    io::{Read, Write},
    net::{SocketAddr, TcpStream as StdTcpStream},
    rc::Rc,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use dledger::raft::NodeId;
use dledger_shards::{
    net::{
        FrameRejected, LengthPrefixedCodec, NetStats, PeerFrameHandler, PeerNet, PeerNetConfig,
        frame::{self, FRAME_HEADER_BYTES, FrameKind, Hello, PROTOCOL_VERSION},
        split_length_prefixed,
    },
    runtime::{Runtime, RuntimeConfig, ShardStop, StopHandle},
};

/// A bound for "eventually": liveness only, never a speed assertion.
pub const EVENTUALLY: Duration = Duration::from_secs(10);

/// Ports from the binary's one allocator (never an ephemeral port, never one handed out
/// before in this process).
pub use crate::common::ports::free_port;

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A config for `self_id` among `nodes` (id, port), with small bounds and quick backoff.
pub fn config(cluster: &str, self_id: NodeId, nodes: &[(NodeId, u16)]) -> PeerNetConfig {
    let map: HashMap<NodeId, SocketAddr> =
        nodes.iter().map(|&(id, port)| (id, addr(port))).collect();
    let listen = map[&self_id];
    let mut config = PeerNetConfig::new(cluster, self_id, listen, map);
    config.backoff_min_ms = 5;
    config.backoff_max_ms = 100;
    config.max_frame_bytes = 1 << 20;
    config.queue_capacity = 1024;
    config
}

pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + EVENTUALLY;
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One received frame, as the recording handler saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub local_shard: usize,
    pub from: NodeId,
    pub from_shard: u32,
    pub items: Vec<Vec<u8>>,
}

/// Records every frame into a list shared with the test thread.
pub struct Recorder {
    pub local_shard: usize,
    pub log: Arc<Mutex<Vec<Received>>>,
    /// Liveness transitions: (local shard, peer, alive).
    pub liveness: Arc<Mutex<Vec<(usize, NodeId, bool)>>>,
}

impl PeerFrameHandler for Recorder {
    fn on_peer_frame(
        &self,
        from: NodeId,
        from_shard: u32,
        payload: bytes::Bytes,
    ) -> Result<(), FrameRejected> {
        let items = split_length_prefixed(&payload)
            .map(|item| item.map(<[u8]>::to_vec))
            .collect::<Result<Vec<_>, _>>()
            .map_err(FrameRejected)?;
        self.log.lock().expect("log lock").push(Received {
            local_shard: self.local_shard,
            from,
            from_shard,
            items,
        });
        Ok(())
    }

    fn on_peer_liveness(&self, peer: NodeId, alive: bool) {
        self.liveness
            .lock()
            .expect("liveness lock")
            .push((self.local_shard, peer, alive));
    }
}

/// What a test script running on one shard gets.
pub struct ShardScript<H> {
    pub shard_id: usize,
    pub net: Rc<PeerNet<Vec<u8>>>,
    pub handler: Rc<H>,
    pub stop: ShardStop,
}

pub struct TestNode {
    runtime: Option<Runtime<Result<(), String>>>,
    stop: StopHandle,
    /// Per shard, published once its transport started.
    pub stats: Arc<Mutex<HashMap<usize, Arc<NetStats>>>>,
}

impl TestNode {
    /// Starts `shards` shards, each with a transport whose handler `make_handler(shard)`
    /// builds, then runs `script` on each shard and waits for the stop.
    pub fn start<H, MH, S, Fut>(
        shards: usize,
        config: PeerNetConfig,
        make_handler: MH,
        script: S,
    ) -> Self
    where
        H: PeerFrameHandler,
        MH: Fn(usize) -> H + Send + Clone + 'static,
        S: Fn(ShardScript<H>) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let runtime_config = RuntimeConfig {
            shards: Some(shards),
            pin: false,
            io_memory_bytes: 256 << 10,
            mesh_channel_capacity: 16,
            thread_name: format!("node{}-shard", config.self_id),
            ..RuntimeConfig::default()
        };
        let stats = Arc::new(Mutex::new(HashMap::new()));
        let published = stats.clone();
        let config = Arc::new(config);
        let runtime = Runtime::start(&runtime_config, move |mut context| {
            let config = config.clone();
            let make_handler = make_handler.clone();
            let script = script.clone();
            let published = published.clone();
            async move {
                let handler = Rc::new(make_handler(context.shard_id));
                let net = PeerNet::start::<(), _, _>(
                    &mut context,
                    Rc::new((*config).clone()),
                    Rc::new(LengthPrefixedCodec),
                    handler.clone(),
                )
                .map_err(|e| e.to_string())?;
                published
                    .lock()
                    .expect("stats lock")
                    .insert(context.shard_id, net.stats().clone());
                script(ShardScript {
                    shard_id: context.shard_id,
                    net: Rc::new(net),
                    handler,
                    stop: context.stop.clone(),
                })
                .await;
                context.stop.wait().await;
                Ok(())
            }
        })
        .expect("start the test node");
        let stop = runtime.stop_handle();
        let node = Self {
            runtime: Some(runtime),
            stop,
            stats,
        };
        wait_until("every shard started its transport", || {
            node.stats.lock().expect("stats lock").len() == shards
        });
        node
    }

    /// A counter summed over the shards.
    pub fn total(&self, counter: impl Fn(&NetStats) -> &std::sync::atomic::AtomicU64) -> u64 {
        self.stats
            .lock()
            .expect("stats lock")
            .values()
            .map(|stats| NetStats::get(counter(stats)))
            .sum()
    }

    /// Stops every shard and waits for them; panics if a shard failed.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            self.stop.stop();
            let results = runtime.join().expect("shards end cleanly");
            for result in results {
                result.expect("shard script ok");
            }
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            self.stop.stop();
            let _ = runtime.join();
        }
    }
}

/// A blocking client speaking the raw frame protocol, for handshake and bad-input tests.
pub struct RawPeer {
    pub stream: StdTcpStream,
}

impl RawPeer {
    pub fn connect(port: u16) -> Self {
        let stream = StdTcpStream::connect(addr(port)).expect("connect to the test node");
        stream
            .set_read_timeout(Some(EVENTUALLY))
            .expect("read timeout");
        Self { stream }
    }

    pub fn send_hello(&mut self, cluster: &str, node_id: NodeId, shard_id: u32) {
        let mut frame = Vec::new();
        Hello {
            node_id,
            shard_id,
            shard_count: 2,
            protocol_version: PROTOCOL_VERSION,
            cluster: cluster.to_owned(),
        }
        .encode_frame(&mut frame);
        self.stream.write_all(&frame).expect("send hello");
    }

    /// Reads one frame: (kind, payload).
    pub fn read_frame(&mut self) -> std::io::Result<(FrameKind, Vec<u8>)> {
        let mut header = [0u8; FRAME_HEADER_BYTES];
        self.stream.read_exact(&mut header)?;
        let header = frame::decode_header(&header, 1 << 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let mut payload = vec![0u8; header.payload_len];
        self.stream.read_exact(&mut payload)?;
        Ok((header.kind, payload))
    }

    /// Sends one Batch frame of length-prefixed items.
    pub fn send_batch(&mut self, items: &[&[u8]]) {
        let mut payload = Vec::new();
        for item in items {
            payload.extend_from_slice(&(item.len() as u32).to_be_bytes());
            payload.extend_from_slice(item);
        }
        let mut frame = Vec::new();
        frame::encode_header(FrameKind::Batch, payload.len(), &mut frame);
        frame.extend_from_slice(&payload);
        self.stream.write_all(&frame).expect("send batch");
    }

    /// True once the peer closed the connection (EOF or reset), reading and discarding.
    pub fn closed_by_peer(&mut self) -> bool {
        let mut sink = [0u8; 256];
        loop {
            match self.stream.read(&mut sink) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Sleeps on the shard (yields to the transport tasks).
pub async fn pause_ms(ms: u64) {
    glommio::timer::sleep(Duration::from_millis(ms)).await;
}

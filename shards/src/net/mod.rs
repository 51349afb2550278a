//! The peer transport: batched, bounded, one connection per (peer node, shard).
//!
//! ```text
//!  node A, shard s                                   node B, shard s
//!  group g1 ─┐                                      ┌─▶ PeerFrameHandler::on_peer_frame
//!  group g2 ─┼─▶ PeerSender(B) ─▶ writer ══ TCP ══▶ reader
//!  group g3 ─┘   (bounded queue)  (one write per wake-up: every queued item, as frames)
//! ```
//!
//! - Outbound ([`sender`]): each shard keeps one [`PeerSender`] per peer node; its writer
//!   connects to the peer, introduces itself with a Hello (cluster, node id, shard id,
//!   protocol version) and streams Batch frames. `try_send` never blocks: a full queue
//!   is OVERLOADED.
//! - Inbound ([`inbound`]): every shard accepts on the node's peer address, checks the
//!   Hello (cluster, known node id, source address) and moves the connection to the
//!   shard named in it; frames go to the shard's [`PeerFrameHandler`].
//! - Frames ([`frame`]): a 12-byte header with a length checked against
//!   `max_frame_bytes` before any buffer grows; malformed input closes that connection.
//!
//! Connections carry Raft traffic one way (dialer → acceptor): a node answers a peer
//! over its own outbound connection to it. The acceptor sends only keepalives back; the
//! dialer reads them on a second descriptor of its socket, so it sees the peer close at
//! once even when idle, and a silent peer turn down after `liveness_timeout_ms`
//! ([`liveness`]: node-level liveness, reported to the handler per transition).
//!
//! The transport runs until the shard stops ([`crate::runtime::ShardStop`]); a
//! [`PeerNet`] is only the handle to its senders and counters.
//!
//! Relation to `dledger::wire`: this module's 12-byte envelope and Hello predate the
//! wire codecs. Moving onto them means: Batch frames become `wire::Kind::PeerBatch`
//! frames written by a [`PeerCodec`] that uses `wire::PeerBatchWriter` (heartbeat
//! sections first), the reader cuts frames with `wire::FrameDecoder`, the handshake
//! sends `wire::Hello` both ways (its `target_shard` is the shard handoff key used here)
//! and a refusal becomes a `wire::ErrorResponse`. Queues, writers, backoff, handoff and
//! the reader's bounds stay as they are.

mod backoff;
mod codec;
mod config;
pub mod frame;
mod gather_write;
mod inbound;
pub mod listen;
mod liveness;
pub mod recv;
mod sender;
mod stats;

use std::{collections::HashMap, future::Future, net::SocketAddr, rc::Rc, sync::Arc};

use dledger::raft::NodeId;
use glommio::{
    channels::channel_mesh::{Receivers, Senders},
    net::TcpListener,
};

pub use backoff::Backoff;
pub use codec::{BatchEncoded, LengthPrefixedCodec, PeerCodec, split_length_prefixed};
pub use config::{
    DEFAULT_BACKOFF_MAX_MS, DEFAULT_BACKOFF_MIN_MS, DEFAULT_CONNECT_TIMEOUT_MS,
    DEFAULT_HELLO_TIMEOUT_MS, DEFAULT_KEEPALIVE_INTERVAL_MS, DEFAULT_LIVENESS_TIMEOUT_MS,
    DEFAULT_MAX_FRAME_BYTES, DEFAULT_QUEUE_CAPACITY, DEFAULT_READ_BUFFER_BYTES,
    DEFAULT_WRITE_BUFFER_BYTES_MAX, PeerNetConfig,
};
pub use frame::{FrameError, Hello, RejectReason};
pub use inbound::{FrameRejected, PeerFrameHandler, PeerHandoff, validate_hello};
pub use sender::{PeerSender, SendError};
pub use stats::NetStats;

use crate::runtime::{ShardContext, ShardStop};

/// Why a peer connection (or the transport) failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("peer transport config: {0}")]
    Config(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the peer refused our hello: {0}")]
    Refused(RejectReason),
    #[error("expected node {expected} at this address, node {got} answered")]
    WrongPeer { expected: NodeId, got: NodeId },
    #[error("frame refused by the handler: {0}")]
    Handler(FrameRejected),
    #[error("the peer handoff channels were already taken from this shard context")]
    HandoffTaken,
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The cross-shard channels that move accepted peer connections (one per shard, built by
/// the runtime at start-up).
#[derive(Debug)]
pub struct PeerHandoffMesh {
    pub tx: Senders<PeerHandoff>,
    pub rx: Receivers<PeerHandoff>,
}

/// Runs `work` unless the shard stops first (`None` then).
pub(crate) async fn until_stop<F: Future>(stop: &ShardStop, work: F) -> Option<F::Output> {
    futures_lite::future::or(async { Some(work.await) }, async {
        stop.wait().await;
        None
    })
    .await
}

/// One shard's peer transport: its senders to every peer, its listener and readers.
#[derive(Debug)]
pub struct PeerNet<T> {
    senders: HashMap<NodeId, PeerSender<T>>,
    stats: Arc<NetStats>,
    local_addr: SocketAddr,
}

impl<T: 'static> PeerNet<T> {
    /// Starts this shard's part of the transport: a listener on `config.listen_addr`,
    /// the handoff receivers, and a writer per peer, all on the replication queue.
    /// Takes the handoff channels out of `context` (callable once per shard).
    pub fn start<M, C, H>(
        context: &mut ShardContext<M>,
        config: Rc<PeerNetConfig>,
        codec: Rc<C>,
        handler: Rc<H>,
    ) -> Result<Self, NetError>
    where
        M: Send + 'static,
        C: PeerCodec<Item = T>,
        H: PeerFrameHandler,
    {
        config.validate().map_err(NetError::Config)?;
        let shard_id = u32::try_from(context.shard_id)
            .map_err(|_| NetError::Config("shard id above u32".to_owned()))?;
        let shard_count = u32::try_from(context.shard_count)
            .map_err(|_| NetError::Config("shard count above u32".to_owned()))?;
        let handoff = context.handoff.take().ok_or(NetError::HandoffTaken)?;
        // A node binds its peer port once, exclusively (see [`listen`]); standalone users
        // (tests) let every shard bind with SO_REUSEPORT.
        let listener = match &config.listener {
            Some(shared) => listen::shard_listener(shared),
            None => TcpListener::bind(config.listen_addr).map_err(std::io::Error::from),
        }
        .map_err(|e| NetError::Listen {
            addr: config.listen_addr,
            source: e,
        })?;
        let local_addr = listener.local_addr().map_err(|e| NetError::Listen {
            addr: config.listen_addr,
            source: e.into(),
        })?;
        let stats = Arc::new(NetStats::default());
        let queue = context.queues.replication;
        let inbound = Rc::new(inbound::Inbound {
            config: config.clone(),
            handler: handler.clone(),
            stats: stats.clone(),
            stop: context.stop.clone(),
            queue,
            shard_id: context.shard_id,
            shard_count: context.shard_count,
        });
        let spawn = |task: std::pin::Pin<Box<dyn Future<Output = ()>>>| {
            glommio::spawn_local_into(task, queue)
                .map(|task| task.detach())
                .map_err(|e| NetError::Config(format!("cannot spawn a transport task: {e}")))
        };
        spawn(Box::pin(
            inbound.clone().accept_loop(listener, Rc::new(handoff.tx)),
        ))?;
        spawn(Box::pin(inbound.handoff_loop(handoff.rx)))?;

        let mut senders = HashMap::new();
        let sink: liveness::LivenessSink = {
            let handler = handler.clone();
            Rc::new(move |peer, alive| handler.on_peer_liveness(peer, alive))
        };
        for (peer, peer_addr) in config.peers() {
            let sender = PeerSender::new(peer, config.queue_capacity, stats.clone());
            let writer = sender::Writer {
                sender: sender.clone(),
                codec: codec.clone(),
                config: config.clone(),
                peer_addr,
                hello: Hello {
                    node_id: config.self_id,
                    shard_id,
                    shard_count,
                    protocol_version: frame::PROTOCOL_VERSION,
                    cluster: config.cluster.clone(),
                },
                stop: context.stop.clone(),
                liveness: liveness::PeerLiveness::new(peer, sink.clone()),
            };
            spawn(Box::pin(writer.run()))?;
            senders.insert(peer, sender);
        }
        tracing::debug!(shard = shard_id, %local_addr, peers = senders.len(), "peer transport started");
        Ok(Self {
            senders,
            stats,
            local_addr,
        })
    }

    /// The sender to `peer` from this shard (`None` for an unknown node or self).
    pub fn sender(&self, peer: NodeId) -> Option<&PeerSender<T>> {
        self.senders.get(&peer)
    }

    pub fn senders(&self) -> impl Iterator<Item = &PeerSender<T>> {
        self.senders.values()
    }

    /// This shard's counters (shareable with other threads).
    pub fn stats(&self) -> &Arc<NetStats> {
        &self.stats
    }

    /// The address this shard's listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

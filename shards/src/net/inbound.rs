//! Inbound: accept peer connections, check their Hello, serve each on the right shard.
//!
//! Every shard listens on the node's peer address (glommio sets SO_REUSEPORT), so the
//! kernel spreads accepted connections over the shards by a hash of the address pair,
//! not by the peer's shard. A connection from shard `s` of a peer must be read by local
//! shard `s` (where the groups it carries live, when both nodes run the same shard
//! count), so after the Hello the accepting shard passes the socket to shard `s`: it
//! duplicates the fd, drops its own glommio stream and sends the fd through the
//! bounded handoff mesh; shard `s` re-wraps it with `TcpStream::from_raw_fd`. That hop
//! happens once per connection; frames then go straight to the shard that owns them.
//! With a different peer shard count, peer shard `s` is served by `s % shard_count`
//! and the handler must route groups that live elsewhere.
//!
//! Shard `s` answers HelloAck itself, so the dialer only starts sending once the
//! connection sits where it will be read. Until then the acceptor reads exactly the
//! Hello bytes, so nothing is left behind in a buffer when the fd moves.

use std::{
    net::{IpAddr, SocketAddr},
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd},
    rc::Rc,
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use dledger::raft::NodeId;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::{
    GlommioError, ResourceType, TaskQueueHandle,
    channels::channel_mesh::{Receivers, Senders},
    net::{TcpListener, TcpStream},
};

use super::{
    NetError, PeerNetConfig,
    frame::{
        self, FRAME_HEADER_BYTES, FrameError, FrameKind, HELLO_PAYLOAD_BYTES_MAX, Hello, HelloAck,
        PROTOCOL_VERSION, RejectReason,
    },
    recv::RecvBuffer,
    stats::NetStats,
    until_stop,
};

/// Smallest receive region (a region must hold several reads).
const RECV_REGION_BYTES_MIN: usize = 64 << 10;
use crate::runtime::ShardStop;

/// A frame payload the handler could not accept. Closes that connection only.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FrameRejected(pub String);

/// Receives the Batch frames of every peer connection a shard serves.
///
/// Called on the shard's replication queue, once per frame, in connection order. The
/// payload is a slice of the connection's receive region (see [`super::recv`]): the
/// handler may keep parts of it (an Append's records) without copying.
pub trait PeerFrameHandler: 'static {
    /// `from`/`from_shard`: the sender, as its (validated) Hello said.
    fn on_peer_frame(
        &self,
        from: NodeId,
        from_shard: u32,
        payload: Bytes,
    ) -> Result<(), FrameRejected>;

    /// `peer`'s node turned up (`true`) or down (`false`) as this shard sees it (see
    /// [`super::liveness`]). Called on the shard once per transition; every peer starts
    /// down.
    fn on_peer_liveness(&self, peer: NodeId, alive: bool);
}

/// An accepted, handshaken peer connection on its way to the shard that serves it.
#[derive(Debug)]
pub struct PeerHandoff {
    fd: OwnedFd,
    hello: Hello,
    peer_addr: SocketAddr,
}

/// Checks a Hello against the configuration. `peer_ip` is the connection's source.
pub fn validate_hello(
    hello: &Hello,
    peer_ip: IpAddr,
    config: &PeerNetConfig,
) -> Result<(), RejectReason> {
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(RejectReason::ProtocolVersion);
    }
    if hello.cluster != config.cluster {
        return Err(RejectReason::WrongCluster);
    }
    if hello.node_id == config.self_id {
        return Err(RejectReason::UnknownNode);
    }
    let configured = config
        .nodes
        .get(&hello.node_id)
        .ok_or(RejectReason::UnknownNode)?;
    // An unspecified configured address (0.0.0.0) names no source to compare with.
    if !configured.ip().is_unspecified() && configured.ip().to_canonical() != peer_ip.to_canonical()
    {
        return Err(RejectReason::AddressMismatch);
    }
    Ok(())
}

/// What every inbound task of a shard shares.
pub(crate) struct Inbound<H: PeerFrameHandler> {
    pub config: Rc<PeerNetConfig>,
    pub handler: Rc<H>,
    pub stats: Arc<NetStats>,
    pub stop: ShardStop,
    pub queue: TaskQueueHandle,
    pub shard_id: usize,
    pub shard_count: usize,
}

impl<H: PeerFrameHandler> Inbound<H> {
    fn spawn(&self, task: impl std::future::Future<Output = ()> + 'static) {
        match glommio::spawn_local_into(task, self.queue) {
            Ok(task) => {
                task.detach();
            }
            Err(e) => tracing::error!(error = %e, "cannot spawn a peer connection task"),
        }
    }

    /// Accepts peer connections until the shard stops.
    pub(crate) async fn accept_loop(
        self: Rc<Self>,
        listener: TcpListener,
        handoff_tx: Rc<Senders<PeerHandoff>>,
    ) {
        loop {
            match until_stop(&self.stop, listener.accept()).await {
                None => return,
                Some(Ok(stream)) => {
                    NetStats::bump(&self.stats.accepted);
                    let this = self.clone();
                    let handoff_tx = handoff_tx.clone();
                    self.spawn(async move { this.handshake(stream, handoff_tx).await });
                }
                Some(Err(e)) => {
                    // EMFILE and the like: pause instead of spinning on the error.
                    tracing::warn!(error = %e, "accepting a peer connection failed");
                    if until_stop(&self.stop, glommio::timer::sleep(Duration::from_millis(50)))
                        .await
                        .is_none()
                    {
                        return;
                    }
                }
            }
        }
    }

    /// Serves the connections other shards hand to this one, until the shard stops.
    pub(crate) async fn handoff_loop(self: Rc<Self>, mut handoff_rx: Receivers<PeerHandoff>) {
        for (from_shard, receiver) in handoff_rx.streams() {
            let this = self.clone();
            self.spawn(async move {
                while let Some(Some(handoff)) = until_stop(&this.stop, receiver.recv()).await {
                    debug_assert_eq!(
                        handoff.hello.shard_id as usize % this.shard_count,
                        this.shard_id
                    );
                    tracing::trace!(
                        from_shard,
                        peer = handoff.hello.node_id,
                        "peer connection handed over"
                    );
                    // SAFETY: the fd is an open, connected TCP socket we own exclusively
                    // (the accepting shard dropped its own descriptor after dup'ing it).
                    let stream = unsafe { TcpStream::from_raw_fd(handoff.fd.into_raw_fd()) };
                    let serving = this.clone();
                    this.spawn(async move {
                        serving
                            .serve(stream, handoff.hello, handoff.peer_addr)
                            .await;
                    });
                }
            });
        }
    }

    /// Reads and checks the Hello, then serves here or hands the socket over.
    async fn handshake(
        self: Rc<Self>,
        mut stream: TcpStream,
        handoff_tx: Rc<Senders<PeerHandoff>>,
    ) {
        let peer_addr = match stream.peer_addr() {
            Ok(addr) => addr,
            Err(e) => {
                tracing::debug!(error = %e, "accepted peer connection has no address");
                return;
            }
        };
        let timeout = Duration::from_millis(self.config.hello_timeout_ms);
        // The socket's read timeout bounds each read; this bounds the whole Hello, so a
        // dialer trickling a byte just inside the read timeout is cut off all the same.
        let deadline = async {
            glommio::timer::sleep(timeout).await;
            Err(NetError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no complete hello within {} ms", timeout.as_millis()),
            )))
        };
        let hello = match futures_lite::future::or(read_hello(&mut stream, timeout), deadline).await
        {
            Ok(hello) => hello,
            Err(e) => {
                NetStats::bump(&self.stats.hellos_rejected);
                tracing::warn!(%peer_addr, error = %e, "bad hello from a peer connection");
                reject(&mut stream, RejectReason::Malformed).await;
                return;
            }
        };
        if let Err(reason) = validate_hello(&hello, peer_addr.ip(), &self.config) {
            NetStats::bump(&self.stats.hellos_rejected);
            tracing::warn!(
                %peer_addr,
                node = hello.node_id,
                cluster = %hello.cluster,
                %reason,
                "refusing a peer hello"
            );
            reject(&mut stream, reason).await;
            return;
        }
        let target = hello.shard_id as usize % self.shard_count;
        if target == self.shard_id {
            self.serve(stream, hello, peer_addr).await;
            return;
        }
        // SAFETY: the raw fd is valid while `stream` is alive; it is duplicated before
        // `stream` is dropped, so the handoff owns an independent descriptor of the socket.
        let dup = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) }.try_clone_to_owned();
        drop(stream);
        let fd = match dup {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!(%peer_addr, error = %e, "cannot duplicate a peer socket for its shard");
                return;
            }
        };
        match handoff_tx.try_send_to(
            target,
            PeerHandoff {
                fd,
                hello,
                peer_addr,
            },
        ) {
            Ok(()) => NetStats::bump(&self.stats.handed_off),
            Err(error) => {
                // The target shard is not draining its handoffs (or stopped): refuse, the
                // dialer retries.
                tracing::warn!(%peer_addr, target, %error, "cannot hand a peer connection to its shard");
                if let GlommioError::WouldBlock(ResourceType::Channel(handoff))
                | GlommioError::Closed(ResourceType::Channel(handoff)) = error
                {
                    // SAFETY: `handoff.fd` is the owned duplicate; wrapping moves ownership.
                    let mut stream = unsafe { TcpStream::from_raw_fd(handoff.fd.into_raw_fd()) };
                    reject(&mut stream, RejectReason::Overloaded).await;
                }
            }
        }
    }

    /// Acknowledges the Hello, then reads Batch frames until EOF, error or stop.
    async fn serve(self: Rc<Self>, mut stream: TcpStream, hello: Hello, peer_addr: SocketAddr) {
        NetStats::bump(&self.stats.served);
        let from = hello.node_id;
        let outcome = until_stop(&self.stop, async {
            let mut ack = Vec::with_capacity(FRAME_HEADER_BYTES + frame::HELLO_ACK_PAYLOAD_BYTES);
            HelloAck {
                node_id: self.config.self_id,
                shard_id: self.shard_id as u32,
                shard_count: self.shard_count as u32,
            }
            .encode_frame(&mut ack);
            stream
                .set_read_timeout(None)
                .map_err(std::io::Error::from)?;
            stream.write_all(&ack).await?;
            // The dialer learns we are alive from keepalives on this connection (it
            // carries nothing else our way).
            let mut keepalive_handle = super::liveness::second_handle(&stream)?;
            let interval = Duration::from_millis(self.config.keepalive_interval_ms);
            let keepalives = async {
                Err(super::liveness::send_keepalives(&mut keepalive_handle, interval).await)
            };
            futures_lite::future::or(self.read_frames(&mut stream, &hello), keepalives).await
        })
        .await;
        match outcome {
            None | Some(Ok(())) => {
                tracing::debug!(from, %peer_addr, "peer connection closed");
            }
            Some(Err(NetError::Frame(e))) => {
                NetStats::bump(&self.stats.closed_malformed);
                if matches!(e, FrameError::TooLarge { .. }) {
                    NetStats::bump(&self.stats.frames_too_large);
                }
                tracing::warn!(from, %peer_addr, error = %e, "closing peer connection: bad frame");
            }
            Some(Err(NetError::Handler(e))) => {
                NetStats::bump(&self.stats.closed_malformed);
                tracing::warn!(from, %peer_addr, error = %e, "closing peer connection: frame refused");
            }
            Some(Err(e)) => {
                tracing::info!(from, %peer_addr, error = %e, "peer connection failed");
            }
        }
    }

    /// The reader loop: frames are cut out of the connection's receive regions without
    /// copying ([`RecvBuffer`]); a region is `read_buffer_bytes`, and a frame's size is
    /// checked before the buffer makes room for it. A frame larger than a region gets
    /// room only as fast as its bytes arrive (see [`RecvBuffer`]), so a header announcing
    /// a large frame that never comes costs nothing.
    async fn read_frames(&self, stream: &mut TcpStream, hello: &Hello) -> Result<(), NetError> {
        let max_frame_bytes = self.config.max_frame_bytes;
        let mut buf = RecvBuffer::new(self.config.read_buffer_bytes.max(RECV_REGION_BYTES_MIN));
        loop {
            // Hand over every complete frame in the buffer.
            let mut needed = FRAME_HEADER_BYTES;
            while buf.filled().len() >= FRAME_HEADER_BYTES {
                let header: &[u8; FRAME_HEADER_BYTES] = buf.filled()[..FRAME_HEADER_BYTES]
                    .try_into()
                    .expect("slice of FRAME_HEADER_BYTES");
                let header = frame::decode_header(header, max_frame_bytes)?;
                if header.kind != FrameKind::Batch {
                    return Err(FrameError::Unexpected {
                        expected: FrameKind::Batch,
                        got: header.kind,
                    }
                    .into());
                }
                let frame_bytes = FRAME_HEADER_BYTES + header.payload_len;
                if buf.filled().len() < frame_bytes {
                    needed = frame_bytes;
                    break;
                }
                let mut frame = buf.filled().split_to(frame_bytes);
                let payload = frame.split_off(FRAME_HEADER_BYTES).freeze();
                NetStats::bump(&self.stats.frames_received);
                NetStats::add(&self.stats.bytes_received, frame_bytes as u64);
                self.handler
                    .on_peer_frame(hello.node_id, hello.shard_id, payload)
                    .map_err(NetError::Handler)?;
            }
            debug_assert!(needed <= FRAME_HEADER_BYTES + max_frame_bytes);
            if buf.read_from(stream, needed).await? == 0 {
                return Ok(());
            }
        }
    }
}

async fn read_hello(stream: &mut TcpStream, timeout: Duration) -> Result<Hello, NetError> {
    stream
        .set_read_timeout(Some(timeout))
        .map_err(std::io::Error::from)?;
    let mut header = [0u8; FRAME_HEADER_BYTES];
    stream.read_exact(&mut header).await?;
    let header = frame::decode_header(&header, HELLO_PAYLOAD_BYTES_MAX)?;
    if header.kind != FrameKind::Hello {
        return Err(FrameError::Unexpected {
            expected: FrameKind::Hello,
            got: header.kind,
        }
        .into());
    }
    let mut payload = [0u8; HELLO_PAYLOAD_BYTES_MAX];
    let payload = &mut payload[..header.payload_len];
    stream.read_exact(payload).await?;
    stream
        .set_read_timeout(None)
        .map_err(std::io::Error::from)?;
    Ok(Hello::decode_payload(payload)?)
}

/// Tells the dialer why, best effort, and closes.
async fn reject(stream: &mut TcpStream, reason: RejectReason) {
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + frame::HELLO_REJECT_PAYLOAD_BYTES);
    reason.encode_frame(&mut frame);
    let _best_effort = stream.write_all(&frame).await;
    let _best_effort = stream.close().await;
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config() -> PeerNetConfig {
        let nodes = HashMap::from([
            (1, "10.0.0.1:40911".parse().expect("addr")),
            (2, "10.0.0.2:40911".parse().expect("addr")),
            (3, "0.0.0.0:40911".parse().expect("addr")),
        ]);
        PeerNetConfig::new("c1", 1, "0.0.0.0:40911".parse().expect("addr"), nodes)
    }

    fn hello(node_id: NodeId, cluster: &str) -> Hello {
        Hello {
            node_id,
            shard_id: 0,
            shard_count: 1,
            protocol_version: PROTOCOL_VERSION,
            cluster: cluster.to_owned(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn accepts_a_configured_peer_from_its_address() {
        assert_eq!(
            validate_hello(&hello(2, "c1"), ip("10.0.0.2"), &config()),
            Ok(())
        );
        assert_eq!(
            validate_hello(&hello(2, "c1"), ip("::ffff:10.0.0.2"), &config()),
            Ok(())
        );
        assert_eq!(
            validate_hello(&hello(3, "c1"), ip("10.9.9.9"), &config()),
            Ok(())
        );
    }

    #[test]
    fn refuses_wrong_cluster_unknown_node_and_wrong_address() {
        let config = config();
        assert_eq!(
            validate_hello(&hello(2, "c2"), ip("10.0.0.2"), &config),
            Err(RejectReason::WrongCluster)
        );
        assert_eq!(
            validate_hello(&hello(9, "c1"), ip("10.0.0.2"), &config),
            Err(RejectReason::UnknownNode)
        );
        assert_eq!(
            validate_hello(&hello(1, "c1"), ip("10.0.0.1"), &config),
            Err(RejectReason::UnknownNode),
            "a node never dials itself"
        );
        assert_eq!(
            validate_hello(&hello(2, "c1"), ip("10.0.0.3"), &config),
            Err(RejectReason::AddressMismatch)
        );
        let mut old = hello(2, "c1");
        old.protocol_version = PROTOCOL_VERSION + 1;
        assert_eq!(
            validate_hello(&old, ip("10.0.0.2"), &config),
            Err(RejectReason::ProtocolVersion)
        );
    }
}

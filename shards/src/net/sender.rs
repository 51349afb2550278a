//! Outbound: one bounded queue and one writer task per (peer node, local shard).
//!
//! Groups call [`PeerSender::try_send`], which never waits: it queues the item or says
//! OVERLOADED. The writer sleeps until the queue is non-empty, then drains everything
//! queued (up to `write_buffer_bytes_max`) into one reused [`GatherBuf`] as Batch frames
//! of at most `max_frame_bytes` payload each, and issues one gather write (entry bodies
//! are spliced, not copied: see [`super::gather_write`]). Items enqueued while a
//! write is in flight go out together in the next one, so the batch size adapts to the
//! load with no timer.
//!
//! While the peer is unreachable items stay queued (bounded); the batch of a write that
//! fails is lost, as a dropped packet would be: Raft retransmits. Reconnects back off
//! exponentially with jitter (see [`super::backoff`]).

use std::{
    cell::{Cell, RefCell},
    collections::VecDeque,
    fmt,
    future::poll_fn,
    net::SocketAddr,
    rc::Rc,
    sync::Arc,
    task::{Poll, Waker},
    time::Duration,
};

use bytes::BytesMut;
use dledger::raft::NodeId;
use dledger::wire::GatherBuf;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::{
    NetError, PeerCodec, PeerNetConfig,
    backoff::Backoff,
    frame::{
        self, FRAME_HEADER_BYTES, FrameKind, HELLO_ACK_PAYLOAD_BYTES, Hello, HelloAck, RejectReason,
    },
    liveness::{PeerLiveness, second_handle},
    stats::NetStats,
    until_stop,
};
use crate::runtime::ShardStop;

/// Why an item was not queued. The item is handed back.
pub enum SendError<T> {
    /// OVERLOADED: the queue holds `capacity` items already.
    Overloaded(T),
    /// The writer stopped (shard shutting down).
    Closed(T),
}

impl<T> SendError<T> {
    pub fn into_item(self) -> T {
        match self {
            SendError::Overloaded(item) | SendError::Closed(item) => item,
        }
    }

    pub fn is_overloaded(&self) -> bool {
        matches!(self, SendError::Overloaded(_))
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Overloaded(_) => f.write_str("OVERLOADED: the peer queue is full"),
            SendError::Closed(_) => f.write_str("the peer writer has stopped"),
        }
    }
}

impl<T> std::error::Error for SendError<T> {}

struct Shared<T> {
    peer: NodeId,
    capacity: usize,
    queue: RefCell<VecDeque<T>>,
    writer_waker: Cell<Option<Waker>>,
    connected: Cell<bool>,
    closed: Cell<bool>,
    stats: Arc<NetStats>,
}

/// The handle groups use to send to one peer node from this shard. Cheap to clone;
/// bound to its shard (`!Send`).
pub struct PeerSender<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Clone for PeerSender<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for PeerSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerSender")
            .field("peer", &self.shared.peer)
            .field("queued", &self.queued())
            .field("capacity", &self.shared.capacity)
            .field("connected", &self.shared.connected.get())
            .finish()
    }
}

impl<T> PeerSender<T> {
    pub(crate) fn new(peer: NodeId, capacity: usize, stats: Arc<NetStats>) -> Self {
        assert!(capacity > 0, "validated by PeerNetConfig");
        Self {
            shared: Rc::new(Shared {
                peer,
                capacity,
                queue: RefCell::new(VecDeque::with_capacity(capacity)),
                writer_waker: Cell::new(None),
                connected: Cell::new(false),
                closed: Cell::new(false),
                stats,
            }),
        }
    }

    /// Queues `item` for the peer without waiting.
    pub fn try_send(&self, item: T) -> Result<(), SendError<T>> {
        let shared = &self.shared;
        if shared.closed.get() {
            return Err(SendError::Closed(item));
        }
        {
            let mut queue = shared.queue.borrow_mut();
            if queue.len() >= shared.capacity {
                NetStats::bump(&shared.stats.overloaded);
                return Err(SendError::Overloaded(item));
            }
            queue.push_back(item);
            debug_assert!(queue.len() <= shared.capacity);
        }
        if let Some(waker) = shared.writer_waker.take() {
            waker.wake();
        }
        Ok(())
    }

    pub fn peer(&self) -> NodeId {
        self.shared.peer
    }

    /// Items waiting for the writer.
    pub fn queued(&self) -> usize {
        self.shared.queue.borrow().len()
    }

    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// True while a handshaken connection to the peer is up (a group may report the
    /// peer unreachable otherwise).
    pub fn is_connected(&self) -> bool {
        self.shared.connected.get()
    }

    /// Resolves once the queue holds at least one item.
    async fn wait_for_items(&self) {
        poll_fn(|cx| {
            if self.shared.queue.borrow().is_empty() {
                self.shared.writer_waker.set(Some(cx.waker().clone()));
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
    }
}

/// What one drain of the queue put into the write buffer.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Drained {
    pub frames: u64,
    pub items: u64,
    pub too_large: u64,
}

/// Moves queued items into `buf` as Batch frames (payload <= `max_frame_bytes` each, laid
/// out by the codec), stopping at a frame boundary once `buf` holds `buf_bytes_max`
/// bytes (spliced parts included).
pub(crate) fn drain_into_frames<C: PeerCodec>(
    codec: &C,
    queue: &mut VecDeque<C::Item>,
    buf: &mut GatherBuf,
    max_frame_bytes: usize,
    buf_bytes_max: usize,
) -> Drained {
    let mut drained = Drained::default();
    while !queue.is_empty() && buf.len() < buf_bytes_max {
        let header_at = buf.mark();
        frame::encode_header(FrameKind::Batch, 0, buf.head_mut());
        let queued_before = queue.len();
        let encoded = codec.encode_batch(queue, buf, max_frame_bytes);
        let payload_len = buf.len_since(header_at) - FRAME_HEADER_BYTES;
        assert!(
            payload_len <= max_frame_bytes,
            "the peer codec wrote {payload_len} bytes, over max_frame_bytes {max_frame_bytes}"
        );
        assert!(
            queue.len() < queued_before,
            "the peer codec took nothing from a non-empty queue"
        );
        drained.items += encoded.items;
        drained.too_large += encoded.dropped;
        if encoded.items == 0 {
            // Only dropped items: no frame.
            buf.truncate(header_at);
        } else {
            let len = u32::try_from(payload_len).expect("payload bounded by max_frame_bytes (u32)");
            frame::patch_payload_len(buf.head_mut(), header_at.head_len, len);
            drained.frames += 1;
        }
    }
    drained
}

/// Everything a writer task needs.
pub(crate) struct Writer<C: PeerCodec> {
    pub sender: PeerSender<C::Item>,
    pub codec: Rc<C>,
    pub config: Rc<PeerNetConfig>,
    pub peer_addr: SocketAddr,
    pub hello: Hello,
    pub stop: ShardStop,
    /// The peer's liveness as this connection shows it (reported to the shard).
    pub liveness: PeerLiveness,
}

impl<C: PeerCodec> Writer<C> {
    /// Runs until the shard stops: connect, handshake, pump; back off; repeat.
    pub(crate) async fn run(self) {
        let stats = self.sender.shared.stats.clone();
        let seed = (u64::from(self.hello.node_id) << 40)
            ^ (u64::from(self.hello.shard_id) << 20)
            ^ u64::from(self.sender.peer())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        let mut backoff =
            Backoff::new(self.config.backoff_min_ms, self.config.backoff_max_ms, seed);
        let mut buf = GatherBuf::with_head_capacity(self.head_bytes());
        let peer = self.sender.peer();
        while !self.stop.is_stopped() {
            match until_stop(&self.stop, self.connect()).await {
                None => break,
                Some(Ok(mut stream)) => {
                    NetStats::bump(&stats.connects);
                    backoff.reset();
                    self.sender.shared.connected.set(true);
                    self.liveness.heard();
                    tracing::debug!(peer, addr = %self.peer_addr, "peer connection up");
                    let outcome = match second_handle(&stream) {
                        Ok(mut watch) => {
                            let pump = self.pump(&mut stream, &mut buf);
                            let keepalives =
                                async { Err(self.liveness.read_keepalives(&mut watch).await) };
                            let watchdog = async {
                                Err(self
                                    .liveness
                                    .watchdog(Duration::from_millis(
                                        self.config.liveness_timeout_ms,
                                    ))
                                    .await)
                            };
                            let watched = futures_lite::future::or(keepalives, watchdog);
                            until_stop(&self.stop, futures_lite::future::or(pump, watched)).await
                        }
                        Err(e) => Some(Err(e)),
                    };
                    self.sender.shared.connected.set(false);
                    self.liveness.lost();
                    NetStats::bump(&stats.connections_lost);
                    match outcome {
                        None => break,
                        Some(Err(e)) => {
                            tracing::info!(peer, addr = %self.peer_addr, error = %e, "peer connection lost");
                        }
                        Some(Ok(())) => {}
                    }
                }
                Some(Err(e)) => {
                    NetStats::bump(&stats.connect_failures);
                    if matches!(e, NetError::Refused(_)) {
                        NetStats::bump(&stats.hellos_refused_by_peer);
                        tracing::warn!(peer, addr = %self.peer_addr, error = %e, "peer refused our hello");
                    } else {
                        tracing::debug!(peer, addr = %self.peer_addr, error = %e, "cannot connect to peer");
                    }
                }
            }
            let delay = backoff.next_delay();
            if until_stop(&self.stop, glommio::timer::sleep(delay))
                .await
                .is_none()
            {
                break;
            }
        }
        self.sender.shared.closed.set(true);
        self.sender.shared.queue.borrow_mut().clear();
    }

    /// Connects and completes the handshake: send Hello, expect HelloAck from the peer.
    async fn connect(&self) -> Result<TcpStream, NetError> {
        let stream = TcpStream::connect_timeout(
            self.peer_addr,
            Duration::from_millis(self.config.connect_timeout_ms),
        )
        .await
        .map_err(std::io::Error::from)?;
        stream.set_nodelay(true).map_err(std::io::Error::from)?;
        let mut hello =
            BytesMut::with_capacity(frame::FRAME_HEADER_BYTES + frame::HELLO_PAYLOAD_BYTES_MAX);
        self.hello.encode_frame(&mut hello);
        let mut stream = stream;
        stream.write_all(&hello).await?;
        stream
            .set_read_timeout(Some(Duration::from_millis(self.config.hello_timeout_ms)))
            .map_err(std::io::Error::from)?;
        let mut header = [0u8; FRAME_HEADER_BYTES];
        stream.read_exact(&mut header).await?;
        let header = frame::decode_header(&header, HELLO_ACK_PAYLOAD_BYTES)?;
        let mut payload = [0u8; HELLO_ACK_PAYLOAD_BYTES];
        let payload = &mut payload[..header.payload_len];
        stream.read_exact(payload).await?;
        match header.kind {
            FrameKind::HelloAck => {
                let ack = HelloAck::decode_payload(payload)?;
                if ack.node_id != self.sender.peer() {
                    return Err(NetError::WrongPeer {
                        expected: self.sender.peer(),
                        got: ack.node_id,
                    });
                }
                if ack.shard_count != self.hello.shard_count {
                    tracing::debug!(
                        peer = ack.node_id,
                        peer_shards = ack.shard_count,
                        our_shards = self.hello.shard_count,
                        "peer runs another shard count: its groups cross shards there"
                    );
                }
            }
            FrameKind::HelloReject => {
                let code = payload.first().copied().unwrap_or(0);
                return Err(NetError::Refused(RejectReason::from_code(code)));
            }
            other => {
                return Err(frame::FrameError::Unexpected {
                    expected: FrameKind::HelloAck,
                    got: other,
                }
                .into());
            }
        }
        stream
            .set_read_timeout(None)
            .map_err(std::io::Error::from)?;
        Ok(stream)
    }

    /// Sends whatever is queued, one write per wake-up, until a write fails.
    /// In-place bytes a send buffer starts with (frame headers and message fields; entry
    /// bodies are spliced, not held here).
    fn head_bytes(&self) -> usize {
        self.config.write_buffer_bytes_max.min(64 << 10)
    }

    async fn pump(&self, stream: &mut TcpStream, buf: &mut GatherBuf) -> Result<(), NetError> {
        let stats = &self.sender.shared.stats;
        loop {
            self.sender.wait_for_items().await;
            buf.clear();
            let drained = {
                let mut queue = self.sender.shared.queue.borrow_mut();
                drain_into_frames(
                    &*self.codec,
                    &mut queue,
                    buf,
                    self.config.max_frame_bytes,
                    self.config.write_buffer_bytes_max,
                )
            };
            NetStats::add(&stats.items_too_large, drained.too_large);
            if buf.is_empty() {
                continue;
            }
            let written = super::gather_write::write_all_gathered(stream, buf).await;
            // Release the spliced parts (cached bodies) now, not at the next wake-up.
            let sent_bytes = buf.len() as u64;
            let keep_head = buf.head_capacity()
                <= 2 * self
                    .config
                    .write_buffer_bytes_max
                    .max(self.config.max_frame_bytes);
            buf.clear();
            if !keep_head {
                // Give back memory after an unusual burst.
                *buf = GatherBuf::with_head_capacity(self.head_bytes());
            }
            if let Err(e) = written {
                NetStats::add(&stats.items_lost, drained.items);
                return Err(e.into());
            }
            NetStats::bump(&stats.writes);
            NetStats::add(&stats.frames_sent, drained.frames);
            NetStats::add(&stats.items_sent, drained.items);
            NetStats::add(&stats.bytes_sent, sent_bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{LengthPrefixedCodec, split_length_prefixed};

    fn payloads(buf: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut frames = Vec::new();
        let mut rest = buf;
        while !rest.is_empty() {
            let header: [u8; FRAME_HEADER_BYTES] =
                rest[..FRAME_HEADER_BYTES].try_into().expect("header");
            let header = frame::decode_header(&header, usize::MAX).expect("valid header");
            assert_eq!(header.kind, FrameKind::Batch);
            let payload = &rest[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + header.payload_len];
            frames.push(
                split_length_prefixed(payload)
                    .map(|item| item.expect("valid item").to_vec())
                    .collect(),
            );
            rest = &rest[FRAME_HEADER_BYTES + header.payload_len..];
        }
        frames
    }

    #[test]
    fn everything_queued_goes_in_one_frame() {
        let mut queue: VecDeque<Vec<u8>> = (0..100u8).map(|i| vec![i; 3]).collect();
        let mut buf = GatherBuf::new();
        let drained =
            drain_into_frames(&LengthPrefixedCodec, &mut queue, &mut buf, 1 << 20, 1 << 20);
        assert_eq!(
            drained,
            Drained {
                frames: 1,
                items: 100,
                too_large: 0
            }
        );
        assert!(queue.is_empty());
        let frames = payloads(&buf.to_bytes());
        assert_eq!(frames.len(), 1);
        assert_eq!(
            frames[0],
            (0..100u8).map(|i| vec![i; 3]).collect::<Vec<_>>()
        );
    }

    #[test]
    fn frames_split_at_max_frame_bytes_and_oversized_items_drop() {
        // Each item encodes to 4 + 10 bytes; 3 fit in 45 bytes of payload, 4 do not; the
        // 104-byte item fits no frame and is dropped.
        let mut queue: VecDeque<Vec<u8>> = (0..7u8).map(|i| vec![i; 10]).collect();
        queue.insert(3, vec![0xEE; 100]);
        let mut buf = GatherBuf::new();
        let drained = drain_into_frames(&LengthPrefixedCodec, &mut queue, &mut buf, 45, 1 << 20);
        assert_eq!(
            drained,
            Drained {
                frames: 3,
                items: 7,
                too_large: 1
            }
        );
        let frames = payloads(&buf.to_bytes());
        assert_eq!(
            frames.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![3, 3, 1]
        );
        assert!(frames.iter().flatten().all(|item| item.len() == 10));
    }

    #[test]
    fn the_write_buffer_bound_leaves_the_rest_queued() {
        let mut queue: VecDeque<Vec<u8>> = (0..10u8).map(|i| vec![i; 10]).collect();
        let mut buf = GatherBuf::new();
        // Frames of 2 items (28 payload bytes): 40 bytes after the first, the bound is
        // reached at a frame boundary.
        let drained = drain_into_frames(&LengthPrefixedCodec, &mut queue, &mut buf, 28, 40);
        assert_eq!(
            drained,
            Drained {
                frames: 1,
                items: 2,
                too_large: 0
            }
        );
        assert_eq!(buf.len(), 40);
        assert_eq!(queue.len(), 8);
        assert_eq!(queue.front(), Some(&vec![2u8; 10]));
    }
}

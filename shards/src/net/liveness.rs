//! Node-level liveness of each peer, as one shard sees it through its outbound
//! connection to that peer.
//!
//! The acceptor of a connection sends a Keepalive frame (a bare 12-byte header) every
//! `keepalive_interval_ms`; it sends nothing else on it. The dialer reads them on its
//! watch descriptor. A peer is *up* from the HelloAck on, *down* when the connection
//! closes (a killed process: at once) or when no keepalive arrived for
//! `liveness_timeout_ms` (a stopped process, a partition), and *up* again at the next
//! keepalive. Every transition is reported once to the shard's
//! [`super::PeerFrameHandler::on_peer_liveness`]; the server hands it to every group of
//! the shard (quiesced Raft groups rely on it, see `dledger::raft::Outbox`).
//!
//! Cost on an idle cluster: one 12-byte frame per interval per (peer, shard) connection
//! each way (each side accepts the other's connection), whatever the group count.

use std::{
    cell::Cell,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd},
    rc::Rc,
    time::{Duration, Instant},
};

use dledger::raft::NodeId;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::{
    NetError,
    frame::{self, FRAME_HEADER_BYTES, FrameError, FrameKind},
};

/// Where a shard's liveness transitions go.
pub(crate) type LivenessSink = Rc<dyn Fn(NodeId, bool)>;

/// One peer's liveness on one shard, owned by its writer.
pub(crate) struct PeerLiveness {
    peer: NodeId,
    alive: Cell<bool>,
    heard_at: Cell<Instant>,
    sink: LivenessSink,
}

impl PeerLiveness {
    pub(crate) fn new(peer: NodeId, sink: LivenessSink) -> Self {
        Self {
            peer,
            alive: Cell::new(false),
            heard_at: Cell::new(Instant::now()),
            sink,
        }
    }

    /// The peer proved it is alive (HelloAck, keepalive).
    pub(crate) fn heard(&self) {
        self.heard_at.set(Instant::now());
        self.set(true);
    }

    /// The connection is gone.
    pub(crate) fn lost(&self) {
        self.set(false);
    }

    fn set(&self, alive: bool) {
        if self.alive.replace(alive) != alive {
            tracing::debug!(peer = self.peer, alive, "peer liveness changed");
            (self.sink)(self.peer, alive);
        }
    }

    /// Reads the acceptor's keepalives until the connection fails; never returns `Ok`.
    pub(crate) async fn read_keepalives(&self, watch: &mut TcpStream) -> NetError {
        let mut header = [0u8; FRAME_HEADER_BYTES];
        loop {
            if let Err(e) = watch.read_exact(&mut header).await {
                return if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    NetError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection",
                    ))
                } else {
                    e.into()
                };
            }
            match frame::decode_header(&header, 0) {
                Ok(h) if h.kind == FrameKind::Keepalive => self.heard(),
                Ok(h) => {
                    return FrameError::Unexpected {
                        expected: FrameKind::Keepalive,
                        got: h.kind,
                    }
                    .into();
                }
                Err(e) => return e.into(),
            }
        }
    }

    /// Turns the peer down when its keepalives stop; never returns. Wakes once per
    /// `timeout` or so (when the deadline from the last keepalive comes), not per
    /// keepalive.
    pub(crate) async fn watchdog(&self, timeout: Duration) -> NetError {
        loop {
            let silent = self.heard_at.get().elapsed();
            if silent > timeout {
                if self.alive.get() {
                    tracing::info!(
                        peer = self.peer,
                        silent_ms = silent.as_millis() as u64,
                        "no keepalive from the peer: reporting it down"
                    );
                    self.set(false);
                }
                glommio::timer::sleep(timeout).await;
            } else {
                glommio::timer::sleep(timeout - silent + Duration::from_millis(1)).await;
            }
        }
    }
}

/// A second glommio stream on a duplicate descriptor of `stream` (one task reads while
/// another writes the same socket).
pub(crate) fn second_handle(stream: &TcpStream) -> Result<TcpStream, NetError> {
    // SAFETY: the fd is open while `stream` is borrowed; the duplicate is owned below.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) }.try_clone_to_owned()?;
    // SAFETY: `fd` is a connected TCP socket descriptor we own exclusively.
    Ok(unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) })
}

/// The acceptor's side: a Keepalive frame every `interval` until a write fails.
pub(crate) async fn send_keepalives(stream: &mut TcpStream, interval: Duration) -> NetError {
    let mut keepalive = Vec::with_capacity(FRAME_HEADER_BYTES);
    frame::encode_header(FrameKind::Keepalive, 0, &mut keepalive);
    loop {
        if let Err(e) = stream.write_all(&keepalive).await {
            return e.into();
        }
        glommio::timer::sleep(interval).await;
    }
}

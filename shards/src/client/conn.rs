//! One pipelined connection to one node.
//!
//! Callers encode their request into the shared send buffer under a fresh request id,
//! park on a slot keyed by that id, and wake the connection's driver task. The driver owns
//! the socket: in one poll it writes whatever is queued and reads whatever arrived, cuts
//! frames off the receive buffer and hands each to the slot of its request id, so answers
//! may come in any order. A single task does both directions, so the socket needs no
//! locking or splitting, and a caller never touches it.
//!
//! Bounds: at most `max_inflight_per_conn` requests are outstanding (a semaphore; later
//! callers wait), so the send buffer holds at most that many frames of at most
//! `max_frame_bytes`; answers are cut out of receive regions without copying
//! ([`crate::net::recv`]), and the frame decoder refuses an oversized length prefix
//! before the body arrives. When the connection fails every waiting caller gets the
//! error at once.
//!
//! Per-call cost is kept small on purpose (the perf harness measures through this): no
//! timer per call — one sweeper task per connection expires calls from a deadline queue
//! in issue order — and request ids are looked up with a multiplicative hash.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Buf, BytesMut};
use dledger::config::HostPort;
use dledger::wire::{Body, Frame, FrameDecoder, WireLimits};
use futures_lite::AsyncWrite;
use glommio::net::TcpStream;
use glommio::sync::Semaphore;

use super::error::ClientError;
use super::options::ClientOptions;
use crate::net::recv::RecvBuffer;

/// Size of a receive region (answers are cut out of it without copying).
const RECV_REGION_BYTES: usize = 256 << 10;
/// Reads per driver wake-up before it yields, so callers woken by completed requests get
/// to run (and queue more) while a busy socket keeps delivering.
const READS_PER_POLL_MAX: usize = 16;

/// Where one request's answer lands.
#[derive(Debug, Default)]
struct Slot {
    result: Option<Result<Frame, ClientError>>,
    waker: Option<Waker>,
}

impl Slot {
    fn fill(slot: &RefCell<Slot>, result: Result<Frame, ClientError>) {
        let waker = {
            let mut s = slot.borrow_mut();
            debug_assert!(s.result.is_none(), "a slot is filled once");
            s.result = Some(result);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Request ids are sequential: a multiplicative (Fibonacci) hash spreads them over the
/// table's bits at the cost of one multiplication (SipHash costs more than the lookup).
#[derive(Clone, Copy, Debug, Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

#[derive(Debug)]
struct Shared {
    addr: HostPort,
    limits: WireLimits,
    /// Encoded frames not yet written to the socket.
    out: RefCell<BytesMut>,
    pending: RefCell<IdMap<Rc<RefCell<Slot>>>>,
    /// `(deadline, request id)` of calls, in deadline order; entries of answered calls
    /// are dropped from the front as they are met (so it holds about what is in flight).
    deadlines: RefCell<VecDeque<(Instant, u64)>>,
    sweeper_waker: RefCell<Option<Waker>>,
    next_request_id: Cell<u64>,
    inflight: Semaphore,
    driver_waker: RefCell<Option<Waker>>,
    /// Set by the owner's drop: the driver stops and closes the socket.
    closing: Cell<bool>,
    /// Why the connection is dead, once it is.
    failure: RefCell<Option<ClientError>>,
    /// Answers whose request had already given up (timed out or was dropped).
    unmatched_responses: Cell<u64>,
}

impl Shared {
    fn wake_driver(&self) {
        if let Some(w) = self.driver_waker.borrow_mut().take() {
            w.wake();
        }
    }

    fn wake_sweeper(&self) {
        if let Some(w) = self.sweeper_waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Queues the deadline of call `request_id`.
    fn add_deadline(&self, at: Instant, request_id: u64) {
        let mut deadlines = self.deadlines.borrow_mut();
        {
            // Forget answered calls at the front.
            let pending = self.pending.borrow();
            while deadlines
                .front()
                .is_some_and(|(_, id)| !pending.contains_key(id))
            {
                deadlines.pop_front();
            }
        }
        let was_first = deadlines.front().is_none_or(|&(first, _)| at < first);
        match deadlines.back() {
            Some(&(last, _)) if at < last => {
                // A shorter timeout than an earlier call's: keep the queue sorted.
                let i = deadlines.partition_point(|&(d, _)| d <= at);
                deadlines.insert(i, (at, request_id));
            }
            _ => deadlines.push_back((at, request_id)),
        }
        drop(deadlines);
        if was_first {
            self.wake_sweeper();
        }
    }

    /// Fails every call whose deadline passed; returns the next deadline.
    fn expire(&self, now: Instant) -> Option<Instant> {
        loop {
            let (at, id) = *self.deadlines.borrow().front()?;
            if at > now {
                return Some(at);
            }
            self.deadlines.borrow_mut().pop_front();
            let slot = self.pending.borrow_mut().remove(&id);
            if let Some(slot) = slot {
                Slot::fill(
                    &slot,
                    Err(
                        ClientError::timeout(&self.addr, "no answer within the request timeout")
                            .with_outcome_unknown(true),
                    ),
                );
            }
        }
    }

    fn complete(&self, frame: Frame) {
        let slot = self.pending.borrow_mut().remove(&frame.header.request_id);
        match slot {
            Some(slot) => Slot::fill(&slot, Ok(frame)),
            None => self
                .unmatched_responses
                .set(self.unmatched_responses.get() + 1),
        }
    }

    /// Marks the connection dead and fails every outstanding request with `err`.
    fn fail_all(&self, err: ClientError) {
        tracing::debug!(addr = %self.addr, error = %err, "client connection closed");
        if self.failure.borrow().is_none() {
            *self.failure.borrow_mut() = Some(err.clone());
        }
        self.inflight.close();
        let drained: Vec<_> = self.pending.borrow_mut().drain().collect();
        for (_, slot) in drained {
            // The request may have been written and applied before the failure.
            Slot::fill(&slot, Err(err.clone().with_outcome_unknown(true)));
        }
        self.out.borrow_mut().clear();
        self.deadlines.borrow_mut().clear();
        self.wake_sweeper();
    }

    /// One pass of the driver: write what is queued, read what arrived. Ready means the
    /// connection is finished, with the reason.
    fn poll_drive(
        &self,
        cx: &mut Context<'_>,
        stream: &mut TcpStream,
        recv: &mut RecvBuffer,
        decoder: &FrameDecoder,
    ) -> Poll<ClientError> {
        if self.closing.get() {
            return Poll::Ready(ClientError::network(
                &self.addr,
                "connection closed by the client",
            ));
        }
        // Registered first: a caller that queues a frame while this pass runs wakes us again.
        *self.driver_waker.borrow_mut() = Some(cx.waker().clone());
        {
            let mut out = self.out.borrow_mut();
            while !out.is_empty() {
                match Pin::new(&mut *stream).poll_write(cx, &out) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(ClientError::network(
                            &self.addr,
                            "socket took 0 bytes",
                        ));
                    }
                    Poll::Ready(Ok(n)) => out.advance(n),
                    Poll::Ready(Err(e)) => {
                        return Poll::Ready(ClientError::network(
                            &self.addr,
                            format!("write failed: {e}"),
                        ));
                    }
                    Poll::Pending => break,
                }
            }
        }
        for _ in 0..READS_PER_POLL_MAX {
            let want = decoder.bytes_needed(recv.filled());
            match recv.poll_read_from(cx, &mut *stream, want) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(ClientError::network(
                        &self.addr,
                        "connection closed by the node",
                    ));
                }
                Poll::Ready(Ok(_)) => loop {
                    match decoder.decode(recv.filled()) {
                        Ok(Some(frame)) => self.complete(frame),
                        Ok(None) => break,
                        Err(e) => {
                            return Poll::Ready(ClientError::local(
                                e.response_code(),
                                Some(&self.addr),
                                format!("bad frame from the node, connection dropped: {e}"),
                            ));
                        }
                    }
                },
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(ClientError::network(
                        &self.addr,
                        format!("read failed: {e}"),
                    ));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        // Still readable after many reads: yield to the callers just woken, come back soon.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A pipelined connection to one node; dropping it closes the socket.
#[derive(Debug)]
pub struct Connection {
    shared: Rc<Shared>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.closing.set(true);
        self.shared.wake_driver();
    }
}

/// Removes a request's slot if its caller stops waiting (timeout or a dropped future),
/// so abandoned requests leave nothing behind.
struct PendingGuard<'a> {
    shared: &'a Shared,
    request_id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.pending.borrow_mut().remove(&self.request_id);
    }
}

impl Connection {
    /// Connects (within `connect_timeout_ms`) and starts the driver task on the current
    /// glommio executor.
    pub async fn connect(addr: &HostPort, opts: &ClientOptions) -> Result<Connection, ClientError> {
        let target = addr.to_string();
        let stream = TcpStream::connect_timeout(target.as_str(), opts.connect_timeout())
            .await
            .map_err(|e| ClientError::network(addr, format!("connect failed: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| ClientError::network(addr, format!("setting TCP_NODELAY: {e}")))?;
        let shared = Rc::new(Shared {
            addr: addr.clone(),
            limits: opts.limits,
            out: RefCell::new(BytesMut::new()),
            pending: RefCell::new(IdMap::default()),
            deadlines: RefCell::new(VecDeque::new()),
            sweeper_waker: RefCell::new(None),
            next_request_id: Cell::new(1),
            inflight: Semaphore::new(opts.max_inflight_per_conn as u64),
            driver_waker: RefCell::new(None),
            closing: Cell::new(false),
            failure: RefCell::new(None),
            unmatched_responses: Cell::new(0),
        });
        glommio::spawn_local(drive(shared.clone(), stream)).detach();
        glommio::spawn_local(sweep(shared.clone())).detach();
        Ok(Connection { shared })
    }

    pub fn addr(&self) -> &HostPort {
        &self.shared.addr
    }

    /// Why the connection died, if it has.
    pub fn failure(&self) -> Option<ClientError> {
        self.shared.failure.borrow().clone()
    }

    pub fn is_failed(&self) -> bool {
        self.shared.failure.borrow().is_some()
    }

    /// Requests sent and not yet answered (or given up).
    pub fn pending_requests(&self) -> usize {
        self.shared.pending.borrow().len()
    }

    /// Answers that arrived after their request had given up.
    pub fn unmatched_responses(&self) -> u64 {
        self.shared.unmatched_responses.get()
    }

    /// Sends `request` and waits (at most `timeout`) for the frame answering it.
    ///
    /// Errors: the request could not be encoded (nothing sent), the connection failed
    /// (outcome unknown: the request may have reached the node), or the timeout passed
    /// (outcome unknown).
    pub async fn call<B: Body>(
        &self,
        request: &B,
        timeout: std::time::Duration,
    ) -> Result<Frame, ClientError> {
        let shared = &*self.shared;
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let _permit = match shared.inflight.acquire_permit(1).await {
            Ok(p) => p,
            Err(_) => {
                return Err(self
                    .failure()
                    .unwrap_or_else(|| ClientError::network(&shared.addr, "connection closed")));
            }
        };
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let request_id = shared.next_request_id.get();
        shared.next_request_id.set(request_id + 1);
        request
            .encode(request_id, &shared.limits, &mut shared.out.borrow_mut())
            .map_err(|e| {
                ClientError::local(
                    e.response_code(),
                    Some(&shared.addr),
                    format!("request refused before sending: {e}"),
                )
            })?;
        let slot = Rc::new(RefCell::new(Slot::default()));
        let previous = shared.pending.borrow_mut().insert(request_id, slot.clone());
        assert!(
            previous.is_none(),
            "request ids are never reused on a connection"
        );
        let _guard = PendingGuard { shared, request_id };
        shared.add_deadline(Instant::now() + timeout, request_id);
        shared.wake_driver();
        // The answer, or the sweeper's timeout error, lands in the slot.
        poll_fn(|cx| {
            let mut s = slot.borrow_mut();
            match s.result.take() {
                Some(r) => Poll::Ready(r),
                None => {
                    s.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

/// The connection's one task: runs until the socket fails or the owner drops the
/// connection, then fails whatever is still waiting.
async fn drive(shared: Rc<Shared>, mut stream: TcpStream) {
    let mut recv = RecvBuffer::new(RECV_REGION_BYTES);
    let decoder = FrameDecoder::new(shared.limits.max_frame_bytes);
    let reason = poll_fn(|cx| shared.poll_drive(cx, &mut stream, &mut recv, &decoder)).await;
    shared.fail_all(reason);
    // Dropping the stream closes the socket.
    drop(stream);
}

/// The connection's timeout task: sleeps until the earliest call deadline, fails the
/// calls that passed it, and parks while no call is waiting. Ends with the connection.
async fn sweep(shared: Rc<Shared>) {
    loop {
        if shared.failure.borrow().is_some() || shared.closing.get() {
            return;
        }
        match shared.expire(Instant::now()) {
            Some(next) => {
                let nap = next.saturating_duration_since(Instant::now());
                // Woken early by a call with an earlier deadline or by the close.
                futures_lite::future::or(glommio::timer::sleep(nap), woken(&shared)).await;
            }
            None => woken(&shared).await,
        }
    }
}

/// Resolves the first time the sweeper is woken after this starts waiting.
async fn woken(shared: &Shared) {
    let mut parked = false;
    poll_fn(|cx| {
        if parked {
            return Poll::Ready(());
        }
        parked = true;
        *shared.sweeper_waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    })
    .await;
}

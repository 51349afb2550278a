//! Where answers go.
//!
//! Each client connection has one [`Answers`]: an answer buffer that groups and request
//! tasks encode their answer frames straight into, and one writer task that sends
//! everything buffered in one write per wake-up. So many answers that complete together
//! (a group commit answers every append it covers) leave in one `send`, and an append's
//! answer needs no task, no channel and no buffer of its own.
//!
//! Bounds: a connection has at most `max_outstanding` requests read and not yet written
//! back (the reader waits for room), so the buffer holds at most that many answers.

use std::{
    cell::{Cell, RefCell},
    future::poll_fn,
    task::{Poll, Waker},
};

use bytes::BytesMut;
use dledger::wire::{AppendResponse, AppendedEntry, ClientMessage, ErrorResponse, WireLimits};
use glommio::channels::local_channel::LocalSender;

use super::group::AppendOutcome;

/// A buffer grown past this by an unusual burst (large get answers) is given back
/// after it is written.
const KEEP_BUFFER_BYTES_MAX: usize = 1 << 20;

/// The answer side of one client connection.
pub struct Answers {
    limits: WireLimits,
    max_outstanding: usize,
    /// Encoded answer frames not yet handed to the socket.
    buf: RefCell<BytesMut>,
    /// Answers in `buf`.
    buffered: Cell<usize>,
    /// Requests read and not yet answered, plus answers not yet written.
    outstanding: Cell<usize>,
    writer: Cell<Option<Waker>>,
    reader: Cell<Option<Waker>>,
    /// The socket failed: later answers are dropped.
    broken: Cell<bool>,
}

impl std::fmt::Debug for Answers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answers")
            .field("buffered", &self.buffered.get())
            .field("outstanding", &self.outstanding.get())
            .finish_non_exhaustive()
    }
}

impl Answers {
    pub fn new(limits: WireLimits, max_outstanding: usize) -> Answers {
        assert!(max_outstanding > 0, "a connection must allow one request");
        Answers {
            limits,
            max_outstanding,
            buf: RefCell::new(BytesMut::new()),
            buffered: Cell::new(0),
            outstanding: Cell::new(0),
            writer: Cell::new(None),
            reader: Cell::new(None),
            broken: Cell::new(false),
        }
    }

    /// Requests read and not yet answered, plus answers not yet written (0: idle).
    pub fn outstanding(&self) -> usize {
        self.outstanding.get()
    }

    /// The reader took a request: it is answered later with one of the `push` calls.
    pub fn begin_request(&self) {
        self.outstanding.set(self.outstanding.get() + 1);
        debug_assert!(self.outstanding.get() <= self.max_outstanding);
    }

    /// Resolves once another request may be read.
    pub async fn wait_room(&self) {
        poll_fn(|cx| {
            if self.outstanding.get() < self.max_outstanding {
                Poll::Ready(())
            } else {
                self.reader.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
    }

    /// Resolves once every request read has been answered and written (or dropped).
    pub async fn wait_drained(&self) {
        poll_fn(|cx| {
            if self.outstanding.get() == 0 {
                Poll::Ready(())
            } else {
                self.reader.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
    }

    /// Encodes the answer to `request_id` into the buffer.
    pub fn push(&self, request_id: u64, answer: Result<ClientMessage, ErrorResponse>) {
        if self.broken.get() {
            self.finished(1);
            return;
        }
        let mut buf = self.buf.borrow_mut();
        encode_answer(request_id, answer, &self.limits, &mut buf);
        drop(buf);
        self.buffered_one();
    }

    /// The answer to an append: `first..` at `positions`.
    pub fn push_appended(&self, request_id: u64, first: u64, positions: &[u64]) {
        let entries = appended_entries(first, positions);
        self.push(
            request_id,
            Ok(ClientMessage::AppendResponse(AppendResponse { entries })),
        );
    }

    /// An answer another shard encoded.
    pub fn push_encoded(&self, frame: &[u8]) {
        if self.broken.get() {
            self.finished(1);
            return;
        }
        self.buf.borrow_mut().extend_from_slice(frame);
        self.buffered_one();
    }

    fn buffered_one(&self) {
        self.buffered.set(self.buffered.get() + 1);
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    fn finished(&self, answers: usize) {
        debug_assert!(answers <= self.outstanding.get());
        self.outstanding
            .set(self.outstanding.get().saturating_sub(answers));
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }

    /// Writes buffered answers, one write per wake-up, until `done()` holds with nothing
    /// left to write, or the socket fails.
    pub async fn run_writer<W>(&self, writer: &mut W, done: impl Fn() -> bool) -> Result<(), String>
    where
        W: futures_lite::AsyncWrite + Unpin,
    {
        use futures_lite::AsyncWriteExt;
        let mut spare = BytesMut::new();
        loop {
            let more = poll_fn(|cx| {
                if self.buffered.get() > 0 {
                    Poll::Ready(true)
                } else if done() && self.outstanding.get() == 0 {
                    Poll::Ready(false)
                } else {
                    self.writer.set(Some(cx.waker().clone()));
                    Poll::Pending
                }
            })
            .await;
            if !more {
                return Ok(());
            }
            std::mem::swap(&mut spare, &mut *self.buf.borrow_mut());
            let answers = self.buffered.replace(0);
            let written = writer.write_all(&spare).await;
            self.finished(answers);
            if let Err(e) = written {
                self.broken.set(true);
                // What is buffered now and what comes later is dropped, not written.
                self.buf.borrow_mut().clear();
                let dropped = self.buffered.replace(0);
                self.finished(dropped);
                return Err(e.to_string());
            }
            spare.clear();
            if spare.capacity() > KEEP_BUFFER_BYTES_MAX {
                spare = BytesMut::new();
            }
        }
    }

    /// Wakes the writer so it can notice `done()`.
    pub fn poke_writer(&self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }
}

/// Where a client append's outcome goes once it is known.
#[derive(Debug)]
pub enum Reply {
    /// Encoded into a connection's answers, by request id.
    Conn {
        answers: std::rc::Rc<Answers>,
        request_id: u64,
    },
    /// Sent on a channel (requests forwarded from another shard).
    Chan(LocalSender<AppendOutcome>),
}

impl Reply {
    /// Answers with the entries `first..` at `positions`.
    pub fn appended(self, first: u64, positions: &[u64]) {
        match self {
            Reply::Conn {
                answers,
                request_id,
            } => answers.push_appended(request_id, first, positions),
            Reply::Chan(tx) => {
                let _ = tx.try_send(Ok(appended_entries(first, positions)));
            }
        }
    }

    pub fn failed(self, e: ErrorResponse) {
        match self {
            Reply::Conn {
                answers,
                request_id,
            } => answers.push(request_id, Err(e)),
            Reply::Chan(tx) => {
                let _ = tx.try_send(Err(e));
            }
        }
    }
}

/// Entries `first..` at `positions`, as an append's answer lists them.
fn appended_entries(first: u64, positions: &[u64]) -> Vec<AppendedEntry> {
    (first..)
        .zip(positions)
        .map(|(index, &pos)| AppendedEntry { index, pos })
        .collect()
}

/// Encodes `answer` (or, if it cannot be encoded, an INTERNAL_ERROR naming why) as one
/// frame at the end of `out`.
pub fn encode_answer(
    request_id: u64,
    answer: Result<ClientMessage, ErrorResponse>,
    limits: &WireLimits,
    out: &mut BytesMut,
) {
    let start = out.len();
    let msg = answer.unwrap_or_else(ClientMessage::ErrorResponse);
    if let Err(e) = msg.encode(request_id, limits, out) {
        out.truncate(start);
        let fallback = ClientMessage::ErrorResponse(ErrorResponse {
            code: dledger::wire::ResponseCode::InternalError,
            leader: None,
            message: format!("cannot encode the answer: {e}"),
        });
        // A short error always fits a frame.
        if let Err(e) = fallback.encode(request_id, limits, out) {
            out.truncate(start);
            tracing::error!(error = %e, "cannot encode an error answer");
        }
    }
}

//! Node ↔ node Raft traffic, batched.
//!
//! One connection per (source node, destination node, destination shard). Its first frame
//! in each direction is a [`Hello`](super::hello::Hello); every later frame is a
//! [`PeerBatch`] whose `from` and `to` must match the handshake (a batch claiming another
//! node's id is refused by [`PeerBatch::decode_into`]).
//!
//! Groups are named on the wire by their 32-bit id (`config::group_id_of`: FNV-1a of the
//! name, collision-checked at config validation). Node ids are cluster-wide (`n0` is
//! node 0 in every group), so per-message `from`/`to` are the batch's.

use bytes::{BufMut, Bytes, BytesMut};

use crate::config::GroupId;
use crate::raft::{Message, MsgBody, NodeId, RejectHint, Term};

use super::codec::*;
use super::error::WireError;
use super::frame::{Frame, GatherFrameWriter, Kind};
use super::gather::GatherBuf;
use super::limits::WireLimits;

/// One Raft message of one group, with the entry records of an `Append`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMessage {
    pub group: GroupId,
    pub msg: Message,
    /// For `MsgBody::Append { count, .. }` with `count > 0`: the `count` entry records,
    /// already in the store's record format, back to back (a slice of the frame: the
    /// follower can write them without re-encoding). Empty otherwise.
    pub entries: Bytes,
}

/// The decoded form of a peer batch. Reuse one across frames: [`PeerBatch::decode_into`]
/// clears it and keeps the capacity, so steady-state decoding does not allocate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerBatch {
    pub from: NodeId,
    pub to: NodeId,
    pub shard: u16,
    /// Heartbeats, heartbeat responses, then the other messages, in frame order.
    pub items: Vec<GroupMessage>,
}

// Message type bytes in the message section.
const T_PRE_VOTE: u8 = 1;
const T_PRE_VOTE_RESP: u8 = 2;
const T_VOTE: u8 = 3;
const T_VOTE_RESP: u8 = 4;
const T_APPEND: u8 = 5;
const T_APPEND_RESP: u8 = 6;
const T_HEARTBEAT: u8 = 7;
const T_HEARTBEAT_RESP: u8 = 8;
const T_TIMEOUT_NOW: u8 = 9;

/// Smallest encodings, for bounding counts against the bytes present.
const HEARTBEAT_BYTES: usize = 4 + 8 + 8 + 1;
const HEARTBEAT_RESP_BYTES: usize = 4 + 8 + 8;
const MESSAGE_MIN_BYTES: usize = 4 + 8 + 1;

/// ```text
/// u32 from | u32 to | u16 shard | u16 reserved (0)
/// u32 n_hb  | n_hb  × (u32 group, u64 term, u64 commit, u8 hb_flags)   heartbeats
/// u32 n_hbr | n_hbr × (u32 group, u64 term, u64 match_index)    heartbeat responses
/// u32 n_msg | n_msg × (u32 group, u64 term, u8 type, fields)    other messages
///
/// type fields:
///  1 PreVote       u64 last_index, u64 last_term
///  2 PreVoteResp   u8 granted
///  3 Vote          u64 last_index, u64 last_term, u8 transfer
///  4 VoteResp      u8 granted
///  5 Append        u64 prev_index, u64 prev_term, u64 entries_term, u32 count,
///                  u64 commit, u32 entries_len, entries_len bytes (count records;
///                  count == 0 ⇔ entries_len == 0)
///  6 AppendResp    u64 match_index, u64 rejected_prev, u8 rejected,
///                  [u64 last_index, u64 conflict_term, u64 conflict_first_index]
///  7 Heartbeat     u64 commit, u8 hb_flags (normally sent in the heartbeat section)
///  8 HeartbeatResp u64 match_index   (normally sent in the response section)
///  9 TimeoutNow    (nothing)
/// ```
/// hb_flags: bit 0 quiesce (the leader's last heartbeat before the group goes quiet);
/// the other bits are reserved and must be 0.
///
/// Bounds: n_hb and n_hbr ≤ `max_groups_per_batch`, n_msg ≤ `max_messages_per_batch`,
/// Append count ≤ `max_entries_per_append`, and every count × its smallest item fits the
/// bytes left.
impl PeerBatch {
    /// Decodes a `PeerBatch` frame into `self` (cleared first). `expected_from`/`to` are
    /// the nodes the connection's handshake established. On error `items` is left empty:
    /// a batch is applied whole or not at all.
    pub fn decode_into(
        &mut self,
        frame: &Frame,
        limits: &WireLimits,
        expected_from: NodeId,
        expected_to: NodeId,
    ) -> Result<(), WireError> {
        self.items.clear();
        let result = self.decode_items(frame, limits, expected_from, expected_to);
        if result.is_err() {
            self.items.clear();
        }
        result
    }

    fn decode_items(
        &mut self,
        frame: &Frame,
        limits: &WireLimits,
        expected_from: NodeId,
        expected_to: NodeId,
    ) -> Result<(), WireError> {
        if frame.header.kind != Kind::PeerBatch {
            return Err(WireError::WrongKind {
                expected: "PeerBatch",
                found: frame.header.kind as u8,
            });
        }
        let mut r = Reader::new(&frame.body);
        let from = r.u32("from")?;
        let to = r.u32("to")?;
        if from != expected_from || to != expected_to {
            return Err(WireError::WrongSender {
                claimed: from,
                to,
                expected_from,
                expected_to,
            });
        }
        let shard = r.u16("shard")?;
        let reserved = r.u16("reserved")?;
        if reserved != 0 {
            return Err(WireError::ReservedBits { value: reserved });
        }
        let (self_from, self_to) = (from, to);
        let mk = |group, term, body| GroupMessage {
            group,
            msg: Message {
                from: self_from,
                to: self_to,
                term,
                body,
            },
            entries: Bytes::new(),
        };

        let n = r.count("heartbeats", limits.max_groups_per_batch, HEARTBEAT_BYTES)?;
        self.items.reserve(n);
        for _ in 0..n {
            let group = r.u32("group")?;
            let term = r.u64("term")?;
            let commit = r.u64("commit")?;
            let quiesce = read_hb_flags(&mut r)?;
            self.items
                .push(mk(group, term, MsgBody::Heartbeat { commit, quiesce }));
        }
        let n = r.count(
            "heartbeat responses",
            limits.max_groups_per_batch,
            HEARTBEAT_RESP_BYTES,
        )?;
        self.items.reserve(n);
        for _ in 0..n {
            let group = r.u32("group")?;
            let term = r.u64("term")?;
            let match_index = r.u64("match_index")?;
            self.items
                .push(mk(group, term, MsgBody::HeartbeatResp { match_index }));
        }
        let n = r.count("messages", limits.max_messages_per_batch, MESSAGE_MIN_BYTES)?;
        self.items.reserve(n);
        for _ in 0..n {
            let group = r.u32("group")?;
            let term = r.u64("term")?;
            let (body, entries) = read_msg_body(&mut r, limits)?;
            let mut item = mk(group, term, body);
            item.entries = entries;
            self.items.push(item);
        }
        r.finish()?;
        self.from = from;
        self.to = to;
        self.shard = shard;
        Ok(())
    }
}

fn read_msg_body(r: &mut Reader<'_>, limits: &WireLimits) -> Result<(MsgBody, Bytes), WireError> {
    let t = r.u8("message type")?;
    let body = match t {
        T_PRE_VOTE => MsgBody::PreVote {
            last_index: r.u64("last_index")?,
            last_term: r.u64("last_term")?,
        },
        T_PRE_VOTE_RESP => MsgBody::PreVoteResp {
            granted: r.bool("granted")?,
        },
        T_VOTE => MsgBody::Vote {
            last_index: r.u64("last_index")?,
            last_term: r.u64("last_term")?,
            transfer: r.bool("transfer")?,
        },
        T_VOTE_RESP => MsgBody::VoteResp {
            granted: r.bool("granted")?,
        },
        T_APPEND => {
            let prev_index = r.u64("prev_index")?;
            let prev_term = r.u64("prev_term")?;
            let entries_term = r.u64("entries_term")?;
            let count = r.u32("count")?;
            if count > limits.max_entries_per_append {
                return Err(WireError::TooMany {
                    what: "append entries",
                    count: u64::from(count),
                    max: u64::from(limits.max_entries_per_append),
                });
            }
            let commit = r.u64("commit")?;
            let len = r.u32("entries_len")? as usize;
            if (count == 0) != (len == 0) || len < count as usize {
                return Err(WireError::BadValue {
                    what: "entries_len for the entry count",
                    value: len as u64,
                });
            }
            let entries = r.bytes(len, "entries")?;
            let body = MsgBody::Append {
                prev_index,
                prev_term,
                entries_term,
                count,
                commit,
            };
            return Ok((body, entries));
        }
        T_APPEND_RESP => {
            let match_index = r.u64("match_index")?;
            let rejected_prev = r.u64("rejected_prev")?;
            let reject = if r.bool("rejected")? {
                Some(RejectHint {
                    last_index: r.u64("last_index")?,
                    conflict_term: r.u64("conflict_term")?,
                    conflict_first_index: r.u64("conflict_first_index")?,
                })
            } else {
                None
            };
            MsgBody::AppendResp {
                match_index,
                rejected_prev,
                reject,
            }
        }
        T_HEARTBEAT => MsgBody::Heartbeat {
            commit: r.u64("commit")?,
            quiesce: read_hb_flags(r)?,
        },
        T_HEARTBEAT_RESP => MsgBody::HeartbeatResp {
            match_index: r.u64("match_index")?,
        },
        T_TIMEOUT_NOW => MsgBody::TimeoutNow,
        other => {
            return Err(WireError::BadValue {
                what: "message type",
                value: u64::from(other),
            });
        }
    };
    Ok((body, Bytes::new()))
}

/// Bit 0 of a heartbeat's flags byte.
const HB_FLAG_QUIESCE: u8 = 1;

/// A heartbeat's flags byte: the quiesce bit; any other bit set is an error.
fn read_hb_flags(r: &mut Reader<'_>) -> Result<bool, WireError> {
    let flags = r.u8("heartbeat flags")?;
    if flags & !HB_FLAG_QUIESCE != 0 {
        return Err(WireError::BadValue {
            what: "heartbeat flags",
            value: u64::from(flags),
        });
    }
    Ok(flags & HB_FLAG_QUIESCE != 0)
}

fn hb_flags(quiesce: bool) -> u8 {
    if quiesce { HB_FLAG_QUIESCE } else { 0 }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Heartbeats,
    HeartbeatResps,
    Messages,
}

/// One Append's entry records as a [`PeerBatchWriter`] writes them: bytes owned by the
/// caller are copied into the send buffer, shared ones (`Bytes`) spliced in without a
/// copy. A cached record is typically its 48-byte header (copied) and its body (spliced).
pub trait EntryParts {
    /// Bytes this writes.
    fn wire_len(&self) -> usize;
    /// Appends exactly [`Self::wire_len`] bytes to `out`.
    fn write_to(&self, out: &mut GatherBuf);
}

impl EntryParts for [u8] {
    fn wire_len(&self) -> usize {
        self.len()
    }
    fn write_to(&self, out: &mut GatherBuf) {
        out.put_slice(self);
    }
}

impl EntryParts for &[u8] {
    fn wire_len(&self) -> usize {
        self.len()
    }
    fn write_to(&self, out: &mut GatherBuf) {
        out.put_slice(self);
    }
}

impl EntryParts for Bytes {
    fn wire_len(&self) -> usize {
        self.len()
    }
    fn write_to(&self, out: &mut GatherBuf) {
        out.splice(self);
    }
}

/// Writes one peer batch frame straight into the connection's send buffer.
///
/// Sections go in order: [`heartbeat`](Self::heartbeat)s, then
/// [`heartbeat_resp`](Self::heartbeat_resp)s, then [`message`](Self::message)s (a call out
/// of order is `Misuse`). A push that would break a limit fails with nothing written;
/// the writer then finishes this frame and begins another. [`finish`](Self::finish)
/// patches the counts, length and CRC (computed over the buffer's pieces in order: the
/// bytes on the wire are the same whether entries were copied or spliced).
#[derive(Debug)]
pub struct PeerBatchWriter {
    frame: GatherFrameWriter,
    from: NodeId,
    to: NodeId,
    limits: WireLimits,
    section: Section,
    /// Where the current section's count lives in the buffer's head.
    count_at: usize,
    count: u32,
}

impl PeerBatchWriter {
    pub fn begin(
        out: &mut GatherBuf,
        request_id: u64,
        from: NodeId,
        to: NodeId,
        shard: u16,
        limits: &WireLimits,
    ) -> PeerBatchWriter {
        let frame = GatherFrameWriter::begin(out, Kind::PeerBatch, request_id);
        let head = out.head_mut();
        head.put_u32(from);
        head.put_u32(to);
        head.put_u16(shard);
        head.put_u16(0);
        let count_at = head.len();
        head.put_u32(0);
        PeerBatchWriter {
            frame,
            from,
            to,
            limits: *limits,
            section: Section::Heartbeats,
            count_at,
            count: 0,
        }
    }

    /// Bytes of this frame so far, header included (to decide when to start another).
    pub fn frame_len(&self, out: &GatherBuf) -> usize {
        self.frame.frame_len(out)
    }

    fn enter(&mut self, out: &mut GatherBuf, section: Section) -> Result<(), WireError> {
        if section < self.section {
            return Err(WireError::Misuse(
                "peer batch sections go heartbeats, responses, messages",
            ));
        }
        while self.section < section {
            self.patch_count(out);
            self.section = match self.section {
                Section::Heartbeats => Section::HeartbeatResps,
                _ => Section::Messages,
            };
            let head = out.head_mut();
            self.count_at = head.len();
            self.count = 0;
            head.put_u32(0);
        }
        Ok(())
    }

    fn patch_count(&self, out: &mut GatherBuf) {
        out.patch(self.count_at, &self.count.to_be_bytes());
    }

    /// Refuses an item of `add_bytes` for `section` before anything is written: the
    /// section's item limit, and the frame limit counting the counts still to come.
    fn check_room(
        &self,
        out: &GatherBuf,
        section: Section,
        add_bytes: usize,
        max_items: u32,
        what: &'static str,
    ) -> Result<(), WireError> {
        if section < self.section {
            return Err(WireError::Misuse(
                "peer batch sections go heartbeats, responses, messages",
            ));
        }
        let count = if section == self.section {
            self.count
        } else {
            0
        };
        if count >= max_items {
            return Err(WireError::TooMany {
                what,
                count: u64::from(count) + 1,
                max: u64::from(max_items),
            });
        }
        let counts_to_come = 4 * (Section::Messages as usize - self.section as usize);
        let after = self.frame_len(out) + add_bytes + counts_to_come;
        if after > self.limits.max_frame_bytes as usize {
            return Err(WireError::FrameTooLarge {
                len: after as u64,
                max: self.limits.max_frame_bytes,
            });
        }
        Ok(())
    }

    pub fn heartbeat(
        &mut self,
        out: &mut GatherBuf,
        group: GroupId,
        term: Term,
        commit: u64,
        quiesce: bool,
    ) -> Result<(), WireError> {
        self.check_room(
            out,
            Section::Heartbeats,
            HEARTBEAT_BYTES,
            self.limits.max_groups_per_batch,
            "heartbeats",
        )?;
        self.enter(out, Section::Heartbeats)?;
        let head = out.head_mut();
        head.put_u32(group);
        head.put_u64(term);
        head.put_u64(commit);
        head.put_u8(hb_flags(quiesce));
        self.count += 1;
        Ok(())
    }

    pub fn heartbeat_resp(
        &mut self,
        out: &mut GatherBuf,
        group: GroupId,
        term: Term,
        match_index: u64,
    ) -> Result<(), WireError> {
        self.check_room(
            out,
            Section::HeartbeatResps,
            HEARTBEAT_RESP_BYTES,
            self.limits.max_groups_per_batch,
            "heartbeat responses",
        )?;
        self.enter(out, Section::HeartbeatResps)?;
        let head = out.head_mut();
        head.put_u32(group);
        head.put_u64(term);
        head.put_u64(match_index);
        self.count += 1;
        Ok(())
    }

    /// Adds any message; `entries` must hold the Append's `count` records (empty for
    /// every other message), and is copied into the buffer. `msg.from`/`msg.to` must be
    /// the batch's.
    pub fn message(
        &mut self,
        out: &mut GatherBuf,
        group: GroupId,
        msg: &Message,
        entries: &[u8],
    ) -> Result<(), WireError> {
        self.message_parts(out, group, msg, &[entries])
    }

    /// [`Self::message`] with the Append's records given as consecutive parts (for
    /// example one per record, as a log's cache holds them): written back to back, each
    /// copied or spliced as its [`EntryParts`] says, with no concatenation.
    pub fn message_parts<P: EntryParts>(
        &mut self,
        out: &mut GatherBuf,
        group: GroupId,
        msg: &Message,
        parts: &[P],
    ) -> Result<(), WireError> {
        let entries_len: usize = parts.iter().map(EntryParts::wire_len).sum();
        if msg.from != self.from || msg.to != self.to {
            return Err(WireError::Misuse("message from/to differ from the batch's"));
        }
        let size = match msg.body {
            MsgBody::Append { count, .. } => {
                if count > self.limits.max_entries_per_append {
                    return Err(WireError::TooMany {
                        what: "append entries",
                        count: u64::from(count),
                        max: u64::from(self.limits.max_entries_per_append),
                    });
                }
                if (count == 0) != (entries_len == 0) || entries_len < count as usize {
                    return Err(WireError::Misuse("append entries do not match its count"));
                }
                8 * 4 + 4 + 4 + entries_len
            }
            _ if entries_len != 0 => {
                return Err(WireError::Misuse("only an Append carries entries"));
            }
            MsgBody::PreVote { .. } => 16,
            MsgBody::Vote { .. } => 17,
            MsgBody::PreVoteResp { .. } | MsgBody::VoteResp { .. } => 1,
            MsgBody::AppendResp { .. } => 8 + 8 + 1 + 24,
            MsgBody::Heartbeat { .. } => 8 + 1,
            MsgBody::HeartbeatResp { .. } => 8,
            MsgBody::TimeoutNow => 0,
        };
        self.check_room(
            out,
            Section::Messages,
            MESSAGE_MIN_BYTES + size,
            self.limits.max_messages_per_batch,
            "messages",
        )?;
        self.enter(out, Section::Messages)?;
        let head = out.head_mut();
        head.put_u32(group);
        head.put_u64(msg.term);
        write_msg_body(head, &msg.body, entries_len);
        let before = out.len();
        for p in parts {
            p.write_to(out);
        }
        debug_assert_eq!(out.len() - before, entries_len, "EntryParts::wire_len lied");
        self.count += 1;
        Ok(())
    }

    /// Completes the frame. An empty batch is legal (a keep-alive).
    pub fn finish(mut self, out: &mut GatherBuf) -> Result<usize, WireError> {
        self.enter(out, Section::Messages)?;
        self.patch_count(out);
        self.frame.finish(out, self.limits.max_frame_bytes)
    }

    /// Drops the frame: `out` is cut back to where it began.
    pub fn abort(self, out: &mut GatherBuf) {
        self.frame.abort(out);
    }
}

/// The message's type and fields; an Append's records follow (written by the caller).
fn write_msg_body(out: &mut BytesMut, body: &MsgBody, entries_len: usize) {
    match *body {
        MsgBody::PreVote {
            last_index,
            last_term,
        } => {
            out.put_u8(T_PRE_VOTE);
            out.put_u64(last_index);
            out.put_u64(last_term);
        }
        MsgBody::PreVoteResp { granted } => {
            out.put_u8(T_PRE_VOTE_RESP);
            out.put_u8(u8::from(granted));
        }
        MsgBody::Vote {
            last_index,
            last_term,
            transfer,
        } => {
            out.put_u8(T_VOTE);
            out.put_u64(last_index);
            out.put_u64(last_term);
            out.put_u8(u8::from(transfer));
        }
        MsgBody::VoteResp { granted } => {
            out.put_u8(T_VOTE_RESP);
            out.put_u8(u8::from(granted));
        }
        MsgBody::Append {
            prev_index,
            prev_term,
            entries_term,
            count,
            commit,
        } => {
            out.put_u8(T_APPEND);
            out.put_u64(prev_index);
            out.put_u64(prev_term);
            out.put_u64(entries_term);
            out.put_u32(count);
            out.put_u64(commit);
            out.put_u32(entries_len as u32); // bounded by the frame check before
        }
        MsgBody::AppendResp {
            match_index,
            rejected_prev,
            reject,
        } => {
            out.put_u8(T_APPEND_RESP);
            out.put_u64(match_index);
            out.put_u64(rejected_prev);
            match reject {
                None => out.put_u8(0),
                Some(h) => {
                    out.put_u8(1);
                    out.put_u64(h.last_index);
                    out.put_u64(h.conflict_term);
                    out.put_u64(h.conflict_first_index);
                }
            }
        }
        MsgBody::Heartbeat { commit, quiesce } => {
            out.put_u8(T_HEARTBEAT);
            out.put_u64(commit);
            out.put_u8(hb_flags(quiesce));
        }
        MsgBody::HeartbeatResp { match_index } => {
            out.put_u8(T_HEARTBEAT_RESP);
            out.put_u64(match_index);
        }
        MsgBody::TimeoutNow => out.put_u8(T_TIMEOUT_NOW),
    }
}

//! Client ↔ node messages. Requests are pipelined: a response carries its request's id
//! in the frame header. A failed request of any kind is answered with an
//! [`ErrorResponse`]; the `*Response` kinds below mean success.
//!
//! Byte layouts use the conventions of [`super::codec`] (`str8`, `str16`, `addr`,
//! `opt_node`), big-endian.

use bytes::{BufMut, Bytes, BytesMut};

use crate::config::HostPort;
use crate::raft::{Index, NodeId, Role, Term};

use super::body::Body;
use super::code::ResponseCode;
use super::codec::*;
use super::error::WireError;
use super::frame::{Frame, Kind};
use super::limits::WireLimits;

/// Append one body or a batch to a group's log; committed together or not at all.
///
/// ```text
/// str8 group | u32 count (1..=max_bodies_per_append) | count × (u32 len (<= max_body_bytes), bytes)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendRequest {
    pub group: String,
    /// Slices of the received frame (no copy).
    pub bodies: Vec<Bytes>,
}

impl Body for AppendRequest {
    const KIND: Kind = Kind::AppendRequest;
    fn write_body(&self, out: &mut BytesMut, limits: &WireLimits) -> Result<(), WireError> {
        put_str8(out, &self.group, "group")?;
        if self.bodies.is_empty() {
            return Err(WireError::EmptyAppend);
        }
        put_count(
            out,
            self.bodies.len(),
            limits.max_bodies_per_append,
            "bodies",
        )?;
        for b in &self.bodies {
            put_body(out, b, limits)?;
        }
        Ok(())
    }
    fn read_body(body: &Bytes, limits: &WireLimits) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let group = r.str8("group")?;
        let n = r.count("bodies", limits.max_bodies_per_append, 4)?;
        if n == 0 {
            return Err(WireError::EmptyAppend);
        }
        let mut bodies = Vec::with_capacity(n);
        for _ in 0..n {
            bodies.push(read_entry_body(&mut r, limits)?);
        }
        r.finish()?;
        Ok(AppendRequest { group, bodies })
    }
}

fn put_body(out: &mut BytesMut, b: &[u8], limits: &WireLimits) -> Result<(), WireError> {
    if b.len() > limits.max_body_bytes as usize {
        return Err(WireError::TooMany {
            what: "body bytes",
            count: b.len() as u64,
            max: u64::from(limits.max_body_bytes),
        });
    }
    out.put_u32(b.len() as u32); // <= max_body_bytes
    out.put_slice(b);
    Ok(())
}

fn read_entry_body(r: &mut Reader<'_>, limits: &WireLimits) -> Result<Bytes, WireError> {
    let len = r.u32("body length")?;
    if len > limits.max_body_bytes {
        return Err(WireError::TooMany {
            what: "body bytes",
            count: u64::from(len),
            max: u64::from(limits.max_body_bytes),
        });
    }
    r.bytes(len as usize, "body")
}

/// Where each appended entry landed, in request order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AppendedEntry {
    pub index: Index,
    /// Absolute byte position of the entry in the group's data space (DLedger's `pos`).
    pub pos: u64,
}

/// Success: every body of the request is committed.
///
/// ```text
/// u32 count | count × (u64 index, u64 pos)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendResponse {
    pub entries: Vec<AppendedEntry>,
}

impl Body for AppendResponse {
    const KIND: Kind = Kind::AppendResponse;
    fn write_body(&self, out: &mut BytesMut, limits: &WireLimits) -> Result<(), WireError> {
        put_count(
            out,
            self.entries.len(),
            limits.max_bodies_per_append,
            "entries",
        )?;
        for e in &self.entries {
            out.put_u64(e.index);
            out.put_u64(e.pos);
        }
        Ok(())
    }
    fn read_body(body: &Bytes, limits: &WireLimits) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let n = r.count("entries", limits.max_bodies_per_append, 16)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(AppendedEntry {
                index: r.u64("index")?,
                pos: r.u64("pos")?,
            });
        }
        r.finish()?;
        Ok(AppendResponse { entries })
    }
}

/// Read committed entries from `from_index`, up to `max_bytes` of bodies and at most
/// `max_bodies_per_append` entries (at least one entry is returned if any is committed,
/// even when larger than `max_bytes`).
///
/// ```text
/// str8 group | u64 from_index | u32 max_bytes
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetRequest {
    pub group: String,
    pub from_index: Index,
    pub max_bytes: u32,
}

impl Body for GetRequest {
    const KIND: Kind = Kind::GetRequest;
    fn write_body(&self, out: &mut BytesMut, _: &WireLimits) -> Result<(), WireError> {
        put_str8(out, &self.group, "group")?;
        out.put_u64(self.from_index);
        out.put_u32(self.max_bytes);
        Ok(())
    }
    fn read_body(body: &Bytes, _: &WireLimits) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let m = GetRequest {
            group: r.str8("group")?,
            from_index: r.u64("from_index")?,
            max_bytes: r.u32("max_bytes")?,
        };
        r.finish()?;
        Ok(m)
    }
}

/// One committed entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GotEntry {
    pub index: Index,
    pub term: Term,
    pub pos: u64,
    pub body: Bytes,
}

/// Committed entries `from_index..`, in order, and the commit index when read.
///
/// ```text
/// u64 commit_index | u32 count | count × (u64 index, u64 term, u64 pos, u32 len, bytes)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetResponse {
    pub commit_index: Index,
    pub entries: Vec<GotEntry>,
}

impl Body for GetResponse {
    const KIND: Kind = Kind::GetResponse;
    fn write_body(&self, out: &mut BytesMut, limits: &WireLimits) -> Result<(), WireError> {
        out.put_u64(self.commit_index);
        put_count(
            out,
            self.entries.len(),
            limits.max_bodies_per_append,
            "entries",
        )?;
        for e in &self.entries {
            out.put_u64(e.index);
            out.put_u64(e.term);
            out.put_u64(e.pos);
            put_body(out, &e.body, limits)?;
        }
        Ok(())
    }
    fn read_body(body: &Bytes, limits: &WireLimits) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let commit_index = r.u64("commit_index")?;
        let n = r.count("entries", limits.max_bodies_per_append, 28)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(GotEntry {
                index: r.u64("index")?,
                term: r.u64("term")?,
                pos: r.u64("pos")?,
                body: read_entry_body(&mut r, limits)?,
            });
        }
        r.finish()?;
        Ok(GetResponse {
            commit_index,
            entries,
        })
    }
}

/// A group's membership and state as one node sees it.
///
/// ```text
/// str8 group
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataRequest {
    pub group: String,
}

impl Body for MetadataRequest {
    const KIND: Kind = Kind::MetadataRequest;
    fn write_body(&self, out: &mut BytesMut, _: &WireLimits) -> Result<(), WireError> {
        put_str8(out, &self.group, "group")
    }
    fn read_body(body: &Bytes, _: &WireLimits) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let group = r.str8("group")?;
        r.finish()?;
        Ok(MetadataRequest { group })
    }
}

/// A node of a group with both its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub id: NodeId,
    pub peer_addr: HostPort,
    /// Unknown until the peer's handshake has told it.
    pub client_addr: Option<HostPort>,
}

/// The leader as known: its id and where clients reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderHint {
    pub id: NodeId,
    pub client_addr: Option<HostPort>,
}

/// ```text
/// str8 group | u32 self_id | u8 role | u64 term | opt_leader
/// | u64 commit_index | u64 ledger_begin | u64 ledger_end
/// | u32 peer count (<= max_peers) | peers × (u32 id, addr peer, u8 has_client, [addr client])
/// | u8 failures_tolerated
/// opt_leader = opt_node id, and if present: u8 has_client, [addr client]
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataResponse {
    pub group: String,
    pub self_id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<LeaderHint>,
    pub commit_index: Index,
    /// First index still stored (retention may have removed older ones).
    pub ledger_begin: Index,
    /// Last index in the log (committed or not).
    pub ledger_end: Index,
    pub peers: Vec<PeerInfo>,
    /// Voters the group can lose and still elect a leader and commit: `(n - 1) / 2`.
    /// 0 for a two-node group, which therefore cannot fail over.
    pub failures_tolerated: u8,
}

fn put_opt_addr(out: &mut BytesMut, a: Option<&HostPort>) -> Result<(), WireError> {
    match a {
        None => out.put_u8(0),
        Some(a) => {
            out.put_u8(1);
            put_addr(out, a, "address")?;
        }
    }
    Ok(())
}

fn read_opt_addr(r: &mut Reader<'_>) -> Result<Option<HostPort>, WireError> {
    if r.bool("address present")? {
        Ok(Some(r.addr("address")?))
    } else {
        Ok(None)
    }
}

fn put_leader(out: &mut BytesMut, l: Option<&LeaderHint>) -> Result<(), WireError> {
    put_opt_node(out, l.map(|l| l.id));
    if let Some(l) = l {
        put_opt_addr(out, l.client_addr.as_ref())?;
    }
    Ok(())
}

fn read_leader(r: &mut Reader<'_>) -> Result<Option<LeaderHint>, WireError> {
    match r.opt_node("leader")? {
        None => Ok(None),
        Some(id) => Ok(Some(LeaderHint {
            id,
            client_addr: read_opt_addr(r)?,
        })),
    }
}

impl Body for MetadataResponse {
    const KIND: Kind = Kind::MetadataResponse;
    fn write_body(&self, out: &mut BytesMut, limits: &WireLimits) -> Result<(), WireError> {
        put_str8(out, &self.group, "group")?;
        out.put_u32(self.self_id);
        put_role(out, self.role);
        out.put_u64(self.term);
        put_leader(out, self.leader.as_ref())?;
        out.put_u64(self.commit_index);
        out.put_u64(self.ledger_begin);
        out.put_u64(self.ledger_end);
        put_count(out, self.peers.len(), limits.max_peers, "peers")?;
        for p in &self.peers {
            out.put_u32(p.id);
            put_addr(out, &p.peer_addr, "peer address")?;
            put_opt_addr(out, p.client_addr.as_ref())?;
        }
        out.put_u8(self.failures_tolerated);
        Ok(())
    }
    fn read_body(body: &Bytes, limits: &WireLimits) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let group = r.str8("group")?;
        let self_id = r.u32("self_id")?;
        let role = r.role("role")?;
        let term = r.u64("term")?;
        let leader = read_leader(&mut r)?;
        let commit_index = r.u64("commit_index")?;
        let ledger_begin = r.u64("ledger_begin")?;
        let ledger_end = r.u64("ledger_end")?;
        let n = r.count("peers", limits.max_peers, 8)?;
        let mut peers = Vec::with_capacity(n);
        for _ in 0..n {
            peers.push(PeerInfo {
                id: r.u32("peer id")?,
                peer_addr: r.addr("peer address")?,
                client_addr: read_opt_addr(&mut r)?,
            });
        }
        let failures_tolerated = r.u8("failures_tolerated")?;
        r.finish()?;
        Ok(MetadataResponse {
            group,
            self_id,
            role,
            term,
            leader,
            commit_index,
            ledger_begin,
            ledger_end,
            peers,
            failures_tolerated,
        })
    }
}

/// Every group this node serves, one row each (what `cluster-list` prints).
///
/// ```text
/// (empty body)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ClusterViewRequest;

impl Body for ClusterViewRequest {
    const KIND: Kind = Kind::ClusterViewRequest;
    fn write_body(&self, _: &mut BytesMut, _: &WireLimits) -> Result<(), WireError> {
        Ok(())
    }
    fn read_body(body: &Bytes, _: &WireLimits) -> Result<Self, WireError> {
        Reader::new(body).finish()?;
        Ok(ClusterViewRequest)
    }
}

/// One group on the answering node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRow {
    pub group: String,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub ledger_end: Index,
    pub commit_index: Index,
    /// Leader: how far the slowest follower's match index is behind `ledger_end`;
    /// others: 0.
    pub max_lag: u64,
    /// Appended entries per second, averaged over the last interval.
    pub append_tps: u32,
}

/// ```text
/// str8 cluster | u32 node_id | addr client | u32 rows (<= max_groups_per_batch)
/// | rows × (str8 group, u8 role, u64 term, opt_node leader, u64 ledger_end,
///           u64 commit_index, u64 max_lag, u32 append_tps)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterViewResponse {
    pub cluster: String,
    pub node_id: NodeId,
    pub client_addr: HostPort,
    pub rows: Vec<GroupRow>,
}

impl Body for ClusterViewResponse {
    const KIND: Kind = Kind::ClusterViewResponse;
    fn write_body(&self, out: &mut BytesMut, limits: &WireLimits) -> Result<(), WireError> {
        put_str8(out, &self.cluster, "cluster")?;
        out.put_u32(self.node_id);
        put_addr(out, &self.client_addr, "client address")?;
        put_count(out, self.rows.len(), limits.max_groups_per_batch, "rows")?;
        for row in &self.rows {
            put_str8(out, &row.group, "group")?;
            put_role(out, row.role);
            out.put_u64(row.term);
            put_opt_node(out, row.leader);
            out.put_u64(row.ledger_end);
            out.put_u64(row.commit_index);
            out.put_u64(row.max_lag);
            out.put_u32(row.append_tps);
        }
        Ok(())
    }
    fn read_body(body: &Bytes, limits: &WireLimits) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let cluster = r.str8("cluster")?;
        let node_id = r.u32("node_id")?;
        let client_addr = r.addr("client address")?;
        let n = r.count("rows", limits.max_groups_per_batch, 42)?;
        let mut rows = Vec::with_capacity(n);
        for _ in 0..n {
            rows.push(GroupRow {
                group: r.str8("group")?,
                role: r.role("role")?,
                term: r.u64("term")?,
                leader: r.opt_node("leader")?,
                ledger_end: r.u64("ledger_end")?,
                commit_index: r.u64("commit_index")?,
                max_lag: r.u64("max_lag")?,
                append_tps: r.u32("append_tps")?,
            });
        }
        r.finish()?;
        Ok(ClusterViewResponse {
            cluster,
            node_id,
            client_addr,
            rows,
        })
    }
}

/// The answer to a failed request of any kind. NOT_LEADER carries the leader (with its
/// client address when known) so the client can go there directly.
///
/// ```text
/// u16 code | opt_leader (as in MetadataResponse) | str16 message
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorResponse {
    pub code: ResponseCode,
    pub leader: Option<LeaderHint>,
    pub message: String,
}

impl Body for ErrorResponse {
    const KIND: Kind = Kind::ErrorResponse;
    fn write_body(&self, out: &mut BytesMut, _: &WireLimits) -> Result<(), WireError> {
        out.put_u16(self.code.as_u16());
        put_leader(out, self.leader.as_ref())?;
        put_str16(out, &self.message, "message")
    }
    fn read_body(body: &Bytes, _: &WireLimits) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let raw = r.u16("code")?;
        let code = ResponseCode::from_u16(raw).ok_or(WireError::UnknownResponseCode(raw))?;
        let leader = read_leader(&mut r)?;
        let message = r.str16("message")?;
        r.finish()?;
        Ok(ErrorResponse {
            code,
            leader,
            message,
        })
    }
}

/// Any client-side message, for dispatch on a received frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    AppendRequest(AppendRequest),
    AppendResponse(AppendResponse),
    GetRequest(GetRequest),
    GetResponse(GetResponse),
    MetadataRequest(MetadataRequest),
    MetadataResponse(MetadataResponse),
    ClusterViewRequest(ClusterViewRequest),
    ClusterViewResponse(ClusterViewResponse),
    ErrorResponse(ErrorResponse),
}

impl ClientMessage {
    /// Decodes a client-protocol frame; peer kinds are `WrongKind`.
    pub fn decode(frame: &Frame, limits: &WireLimits) -> Result<ClientMessage, WireError> {
        let b = &frame.body;
        Ok(match frame.header.kind {
            Kind::AppendRequest => Self::AppendRequest(AppendRequest::read_body(b, limits)?),
            Kind::AppendResponse => Self::AppendResponse(AppendResponse::read_body(b, limits)?),
            Kind::GetRequest => Self::GetRequest(GetRequest::read_body(b, limits)?),
            Kind::GetResponse => Self::GetResponse(GetResponse::read_body(b, limits)?),
            Kind::MetadataRequest => Self::MetadataRequest(MetadataRequest::read_body(b, limits)?),
            Kind::MetadataResponse => {
                Self::MetadataResponse(MetadataResponse::read_body(b, limits)?)
            }
            Kind::ClusterViewRequest => {
                Self::ClusterViewRequest(ClusterViewRequest::read_body(b, limits)?)
            }
            Kind::ClusterViewResponse => {
                Self::ClusterViewResponse(ClusterViewResponse::read_body(b, limits)?)
            }
            Kind::ErrorResponse => Self::ErrorResponse(ErrorResponse::read_body(b, limits)?),
            other @ (Kind::Hello | Kind::PeerBatch) => {
                return Err(WireError::WrongKind {
                    expected: "client message",
                    found: other as u8,
                });
            }
        })
    }

    /// Encodes the message as one frame.
    pub fn encode(
        &self,
        request_id: u64,
        limits: &WireLimits,
        out: &mut BytesMut,
    ) -> Result<usize, WireError> {
        match self {
            Self::AppendRequest(m) => m.encode(request_id, limits, out),
            Self::AppendResponse(m) => m.encode(request_id, limits, out),
            Self::GetRequest(m) => m.encode(request_id, limits, out),
            Self::GetResponse(m) => m.encode(request_id, limits, out),
            Self::MetadataRequest(m) => m.encode(request_id, limits, out),
            Self::MetadataResponse(m) => m.encode(request_id, limits, out),
            Self::ClusterViewRequest(m) => m.encode(request_id, limits, out),
            Self::ClusterViewResponse(m) => m.encode(request_id, limits, out),
            Self::ErrorResponse(m) => m.encode(request_id, limits, out),
        }
    }
}

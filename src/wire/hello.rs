//! The peer handshake: the first frame each way on a peer connection.

use bytes::{BufMut, Bytes, BytesMut};

use crate::config::HostPort;
use crate::raft::NodeId;

use super::body::Body;
use super::code::ResponseCode;
use super::codec::*;
use super::error::WireError;
use super::frame::Kind;
use super::limits::WireLimits;

/// Version of the peer message set; both sides must speak the same.
/// 2: heartbeats carry a flags byte (quiesce).
pub const PROTOCOL_VERSION: u16 = 2;

/// The first frame on a peer connection, in both directions.
///
/// ```text
/// u16 protocol_version | u32 node_id | u16 shard | u16 shard_count | u16 target_shard
/// | str8 cluster | addr client (where this node serves clients; lets peers fill
/// NOT_LEADER hints)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub protocol_version: u16,
    pub node_id: NodeId,
    /// The sender's shard that owns this connection, and the sender's shard count.
    pub shard: u16,
    pub shard_count: u16,
    /// The receiver's shard the connection is for (the acceptor hands it to that shard).
    /// In the answering Hello: the shard that accepted it.
    pub target_shard: u16,
    pub cluster: String,
    pub client_addr: HostPort,
}

/// Why a handshake is refused: the code to answer with and a message for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelloRejected {
    pub code: ResponseCode,
    pub reason: String,
}

impl Hello {
    /// Checks a received handshake: same protocol version, same cluster, a known node
    /// other than `self_id`, shards in range (`target_shard` below `self_shard_count`).
    pub fn verify(
        &self,
        cluster: &str,
        self_id: NodeId,
        self_shard_count: u16,
        is_peer: impl Fn(NodeId) -> bool,
    ) -> Result<(), HelloRejected> {
        let reject = |code, reason| Err(HelloRejected { code, reason });
        if self.protocol_version != PROTOCOL_VERSION {
            return reject(
                ResponseCode::Unsupported,
                format!(
                    "peer speaks protocol {}, this node {PROTOCOL_VERSION}",
                    self.protocol_version
                ),
            );
        }
        if self.cluster != cluster {
            return reject(
                ResponseCode::UnexpectedMember,
                format!(
                    "peer is in cluster '{}', this node in '{cluster}'",
                    self.cluster
                ),
            );
        }
        if self.node_id == self_id || !is_peer(self.node_id) {
            return reject(
                ResponseCode::UnknownMember,
                format!("node id {} is not a peer of this node", self.node_id),
            );
        }
        if self.shard >= self.shard_count || self.target_shard >= self_shard_count {
            return reject(
                ResponseCode::UnexpectedArgument,
                format!(
                    "shard {} of {} asks for shard {} of {self_shard_count}",
                    self.shard, self.shard_count, self.target_shard
                ),
            );
        }
        Ok(())
    }
}

impl Body for Hello {
    const KIND: Kind = Kind::Hello;
    fn write_body(&self, out: &mut BytesMut, _: &WireLimits) -> Result<(), WireError> {
        out.put_u16(self.protocol_version);
        out.put_u32(self.node_id);
        out.put_u16(self.shard);
        out.put_u16(self.shard_count);
        out.put_u16(self.target_shard);
        put_str8(out, &self.cluster, "cluster")?;
        put_addr(out, &self.client_addr, "client address")
    }
    fn read_body(body: &Bytes, _: &WireLimits) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let m = Hello {
            protocol_version: r.u16("protocol_version")?,
            node_id: r.u32("node_id")?,
            shard: r.u16("shard")?,
            shard_count: r.u16("shard_count")?,
            target_shard: r.u16("target_shard")?,
            cluster: r.str8("cluster")?,
            client_addr: r.addr("client address")?,
        };
        r.finish()?;
        Ok(m)
    }
}

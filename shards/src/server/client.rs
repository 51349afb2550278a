//! The client service: pipelined wire requests on `listenPort`, answered by request id.
//!
//! Per connection: a reader that cuts frames and starts one task per request (at most
//! [`REQUESTS_IN_FLIGHT_MAX`] at once: the reader waits for a permit, so a client that
//! pipelines without reading answers is slowed down, not buffered without bound), and a
//! writer that sends answers as they complete (possibly out of order). A malformed frame
//! closes that connection only.

use std::{
    cell::Cell,
    net::SocketAddr,
    rc::Rc,
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use dledger::wire::{
    AppendRequest, ClientMessage, ClusterViewResponse, ErrorResponse, Frame, FrameDecoder,
    GetRequest, GetResponse, GotEntry, MetadataRequest, MetadataResponse, PeerInfo, ResponseCode,
    WireLimits,
};
use glommio::{
    channels::local_channel,
    net::{TcpListener, TcpStream},
};

use crate::net::recv::RecvBuffer;

use super::{
    group::Group,
    reply::{Answers, Reply, encode_answer},
    shard::{FORWARDED_MAX, ShardMsg, ShardState},
};
use crate::runtime::ShardStop;

/// Requests of one connection being served at once.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 1024;
/// Size of a connection's receive region: frames are cut out of it without copying (a
/// frame that straddles its end is moved to the next region).
const RECV_REGION_BYTES: usize = 256 << 10;
/// Room kept for the frame header and response fields when sizing a get answer.
const GET_RESPONSE_OVERHEAD_BYTES: usize = 4096;

/// Accepts client connections on this shard until it stops.
pub async fn accept_loop(shard: Rc<ShardState>, listener: TcpListener, stop: ShardStop) {
    loop {
        let Some(accepted) = crate::net::until_stop(&stop, listener.accept()).await else {
            return;
        };
        match accepted {
            Ok(stream) => {
                let open = shard.client_connections.get();
                if open >= shard.node_cfg.limits.max_client_connections as usize {
                    tracing::warn!(
                        open,
                        "refusing a client connection: maxClientConnections reached"
                    );
                    continue;
                }
                shard.client_connections.set(open + 1);
                let shard = shard.clone();
                let stop = stop.clone();
                glommio::spawn_local(async move {
                    let peer = stream.peer_addr().ok();
                    if let Err(e) = serve(shard.clone(), stream, stop).await {
                        tracing::debug!(?peer, error = %e, "client connection closed");
                    }
                    shard
                        .client_connections
                        .set(shard.client_connections.get() - 1);
                })
                .detach();
            }
            Err(e) => {
                tracing::warn!(error = %e, "client accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve(shard: Rc<ShardState>, stream: TcpStream, stop: ShardStop) -> Result<(), String> {
    let (mut reader, mut writer) = futures_lite::io::split(stream);
    let answers = Rc::new(Answers::new(shard.limits, REQUESTS_IN_FLIGHT_MAX));
    let reading_done = Rc::new(Cell::new(false));
    let writer_task = {
        let (answers, reading_done) = (answers.clone(), reading_done.clone());
        glommio::spawn_local(
            async move { answers.run_writer(&mut writer, || reading_done.get()).await },
        )
    };
    let decoder = FrameDecoder::new(shard.limits.max_frame_bytes);
    let mut inbuf = RecvBuffer::new(RECV_REGION_BYTES);
    // When the bytes of an unfinished frame started to arrive.
    let mut partial_since: Option<Instant> = None;
    // Once the first byte of a frame has arrived, the rest must follow within this time
    // or the connection closes: a client that trickles bytes (slowloris) cannot hold a
    // connection slot and its buffer forever (`clientFrameTimeoutMs`).
    let frame_timeout_ms = shard.node_cfg.limits.client_frame_timeout_ms;
    let frame_timeout = Duration::from_millis(frame_timeout_ms);
    // Between frames, a connection with nothing in flight is closed after this long
    // (`serverChannelMaxIdleTimeSeconds`): idle clients cannot hold the
    // `maxClientConnections` slots forever.
    let idle_timeout_ms = shard.node_cfg.limits.client_idle_timeout_ms;
    let result = loop {
        let frame = match decoder.decode(inbuf.filled()) {
            Ok(Some(frame)) => {
                partial_since = None;
                frame
            }
            Ok(None) => {
                let want = decoder.bytes_needed(inbuf.filled());
                let read = if inbuf.filled().is_empty() {
                    let read = with_timeout(inbuf.read_from(&mut reader, want), idle_timeout_ms);
                    match crate::net::until_stop(&stop, read).await {
                        // Requests still in flight: their answers are activity.
                        Some(None) if answers.outstanding() > 0 => continue,
                        Some(None) => {
                            break Err(format!(
                                "idle for {idle_timeout_ms} ms (serverChannelMaxIdleTimeSeconds); closing"
                            ));
                        }
                        Some(Some(read)) => Some(read),
                        None => None,
                    }
                } else {
                    let since = *partial_since.get_or_insert_with(Instant::now);
                    let left_ms = frame_timeout.saturating_sub(since.elapsed()).as_millis() as u64;
                    let read = with_timeout(inbuf.read_from(&mut reader, want), left_ms);
                    match crate::net::until_stop(&stop, read).await {
                        Some(None) => {
                            break Err(format!(
                                "a frame begun {} ms ago is still incomplete ({} bytes); \
                                 closing (clientFrameTimeoutMs={frame_timeout_ms})",
                                since.elapsed().as_millis(),
                                inbuf.filled().len()
                            ));
                        }
                        Some(Some(read)) => Some(read),
                        None => None,
                    }
                };
                let Some(read) = read else {
                    break Ok(());
                };
                match read {
                    Ok(0) => break Ok(()),
                    Ok(_) => continue,
                    Err(e) => break Err(e.to_string()),
                }
            }
            Err(e) => {
                // The stream cannot be resynchronised: say why (request id 0, no request
                // was read), best effort, then close.
                let why = plain_error(e.response_code(), format!("closing the connection: {e}"));
                answers.wait_room().await;
                answers.begin_request();
                answers.push(0, Err(why));
                break Err(format!("malformed frame: {e}"));
            }
        };
        let request_id = frame.header.request_id;
        let decoded = ClientMessage::decode(&frame, &shard.limits);
        answers.wait_room().await;
        answers.begin_request();
        let msg = match decoded {
            Ok(m) => m,
            Err(e) => {
                // The frame was whole and its CRC right, so the next frame's start is
                // known: answer this request with the reason and go on.
                tracing::debug!(request_id, error = %e, "malformed client request");
                let why = plain_error(e.response_code(), format!("malformed request: {e}"));
                answers.push(request_id, Err(why));
                continue;
            }
        };
        match (elsewhere(&shard, &msg), msg) {
            // The hot path: straight to the group, answered by the group's commit.
            (None, ClientMessage::AppendRequest(r)) => match group_of(&shard, &r.group) {
                Ok(group) => group.submit(
                    r.bodies,
                    Reply::Conn {
                        answers: answers.clone(),
                        request_id,
                    },
                ),
                Err(e) => answers.push(request_id, Err(e)),
            },
            (target, msg) => {
                let (shard, answers) = (shard.clone(), answers.clone());
                glommio::spawn_local(async move {
                    match target {
                        Some(target) => {
                            let answer = forward(&shard, target, frame).await;
                            answers.push_encoded(&answer);
                        }
                        None => {
                            let answer = handle_message(&shard, msg).await;
                            answers.push(request_id, answer);
                        }
                    }
                })
                .detach();
            }
        }
    };
    // Let answers in flight go out before the writer ends.
    reading_done.set(true);
    answers.poke_writer();
    answers.wait_drained().await;
    answers.poke_writer();
    let _ = writer_task.await;
    result
}

/// The shard that owns the group `msg` names, when that is not this one.
fn elsewhere(shard: &ShardState, msg: &ClientMessage) -> Option<usize> {
    let group = match msg {
        ClientMessage::AppendRequest(r) => &r.group,
        ClientMessage::GetRequest(r) => &r.group,
        ClientMessage::MetadataRequest(r) => &r.group,
        _ => return None,
    };
    if shard.groups.contains_key(group) || shard.node_cfg.group(group).is_none() {
        return None;
    }
    let target = dledger::placement::shard_of(group, shard.shard_count);
    (target != shard.shard_id).then_some(target)
}

/// Sends the request to the shard that owns its group and waits for the answer.
async fn forward(shard: &Rc<ShardState>, target: usize, frame: Frame) -> Bytes {
    let request_id = frame.header.request_id;
    if shard.forwarded.borrow().len() >= FORWARDED_MAX {
        let e = plain_error(
            ResponseCode::Overloaded,
            format!("{FORWARDED_MAX} requests already wait on other shards"),
        );
        return encode(request_id, Err(e), &shard.limits);
    }
    let token = shard.take_token();
    tracing::debug!(
        from = shard.shard_id,
        to = target,
        request_id,
        "forwarding a request to the group's shard"
    );
    let (tx, rx) = local_channel::new_bounded(1);
    shard.forwarded.borrow_mut().insert(token, tx);
    let msg = ShardMsg::Request {
        from_shard: shard.shard_id,
        token,
        frame,
    };
    if shard.mesh_tx.send_to(target, msg).await.is_err() {
        shard.forwarded.borrow_mut().remove(&token);
        let e = plain_error(
            ResponseCode::InternalError,
            format!("shard {target} is gone"),
        );
        return encode(request_id, Err(e), &shard.limits);
    }
    match rx.recv().await {
        Some(answer) => answer,
        None => {
            let e = plain_error(ResponseCode::InternalError, "a forwarded request was lost");
            encode(request_id, Err(e), &shard.limits)
        }
    }
}

/// Serves a request another shard forwarded (its frame was valid there).
pub async fn handle_frame(shard: &Rc<ShardState>, frame: &Frame) -> Bytes {
    let request_id = frame.header.request_id;
    match ClientMessage::decode(frame, &shard.limits) {
        Ok(msg) => handle(shard, request_id, msg).await,
        Err(e) => encode(
            request_id,
            Err(plain_error(ResponseCode::UnexpectedArgument, e.to_string())),
            &shard.limits,
        ),
    }
}

/// Serves one request; the answer is one encoded frame.
pub async fn handle(shard: &Rc<ShardState>, request_id: u64, msg: ClientMessage) -> Bytes {
    encode(request_id, handle_message(shard, msg).await, &shard.limits)
}

async fn handle_message(
    shard: &Rc<ShardState>,
    msg: ClientMessage,
) -> Result<ClientMessage, ErrorResponse> {
    match msg {
        ClientMessage::AppendRequest(r) => append(shard, r).await,
        ClientMessage::GetRequest(r) => get(shard, r).await,
        ClientMessage::MetadataRequest(r) => metadata(shard, r),
        ClientMessage::ClusterViewRequest(_) => cluster_view(shard).await,
        other => Err(plain_error(
            ResponseCode::Unsupported,
            format!("{} is not a request this node serves", kind_name(&other)),
        )),
    }
}

fn kind_name(m: &ClientMessage) -> &'static str {
    match m {
        ClientMessage::AppendResponse(_)
        | ClientMessage::GetResponse(_)
        | ClientMessage::MetadataResponse(_)
        | ClientMessage::ClusterViewResponse(_)
        | ClientMessage::ErrorResponse(_) => "a response",
        _ => "this kind",
    }
}

fn encode(
    request_id: u64,
    answer: Result<ClientMessage, ErrorResponse>,
    limits: &WireLimits,
) -> Bytes {
    let mut out = BytesMut::new();
    encode_answer(request_id, answer, limits, &mut out);
    out.freeze()
}

fn plain_error(code: ResponseCode, message: impl Into<String>) -> ErrorResponse {
    ErrorResponse {
        code,
        leader: None,
        message: message.into(),
    }
}

fn group_of(shard: &ShardState, name: &str) -> Result<Rc<Group>, ErrorResponse> {
    shard.groups.get(name).cloned().ok_or_else(|| {
        plain_error(
            ResponseCode::UnknownGroup,
            format!("this node serves no group named {name:?}"),
        )
    })
}

async fn append(shard: &Rc<ShardState>, r: AppendRequest) -> Result<ClientMessage, ErrorResponse> {
    let group = group_of(shard, &r.group)?;
    let rx = group.propose(r.bodies);
    match rx.recv().await {
        Some(Ok(entries)) => Ok(ClientMessage::AppendResponse(
            dledger::wire::AppendResponse { entries },
        )),
        Some(Err(e)) => Err(e),
        None => Err(plain_error(
            ResponseCode::InternalError,
            "the append was dropped without an answer",
        )),
    }
}

async fn get(shard: &Rc<ShardState>, r: GetRequest) -> Result<ClientMessage, ErrorResponse> {
    let group = group_of(shard, &r.group)?;
    let commit = group.commit_index();
    let first = group.log.first_index();
    if r.from_index < first.max(1) {
        return Err(plain_error(
            ResponseCode::IndexLessThanLocalBegin,
            format!(
                "index {} is below the first stored index {first}",
                r.from_index
            ),
        ));
    }
    let frame_room =
        (shard.limits.max_frame_bytes as usize).saturating_sub(GET_RESPONSE_OVERHEAD_BYTES);
    let budget = (r.max_bytes as usize).min(frame_room);
    let max_entries = shard.limits.max_bodies_per_append as usize;
    let mut entries = Vec::new();
    let mut bytes = 0usize;
    let mut index = r.from_index;
    while index <= commit && entries.len() < max_entries {
        let entry = group.log.entry(index).await.map_err(|e| {
            plain_error(
                ResponseCode::from_u16(e.code()).unwrap_or(ResponseCode::DiskError),
                format!("reading entry {index}: {e}"),
            )
        })?;
        let body = entry.body();
        // Noop entries (a new leader's empty entry) carry no body; clients see them as
        // empty bodies at their index, so indices stay dense.
        let cost = body.len() + 28;
        if !entries.is_empty() && bytes + cost > budget {
            break;
        }
        if cost > frame_room {
            break;
        }
        bytes += cost;
        entries.push(GotEntry {
            index,
            term: entry.term,
            pos: entry.pos,
            body,
        });
        index += 1;
    }
    Ok(ClientMessage::GetResponse(GetResponse {
        commit_index: commit,
        entries,
    }))
}

fn metadata(shard: &Rc<ShardState>, r: MetadataRequest) -> Result<ClientMessage, ErrorResponse> {
    let group = group_of(shard, &r.group)?;
    let cfg = &shard.node_cfg;
    let peers = group
        .cfg
        .members
        .iter()
        .filter_map(|&id| {
            let p = cfg.peer(id)?;
            Some(PeerInfo {
                id,
                peer_addr: p.peer_addr.clone(),
                client_addr: group.client_addr_of(id).map(super::host_port),
            })
        })
        .collect();
    Ok(ClientMessage::MetadataResponse(MetadataResponse {
        group: group.cfg.name.clone(),
        self_id: cfg.self_id,
        role: group.role(),
        term: group.term(),
        leader: group.leader_hint(),
        commit_index: group.commit_index(),
        ledger_begin: group.log.first_index(),
        ledger_end: group.last_index(),
        peers,
        // A majority of n survives (n - 1) / 2 failures; two nodes survive none.
        failures_tolerated: u8::try_from((group.cfg.members.len() - 1) / 2).unwrap_or(u8::MAX),
    }))
}

/// How long a cluster view waits for another shard's rows.
const ROWS_WAIT_MS: u64 = 1000;

/// Every group of this node, gathered from all shards.
async fn cluster_view(shard: &Rc<ShardState>) -> Result<ClientMessage, ErrorResponse> {
    let mut rows = shard.local_rows();
    let mut waiting = Vec::new();
    for target in (0..shard.shard_count).filter(|&t| t != shard.shard_id) {
        if shard.rows_wanted.borrow().len() >= FORWARDED_MAX {
            return Err(plain_error(
                ResponseCode::Overloaded,
                "too many cluster views in flight",
            ));
        }
        let token = shard.take_token();
        let (tx, rx) = local_channel::new_bounded(1);
        shard.rows_wanted.borrow_mut().insert(token, tx);
        let msg = ShardMsg::RowsRequest {
            from_shard: shard.shard_id,
            token,
        };
        if shard.mesh_tx.send_to(target, msg).await.is_err() {
            shard.rows_wanted.borrow_mut().remove(&token);
            return Err(plain_error(
                ResponseCode::InternalError,
                format!("shard {target} is gone"),
            ));
        }
        waiting.push((token, rx));
    }
    for (token, rx) in waiting {
        let got = with_timeout(rx.recv(), ROWS_WAIT_MS).await;
        shard.rows_wanted.borrow_mut().remove(&token);
        match got {
            Some(Some(more)) => rows.extend(more),
            _ => {
                return Err(plain_error(
                    ResponseCode::Timeout,
                    "a shard did not answer the cluster view in time",
                ));
            }
        }
    }
    rows.sort_by(|a, b| a.group.cmp(&b.group));
    let cfg = &shard.node_cfg;
    Ok(ClientMessage::ClusterViewResponse(ClusterViewResponse {
        cluster: cfg.cluster_name.clone(),
        node_id: cfg.self_id,
        client_addr: cfg.client_listen.clone(),
        rows,
    }))
}

/// The address clients reach this node at, resolved.
pub fn resolve(host_port: &dledger::config::HostPort) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    (host_port.host.as_str(), host_port.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host_port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host_port} resolves to no address"))
}

/// `work`'s output, or `None` after `timeout_ms`.
async fn with_timeout<F: std::future::Future>(work: F, timeout_ms: u64) -> Option<F::Output> {
    futures_lite::future::or(async { Some(work.await) }, async {
        glommio::timer::sleep(std::time::Duration::from_millis(timeout_ms)).await;
        None
    })
    .await
}

//! [`Client`]: one group's client. Finds the leader, keeps one pipelined connection per
//! node, follows NOT_LEADER redirects and retries what is worth retrying, all bounded by
//! [`ClientOptions`].
//!
//! Not `Send`: a client lives on one glommio executor; share it between that executor's
//! tasks with `Rc<Client>` (every method takes `&self`, and concurrent calls are pipelined
//! on the same connection).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use dledger::config::HostPort;
use dledger::raft::{Index, Role};
use dledger::wire::{
    AppendRequest, AppendedEntry, Body, ClientMessage, ErrorResponse, GetRequest, GetResponse,
    MetadataRequest, MetadataResponse, ResponseCode,
};
use glommio::sync::Semaphore;

use super::conn::Connection;
use super::error::{ClientError, ErrorOrigin};
use super::options::{ClientOptions, MAX_PEER_ADDRS};
use super::retry::{Backoff, Verdict, verdict};

/// Addresses the client keeps state for: the configured peers plus leaders named in
/// redirects. Past this, idle entries are dropped.
const ADDR_STATES_MAX: usize = 4 * MAX_PEER_ADDRS;

/// Counters, for harnesses and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Calls that were sent again after a failed attempt (redirects excluded).
    pub retries: u64,
    /// NOT_LEADER (or LEADER_TRANSFERRING) answers followed to another node.
    pub redirects: u64,
    /// Connections opened.
    pub connects: u64,
    /// Metadata rounds run to find the leader.
    pub discoveries: u64,
}

#[derive(Debug)]
struct AddrState {
    /// Serialises connecting, so concurrent callers share one connection.
    connect_lock: Rc<Semaphore>,
    conn: Option<Rc<Connection>>,
    /// The last failed connect, so callers that queued behind it fail fast with it.
    last_failure: Option<(Instant, ClientError)>,
}

/// Which node a call goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// The leader (appends, reads of committed entries).
    Leader,
    /// The leader if known, else any node (metadata).
    Any,
}

/// A client of one group. See the module docs.
#[derive(Debug)]
pub struct Client {
    group: String,
    peers: Vec<HostPort>,
    opts: ClientOptions,
    leader: RefCell<Option<HostPort>>,
    addrs: RefCell<HashMap<HostPort, AddrState>>,
    /// One leader discovery at a time; the others wait for its answer.
    discovery_lock: Semaphore,
    /// Rotates the node `Route::Any` starts from after a failure.
    any_cursor: Cell<usize>,
    seed: Cell<u64>,
    stats: Cell<ClientStats>,
}

impl Client {
    /// Connects to the group: validates the options, then asks the nodes for the group's
    /// metadata until one answers (within the retry bounds) and learns the leader if one
    /// is known. A group without a leader yet is not an error: calls find it later.
    pub async fn connect(
        peers: Vec<HostPort>,
        group: impl Into<String>,
        opts: ClientOptions,
    ) -> Result<Client, ClientError> {
        opts.validate().map_err(ClientError::invalid_argument)?;
        let group = group.into();
        if group.is_empty() || group.len() > 255 {
            return Err(ClientError::invalid_argument(format!(
                "group name must be 1..=255 bytes, got {}",
                group.len()
            )));
        }
        if peers.is_empty() {
            return Err(ClientError::invalid_argument("no peer addresses"));
        }
        if peers.len() > MAX_PEER_ADDRS {
            return Err(ClientError::invalid_argument(format!(
                "{} peer addresses, at most {MAX_PEER_ADDRS}",
                peers.len()
            )));
        }
        // Jitter seed: differs between processes and clients; quality hardly matters.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32);
        let client = Client {
            group,
            peers,
            opts,
            leader: RefCell::new(None),
            addrs: RefCell::new(HashMap::new()),
            discovery_lock: Semaphore::new(1),
            any_cursor: Cell::new(0),
            seed: Cell::new(seed),
            stats: Cell::new(ClientStats::default()),
        };
        client.metadata().await?;
        Ok(client)
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn peers(&self) -> &[HostPort] {
        &self.peers
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// The leader's client address as last learned.
    pub fn leader(&self) -> Option<HostPort> {
        self.leader.borrow().clone()
    }

    pub fn stats(&self) -> ClientStats {
        self.stats.get()
    }

    /// Appends `bodies` as one batch (committed together or not at all) and returns where
    /// each landed, in order. Pipelined: call it from many tasks at once.
    ///
    /// Refused before sending: an empty batch (REQUEST_WITH_EMPTY_BODYS), more bodies than
    /// `maxBodiesPerAppend` or a body over `maxBodyBytes` (OVERLOADED).
    pub async fn append(&self, bodies: &[Bytes]) -> Result<Vec<AppendedEntry>, ClientError> {
        let limits = &self.opts.limits;
        if bodies.is_empty() {
            return Err(ClientError::local(
                ResponseCode::RequestWithEmptyBodys,
                None,
                "an append needs at least one body",
            ));
        }
        if bodies.len() > limits.max_bodies_per_append as usize {
            return Err(ClientError::local(
                ResponseCode::Overloaded,
                None,
                format!(
                    "{} bodies in one append, at most {} (maxBodiesPerAppend)",
                    bodies.len(),
                    limits.max_bodies_per_append
                ),
            ));
        }
        if let Some((i, b)) = bodies
            .iter()
            .enumerate()
            .find(|(_, b)| b.len() > limits.max_body_bytes as usize)
        {
            return Err(ClientError::local(
                ResponseCode::Overloaded,
                None,
                format!(
                    "body {i} has {} bytes, at most {} (maxBodyBytes)",
                    b.len(),
                    limits.max_body_bytes
                ),
            ));
        }
        let request = AppendRequest {
            group: self.group.clone(),
            bodies: bodies.to_vec(),
        };
        let idempotent = self.opts.retry_unknown_outcome;
        let entries = self
            .call(&request, Route::Leader, idempotent, |m| match m {
                ClientMessage::AppendResponse(r) => Some(r.entries),
                _ => None,
            })
            .await?;
        if entries.len() != bodies.len() {
            return Err(ClientError::local(
                ResponseCode::InconsistentState,
                self.leader().as_ref(),
                format!(
                    "append of {} bodies answered with {} positions",
                    bodies.len(),
                    entries.len()
                ),
            )
            .with_outcome_unknown(true));
        }
        Ok(entries)
    }

    /// Committed entries from `from_index`, up to `max_bytes` of bodies (at least one entry
    /// when one is committed there), read from the leader.
    pub async fn get(&self, from_index: Index, max_bytes: u32) -> Result<GetResponse, ClientError> {
        let request = GetRequest {
            group: self.group.clone(),
            from_index,
            max_bytes,
        };
        self.call(&request, Route::Leader, true, |m| match m {
            ClientMessage::GetResponse(r) => Some(r),
            _ => None,
        })
        .await
    }

    /// The group's metadata, from the leader if known, else from any node that answers.
    /// Learns the leader from the answer.
    pub async fn metadata(&self) -> Result<MetadataResponse, ClientError> {
        let request = MetadataRequest {
            group: self.group.clone(),
        };
        self.call(&request, Route::Any, true, |m| match m {
            ClientMessage::MetadataResponse(r) => Some(r),
            _ => None,
        })
        .await
    }

    /// One metadata request to one node, no retries: what that node believes (tests use
    /// it to watch each replica).
    pub async fn metadata_from(&self, addr: &HostPort) -> Result<MetadataResponse, ClientError> {
        let request = MetadataRequest {
            group: self.group.clone(),
        };
        let conn = self.conn_to(addr).await?;
        let frame = conn.call(&request, self.opts.request_timeout()).await?;
        let msg = self.decode(&frame, addr)?;
        match msg {
            ClientMessage::MetadataResponse(r) => Ok(r),
            ClientMessage::ErrorResponse(e) => Err(server_error(e, addr)),
            other => Err(unexpected(&other, addr)),
        }
    }

    /// Sends `request` where `route` says until it succeeds or the bounds are spent.
    /// `retry_unknown`: also retry failures whose outcome is unknown (safe for reads).
    async fn call<B: Body, R>(
        &self,
        request: &B,
        route: Route,
        retry_unknown: bool,
        accept: impl Fn(ClientMessage) -> Option<R>,
    ) -> Result<R, ClientError> {
        let started = Instant::now();
        let mut backoff = Backoff::new(&self.opts, self.next_seed());
        let mut last_error: Option<ClientError> = None;
        // The last failure seen at each address, for the final message.
        let mut seen = FailureLog::default();
        let mut redirects_in_row = 0u32;
        // Whether an earlier attempt may still take effect: then so may this call, whatever
        // the last attempt said.
        let mut earlier_unknown = false;
        let mut attempts = 0u32;
        while attempts < self.opts.max_attempts && started.elapsed() < self.opts.call_deadline() {
            attempts += 1;
            let addr = match self.target(route) {
                Some(a) => a,
                None => match self.discover().await {
                    Ok(a) => a,
                    Err(e) => {
                        if e.origin == ErrorOrigin::Server && verdict(e.code) == Verdict::Fail {
                            return Err(mark(e, earlier_unknown));
                        }
                        seen.note(&e);
                        last_error = Some(e);
                        self.pause(&mut backoff, started).await;
                        continue;
                    }
                },
            };
            let outcome = match self.conn_to(&addr).await {
                Ok(conn) => conn.call(request, self.opts.request_timeout()).await,
                Err(e) => Err(e),
            };
            let msg = match outcome.and_then(|frame| self.decode(&frame, &addr)) {
                Ok(m) => m,
                Err(e) => {
                    // The node is unreachable, slow or speaking garbage.
                    self.node_failed(&addr, route);
                    if e.outcome_unknown && !retry_unknown {
                        return Err(mark(e, earlier_unknown));
                    }
                    if e.code != ResponseCode::NetworkError && e.code != ResponseCode::Timeout {
                        return Err(mark(e, earlier_unknown));
                    }
                    earlier_unknown |= e.outcome_unknown;
                    seen.note(&e);
                    last_error = Some(e);
                    self.count_retry();
                    self.pause(&mut backoff, started).await;
                    continue;
                }
            };
            let err = match msg {
                ClientMessage::ErrorResponse(e) => server_error(e, &addr),
                other => {
                    if let ClientMessage::MetadataResponse(m) = &other {
                        self.learn_leader(m, &addr);
                    }
                    return match accept(other) {
                        Some(r) => Ok(r),
                        None => Err(mark(
                            ClientError::local(
                                ResponseCode::UnexpectedArgument,
                                Some(&addr),
                                "the node answered with a message of the wrong kind",
                            ),
                            earlier_unknown,
                        )),
                    };
                }
            };
            if verdict(err.code) != Verdict::Redirect {
                redirects_in_row = 0;
            }
            match verdict(err.code) {
                Verdict::Redirect => {
                    self.count(|s| s.redirects += 1);
                    let hinted = err
                        .leader
                        .as_ref()
                        .and_then(|l| l.client_addr.clone())
                        .map(|a| reachable(a, &addr));
                    redirects_in_row += 1;
                    match hinted {
                        Some(next) if next != addr => {
                            *self.leader.borrow_mut() = Some(next);
                            // During an election stale hints can bounce a call between
                            // nodes; only the first redirect of a run goes at once.
                            if redirects_in_row > 1 {
                                self.pause(&mut backoff, started).await;
                            }
                        }
                        _ => {
                            // No usable hint (or it names the node that refused):
                            // rediscover after a pause.
                            self.forget_leader(&addr);
                            self.pause(&mut backoff, started).await;
                        }
                    }
                }
                Verdict::RetrySafe => {
                    self.count_retry();
                    self.pause(&mut backoff, started).await;
                }
                Verdict::RetryOutcomeUnknown => {
                    if !retry_unknown {
                        return Err(err.with_outcome_unknown(true));
                    }
                    earlier_unknown = true;
                    self.count_retry();
                    self.pause(&mut backoff, started).await;
                }
                Verdict::Fail => return Err(mark(err, earlier_unknown)),
            }
            seen.note(&err);
            last_error = Some(err);
        }
        let elapsed_ms = started.elapsed().as_millis();
        let mut e = last_error.unwrap_or_else(|| {
            ClientError::local(ResponseCode::Timeout, None, "no attempt could be made")
        });
        e.message = format!(
            "gave up after {attempts} attempt(s) in {elapsed_ms} ms; last: {}{}",
            e.message,
            seen.others_than(e.addr.as_ref())
        );
        Err(mark(e, earlier_unknown))
    }

    fn decode(
        &self,
        frame: &dledger::wire::Frame,
        addr: &HostPort,
    ) -> Result<ClientMessage, ClientError> {
        ClientMessage::decode(frame, &self.opts.limits).map_err(|e| {
            ClientError::local(
                e.response_code(),
                Some(addr),
                format!("undecodable answer: {e}"),
            )
            .with_outcome_unknown(true)
        })
    }

    fn target(&self, route: Route) -> Option<HostPort> {
        if let Some(l) = self.leader.borrow().as_ref() {
            return Some(l.clone());
        }
        match route {
            Route::Leader => None,
            Route::Any => Some(self.peers[self.any_cursor.get() % self.peers.len()].clone()),
        }
    }

    /// Asks the nodes, one after another, who leads; the first that knows wins. Only one
    /// discovery runs at a time: a caller that waited for another's gets its answer.
    async fn discover(&self) -> Result<HostPort, ClientError> {
        let _turn = self
            .discovery_lock
            .acquire_permit(1)
            .await
            .map_err(|e| ClientError::invalid_argument(format!("discovery lock: {e}")))?;
        if let Some(l) = self.leader() {
            return Ok(l);
        }
        self.count(|s| s.discoveries += 1);
        let request = MetadataRequest {
            group: self.group.clone(),
        };
        let mut errors: Vec<ClientError> = Vec::new();
        let start = self.any_cursor.get();
        for k in 0..self.peers.len() {
            let addr = self.peers[(start + k) % self.peers.len()].clone();
            let answer = match self.conn_to(&addr).await {
                Ok(conn) => conn.call(&request, self.opts.request_timeout()).await,
                Err(e) => Err(e),
            };
            match answer.and_then(|f| self.decode(&f, &addr)) {
                Ok(ClientMessage::MetadataResponse(m)) => {
                    if let Some(l) = self.learn_leader(&m, &addr) {
                        return Ok(l);
                    }
                    errors.push(ClientError::local(
                        ResponseCode::LeaderNotReady,
                        Some(&addr),
                        format!("node n{} knows no leader in term {}", m.self_id, m.term),
                    ));
                }
                Ok(ClientMessage::ErrorResponse(e)) => errors.push(server_error(e, &addr)),
                Ok(other) => errors.push(unexpected(&other, &addr)),
                Err(e) => {
                    self.node_failed(&addr, Route::Any);
                    errors.push(e);
                }
            }
        }
        // Every node refusing the group for good (e.g. UNKNOWN_GROUP) is final.
        if !errors.is_empty()
            && errors
                .iter()
                .all(|e| e.origin == ErrorOrigin::Server && verdict(e.code) == Verdict::Fail)
        {
            return Err(errors.swap_remove(0));
        }
        let summary: Vec<String> = errors.iter().map(ToString::to_string).collect();
        Err(ClientError::local(
            ResponseCode::LeaderNotReady,
            None,
            format!(
                "no leader of group {} found: {}",
                self.group,
                summary.join("; ")
            ),
        ))
    }

    /// Records the leader a metadata answer names; returns its client address.
    fn learn_leader(&self, m: &MetadataResponse, answered_by: &HostPort) -> Option<HostPort> {
        let addr = if m.role == Role::Leader {
            Some(answered_by.clone())
        } else {
            m.leader
                .as_ref()
                .and_then(|l| l.client_addr.clone())
                .map(|a| reachable(a, answered_by))
        };
        if let Some(a) = &addr {
            *self.leader.borrow_mut() = Some(a.clone());
        }
        addr
    }

    fn forget_leader(&self, addr: &HostPort) {
        let mut leader = self.leader.borrow_mut();
        if leader.as_ref() == Some(addr) {
            *leader = None;
        }
    }

    /// A node failed to answer: drop a dead connection, stop routing to it.
    fn node_failed(&self, addr: &HostPort, route: Route) {
        self.forget_leader(addr);
        if route == Route::Any {
            self.any_cursor.set(self.any_cursor.get().wrapping_add(1));
        }
        if let Some(st) = self.addrs.borrow_mut().get_mut(addr)
            && st.conn.as_ref().is_some_and(|c| c.is_failed())
        {
            st.conn = None;
        }
    }

    /// The live connection to `addr`, opening one if needed (one connect at a time per
    /// address; callers queued behind a failed connect get its error).
    async fn conn_to(&self, addr: &HostPort) -> Result<Rc<Connection>, ClientError> {
        let lock = {
            let mut addrs = self.addrs.borrow_mut();
            if addrs.len() >= ADDR_STATES_MAX && !addrs.contains_key(addr) {
                addrs.retain(|_, st| st.conn.is_some());
            }
            let st = addrs.entry(addr.clone()).or_insert_with(|| AddrState {
                connect_lock: Rc::new(Semaphore::new(1)),
                conn: None,
                last_failure: None,
            });
            if let Some(c) = &st.conn {
                if !c.is_failed() {
                    return Ok(c.clone());
                }
                st.conn = None;
            }
            st.connect_lock.clone()
        };
        let queued_at = Instant::now();
        let _turn = lock
            .acquire_permit(1)
            .await
            .map_err(|e| ClientError::network(addr, format!("connect lock: {e}")))?;
        {
            let addrs = self.addrs.borrow();
            if let Some(st) = addrs.get(addr) {
                if let Some(c) = &st.conn
                    && !c.is_failed()
                {
                    return Ok(c.clone());
                }
                if let Some((at, e)) = &st.last_failure
                    && *at >= queued_at
                {
                    return Err(e.clone());
                }
            }
        }
        let result = Connection::connect(addr, &self.opts).await;
        self.count(|s| s.connects += 1);
        let mut addrs = self.addrs.borrow_mut();
        let st = addrs.entry(addr.clone()).or_insert_with(|| AddrState {
            connect_lock: lock.clone(),
            conn: None,
            last_failure: None,
        });
        match result {
            Ok(c) => {
                let c = Rc::new(c);
                st.conn = Some(c.clone());
                st.last_failure = None;
                Ok(c)
            }
            Err(e) => {
                st.last_failure = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    /// Sleeps the next back-off, never past the call's deadline.
    async fn pause(&self, backoff: &mut Backoff, started: Instant) {
        let left = self.opts.call_deadline().saturating_sub(started.elapsed());
        let d = backoff.next_delay().min(left);
        if !d.is_zero() {
            glommio::timer::sleep(d).await;
        }
    }

    fn next_seed(&self) -> u64 {
        let s = self.seed.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.seed.set(s);
        s
    }

    fn count(&self, f: impl FnOnce(&mut ClientStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    fn count_retry(&self) {
        self.count(|s| s.retries += 1);
    }

    /// Drops every connection (their sockets close when in-flight calls finish).
    pub fn close(&self) {
        self.addrs.borrow_mut().clear();
    }
}

/// The last failure per address during one call (bounded by the addresses a client keeps).
#[derive(Debug, Default)]
struct FailureLog {
    by_addr: Vec<(HostPort, String)>,
}

impl FailureLog {
    fn note(&mut self, e: &ClientError) {
        let Some(addr) = &e.addr else { return };
        let text = format!("{} {}", e.code.name(), e.message);
        if let Some(slot) = self.by_addr.iter_mut().find(|(a, _)| a == addr) {
            slot.1 = text;
        } else if self.by_addr.len() < ADDR_STATES_MAX {
            self.by_addr.push((addr.clone(), text));
        }
    }

    /// `; also <addr>: <code> <message>` for every address but `last`.
    fn others_than(&self, last: Option<&HostPort>) -> String {
        self.by_addr
            .iter()
            .filter(|(a, _)| Some(a) != last)
            .map(|(a, t)| format!("; also {a}: {t}"))
            .collect()
    }
}

/// `e`, flagged outcome-unknown also when an earlier attempt of the call was.
fn mark(e: ClientError, earlier_unknown: bool) -> ClientError {
    let unknown = e.outcome_unknown || earlier_unknown;
    e.with_outcome_unknown(unknown)
}

fn server_error(e: ErrorResponse, addr: &HostPort) -> ClientError {
    ClientError {
        code: e.code,
        message: e.message,
        addr: Some(addr.clone()),
        leader: e.leader,
        origin: ErrorOrigin::Server,
        outcome_unknown: false,
    }
}

fn unexpected(m: &ClientMessage, addr: &HostPort) -> ClientError {
    ClientError::local(
        ResponseCode::UnexpectedArgument,
        Some(addr),
        format!("unexpected answer: {}", kind_name(m)),
    )
}

/// A node may advertise a wildcard listen host (`0.0.0.0`); reach it at the host we
/// already reach its peer on.
fn reachable(mut a: HostPort, via: &HostPort) -> HostPort {
    if a.host == "0.0.0.0" || a.host == "::" {
        a.host = via.host.clone();
    }
    a
}

fn kind_name(m: &ClientMessage) -> &'static str {
    match m {
        ClientMessage::AppendRequest(_) => "AppendRequest",
        ClientMessage::AppendResponse(_) => "AppendResponse",
        ClientMessage::GetRequest(_) => "GetRequest",
        ClientMessage::GetResponse(_) => "GetResponse",
        ClientMessage::MetadataRequest(_) => "MetadataRequest",
        ClientMessage::MetadataResponse(_) => "MetadataResponse",
        ClientMessage::ClusterViewRequest(_) => "ClusterViewRequest",
        ClientMessage::ClusterViewResponse(_) => "ClusterViewResponse",
        ClientMessage::ErrorResponse(_) => "ErrorResponse",
    }
}

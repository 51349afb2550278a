//! `dledger namesrv [--port 9876]`: the name server nodes register with, and
//! `cluster-list -n` asks.
//!
//! Protocol (existing wire frames, no new kinds), one short connection per exchange:
//! - a node registers by sending one or more ClusterViewResponse frames (its own view,
//!   every second, see `server::register`); the name server answers nothing;
//! - a reader sends one ClusterViewRequest; the name server answers with one
//!   ClusterViewResponse per known node (same request id), then closes the connection. A
//!   node with no registration for `EXPIRE_MS` is sent with no rows: shown as gone.
//!   Entries silent for `FORGET_MS` are dropped.
//!
//! Plain threads: one per connection, at most `MAX_CONNECTIONS` at once, each read bounded
//! by a timeout and each frame by `max_frame_bytes`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argh::FromArgs;
use bytes::BytesMut;
use dledger::wire::{Body, ClusterViewResponse, FrameDecoder, Kind, WireLimits};

/// A node not heard from for this long is shown as gone: three missed registrations
/// (`server::register` sends one every 500 ms), so a killed leader's last row stops
/// counting well within the time a new leader takes to be elected and registered.
pub const EXPIRE_MS: u64 = 1500;
/// A node not heard from for this long is forgotten.
const FORGET_MS: u64 = 60_000;
/// Nodes remembered at most (registrations beyond are refused).
const MAX_NODES: usize = 4096;
const MAX_CONNECTIONS: usize = 256;
const READ_TIMEOUT_MS: u64 = 5000;

/// Run a name server: nodes register their groups, cluster-list -n reads them.
#[derive(FromArgs, Debug, Clone, PartialEq, Eq)]
#[argh(subcommand, name = "namesrv")]
pub struct NamesrvArgs {
    /// TCP port to listen on (default 9876)
    #[argh(option, default = "9876")]
    pub port: u16,
    /// address to bind (default 0.0.0.0)
    #[argh(option, default = "String::from(\"0.0.0.0\")")]
    pub bind: String,
}

/// (cluster, node id, client address).
type NodeKey = (String, u32, String);
/// Registered views with the time of their last registration.
type Entries = HashMap<NodeKey, (Instant, ClusterViewResponse)>;
type Table = Mutex<Entries>;

pub fn run(args: NamesrvArgs) -> Result<(), String> {
    let listener = TcpListener::bind((args.bind.as_str(), args.port))
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.bind, args.port))?;
    println!("dledger namesrv listening on {}:{}", args.bind, args.port);
    let table: Arc<Table> = Arc::new(Mutex::new(HashMap::new()));
    let open = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                eprintln!("dledger namesrv: accept: {e}");
                continue;
            }
        };
        if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::AcqRel);
            continue; // dropping the stream closes it
        }
        let (table, open) = (table.clone(), open.clone());
        let spawned = std::thread::Builder::new()
            .name("namesrv-conn".into())
            .spawn(move || {
                let _ = serve(stream, &table);
                open.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            eprintln!("dledger namesrv: cannot start a connection thread: {e}");
        }
    }
    Ok(())
}

fn serve(mut stream: TcpStream, table: &Table) -> Result<(), String> {
    let limits = WireLimits::default();
    stream
        .set_read_timeout(Some(Duration::from_millis(READ_TIMEOUT_MS)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_millis(READ_TIMEOUT_MS))))
        .map_err(|e| e.to_string())?;
    let decoder = FrameDecoder::new(limits.max_frame_bytes);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while let Some(frame) = decoder.decode(&mut buf).map_err(|e| e.to_string())? {
            match frame.header.kind {
                Kind::ClusterViewResponse => {
                    let v =
                        ClusterViewResponse::decode(&frame, &limits).map_err(|e| e.to_string())?;
                    register(table, v);
                }
                Kind::ClusterViewRequest => {
                    let mut out = BytesMut::new();
                    for v in snapshot(table) {
                        v.encode(frame.header.request_id, &limits, &mut out)
                            .map_err(|e| e.to_string())?;
                    }
                    return stream.write_all(&out).map_err(|e| e.to_string());
                }
                other => return Err(format!("unexpected frame kind {other:?}")),
            }
        }
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn lock(table: &Table) -> std::sync::MutexGuard<'_, Entries> {
    // A panicking connection thread cannot leave the map half-updated (single inserts).
    table.lock().unwrap_or_else(|p| p.into_inner())
}

fn register(table: &Table, v: ClusterViewResponse) {
    let mut t = lock(table);
    let now = Instant::now();
    t.retain(|_, (at, _)| now.duration_since(*at) < Duration::from_millis(FORGET_MS));
    let key = (v.cluster.clone(), v.node_id, v.client_addr.to_string());
    if t.len() < MAX_NODES || t.contains_key(&key) {
        t.insert(key, (now, v));
    }
}

/// Every remembered node, sorted; expired ones with no rows.
fn snapshot(table: &Table) -> Vec<ClusterViewResponse> {
    let t = lock(table);
    let now = Instant::now();
    let mut keys: Vec<_> = t.keys().cloned().collect();
    keys.sort();
    keys.iter()
        .filter_map(|k| t.get(k))
        .map(|(at, v)| {
            let mut v = v.clone();
            if now.duration_since(*at) >= Duration::from_millis(EXPIRE_MS) {
                v.rows.clear();
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dledger::raft::Role;

    fn view(node_id: u32) -> ClusterViewResponse {
        crate::cluster_view::tests::view(node_id, Role::Follower, 1)
    }

    #[test]
    fn registrations_replace_and_expire_to_no_rows() {
        let table: Table = Mutex::new(HashMap::new());
        register(&table, view(0));
        register(&table, view(1));
        register(&table, view(1));
        let s = snapshot(&table);
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|v| v.rows.len() == 1));
        // Age node 1's registration past the expiry.
        {
            let mut t = lock(&table);
            let e = t
                .values_mut()
                .find(|(_, v)| v.node_id == 1)
                .expect("node 1 registered");
            e.0 = Instant::now()
                .checked_sub(Duration::from_millis(EXPIRE_MS + 1))
                .expect("the clock is past the expiry");
        }
        let s = snapshot(&table);
        assert_eq!(s.len(), 2);
        assert_eq!(
            s.iter().find(|v| v.node_id == 0).map(|v| v.rows.len()),
            Some(1)
        );
        assert_eq!(
            s.iter().find(|v| v.node_id == 1).map(|v| v.rows.len()),
            Some(0)
        );
    }
}

//! Registration with the name servers (`namesrvAddr`): every `REGISTER_INTERVAL_MS` a
//! plain thread asks this node for its cluster view (the same ClusterView request clients send, on the
//! client port) and sends the answer, as one ClusterViewResponse frame on a fresh
//! connection, to every name server. Failures are logged at debug and retried on the
//! next round; every connect, write and read is bounded by a timeout, and rounds keep a
//! fixed rate (a slow round does not push the next one back), so that a name server can
//! expire a node after a few missed rounds (`cli::namesrv::EXPIRE_MS`).

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use dledger::config::{HostPort, NodeConfig};
use dledger::wire::{Body, WireLimits};

use crate::cluster_view::cluster_view;

/// How often a node registers (name servers expire entries after three missed rounds).
pub const REGISTER_INTERVAL_MS: u64 = 500;
/// Bound on each connect / read / write of one round: a round with one unreachable name
/// server still fits in an interval.
const IO_TIMEOUT_MS: u64 = 200;

/// Starts the registration thread when name servers are configured. The thread inherits
/// the caller's signal mask (call after blocking SIGTERM/SIGINT) and ends with the process.
pub fn spawn(cfg: &NodeConfig) -> Result<(), String> {
    if cfg.namesrv.is_empty() {
        return Ok(());
    }
    let own = cfg.client_listen.to_string();
    let namesrvs = cfg.namesrv.clone();
    std::thread::Builder::new()
        .name("dledger-register".into())
        .spawn(move || {
            let interval = Duration::from_millis(REGISTER_INTERVAL_MS);
            let mut next = Instant::now();
            loop {
                round(&own, &namesrvs);
                next += interval;
                let now = Instant::now();
                if next < now {
                    // Rounds fell behind (a stalled machine): start again from now rather
                    // than firing a burst of catch-up rounds.
                    next = now;
                }
                std::thread::sleep(next - now);
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the name-server registration thread: {e}"))
}

fn round(own: &str, namesrvs: &[HostPort]) {
    let timeout = Duration::from_millis(IO_TIMEOUT_MS);
    let view = match cluster_view(own, timeout) {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!("name-server registration: own cluster view: {e}");
            return;
        }
    };
    let mut frame = BytesMut::new();
    if let Err(e) = view.encode(0, &WireLimits::default(), &mut frame) {
        tracing::warn!("name-server registration: cannot encode the cluster view: {e}");
        return;
    }
    for ns in namesrvs {
        if let Err(e) = send(ns, &frame, timeout) {
            tracing::debug!("name-server registration with {ns}: {e}");
        }
    }
}

fn send(ns: &HostPort, frame: &[u8], timeout: Duration) -> Result<(), String> {
    let addr = (ns.host.as_str(), ns.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .next()
        .ok_or("resolves to no address")?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| format!("set timeout: {e}"))?;
    s.write_all(frame).map_err(|e| format!("send: {e}"))
}

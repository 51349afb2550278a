//! The fault proxy: one TCP forwarder per directed peer link, which the nemesis can
//! switch to drop everything.
//!
//! Node `a`'s config names its peer `b` at the address of the proxy for link `a → b`,
//! which forwards to `b`'s real peer port. The transport's connections are one-way
//! (the dialer sends, the acceptor only answers the handshake), so link `a → b` carries
//! exactly what `a` sends to `b`: dropping it is one-way loss, dropping both directions a
//! partition.
//!
//! A dropped link keeps its connections open and discards what arrives either way, as a
//! cut cable would (the sender learns nothing until its own timeouts fire). On heal
//! every connection of the link is shut down, since bytes were lost mid-stream and the
//! framing cannot resume: the nodes reconnect.
//!
//! Plain threads with blocking sockets: a handful of links with one connection each.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Connections a link keeps at once; more are refused (closed at once).
pub const CONNS_PER_LINK_MAX: usize = 64;
/// Read buffer of one direction of one connection.
const PUMP_BUFFER_BYTES: usize = 64 * 1024;
/// How often an idle listener checks whether the proxy is stopping.
const ACCEPT_POLL_MS: u64 = 20;
/// How long dialing the real peer may take.
const CONNECT_TIMEOUT_MS: u64 = 1_000;

/// One directed link's switch and live connections.
#[derive(Debug, Default)]
struct Link {
    dropping: AtomicBool,
    next_conn: AtomicU64,
    conns: Mutex<Vec<(u64, TcpStream)>>,
}

impl Link {
    fn shutdown_all(&self) {
        let conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, s) in conns.iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn forget(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(c, _)| *c != id);
    }
}

/// The proxies of every directed link between `n` nodes.
#[derive(Debug)]
pub struct FaultProxy {
    n: usize,
    /// `links[from * n + to]`; the diagonal is unused.
    links: Vec<Arc<Link>>,
    /// Where node `from` must dial to reach `to`: `listen[from * n + to]`.
    listen: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a listener on a free loopback port for every directed link `from → to`,
    /// forwarding to `targets[to]`.
    pub fn start(targets: &[SocketAddr]) -> std::io::Result<FaultProxy> {
        let n = targets.len();
        let stop = Arc::new(AtomicBool::new(false));
        let mut links = Vec::with_capacity(n * n);
        let mut listen = Vec::with_capacity(n * n);
        let mut threads = Vec::new();
        for from in 0..n {
            for (to, &target) in targets.iter().enumerate() {
                let link = Arc::new(Link::default());
                let listener = TcpListener::bind("127.0.0.1:0")?;
                listen.push(listener.local_addr()?);
                links.push(link.clone());
                if from == to {
                    continue;
                }
                listener.set_nonblocking(true)?;
                let stop = stop.clone();
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("proxy-{from}-{to}"))
                        .spawn(move || accept_loop(listener, target, link, stop))?,
                );
            }
        }
        Ok(FaultProxy {
            n,
            links,
            listen,
            stop,
            threads,
        })
    }

    /// The address node `from` must use for peer `to`.
    pub fn addr(&self, from: usize, to: usize) -> SocketAddr {
        self.listen[from * self.n + to]
    }

    /// Drops (or, with `false`, heals) everything `from` sends to `to`.
    pub fn set_dropping(&self, from: usize, to: usize, dropping: bool) {
        assert!(from != to && from < self.n && to < self.n);
        let link = &self.links[from * self.n + to];
        let was = link.dropping.swap(dropping, Ordering::SeqCst);
        if was && !dropping {
            link.shutdown_all();
        }
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        for from in 0..self.n {
            for to in 0..self.n {
                if from != to {
                    self.set_dropping(from, to, false);
                }
            }
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for l in &self.links {
            l.shutdown_all();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, target: SocketAddr, link: Arc<Link>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let inbound = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(ACCEPT_POLL_MS));
                continue;
            }
            Err(_) => {
                std::thread::sleep(Duration::from_millis(ACCEPT_POLL_MS));
                continue;
            }
        };
        // A dial that fails (the peer is down) just closes the inbound side: the node
        // retries as it would against a dead peer.
        let _ = serve(inbound, target, &link);
    }
}

/// Sets up one proxied connection: pumps both ways on their own threads.
fn serve(inbound: TcpStream, target: SocketAddr, link: &Arc<Link>) -> std::io::Result<()> {
    inbound.set_nonblocking(false)?;
    let outbound = if link.dropping.load(Ordering::SeqCst) {
        None // a cut link: nothing reaches the peer, not even the dial
    } else {
        let s = TcpStream::connect_timeout(&target, Duration::from_millis(CONNECT_TIMEOUT_MS))?;
        s.set_nodelay(true)?;
        Some(s)
    };
    inbound.set_nodelay(true)?;
    let id = link.next_conn.fetch_add(1, Ordering::Relaxed);
    {
        let mut conns = link.conns.lock().unwrap_or_else(PoisonError::into_inner);
        if conns.len() >= CONNS_PER_LINK_MAX {
            let _ = inbound.shutdown(Shutdown::Both);
            return Ok(());
        }
        conns.push((id, inbound.try_clone()?));
    }
    match outbound {
        None => {
            let link = link.clone();
            let mut inbound = inbound;
            std::thread::Builder::new()
                .name("proxy-sink".into())
                .spawn(move || {
                    let mut buf = vec![0u8; PUMP_BUFFER_BYTES];
                    while matches!(inbound.read(&mut buf), Ok(n) if n > 0) {}
                    link.forget(id);
                })?;
        }
        Some(outbound) => {
            let back = (inbound.try_clone()?, outbound.try_clone()?);
            let up_link = link.clone();
            std::thread::Builder::new()
                .name("proxy-up".into())
                .spawn(move || {
                    pump(inbound, outbound, &up_link);
                    up_link.forget(id);
                })?;
            let down_link = link.clone();
            std::thread::Builder::new()
                .name("proxy-down".into())
                .spawn(move || pump(back.1, back.0, &down_link))?;
        }
    }
    Ok(())
}

/// Copies `from` to `to` until either side closes, discarding while the link drops;
/// then shuts both down so the other direction ends too.
fn pump(mut from: TcpStream, mut to: TcpStream, link: &Link) {
    let mut buf = vec![0u8; PUMP_BUFFER_BYTES];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if link.dropping.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo-less sink that reports what it received on each accepted connection.
    fn sink() -> (SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        let _ = tx.send(buf[..n].to_vec());
                    }
                });
            }
        });
        (addr, rx)
    }

    #[test]
    fn a_link_forwards_drops_and_heals_with_a_fresh_connection() {
        let (a, _rx_a) = sink();
        let (b, rx_b) = sink();
        let proxy = FaultProxy::start(&[a, b]).expect("proxy");
        let wait = Duration::from_secs(5);

        let mut c = TcpStream::connect(proxy.addr(0, 1)).expect("dial");
        c.write_all(b"hello").expect("write");
        assert_eq!(rx_b.recv_timeout(wait).expect("forwarded"), b"hello");

        proxy.set_dropping(0, 1, true);
        c.write_all(b"lost")
            .expect("write into a cut link still succeeds");
        assert!(rx_b.recv_timeout(Duration::from_millis(300)).is_err());
        // A new dial while cut reaches nothing either.
        let mut c2 = TcpStream::connect(proxy.addr(0, 1)).expect("dial");
        c2.write_all(b"also lost").expect("write");
        assert!(rx_b.recv_timeout(Duration::from_millis(300)).is_err());

        proxy.set_dropping(0, 1, false);
        // The old connections were shut down at the heal.
        c.set_read_timeout(Some(wait)).expect("timeout");
        let mut buf = [0u8; 8];
        assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
        let mut c3 = TcpStream::connect(proxy.addr(0, 1)).expect("dial");
        c3.write_all(b"again").expect("write");
        assert_eq!(rx_b.recv_timeout(wait).expect("forwarded"), b"again");
    }
}

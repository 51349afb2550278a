//! Listening sockets a node owns exclusively.
//!
//! glommio's `TcpListener::bind` sets SO_REUSEPORT so that every shard can bind the same
//! port; the price is that a second process (another `dledger server` started on the same
//! config by mistake) can bind it too and silently take half the connections. So a
//! server binds each port once, in the main thread, *without* SO_REUSEPORT: a second
//! process then fails at start-up with EADDRINUSE. Every shard accepts on a duplicate of
//! that one socket (the kernel hands each connection to one accepter).

use std::{
    net::{SocketAddr, TcpListener as StdListener},
    os::fd::{FromRawFd, IntoRawFd, OwnedFd},
    time::{Duration, Instant},
};

/// How long [`bind_exclusive`] waits for a port that is in use to be released.
///
/// Why wait at all: a predecessor on the same config that was stopped or killed moments
/// ago can still hold its listening socket after its process is gone — glommio keeps an
/// accept in flight on an io_uring, and the kernel tears a ring (and the files its
/// requests reference) down in deferred work after the process exits. A restart that
/// binds at once then sees EADDRINUSE (seen in chaos runs: SIGTERM, exit, restart 11 ms
/// later). A second *running* server still fails, only this much later.
pub const BIND_IN_USE_WAIT_MS: u64 = 3_000;
/// Pause between two binds while waiting for a port.
const BIND_RETRY_MS: u64 = 50;

/// Binds `addr` exclusively; `what` names the port's purpose in the error (e.g.
/// "clients"). A port in use is retried for [`BIND_IN_USE_WAIT_MS`]; then the error says
/// plainly that another process holds it.
pub fn bind_exclusive(addr: SocketAddr, what: &str) -> Result<StdListener, String> {
    let until = Instant::now() + Duration::from_millis(BIND_IN_USE_WAIT_MS);
    let mut waiting_said = false;
    loop {
        match StdListener::bind(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                if Instant::now() >= until {
                    return Err(format!(
                        "cannot listen for {what} on {addr}: the address is already in use \
                         (is another dledger server running with this configuration?)"
                    ));
                }
                if !waiting_said {
                    tracing::info!(%addr, what, wait_ms = BIND_IN_USE_WAIT_MS,
                        "port in use; waiting for it to be released");
                    waiting_said = true;
                }
                std::thread::sleep(Duration::from_millis(BIND_RETRY_MS));
            }
            Err(e) => return Err(format!("cannot listen for {what} on {addr}: {e}")),
        }
    }
}

/// Stops `listener` listening now, whoever else still holds a reference to its socket
/// (the shards' duplicates, an io_uring accept not yet torn down): `shutdown` on a
/// listening socket takes it out of LISTEN, so the port can be bound again at once by a
/// successor. Called when the server has stopped, before the process exits.
pub fn release(listener: &StdListener) {
    use std::os::fd::AsRawFd;
    // ENOTCONN and the like only mean it was no longer listening: nothing to release.
    let _ = nix::sys::socket::shutdown(listener.as_raw_fd(), nix::sys::socket::Shutdown::Both);
}

/// A glommio listener for the current shard on a duplicate of `listener`'s socket.
/// Must run inside a glommio executor.
///
/// The socket is made non-blocking first, for good. glommio 0.9's accept begins with an
/// optimistic `accept(2)`: it reads the file status flags, sets O_NONBLOCK, accepts and
/// writes the old flags back. The flags belong to the open file description, which every
/// shard's duplicate shares, so on a blocking socket two shards interleaving those steps
/// leave one of them calling a *blocking* `accept` on its executor thread: the whole shard
/// stops (no timers, no I/O, no group opens) until the next connection arrives. Seen at
/// start-up as a shard that opened its groups a second late (a peer's reconnect ended it),
/// failing a smoke test in CI. With O_NONBLOCK already set, the restore is a no-op.
pub fn shard_listener(listener: &StdListener) -> std::io::Result<glommio::net::TcpListener> {
    listener.set_nonblocking(true)?;
    let fd: OwnedFd = listener.try_clone()?.into();
    // SAFETY: `fd` is a bound, listening TCP socket we own exclusively (a fresh dup).
    Ok(unsafe { glommio::net::TcpListener::from_raw_fd(fd.into_raw_fd()) })
}

/// Where the kernel takes ephemeral ports from (`/proc/sys/net/ipv4/ip_local_port_range`);
/// Linux's default when the file cannot be read.
fn ephemeral_port_range() -> (u16, u16) {
    let text =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    match (it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi))) if lo <= hi => (lo, hi),
        _ => (32768, 60999),
    }
}

/// Tries before [`bind_port_outside_ephemeral`] gives up.
const FREE_PORT_TRIES_MAX: usize = 256;
/// Lowest port handed out: above the well-known and most registered service ports.
const FREE_PORT_LOWEST: u16 = 10_000;

/// A loopback listener on a port outside the kernel's ephemeral range, for harnesses and
/// tests that start servers on ports they choose: hold it while choosing more ports (so
/// no two coincide), read the port with `local_addr`, drop it before the server binds.
///
/// Why not `bind(0)`: that returns an *ephemeral* port. A harness that frees it and later
/// (re)starts a server on it races every outgoing connection on the machine — the kernel
/// may hand the same number to a client socket as its local port while the node is down,
/// and the node's restart then fails with EADDRINUSE (seen in a 300 s chaos run). Ports
/// below the ephemeral range are never assigned implicitly, so only another explicit
/// `bind` can take them. Candidates are random (many tests pick in parallel) and each is
/// probed by binding it.
pub fn bind_port_outside_ephemeral() -> std::io::Result<StdListener> {
    use std::hash::{BuildHasher, Hasher};
    let (ephemeral_lo, ephemeral_hi) = ephemeral_port_range();
    // The larger free stretch: below the ephemeral range, or above it.
    let below = (FREE_PORT_LOWEST, ephemeral_lo.saturating_sub(1));
    let above = (ephemeral_hi.saturating_add(1), u16::MAX);
    let span = |(lo, hi): (u16, u16)| if hi > lo { u32::from(hi - lo) } else { 0 };
    let (lo, hi) = if span(below) >= span(above) {
        below
    } else {
        above
    };
    if span((lo, hi)) == 0 {
        return Err(std::io::Error::other(format!(
            "no ports outside the ephemeral range {ephemeral_lo}-{ephemeral_hi}"
        )));
    }
    // std's per-map random keys are a good enough source (no extra dependency): each
    // RandomState is seeded afresh, so parallel callers try different ports.
    let width = u64::from(hi - lo) + 1;
    for _ in 0..FREE_PORT_TRIES_MAX {
        let draw = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let port = lo + u16::try_from(draw % width).expect("draw % width <= hi - lo fits u16");
        if let Ok(listener) = StdListener::bind(("127.0.0.1", port)) {
            return Ok(listener);
        }
    }
    Err(std::io::Error::other(format!(
        "no free port in {lo}-{hi} after {FREE_PORT_TRIES_MAX} tries"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_avoid_the_ephemeral_range_and_are_bindable() {
        let (lo, hi) = ephemeral_port_range();
        for _ in 0..20 {
            let held = bind_port_outside_ephemeral().expect("a free port");
            let port = held.local_addr().expect("bound").port();
            drop(held);
            assert!(
                !(lo..=hi).contains(&port),
                "{port} is ephemeral ({lo}-{hi})"
            );
            assert!(port >= FREE_PORT_LOWEST, "{port}");
            // Free when returned: bindable now (nothing else in this test holds it).
            drop(StdListener::bind(("127.0.0.1", port)).expect("still free"));
        }
    }

    #[test]
    fn a_second_bind_fails_and_says_why() {
        let first =
            bind_exclusive("127.0.0.1:0".parse().expect("addr"), "clients").expect("a free port");
        let addr = first.local_addr().expect("bound");
        let asked = Instant::now();
        let err = bind_exclusive(addr, "clients").expect_err("the port is taken");
        assert!(err.contains("already in use"), "{err}");
        assert!(err.contains(&addr.to_string()), "{err}");
        assert!(
            asked.elapsed() >= Duration::from_millis(BIND_IN_USE_WAIT_MS),
            "gave up early"
        );
    }

    /// The shards' listeners share one non-blocking socket: every duplicate, and the
    /// owner's, is O_NONBLOCK (see [`shard_listener`]).
    #[test]
    fn shard_listeners_never_block_in_accept() {
        let owner =
            bind_exclusive("127.0.0.1:0".parse().expect("addr"), "clients").expect("a free port");
        let executor = glommio::LocalExecutorBuilder::default()
            .make()
            .expect("an executor");
        let _glommio = executor.run(async { shard_listener(&owner).expect("a shard listener") });
        let dup = owner.try_clone().expect("dup");
        for listener in [&owner, &dup] {
            // Checked on the flags, not with an accept that would hang if they were wrong.
            let fd = std::os::fd::AsRawFd::as_raw_fd(listener);
            let flags = nix::fcntl::fcntl(fd, nix::fcntl::F_GETFL).expect("F_GETFL");
            let flags = nix::fcntl::OFlag::from_bits_truncate(flags);
            assert!(flags.contains(nix::fcntl::OFlag::O_NONBLOCK), "{flags:?}");
        }
    }

    #[test]
    fn a_released_port_can_be_bound_while_the_socket_is_still_open() {
        let first =
            bind_exclusive("127.0.0.1:0".parse().expect("addr"), "clients").expect("a free port");
        let addr = first.local_addr().expect("bound");
        // A duplicate stands for a reference the process cannot drop itself (a ring's).
        let still_open = first.try_clone().expect("dup");
        release(&first);
        let asked = Instant::now();
        let second = bind_exclusive(addr, "clients").expect("a released port binds");
        assert!(
            asked.elapsed() < Duration::from_millis(BIND_IN_USE_WAIT_MS),
            "it waited"
        );
        drop((still_open, first, second));
    }
}

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
};

/// Binds `addr` exclusively; `what` names the port's purpose in the error (e.g.
/// "clients"). The error says plainly when another process holds the port.
pub fn bind_exclusive(addr: SocketAddr, what: &str) -> Result<StdListener, String> {
    StdListener::bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "cannot listen for {what} on {addr}: the address is already in use \
                 (is another dledger server running with this configuration?)"
            )
        } else {
            format!("cannot listen for {what} on {addr}: {e}")
        }
    })
}

/// A glommio listener for the current shard on a duplicate of `listener`'s socket.
/// Must run inside a glommio executor.
pub fn shard_listener(listener: &StdListener) -> std::io::Result<glommio::net::TcpListener> {
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
        let err = bind_exclusive(addr, "clients").expect_err("the port is taken");
        assert!(err.contains("already in use"), "{err}");
        assert!(err.contains(&addr.to_string()), "{err}");
    }
}

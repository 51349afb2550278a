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

#[cfg(test)]
mod tests {
    use super::*;

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

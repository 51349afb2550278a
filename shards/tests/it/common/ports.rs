//! The one source of loopback ports for every test in this binary.
//!
//! Ports are drawn outside the kernel's ephemeral range (see
//! `dledger_shards::net::listen::bind_port_outside_ephemeral`: outgoing connections, of
//! which the tests make thousands, can never take them) and each is handed out at most
//! once per process: tests on other threads choose ports at the same time, and a node a
//! test killed may still hold its port for a moment after it died.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Mutex, PoisonError};

/// Draws before giving up; each draw is itself up to 256 bind attempts.
const DRAWS_MAX: usize = 64;

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A listener on a port no test in this process was given before. Hold it while
/// choosing more ports; drop it just before the server binds the port.
pub fn reserve_port() -> TcpListener {
    for _ in 0..DRAWS_MAX {
        let listener = dledger_shards::net::listen::bind_port_outside_ephemeral()
            .expect("a free port outside the ephemeral range");
        let port = listener.local_addr().expect("a bound listener").port();
        let mut given = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
        if given.get_or_insert_with(HashSet::new).insert(port) {
            return listener;
        }
    }
    panic!("no port left that this test process has not handed out already");
}

/// A port no test in this process was given before, free when returned.
pub fn free_port() -> u16 {
    reserve_port()
        .local_addr()
        .expect("a bound listener")
        .port()
}

//! Free loopback ports for a cluster's client and peer listeners.

use std::net::{SocketAddr, TcpListener};

use crate::error::{PerfError, PerfResult};

/// A client and a peer port per node, each held by a bound listener until
/// [`LoopbackPorts::release`] (or drop), so that no two chosen ports coincide and nothing
/// else in this process (a proxy binding port 0, say) is handed one of them meanwhile.
#[derive(Debug)]
pub struct LoopbackPorts {
    pub client: Vec<u16>,
    pub peer: Vec<u16>,
    held: Vec<TcpListener>,
}

impl LoopbackPorts {
    /// Ports for `nodes` nodes.
    pub fn reserve(nodes: usize) -> PerfResult<LoopbackPorts> {
        let mut held = Vec::with_capacity(2 * nodes);
        let mut take = || -> PerfResult<u16> {
            // Outside the ephemeral range: a port a downed node will bind again cannot be
            // handed to some outgoing connection meanwhile.
            let l = dledger_shards::net::listen::bind_port_outside_ephemeral()
                .map_err(|e| PerfError::Cluster(format!("no free loopback port: {e}")))?;
            let port = l
                .local_addr()
                .map_err(|e| PerfError::Cluster(format!("loopback port: {e}")))?
                .port();
            held.push(l);
            Ok(port)
        };
        let client = (0..nodes).map(|_| take()).collect::<PerfResult<Vec<_>>>()?;
        let peer = (0..nodes).map(|_| take()).collect::<PerfResult<Vec<_>>>()?;
        Ok(LoopbackPorts { client, peer, held })
    }

    /// Node `i`'s peer listener address.
    pub fn peer_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.peer[i]))
    }

    /// Every node's peer listener address.
    pub fn peer_addrs(&self) -> Vec<SocketAddr> {
        (0..self.peer.len()).map(|i| self.peer_addr(i)).collect()
    }

    /// `(n<i>, 127.0.0.1:<peer port>)` for every node: the peer list when nodes dial
    /// each other directly.
    pub fn direct_peers(&self) -> Vec<(String, String)> {
        (0..self.peer.len())
            .map(|i| (format!("n{i}"), self.peer_addr(i).to_string()))
            .collect()
    }

    /// Lets the nodes bind the ports.
    pub fn release(&mut self) {
        self.held.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_free_after_release() {
        let mut p = LoopbackPorts::reserve(3).expect("free ports");
        let mut all: Vec<u16> = p.client.iter().chain(&p.peer).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 6);
        assert!(TcpListener::bind(p.peer_addr(0)).is_err(), "held");
        p.release();
        TcpListener::bind(p.peer_addr(0)).expect("free after release");
        assert_eq!(p.direct_peers()[2].0, "n2");
    }
}

//! `--netns`: the nodes on their own hosts: one network namespace each, joined by veth
//! pairs to a bridge in the harness's namespace, each with its own address
//! (`10.213.X.(i+1)/24`, the bridge `10.213.X.254`). Nothing is on loopback: peers and
//! clients use those addresses. A node is cut off by taking its link down (the bridge
//! side of its veth pair); healing brings it back up.
//!
//! Needs root and `ip` (iproute2) with netns support; [`available`] says why not.
//! Every namespace, veth pair and the bridge are removed when the [`Netns`] is dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};

use dledger::config::HostPort;

use crate::cluster::{Cluster, Launch, Node};
use crate::error::{PerfError, PerfResult};

use super::nemesis::Network;
use super::nodes::node_settings;

/// Ports every node uses on its own address (no clash: the addresses differ).
const CLIENT_PORT: u16 = 30911;
const PEER_PORT: u16 = 40911;

/// Runs `ip args…`; the error names the command and what it printed.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// This process's effective uid (the second `Uid:` field of /proc/self/status).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Why namespaces cannot be used here, if they cannot.
pub fn available() -> Result<(), String> {
    if effective_uid() != Some(0) {
        return Err("--netns needs root (network namespaces and veth links)".into());
    }
    ip(&["netns", "list"]).map_err(|e| format!("`ip netns` is not usable: {e}"))
}

/// The namespaces, links and bridge of one run.
#[derive(Debug)]
pub struct Netns {
    bridge: String,
    namespaces: Vec<String>,
    /// The bridge-side veth of each node.
    host_links: Vec<String>,
}

impl Netns {
    /// Takes node `k`'s link up or down.
    pub fn set_link(&self, k: usize, up: bool) -> Result<(), String> {
        ip(&[
            "link",
            "set",
            &self.host_links[k],
            if up { "up" } else { "down" },
        ])
    }

    pub fn heal_all(&self) -> Result<(), String> {
        (0..self.host_links.len()).try_for_each(|k| self.set_link(k, true))
    }

    /// Node `i`'s address.
    fn addr(subnet: u8, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, subnet, i as u8 + 1)
    }

    fn setup(&mut self, n: usize, tag: u32, subnet: u8) -> Result<(), String> {
        let bridge_addr = format!("10.213.{subnet}.254/24");
        ip(&["link", "add", &self.bridge, "type", "bridge"])?;
        ip(&["addr", "add", &bridge_addr, "dev", &self.bridge])?;
        ip(&["link", "set", &self.bridge, "up"])?;
        for i in 0..n {
            let ns = format!("dlc{tag}n{i}");
            let host = format!("dlc{tag}h{i}");
            let inner = format!("dlc{tag}p{i}");
            ip(&["netns", "add", &ns])?;
            self.namespaces.push(ns.clone());
            ip(&["link", "add", &host, "type", "veth", "peer", "name", &inner])?;
            self.host_links.push(host.clone());
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["link", "set", &host, "master", &self.bridge])?;
            ip(&["link", "set", &host, "up"])?;
            let addr = format!("{}/24", Self::addr(subnet, i));
            ip(&[
                "netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", &inner,
            ])?;
            ip(&["netns", "exec", &ns, "ip", "link", "set", &inner, "up"])?;
            ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        for link in &self.host_links {
            let _ = ip(&["link", "del", link]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// Builds the namespaces and the nodes' configs; the nodes run `ip netns exec NS …`.
pub fn build(
    n: usize,
    dir: &Path,
    groups: &[String],
    base: &Launch,
) -> PerfResult<(Network, Cluster)> {
    let err = |reason: String| PerfError::BadArgument {
        flag: "--netns",
        reason,
    };
    available().map_err(err)?;
    // Distinct names and subnet per harness process, so runs can overlap.
    let tag = std::process::id() % 100_000;
    let subnet = (std::process::id() % 200) as u8 + 20;
    let mut net = Netns {
        bridge: format!("dlc{tag}br"),
        namespaces: Vec::new(),
        host_links: Vec::new(),
    };
    net.setup(n, tag, subnet).map_err(err)?;
    let peers: Vec<(String, String)> = (0..n)
        .map(|j| {
            let addr = SocketAddr::from((Netns::addr(subnet, j), PEER_PORT));
            (format!("n{j}"), addr.to_string())
        })
        .collect();
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("n{i}");
        let config = node_settings(i, &peers, CLIENT_PORT, groups, &dir.join(&name))
            .write_validated(dir, &name, "dledger-perf chaos --netns")?;
        let mut prefix = vec![
            "netns".to_string(),
            "exec".to_string(),
            net.namespaces[i].clone(),
            base.program.display().to_string(),
        ];
        prefix.extend(base.prefix.iter().cloned());
        let launch = Launch {
            program: "ip".into(),
            prefix,
            ..base.clone()
        };
        let client = HostPort {
            host: Netns::addr(subnet, i).to_string(),
            port: CLIENT_PORT,
        };
        nodes.push(Node::new(dir, &name, config, client, launch));
    }
    Ok((Network::Netns(net), Cluster::new(nodes)))
}

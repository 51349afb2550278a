//! The nemesis: applies the schedule's faults to the processes and the network, heals
//! each one when its hold ends, and notices nodes that die on their own.

use std::time::{Duration, Instant};

use dledger::config::HostPort;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::cluster::Cluster;
use crate::error::{PerfError, PerfResult};

use super::netns::Netns;
use super::nodes::STOP_GRACE_MS;
use super::proxy::FaultProxy;
use super::readback::leader_of;
use super::schedule::{Fault, Step, Target};

/// How often waiting loops look at the clock and the processes.
const WAIT_SLICE_MS: u64 = 50;
/// Lines of a crashed node's log kept in the report (from at most its last
/// `CRASH_LOG_BYTES`).
const CRASH_LOG_LINES: usize = 15;
const CRASH_LOG_BYTES: u64 = 8192;

/// How partitions are made.
#[derive(Debug)]
pub enum Network {
    /// Loopback, every peer link through a fault proxy: any set of directed links.
    Proxy(FaultProxy),
    /// Network namespaces: a node is cut off by taking its link down.
    Netns(Netns),
}

impl Network {
    /// Cuts the directed links `pairs` (proxy) or takes the links of `nodes` down
    /// (netns); returns how it was done, for the report.
    fn cut(&self, pairs: &[(usize, usize)], nodes: &[usize]) -> PerfResult<String> {
        match self {
            Network::Proxy(p) => {
                for &(from, to) in pairs {
                    p.set_dropping(from, to, true);
                }
                Ok(format!("{} proxied links dropping", pairs.len()))
            }
            Network::Netns(ns) => {
                nodes
                    .iter()
                    .try_for_each(|&k| ns.set_link(k, false))
                    .map_err(PerfError::Cluster)?;
                let names: Vec<String> = nodes.iter().map(|k| format!("n{k}")).collect();
                Ok(format!("link down: {}", names.join(", ")))
            }
        }
    }

    fn heal(&self) -> PerfResult<()> {
        match self {
            Network::Proxy(p) => {
                p.heal_all();
                Ok(())
            }
            Network::Netns(ns) => ns.heal_all().map_err(PerfError::Cluster),
        }
    }
}

/// The processes, the network and what was done to them.
#[derive(Debug)]
pub struct Nemesis {
    cluster: Cluster,
    network: Network,
    addrs: Vec<HostPort>,
    /// The group whose leader "the leader" means.
    group: String,
    /// Picks a node when a leader target has no leader to hit (seeded too).
    rng: Pcg64,
    faults: u64,
    crashes: Vec<String>,
}

impl Nemesis {
    pub fn new(
        cluster: Cluster,
        network: Network,
        addrs: Vec<HostPort>,
        group: String,
        seed: u64,
    ) -> Nemesis {
        Nemesis {
            cluster,
            network,
            addrs,
            group,
            rng: Pcg64::seed_from_u64(seed ^ 0x006e_656d_6573_6973),
            faults: 0,
            crashes: Vec::new(),
        }
    }

    pub fn faults(&self) -> u64 {
        self.faults
    }

    pub fn crashes(&self) -> Vec<String> {
        self.crashes.clone()
    }

    pub fn start_all(&mut self) -> PerfResult<()> {
        self.cluster.start_all()
    }

    /// Sleeps until `at_ms` after `epoch`, restarting (and recording) any node that
    /// exited on its own; `tick` gets the elapsed whole seconds now and then.
    pub fn wait_until(&mut self, epoch: Instant, at_ms: u64, mut tick: impl FnMut(u64)) {
        loop {
            self.reap_crashes();
            let now_ms = epoch.elapsed().as_millis() as u64;
            tick(now_ms / 1000);
            if now_ms >= at_ms {
                return;
            }
            std::thread::sleep(Duration::from_millis((at_ms - now_ms).min(WAIT_SLICE_MS)));
        }
    }

    fn reap_crashes(&mut self) {
        for (k, status) in self.cluster.take_exited() {
            let node = self.cluster.node_mut(k);
            let tail = node.log_tail(CRASH_LOG_BYTES);
            let lines: Vec<&str> = tail.lines().collect();
            let text = format!(
                "node {} exited on its own ({status}); its log ends with:\n{}",
                node.name,
                lines[lines.len().saturating_sub(CRASH_LOG_LINES)..].join("\n")
            );
            println!("chaos: CRASH: {text}");
            self.crashes.push(text);
            if let Err(e) = node.start() {
                println!("chaos: cannot restart {}: {e}", node.name);
            }
        }
    }

    fn resolve(&mut self, t: Target) -> usize {
        match t {
            Target::Node(i) => i,
            Target::Leader => leader_of(&self.addrs, &self.group)
                .unwrap_or_else(|| self.rng.random_range(0..self.cluster.len())),
        }
    }

    /// Applies `step`, holds it, heals it.
    pub fn inject(&mut self, epoch: Instant, step: &Step) -> PerfResult<()> {
        let n = self.cluster.len();
        let t_s = epoch.elapsed().as_secs_f64();
        let aimed = |t: Target| if t == Target::Leader { " (leader)" } else { "" };
        let heal_at = step.at_ms + step.hold_ms;
        self.faults += 1;
        let what = match &step.fault {
            Fault::Kill(t) => {
                let k = self.resolve(*t);
                self.cluster.node_mut(k).kill();
                self.announce(t_s, step, format!("SIGKILL n{k}{}", aimed(*t)));
                self.wait_until(epoch, heal_at, |_| {});
                self.cluster.node_mut(k).start()?;
                format!("restarted n{k}")
            }
            Fault::Pause(t) => {
                let k = self.resolve(*t);
                self.cluster.node_mut(k).pause();
                self.announce(t_s, step, format!("SIGSTOP n{k}{}", aimed(*t)));
                self.wait_until(epoch, heal_at, |_| {});
                self.cluster.node_mut(k).resume();
                format!("SIGCONT n{k}")
            }
            Fault::Isolate(t) => {
                let k = self.resolve(*t);
                let pairs: Vec<(usize, usize)> = (0..n)
                    .filter(|&j| j != k)
                    .flat_map(|j| [(k, j), (j, k)])
                    .collect();
                let how = self.network.cut(&pairs, &[k])?;
                self.announce(t_s, step, format!("isolate n{k}{} ({how})", aimed(*t)));
                self.hold_and_heal(epoch, heal_at)?
            }
            Fault::Split { minority } => {
                let mut pairs = Vec::new();
                for &a in minority {
                    for b in (0..n).filter(|b| !minority.contains(b)) {
                        pairs.extend([(a, b), (b, a)]);
                    }
                }
                let how = self.network.cut(&pairs, minority)?;
                self.announce(
                    t_s,
                    step,
                    format!("split {minority:?} from the rest ({how})"),
                );
                self.hold_and_heal(epoch, heal_at)?
            }
            Fault::OneWay { node, outbound } => {
                let k = self.resolve(*node);
                let pairs: Vec<(usize, usize)> = (0..n)
                    .filter(|&j| j != k)
                    .map(|j| if *outbound { (k, j) } else { (j, k) })
                    .collect();
                // Namespaces cannot drop one direction: there the node is cut off.
                let how = self.network.cut(&pairs, &[k])?;
                let dir = if *outbound { "from" } else { "to" };
                self.announce(
                    t_s,
                    step,
                    format!("drop everything {dir} n{k}{} ({how})", aimed(*node)),
                );
                self.hold_and_heal(epoch, heal_at)?
            }
            Fault::Transfer => match leader_of(&self.addrs, &self.group) {
                Some(k) => {
                    self.announce(t_s, step, format!("hand-over: SIGTERM leader n{k}"));
                    let node = self.cluster.node_mut(k);
                    let clean = node.stop(Duration::from_millis(STOP_GRACE_MS));
                    node.start()?;
                    self.wait_until(epoch, heal_at, |_| {});
                    format!(
                        "n{k} {} and restarted",
                        if clean { "exited" } else { "needed SIGKILL" }
                    )
                }
                None => {
                    self.faults -= 1;
                    self.wait_until(epoch, heal_at, |_| {});
                    "hand-over skipped: no leader".to_string()
                }
            },
        };
        println!(
            "chaos: t={:.1}s   heal: {what}",
            epoch.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn hold_and_heal(&mut self, epoch: Instant, heal_at: u64) -> PerfResult<String> {
        self.wait_until(epoch, heal_at, |_| {});
        self.network.heal()?;
        Ok("network healed".into())
    }

    fn announce(&self, t_s: f64, step: &Step, what: String) {
        println!(
            "chaos: t={t_s:.1}s fault {}: {what} for {} ms",
            self.faults, step.hold_ms
        );
    }

    /// Ends every fault: the network healed, paused nodes resumed, stopped ones started.
    pub fn heal_everything(&mut self) -> PerfResult<()> {
        self.network.heal()?;
        for k in 0..self.cluster.len() {
            let node = self.cluster.node_mut(k);
            node.resume();
            if !node.is_running() {
                node.start()?;
            }
        }
        self.reap_crashes();
        Ok(())
    }
}

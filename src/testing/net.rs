//! The simulated network between nodes: per-message drop, duplicate and delay (delays
//! reorder), plus symmetric and one-way partitions that cut node-to-node links for
//! every group at once.

use rand::Rng;

use super::clock::SimMs;

/// Per-message fault knobs for one run.
#[derive(Clone, Debug)]
pub struct LinkFaults {
    pub drop_prob: f64,
    pub dup_prob: f64,
    pub delay_min_ms: SimMs,
    pub delay_max_ms: SimMs,
    /// Chance that a message is held back much longer (it then arrives very stale).
    pub spike_prob: f64,
    pub spike_max_ms: SimMs,
}

impl LinkFaults {
    /// A healed network: nothing lost or duplicated, ordinary delays.
    pub fn healed(&self) -> LinkFaults {
        LinkFaults {
            drop_prob: 0.0,
            dup_prob: 0.0,
            spike_prob: 0.0,
            ..self.clone()
        }
    }
}

/// A cut: `from` nodes cannot reach `to` nodes (one direction).
#[derive(Clone, Debug)]
struct Cut {
    id: u64,
    from: Vec<usize>,
    to: Vec<usize>,
}

#[derive(Debug)]
pub struct Network {
    nodes: usize,
    faults: LinkFaults,
    cuts: Vec<Cut>,
    next_cut_id: u64,
    /// `blocked[from * nodes + to]`: recomputed from `cuts`.
    blocked: Vec<bool>,
}

/// At most two copies of one message (original and duplicate).
pub type Deliveries = ([SimMs; 2], usize);

impl Network {
    pub fn new(nodes: usize, faults: LinkFaults) -> Network {
        Network {
            nodes,
            faults,
            cuts: Vec::new(),
            next_cut_id: 0,
            blocked: vec![false; nodes * nodes],
        }
    }

    pub fn set_faults(&mut self, faults: LinkFaults) {
        self.faults = faults;
    }

    pub fn faults(&self) -> &LinkFaults {
        &self.faults
    }

    pub fn is_blocked(&self, from: usize, to: usize) -> bool {
        from != to && self.blocked[from * self.nodes + to]
    }

    /// Delays of the copies of one message that will arrive (none if lost or cut now).
    pub fn plan(&self, rng: &mut impl Rng, from: usize, to: usize) -> Deliveries {
        let mut out = ([0; 2], 0);
        if self.is_blocked(from, to)
            || (self.faults.drop_prob > 0.0 && rng.random_bool(self.faults.drop_prob))
        {
            return out;
        }
        let copies = if self.faults.dup_prob > 0.0 && rng.random_bool(self.faults.dup_prob) {
            2
        } else {
            1
        };
        for slot in out.0.iter_mut().take(copies) {
            *slot = self.delay(rng);
        }
        out.1 = copies;
        out
    }

    fn delay(&self, rng: &mut impl Rng) -> SimMs {
        let f = &self.faults;
        if f.spike_prob > 0.0 && rng.random_bool(f.spike_prob) {
            rng.random_range(f.delay_max_ms..=f.spike_max_ms.max(f.delay_max_ms))
        } else {
            rng.random_range(f.delay_min_ms..=f.delay_max_ms)
        }
    }

    /// Cut every link from `from` to `to` (and back if `symmetric`). Returns the cut's id.
    pub fn cut(&mut self, from: Vec<usize>, to: Vec<usize>, symmetric: bool) -> u64 {
        let id = self.next_cut_id;
        self.next_cut_id += 1;
        if symmetric {
            self.cuts.push(Cut {
                id,
                from: to.clone(),
                to: from.clone(),
            });
        }
        self.cuts.push(Cut { id, from, to });
        self.recompute();
        id
    }

    /// Remove the cut `id` (both directions if it was symmetric).
    pub fn heal_cut(&mut self, id: u64) {
        self.cuts.retain(|c| c.id != id);
        self.recompute();
    }

    pub fn heal_all(&mut self) {
        self.cuts.clear();
        self.recompute();
    }

    pub fn cut_count(&self) -> usize {
        self.cuts.len()
    }

    fn recompute(&mut self) {
        self.blocked.iter_mut().for_each(|b| *b = false);
        for c in &self.cuts {
            for &f in &c.from {
                for &t in &c.to {
                    self.blocked[f * self.nodes + t] = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    fn quiet() -> LinkFaults {
        LinkFaults {
            drop_prob: 0.0,
            dup_prob: 0.0,
            delay_min_ms: 1,
            delay_max_ms: 3,
            spike_prob: 0.0,
            spike_max_ms: 3,
        }
    }

    #[test]
    fn one_way_cut_blocks_one_direction_until_healed() {
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let mut net = Network::new(3, quiet());
        let id = net.cut(vec![0], vec![1, 2], false);
        assert_eq!(net.plan(&mut rng, 0, 1).1, 0);
        assert_eq!(net.plan(&mut rng, 1, 0).1, 1);
        net.heal_cut(id);
        assert_eq!(net.plan(&mut rng, 0, 1).1, 1);
    }

    #[test]
    fn symmetric_cut_blocks_both_directions() {
        let mut net = Network::new(3, quiet());
        let id = net.cut(vec![0], vec![1], true);
        assert!(net.is_blocked(0, 1) && net.is_blocked(1, 0));
        assert!(!net.is_blocked(0, 2));
        net.heal_cut(id);
        assert!(!net.is_blocked(1, 0));
    }

    #[test]
    fn delays_stay_in_range() {
        let mut rng = Pcg64Mcg::seed_from_u64(2);
        let net = Network::new(2, quiet());
        for _ in 0..100 {
            let (d, n) = net.plan(&mut rng, 0, 1);
            assert_eq!(n, 1);
            assert!((1..=3).contains(&d[0]));
        }
    }
}

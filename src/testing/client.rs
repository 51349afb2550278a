//! Simulated clients: each proposes unique, self-describing bodies to the node it
//! believes leads its group, follows redirects, and waits for acknowledgements.

use bytes::Bytes;
use rand::Rng;

use super::clock::SimMs;
use crate::raft::{Index, Term};

/// One client of one group.
#[derive(Clone, Debug)]
pub struct Client {
    pub group: usize,
    pub id: usize,
    /// The node this client sends to next.
    pub target: usize,
    /// Proposals sent and not yet acknowledged or abandoned.
    pub outstanding: usize,
    next_seq: u64,
}

impl Client {
    pub fn new(group: usize, id: usize, target: usize) -> Client {
        Client {
            group,
            id,
            target,
            outstanding: 0,
            next_seq: 0,
        }
    }

    /// `count` fresh bodies `g<group>/c<client>/s<seq>` followed by `pad` filler bytes
    /// (varied sizes exercise the driver's byte-budget splitting).
    pub fn make_bodies(
        &mut self,
        count: u32,
        pad_max_bytes: usize,
        rng: &mut impl Rng,
    ) -> Vec<Bytes> {
        (0..count)
            .map(|_| {
                let seq = self.next_seq;
                self.next_seq += 1;
                let mut s = format!("g{}/c{}/s{}", self.group, self.id, seq);
                let pad = if pad_max_bytes > 0 {
                    rng.random_range(0..=pad_max_bytes)
                } else {
                    0
                };
                s.extend(std::iter::repeat_n('.', pad));
                Bytes::from(s)
            })
            .collect()
    }
}

/// A proposal a node accepted and the client waits on.
#[derive(Clone, Debug)]
pub struct Pending {
    pub client: usize,
    /// Incarnation of the node that accepted it (a restart abandons it).
    pub incarnation: u32,
    pub first: Index,
    pub term: Term,
    pub bodies: Vec<Bytes>,
    pub proposed_ms: SimMs,
}

impl Pending {
    pub fn last(&self) -> Index {
        self.first + self.bodies.len() as Index - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn bodies_are_unique_and_self_describing() {
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let mut c = Client::new(2, 1, 0);
        let a = c.make_bodies(2, 4, &mut rng);
        let b = c.make_bodies(1, 0, &mut rng);
        assert!(a[0].starts_with(b"g2/c1/s0"));
        assert!(a[1].starts_with(b"g2/c1/s1"));
        assert_eq!(&b[0][..], b"g2/c1/s2");
    }
}

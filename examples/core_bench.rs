//! Micro-benchmark of the Raft core alone (no simulator, no I/O):
//!
//! 1. one busy group: a leader and two followers wired in memory; each round proposes,
//!    steps every message and reports every write durable at once. Prints proposals/s,
//!    messages stepped/s, and heap allocations per proposal on the steady path (counted
//!    by a global allocator wrapper: it must print 0).
//! 2. 1,000 idle groups of 3 nodes: every node ticked, heartbeats delivered. Prints node
//!    ticks/s and ns per tick per group.
//!
//! Run: `cargo run --release -p dledger --example core_bench [-- --proposals N --ticks N]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use dledger::raft::{
    Config, Index, LogWrite, Message, Node, NodeId, Outbox, Recovered, Role, Term,
};

/// Counts every allocation so the steady path can be shown to allocate nothing.
struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[derive(argh::FromArgs)]
/// Raft core micro-benchmark.
struct Args {
    /// proposals for the busy-group run
    #[argh(option, default = "1_000_000")]
    proposals: u64,
    /// ticks for the idle-groups run
    #[argh(option, default = "2_000")]
    ticks: u64,
    /// idle groups
    #[argh(option, default = "1_000")]
    groups: usize,
}

fn config(id: NodeId) -> Config {
    Config {
        id,
        voters: vec![0, 1, 2],
        election_timeout_min_ticks: 10,
        election_timeout_max_ticks: 20,
        heartbeat_interval_ticks: 2,
        max_inflight_appends: 64,
        max_batch_entries: 64,
        max_uncommitted_entries: 100_000,
        check_quorum: true,
        preferred_leader: None,
        #[cfg(feature = "planted-bugs")]
        planted: None,
    }
}

/// Three nodes in memory. Writes are "durable" as soon as they are applied.
struct Group {
    nodes: [Node; 3],
    queue: VecDeque<Message>,
    out: Outbox,
    stepped: u64,
}

impl Group {
    fn new(seed: u64) -> Group {
        let node = |id: NodeId| {
            Node::new(config(id), Recovered::default(), seed * 3 + u64::from(id))
                .expect("static config is valid")
        };
        Group {
            nodes: [node(0), node(1), node(2)],
            queue: VecDeque::with_capacity(4096),
            out: Outbox {
                hard_state: None,
                log_writes: Vec::with_capacity(256),
                messages: Vec::with_capacity(4096),
                events: Vec::with_capacity(256),
            },
            stepped: 0,
        }
    }

    /// Take node `i`'s outbox: queue its messages, report its writes durable.
    fn drain(&mut self, i: usize) {
        loop {
            let mut last_write: Option<(Index, Term)> = None;
            for w in &self.out.log_writes {
                last_write = match *w {
                    LogWrite::Truncate { .. } => last_write,
                    LogWrite::Proposed { last, term, .. }
                    | LogWrite::FromMessage { last, term, .. } => Some((last, term)),
                    LogWrite::Noop { index, term } => Some((index, term)),
                };
            }
            self.queue.extend(self.out.messages.iter().copied());
            self.out.clear();
            match last_write {
                Some((index, term)) => self.nodes[i].persisted(index, term, &mut self.out),
                None => return,
            }
        }
    }

    fn deliver(&mut self) {
        while let Some(m) = self.queue.pop_front() {
            let to = m.to as usize;
            self.nodes[to].step(m, &mut self.out);
            self.stepped += 1;
            self.drain(to);
        }
    }

    fn tick_all(&mut self) {
        for i in 0..3 {
            self.nodes[i].tick(&mut self.out);
            self.drain(i);
        }
        self.deliver();
    }

    fn leader(&self) -> Option<usize> {
        self.nodes.iter().position(|n| n.role() == Role::Leader)
    }

    fn elect(&mut self) -> usize {
        for _ in 0..1000 {
            if let Some(l) = self.leader() {
                return l;
            }
            self.tick_all();
        }
        panic!("no leader after 1000 ticks");
    }
}

fn busy_group(proposals: u64) {
    let mut g = Group::new(1);
    let leader = g.elect();
    // Warm up: let every reserved buffer reach its steady size.
    let run = |g: &mut Group, count: u64| {
        for p in 0..count {
            g.nodes[leader]
                .propose(1, &mut g.out)
                .expect("the only leader accepts");
            g.drain(leader);
            g.deliver();
            if p % 32 == 0 {
                g.tick_all();
            }
        }
    };
    run(&mut g, 10_000);
    let stepped_before = g.stepped;
    let allocs_before = ALLOCATIONS.load(Ordering::Relaxed);
    let start = Instant::now();
    run(&mut g, proposals);
    let secs = start.elapsed().as_secs_f64();
    let allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocs_before;
    let stepped = g.stepped - stepped_before;
    let commit = g.nodes[leader].commit_index();
    assert!(commit >= proposals, "everything proposed committed");
    println!("busy group (leader + 2 followers, 1 entry per proposal, instant durability):");
    println!(
        "  {proposals} proposals in {secs:.3} s: {:.0} proposals/s, {:.0} messages stepped/s ({:.2} messages per proposal)",
        proposals as f64 / secs,
        stepped as f64 / secs,
        stepped as f64 / proposals as f64
    );
    println!(
        "  heap allocations on the steady path: {allocs} ({:.6} per proposal)",
        allocs as f64 / proposals as f64
    );
}

fn idle_groups(groups: usize, ticks: u64) {
    let mut all: Vec<Group> = (0..groups).map(|i| Group::new(i as u64 + 10)).collect();
    for g in &mut all {
        g.elect();
    }
    let allocs_before = ALLOCATIONS.load(Ordering::Relaxed);
    let start = Instant::now();
    for _ in 0..ticks {
        for g in &mut all {
            g.tick_all();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocs_before;
    let leaders = all.iter().filter(|g| g.leader().is_some()).count();
    let node_ticks = ticks as f64 * groups as f64 * 3.0;
    println!("idle groups ({groups} groups x 3 nodes, heartbeat every 2 ticks, delivered):");
    println!(
        "  {ticks} ticks in {secs:.3} s: {:.0} node ticks/s, {:.0} ns per tick per group (3 nodes + their heartbeats), {leaders}/{groups} groups keep a leader, {allocs} allocations",
        node_ticks / secs,
        secs * 1e9 / (ticks as f64 * groups as f64)
    );
}

fn main() {
    let args: Args = argh::from_env();
    busy_group(args.proposals);
    idle_groups(args.groups, args.ticks);
}

//! A deterministic simulation of a cluster of membership cores: a seeded
//! RNG, a virtual clock, and an event queue of ticks, message deliveries
//! (with latency, loss and partitions) and layout pulls. Nodes crash, restart
//! with a new generation, or are wiped and come back under a new id.
//!
//! Shared by the integration tests and `benches/convergence.rs`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

use gyre_membership::{
    Change, Config, Error, Event, LayoutStamp, Membership, Message, NodeInfo, Output,
};
use gyre_ring::{Layout, RingConfig};
use gyre_types::{NodeId, PartitionCount, ZoneName};

/// The test side's own SplitMix64, so that a seed replays forever.
#[derive(Clone, Debug)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = (hi - lo).as_micros() as u64;
        lo + Duration::from_micros(self.below(span + 1))
    }
}

/// How the simulated network and nodes behave.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// One-way latency, uniform in this range.
    pub latency: (Duration, Duration),
    /// Probability that a message (or a layout pull or its answer) is lost.
    pub loss: f64,
    /// The membership configuration of every node.
    pub membership: Config,
    /// How many of the first nodes are seeds.
    pub seeds: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            latency: (Duration::from_millis(1), Duration::from_millis(10)),
            loss: 0.0,
            membership: Config {
                ring: RingConfig {
                    partitions: PartitionCount::new(64).unwrap(),
                    replication: 3,
                },
                ..Config::default()
            },
            seeds: 3,
        }
    }
}

/// One simulated node.
pub struct SimNode {
    pub m: Membership,
    pub info: NodeInfo,
    pub alive: bool,
    /// Bumped on every crash and restart: ticks of a previous life are void.
    pub incarnation: u64,
    /// Every event the node reported, with its time.
    pub events: Vec<(Duration, Event)>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Work {
    Tick {
        node: NodeId,
        incarnation: u64,
    },
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: Box<MessageOrd>,
    },
    PullRequest {
        requester: NodeId,
        holder: NodeId,
    },
    LayoutArrives {
        to: NodeId,
        layout: Box<LayoutOrd>,
    },
}

/// Wrappers so that `Work` can sit in an ordered heap (ties are broken by a
/// sequence number first, so these comparisons never decide anything).
#[derive(Debug)]
struct MessageOrd(Message);
#[derive(Debug)]
struct LayoutOrd(Vec<Layout>);
macro_rules! never_compared {
    ($t:ty) => {
        impl PartialEq for $t {
            fn eq(&self, _: &Self) -> bool {
                true
            }
        }
        impl Eq for $t {}
        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $t {
            fn cmp(&self, _: &Self) -> std::cmp::Ordering {
                std::cmp::Ordering::Equal
            }
        }
    };
}
never_compared!(MessageOrd);
never_compared!(LayoutOrd);

/// A cluster on a virtual clock.
pub struct Sim {
    pub seed: u64,
    pub now: Duration,
    pub config: SimConfig,
    pub rng: SimRng,
    queue: BinaryHeap<Reverse<(Duration, u64, Work)>>,
    seq: u64,
    pub nodes: BTreeMap<NodeId, SimNode>,
    /// Node → side while partitioned.
    sides: BTreeMap<NodeId, u32>,
    pub seeds: Vec<NodeId>,
    pub messages_sent: u64,
    pub messages_lost: u64,
}

impl Sim {
    pub fn new(seed: u64, config: SimConfig) -> Self {
        Self {
            seed,
            now: Duration::ZERO,
            rng: SimRng::new(seed),
            config,
            queue: BinaryHeap::new(),
            seq: 0,
            nodes: BTreeMap::new(),
            sides: BTreeMap::new(),
            seeds: Vec::new(),
            messages_sent: 0,
            messages_lost: 0,
        }
    }

    fn interval(&self) -> Duration {
        self.config.membership.gossip_interval
    }

    fn schedule(&mut self, at: Duration, work: Work) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, work)));
    }

    /// Starts a new node in `zone` (with a fresh random id); the first
    /// `config.seeds` nodes become seeds, and every node is introduced to the
    /// seeds that exist.
    pub fn add_node(&mut self, zone: &str) -> NodeId {
        let id = loop {
            let id = NodeId::new(self.rng.next_u64());
            if !self.nodes.contains_key(&id) {
                break id;
            }
        };
        let info = NodeInfo {
            id,
            peer_addr: format!("{id}.sim:7000"),
            client_addrs: vec![format!("{id}.sim:6379")],
            zone: ZoneName::new(zone).unwrap(),
            capacity: 1,
        };
        let node = self.boot(info, None, 0);
        self.nodes.insert(id, node);
        if self.seeds.len() < self.config.seeds {
            self.seeds.push(id);
        }
        id
    }

    fn boot(&mut self, info: NodeInfo, layout: Option<Layout>, incarnation: u64) -> SimNode {
        let id = info.id;
        // Generation: virtual wall-clock milliseconds, plus one so that a
        // restart in the same millisecond still wins.
        let generation = self.now.as_millis() as u64 + 1 + incarnation;
        let mut m = Membership::new(
            info.clone(),
            generation,
            layout,
            self.config.membership.clone(),
            self.rng.next_u64(),
        )
        .unwrap();
        for s in &self.seeds {
            if *s != id {
                m.introduce(*s, format!("{s}.sim:7000"));
            }
        }
        let phase = self.rng.duration(Duration::ZERO, self.interval());
        self.schedule(
            self.now + phase,
            Work::Tick {
                node: id,
                incarnation,
            },
        );
        SimNode {
            m,
            info,
            alive: true,
            incarnation,
            events: Vec::new(),
        }
    }

    /// Stops a node: it neither ticks nor receives.
    pub fn crash(&mut self, id: NodeId) {
        let n = self.nodes.get_mut(&id).unwrap();
        n.alive = false;
        n.incarnation += 1;
    }

    /// Starts a crashed node again: same id and layout, new generation.
    pub fn restart(&mut self, id: NodeId) {
        let (info, layout, incarnation, events) = {
            let n = self.nodes.get_mut(&id).unwrap();
            assert!(!n.alive, "restart of a live node");
            (
                n.info.clone(),
                n.m.layout().cloned(),
                n.incarnation + 1,
                std::mem::take(&mut n.events),
            )
        };
        let mut node = self.boot(info, layout, incarnation);
        node.events = events;
        self.nodes.insert(id, node);
    }

    /// Crashes a node and starts it with empty data: a fresh id, no layout.
    /// The old id stays in `nodes`, dead.
    pub fn wipe(&mut self, id: NodeId) -> NodeId {
        if self.nodes[&id].alive {
            self.crash(id);
        }
        let zone = self.nodes[&id].info.zone.as_str().to_owned();
        let seeds_before = self.seeds.len();
        let new = self.add_node(&zone);
        self.seeds.truncate(seeds_before);
        new
    }

    /// Cuts the network into sides; messages between sides are lost. Nodes
    /// not listed are on side 0.
    pub fn partition(&mut self, sides: &[&[NodeId]]) {
        self.sides.clear();
        for (i, side) in sides.iter().enumerate() {
            for id in *side {
                self.sides.insert(*id, i as u32);
            }
        }
    }

    pub fn heal(&mut self) {
        self.sides.clear();
    }

    fn reachable(&self, a: NodeId, b: NodeId) -> bool {
        self.sides.get(&a).copied().unwrap_or(0) == self.sides.get(&b).copied().unwrap_or(0)
    }

    /// Schedules a network hop from `from` to `to`, or loses it.
    fn hop(&mut self, from: NodeId, to: NodeId, work: Work) {
        self.messages_sent += 1;
        if !self.reachable(from, to) || self.rng.unit() < self.config.loss {
            self.messages_lost += 1;
            return;
        }
        let (lo, hi) = self.config.latency;
        let at = self.now + self.rng.duration(lo, hi);
        self.schedule(at, work);
    }

    fn handle(&mut self, node: NodeId, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Send { to, msg } => self.hop(
                    node,
                    to,
                    Work::Deliver {
                        from: node,
                        to,
                        msg: Box::new(MessageOrd(msg)),
                    },
                ),
                Output::PullLayout { from, .. } => self.hop(
                    node,
                    from,
                    Work::PullRequest {
                        requester: node,
                        holder: from,
                    },
                ),
                Output::Event(e) => {
                    let now = self.now;
                    if let Some(n) = self.nodes.get_mut(&node) {
                        n.events.push((now, e));
                    }
                }
            }
        }
    }

    fn live_mut(&mut self, id: NodeId) -> Option<&mut SimNode> {
        self.nodes.get_mut(&id).filter(|n| n.alive)
    }

    /// Runs the next piece of work; false when the queue is empty.
    fn step(&mut self) -> bool {
        let Some(Reverse((at, _, work))) = self.queue.pop() else {
            return false;
        };
        self.now = at;
        let now = at;
        match work {
            Work::Tick { node, incarnation } => {
                let interval = self.interval();
                let Some(n) = self.live_mut(node) else {
                    return true;
                };
                if n.incarnation != incarnation {
                    return true;
                }
                let out = n.m.tick(now);
                self.schedule(now + interval, Work::Tick { node, incarnation });
                self.handle(node, out);
            }
            Work::Deliver { from, to, msg } => {
                if !self.reachable(from, to) {
                    return true;
                }
                if let Some(n) = self.live_mut(to) {
                    let out = n.m.receive(now, from, msg.0);
                    self.handle(to, out);
                }
            }
            Work::PullRequest { requester, holder } => {
                if !self.reachable(requester, holder) {
                    return true;
                }
                // The holder's whole history, as a node answers a pull.
                let layout = match self.live_mut(holder) {
                    Some(n) => Some(n.m.history().into_iter().cloned().collect::<Vec<_>>()),
                    None => None,
                }
                .filter(|h| !h.is_empty());
                if let Some(layout) = layout {
                    self.hop(
                        holder,
                        requester,
                        Work::LayoutArrives {
                            to: requester,
                            layout: Box::new(LayoutOrd(layout)),
                        },
                    );
                }
            }
            Work::LayoutArrives { to, layout } => {
                if let Some(n) = self.live_mut(to) {
                    let out = n.m.history_received(now, layout.0);
                    self.handle(to, out);
                }
            }
        }
        true
    }

    /// Runs until virtual time `until`.
    pub fn run_until_time(&mut self, until: Duration) {
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > until {
                break;
            }
            self.step();
        }
        self.now = until;
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until_time(until);
    }

    /// Runs until `done` holds (checked every `check`), for at most `limit`.
    /// Returns the time it took, or `None` if it did not happen.
    pub fn run_until(
        &mut self,
        limit: Duration,
        check: Duration,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        loop {
            if done(self) {
                return Some(self.now - start);
            }
            if self.now - start >= limit {
                return None;
            }
            self.run_for(check);
        }
    }

    pub fn live(&self) -> impl Iterator<Item = &SimNode> {
        self.nodes.values().filter(|n| n.alive)
    }

    pub fn live_ids(&self) -> Vec<NodeId> {
        self.live().map(|n| n.info.id).collect()
    }

    pub fn node(&self, id: NodeId) -> &Membership {
        &self.nodes[&id].m
    }

    /// Every live node knows every other live node's current state and sees
    /// it up.
    pub fn all_see_all_up(&self) -> bool {
        let ids = self.live_ids();
        self.live()
            .all(|n| ids.iter().all(|id| n.m.is_up(*id, self.now)))
    }

    /// Every live node knows `id`'s state.
    pub fn all_know(&self, id: NodeId) -> bool {
        self.live().all(|n| n.m.node(id).is_some())
    }

    /// The layout stamps the live nodes hold.
    pub fn stamps(&self) -> BTreeSet<Option<LayoutStamp>> {
        self.live().map(|n| n.m.layout_stamp()).collect()
    }

    pub fn one_layout(&self) -> bool {
        self.stamps().len() == 1
    }

    /// Stages `changes` on `on`, plans and commits.
    pub fn commit(&mut self, on: NodeId, changes: Vec<Change>) -> Result<LayoutStamp, Error> {
        let now = self.now;
        let n = self.nodes.get_mut(&on).unwrap();
        n.m.clear_staged();
        for c in changes {
            n.m.stage(c)?;
        }
        let plan = n.m.plan()?;
        let stamp = plan.stamp();
        let out = n.m.commit(now, plan)?;
        self.handle(on, out);
        Ok(stamp)
    }

    /// Node `id` says it holds every partition `stamp` gives it (what a
    /// node's handoff reports once its transfers are done).
    pub fn set_left(&mut self, id: NodeId) {
        let now = self.now;
        let out = self.nodes.get_mut(&id).unwrap().m.set_left(now);
        self.handle(id, out);
    }

    pub fn set_synced(&mut self, id: NodeId, stamp: LayoutStamp) {
        let now = self.now;
        let out = self.nodes.get_mut(&id).unwrap().m.set_synced(now, stamp);
        self.handle(id, out);
    }

    /// A request from `id` to `peer` went unanswered (what a node's
    /// replication reports).
    pub fn unresponsive(&mut self, id: NodeId, peer: NodeId) {
        let now = self.now;
        let out = self.nodes.get_mut(&id).unwrap().m.unresponsive(now, peer);
        self.handle(id, out);
    }

    /// A cluster of `n` nodes over `zones` zones that know each other, with
    /// a first layout holding all of them, committed on the first node.
    pub fn cluster(seed: u64, n: usize, zones: usize, config: SimConfig) -> Self {
        let mut sim = Self::new(seed, config);
        for i in 0..n {
            sim.add_node(&format!("z{}", i % zones.max(1)));
        }
        let limit = Duration::from_secs(120);
        let check = Duration::from_millis(500);
        sim.run_until(limit, check, Sim::all_see_all_up)
            .unwrap_or_else(|| panic!("seed {seed}: {n} nodes did not meet"));
        let first = sim.seeds[0];
        let joins = sim.live_ids().into_iter().map(Change::Join).collect();
        sim.commit(first, joins).unwrap();
        sim.run_until(limit, check, |s| {
            s.one_layout() && s.stamps().iter().all(Option::is_some)
        })
        .unwrap_or_else(|| panic!("seed {seed}: the first layout did not spread"));
        sim
    }

    /// Events node `id` reported, after `since`.
    pub fn events_of(&self, id: NodeId, since: Duration) -> Vec<&Event> {
        self.nodes[&id]
            .events
            .iter()
            .filter(|(at, _)| *at >= since)
            .map(|(_, e)| e)
            .collect()
    }
}

/// The seeds a simulation test runs: `GYRE_SIM_SEED=<n>` replays one;
/// otherwise `GYRE_SIM_SEEDS=<count>` fixed seeds (default `count`).
pub fn seeds(count: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("GYRE_SIM_SEED") {
        return vec![s.parse().expect("GYRE_SIM_SEED must be a u64")];
    }
    let count = std::env::var("GYRE_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(count);
    (1..=count).collect()
}

/// Runs `test` for each seed of [`seeds`], saying which seed runs so that a
/// failure can be replayed.
pub fn for_each_seed(count: u64, mut test: impl FnMut(u64)) {
    for seed in seeds(count) {
        eprintln!("simulation seed {seed} (replay with GYRE_SIM_SEED={seed})");
        test(seed);
    }
}

/// Median and max of some numbers.
pub fn median_max(xs: &mut [f64]) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    let median = if xs.is_empty() { 0.0 } else { xs[xs.len() / 2] };
    (median, xs.last().copied().unwrap_or(0.0))
}

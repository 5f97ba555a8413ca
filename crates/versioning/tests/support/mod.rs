//! Realistic histories for the property tests: clients read from random
//! replicas and write through random replicas, with the context of their last
//! read or blind, and replicas sync pairwise.
#![allow(dead_code)] // each test binary uses its own part of this module

use gyre_types::{NodeId, Timestamp};
use gyre_versioning::{Context, Dot, DvvSet, Error, Policy, Sibling};
use proptest::prelude::*;

/// Values are unique write numbers, so a test can tell every write apart.
pub(crate) type State = DvvSet<u32>;

/// The node id of replica `i` (scattered, so that entry order differs from
/// replica order).
pub(crate) fn node(i: usize) -> NodeId {
    NodeId::new((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

pub(crate) fn ts(x: u64) -> Timestamp {
    Timestamp::from_u64(x)
}

/// One step of a history.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    /// `client` reads `replica` and keeps its context.
    Read { client: usize, replica: usize },
    /// `client` writes through `via`: with its last read's context, or blind
    /// (the coordinator's own context); a put or a delete; stamped `ts`; a
    /// put may expire `ttl` after `ts`.
    Write {
        client: usize,
        via: usize,
        blind: bool,
        delete: bool,
        ts: u64,
        ttl: Option<u64>,
    },
    /// Replica `to` merges the state of replica `from`.
    Sync { from: usize, to: usize },
}

pub(crate) fn op(replicas: usize, clients: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..clients, 0..replicas).prop_map(|(client, replica)| Op::Read { client, replica }),
        4 => (0..clients, 0..replicas, prop::bool::weighted(0.2), prop::bool::weighted(0.15), 0u64..40, prop::option::weighted(0.3, 1u64..20))
            .prop_map(|(client, via, blind, delete, ts, ttl)| Op::Write { client, via, blind, delete, ts, ttl }),
        3 => (0..replicas, 0..replicas).prop_map(|(from, to)| Op::Sync { from, to }),
    ]
}

pub(crate) fn history(
    replicas: usize,
    clients: usize,
    max_len: usize,
) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(replicas, clients), 0..max_len)
}

/// An acknowledged write, as the reference model sees it.
#[derive(Clone, Debug)]
pub(crate) struct Write {
    pub(crate) dot: Dot,
    pub(crate) timestamp: Timestamp,
    pub(crate) value: Option<u32>,
    /// When the value expires.
    pub(crate) expires: Option<Timestamp>,
    /// The context the write was coordinated with.
    pub(crate) ctx: Context,
}

/// Replicas, clients, and the log of acknowledged writes.
pub(crate) struct Cluster {
    pub(crate) replicas: Vec<State>,
    pub(crate) clients: Vec<Context>,
    pub(crate) policy: Policy,
    pub(crate) writes: Vec<Write>,
    pub(crate) refused: usize,
    next_value: u32,
}

impl Cluster {
    pub(crate) fn new(replicas: usize, clients: usize, policy: Policy) -> Self {
        Self {
            replicas: vec![State::new(); replicas],
            clients: vec![Context::empty(); clients],
            policy,
            writes: Vec::new(),
            refused: 0,
            next_value: 0,
        }
    }

    pub(crate) fn run(replicas: usize, clients: usize, policy: Policy, ops: &[Op]) -> Self {
        let mut c = Self::new(replicas, clients, policy);
        for op in ops {
            c.apply(op);
        }
        c
    }

    pub(crate) fn apply(&mut self, op: &Op) {
        match *op {
            Op::Read { client, replica } => {
                self.clients[client] = self.replicas[replica].context();
            }
            Op::Write {
                client,
                via,
                blind,
                delete,
                ts: t,
                ttl,
            } => {
                let ctx = if blind {
                    self.replicas[via].context()
                } else {
                    self.clients[client].clone()
                };
                let value = (!delete).then_some(self.next_value);
                self.next_value += 1;
                let before = self.replicas[via].clone();
                let state = &mut self.replicas[via];
                let expires = ttl.map(|ttl| ts(t + ttl));
                let result = match value {
                    Some(v) if expires.is_some() => {
                        state.put_expiring(&ctx, v, expires, node(via), ts(t), &self.policy)
                    }
                    Some(v) => state.put(&ctx, v, node(via), ts(t), &self.policy),
                    None => state.delete(&ctx, node(via), ts(t), &self.policy),
                };
                match result {
                    Ok(dot) => self.writes.push(Write {
                        dot,
                        timestamp: ts(t),
                        value,
                        expires: expires.filter(|_| value.is_some()),
                        ctx,
                    }),
                    Err(Error::TooManySiblings { count, max }) => {
                        assert!(count > max);
                        assert_eq!(*state, before, "a refused write changed the state");
                        self.refused += 1;
                    }
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            Op::Sync { from, to } => {
                if from != to {
                    let other = self.replicas[from].clone();
                    self.replicas[to].sync(&other, &self.policy);
                }
            }
        }
    }

    /// Syncs every replica with every other, until all are equal.
    pub(crate) fn sync_all(&mut self) {
        let policy = self.policy;
        let (first, rest) = self
            .replicas
            .split_first_mut()
            .expect("at least one replica");
        for r in rest.iter() {
            first.sync(r, &policy);
        }
        for r in rest.iter_mut() {
            r.sync(first, &policy);
        }
    }
}

/// The invariants of a state, checked through the public API.
pub(crate) fn check_invariants<V>(s: &DvvSet<V>) {
    let ctx = s.context();
    let nodes: Vec<_> = ctx.iter().collect();
    assert!(
        nodes.windows(2).all(|w| w[0].0 < w[1].0),
        "context not sorted: {ctx}"
    );
    assert!(nodes.iter().all(|e| e.1 > 0), "zero counter in {ctx}");
    let dots: Vec<Dot> = s.siblings().map(|x| x.dot).collect();
    assert!(
        dots.windows(2).all(|w| w[0] < w[1]),
        "sibling dots not sorted and unique"
    );
    for d in &dots {
        assert!(
            d.counter >= 1 && ctx.covers(*d),
            "dot {d} outside the context {ctx}"
        );
        assert!(s.contains(*d));
    }
    assert_eq!(s.sibling_count(), dots.len());
    assert_eq!(s.is_empty(), ctx.is_empty());
}

/// `(dot, timestamp, value)` of every sibling, sorted.
pub(crate) fn dotted(s: &State) -> Vec<(Dot, Timestamp, Option<u32>)> {
    s.siblings()
        .map(|x: &Sibling<u32>| (x.dot, x.timestamp, x.value))
        .collect()
}

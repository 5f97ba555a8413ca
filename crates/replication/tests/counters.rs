//! Counters against a reference: replicas coordinate increments of one key
//! and sync pairwise in any order; once every replica has synced with every
//! other, each holds the same state and its value is exactly the sum of
//! every increment made (each counted once, whatever the order, however
//! often states were exchanged). And the merge of counter states obeys the
//! laws: commutative, associative, idempotent.

use bytes::Bytes;
use gyre_replication::counter::{self, Totals};
use gyre_types::{NodeId, Timestamp};
use gyre_versioning::{ConflictMode, DvvSet, Policy};
use proptest::prelude::*;

type State = DvvSet<Bytes>;

const REPLICAS: usize = 3;

fn policy() -> Policy {
    Policy {
        mode: ConflictMode::Counter,
        ..Policy::default()
    }
}

fn node(i: usize) -> NodeId {
    NodeId::new(0x100 + i as u64)
}

fn now() -> Timestamp {
    Timestamp::from_parts(1_000_000, 0)
}

#[derive(Clone, Debug)]
enum Op {
    /// Replica `at` coordinates an increment by `delta`.
    Incr { at: usize, delta: i64 },
    /// Replica `to` merges replica `from`'s state.
    Sync { from: usize, to: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..REPLICAS, -1_000i64..1_000).prop_map(|(at, delta)| Op::Incr { at, delta }),
        2 => (0..REPLICAS, 0..REPLICAS).prop_map(|(from, to)| Op::Sync { from, to }),
    ]
}

/// Runs `ops`; returns the replicas and the sum of every increment.
fn run(ops: &[Op]) -> (Vec<State>, i64) {
    let mut replicas = vec![State::new(); REPLICAS];
    let mut sum = 0;
    let mut clock = 0u64;
    for op in ops {
        match *op {
            Op::Incr { at, delta } => {
                clock += 1;
                let ts = Timestamp::from_parts(clock, 0);
                counter::increment(&mut replicas[at], node(at), delta, ts, now(), &policy())
                    .expect("in range");
                sum += delta;
            }
            Op::Sync { from, to } => {
                let other = replicas[from].clone();
                replicas[to].sync(&other, &policy());
            }
        }
    }
    (replicas, sum)
}

fn sync_all(replicas: &mut [State]) {
    for _ in 0..2 {
        for i in 0..replicas.len() {
            for j in 0..replicas.len() {
                let other = replicas[j].clone();
                replicas[i].sync(&other, &policy());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_increment_is_counted_exactly_once(ops in prop::collection::vec(op(), 0..80)) {
        let (mut replicas, sum) = run(&ops);
        sync_all(&mut replicas);
        for r in &replicas {
            prop_assert_eq!(r, &replicas[0]);
            prop_assert_eq!(counter::value(r, now()), i128::from(sum));
            // One sibling per node that coordinated, never more.
            prop_assert!(r.sibling_count() <= REPLICAS);
        }
    }

    #[test]
    fn counter_merges_obey_the_laws(
        ops in prop::collection::vec(op(), 1..60),
        pick in (any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<prop::sample::Index>()),
    ) {
        // Three states of one key from one history: replicas at different
        // points of it (a dot names one write only within one history).
        let mut states = Vec::new();
        for end in 1..=ops.len() {
            states.extend(run(&ops[..end]).0);
        }
        let x = pick.0.get(&states).clone();
        let y = pick.1.get(&states).clone();
        let z = pick.2.get(&states).clone();
        let p = policy();
        let join = |l: &State, r: &State| l.clone().merge(r.clone(), &p);
        prop_assert_eq!(join(&x, &y), join(&y, &x));
        prop_assert_eq!(join(&join(&x, &y), &z), join(&x, &join(&y, &z)));
        prop_assert_eq!(join(&x, &x), x.clone());
        prop_assert_eq!(
            counter::value(&join(&x, &y), now()),
            counter::value(&join(&y, &x), now())
        );
    }
}

#[test]
fn an_increment_that_would_overflow_is_refused_and_changes_nothing() {
    let mut s = State::new();
    let ts = Timestamp::from_parts(1, 0);
    counter::increment(&mut s, node(0), i64::MAX, ts, now(), &policy()).unwrap();
    let before = s.clone();
    assert!(counter::increment(&mut s, node(1), 1, ts, now(), &policy()).is_err());
    assert_eq!(s, before);
    counter::increment(&mut s, node(1), i64::MIN, ts, now(), &policy()).unwrap();
    assert_eq!(counter::value(&s, now()), -1);
    assert!(Totals::decode(b"not a counter").is_none());
}

#[test]
fn a_delete_removes_the_increments_it_saw_and_counting_goes_on() {
    let p = policy();
    let (mut a, mut b) = (State::new(), State::new());
    let ts = |t| Timestamp::from_parts(t, 0);
    counter::increment(&mut a, node(0), 5, ts(1), now(), &p).unwrap();
    b.sync(&a, &p);
    // b deletes what it saw; meanwhile a counts on.
    let ctx = b.context();
    b.delete(&ctx, node(1), ts(2), &p).unwrap();
    counter::increment(&mut a, node(0), 2, ts(3), now(), &p).unwrap();
    a.sync(&b, &p);
    b.sync(&a, &p);
    assert_eq!(a, b);
    // a's totals after the delete (7) supersede the deleted ones (5): the
    // delete removed a's increments up to what it saw, and a's later
    // totals carry them again. Riak counters behave the same way: a delete
    // of a counter is not a reset while its nodes still count.
    assert_eq!(counter::value(&a, now()), 7);
    // After a delete nothing raced with, counting starts from zero.
    let mut c = State::new();
    counter::increment(&mut c, node(2), 3, ts(4), now(), &p).unwrap();
    let ctx = c.context();
    c.delete(&ctx, node(2), ts(5), &p).unwrap();
    assert_eq!(counter::value(&c, now()), 0);
    counter::increment(&mut c, node(2), 1, ts(6), now(), &p).unwrap();
    assert_eq!(counter::value(&c, now()), 1);
}

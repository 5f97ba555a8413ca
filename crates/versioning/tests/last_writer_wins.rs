//! Last-writer-wins: the greatest `(timestamp, node, counter)` survives,
//! whatever the order of merges, and a later delete beats earlier puts.

mod support;

use gyre_versioning::{Context, Policy};
use proptest::prelude::*;
use support::{State, node, ts};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Independent writes on five replicas, merged in any order.
    #[test]
    fn the_greatest_write_wins_in_any_merge_order(
        stamps in prop::collection::vec((0u64..20, any::<bool>()), 1..6),
        order in Just((0..5usize).collect::<Vec<_>>()).prop_shuffle(),
        nested in any::<bool>(),
    ) {
        let p = Policy::lww();
        let mut replicas: Vec<State> = (0..5).map(|_| State::new()).collect();
        let mut best = None;
        for (i, &(t, delete)) in stamps.iter().enumerate() {
            let dot = if delete {
                replicas[i].delete(&Context::empty(), node(i), ts(t), &p).unwrap()
            } else {
                replicas[i].put(&Context::empty(), i as u32, node(i), ts(t), &p).unwrap()
            };
            let key = (ts(t), dot.node, dot.counter);
            best = best.max(Some((key, (!delete).then_some(i as u32))));
        }
        let merged = if nested {
            // ((r0 ⊔ r1) ⊔ r2) … in the shuffled order.
            order.iter().fold(State::new(), |acc, &i| acc.merge(replicas[i].clone(), &p))
        } else {
            // r_k ⊔ (… ⊔ (r_j ⊔ r_i)).
            order.iter().rev().fold(State::new(), |acc, &i| replicas[i].clone().merge(acc, &p))
        };
        let (key, value) = best.unwrap();
        let winner: Vec<_> = merged.siblings().collect();
        prop_assert_eq!(winner.len(), 1);
        prop_assert_eq!(winner[0].lww_key(), key);
        prop_assert_eq!(winner[0].value, value);
        prop_assert_eq!(merged.is_deleted(), value.is_none());
        prop_assert_eq!(merged.max_timestamp(), Some(key.0));
    }
}

#[test]
fn a_later_delete_wins_over_earlier_puts() {
    let p = Policy::lww();
    let (mut a, mut b, mut c) = (State::new(), State::new(), State::new());
    a.put_blind(1, node(0), ts(10), &p).unwrap();
    b.put_blind(2, node(1), ts(20), &p).unwrap();
    c.delete_blind(node(2), ts(30), &p).unwrap();
    for order in [[&a, &b, &c], [&c, &a, &b], [&b, &c, &a]] {
        let mut s = State::new();
        for x in order {
            s.sync(x, &p);
        }
        assert!(s.is_deleted());
        assert!(s.read().is_empty());
        assert_eq!(s.sibling_count(), 1);
    }
    // A put stamped after the delete brings the key back.
    let mut s = a.clone().merge(c.clone(), &p);
    s.put_blind(4, node(0), ts(40), &p).unwrap();
    assert_eq!(s.values().copied().collect::<Vec<_>>(), [4]);
    // An earlier delete loses.
    let mut s = b.clone();
    s.delete(&Context::empty(), node(2), ts(15), &p).unwrap();
    assert_eq!(s.values().copied().collect::<Vec<_>>(), [2]);
    assert!(!s.is_deleted());
}

#[test]
fn equal_timestamps_are_broken_by_node_then_counter() {
    let p = Policy::lww();
    let (mut a, mut b) = (State::new(), State::new());
    let (lo, hi) = if node(0) < node(1) { (0, 1) } else { (1, 0) };
    a.put_blind(100, node(lo), ts(5), &p).unwrap();
    b.put_blind(200, node(hi), ts(5), &p).unwrap();
    assert_eq!(
        a.clone()
            .merge(b.clone(), &p)
            .values()
            .copied()
            .collect::<Vec<_>>(),
        [200]
    );
    assert_eq!(b.merge(a, &p).values().copied().collect::<Vec<_>>(), [200]);
}

/// A write whose context covers a greater-stamped value still loses to it in
/// LWW mode: only timestamps decide (the store avoids this locally by
/// stamping after observing `max_timestamp`).
#[test]
fn contexts_do_not_override_timestamps() {
    let p = Policy::lww();
    let mut a = State::new();
    a.put_blind(1, node(0), ts(50), &p).unwrap();
    let ctx = a.context();
    let mut b = State::new();
    b.put(&ctx, 2, node(1), ts(10), &p).unwrap();
    assert_eq!(b.values().copied().collect::<Vec<_>>(), [2]);
    let merged = a.clone().merge(b.clone(), &p);
    assert_eq!(merged.values().copied().collect::<Vec<_>>(), [1]);
    assert_eq!(b.merge(a, &p).values().copied().collect::<Vec<_>>(), [1]);
}

#[test]
fn switching_a_bucket_to_lww_collapses_siblings() {
    let (sib, lww) = (Policy::siblings(), Policy::lww());
    let (mut a, mut b) = (State::new(), State::new());
    a.put_blind(1, node(0), ts(7), &sib).unwrap();
    b.put_blind(2, node(1), ts(3), &sib).unwrap();
    let two = a.clone().merge(b.clone(), &sib);
    assert_eq!(two.sibling_count(), 2);
    let one = two.merge(State::new(), &lww);
    assert_eq!(one.values().copied().collect::<Vec<_>>(), [1]);
}

//! An exchange followed by `diff_items` over the returned ranges finds exactly
//! the keys that differ, and descends only into subtrees that differ.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;

use common::{Replica, hash_in, listing, run_exchange, shape, tree_of};
use gyre_merkle::{KeyRange, MerkleTree, Request, TreeShape, diff_items};
use gyre_types::{KeyHash, PartitionCount, PartitionId};
use proptest::prelude::*;

/// How a key is held by the two replicas.
#[derive(Clone, Copy, Debug)]
enum Held {
    Same,
    DifferentVersions,
    OnlyA,
    OnlyB,
}

fn held() -> impl Strategy<Value = Held> {
    prop_oneof![
        6 => Just(Held::Same),
        1 => Just(Held::DifferentVersions),
        1 => Just(Held::OnlyA),
        1 => Just(Held::OnlyB),
    ]
}

/// Hash offsets within the partition: mostly spread out, sometimes tiny (so
/// that many keys share a leaf, and some share a hash).
fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![3 => any::<u64>(), 1 => 0u64..4]
}

#[derive(Debug, Clone)]
struct Case {
    q: PartitionCount,
    p: PartitionId,
    shape: TreeShape,
    a: Replica,
    b: Replica,
}

fn case() -> impl Strategy<Value = Case> {
    let keys = prop::collection::vec((offset(), 0u8..3, held(), any::<u64>()), 0..300);
    (6u32..=12, any::<u32>(), shape(), keys).prop_map(|(bits, p, shape, keys)| {
        let q = PartitionCount::new(1 << bits).unwrap();
        let p = PartitionId::new(p % q.get());
        let (mut a, mut b) = (Replica::new(), Replica::new());
        for (offset, variant, held, version) in keys {
            let hash = hash_in(q, p, offset);
            // Up to three different keys per hash: genuine hash collisions.
            let key = [&offset.to_le_bytes()[..], &[variant]].concat();
            let v = u128::from(version);
            match held {
                Held::Same => {
                    a.insert((hash, key.clone()), v);
                    b.insert((hash, key), v);
                }
                Held::DifferentVersions => {
                    a.insert((hash, key.clone()), v);
                    b.insert((hash, key), v + 1);
                }
                Held::OnlyA => {
                    a.insert((hash, key), v);
                }
                Held::OnlyB => {
                    b.insert((hash, key), v);
                }
            }
        }
        Case { q, p, shape, a, b }
    })
}

fn differing_keys(a: &Replica, b: &Replica) -> BTreeSet<(KeyHash, Vec<u8>)> {
    let keys: BTreeSet<_> = a.keys().chain(b.keys()).cloned().collect();
    keys.into_iter().filter(|k| a.get(k) != b.get(k)).collect()
}

fn leaves_in(tree: &MerkleTree, ranges: &[KeyRange]) -> BTreeSet<usize> {
    (0..tree.shape().leaf_count())
        .filter(|&leaf| {
            let r = tree.leaf_range(leaf).unwrap();
            ranges.iter().any(|x| x.contains(r.start()))
        })
        .collect()
}

/// Runs the exchange from `x` to `y` and checks everything the exchange promises.
fn check(
    case: &Case,
    x: &MerkleTree,
    y: &MerkleTree,
    rx: &Replica,
    ry: &Replica,
) -> Result<(), TestCaseError> {
    let mut requested_equal_nodes = Vec::new();
    let outcome = run_exchange(x, y, |req| {
        if let Request::Children { level, nodes, .. } = req {
            for &n in nodes {
                if x.node(*level, n as usize) == y.node(*level, n as usize) {
                    requested_equal_nodes.push((*level, n));
                }
            }
        }
    })
    .unwrap();
    prop_assert!(
        requested_equal_nodes.is_empty(),
        "asked for the children of equal nodes {requested_equal_nodes:?}"
    );

    // Ranges are sorted, disjoint, non-adjacent and inside the partition.
    let part = x.range();
    for w in outcome.ranges.windows(2) {
        prop_assert!(w[0].end().as_u64() + 1 < w[1].start().as_u64());
    }
    for r in &outcome.ranges {
        prop_assert!(part.contains(r.start()) && part.contains(r.end()));
    }

    // Exactly the differing leaves are covered.
    let differing_leaves: BTreeSet<usize> = (0..case.shape.leaf_count())
        .filter(|&i| x.leaves()[i] != y.leaves()[i])
        .collect();
    prop_assert_eq!(leaves_in(x, &outcome.ranges), differing_leaves.clone());
    prop_assert_eq!(
        outcome.stats.differing_leaves,
        differing_leaves.len() as u64
    );

    // Listing both sides in those ranges and diffing finds exactly the differing keys.
    let (la, lb) = (listing(rx, &outcome), listing(ry, &outcome));
    let found: BTreeSet<_> = diff_items(&la, &lb)
        .unwrap()
        .iter()
        .map(|d| (d.hash(), d.key().clone()))
        .collect();
    prop_assert_eq!(found, differing_keys(rx, ry));

    if x.root() == y.root() {
        prop_assert!(outcome.ranges.is_empty());
        prop_assert_eq!(outcome.stats.rounds, 1);
    } else {
        prop_assert!(outcome.stats.rounds <= u32::from(case.shape.depth()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn exchange_and_item_diff_find_exactly_the_differing_keys(case in case()) {
        let a = tree_of(case.q, case.p, case.shape, &case.a);
        let b = tree_of(case.q, case.p, case.shape, &case.b);
        // Either side may initiate.
        check(&case, &a, &b, &case.a, &case.b)?;
        check(&case, &b, &a, &case.b, &case.a)?;
    }

    #[test]
    fn identical_trees_finish_after_the_root_round(case in case()) {
        let a = tree_of(case.q, case.p, case.shape, &case.a);
        let outcome = run_exchange(&a, &a.clone(), |_| {}).unwrap();
        prop_assert!(outcome.ranges.is_empty());
        prop_assert_eq!(outcome.stats.rounds, 1);
        prop_assert_eq!(outcome.stats.nodes_compared, 1);
    }
}

/// A level with more differing nodes than one request may list is split.
#[test]
fn wide_levels_are_split_into_capped_requests() {
    let q = PartitionCount::new(64).unwrap();
    let p = PartitionId::new(9);
    let shape = TreeShape::new(3, 6).unwrap(); // 2^18 leaves
    let mut a = Replica::new();
    let mut b = Replica::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..40_000u64 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let key = i.to_le_bytes().to_vec();
        let hash = hash_in(q, p, x);
        a.insert((hash, key.clone()), 1);
        b.insert((hash, key), if i % 2 == 0 { 2 } else { 1 });
    }
    let ta = tree_of(q, p, shape, &a);
    let tb = tree_of(q, p, shape, &b);
    let mut per_level = std::collections::BTreeMap::<u8, usize>::new();
    let outcome = run_exchange(&ta, &tb, |req| {
        if let Request::Children { level, nodes, .. } = req {
            assert!(nodes.len() <= shape.max_nodes_per_request());
            assert!(nodes.windows(2).all(|w| w[0] < w[1]), "ascending");
            *per_level.entry(*level).or_default() += 1;
        }
    })
    .unwrap();
    assert!(
        per_level.values().any(|&n| n > 1),
        "some level needed several requests: {per_level:?}"
    );
    assert_eq!(
        outcome.stats.rounds as usize,
        1 + per_level.values().sum::<usize>()
    );
    let (la, lb) = (listing(&a, &outcome), listing(&b, &outcome));
    assert_eq!(diff_items(&la, &lb).unwrap().len(), 20_000);
}

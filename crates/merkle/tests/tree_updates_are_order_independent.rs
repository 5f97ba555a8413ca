//! The laws of a tree: updates commute, removal undoes insertion, rebuilds and
//! incremental updates agree, and the persistent forms round-trip.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{hash_in, shape};
use gyre_merkle::{Error, ItemDigest, MerkleTree, TreeId, TreeParts, TreeShape};
use gyre_types::{KeyHash, PartitionCount, PartitionId};
use proptest::prelude::*;

fn q() -> PartitionCount {
    PartitionCount::new(256).unwrap()
}

fn p() -> PartitionId {
    PartitionId::new(77)
}

/// Items with distinct keys: (hash in the partition, digest).
fn items() -> impl Strategy<Value = Vec<(KeyHash, ItemDigest)>> {
    prop::collection::vec((any::<u64>(), any::<u128>()), 0..200).prop_map(|v| {
        v.into_iter()
            .map(|(o, d)| (hash_in(q(), p(), o), ItemDigest::from_u128(d)))
            .collect()
    })
}

fn inserted(shape: TreeShape, items: &[(KeyHash, ItemDigest)]) -> MerkleTree {
    let mut t = MerkleTree::new(q(), p(), shape).unwrap();
    for &(h, d) in items {
        t.insert(h, d).unwrap();
    }
    t
}

/// Every inner node is the XOR of its children.
fn assert_consistent(t: &MerkleTree) {
    let f = t.shape().fanout();
    for level in 0..t.shape().depth() {
        let parents = t.level(level).unwrap();
        let children = t.level(level + 1).unwrap();
        assert_eq!(children.len(), parents.len() * f);
        for (i, &parent) in parents.iter().enumerate() {
            let xor = children[i * f..(i + 1) * f].iter().fold(0, |a, d| a ^ d);
            assert_eq!(parent, xor, "level {level} node {i}");
        }
    }
}

proptest! {
    #[test]
    fn insertion_order_does_not_matter(
        shape in shape(),
        (items, shuffled) in items().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
    ) {
        let a = inserted(shape, &items);
        let b = inserted(shape, &shuffled);
        prop_assert_eq!(&a, &b);
        assert_consistent(&a);
    }

    #[test]
    fn insert_then_remove_restores_the_tree(
        shape in shape(),
        items in items(),
        extra in items(),
    ) {
        let mut t = inserted(shape, &items);
        let before = t.clone();
        for &(h, d) in &extra {
            t.insert(h, d).unwrap();
        }
        for &(h, d) in extra.iter().rev() {
            t.remove(h, d).unwrap();
        }
        prop_assert_eq!(t.root(), before.root());
        prop_assert_eq!(t, before);
    }

    #[test]
    fn update_is_remove_then_insert(shape in shape(), items in items(), new in any::<u128>()) {
        prop_assume!(!items.is_empty());
        let (h, old) = items[0];
        let new = ItemDigest::from_u128(new);
        let mut updated = inserted(shape, &items);
        updated.update(h, Some(old), Some(new)).unwrap();
        let mut replaced = inserted(shape, &items);
        replaced.remove(h, old).unwrap();
        replaced.insert(h, new).unwrap();
        prop_assert_eq!(&updated, &replaced);
        assert_consistent(&updated);
        // A no-op update changes nothing.
        let before = updated.clone();
        updated.update(h, Some(new), Some(new)).unwrap();
        updated.update(h, None, None).unwrap();
        prop_assert_eq!(updated, before);
    }

    #[test]
    fn rebuild_equals_incremental_updates(shape in shape(), items in items()) {
        let built = MerkleTree::from_items(q(), p(), shape, items.iter().copied()).unwrap();
        prop_assert_eq!(&built, &inserted(shape, &items));
        assert_consistent(&built);
    }

    #[test]
    fn leaves_round_trip(shape in shape(), items in items()) {
        let t = inserted(shape, &items);
        let back = MerkleTree::from_leaves(q(), p(), shape, t.leaves().to_vec()).unwrap();
        prop_assert_eq!(&back, &t);
        // The validating path serde's Deserialize takes.
        let back = MerkleTree::try_from(t.clone().into_parts()).unwrap();
        prop_assert_eq!(back, t);
    }

    #[test]
    fn corrupt_parts_are_refused(shape in shape(), items in items(), cut in 1usize..=4096) {
        let t = inserted(shape, &items);
        let mut parts: TreeParts = t.into_parts();
        let len = parts.leaves.len();
        parts.leaves.truncate(len.saturating_sub(cut));
        prop_assert_eq!(
            MerkleTree::try_from(parts.clone()),
            Err(Error::LeafCount { expected: len, got: parts.leaves.len() })
        );
        parts.leaves.resize(len + cut, 0);
        let refused = matches!(MerkleTree::try_from(parts), Err(Error::LeafCount { .. }));
        prop_assert!(refused);
    }

    #[test]
    fn clear_empties_the_tree(shape in shape(), items in items()) {
        let mut t = inserted(shape, &items);
        t.clear();
        prop_assert_eq!(t, MerkleTree::new(q(), p(), shape).unwrap());
    }
}

#[test]
fn tree_ids_are_validated() {
    let q = q();
    assert_eq!(
        TreeId::new(q, PartitionId::new(256), TreeShape::DEFAULT),
        Err(Error::PartitionOutOfRange {
            q,
            partition: PartitionId::new(256)
        })
    );
    assert_eq!(
        MerkleTree::from_leaves(q, PartitionId::new(300), TreeShape::DEFAULT, vec![0; 4096]),
        Err(Error::PartitionOutOfRange {
            q,
            partition: PartitionId::new(300)
        })
    );
}

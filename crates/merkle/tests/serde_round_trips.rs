//! Trees and exchange messages survive a serde round trip, and deserialising
//! corrupt input is an error, never a panic or a broken tree.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::hash_in;
use gyre_merkle::{ItemDigest, KeyRange, MerkleTree, Request, Response, TreeId, TreeShape};
use gyre_types::{PartitionCount, PartitionId};
use proptest::prelude::*;
use serde_json::{Value, json};

fn q() -> PartitionCount {
    PartitionCount::new(64).unwrap()
}

fn p() -> PartitionId {
    PartitionId::new(63)
}

fn small_tree(offsets: &[u64]) -> MerkleTree {
    let shape = TreeShape::new(2, 2).unwrap();
    let items = offsets
        .iter()
        .map(|&o| (hash_in(q(), p(), o), ItemDigest::of(&o.to_le_bytes(), 7)));
    MerkleTree::from_items(q(), p(), shape, items).unwrap()
}

fn reparse<T: serde::Serialize + serde::de::DeserializeOwned>(v: &T) -> T {
    serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
}

proptest! {
    #[test]
    fn trees_round_trip(offsets in prop::collection::vec(any::<u64>(), 0..100)) {
        let t = small_tree(&offsets);
        prop_assert_eq!(reparse(&t), t);
    }
}

#[test]
fn a_tree_is_stored_as_its_id_and_leaves() {
    let t = small_tree(&[1, 2, 3]);
    let v: Value = serde_json::to_value(&t).unwrap();
    assert_eq!(
        v["id"],
        json!({"q": 64, "partition": 63, "shape": {"fanout_bits": 2, "depth": 2}})
    );
    let leaves = v["leaves"].as_array().unwrap();
    assert_eq!(leaves.len(), 16);
    // Each digest is 16 bytes, little-endian.
    let first = u128::from_le_bytes(serde_json::from_value::<[u8; 16]>(leaves[0].clone()).unwrap());
    assert_eq!(first, t.leaves()[0]);
}

/// Damages a serialised tree.
type Corruption = dyn Fn(&mut Value);

#[test]
fn corrupt_trees_are_refused() {
    let t = small_tree(&[1, 2, 3]);
    let good: Value = serde_json::to_value(&t).unwrap();
    let corrupt = |f: &Corruption| {
        let mut v = good.clone();
        f(&mut v);
        serde_json::from_value::<MerkleTree>(v)
    };
    let cases: [(&str, &Corruption); 7] = [
        ("leaf missing", &|v| {
            v["leaves"].as_array_mut().unwrap().pop();
        }),
        ("leaf extra", &|v| {
            v["leaves"]
                .as_array_mut()
                .unwrap()
                .push(json!(vec![0u8; 16]));
        }),
        ("short digest", &|v| v["leaves"][0] = json!(vec![0u8; 15])),
        ("partition beyond q", &|v| v["id"]["partition"] = json!(64)),
        ("q not a power of two", &|v| v["id"]["q"] = json!(100)),
        ("depth zero", &|v| v["id"]["shape"]["depth"] = json!(0)),
        ("too many leaves", &|v| {
            v["id"]["shape"] = json!({"fanout_bits": 8, "depth": 3})
        }),
    ];
    for (what, f) in cases {
        assert!(corrupt(f).is_err(), "{what} was accepted");
    }
    assert_eq!(corrupt(&|_| {}).unwrap(), t);
}

#[test]
fn messages_round_trip() {
    let a = small_tree(&[1, 2, 3]);
    let b = small_tree(&[1, 2, 4]);
    let id = a.id();
    let root = Request::Root {
        tree: id,
        root: a.root(),
    };
    assert_eq!(reparse(&root), root);
    let answer = b.answer(&root).unwrap();
    assert_eq!(reparse(&answer), answer);
    let children = Request::Children {
        tree: id,
        level: 1,
        nodes: vec![0, 3],
    };
    assert_eq!(reparse(&children), children);
    let answer: Response = b.answer(&children).unwrap();
    assert_eq!(reparse(&answer), answer);
    assert_eq!(reparse(&id), id);
}

#[test]
fn invalid_ids_and_ranges_are_refused() {
    let bad_id = json!({"q": 64, "partition": 64, "shape": {"fanout_bits": 4, "depth": 3}});
    assert!(serde_json::from_value::<TreeId>(bad_id).is_err());
    let bad_request = json!({"Children": {
        "tree": {"q": 64, "partition": 1, "shape": {"fanout_bits": 9, "depth": 1}},
        "level": 0, "nodes": [0]
    }});
    assert!(serde_json::from_value::<Request>(bad_request).is_err());
    assert!(serde_json::from_value::<KeyRange>(json!({"start": 5, "end": 4})).is_err());
    let r: KeyRange = serde_json::from_value(json!({"start": 4, "end": 5})).unwrap();
    assert_eq!(r.to_range_inclusive(), 4..=5);
}

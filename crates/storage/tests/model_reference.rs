//! Model-based test: random operation sequences applied to a store and to a
//! plain `BTreeMap` reference must agree after every step, including across
//! close-and-reopen of a [`FjallStore`](gyre_storage::FjallStore). At the
//! end, the store's Merkle trees must equal trees built from the reference.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{Disk, Harness, Mem, config, node};
use gyre_merkle::{ItemDigest, MerkleTree, TreeShape};
use gyre_storage::{
    Change, Hint, HintId, Object, ObjectId, Store, StoreConfig, TreeSize, object_bytes,
};
use gyre_types::{BucketName, Key, NodeId, PartitionId, Timestamp};
use gyre_versioning::Policy;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// A blind put of `value` by `coordinator`, filed under `n_val`.
    Put {
        key: usize,
        n_val: u8,
        value: u8,
        coordinator: u64,
    },
    /// A blind delete.
    Delete { key: usize, coordinator: u64 },
    /// Purge the key if it is a tombstone (with its current version).
    Purge { key: usize },
    /// Sync in a state written elsewhere (replication's merge).
    Merge {
        key: usize,
        value: u8,
        coordinator: u64,
    },
    /// Merge several states in one batch (keys may repeat).
    MergeMany {
        keys: Vec<usize>,
        value: u8,
        coordinator: u64,
    },
    /// Queue a hint for a target.
    AddHint { target: u64, key: usize },
    /// Remove a target's oldest hint.
    RemoveHint { target: u64 },
    /// Drop the partition of a key.
    DropPartition { key: usize },
    /// Close and reopen (a no-op in memory).
    Reopen,
}

const KEYS: usize = 24;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..KEYS, 1u8..=3, any::<u8>(), 1u64..4).prop_map(|(key, n_val, value, coordinator)| Op::Put { key, n_val, value, coordinator }),
        2 => (0..KEYS, 1u64..4).prop_map(|(key, coordinator)| Op::Delete { key, coordinator }),
        1 => (0..KEYS).prop_map(|key| Op::Purge { key }),
        2 => (0..KEYS, any::<u8>(), 4u64..6).prop_map(|(key, value, coordinator)| Op::Merge { key, value, coordinator }),
        2 => (proptest::collection::vec(0..KEYS, 1..8), any::<u8>(), 4u64..6).prop_map(|(keys, value, coordinator)| Op::MergeMany { keys, value, coordinator }),
        2 => (1u64..3, 0..KEYS).prop_map(|(target, key)| Op::AddHint { target, key }),
        1 => (1u64..3).prop_map(|target| Op::RemoveHint { target }),
        1 => (0..KEYS).prop_map(|key| Op::DropPartition { key }),
        1 => Just(Op::Reopen),
    ]
}

/// Key `k` of the test: all of them in partitions 0 and 1, so that with
/// [`SHAPE`]'s few leaves the objects of a batch share leaves.
fn object_id(k: usize) -> ObjectId {
    static IDS: std::sync::OnceLock<Vec<ObjectId>> = std::sync::OnceLock::new();
    let ids = IDS.get_or_init(|| {
        let q = config().partitions;
        (0..)
            .map(|j: usize| {
                let bucket = if j.is_multiple_of(2) { "even" } else { "odd" };
                ObjectId::new(
                    BucketName::new(bucket).unwrap(),
                    Key::new(format!("key-{j}").into_bytes()).unwrap(),
                )
            })
            .filter(|id| q.partition_of(id.hash()).get() < 2)
            .take(KEYS)
            .collect()
    });
    ids[k].clone()
}

/// Four leaves per tree.
fn shape() -> TreeShape {
    TreeShape::new(1, 2).unwrap()
}

fn one_value(value: u8, coordinator: u64, at: u64) -> Object {
    let mut o = Object::new();
    o.put_blind(
        Bytes::from(vec![value; 1 + usize::from(value) % 7]),
        node(coordinator),
        Timestamp::from_u64(at),
        &Policy::default(),
    )
    .unwrap();
    o
}

/// The reference: what the store should hold.
#[derive(Default)]
struct Model {
    objects: BTreeMap<ObjectId, (u8, Object)>,
    hints: BTreeMap<NodeId, Vec<(HintId, Hint)>>,
}

fn run<H: Harness>(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut h = H::open(StoreConfig {
        merkle_shape: shape(),
        ..config()
    });
    let mut model = Model::default();
    let policy = Policy::default();
    for (step, op) in ops.iter().enumerate() {
        let at = step as u64 + 1;
        match *op {
            Op::Put {
                key,
                n_val,
                value,
                coordinator,
            } => {
                let id = object_id(key);
                let apply = |cur: Option<&Object>| {
                    let mut o = cur.cloned().unwrap_or_default();
                    o.put_blind(
                        Bytes::from(vec![value; 1 + usize::from(value) % 7]),
                        node(coordinator),
                        Timestamp::from_u64(at),
                        &policy,
                    )
                    .unwrap();
                    o
                };
                let expected = apply(model.objects.get(&id).map(|(_, o)| o));
                h.store()
                    .update(&id, n_val, |cur| Change::Write(apply(cur), ()))
                    .unwrap();
                model.objects.insert(id, (n_val, expected));
            }
            Op::Delete { key, coordinator } => {
                let id = object_id(key);
                let Some((n_val, cur)) = model.objects.get(&id).cloned() else {
                    continue;
                };
                let mut o = cur;
                o.delete_blind(node(coordinator), Timestamp::from_u64(at), &policy)
                    .unwrap();
                h.store()
                    .update(&id, n_val, |_| Change::Write(o.clone(), ()))
                    .unwrap();
                model.objects.insert(id, (n_val, o));
            }
            Op::Purge { key } => {
                let id = object_id(key);
                let version = model
                    .objects
                    .get(&id)
                    .map_or(0, |(_, o)| o.version_digest());
                let purged = h.store().purge(&id, version).unwrap();
                let expect = model.objects.get(&id).is_some_and(|(_, o)| o.is_deleted());
                prop_assert_eq!(purged, expect, "purge of {} at step {}", id, step);
                if purged {
                    model.objects.remove(&id);
                }
            }
            Op::Merge {
                key,
                value,
                coordinator,
            } => {
                let id = object_id(key);
                let incoming = one_value(value, coordinator, at);
                let n_val = model.objects.get(&id).map_or(3, |(n, _)| *n);
                let changed = h
                    .store()
                    .update(&id, n_val, |cur| {
                        let mut o = cur.cloned().unwrap_or_default();
                        let before = o.clone();
                        o.sync(&incoming, &policy);
                        if o == before {
                            Change::Keep(false)
                        } else {
                            Change::Write(o, true)
                        }
                    })
                    .unwrap();
                let entry = model.objects.entry(id).or_insert((n_val, Object::new()));
                let before = entry.1.clone();
                entry.1.sync(&incoming, &policy);
                prop_assert_eq!(changed, entry.1 != before);
            }
            Op::MergeMany {
                ref keys,
                value,
                coordinator,
            } => {
                // Each key gets its own value, so a repeated key merges two.
                let incoming: Vec<Object> = (0..keys.len())
                    .map(|i| one_value(value.wrapping_add(i as u8), coordinator, at))
                    .collect();
                let ids: Vec<(ObjectId, u8)> = keys
                    .iter()
                    .map(|&k| {
                        let id = object_id(k);
                        let n_val = model.objects.get(&id).map_or(3, |(n, _)| *n);
                        (id, n_val)
                    })
                    .collect();
                let changed = h
                    .store()
                    .update_many(&ids, |i, cur| {
                        let mut o = cur.cloned().unwrap_or_default();
                        let before = o.clone();
                        o.sync(&incoming[i], &policy);
                        if o == before {
                            Change::Keep(false)
                        } else {
                            Change::Write(o, true)
                        }
                    })
                    .unwrap();
                for (i, (id, n_val)) in ids.into_iter().enumerate() {
                    let entry = model.objects.entry(id).or_insert((n_val, Object::new()));
                    let before = entry.1.clone();
                    entry.1.sync(&incoming[i], &policy);
                    prop_assert_eq!(changed[i], entry.1 != before);
                }
            }
            Op::AddHint { target, key } => {
                let hint = Hint {
                    id: object_id(key),
                    n_val: 3,
                    object: one_value(key as u8, 1, at),
                };
                let hid = h.store().add_hint(node(target), &hint).unwrap();
                let queue = model.hints.entry(node(target)).or_default();
                if let Some((last, _)) = queue.last() {
                    prop_assert!(hid > *last);
                }
                queue.push((hid, hint));
            }
            Op::RemoveHint { target } => {
                let queue = model.hints.entry(node(target)).or_default();
                if queue.is_empty() {
                    continue;
                }
                let (hid, _) = queue.remove(0);
                prop_assert!(h.store().remove_hint(node(target), hid).unwrap());
            }
            Op::DropPartition { key } => {
                let q = h.store().config().partitions;
                let p = q.partition_of(object_id(key).hash());
                let expected = model
                    .objects
                    .keys()
                    .filter(|id| q.partition_of(id.hash()) == p)
                    .count() as u64;
                // Nothing changes between the copy and the drop: all of it goes.
                let trees = h.store().partition_trees(p).unwrap();
                let dropped = h.store().drop_partition(&trees).unwrap();
                prop_assert_eq!(dropped.objects, expected);
                prop_assert!(dropped.is_complete());
                model.objects.retain(|id, _| q.partition_of(id.hash()) != p);
            }
            Op::Reopen => {
                h.reopen();
            }
        }
        // Every key reads as the model says.
        for k in 0..KEYS {
            let id = object_id(k);
            prop_assert_eq!(
                h.store().get(&id).unwrap(),
                model.objects.get(&id).map(|(_, o)| o.clone()),
                "{} after step {} ({:?})",
                id,
                step,
                op
            );
        }
    }
    check_final(h.store(), &model)
}

fn check_final<S: Store>(store: &S, model: &Model) -> Result<(), TestCaseError> {
    let q = store.config().partitions;
    let shape = store.config().merkle_shape;
    // Scans list exactly the model's objects, with their n_val.
    let mut scanned = BTreeMap::new();
    for p in q.iter() {
        let page = store.scan(p, None, usize::MAX).unwrap();
        prop_assert_eq!(page.next, None);
        for s in page.items {
            scanned.insert(s.id, (s.n_val, s.object));
        }
    }
    prop_assert_eq!(&scanned, &model.objects);
    // Trees equal trees built from the model.
    let mut items: BTreeMap<(PartitionId, u8), Vec<_>> = BTreeMap::new();
    for (id, (n, o)) in &model.objects {
        let d = ItemDigest::of_bucket_key(id.bucket(), id.key(), o.version_digest());
        items
            .entry((q.partition_of(id.hash()), *n))
            .or_default()
            .push((id.hash(), d));
    }
    for p in q.iter() {
        for n in 1..=3u8 {
            let expected = MerkleTree::from_items(
                q,
                p,
                shape,
                items.get(&(p, n)).cloned().unwrap_or_default(),
            )
            .unwrap();
            let kept = store.merkle_tree(p, n).unwrap();
            prop_assert_eq!(kept.leaves(), expected.leaves(), "tree ({:?}, {})", p, n);
        }
    }
    // Sizes equal the model's objects counted per tree.
    let mut sizes: BTreeMap<(PartitionId, u8), TreeSize> = BTreeMap::new();
    for (id, (n, o)) in &model.objects {
        let size = sizes.entry((q.partition_of(id.hash()), *n)).or_default();
        size.objects += 1;
        size.bytes += object_bytes(id.key(), o);
    }
    prop_assert_eq!(store.tree_sizes(), sizes);
    // Hint queues hold exactly the model's hints, in order.
    for (target, queue) in &model.hints {
        let stored = store.hints(*target, None, usize::MAX).unwrap();
        prop_assert_eq!(&stored, queue);
        let backlog = store.hint_backlog().get(target).copied().unwrap_or(0);
        prop_assert_eq!(backlog, queue.len() as u64);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mem_store_matches_the_model(ops in prop::collection::vec(op(), 1..80)) {
        run::<Mem>(&ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn fjall_store_matches_the_model_across_reopens(ops in prop::collection::vec(op(), 1..60)) {
        run::<Disk>(&ops)?;
    }
}

//! One behaviour for every store: each test here runs against [`MemStore`]
//! and [`FjallStore`] (the `mem` and `fjall` modules at the bottom).
//!
//! [`MemStore`]: gyre_storage::MemStore
//! [`FjallStore`]: gyre_storage::FjallStore
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::{Harness, config, delete, id, node, put, values};
use gyre_merkle::TreeShape;
use gyre_ring::{Layout, Member, RingConfig};
use gyre_storage::{Change, Error, Hint, Limits, Object, ObjectId, Store, StoreConfig};
use gyre_types::{BucketProps, ConflictMode, Key, NodeId, PartitionId, Timestamp, ZoneName};
use gyre_versioning::Policy;

fn partition_of<S: Store>(store: &S, id: &ObjectId) -> PartitionId {
    store.config().partitions.partition_of(id.hash())
}

fn scan_all<S: Store>(store: &S, p: PartitionId, page: usize) -> Vec<ObjectId> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.scan(p, after.as_ref(), page).unwrap();
        out.extend(page.items.into_iter().map(|s| s.id));
        match page.next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
}

fn missing_objects_read_as_none<H: Harness>() {
    let h = H::open(config());
    assert_eq!(h.store().get(&id("b", "nope")).unwrap(), None);
}

fn updates_read_modify_write<H: Harness>() {
    let mut h = H::open(config());
    let k = id("carts", "alice");
    put(h.store(), &k, 3, b"one", 1);
    put(h.store(), &k, 3, b"two", 2); // blind: supersedes "one"
    assert_eq!(values(h.store(), &k), [b"two".to_vec()]);

    // The closure sees the current state; Keep writes nothing.
    let seen = h
        .store()
        .update(&k, 3, |cur| {
            let n = cur.map_or(0, Object::sibling_count);
            Change::Keep(n)
        })
        .unwrap();
    assert_eq!(seen, 1);
    if h.reopen() {
        assert_eq!(values(h.store(), &k), [b"two".to_vec()]);
    }
}

fn writing_an_empty_object_removes_the_record<H: Harness>() {
    let h = H::open(config());
    let k = id("b", "k");
    put(h.store(), &k, 3, b"v", 1);
    h.store()
        .update(&k, 3, |_| Change::Write(Object::new(), ()))
        .unwrap();
    assert_eq!(h.store().get(&k).unwrap(), None);
    assert!(h.store().merkle_trees().is_empty());
    assert!(h.store().verify_trees().unwrap().is_empty());
}

fn oversized_input_is_refused_and_changes_nothing<H: Harness>() {
    let limits = Limits {
        max_key_len: 16,
        max_value_len: 100,
    };
    let h = H::open(StoreConfig { limits, ..config() });
    let s = h.store();

    let long = ObjectId::new(common::bucket("b"), Key::new(vec![b'k'; 17]).unwrap());
    let mut ran = false;
    let err = s
        .update(&long, 3, |_| {
            ran = true;
            Change::Keep(())
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::KeyTooLong { len: 17, max: 16 }),
        "{err}"
    );
    assert!(!ran, "the closure must not run for a refused key");
    assert!(matches!(s.get(&long), Err(Error::KeyTooLong { .. })));

    let k = id("b", "k");
    put(s, &k, 3, b"small", 1);
    let before = s.merkle_tree(partition_of(s, &k), 3).unwrap().root();
    let err = s
        .update(&k, 3, |cur| {
            let mut o = cur.cloned().unwrap();
            o.put_blind(
                Bytes::from(vec![0u8; 101]),
                node(1),
                Timestamp::from_u64(2),
                &Policy::default(),
            )
            .unwrap();
            Change::Write(o, ())
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::ValueTooLarge { len: 101, max: 100 }),
        "{err}"
    );
    assert_eq!(values(s, &k), [b"small".to_vec()]);
    assert_eq!(
        s.merkle_tree(partition_of(s, &k), 3).unwrap().root(),
        before
    );

    let mut big = Object::new();
    big.put_blind(
        Bytes::from(vec![0u8; 101]),
        node(1),
        Timestamp::from_u64(1),
        &Policy::default(),
    )
    .unwrap();
    let hint = Hint {
        id: k.clone(),
        n_val: 3,
        object: big,
    };
    assert!(matches!(
        s.add_hint(node(9), &hint),
        Err(Error::ValueTooLarge { .. })
    ));
    assert!(s.hint_backlog().is_empty());

    for bad in [0, BucketProps::MAX_N_VAL + 1] {
        assert!(matches!(
            s.update(&k, bad, |_| Change::Keep(())),
            Err(Error::Config(_))
        ));
    }
    assert!(s.verify_trees().unwrap().is_empty());
}

fn merkle_trees_follow_every_write<H: Harness>() {
    let mut h = H::open(config());
    let keys: Vec<ObjectId> = (0..200).map(|i| id("b", &format!("k{i}"))).collect();
    for (i, k) in keys.iter().enumerate() {
        put(h.store(), k, 3, format!("v{i}").as_bytes(), 1);
    }
    for k in keys.iter().step_by(3) {
        delete(h.store(), k, 3, 2);
    }
    // Moving a key to another n_val moves it between trees.
    for k in keys.iter().step_by(7) {
        put(h.store(), k, 2, b"moved", 1);
    }
    let trees: BTreeSet<u8> = h
        .store()
        .merkle_trees()
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(trees, BTreeSet::from([2, 3]));
    assert!(h.store().verify_trees().unwrap().is_empty());
    let roots: Vec<u128> = h
        .store()
        .merkle_trees()
        .into_iter()
        .map(|(p, n)| h.store().merkle_tree(p, n).unwrap().root())
        .collect();
    if h.reopen() {
        assert!(h.store().verify_trees().unwrap().is_empty());
        let after: Vec<u128> = h
            .store()
            .merkle_trees()
            .into_iter()
            .map(|(p, n)| h.store().merkle_tree(p, n).unwrap().root())
            .collect();
        assert_eq!(after, roots);
    }
}

fn equal_states_give_equal_trees_on_any_store<H: Harness>() {
    let a = H::open(config());
    let b = H::open(config());
    let keys: Vec<ObjectId> = (0..50).map(|i| id("b", &format!("k{i}"))).collect();
    // Same final states, reached in different orders.
    for k in &keys {
        put(a.store(), k, 3, b"x", 1);
    }
    let objects: Vec<Object> = keys
        .iter()
        .map(|k| a.store().get(k).unwrap().unwrap())
        .collect();
    for (k, o) in keys.iter().zip(&objects).rev() {
        b.store()
            .update(k, 3, |_| Change::Write(o.clone(), ()))
            .unwrap();
    }
    for (p, n) in a.store().merkle_trees() {
        assert_eq!(
            a.store().merkle_tree(p, n).unwrap().root(),
            b.store().merkle_tree(p, n).unwrap().root()
        );
    }
}

fn scans_page_through_a_partition_in_hash_order<H: Harness>() {
    let h = H::open(config());
    let s = h.store();
    let keys: Vec<ObjectId> = (0..500).map(|i| id("b", &format!("key-{i}"))).collect();
    for k in &keys {
        put(s, k, 3, b"v", 1);
    }
    put(s, &id("other", "key-1"), 3, b"v", 1);
    let mut seen = Vec::new();
    for p in s.config().partitions.iter() {
        for page in [1, 3, 1000] {
            let ids = scan_all(s, p, page);
            assert!(
                ids.windows(2)
                    .all(|w| w[0].hash() <= w[1].hash() && w[0] < w[1])
            );
            assert!(ids.iter().all(|i| partition_of(s, i) == p));
            if page == 1000 {
                seen.extend(ids);
            }
        }
    }
    let mut expected = keys.clone();
    expected.push(id("other", "key-1"));
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);

    // A scan carries n_val and state, and `after` from elsewhere is clamped.
    let k = &keys[0];
    let p = partition_of(s, k);
    let page = s.scan(p, None, usize::MAX).unwrap();
    let item = page.items.iter().find(|i| &i.id == k).unwrap();
    assert_eq!(item.n_val, 3);
    assert_eq!(Some(&item.object), s.get(k).unwrap().as_ref());
    assert!(s.scan(PartitionId::new(64), None, 10).is_err());
}

fn scans_resume_from_any_hash_within_its_partition<H: Harness>() {
    let h = H::open(config());
    let s = h.store();
    let keys: Vec<ObjectId> = (0..300).map(|i| id("b", &format!("key-{i}"))).collect();
    for k in &keys {
        put(s, k, 3, b"v", 1);
    }
    let q = s.config().partitions;
    for p in q.iter() {
        let all = scan_all(s, p, 1000);
        let start = *q.range(p).start();
        // From the partition's first hash: everything, page by page.
        let mut from = start;
        let mut seen = Vec::new();
        loop {
            let page = s.scan_from(gyre_types::KeyHash::from_u64(from), 7).unwrap();
            assert!(page.items.iter().all(|i| partition_of(s, &i.id) == p));
            seen.extend(page.items.iter().map(|i| i.id.clone()));
            match page.next {
                Some(last) => from = last.hash().as_u64() + 1,
                None => break,
            }
        }
        assert_eq!(seen, all);
        // From the middle of a key's hash: only what follows it.
        if let Some(k) = all.get(1) {
            let page = s.scan_from(k.hash(), 1000).unwrap();
            assert_eq!(page.items.first().map(|i| &i.id), Some(k));
            assert_eq!(page.items.len(), all.len() - 1);
            assert_eq!(page.next, None);
        }
    }
}

/// 3,000 keys written (n_val 3), and the partition of the first. Every
/// tenth value is 2 KiB: kept apart from its key by fjall (a blob), which
/// a drop must remove as well without reading it twice.
fn three_thousand_keys<S: Store>(store: &S) -> (Vec<ObjectId>, PartitionId) {
    let keys: Vec<ObjectId> = (0..3000).map(|i| id("b", &format!("k{i}"))).collect();
    let large = vec![b'x'; 2048];
    for (i, k) in keys.iter().enumerate() {
        let value: &[u8] = if i % 10 == 0 { &large } else { b"v" };
        put(store, k, 3, value, 1);
    }
    let victim = partition_of(store, &keys[0]);
    (keys, victim)
}

fn dropping_a_partition_removes_it_and_its_trees_only<H: Harness>() {
    let mut h = H::open(config());
    let (keys, victim) = three_thousand_keys(h.store());
    let in_victim = keys
        .iter()
        .filter(|k| partition_of(h.store(), k) == victim)
        .count();
    let trees = h.store().partition_trees(victim).unwrap();
    let dropped = h.store().drop_partition(&trees).unwrap();
    assert_eq!(dropped.objects, in_victim as u64);
    assert!(dropped.is_complete());
    assert!(scan_all(h.store(), victim, 100).is_empty());
    assert_eq!(h.store().merkle_tree(victim, 3).unwrap().root(), 0);
    assert!(!h.store().merkle_trees().contains(&(victim, 3)));
    for k in &keys {
        let gone = partition_of(h.store(), k) == victim;
        assert_eq!(h.store().get(k).unwrap().is_none(), gone);
    }
    assert!(h.store().verify_trees().unwrap().is_empty());
    let trees = h.store().partition_trees(victim).unwrap();
    assert!(trees.trees.is_empty());
    assert_eq!(h.store().drop_partition(&trees).unwrap().objects, 0);
    if h.reopen() {
        assert_eq!(h.store().merkle_tree(victim, 3).unwrap().root(), 0);
        assert!(h.store().verify_trees().unwrap().is_empty());
    }
}

/// A write that arrives after the copy of the trees (so after the hand-off
/// began) is not dropped with the partition: its leaf is kept whole, the
/// rest goes, and the trees still agree with the data.
fn a_drop_keeps_what_changed_after_the_hand_off<H: Harness>() {
    let mut h = H::open(config());
    let (keys, victim) = three_thousand_keys(h.store());
    let in_victim: Vec<&ObjectId> = keys
        .iter()
        .filter(|k| partition_of(h.store(), k) == victim)
        .collect();
    let handed_off = h.store().partition_trees(victim).unwrap();
    // Late: a new key, and a new version of one handed off, another n_val.
    let late = (0..)
        .map(|i| id("late", &format!("k{i}")))
        .find(|k| partition_of(h.store(), k) == victim)
        .unwrap();
    put(h.store(), &late, 3, b"late", 2);
    let rewritten = in_victim[in_victim.len() / 2];
    put(h.store(), rewritten, 5, b"again", 2);
    let tree = h.store().merkle_tree(victim, 3).unwrap();
    let leaf_of = |k: &ObjectId| tree.leaf_of(k.hash()).unwrap();
    let changed = [leaf_of(&late), leaf_of(rewritten)];
    let dropped = h.store().drop_partition(&handed_off).unwrap();
    assert!(!dropped.is_complete());
    assert_eq!(
        dropped.changed_leaves,
        if changed[0] == changed[1] { 1 } else { 2 }
    );
    for k in in_victim.iter().copied().chain([&late]) {
        let kept = changed.contains(&leaf_of(k));
        assert_eq!(h.store().get(k).unwrap().is_some(), kept, "{k}");
    }
    assert!(h.store().get(&late).unwrap().is_some());
    assert!(h.store().get(rewritten).unwrap().is_some());
    assert!(h.store().verify_trees().unwrap().is_empty());
    // Handed off again: now it all goes, trees with it.
    let handed_off = h.store().partition_trees(victim).unwrap();
    assert!(h.store().drop_partition(&handed_off).unwrap().is_complete());
    assert!(scan_all(h.store(), victim, 100).is_empty());
    assert!(h.store().merkle_trees().iter().all(|(p, _)| *p != victim));
    if h.reopen() {
        assert!(h.store().verify_trees().unwrap().is_empty());
        assert!(scan_all(h.store(), victim, 100).is_empty());
    }
}

fn blind(object: Option<&Object>, value: &[u8], ts: u64) -> Object {
    let mut o = object.cloned().unwrap_or_default();
    o.put_blind(
        Bytes::copy_from_slice(value),
        node(1),
        Timestamp::from_u64(ts),
        &Policy::default(),
    )
    .unwrap();
    o
}

/// A batch of updates is one write: every change lands with its leaves, a
/// key named twice sees its own earlier change, and one value over the
/// limit refuses the whole batch.
fn a_batch_of_updates_is_one_write<H: Harness>() {
    let limits = Limits {
        max_value_len: 100,
        ..Limits::default()
    };
    let mut h = H::open(StoreConfig { limits, ..config() });
    let keys: Vec<ObjectId> = (0..300).map(|i| id("b", &format!("k{i}"))).collect();
    put(h.store(), &keys[0], 3, b"old", 1);
    let mut batch: Vec<(ObjectId, u8)> = keys.iter().map(|k| (k.clone(), 3)).collect();
    batch.push((keys[1].clone(), 3));
    let seen = h
        .store()
        .update_many(&batch, |i, current| {
            let held = current.map(|o| o.values().count());
            if i == 2 {
                return Change::Keep(held);
            }
            Change::Write(blind(current, format!("v{i}").as_bytes(), 2), held)
        })
        .unwrap();
    assert_eq!(seen[0], Some(1), "the stored object");
    assert_eq!(seen[1], None);
    assert_eq!(seen[300], Some(1), "the batch's own earlier change");
    assert_eq!(values(h.store(), &keys[0]), [b"v0".to_vec()]);
    assert_eq!(values(h.store(), &keys[1]), [b"v300".to_vec()]);
    assert!(h.store().get(&keys[2]).unwrap().is_none());
    assert_eq!(values(h.store(), &keys[299]), [b"v299".to_vec()]);
    assert!(h.store().verify_trees().unwrap().is_empty());

    let roots: Vec<u128> = h
        .store()
        .merkle_trees()
        .iter()
        .map(|&(p, n)| h.store().merkle_tree(p, n).unwrap().root())
        .collect();
    let err = h
        .store()
        .update_many(&batch[..10], |i, current| {
            let value = if i == 9 {
                vec![0u8; 101]
            } else {
                b"new".to_vec()
            };
            Change::Write(blind(current, &value, 3), ())
        })
        .unwrap_err();
    assert!(matches!(err, Error::ValueTooLarge { .. }), "{err}");
    assert_eq!(values(h.store(), &keys[3]), [b"v3".to_vec()]);
    let after: Vec<u128> = h
        .store()
        .merkle_trees()
        .iter()
        .map(|&(p, n)| h.store().merkle_tree(p, n).unwrap().root())
        .collect();
    assert_eq!(roots, after);
    if h.reopen() {
        assert_eq!(values(h.store(), &keys[1]), [b"v300".to_vec()]);
        assert!(h.store().verify_trees().unwrap().is_empty());
    }
}

/// Objects of one batch that share a Merkle leaf each leave their mark on
/// it: the leaf written is the sum of all their changes, so the trees read
/// back after a restart are the data's.
fn a_batch_sharing_leaves_persists_every_change<H: Harness>() {
    // Two leaves per tree: a batch of 40 puts many objects in each.
    let shape = TreeShape::new(1, 1).unwrap();
    let mut h = H::open(StoreConfig {
        merkle_shape: shape,
        ..config()
    });
    let keys: Vec<ObjectId> = (0..40).map(|i| id("b", &format!("k{i}"))).collect();
    put(h.store(), &keys[0], 3, b"old", 1);
    let batch: Vec<(ObjectId, u8)> = keys.iter().map(|k| (k.clone(), 3)).collect();
    h.store()
        .update_many(&batch, |i, current| {
            Change::Write(blind(current, format!("v{i}").as_bytes(), 2), ())
        })
        .unwrap();
    assert!(h.store().verify_trees().unwrap().is_empty());
    if h.reopen() {
        assert!(h.store().verify_trees().unwrap().is_empty());
    }
    // Changes, removals and additions, sharing leaves again.
    let mut batch: Vec<(ObjectId, u8)> = batch[..30].to_vec();
    batch.extend((40..50).map(|i| (id("b", &format!("k{i}")), 3)));
    h.store()
        .update_many(&batch, |i, current| {
            if i % 3 == 0 {
                Change::Write(Object::default(), ())
            } else {
                Change::Write(blind(current, format!("w{i}").as_bytes(), 3), ())
            }
        })
        .unwrap();
    assert!(h.store().verify_trees().unwrap().is_empty());
    if h.reopen() {
        assert!(h.store().verify_trees().unwrap().is_empty());
        assert!(h.store().get(&keys[0]).unwrap().is_none());
        assert_eq!(values(h.store(), &keys[1]), [b"w1".to_vec()]);
    }
}

fn purge_removes_only_the_tombstone_it_names<H: Harness>() {
    let h = H::open(config());
    let s = h.store();
    let (live, dead) = (id("b", "live"), id("b", "dead"));
    put(s, &live, 3, b"v", 1);
    put(s, &dead, 3, b"v", 1);
    delete(s, &dead, 3, 1);
    let live_v = s.get(&live).unwrap().unwrap().version_digest();
    let dead_v = s.get(&dead).unwrap().unwrap().version_digest();
    assert!(
        !s.purge(&live, live_v).unwrap(),
        "live objects are never purged"
    );
    assert!(
        !s.purge(&dead, dead_v ^ 1).unwrap(),
        "another version is kept"
    );
    assert!(
        s.get(&dead).unwrap().unwrap().is_deleted(),
        "tombstones stay until purged"
    );
    assert!(s.purge(&dead, dead_v).unwrap());
    assert_eq!(s.get(&dead).unwrap(), None);
    assert!(!s.purge(&dead, dead_v).unwrap());
    assert!(s.verify_trees().unwrap().is_empty());
}

fn hints_queue_per_target_in_order<H: Harness>() {
    let mut h = H::open(config());
    let (a, b) = (node(0xa), node(0xb));
    let hint = |i: u32| {
        let mut o = Object::new();
        o.put_blind(
            Bytes::from(format!("h{i}")),
            node(1),
            Timestamp::from_u64(u64::from(i)),
            &Policy::default(),
        )
        .unwrap();
        Hint {
            id: id("b", &format!("k{i}")),
            n_val: 3,
            object: o,
        }
    };
    let mut ids_a = Vec::new();
    for i in 0..10 {
        ids_a.push(h.store().add_hint(a, &hint(i)).unwrap());
        if i.is_multiple_of(3) {
            h.store().add_hint(b, &hint(100 + i)).unwrap();
        }
    }
    assert!(ids_a.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        h.store().hint_backlog().into_iter().collect::<Vec<_>>(),
        [(a, 10), (b, 4)]
    );

    // Pages in order, starting after a given id.
    let first = h.store().hints(a, None, 4).unwrap();
    assert_eq!(first.len(), 4);
    assert_eq!(first[0].1, hint(0));
    let rest = h.store().hints(a, Some(first[3].0), 100).unwrap();
    assert_eq!(rest.len(), 6);
    assert_eq!(rest[0].1, hint(4));

    assert!(h.store().remove_hint(a, ids_a[0]).unwrap());
    assert!(!h.store().remove_hint(a, ids_a[0]).unwrap());
    assert_eq!(h.store().hint_backlog().get(&a), Some(&9));
    if h.reopen() {
        assert_eq!(h.store().hint_backlog().get(&a), Some(&9));
        assert_eq!(h.store().hints(a, None, 1).unwrap()[0].1, hint(1));
        // New hints go after the recovered ones.
        let next = h.store().add_hint(a, &hint(50)).unwrap();
        assert!(next > ids_a[9]);
    }
    for (hid, _) in h.store().hints(a, None, 100).unwrap() {
        assert!(h.store().remove_hint(a, hid).unwrap());
    }
    assert_eq!(h.store().hint_backlog().get(&a), None);
    // Ids are never reused, even once the queue is empty (and reopened).
    let highest = h.store().add_hint(a, &hint(60)).unwrap();
    h.store().remove_hint(a, highest).unwrap();
    h.reopen();
    assert!(h.store().add_hint(a, &hint(61)).unwrap() > highest);
    // Hints are not objects: they never show up in data or trees.
    assert!(h.store().merkle_trees().is_empty());
    assert_eq!(h.store().get(&id("b", "k1")).unwrap(), None);
}

fn metadata_round_trips<H: Harness>() {
    let mut h = H::open(config());
    let s = h.store();
    assert_eq!(s.node_id().unwrap(), None);
    s.set_node_id(NodeId::new(0xfeed)).unwrap();
    s.set_cluster_id("prod-eu").unwrap();
    let members = (1..=4)
        .map(|i| Member::new(NodeId::new(i), ZoneName::default(), 100))
        .collect();
    let layout = Layout::initial(
        RingConfig {
            partitions: config().partitions,
            replication: 3,
        },
        members,
    )
    .unwrap();
    s.set_layout(&layout).unwrap();
    // Layouts in use and an entry of the caller's, in one write.
    let grown = layout
        .next(
            (1..=5)
                .map(|i| Member::new(NodeId::new(i), ZoneName::default(), 100))
                .collect(),
        )
        .unwrap();
    s.set_layouts(
        std::slice::from_ref(&layout),
        &grown,
        vec![("reading".to_owned(), b"v1".to_vec())],
    )
    .unwrap();
    let carts = BucketProps::new(5, 3, 3)
        .unwrap()
        .with_conflict_mode(ConflictMode::Lww);
    s.set_bucket_props(&common::bucket("carts"), &carts)
        .unwrap();
    s.set_bucket_props(&common::bucket("a"), &BucketProps::default())
        .unwrap();
    h.reopen();
    let s = h.store();
    assert_eq!(s.node_id().unwrap(), Some(NodeId::new(0xfeed)));
    assert_eq!(s.cluster_id().unwrap().as_deref(), Some("prod-eu"));
    assert_eq!(s.layout().unwrap(), Some(grown));
    assert_eq!(s.older_layouts().unwrap(), [layout]);
    assert_eq!(
        Store::meta(s, "reading").unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    assert_eq!(
        s.bucket_props(&common::bucket("carts")).unwrap(),
        Some(carts)
    );
    assert_eq!(s.bucket_props(&common::bucket("none")).unwrap(), None);
    let all: Vec<String> = s
        .all_bucket_props()
        .unwrap()
        .keys()
        .map(ToString::to_string)
        .collect();
    assert_eq!(all, ["a", "carts"]);
    s.set_meta("garbage", b"\x01{not json".to_vec()).unwrap();
    assert!(matches!(Store::meta(s, "garbage"), Ok(Some(_))));
    s.set_meta("node_id", b"\x07".to_vec()).unwrap();
    let err = s.node_id().unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { location, .. } if location.contains("node_id")),
        "{err}"
    );
}

fn concurrent_updates_of_one_key_lose_nothing<H: Harness>() {
    let h = H::open(config());
    let k = id("b", "counter");
    let threads = 8;
    let per_thread = 50;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (s, k) = (h.store(), &k);
            scope.spawn(move || {
                for _ in 0..per_thread {
                    s.update(k, 3, |cur| {
                        let mut o = cur.cloned().unwrap_or_default();
                        let n: u64 = o
                            .values()
                            .next()
                            .map_or(0, |v| std::str::from_utf8(v).unwrap().parse().unwrap());
                        o.put_blind(
                            Bytes::from((n + 1).to_string()),
                            node(t),
                            Timestamp::from_u64(1),
                            &Policy::default(),
                        )
                        .unwrap();
                        Change::Write(o, ())
                    })
                    .unwrap();
                }
            });
        }
    });
    let total = (threads * per_thread).to_string().into_bytes();
    assert_eq!(values(h.store(), &k), [total]);
    assert!(h.store().verify_trees().unwrap().is_empty());
}

fn flush_succeeds_and_keeps_everything<H: Harness>() {
    let mut h = H::open(config());
    put(h.store(), &id("b", "k"), 1, b"v", 1);
    h.store().flush().unwrap();
    if h.reopen() {
        assert_eq!(values(h.store(), &id("b", "k")), [b"v".to_vec()]);
    }
}

macro_rules! conformance {
    ($module:ident, $harness:ty) => {
        mod $module {
            use super::*;
            conformance!(@tests $harness;
                missing_objects_read_as_none,
                updates_read_modify_write,
                writing_an_empty_object_removes_the_record,
                oversized_input_is_refused_and_changes_nothing,
                merkle_trees_follow_every_write,
                equal_states_give_equal_trees_on_any_store,
                scans_page_through_a_partition_in_hash_order,
                scans_resume_from_any_hash_within_its_partition,
                dropping_a_partition_removes_it_and_its_trees_only,
                a_drop_keeps_what_changed_after_the_hand_off,
                a_batch_of_updates_is_one_write,
                a_batch_sharing_leaves_persists_every_change,
                purge_removes_only_the_tombstone_it_names,
                hints_queue_per_target_in_order,
                metadata_round_trips,
                concurrent_updates_of_one_key_lose_nothing,
                flush_succeeds_and_keeps_everything,
            );
        }
    };
    (@tests $harness:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                super::$name::<$harness>();
            }
        )*
    };
}

conformance!(mem, common::Mem);
conformance!(fjall, common::Disk);

//! Records damaged on disk are typed errors that name what is damaged, never
//! panics; undamaged records stay readable, and damaged Merkle leaves are
//! rebuilt from the data.
//!
//! The test closes a [`FjallStore`], damages its database with fjall
//! directly, and reopens it.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Disk, Harness, config, id, node, put, values};
use fjall::{Database, KeyspaceCreateOptions};
use gyre_storage::{Error, FjallStore, Hint, Object, Store, StoreConfig};
use gyre_types::PartitionCount;

/// Rewrites every value of `keyspace` with `damage(key, value)`.
fn damage(dir: &std::path::Path, keyspace: &str, damage: impl Fn(&[u8], &[u8]) -> Option<Vec<u8>>) {
    let db = Database::builder(dir.join("fjall")).open().unwrap();
    let ks = db
        .keyspace(keyspace, KeyspaceCreateOptions::default)
        .unwrap();
    let rows: Vec<_> = ks
        .iter()
        .map(|g| {
            let (k, v) = g.into_inner().unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect();
    for (k, v) in rows {
        if let Some(new) = damage(&k, &v) {
            ks.insert(k, new).unwrap();
        }
    }
    db.persist(fjall::PersistMode::SyncAll).unwrap();
}

#[test]
fn a_corrupt_object_is_an_error_naming_its_key() {
    let mut h = Disk::open(config());
    let (bad, good) = (id("carts", "bad-key"), id("carts", "good-key"));
    put(h.store(), &bad, 3, b"v", 1);
    put(h.store(), &good, 3, b"v", 1);
    drop(h.store.take());

    let bad_key_bytes = bad.key().as_bytes().to_vec();
    damage(h.dir.path(), "objects", |k, v| {
        k.ends_with(&bad_key_bytes).then(|| {
            let mut v = v.to_vec();
            let mid = v.len() / 2;
            v[mid] ^= 0x40;
            v
        })
    });
    h.reopen();
    let s = h.store();
    let err = s.get(&bad).unwrap_err();
    match &err {
        Error::Corrupt { location, reason } => {
            assert!(
                location.contains("carts") && location.contains("bad-key"),
                "{err}"
            );
            assert!(reason.contains("checksum"), "{err}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Updating it refuses too (and writes nothing); other keys are fine.
    assert!(matches!(
        s.update(&bad, 3, |_| gyre_storage::Change::Write(Object::new(), ())),
        Err(Error::Corrupt { .. })
    ));
    assert_eq!(values(s, &good), [b"v".to_vec()]);
    let p = s.config().partitions.partition_of(bad.hash());
    assert!(matches!(s.scan(p, None, 100), Err(Error::Corrupt { .. })));
}

#[test]
fn truncated_and_unknown_format_records_are_errors() {
    for (what, damaged) in [
        (
            "truncated",
            Box::new(|v: &[u8]| v[..v.len() / 2].to_vec()) as Box<dyn Fn(&[u8]) -> Vec<u8>>,
        ),
        ("empty", Box::new(|_: &[u8]| Vec::new())),
        (
            "future format",
            Box::new(|v: &[u8]| {
                let mut v = v.to_vec();
                v[0] = 9;
                v
            }),
        ),
    ] {
        let mut h = Disk::open(config());
        let k = id("b", "k");
        put(h.store(), &k, 3, b"v", 1);
        drop(h.store.take());
        damage(h.dir.path(), "objects", |_, v| Some(damaged(v)));
        h.reopen();
        let err = h.store().get(&k).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{what}: {err}");
    }
}

#[test]
fn a_corrupt_hint_is_an_error_naming_its_queue() {
    let mut h = Disk::open(config());
    let mut o = Object::new();
    o.put_blind(
        bytes::Bytes::from_static(b"v"),
        node(1),
        gyre_types::Timestamp::from_u64(1),
        &gyre_versioning::Policy::default(),
    )
    .unwrap();
    let hint = Hint {
        id: id("b", "k"),
        n_val: 3,
        object: o,
    };
    h.store().add_hint(node(7), &hint).unwrap();
    drop(h.store.take());
    damage(h.dir.path(), "hints", |_, v| Some(v[1..].to_vec()));
    h.reopen();
    let err = h.store().hints(node(7), None, 10).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { location, .. } if location.contains("0000000000000007")),
        "{err}"
    );
}

#[test]
fn corrupt_merkle_leaves_are_rebuilt_from_the_data() {
    let mut h = Disk::open(config());
    for i in 0..100 {
        put(h.store(), &id("b", &format!("k{i}")), 3, b"v", 1);
    }
    drop(h.store.take());
    damage(h.dir.path(), "leaves", |_, v| Some(v[..7].to_vec()));
    h.reopen();
    assert!(h.store().verify_trees().unwrap().is_empty());
    assert!(!h.store().merkle_trees().is_empty());
}

#[test]
fn a_changed_tree_shape_rebuilds_the_trees() {
    let mut h = Disk::open(config());
    for i in 0..100 {
        put(h.store(), &id("b", &format!("k{i}")), 2, b"v", 1);
    }
    drop(h.store.take());
    let finer = StoreConfig {
        merkle_shape: gyre_merkle::TreeShape::new(4, 4).unwrap(),
        ..config()
    };
    let s = FjallStore::open(h.dir.path(), finer).unwrap();
    assert!(s.verify_trees().unwrap().is_empty());
    let (p, n) = s.merkle_trees()[0];
    assert_eq!(s.merkle_tree(p, n).unwrap().leaves().len(), 65_536);
}

#[test]
fn another_partition_count_is_refused() {
    let h = Disk::open(config());
    put(h.store(), &id("b", "k"), 3, b"v", 1);
    let other = StoreConfig {
        partitions: PartitionCount::new(128).unwrap(),
        ..config()
    };
    let dir = h.dir.path().to_owned();
    let Disk {
        store, dir: _keep, ..
    } = h;
    drop(store);
    let err = FjallStore::open(&dir, other).err().unwrap();
    assert!(
        matches!(err, Error::Config(ref m) if m.contains("64")),
        "{err}"
    );
}

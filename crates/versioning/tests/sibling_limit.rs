//! `max_siblings` refuses client writes that would exceed it, leaving the
//! state untouched; replication ignores it.

mod support;

use gyre_versioning::{Context, Error, Policy};
use support::{State, node, ts};

#[test]
fn a_put_past_the_limit_is_refused_and_changes_nothing() {
    let p = Policy::siblings().with_max_siblings(3);
    let mut s = State::new();
    for i in 0..3 {
        // Clients that never read: every write is concurrent with the others.
        s.put(&Context::empty(), i, node(0), ts(i.into()), &p)
            .unwrap();
    }
    assert_eq!(s.sibling_count(), 3);
    let before = s.clone();
    assert_eq!(
        s.put(&Context::empty(), 9, node(0), ts(9), &p),
        Err(Error::TooManySiblings { count: 4, max: 3 })
    );
    assert_eq!(
        s.delete(&Context::empty(), node(1), ts(9), &p),
        Err(Error::TooManySiblings { count: 4, max: 3 })
    );
    assert_eq!(s, before);
    assert_eq!(s.version_digest(), before.version_digest());

    // A context that covers one sibling makes room for exactly one more.
    let partial = Context::from_entries([(node(0), 1)]);
    s.put(&partial, 10, node(1), ts(10), &p).unwrap();
    assert_eq!(s.sibling_count(), 3);

    // A write with the read's context resolves everything.
    let ctx = s.read().into_context();
    s.put(&ctx, 11, node(0), ts(11), &p).unwrap();
    assert_eq!(s.values().copied().collect::<Vec<_>>(), [11]);
}

#[test]
fn the_limit_counts_the_new_value_and_tombstones() {
    let p = Policy::siblings().with_max_siblings(1);
    let mut s = State::new();
    s.delete(&Context::empty(), node(0), ts(1), &p).unwrap();
    assert!(matches!(
        s.put(&Context::empty(), 1, node(0), ts(2), &p),
        Err(Error::TooManySiblings { count: 2, max: 1 })
    ));
    s.put_blind(1, node(0), ts(2), &p).unwrap();
    assert_eq!(s.sibling_count(), 1);
}

#[test]
fn sync_ignores_the_limit() {
    let p = Policy::siblings().with_max_siblings(2);
    let mut replicas: Vec<State> = (0..4).map(|_| State::new()).collect();
    for (i, r) in replicas.iter_mut().enumerate() {
        for k in 0..2u32 {
            r.put(
                &Context::empty(),
                i as u32 * 10 + k,
                node(i),
                ts(k.into()),
                &p,
            )
            .unwrap();
        }
    }
    let mut all = State::new();
    for r in &replicas {
        all.sync(r, &p);
    }
    assert_eq!(all.sibling_count(), 8);
    // Client writes that do not resolve enough are still refused…
    let before = all.clone();
    assert!(all.put(&Context::empty(), 99, node(0), ts(5), &p).is_err());
    assert_eq!(all, before);
    // …and one that resolves them goes through.
    let ctx = all.context();
    all.put(&ctx, 100, node(2), ts(6), &p).unwrap();
    assert_eq!(all.sibling_count(), 1);
}

#[test]
fn lww_never_refuses() {
    let p = Policy::lww().with_max_siblings(1);
    let mut s = State::new();
    for i in 0..10u32 {
        s.put(&Context::empty(), i, node(i as usize % 3), ts(i.into()), &p)
            .unwrap();
    }
    assert_eq!(s.values().copied().collect::<Vec<_>>(), [9]);
}

//! A put with a read's context supersedes exactly what that read saw: values
//! written concurrently elsewhere survive the later sync, and two puts made
//! with the same context both survive as siblings.

mod support;

use std::collections::BTreeSet;

use gyre_versioning::{Context, Dot, Policy};
use proptest::prelude::*;
use support::{Cluster, State, check_invariants, history, node, ts};

fn dots(s: &State) -> BTreeSet<Dot> {
    s.siblings().map(|x| x.dot).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn a_put_supersedes_exactly_what_its_read_saw(
        ops in history(3, 3, 50),
        r in 0..3usize,
        q_offset in 1..3usize,
        delete in any::<bool>(),
    ) {
        let p = Policy::siblings();
        let mut c = Cluster::run(3, 3, p, &ops);
        let q = (r + q_offset) % 3;

        // A client reads replica r.
        let read_ctx = c.replicas[r].read().into_context();
        let seen = dots(&c.replicas[r]);

        // Meanwhile replica q takes a write that supersedes nothing.
        let q_before = c.replicas[q].clone();
        let x = c.replicas[q].put(&Context::empty(), 1_000_000, node(q), ts(7), &p).unwrap();

        // The client writes back through r with its context.
        let new = if delete {
            c.replicas[r].delete(&read_ctx, node(r), ts(9), &p).unwrap()
        } else {
            c.replicas[r].put(&read_ctx, 2_000_000, node(r), ts(9), &p).unwrap()
        };
        prop_assert_eq!(dots(&c.replicas[r]), BTreeSet::from([new]));
        prop_assert!(c.replicas[r].descends(&read_ctx));

        // After a sync, what the read saw is gone, the rest survives.
        let other = c.replicas[q].clone();
        c.replicas[r].sync(&other, &p);
        check_invariants(&c.replicas[r]);
        let mut want: BTreeSet<Dot> = dots(&q_before)
            .into_iter()
            .filter(|d| !read_ctx.covers(*d))
            .collect();
        want.insert(new);
        want.insert(x);
        let got = dots(&c.replicas[r]);
        prop_assert!(got.is_disjoint(&seen));
        prop_assert_eq!(got, want);
    }

    #[test]
    fn two_puts_with_one_context_become_siblings(
        ops in history(3, 3, 50),
        r in 0..3usize,
        via1 in 0..3usize,
        via2 in 0..3usize,
    ) {
        let p = Policy::siblings();
        let mut c = Cluster::run(3, 3, p, &ops);
        let read_ctx = c.replicas[r].context();
        let d1 = c.replicas[via1].put(&read_ctx, 1_000_001, node(via1), ts(1), &p).unwrap();
        let d2 = c.replicas[via2].put(&read_ctx, 1_000_002, node(via2), ts(1), &p).unwrap();
        prop_assert_ne!(d1, d2);
        c.sync_all();
        for s in &c.replicas {
            let read = s.read();
            let values: BTreeSet<u32> = read.values().copied().collect();
            prop_assert!(values.contains(&1_000_001) && values.contains(&1_000_002), "{:?}", s);
            prop_assert!(s.siblings().all(|x| !read_ctx.covers(x.dot)));
            prop_assert!(read.context().descends(&read_ctx));
        }
        // A third put with the merged read's context resolves them.
        let merged_ctx = c.replicas[0].context();
        c.replicas[1].put(&merged_ctx, 3, node(1), ts(2), &p).unwrap();
        c.sync_all();
        prop_assert_eq!(c.replicas[2].values().copied().collect::<Vec<_>>(), vec![3]);
    }
}

#[test]
fn a_blind_write_supersedes_local_siblings_only() {
    let p = Policy::siblings();
    let (mut a, mut b) = (State::new(), State::new());
    a.put_blind(1, node(0), ts(1), &p).unwrap();
    b.put_blind(2, node(1), ts(2), &p).unwrap();
    a.put_blind(3, node(0), ts(3), &p).unwrap();
    assert_eq!(a.values().copied().collect::<Vec<_>>(), [3]);
    a.sync(&b, &p);
    let mut v: Vec<u32> = a.values().copied().collect();
    v.sort_unstable();
    assert_eq!(v, [2, 3]);
}

#[test]
fn a_delete_with_context_leaves_a_tombstone_that_a_put_supersedes() {
    let p = Policy::siblings();
    let mut s = State::new();
    s.put_blind(1, node(0), ts(1), &p).unwrap();
    let ctx = s.read().into_context();
    s.delete(&ctx, node(1), ts(2), &p).unwrap();
    assert!(s.is_deleted());
    let read = s.read();
    assert!(read.is_empty());
    assert_eq!(s.sibling_count(), 1);
    let ctx = read.into_context();
    s.put(&ctx, 5, node(0), ts(3), &p).unwrap();
    assert!(!s.is_deleted());
    assert_eq!(s.values().copied().collect::<Vec<_>>(), [5]);
    assert!(!State::new().is_deleted());
}

//! `sync` is a join: commutative, associative, idempotent, in both conflict
//! modes, for states produced by realistic histories across four replicas.
//! `merge` (by value) agrees with `sync`, `dominates` says exactly when a sync
//! would change nothing, and equal states have equal digests.

mod support;

use gyre_versioning::Policy;
use proptest::prelude::*;
use support::{Cluster, State, check_invariants, history};

fn join(a: &State, b: &State, p: &Policy) -> State {
    let mut x = a.clone();
    x.sync(b, p);
    x
}

fn check_laws(ops: &[support::Op], p: Policy) -> Result<(), TestCaseError> {
    let cluster = Cluster::run(4, 3, p, ops);
    let [a, b, c, d] = &cluster.replicas[..] else {
        unreachable!("four replicas")
    };
    for s in [a, b, c, d] {
        check_invariants(s);
    }
    // Commutative.
    prop_assert_eq!(join(a, b, &p), join(b, a, &p));
    prop_assert_eq!(join(c, d, &p), join(d, c, &p));
    // Associative.
    prop_assert_eq!(join(&join(a, b, &p), c, &p), join(a, &join(b, c, &p), &p));
    prop_assert_eq!(join(&join(b, d, &p), a, &p), join(b, &join(d, a, &p), &p));
    // Idempotent.
    prop_assert_eq!(&join(a, a, &p), a);
    let ab = join(a, b, &p);
    prop_assert_eq!(&join(&ab, b, &p), &ab);
    prop_assert_eq!(&join(&ab, a, &p), &ab);
    check_invariants(&ab);
    // The join is an upper bound, and `dominates` agrees with `sync`.
    prop_assert!(ab.dominates(a, &p) && ab.dominates(b, &p));
    for (x, y) in [(a, b), (b, a), (a, c), (c, d), (d, b)] {
        prop_assert_eq!(x.dominates(y, &p), &join(x, y, &p) == x);
        prop_assert!(join(x, y, &p).descends(&x.context()));
    }
    // `merge` by value is `sync`.
    prop_assert_eq!(a.clone().merge(b.clone(), &p), ab.clone());
    // The digest follows equality.
    prop_assert_eq!(
        join(a, b, &p).version_digest(),
        join(b, a, &p).version_digest()
    );
    prop_assert_eq!(a == b, a.version_digest() == b.version_digest());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn sync_is_a_join_with_siblings(ops in history(4, 3, 60)) {
        check_laws(&ops, Policy::siblings())?;
    }

    #[test]
    fn sync_is_a_join_with_lww(ops in history(4, 3, 60)) {
        check_laws(&ops, Policy::lww())?;
    }

    /// Syncing every pair, in any order, converges every replica to the
    /// same state: the join of all of them.
    #[test]
    fn replicas_converge_whatever_the_sync_order(
        ops in history(4, 3, 60),
        order in Just((0..4usize).collect::<Vec<_>>()).prop_shuffle(),
        lww in any::<bool>(),
    ) {
        let p = if lww { Policy::lww() } else { Policy::siblings() };
        let c = Cluster::run(4, 3, p, &ops);
        let mut want = State::new();
        for r in &c.replicas {
            want.sync(r, &p);
        }
        let mut got = State::new();
        for &i in &order {
            got = got.merge(c.replicas[i].clone(), &p);
        }
        prop_assert_eq!(&got, &want);
        let mut c = c;
        c.sync_all();
        for r in &c.replicas {
            prop_assert_eq!(r, &want);
        }
    }
}

#[test]
fn the_empty_state_is_the_identity() {
    let p = Policy::siblings();
    let mut c = Cluster::new(2, 1, p);
    c.apply(&support::Op::Write {
        client: 0,
        via: 0,
        blind: true,
        delete: false,
        ts: 3,
        ttl: None,
    });
    let a = c.replicas[0].clone();
    assert_eq!(join(&a, &State::new(), &p), a);
    assert_eq!(join(&State::new(), &a, &p), a);
    assert!(a.dominates(&State::new(), &p));
    assert!(!State::new().dominates(&a, &p));
}

//! Model-based test: clients read from random replicas and write through
//! random replicas (with their read's context, or blind), replicas sync
//! pairwise at random, and a reference model tracks every acknowledged write
//! and the context it was made with.
//!
//! After a final full sync, every replica holds the same state, and its
//! siblings are exactly the acknowledged writes that no write's context
//! covered: nothing is lost unless a client saw it and wrote over it, and
//! nothing superseded comes back. In LWW mode the survivor is the greatest
//! `(timestamp, node, counter)` of all acknowledged writes. Some writes
//! expire: at any time, a read shows exactly the surviving values that have
//! not expired, and the key counts as deleted once none is left.

mod support;

use std::collections::BTreeMap;

use gyre_types::Timestamp;
use gyre_versioning::{Context, Dot, Policy};
use proptest::prelude::*;
use support::{Cluster, Op, Write, check_invariants, dotted, history};

/// The siblings the model expects: writes no write's context covered.
fn expected_siblings(writes: &[Write]) -> Vec<(Dot, Timestamp, Option<u32>)> {
    let mut live: Vec<_> = writes
        .iter()
        .filter(|w| !writes.iter().any(|later| later.ctx.covers(w.dot)))
        .map(|w| (w.dot, w.timestamp, w.value))
        .collect();
    live.sort_by_key(|x| x.0);
    live
}

/// The context the model expects: every context written with, and every dot.
fn expected_context(writes: &[Write]) -> Context {
    let mut ctx = Context::empty();
    for w in writes {
        ctx.join(&w.ctx);
        ctx.join(&Context::from_entries([(w.dot.node, w.dot.counter)]));
    }
    ctx
}

/// During the run, every replica holds only values that were written, each
/// with the dot and timestamp it was acknowledged with.
fn check_no_invented_values(c: &Cluster) -> Result<(), TestCaseError> {
    let by_dot: BTreeMap<Dot, &Write> = c.writes.iter().map(|w| (w.dot, w)).collect();
    for r in &c.replicas {
        check_invariants(r);
        for s in r.siblings() {
            let w = by_dot.get(&s.dot);
            prop_assert!(w.is_some(), "unknown dot {}", s.dot);
            if let Some(w) = w {
                prop_assert_eq!(
                    (s.timestamp, s.value, s.expires),
                    (w.timestamp, w.value, w.expires)
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn siblings_are_exactly_the_uncovered_writes(
        ops in history(4, 4, 80),
        max_siblings in prop_oneof![Just(100usize), 1usize..6],
        now in 0u64..70,
    ) {
        let p = Policy::siblings().with_max_siblings(max_siblings);
        let mut c = Cluster::new(4, 4, p);
        for op in &ops {
            let acknowledged = c.writes.len();
            c.apply(op);
            check_no_invented_values(&c)?;
            // An accepted client write leaves at most `max_siblings`
            // (syncs may leave more: they never drop data).
            if let Op::Write { via, .. } = *op
                && c.writes.len() > acknowledged
            {
                prop_assert!(c.replicas[via].sibling_count() <= max_siblings);
            }
        }
        c.sync_all();
        let want = expected_siblings(&c.writes);
        for r in &c.replicas {
            prop_assert_eq!(r, &c.replicas[0]);
            prop_assert_eq!(dotted(r), want.clone());
            prop_assert_eq!(r.context(), expected_context(&c.writes));
            let live: Vec<u32> = r.read().values().copied().collect();
            let want_live: Vec<u32> = want.iter().filter_map(|x| x.2).collect();
            prop_assert_eq!(live, want_live);
            prop_assert_eq!(
                r.is_deleted(),
                !want.is_empty() && want.iter().all(|x| x.2.is_none())
            );
            // Expiry: what a read at `now` shows, and whether it is gone.
            let expiry = |dot: Dot| c.writes.iter().find(|w| w.dot == dot).and_then(|w| w.expires);
            let now = Timestamp::from_u64(now);
            let live_now: Vec<u32> = r.read_at(now).values().copied().collect();
            let want_now: Vec<u32> = want
                .iter()
                .filter(|x| expiry(x.0).is_none_or(|e| now < e))
                .filter_map(|x| x.2)
                .collect();
            prop_assert_eq!(&live_now, &want_now);
            prop_assert_eq!(r.is_deleted_at(now), !want.is_empty() && want_now.is_empty());
            prop_assert_eq!(r.read_at(now).into_context(), r.read().into_context());
            let gone: Option<Vec<Timestamp>> = want
                .iter()
                .map(|x| if x.2.is_none() { Some(x.1) } else { expiry(x.0) })
                .collect();
            prop_assert_eq!(r.gone_since(), gone.and_then(|g| g.into_iter().max()));
            prop_assert_eq!(r.is_transient(), r.gone_since().is_some());
        }
    }

    #[test]
    fn lww_keeps_the_greatest_write(ops in history(4, 4, 80)) {
        let p = Policy::lww();
        let mut c = Cluster::new(4, 4, p);
        for op in &ops {
            c.apply(op);
            check_no_invented_values(&c)?;
            for r in &c.replicas {
                prop_assert!(r.sibling_count() <= 1);
            }
        }
        prop_assert_eq!(c.refused, 0);
        c.sync_all();
        let want: Vec<_> = c
            .writes
            .iter()
            .max_by_key(|w| (w.timestamp, w.dot.node, w.dot.counter))
            .map(|w| (w.dot, w.timestamp, w.value))
            .into_iter()
            .collect();
        for r in &c.replicas {
            prop_assert_eq!(r, &c.replicas[0]);
            prop_assert_eq!(dotted(r), want.clone());
            prop_assert_eq!(r.context(), expected_context(&c.writes));
        }
    }
}

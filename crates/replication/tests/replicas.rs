//! Several replicas wired by hand (no network): the coordinator state
//! machines against a reference count, read repair, purge rules, hints kept
//! apart, and anti-entropy converging two diverged replicas.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use bytes::Bytes;
use gyre_replication::{
    Config, Direction, Error, ReadAnswer, ReadOp, Replica, Send, SyncSession, SyncStep, WriteOp,
    route,
};
use gyre_storage::{Durability, MemStore, Store, StoreConfig};
use gyre_types::{BucketName, BucketProps, Key, NodeId};
use gyre_versioning::Policy;
use gyre_wire::{Expiry, Object, Request, Response};
use proptest::prelude::*;

const WALL: u64 = 1_700_000_000_000;

fn replica(id: u64) -> Replica<MemStore> {
    let store = MemStore::new(StoreConfig {
        durability: Durability::None,
        ..StoreConfig::default()
    })
    .unwrap();
    Replica::new(NodeId::new(id), store, Config::default()).unwrap()
}

fn bucket() -> BucketName {
    BucketName::new("b").unwrap()
}

fn key(i: u32) -> Key {
    Key::new(format!("k{i}").into_bytes()).unwrap()
}

fn value(s: &str) -> Option<Bytes> {
    Some(Bytes::from(s.to_owned()))
}

fn values(o: &Object) -> BTreeSet<Bytes> {
    o.values().cloned().collect()
}

/// A write of `k1` coordinated by node 1, ready to replicate.
fn a_write() -> gyre_wire::Item {
    replica(1)
        .write(WALL, &bucket(), &key(1), value("v"), None)
        .unwrap()
        .item
}

/// Delivers `send` to the replica it names, as a transport would.
fn deliver(replicas: &[Replica<MemStore>], from: NodeId, send: &Send) -> Response {
    let to = replicas.iter().find(|r| r.id() == send.to).unwrap();
    to.serve(WALL, from, send.request.clone())
}

#[test]
fn a_write_reaches_every_primary_and_answers_at_w() {
    let rs: Vec<_> = (1..=3).map(replica).collect();
    let ids: Vec<NodeId> = rs.iter().map(Replica::id).collect();
    let written = rs[0]
        .write(WALL, &bucket(), &key(1), value("v1"), None)
        .unwrap();
    let (mut op, sends) = WriteOp::start(ids[0], written.item, 1, &ids, ids.clone(), 2, |_| true);
    assert_eq!(sends.len(), 2);
    assert!(op.initial_outcome().is_none());
    let first = deliver(&rs, ids[0], &sends[0]);
    assert_eq!(first, Response::Stored);
    let (more, outcome) = op.on_answer(sends[0].tag, true);
    assert!(more.is_empty());
    assert!(
        outcome.unwrap().is_ok(),
        "W=2 met by the coordinator and one replica"
    );
    // The last answer decides nothing more.
    deliver(&rs, ids[0], &sends[1]);
    let (more, outcome) = op.on_answer(sends[1].tag, true);
    assert!(more.is_empty() && outcome.is_none());
    for r in &rs {
        let o = r.get(&bucket(), &key(1)).unwrap().unwrap();
        assert_eq!(values(&o), [Bytes::from("v1")].into());
    }
}

#[test]
fn a_down_primary_is_replaced_by_a_fallback_holding_a_hint() {
    let rs: Vec<_> = (1..=4).map(replica).collect();
    let ids: Vec<NodeId> = rs.iter().map(Replica::id).collect();
    let primaries = &ids[..3];
    let down = ids[2];
    let written = rs[0]
        .write(WALL, &bucket(), &key(1), value("v1"), None)
        .unwrap();
    let (mut op, sends) = WriteOp::start(ids[0], written.item, 1, primaries, ids.clone(), 3, |n| {
        n != down
    });
    let hint = sends
        .iter()
        .find(|s| s.to == ids[3])
        .expect("the fallback is asked");
    assert!(matches!(&hint.request, Request::StoreHint { target, .. } if *target == down));
    for s in &sends {
        assert_eq!(deliver(&rs, ids[0], s), Response::Stored);
    }
    let mut outcome = None;
    for s in &sends {
        outcome = outcome.or(op.on_answer(s.tag, true).1);
    }
    assert!(outcome.unwrap().is_ok());
    // The fallback keeps it as a hint, not as its own data.
    assert!(rs[3].get(&bucket(), &key(1)).unwrap().is_none());
    assert_eq!(rs[3].store().hint_backlog().get(&down), Some(&1));
    // Handoff: the batch merges at the owner, then the hint goes.
    let batch = rs[3].hint_batch(down).unwrap().unwrap();
    assert_eq!(
        rs[2].serve(WALL, ids[3], batch.request.clone()),
        Response::Stored
    );
    rs[3].hints_delivered(&batch).unwrap();
    assert!(rs[3].store().hint_backlog().is_empty());
    assert_eq!(
        values(&rs[2].get(&bucket(), &key(1)).unwrap().unwrap()),
        [Bytes::from("v1")].into()
    );
}

#[test]
fn a_failed_replica_moves_to_the_next_fallback_and_too_few_is_unavailable() {
    let rs: Vec<_> = (1..=3).map(replica).collect();
    let ids: Vec<NodeId> = rs.iter().map(Replica::id).collect();
    let written = rs[0]
        .write(WALL, &bucket(), &key(1), value("v1"), None)
        .unwrap();
    // No fallbacks beyond the primaries, W = 3, and both others fail.
    let (mut op, sends) = WriteOp::start(ids[0], written.item, 1, &ids, ids.clone(), 3, |_| true);
    let (more, outcome) = op.on_answer(sends[0].tag, false);
    assert!(more.is_empty() && outcome.is_none());
    let (_, outcome) = op.on_answer(sends[1].tag, true);
    match outcome {
        Some(Err(Error::Unavailable {
            answered,
            required,
            detail,
        })) => {
            assert_eq!((answered, required), (2, 3));
            assert_eq!(detail, "2 stored, asked 2 other primaries and 0 fallbacks");
        }
        other => panic!("{other:?}"),
    }
}

proptest! {
    /// Whatever the answers, the outcome comes exactly once, and is `Ok`
    /// exactly when W replicas (the coordinator included) stored the write.
    #[test]
    fn the_write_outcome_follows_the_count(
        answers in proptest::collection::vec(any::<bool>(), 0..12),
        w in 1u8..=3,
        down in proptest::collection::btree_set(0usize..5, 0..3),
    ) {
        let ids: Vec<NodeId> = (1..=5).map(NodeId::new).collect();
        let item = replica(1).write(WALL, &bucket(), &key(1), value("v"), None).unwrap().item;
        let is_up = |n: NodeId| !down.contains(&(n.as_u64() as usize - 1));
        let (mut op, mut queue) = WriteOp::start(ids[0], item, 1, &ids[..3], ids.clone(), w, is_up);
        let mut outcomes = Vec::new();
        outcomes.extend(op.initial_outcome());
        let mut stored = 1u8;
        let mut answers = answers.into_iter();
        while let Some(send) = queue.pop() {
            prop_assert!(send.to != ids[0], "never sent to the coordinator itself");
            let ok = answers.next().unwrap_or(true);
            stored += u8::from(ok);
            let (more, outcome) = op.on_answer(send.tag, ok);
            queue.extend(more);
            outcomes.extend(outcome);
        }
        prop_assert_eq!(op.stored(), stored);
        prop_assert_eq!(outcomes.len(), 1, "exactly one outcome");
        prop_assert_eq!(outcomes[0].is_ok(), stored >= w);
    }
}

/// A coordinator that has heard from nobody yet (it just started) takes
/// the write as long as W primaries answer: with no fallback left, a
/// primary it believes down is asked anyway.
#[test]
fn primaries_believed_down_are_asked_before_a_write_is_refused() {
    let ids: Vec<NodeId> = (1..=3).map(NodeId::new).collect();
    let item = a_write();
    let (mut op, sends) = WriteOp::start(ids[0], item, 1, &ids, ids.clone(), 2, |n| n == ids[0]);
    let asked: Vec<NodeId> = sends.iter().map(|s| s.to).collect();
    assert_eq!(asked, [ids[1], ids[2]], "both primaries are asked");
    let (_, outcome) = op.on_answer(sends[0].tag, true);
    assert!(matches!(outcome, Some(Ok(()))));
}

/// A primary believed down is replaced by a fallback; if the fallback
/// fails, the primary itself is asked before the write gives up.
#[test]
fn an_untried_primary_is_asked_when_its_fallback_fails() {
    let ids: Vec<NodeId> = (1..=4).map(NodeId::new).collect();
    let item = a_write();
    let (mut op, sends) =
        WriteOp::start(ids[0], item, 1, &ids[..3], ids.clone(), 3, |n| n != ids[2]);
    let to: Vec<NodeId> = sends.iter().map(|s| s.to).collect();
    assert_eq!(
        to,
        [ids[1], ids[3]],
        "the fallback stands in for the down primary"
    );
    assert!(op.on_answer(sends[0].tag, true).1.is_none());
    let (more, outcome) = op.on_answer(sends[1].tag, false);
    assert!(
        outcome.is_none(),
        "not given up while the primary is untried"
    );
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].to, ids[2]);
    assert!(matches!(more[0].request, Request::ReplicaPut { .. }));
    assert!(matches!(op.on_answer(more[0].tag, true).1, Some(Ok(()))));
}

/// During a layout change a write needs W in the old replica set and W in
/// the new one; a store counts for every set its node belongs to, a hint
/// for the sets of the primary it stands in for.
#[test]
fn a_write_during_a_layout_change_needs_w_in_each_set() {
    let ids: Vec<NodeId> = (1..=5).map(NodeId::new).collect();
    let (old, new) = ([ids[0], ids[1], ids[2]], [ids[0], ids[1], ids[3]]);
    let item = a_write();
    let (mut op, sends) =
        WriteOp::start_sets(ids[0], item, 2, &[&old, &new], ids.clone(), 2, |_| true);
    let tag = |n: NodeId| sends.iter().find(|s| s.to == n).unwrap().tag;
    assert_eq!(sends.len(), 3, "every owner of either set once: {sends:?}");
    // The old-only replica brings the old set to 2, not the new one.
    assert!(op.on_answer(tag(ids[2]), true).1.is_none());
    assert_eq!(op.stored(), 1, "the new set still has only the coordinator");
    // The new-only replica fails; the fallback stands in for it.
    let (more, outcome) = op.on_answer(tag(ids[3]), false);
    assert!(outcome.is_none());
    assert_eq!(more.len(), 1);
    assert!(matches!(more[0].request, Request::StoreHint { target, .. } if target == ids[3]));
    assert!(matches!(op.on_answer(more[0].tag, true).1, Some(Ok(()))));
    // A replica in both sets would have done it alone.
    let item = replica(1)
        .write(WALL, &bucket(), &key(2), value("v"), None)
        .unwrap()
        .item;
    let (mut op, sends) =
        WriteOp::start_sets(ids[0], item, 2, &[&old, &new], ids.clone(), 2, |_| true);
    let both = sends.iter().find(|s| s.to == ids[1]).unwrap().tag;
    assert!(matches!(op.on_answer(both, true).1, Some(Ok(()))));
}

/// Carries out a read's requests on `rs`, the one `pick` chooses (an index
/// into those in flight) at each step, failing every request to a node in
/// `down`, until none is left. Returns the outcome (`None` if none came)
/// and how many requests asked for a whole state.
fn drive_read(
    rs: &[Replica<MemStore>],
    op: &mut ReadOp,
    sends: Vec<Send>,
    down: &[NodeId],
    mut pick: impl FnMut(usize) -> usize,
) -> (Option<Result<Object, Error>>, usize) {
    let mut in_flight = sends;
    let mut outcome = None;
    let mut states_asked = 0;
    while !in_flight.is_empty() {
        let send = in_flight.remove(pick(in_flight.len()) % in_flight.len());
        states_asked += usize::from(matches!(send.request, Request::ReplicaGet { .. }));
        let answer = match down.contains(&send.to) {
            true => ReadAnswer::Failed,
            false => ReadAnswer::from(deliver(rs, rs[0].id(), &send)),
        };
        let (more, decided) = op.on_answer(send.tag, answer);
        in_flight.extend(more);
        if let Some(decided) = decided {
            assert!(outcome.is_none(), "a second outcome: {decided:?}");
            outcome = Some(decided);
        }
    }
    assert!(op.is_complete());
    (outcome, states_asked)
}

/// Asserts that a read's step asked for nothing and decided nothing.
#[track_caller]
fn quiet((more, outcome): (Vec<Send>, Option<Result<Object, Error>>)) {
    assert!(more.is_empty() && outcome.is_none(), "{more:?} {outcome:?}");
}

/// Reads key 1 from every replica of `rs` with quorum `r`, answering in
/// the order asked; returns the op and its outcome.
fn read_all(rs: &[Replica<MemStore>], r: u8) -> (ReadOp, Result<Object, Error>) {
    let ids: Vec<NodeId> = rs.iter().map(Replica::id).collect();
    let (mut op, sends) = ReadOp::start(bucket(), key(1), 3, 1, &ids, r, Policy::default());
    let (outcome, _) = drive_read(rs, &mut op, sends, &[], |_| 0);
    (op, outcome.unwrap())
}

#[test]
fn a_read_asks_one_state_and_digests_of_the_rest() {
    let rs: Vec<_> = (1..=3).map(replica).collect();
    let ids: Vec<NodeId> = rs.iter().map(Replica::id).collect();
    let w = rs[0]
        .write(WALL, &bucket(), &key(1), value("v"), None)
        .unwrap();
    for r in &rs[1..] {
        r.merge(WALL, &w.item).unwrap();
    }
    let (mut op, sends) = ReadOp::start(bucket(), key(1), 3, 1, &ids, 2, Policy::default());
    assert!(matches!(sends[0].request, Request::ReplicaGet { .. }));
    assert_eq!(sends[0].to, ids[0]);
    assert!(
        (sends[1..].iter()).all(|s| matches!(s.request, Request::ReplicaDigest { .. })),
        "{sends:?}"
    );
    let answer = |i: usize| ReadAnswer::from(deliver(&rs, ids[0], &sends[i]));
    quiet(op.on_answer(sends[0].tag, answer(0)));
    // An equal digest counts as the state it stands for: R = 2 is met.
    let (more, outcome) = op.on_answer(sends[2].tag, answer(2));
    assert!(more.is_empty());
    assert_eq!(
        values(&outcome.unwrap().unwrap()),
        [Bytes::from("v")].into()
    );
    quiet(op.on_answer(sends[1].tag, answer(1)));
    assert_eq!(op.repairs(WALL, 0), gyre_replication::Repairs::default());
}

#[test]
fn a_read_merges_answers_repairs_the_stale_and_counts_r() {
    let rs: Vec<_> = (1..=3).map(replica).collect();
    let ids: Vec<NodeId> = rs.iter().map(Replica::id).collect();
    // Replica 1 has a newer write than replica 2; replica 3 has nothing.
    let w1 = rs[0]
        .write(WALL, &bucket(), &key(1), value("old"), None)
        .unwrap();
    rs[1].merge(WALL, &w1.item).unwrap();
    rs[0]
        .write(WALL, &bucket(), &key(1), value("new"), None)
        .unwrap();

    let (mut op, sends) = ReadOp::start(bucket(), key(1), 3, 1, &ids, 2, Policy::default());
    assert_eq!(sends.len(), 3);
    let answer = |s: &Send| ReadAnswer::from(deliver(&rs, ids[0], s));
    // A digest before any state: nothing to compare it with yet.
    quiet(op.on_answer(sends[1].tag, answer(&sends[1])));
    // The state: replica 2's digest differs, so its state is asked for.
    let (more, outcome) = op.on_answer(sends[0].tag, answer(&sends[0]));
    assert!(outcome.is_none(), "one replica covered");
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].to, ids[1]);
    assert!(matches!(more[0].request, Request::ReplicaGet { .. }));
    let (_, merged) = op.on_answer(more[0].tag, answer(&more[0]));
    let merged = merged.unwrap().unwrap();
    assert_eq!(values(&merged), [Bytes::from("new")].into());
    assert!(
        op.repairs(WALL, 0).sends.is_empty(),
        "no repairs before everyone answered"
    );
    let (more, outcome) = op.on_answer(sends[2].tag, answer(&sends[2]));
    assert!(outcome.is_none());
    assert!(more.is_empty(), "an empty replica needs no state fetched");
    let repairs = op.repairs(WALL, 0);
    assert_eq!(repairs.repaired, 2);
    assert!(!repairs.purge);
    for s in &repairs.sends {
        deliver(&rs, ids[0], s);
    }
    for r in &rs {
        assert_eq!(
            values(&r.get(&bucket(), &key(1)).unwrap().unwrap()),
            [Bytes::from("new")].into()
        );
    }
}

#[test]
fn a_read_with_too_many_failures_is_unavailable() {
    let ids: Vec<NodeId> = (1..=3).map(NodeId::new).collect();
    let (mut op, sends) = ReadOp::start(bucket(), key(1), 3, 1, &ids, 2, Policy::default());
    // The state's replica failed: the next is asked for its state too.
    let (more, outcome) = op.on_answer(sends[0].tag, ReadAnswer::Failed);
    assert!(outcome.is_none());
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].to, ids[1]);
    quiet(op.on_answer(sends[1].tag, ReadAnswer::Failed));
    // Both of its requests failed: the third is asked for its state, but
    // it alone cannot make R = 2.
    let (more, outcome) = op.on_answer(more[0].tag, ReadAnswer::Failed);
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].to, ids[2]);
    match outcome {
        Some(Err(Error::Unavailable {
            answered,
            required,
            detail,
        })) => {
            assert_eq!((answered, required), (0, 2));
            assert_eq!(detail, "asked 3 primaries, 2 failed");
        }
        other => panic!("{other:?}"),
    }
}

/// A replica asked for the state that does not answer within its hedge
/// delay (dead, not yet judged so) costs the read that delay, not its
/// answer: the next replica is asked for its state.
#[test]
fn a_slow_state_is_hedged_with_the_next_replica() {
    let rs: Vec<_> = (1..=3).map(replica).collect();
    let ids: Vec<NodeId> = rs.iter().map(Replica::id).collect();
    let w = rs[1]
        .write(WALL, &bucket(), &key(1), value("v"), None)
        .unwrap();
    rs[2].merge(WALL, &w.item).unwrap();
    let (mut op, sends) = ReadOp::start(bucket(), key(1), 3, 1, &ids, 2, Policy::default());
    assert_eq!(op.in_time().collect::<Vec<_>>(), [(sends[0].tag, ids[0])]);
    let answer = |s: &Send| ReadAnswer::from(deliver(&rs, ids[0], s));
    quiet(op.on_answer(sends[2].tag, answer(&sends[2])));
    let hedge = op.on_slow(sends[0].tag);
    assert_eq!(hedge.len(), 1);
    assert_eq!(hedge[0].to, ids[2], "one that answered its digest first");
    assert!(op.on_slow(sends[0].tag).is_empty(), "hedged once");
    let (_, outcome) = op.on_answer(hedge[0].tag, answer(&hedge[0]));
    assert!(outcome.is_none(), "one replica covered: R = 2");
    let (_, outcome) = op.on_answer(sends[1].tag, answer(&sends[1]));
    assert_eq!(
        values(&outcome.unwrap().unwrap()),
        [Bytes::from("v")].into()
    );
    // Once a state came, a slow request is not hedged.
    assert!(op.on_slow(sends[0].tag).is_empty());
}

proptest! {
    /// Whatever the replicas hold, whichever fail and in whatever order
    /// answers come: the outcome comes once; it is `Ok` exactly when R
    /// replicas answer; an `Ok` state covers (merging it changes nothing) the
    /// states of at least R replicas and holds nothing no replica held; and
    /// once the repairs are applied every replica that answered holds it.
    #[test]
    fn a_read_answers_at_r_with_what_r_replicas_hold(
        writes in proptest::collection::vec((0usize..3, proptest::collection::btree_set(0usize..3, 0..3)), 0..5),
        down in proptest::collection::btree_set(0usize..3, 0..3),
        r in 1u8..=3,
        order in proptest::collection::vec(any::<usize>(), 0..24),
        slow in any::<bool>(),
    ) {
        let rs: Vec<_> = (1..=3).map(replica).collect();
        let ids: Vec<NodeId> = rs.iter().map(Replica::id).collect();
        for (j, (by, to)) in writes.iter().enumerate() {
            let w = rs[*by].write(WALL, &bucket(), &key(1), value(&format!("v{j}")), None).unwrap();
            for &t in to {
                rs[t].merge(WALL, &w.item).unwrap();
            }
        }
        let states: Vec<Object> = rs
            .iter()
            .map(|r| r.get(&bucket(), &key(1)).unwrap().unwrap_or_default())
            .collect();
        let mut all = Object::default();
        for s in &states {
            all.sync(s, &Policy::default());
        }
        let down_ids: Vec<NodeId> = down.iter().map(|&i| ids[i]).collect();
        let (mut op, mut sends) = ReadOp::start(bucket(), key(1), 3, 1, &ids, r, Policy::default());
        if slow {
            // The state's replica is slow before anything came.
            sends.extend(op.on_slow(0));
        }
        let mut order = order.into_iter();
        let (outcome, states_asked) =
            drive_read(&rs, &mut op, sends, &down_ids, |_| order.next().unwrap_or(0));
        if down.is_empty() && !slow && states.iter().all(|s| *s == states[0]) {
            prop_assert_eq!(states_asked, 1, "replicas that agree send one state");
        }
        let up = 3 - down.len();
        let outcome = outcome.expect("an outcome");
        prop_assert_eq!(outcome.is_ok(), up >= usize::from(r), "{:?}", outcome);
        if let Ok(m) = outcome {
            let covers = |s: &Object| {
                let mut c = m.clone();
                c.sync(s, &Policy::default());
                c == m
            };
            let covered = states.iter().filter(|s| covers(s)).count();
            prop_assert!(covered >= usize::from(r), "covers {} of the replicas", covered);
            let mut a = all.clone();
            a.sync(&m, &Policy::default());
            prop_assert_eq!(&a, &all, "nothing no replica held");
            let repairs = op.repairs(WALL, 0);
            for s in &repairs.sends {
                deliver(&rs, ids[0], s);
            }
            for (i, r) in rs.iter().enumerate() {
                if !down.contains(&i) {
                    let now = r.get(&bucket(), &key(1)).unwrap().unwrap_or_default();
                    let mut c = now.clone();
                    c.sync(&m, &Policy::default());
                    prop_assert_eq!(c, now, "replica {} repaired", i + 1);
                }
            }
        }
    }
}

#[test]
fn a_tombstone_is_purged_only_when_all_hold_it_and_it_is_old() {
    let rs: Vec<_> = (1..=3).map(replica).collect();
    let ids: Vec<NodeId> = rs.iter().map(Replica::id).collect();
    let put = rs[0]
        .write(WALL, &bucket(), &key(1), value("v"), None)
        .unwrap();
    let del = rs[0]
        .write(
            WALL + 10,
            &bucket(),
            &key(1),
            None,
            Some(&put.item.object.context()),
        )
        .unwrap();
    rs[1].merge(WALL, &del.item).unwrap();

    let read = |rs: &[Replica<MemStore>]| read_all(rs, 3).0;
    // Replica 3 lacks the tombstone: repaired, not purged.
    let op = read(&rs);
    let after_grace = WALL + 1_000_000;
    let repairs = op.repairs(after_grace, after_grace);
    assert!(!repairs.purge);
    for s in &repairs.sends {
        deliver(&rs, ids[0], s);
    }
    // Now all hold it, but it is too young: nothing.
    let op = read(&rs);
    assert_eq!(op.repairs(WALL, WALL).sends, Vec::new());
    // All hold it and it is old: purged everywhere.
    let repairs = op.repairs(after_grace, after_grace);
    assert!(repairs.purge);
    for s in &repairs.sends {
        assert_eq!(deliver(&rs, ids[0], s), Response::Stored);
    }
    for r in &rs {
        assert!(r.get(&bucket(), &key(1)).unwrap().is_none());
    }
}

#[test]
fn an_expired_value_reads_as_absent_and_is_purged_like_a_tombstone() {
    let rs: Vec<_> = (1..=3).map(replica).collect();
    let ids: Vec<NodeId> = rs.iter().map(Replica::id).collect();
    let ttl_ms = 5_000;
    let put = rs[0]
        .write_expiring(
            WALL,
            &bucket(),
            &key(1),
            value("session"),
            None,
            Expiry::After { ms: ttl_ms },
        )
        .unwrap();
    let expires = put.item.object.siblings().next().unwrap().expires.unwrap();
    assert_eq!(expires.physical_ms(), WALL + ttl_ms);
    for r in &rs[1..] {
        r.merge(WALL, &put.item).unwrap();
    }
    let read = |rs: &[Replica<MemStore>]| {
        let (op, outcome) = read_all(rs, 3);
        (op, outcome.unwrap())
    };
    let (op, merged) = read(&rs);
    let live = |at: u64| {
        merged
            .read_at(gyre_replication::read_time(at))
            .values()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(live(WALL + ttl_ms - 1), [Bytes::from("session")]);
    assert!(live(WALL + ttl_ms).is_empty());
    // Not expired yet: never purged, however long the grace.
    assert!(!op.repairs(WALL + 1, WALL + 1_000_000).purge);
    // Expired, but the grace counts from the expiry: not yet.
    assert!(!op.repairs(WALL + ttl_ms + 10, WALL + ttl_ms).purge);
    // Expired and old: purged on every replica.
    let repairs = op.repairs(WALL + 1_000_000, WALL + ttl_ms + 1);
    assert!(repairs.purge);
    for s in &repairs.sends {
        assert_eq!(deliver(&rs, ids[0], s), Response::Stored);
    }
    for r in &rs {
        assert!(r.get(&bucket(), &key(1)).unwrap().is_none());
    }
    // A replica that missed all this hands the expired version back: it is
    // still expired, so nothing comes back to life.
    rs[1].merge(WALL, &put.item).unwrap();
    let (_, merged) = read(&rs);
    assert!(
        merged
            .read_at(gyre_replication::read_time(WALL + ttl_ms))
            .is_empty()
    );
}

#[test]
fn a_write_with_a_context_supersedes_exactly_what_it_saw() {
    let r = replica(1);
    let a = r.write(WALL, &bucket(), &key(1), value("a"), None).unwrap();
    // A concurrent write elsewhere arrives.
    let other = replica(2);
    let b = other
        .write(WALL, &bucket(), &key(1), value("b"), None)
        .unwrap();
    r.merge(WALL, &b.item).unwrap();
    // A client that read only "a" writes "c": "b" survives as a sibling.
    let c = r
        .write(
            WALL,
            &bucket(),
            &key(1),
            value("c"),
            Some(&a.item.object.context()),
        )
        .unwrap();
    assert!(c.supersedes.covers(a.dot) && !c.supersedes.covers(b.dot));
    let now = r.get(&bucket(), &key(1)).unwrap().unwrap();
    assert_eq!(values(&now), [Bytes::from("b"), Bytes::from("c")].into());
    // A blind write supersedes everything this replica holds.
    let d = r.write(WALL, &bucket(), &key(1), value("d"), None).unwrap();
    assert!(d.supersedes.covers(b.dot) && d.supersedes.covers(c.dot));
    assert_eq!(
        values(&r.get(&bucket(), &key(1)).unwrap().unwrap()),
        [Bytes::from("d")].into()
    );
}

#[test]
fn bad_quorums_and_oversized_values_are_refused_and_write_nothing() {
    assert!(route::quorum("w", Some(0), 2, 3).is_err());
    assert!(route::quorum("w", Some(4), 2, 3).is_err());
    assert_eq!(route::quorum("r", None, 2, 3).unwrap(), 2);
    let r = replica(1);
    r.set_props(
        &bucket(),
        BucketProps::default().with_max_value_len(4).unwrap(),
    )
    .unwrap();
    let err = r
        .write(WALL, &bucket(), &key(1), value("12345"), None)
        .unwrap_err();
    assert!(matches!(err, Error::BadRequest(_)), "{err}");
    assert!(r.get(&bucket(), &key(1)).unwrap().is_none());
    // Garbage from a peer is an error answer, never a panic.
    let bad = r.serve(
        WALL,
        NodeId::new(9),
        Request::Coordinate {
            layout: 1,
            op: gyre_wire::ClientOp::Get {
                bucket: bucket(),
                key: key(1),
                r: None,
            },
            ticket: 0,
        },
    );
    assert!(matches!(bad, Response::Error(_)));
}

/// Runs anti-entropy from `a` to `b` for every partition either holds;
/// returns the keys moved.
fn sync(a: &Replica<MemStore>, b: &Replica<MemStore>) -> u64 {
    sync_towards(a, b, Direction::Both)
}

fn sync_towards(a: &Replica<MemStore>, b: &Replica<MemStore>, direction: Direction) -> u64 {
    let mut moved = 0;
    let mut trees: BTreeSet<_> = a.store().merkle_trees().into_iter().collect();
    trees.extend(b.store().merkle_trees());
    for (p, n_val) in trees {
        let (mut session, mut request) =
            SyncSession::start_towards(a, b.id(), p, n_val, direction).unwrap();
        loop {
            let answer = b.serve(WALL, a.id(), request);
            match session.on_response(a, WALL, answer).unwrap() {
                SyncStep::Send(next) => request = next,
                SyncStep::Done(stats) => {
                    moved += stats.keys_fetched + stats.keys_pushed;
                    break;
                }
            }
        }
    }
    moved
}

#[test]
fn anti_entropy_makes_two_diverged_replicas_equal() {
    let (a, b) = (replica(1), replica(2));
    let mut only_a = 0;
    for i in 0..500 {
        let w = a
            .write(WALL, &bucket(), &key(i), value(&format!("a{i}")), None)
            .unwrap();
        match i % 5 {
            // b has it too.
            0 | 1 => drop(b.merge(WALL, &w.item).unwrap()),
            // b wrote concurrently: siblings after sync.
            2 => drop(
                b.write(WALL, &bucket(), &key(i), value(&format!("b{i}")), None)
                    .unwrap(),
            ),
            _ => only_a += 1,
        }
    }
    for i in 500..600 {
        b.write(WALL, &bucket(), &key(i), value(&format!("b{i}")), None)
            .unwrap();
    }
    let moved = sync(&a, &b);
    // Every key only one side had, plus each concurrent key both ways.
    assert_eq!(moved, only_a + 100 + 2 * 100);
    for (p, n) in a.store().merkle_trees() {
        assert_eq!(
            a.store().merkle_tree(p, n).unwrap().root(),
            b.store().merkle_tree(p, n).unwrap().root()
        );
    }
    let both = a.get(&bucket(), &key(2)).unwrap().unwrap();
    assert_eq!(values(&both), [Bytes::from("a2"), Bytes::from("b2")].into());
    // A second pass finds nothing.
    assert_eq!(sync(&a, &b), 0);
}

/// A hand-off before a drop pushes what the giver holds and fetches
/// nothing: its store (and so its trees) stays as it was.
#[test]
fn a_push_session_repairs_the_peer_only() {
    let (giver, owner) = (replica(1), replica(2));
    for i in 0..200 {
        giver
            .write(WALL, &bucket(), &key(i), value(&format!("g{i}")), None)
            .unwrap();
    }
    for i in 200..250 {
        owner
            .write(WALL, &bucket(), &key(i), value(&format!("o{i}")), None)
            .unwrap();
    }
    let roots = |r: &Replica<MemStore>| -> Vec<_> {
        r.store()
            .merkle_trees()
            .into_iter()
            .map(|(p, n)| (p, n, r.store().merkle_tree(p, n).unwrap().root()))
            .collect()
    };
    let before = roots(&giver);
    assert_eq!(sync_towards(&giver, &owner, Direction::Push), 200);
    assert_eq!(roots(&giver), before, "nothing was fetched");
    for i in 0..200 {
        assert!(owner.get(&bucket(), &key(i)).unwrap().is_some());
    }
    assert!(giver.get(&bucket(), &key(200)).unwrap().is_none());
    assert_eq!(sync_towards(&giver, &owner, Direction::Push), 0);
}

#[test]
fn an_empty_replica_skips_the_tree_walk_and_fetches_everything() {
    let (full, empty) = (replica(1), replica(2));
    for i in 0..300 {
        full.write(WALL, &bucket(), &key(i), value(&format!("v{i}")), None)
            .unwrap();
    }
    let mut fetched = 0;
    for (p, n_val) in full.store().merkle_trees() {
        let (mut session, mut request) = SyncSession::start(&empty, full.id(), p, n_val).unwrap();
        assert!(
            matches!(request, Request::ListKeys { .. }),
            "no tree walk from an empty tree"
        );
        loop {
            let answer = full.serve(WALL, empty.id(), request);
            match session.on_response(&empty, WALL, answer).unwrap() {
                SyncStep::Send(next) => request = next,
                SyncStep::Done(stats) => {
                    assert_eq!(stats.rounds, 0);
                    fetched += stats.keys_fetched;
                    break;
                }
            }
        }
    }
    assert_eq!(fetched, 300);
    for (p, n) in full.store().merkle_trees() {
        assert_eq!(
            full.store().merkle_tree(p, n).unwrap().root(),
            empty.store().merkle_tree(p, n).unwrap().root()
        );
    }
}

/// A primary that does not answer in time is hedged: the next fallback gets
/// the write with a hint for it, and its store completes the quorum. The
/// slow primary's late store counts nothing twice.
#[test]
fn a_slow_primary_is_hedged_by_a_fallback_and_counted_once() {
    let ids: Vec<NodeId> = (1..=5).map(NodeId::new).collect();
    let item = a_write();
    let (mut op, sends) = WriteOp::start(ids[0], item, 1, &ids[..3], ids.clone(), 3, |_| true);
    assert_eq!(
        sends.iter().map(|s| s.to).collect::<Vec<_>>(),
        [ids[1], ids[2]]
    );
    assert_eq!(op.in_time().count(), 2);
    // ids[1] answers; ids[2] is slow.
    assert!(op.on_answer(sends[0].tag, true).1.is_none());
    let hedge = op.on_slow(sends[1].tag);
    assert_eq!(hedge.len(), 1);
    assert_eq!(hedge[0].to, ids[3], "the first fallback");
    assert!(
        matches!(hedge[0].request, Request::StoreHint { target, .. } if target == ids[2]),
        "a hint for the slow primary: {:?}",
        hedge[0].request
    );
    assert!(op.on_slow(sends[1].tag).is_empty(), "hedged once");
    assert_eq!(
        op.in_time().map(|(tag, _)| tag).collect::<Vec<_>>(),
        [hedge[0].tag]
    );
    let (more, outcome) = op.on_answer(hedge[0].tag, true);
    assert!(more.is_empty());
    assert!(matches!(outcome, Some(Ok(()))));
    // The slow primary stores after all: still three owners, one outcome.
    let (more, outcome) = op.on_answer(sends[1].tag, true);
    assert!(more.is_empty() && outcome.is_none());
    assert_eq!(op.stored(), 3);
}

/// A slow primary is not hedged while the other can still make W with the
/// coordinator: under load every replica is sometimes slow, and a hint for
/// each would add load. Once the other is slow too, one hedge goes out.
#[test]
fn a_slow_primary_is_hedged_only_when_the_quorum_needs_it() {
    let ids: Vec<NodeId> = (1..=5).map(NodeId::new).collect();
    let item = a_write();
    let (mut op, sends) = WriteOp::start(ids[0], item, 1, &ids[..3], ids.clone(), 2, |_| true);
    assert!(
        op.on_slow(sends[0].tag).is_empty(),
        "the other primary is still in time"
    );
    let hedge = op.on_slow(sends[1].tag);
    assert_eq!(hedge.len(), 1, "both slow: one hedge");
    assert_eq!(hedge[0].to, ids[3]);
    assert!(matches!(op.on_answer(hedge[0].tag, true).1, Some(Ok(()))));
}

/// A slow attempt that fails after its hedge was sent sends nothing more:
/// the hedge stands in for it.
#[test]
fn a_hedged_attempt_that_fails_sends_no_second_fallback() {
    let ids: Vec<NodeId> = (1..=6).map(NodeId::new).collect();
    let item = a_write();
    let (mut op, sends) = WriteOp::start(ids[0], item, 1, &ids[..3], ids.clone(), 3, |_| true);
    let hedge = op.on_slow(sends[0].tag);
    assert_eq!(hedge.len(), 1);
    assert!(op.on_answer(sends[1].tag, true).1.is_none());
    let (more, outcome) = op.on_answer(sends[0].tag, false);
    assert!(more.is_empty(), "the hedge already stands in: {more:?}");
    assert!(outcome.is_none());
    // The hedge fails too: the next fallback.
    let (more, outcome) = op.on_answer(hedge[0].tag, false);
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].to, ids[4]);
    assert!(outcome.is_none());
    assert!(matches!(op.on_answer(more[0].tag, true).1, Some(Ok(()))));
}

/// A coordinator that believes everyone down (it just started) and whose
/// fallback is slow asks the primary it replaced.
#[test]
fn a_slow_fallback_with_none_left_hedges_to_the_untried_primary() {
    let ids: Vec<NodeId> = (1..=4).map(NodeId::new).collect();
    let item = a_write();
    let (mut op, sends) =
        WriteOp::start(ids[0], item, 1, &ids[..3], ids.clone(), 3, |n| n != ids[2]);
    assert_eq!(
        sends.iter().map(|s| s.to).collect::<Vec<_>>(),
        [ids[1], ids[3]]
    );
    let more = op.on_slow(sends[1].tag);
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].to, ids[2]);
    assert!(matches!(more[0].request, Request::ReplicaPut { .. }));
}

proptest! {
    /// Answers and hedges in any order: the outcome comes at most once and
    /// exactly once every attempt has answered; it is `Ok` exactly when W
    /// distinct owners (the coordinator included) are covered, each by its
    /// own store or a hint for it, and never counted twice.
    #[test]
    fn hedged_writes_count_each_owner_once(
        steps in proptest::collection::vec((any::<bool>(), any::<bool>(), 0usize..16), 0..40),
        w in 1u8..=3,
        down in proptest::collection::btree_set(0usize..6, 0..3),
    ) {
        let ids: Vec<NodeId> = (1..=6).map(NodeId::new).collect();
        let item = replica(1).write(WALL, &bucket(), &key(1), value("v"), None).unwrap().item;
        let is_up = |n: NodeId| !down.contains(&(n.as_u64() as usize - 1));
        let (mut op, sends) = WriteOp::start(ids[0], item, 1, &ids[..3], ids.clone(), w, is_up);
        let mut outcomes = Vec::new();
        outcomes.extend(op.initial_outcome());
        // Pending sends, and the owner each stands for.
        let owner_of = |s: &Send| match &s.request {
            Request::StoreHint { target, .. } => *target,
            _ => s.to,
        };
        let mut pending: Vec<Send> = sends;
        let mut covered: BTreeSet<NodeId> = BTreeSet::from([ids[0]]);
        let mut steps = steps.into_iter();
        while !pending.is_empty() {
            let (hedge, ok, pick) = steps.next().unwrap_or((false, true, 0));
            let i = pick % pending.len();
            if hedge {
                let more = op.on_slow(pending[i].tag);
                prop_assert!(more.len() <= 1);
                pending.extend(more);
                continue;
            }
            let send = pending.swap_remove(i);
            prop_assert!(send.to != ids[0], "never sent to the coordinator itself");
            if ok {
                covered.insert(owner_of(&send));
            }
            let (more, outcome) = op.on_answer(send.tag, ok);
            pending.extend(more);
            if let Some(o) = outcome {
                let n = covered.len() as u8;
                prop_assert_eq!(o.is_ok(), n >= w, "covered {:?}", covered);
                outcomes.push(o);
            }
            prop_assert_eq!(op.stored(), covered.len() as u8);
        }
        prop_assert_eq!(outcomes.len(), 1, "exactly one outcome: {:?}", outcomes);
        prop_assert_eq!(outcomes[0].is_ok(), covered.len() as u8 >= w);
    }
}

/// Node 2's replica over an empty store of `q` partitions.
fn empty_replica(q: gyre_types::PartitionCount) -> Replica<MemStore> {
    let store = MemStore::new(StoreConfig {
        durability: Durability::None,
        partitions: q,
        ..StoreConfig::default()
    })
    .unwrap();
    Replica::new(NodeId::new(2), store, Config::default()).unwrap()
}

/// A handoff chunk for an n_val that few objects of a partition have reads
/// a bounded number of objects and hands back a cursor, instead of scanning
/// the whole partition in one request (past the request timeout on a big
/// one); paging through the cursors still yields exactly those objects.
#[test]
fn a_chunk_of_a_sparse_n_val_scans_a_bounded_run() {
    let q = gyre_types::PartitionCount::new(64).unwrap();
    let target = empty_replica(q);
    let writer = replica(1);
    let (dense, sparse) = (BucketName::new("a").unwrap(), bucket());
    let mut wanted = BTreeSet::new();
    for i in 0..4000u32 {
        let (bucket, n_val) = if i % 80 == 0 {
            (&sparse, 3)
        } else {
            (&dense, 2)
        };
        let mut item = writer
            .write(WALL, bucket, &key(i), value("v"), None)
            .unwrap()
            .item;
        item.n_val = n_val;
        if n_val == 3 {
            wanted.insert(item.key.clone());
        }
        target.merge(WALL, &item).unwrap();
    }
    let (mut requests, mut got) = (0usize, BTreeSet::new());
    for p in 0..q.get() {
        let mut after = None;
        loop {
            let (items, next) = target
                .chunk(gyre_types::PartitionId::new(p), 3, after, 1, 1 << 20)
                .unwrap();
            requests += 1;
            assert!(items.len() <= 1);
            got.extend(items.into_iter().map(|i| i.key));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
    }
    assert_eq!(got, wanted);
    // At most eight objects read per object a chunk may carry: 4000
    // objects take at least 500 requests (a scan to the next match each
    // would take about 50 + 64).
    assert!(requests >= 4000 / 8, "{requests} requests");
}

/// What a replica reports of its partitions' sizes (read from the sizes
/// its store keeps, no scan) equals what a scan counts, through writes of
/// two n_vals, merges of whole chunks, deletes (tombstones count, with no
/// value bytes) and a dropped partition; and the request answers the same.
#[test]
fn size_reports_equal_a_count_of_the_data() {
    let q = gyre_types::PartitionCount::new(64).unwrap();
    let target = empty_replica(q);
    let writer = replica(1);
    let counted = |r: &Replica<MemStore>| {
        let mut sizes = std::collections::BTreeMap::new();
        for p in 0..q.get() {
            let partition = gyre_types::PartitionId::new(p);
            for s in r.store().scan(partition, None, usize::MAX).unwrap().items {
                let (objects, bytes) = sizes.entry(partition).or_insert((0u64, 0u64));
                *objects += 1;
                *bytes += gyre_replication::object_bytes(s.id.key(), &s.object);
            }
        }
        sizes
    };
    let reported = |r: &Replica<MemStore>| {
        let Response::Sizes(list) = r.serve(WALL, NodeId::new(3), Request::PartitionSizes) else {
            panic!("not a size report");
        };
        assert_eq!(list, r.partition_sizes());
        list.into_iter()
            .map(|s| (s.partition, (s.objects, s.bytes)))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (a, b) = (BucketName::new("a").unwrap(), bucket());
    let mut chunk = Vec::new();
    for i in 0..600u32 {
        let (bucket, n_val) = if i % 3 == 0 { (&a, 2) } else { (&b, 3) };
        let mut item = writer
            .write(
                WALL,
                bucket,
                &key(i),
                value(&"v".repeat(i as usize % 50)),
                None,
            )
            .unwrap()
            .item;
        item.n_val = n_val;
        if i < 300 {
            target.merge(WALL, &item).unwrap();
        } else {
            chunk.push(item);
        }
    }
    target.merge_many(WALL, &chunk).unwrap();
    assert_eq!(reported(&target), counted(&target));
    // Overwrites with other sizes, and deletes: tombstones stay as
    // objects without value bytes.
    for i in (0..600u32).step_by(7) {
        let bucket = if i % 3 == 0 { &a } else { &b };
        let new = if i % 2 == 0 {
            value("a longer value than before")
        } else {
            None
        };
        let mut item = writer
            .write(WALL + 1, bucket, &key(i), new, None)
            .unwrap()
            .item;
        item.n_val = if i % 3 == 0 { 2 } else { 3 };
        target.merge(WALL + 1, &item).unwrap();
    }
    assert_eq!(reported(&target), counted(&target));
    // A dropped partition reports nothing.
    let victim = *counted(&target).keys().next().unwrap();
    let trees = target.store().partition_trees(victim).unwrap();
    assert!(target.store().drop_partition(&trees).unwrap().is_complete());
    let after = reported(&target);
    assert!(!after.contains_key(&victim));
    assert_eq!(after, counted(&target));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Paging a partition by handoff chunks, whatever their item and byte
    /// limits and however the n_vals mix, yields every object of the
    /// n_val asked for exactly once, in key order, no chunk over its item
    /// limit or (past its first object) its byte limit.
    #[test]
    fn chunks_page_a_partition_once_in_order(
        n_vals in proptest::collection::vec(prop_oneof![3 => Just(3u8), 1 => Just(2u8)], 0..1000),
        max_items in 1usize..40,
        max_bytes in 1u64..4000,
    ) {
        let q = gyre_types::PartitionCount::new(64).unwrap();
        let target = empty_replica(q);
        let writer = replica(1);
        for (i, &n_val) in n_vals.iter().enumerate() {
            let mut item = writer
                .write(WALL, &bucket(), &key(i as u32), value("v"), None)
                .unwrap()
                .item;
            item.n_val = n_val;
            target.merge(WALL, &item).unwrap();
        }
        for p in 0..q.get() {
            let partition = gyre_types::PartitionId::new(p);
            let wanted: Vec<_> = target
                .store()
                .scan(partition, None, 10_000)
                .unwrap()
                .items
                .into_iter()
                .filter(|s| s.n_val == 3)
                .map(|s| s.id.key().clone())
                .collect();
            let (mut after, mut got) = (None, Vec::new());
            for _ in 0..=n_vals.len() + 1 {
                let (items, next) = target.chunk(partition, 3, after, max_items, max_bytes).unwrap();
                prop_assert!(items.len() <= max_items);
                let bytes: u64 = items
                    .iter()
                    .map(|i| gyre_replication::object_bytes(&i.key, &i.object))
                    .collect::<Vec<_>>()
                    .split_last()
                    .map_or(0, |(_, rest)| rest.iter().sum());
                prop_assert!(bytes < max_bytes, "a chunk went on past its byte limit");
                got.extend(items.into_iter().map(|i| i.key));
                after = next;
                if after.is_none() {
                    break;
                }
            }
            prop_assert!(after.is_none(), "the chunks did not reach the partition's end");
            prop_assert_eq!(got, wanted);
        }
    }
}

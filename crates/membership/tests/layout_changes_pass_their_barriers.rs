//! A committed layout change moves through its barriers in order on every
//! node, whatever the gossip delays: writes go to both layouts at once,
//! reads stay on the old one until every member of the new one said it is
//! synced, and the old one is retired only once every node reads the new.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::sim::{Sim, SimConfig, for_each_seed};
use gyre_membership::{Change, Event, LayoutStamp};
use gyre_ring::Layout;
use gyre_types::NodeId;

const LIMIT: Duration = Duration::from_secs(60);
const CHECK: Duration = Duration::from_millis(200);

fn reads_with(sim: &Sim, stamp: LayoutStamp) -> usize {
    sim.live()
        .filter(|n| n.m.read_layout().map(LayoutStamp::of) == Some(stamp))
        .count()
}

/// A 4-node cluster (seed `seed`) that committed a join of a fifth node on
/// its first node, once every node holds the new layout: the cluster, that
/// first node, the joiner and the new layout's stamp.
fn joined(seed: u64) -> (Sim, NodeId, NodeId, LayoutStamp) {
    let mut sim = Sim::cluster(seed, 4, 2, SimConfig::default());
    let first = sim.live_ids()[0];
    let joiner = sim.add_node("z9");
    sim.run_until(LIMIT, CHECK, |s| s.all_know(joiner)).unwrap();
    let new = sim.commit(first, vec![Change::Join(joiner)]).unwrap();
    sim.run_until(LIMIT, CHECK, |s| {
        s.live().all(|n| n.m.layout_stamp() == Some(new))
    })
    .unwrap_or_else(|| panic!("seed {seed}: the layout did not spread"));
    (sim, first, joiner, new)
}

#[test]
fn reads_move_only_once_every_new_member_is_synced() {
    for_each_seed(20, |seed| {
        let (mut sim, first, _, new) = joined(seed);
        let old = LayoutStamp::of(sim.node(first).history()[0]);
        // Every node writes to both layouts and reads the old one.
        for n in sim.live() {
            assert_eq!(n.m.history().len(), 2, "seed {seed}");
            assert_eq!(
                n.m.read_layout().map(LayoutStamp::of),
                Some(old),
                "seed {seed}"
            );
        }
        // All but one member synced: reads stay where they are.
        let members: Vec<_> = sim.live_ids();
        for &id in &members[1..] {
            sim.set_synced(id, new);
        }
        sim.run_for(Duration::from_secs(10));
        assert_eq!(
            reads_with(&sim, old),
            members.len(),
            "seed {seed}: reads moved early"
        );
        // The last one: every node moves its reads, then retires the old.
        sim.set_synced(members[0], new);
        sim.run_until(LIMIT, CHECK, |s| s.live().all(|n| n.m.history().len() == 1))
            .unwrap_or_else(|| panic!("seed {seed}: the old layout was not retired"));
        for id in &members {
            let events = sim.events_of(*id, Duration::ZERO);
            let reading = events.iter().position(|e| **e == Event::ReadingNew(new));
            let retired = events
                .iter()
                .position(|e| **e == Event::LayoutsRetired(new));
            assert!(
                matches!((reading, retired), (Some(r), Some(t)) if r < t),
                "seed {seed}: {id} read new at {reading:?}, retired at {retired:?}"
            );
        }
        assert_eq!(reads_with(&sim, new), members.len(), "seed {seed}");
    });
}

#[test]
fn an_abort_restores_the_old_replicas_under_a_newer_version() {
    let mut sim = Sim::cluster(7, 3, 3, SimConfig::default());
    let first = sim.live_ids()[0];
    let old = sim.node(first).layout().unwrap().clone();
    let joiner = sim.add_node("z9");
    sim.run_until(LIMIT, CHECK, |s| s.all_know(joiner)).unwrap();
    sim.commit(first, vec![Change::Join(joiner)]).unwrap();
    let plan = sim.node(first).abort_plan().unwrap();
    assert_eq!(plan.layout().version(), old.version() + 2);
    for p in old.partitions().iter() {
        assert_eq!(plan.layout().replicas(p), old.replicas(p));
    }
    assert_eq!(plan.layout().members(), old.members());
}

/// A node that reads with the newest layout, and whose peers retired the
/// older ones on its word, is sent a newer layout by a peer that has not
/// retired them yet: it keeps reading what it read (the others no longer
/// write to the older layouts) and does not take the retired ones back.
#[test]
fn a_lagging_peers_history_moves_no_reads_back() {
    for_each_seed(10, |seed| {
        let (mut sim, first, joiner, v2) = joined(seed);
        // What a peer that has not retired the first layout holds.
        let lagging: Vec<Layout> = sim.node(first).history().into_iter().cloned().collect();
        assert_eq!(lagging.len(), 2, "seed {seed}");
        for id in sim.live_ids() {
            sim.set_synced(id, v2);
        }
        sim.run_until(LIMIT, CHECK, |s| s.live().all(|n| n.m.history().len() == 1))
            .unwrap_or_else(|| panic!("seed {seed}: the old layout was not retired"));
        // That peer commits the next change on top of both.
        let v3 = sim
            .commit(first, vec![Change::SetCapacity(joiner, 50)])
            .unwrap();
        let mut history = lagging;
        history.push(sim.node(first).layout().unwrap().clone());
        let other = sim.live_ids()[1];
        let now = sim.now;
        let _ = sim
            .nodes
            .get_mut(&other)
            .unwrap()
            .m
            .history_received(now, history);
        let m = sim.node(other);
        assert_eq!(m.layout_stamp(), Some(v3), "seed {seed}");
        assert_eq!(
            m.read_layout().map(LayoutStamp::of),
            Some(v2),
            "seed {seed}: reads moved back"
        );
        let held: Vec<LayoutStamp> = m.history().into_iter().map(LayoutStamp::of).collect();
        assert_eq!(held, [v2, v3], "seed {seed}: a retired layout came back");
    });
}

/// A node restarted in the middle of a change reads with the layout it read
/// with before (its persisted `reading`), not the oldest it still writes to.
#[test]
fn a_restart_keeps_reading_what_it_read() {
    let (sim, first, _, v2) = joined(7);
    let mut history: Vec<Layout> = sim.node(first).history().into_iter().cloned().collect();
    let v1 = LayoutStamp::of(&history[0]);
    let newest = history.pop();
    let boot = |reading: Option<LayoutStamp>| {
        gyre_membership::Membership::new(
            sim.nodes[&first].info.clone(),
            1,
            newest.clone(),
            SimConfig::default().membership,
            7,
        )
        .unwrap()
        .with_older(history.clone())
        .with_reading(reading)
    };
    let read = |m: &gyre_membership::Membership| m.read_layout().map(LayoutStamp::of);
    assert_eq!(read(&boot(None)), Some(v1), "nothing persisted: the oldest");
    assert_eq!(read(&boot(Some(v2))), Some(v2), "it read the newest");
    assert_eq!(boot(Some(v2)).state().reading, Some(v2), "and says so");
}

/// A single layout fetched from a peer goes on top of the ones in use: the
/// node writes to both and reads the old one until the change passes its
/// barriers, as if gossip had brought it (it does not skip handoff).
#[test]
fn a_fetched_layout_starts_a_change_like_any_other() {
    let mut sim = Sim::cluster(11, 4, 2, SimConfig::default());
    let first = sim.live_ids()[0];
    let other = sim.live_ids()[1];
    let v1 = sim.node(first).layout_stamp().unwrap();
    let joiner = sim.add_node("z9");
    sim.run_until(LIMIT, CHECK, |s| s.all_know(joiner)).unwrap();
    let v2 = sim.commit(first, vec![Change::Join(joiner)]).unwrap();
    let fetched = sim.node(first).layout().unwrap().clone();
    let now = sim.now;
    let _ = sim
        .nodes
        .get_mut(&other)
        .unwrap()
        .m
        .layout_received(now, fetched);
    let m = sim.node(other);
    let held: Vec<LayoutStamp> = m.history().into_iter().map(LayoutStamp::of).collect();
    assert_eq!(held, [v1, v2]);
    assert_eq!(m.read_layout().map(LayoutStamp::of), Some(v1));
    assert_eq!(m.state().synced, Some(v1), "not synced for the new one");
}

/// Each barrier of a change advances as soon as the nodes it waits for say
/// so: a node pushes its new word to every live peer at once, so a change
/// on 8 nodes spreads, moves reads and retires the old layout in message
/// delays (1–10 ms here), well inside one gossip round (1 s).
#[test]
fn barriers_advance_on_messages_not_gossip_rounds() {
    const FAST: Duration = Duration::from_millis(300);
    let step = Duration::from_millis(5);
    for_each_seed(10, |seed| {
        let mut sim = Sim::cluster(seed, 8, 3, SimConfig::default());
        let first = sim.live_ids()[0];
        let joiner = sim.add_node("z9");
        sim.run_until(LIMIT, CHECK, |s| s.all_know(joiner)).unwrap();
        let new = sim.commit(first, vec![Change::Join(joiner)]).unwrap();
        let spread = sim
            .run_until(LIMIT, step, |s| {
                s.live().all(|n| n.m.layout_stamp() == Some(new))
            })
            .unwrap();
        assert!(
            spread < FAST,
            "seed {seed}: the layout took {spread:?} to spread"
        );
        for id in sim.live_ids() {
            sim.set_synced(id, new);
        }
        let retired = sim
            .run_until(LIMIT, step, |s| s.live().all(|n| n.m.history().len() == 1))
            .unwrap();
        assert!(
            retired < FAST,
            "seed {seed}: reads moved and the old layout retired after {retired:?}"
        );
        assert_eq!(reads_with(&sim, new), 9, "seed {seed}");
    });
}

#[test]
fn a_peers_word_on_a_change_is_an_event_where_it_arrives() {
    for_each_seed(20, |seed| {
        let (mut sim, _, _, new) = joined(seed);
        let since = sim.now;
        let synced = sim.live_ids()[1];
        sim.set_synced(synced, new);
        let others: Vec<NodeId> = sim
            .live_ids()
            .into_iter()
            .filter(|&id| id != synced)
            .collect();
        sim.run_until(LIMIT, CHECK, |s| {
            others.iter().all(|&id| {
                s.node(id)
                    .node(synced)
                    .is_some_and(|state| state.synced == Some(new))
            })
        })
        .unwrap_or_else(|| panic!("seed {seed}: the word did not spread"));
        // The driver's barriers (a fill's prepare) are judged on it at once.
        for id in others {
            let events = sim.events_of(id, since);
            assert!(
                events.contains(&&Event::WordChanged(synced)),
                "seed {seed}: {id} saw {events:?}"
            );
        }
    });
}

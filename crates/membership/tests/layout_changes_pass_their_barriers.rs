//! A committed layout change moves through its barriers in order on every
//! node, whatever the gossip delays: writes go to both layouts at once,
//! reads stay on the old one until every member of the new one said it is
//! synced, and the old one is retired only once every node reads the new.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::sim::{Sim, SimConfig, for_each_seed};
use gyre_membership::{Change, Event, LayoutStamp};

const LIMIT: Duration = Duration::from_secs(60);
const CHECK: Duration = Duration::from_millis(200);

fn reads_with(sim: &Sim, stamp: LayoutStamp) -> usize {
    sim.live()
        .filter(|n| n.m.read_layout().map(LayoutStamp::of) == Some(stamp))
        .count()
}

#[test]
fn reads_move_only_once_every_new_member_is_synced() {
    for_each_seed(20, |seed| {
        let mut sim = Sim::cluster(seed, 4, 2, SimConfig::default());
        let first = sim.live_ids()[0];
        let old = sim.node(first).layout_stamp().unwrap();
        let joiner = sim.add_node("z9");
        sim.run_until(LIMIT, CHECK, |s| s.all_know(joiner)).unwrap();
        let new = sim.commit(first, vec![Change::Join(joiner)]).unwrap();
        sim.run_until(LIMIT, CHECK, |s| {
            s.live().all(|n| n.m.layout_stamp() == Some(new))
        })
        .unwrap_or_else(|| panic!("seed {seed}: the layout did not spread"));
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

//! A crashed node is declared down by every live node within a bounded
//! time, and a restarted one is seen up again.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::scenarios::{detection_times, met};
use common::sim::{SimConfig, for_each_seed};
use gyre_membership::Event;

/// With the default configuration (1 s rounds, phi 8, 2 s acceptable pause)
/// detection takes about 9 s at 64 nodes; 20 s leaves room for slow seeds.
const DETECTION_BOUND: Duration = Duration::from_secs(20);

#[test]
fn every_live_node_declares_a_crashed_node_down_in_bounded_time() {
    for n in [8usize, 64] {
        for_each_seed(5, |seed| {
            let times = detection_times(seed, n);
            assert_eq!(times.len(), n - 1, "seed {seed}");
            let worst = times.iter().max().copied().unwrap();
            assert!(
                worst <= DETECTION_BOUND,
                "seed {seed}: at {n} nodes the slowest live node took {worst:?} to declare a crash (bound {DETECTION_BOUND:?})"
            );
            eprintln!("{n} nodes: slowest detection {worst:?}");
        });
    }
}

#[test]
fn a_restarted_node_is_seen_up_again_with_its_new_generation() {
    for_each_seed(5, |seed| {
        let mut sim = met(seed, 8, SimConfig::default());
        let ids = sim.live_ids();
        let victim = ids[3];
        let old_generation = sim.node(victim).state().generation;
        sim.crash(victim);
        let down = sim.run_until(DETECTION_BOUND, Duration::from_millis(100), |s| {
            s.live().all(|n| !n.m.is_up(victim, s.now))
        });
        assert!(down.is_some(), "seed {seed}: crash not detected");
        sim.run_for(Duration::from_secs(5));
        let restarted_at = sim.now;
        sim.restart(victim);
        let took = sim
            .run_until(Duration::from_secs(30), Duration::from_millis(100), |s| {
                s.all_see_all_up()
                    && s.live().all(|n| {
                        n.m.node(victim)
                            .is_some_and(|v| v.generation > old_generation)
                    })
            })
            .unwrap_or_else(|| panic!("seed {seed}: restarted node not seen up in 30 s"));
        assert!(
            took <= Duration::from_secs(10),
            "seed {seed}: took {took:?}"
        );
        for id in ids.iter().filter(|id| **id != victim) {
            let seen = sim.node(*id).node(victim).unwrap();
            assert!(seen.generation > old_generation, "seed {seed}");
            assert!(
                sim.events_of(*id, restarted_at)
                    .contains(&&Event::Restarted(victim)),
                "seed {seed}: {id} reported no restart"
            );
        }
    });
}

/// A request that went unanswered is evidence: the node that saw it judges
/// the peer down at once, long before phi would. A live peer that was only
/// slow is up again within a few rounds (it is pinged, and it gossips).
#[test]
fn an_unanswered_request_is_evidence_and_a_live_peer_comes_back() {
    for_each_seed(5, |seed| {
        let mut sim = met(seed, 8, SimConfig::default());
        let ids = sim.live_ids();
        let (observer, victim) = (ids[0], ids[3]);
        sim.crash(victim);
        sim.unresponsive(observer, victim);
        assert!(
            !sim.node(observer).is_up(victim, sim.now),
            "seed {seed}: a crashed node reported unresponsive is down at once"
        );
        assert!(
            sim.events_of(observer, sim.now)
                .contains(&&Event::Down(victim)),
            "seed {seed}: no Down event"
        );
        sim.run_for(Duration::from_secs(3));
        assert!(
            !sim.node(observer).is_up(victim, sim.now),
            "seed {seed}: the crashed node stays down"
        );

        // A live node reported unresponsive (it was only slow).
        let slow = ids[5];
        sim.unresponsive(observer, slow);
        assert!(!sim.node(observer).is_up(slow, sim.now));
        let took = sim
            .run_until(Duration::from_secs(10), Duration::from_millis(100), |s| {
                s.node(observer).is_up(slow, s.now)
            })
            .unwrap_or_else(|| panic!("seed {seed}: a live node stays down"));
        assert!(took <= Duration::from_secs(3), "seed {seed}: took {took:?}");
    });
}

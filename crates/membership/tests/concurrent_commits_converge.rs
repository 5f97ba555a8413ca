//! Two commits made concurrently on different nodes (same version, different
//! content) converge to the same layout everywhere.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::sim::{Sim, SimConfig, for_each_seed};
use gyre_membership::{Change, Error, layout_digest};
use gyre_types::ZoneName;

const CHECK: Duration = Duration::from_millis(100);

#[test]
fn concurrent_commits_on_two_nodes_converge_to_the_greater_stamp() {
    for_each_seed(10, |seed| {
        let mut sim = Sim::cluster(seed, 8, 3, SimConfig::default());
        let ids = sim.live_ids();
        let (a, b) = (ids[0], ids[5]);
        let sa = sim.commit(a, vec![Change::SetCapacity(ids[1], 2)]).unwrap();
        let sb = sim.commit(b, vec![Change::SetCapacity(ids[2], 3)]).unwrap();
        assert_eq!(sa.version, sb.version, "seed {seed}");
        assert_ne!(sa, sb, "seed {seed}");
        let winner = sa.max(sb);
        sim.run_until(Duration::from_secs(30), CHECK, |s| {
            s.stamps() == BTreeSet::from([Some(winner)])
        })
        .unwrap_or_else(|| panic!("seed {seed}: no convergence: {:?}", sim.stamps()));
        // Same content everywhere, not only the same stamp.
        let digests: BTreeSet<u64> = sim
            .live()
            .map(|n| layout_digest(n.m.layout().unwrap()))
            .collect();
        assert_eq!(digests, BTreeSet::from([winner.digest]), "seed {seed}");

        // The loser plans against the winner from now on.
        let loser = if winner == sa { b } else { a };
        let next = sim
            .commit(
                loser,
                vec![Change::SetZone(ids[3], ZoneName::new("z9").unwrap())],
            )
            .unwrap();
        assert_eq!(next.version, winner.version + 1, "seed {seed}");
        sim.run_until(Duration::from_secs(30), CHECK, |s| {
            s.stamps() == BTreeSet::from([Some(next)])
        })
        .unwrap_or_else(|| panic!("seed {seed}: the next commit did not spread"));
    });
}

#[test]
fn commits_on_both_sides_of_a_partition_converge_after_the_heal_despite_loss() {
    for_each_seed(10, |seed| {
        let config = SimConfig {
            loss: 0.10,
            ..SimConfig::default()
        };
        let mut sim = Sim::cluster(seed, 10, 3, config);
        let ids = sim.live_ids();
        let (left, right) = ids.split_at(5);
        sim.partition(&[left, right]);
        sim.run_for(Duration::from_secs(15));
        let sl = sim
            .commit(left[0], vec![Change::SetCapacity(left[1], 2)])
            .unwrap();
        let sr = sim
            .commit(right[0], vec![Change::SetCapacity(right[1], 2)])
            .unwrap();
        assert_eq!(sl.version, sr.version, "seed {seed}");
        // Each side converges on its own commit (pulls are lost too, and
        // retried after `layout_pull_timeout`).
        sim.run_until(Duration::from_secs(60), CHECK, |s| {
            s.live().all(|n| {
                let own = if left.contains(&n.info.id) { sl } else { sr };
                n.m.layout_stamp() == Some(own)
            })
        })
        .unwrap_or_else(|| panic!("seed {seed}: a side did not converge on its commit"));
        sim.heal();
        let winner = sl.max(sr);
        sim.run_until(Duration::from_secs(60), CHECK, |s| {
            s.stamps() == BTreeSet::from([Some(winner)]) && s.all_see_all_up()
        })
        .unwrap_or_else(|| {
            panic!(
                "seed {seed}: no convergence after the heal: {:?}",
                sim.stamps()
            )
        });
    });
}

#[test]
fn a_plan_made_before_a_concurrent_commit_arrived_is_stale() {
    for_each_seed(5, |seed| {
        let mut sim = Sim::cluster(seed, 5, 3, SimConfig::default());
        let ids = sim.live_ids();
        let (a, b) = (ids[0], ids[1]);
        let base = sim.node(a).layout_stamp();
        let plan = {
            let m = &mut sim.nodes.get_mut(&a).unwrap().m;
            m.stage(Change::SetCapacity(ids[2], 5)).unwrap();
            m.plan().unwrap()
        };
        let other = sim.commit(b, vec![Change::SetCapacity(ids[3], 5)]).unwrap();
        sim.run_until(Duration::from_secs(30), CHECK, |s| {
            s.node(a).layout_stamp() == Some(other)
        })
        .unwrap_or_else(|| panic!("seed {seed}: the other commit did not arrive"));
        let now = sim.now;
        let err = sim
            .nodes
            .get_mut(&a)
            .unwrap()
            .m
            .commit(now, plan)
            .unwrap_err();
        assert_eq!(
            err,
            Error::StalePlan {
                planned_against: base,
                current: Some(other)
            },
            "seed {seed}"
        );
        assert_eq!(sim.node(a).layout_stamp(), Some(other), "seed {seed}");
        // The staged change survives: planning again works.
        let again = sim.node(a).plan().unwrap();
        assert_eq!(again.base(), Some(other), "seed {seed}");
    });
}

//! Layout changes at 32 nodes, by simulation, with data on them: a join of
//! one node moves no more than 1.1 times the least it must, every node holds
//! the new layout within O(log n) gossip rounds (at once: a node pushes a
//! layout it adopts to every node it knows), the change settles, every key
//! reads back, and a node at rest sends a few messages a second. The same
//! for a zone lost and replaced by the survivors. The figures at 16, 32 and
//! 64 nodes are in the crate's README (`examples/scale.rs`).
//!
//! `GYRE_SIM_SEED=<seed>` replays another seed.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::block_on;
use gyre_sim::scale::{ScaleConfig, ScaleReport, Scenario, measure};
use gyre_types::PartitionCount;

const NODES: usize = 32;

fn run(scenario: Scenario) -> (u64, ScaleReport) {
    let seed = gyre_sim::seed_from_env().unwrap_or(1);
    let config = ScaleConfig {
        partitions: PartitionCount::new(256).unwrap(),
        keys: 1000,
        ..ScaleConfig::new(NODES)
    };
    let report = block_on(measure(&config, scenario, seed)).unwrap();
    println!("{}\n{}", ScaleReport::header(), report.row());
    (seed, report)
}

fn check(seed: u64, r: &ScaleReport) {
    let replay = format!("GYRE_SIM_SEED={seed} replays it: {}", r.row());
    assert_eq!(r.keys_lost, 0, "keys lost; {replay}");
    assert!(r.replicas_ratio() <= 1.1, "moved too much; {replay}");
    let log_n = (NODES as f64).log2();
    assert!(r.rounds_to_know <= log_n, "slow to spread; {replay}");
    assert!(
        r.settled.is_some_and(|d| d <= Duration::from_secs(60)),
        "not settled; {replay}"
    );
    // Gossip (a round a second: syn, ack, ack2) and anti-entropy (every
    // replicated partition once per ten minutes): a handful a second,
    // whatever n is.
    assert!(
        r.rest_messages_per_node_sec <= 8.0,
        "busy at rest: {:?}; {replay}",
        r.rest_by_kind
    );
}

#[test]
fn a_join_at_32_nodes_moves_the_least_and_settles_in_seconds() {
    let (seed, r) = run(Scenario::Join { count: 1 });
    check(seed, &r);
}

#[test]
fn a_zone_lost_at_32_nodes_is_refilled_from_the_survivors() {
    let (seed, r) = run(Scenario::ZoneLost);
    check(seed, &r);
}

//! With 10% of messages lost, live nodes are rarely and only briefly
//! declared down.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::scenarios::false_suspicion;
use common::sim::for_each_seed;

/// Longest a live node may be considered down by any observer.
const LONGEST_FALSE_DOWN: Duration = Duration::from_secs(5);
/// Largest share of (observer, live peer) time spent in a down verdict.
const MAX_RATE: f64 = 0.001;

#[test]
fn live_nodes_are_not_declared_down_for_long_at_ten_percent_loss() {
    for_each_seed(5, |seed| {
        let s = false_suspicion(seed, 16, 0.10, Duration::from_secs(300));
        eprintln!(
            "seed {seed}: false-down share {:.5}%, {} episodes over {} pairs in {:?}, longest {:?}",
            s.rate * 100.0,
            s.episodes,
            s.pairs,
            s.observed,
            s.longest
        );
        assert!(
            s.longest <= LONGEST_FALSE_DOWN,
            "seed {seed}: a live node was considered down for {:?} (bound {LONGEST_FALSE_DOWN:?})",
            s.longest
        );
        assert!(
            s.rate <= MAX_RATE,
            "seed {seed}: false-down share {:.4}% (bound {:.2}%)",
            s.rate * 100.0,
            MAX_RATE * 100.0
        );
    });
}

#[test]
fn a_lossless_network_never_suspects_anyone() {
    for_each_seed(2, |seed| {
        let s = false_suspicion(seed, 16, 0.0, Duration::from_secs(120));
        assert_eq!(s.episodes, 0, "seed {seed}: {s:?}");
    });
}

//! A new member's state reaches every node in O(log n) gossip rounds.
#![allow(clippy::unwrap_used)]

mod common;

use common::scenarios::rounds_to_spread;
use common::sim::for_each_seed;

#[test]
fn new_member_reaches_every_node_in_logarithmic_rounds() {
    for n in [8usize, 16, 32, 64] {
        let bound = 3.0 * (n as f64).log2() + 6.0;
        let mut worst = 0.0f64;
        for_each_seed(5, |seed| {
            let rounds = rounds_to_spread(seed, n);
            assert!(
                rounds <= bound,
                "seed {seed}: {n} nodes took {rounds:.1} rounds to learn a new member (bound {bound:.1})"
            );
            worst = worst.max(rounds);
        });
        eprintln!("{n} nodes: worst {worst:.1} rounds (bound {bound:.1})");
    }
}

//! After a partition heals, membership and layout converge, including a
//! layout committed on one side during the partition.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::scenarios::heal_time;
use common::sim::for_each_seed;

const HEAL_BOUND: Duration = Duration::from_secs(30);

#[test]
fn membership_and_layout_converge_after_a_partition_heals() {
    for n in [8usize, 32] {
        for_each_seed(5, |seed| {
            // heal_time asserts that the partition was noticed, and that
            // everyone ends on the layout committed during it.
            let took = heal_time(seed, n, Duration::from_secs(60));
            assert!(
                took <= HEAL_BOUND,
                "seed {seed}: {n} nodes took {took:?} to converge after the heal (bound {HEAL_BOUND:?})"
            );
            eprintln!("{n} nodes: converged {took:?} after the heal");
        });
    }
}

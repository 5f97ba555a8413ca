//! Layout changes made *during* the mixed-faults runs: joins of spare
//! nodes, leaves, capacity changes, replacements of crashed nodes and
//! aborts, among message loss, partitions, crashes and restarts. After the
//! heal the checker asks what it asks of every run (no acknowledged write
//! lost, nothing superseded back, replicas equal, no hint left) and more:
//! every transfer completed, one layout in use on every node, and no node
//! holding a partition the layout does not give it.
//!
//! - `cargo nextest run -p gyre-sim layout_changes` runs 240 seeds, split
//!   over four tests so they run in parallel.
//! - `GYRE_SIM_SEEDS=10000 cargo nextest run -p gyre-sim --release
//!   layout_changes` runs seeds 0..10000.
//! - `GYRE_SIM_SEED=<seed> cargo nextest run -p gyre-sim layout_changes`
//!   replays one seed and prints its history.
#![allow(clippy::unwrap_used)]

use gyre_sim::{RunReport, SimConfig, run, seed_count_from_env, seed_from_env};

const DEFAULT_SEEDS: u64 = 240;
const PARTS: u64 = 4;

fn run_part(part: u64) {
    if let Some(seed) = seed_from_env() {
        if part == 0 {
            let report = run(seed, &SimConfig::varied_layouts(seed));
            println!("{}", report.history);
            println!("{report}");
            assert!(report.is_ok(), "{report}");
        }
        return;
    }
    let total = seed_count_from_env(DEFAULT_SEEDS);
    let mut failures: Vec<RunReport> = Vec::new();
    let (mut ran, mut changes) = (0, 0);
    for seed in (0..total).filter(|s| s % PARTS == part) {
        let report = run(seed, &SimConfig::varied_layouts(seed));
        ran += 1;
        changes += report.faults.layout_changes;
        if !report.is_ok() {
            failures.push(report);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} seeds failed:\n{}",
        failures.len(),
        failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The runs must really change layouts, or they prove nothing.
    assert!(changes >= ran, "{changes} layout changes in {ran} runs");
}

#[test]
fn layout_changes_0() {
    run_part(0);
}

#[test]
fn layout_changes_1() {
    run_part(1);
}

#[test]
fn layout_changes_2() {
    run_part(2);
}

#[test]
fn layout_changes_3() {
    run_part(3);
}

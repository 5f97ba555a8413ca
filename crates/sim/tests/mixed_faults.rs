//! The mixed-faults simulation over many seeds: message loss, duplication,
//! delay and reordering, symmetric and one-way partitions, isolation,
//! crashes and restarts, under a workload of concurrent clients; then the
//! heal, the settle and the checker (see `gyre_sim::checker`). Each seed
//! also draws its cluster's shape (`SimConfig::varied`): 3 to 6 nodes, 2 to
//! 6 clients, 2 to 10 keys.
//!
//! - `cargo nextest run -p gyre-sim mixed_faults` runs 800 seeds (0..800),
//!   split over four tests so they run in parallel.
//! - `GYRE_SIM_SEEDS=10000 cargo nextest run -p gyre-sim --release
//!   mixed_faults` runs seeds 0..10000.
//! - `GYRE_SIM_SEED=<seed> cargo nextest run -p gyre-sim mixed_faults`
//!   replays one seed (in `mixed_faults_0`; the others then do nothing) and
//!   prints its whole history.
#![allow(clippy::unwrap_used)]

use gyre_sim::{RunReport, SimConfig, run, seed_count_from_env, seed_from_env};

/// Seeds run by default, in all four tests together.
const DEFAULT_SEEDS: u64 = 800;
const PARTS: u64 = 4;

fn run_part(part: u64) {
    if let Some(seed) = seed_from_env() {
        if part == 0 {
            let report = run(seed, &SimConfig::varied(seed));
            println!("{}", report.history);
            println!("{report}");
            println!("history digest {:016x}", report.history.digest());
            assert!(report.is_ok(), "{report}");
        }
        return;
    }
    let total = seed_count_from_env(DEFAULT_SEEDS);
    let mut failures: Vec<RunReport> = Vec::new();
    let mut ran = 0;
    for seed in (0..total).filter(|s| s % PARTS == part) {
        let report = run(seed, &SimConfig::varied(seed));
        ran += 1;
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
}

#[test]
fn mixed_faults_0() {
    run_part(0);
}

#[test]
fn mixed_faults_1() {
    run_part(1);
}

#[test]
fn mixed_faults_2() {
    run_part(2);
}

#[test]
fn mixed_faults_3() {
    run_part(3);
}

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

mod common;

use gyre_sim::SimConfig;

/// Seeds run by default, in all four tests together.
const DEFAULT_SEEDS: u64 = 800;
const PARTS: u64 = 4;

fn run_part(part: u64) {
    common::run_seed_part(part, PARTS, DEFAULT_SEEDS, SimConfig::varied);
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

//! Convergence report: runs the membership simulation and prints how fast
//! gossip spreads, how fast crashes are detected, how often a lossy network
//! causes false suspicion, and how fast a healed partition converges.
//!
//! ```text
//! cargo bench -p gyre-membership --bench convergence   # full sizes
//! cargo test -p gyre-membership --benches              # smoke sizes (< 3 s)
//! ```
//!
//! `GYRE_SIM_SEEDS=<n>` sets the number of seeds per row (default 20).
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::scenarios::{detection_times, false_suspicion, heal_time, rounds_to_spread};
use common::sim::{median_max, seeds};

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let full = std::env::args().any(|a| a == "--bench");
    let started = Instant::now();
    let seeds = if full { seeds(20) } else { seeds(1) };
    let sizes: &[usize] = if full { &[3, 8, 16, 32, 64] } else { &[3, 8] };
    let crash_n = if full { 64 } else { 8 };
    let loss_n = if full { 32 } else { 8 };
    let loss_secs = if full { 600 } else { 30 };
    let heal_n = if full { 32 } else { 8 };

    println!(
        "membership convergence ({} seeds per row{})",
        seeds.len(),
        if full { "" } else { ", smoke sizes" }
    );
    println!();
    println!("new member's state reaches every node (gossip rounds)");
    println!("| nodes | median | max | bound 3·log2(n)+6 |");
    println!("|---:|---:|---:|---:|");
    for &n in sizes {
        let mut rounds: Vec<f64> = seeds.iter().map(|s| rounds_to_spread(*s, n)).collect();
        let (median, max) = median_max(&mut rounds);
        let bound = 3.0 * (n as f64).log2() + 6.0;
        println!("| {n} | {median:.1} | {max:.1} | {bound:.1} |");
    }

    println!();
    println!(
        "crash detection at {crash_n} nodes (seconds from the crash to each live node's verdict)"
    );
    let mut medians = Vec::new();
    let mut maxes = Vec::new();
    for s in &seeds {
        let mut t: Vec<f64> = detection_times(*s, crash_n)
            .iter()
            .map(Duration::as_secs_f64)
            .collect();
        let (median, max) = median_max(&mut t);
        medians.push(median);
        maxes.push(max);
    }
    let (m_median, m_max) = median_max(&mut medians);
    let (x_median, x_max) = median_max(&mut maxes);
    println!("| per run | median over runs | worst run |");
    println!("|---|---:|---:|");
    println!("| median over live nodes | {m_median:.1} s | {m_max:.1} s |");
    println!("| slowest live node | {x_median:.1} s | {x_max:.1} s |");

    println!();
    println!("false suspicion at {loss_n} nodes, 10% message loss, {loss_secs} s per run");
    let mut rates = Vec::new();
    let mut longest = Duration::ZERO;
    let mut episodes = 0;
    let mut pair_hours = 0.0;
    for s in &seeds {
        let r = false_suspicion(*s, loss_n, 0.10, Duration::from_secs(loss_secs));
        rates.push(r.rate);
        longest = longest.max(r.longest);
        episodes += r.episodes;
        pair_hours += r.pairs as f64 * r.observed.as_secs_f64() / 3600.0;
    }
    let (rate_median, rate_max) = median_max(&mut rates);
    println!(
        "| down-verdict share of (observer, live peer) time, median | max | false-down episodes per pair-hour | longest false-down period |"
    );
    println!("|---:|---:|---:|---:|");
    println!(
        "| {:.4}% | {:.4}% | {:.2} | {:.1} s |",
        rate_median * 100.0,
        rate_max * 100.0,
        episodes as f64 / pair_hours,
        longest.as_secs_f64()
    );

    println!();
    println!(
        "partition heal at {heal_n} nodes (halves cut for 60 s, a layout committed on one side)"
    );
    let mut heal: Vec<f64> = seeds
        .iter()
        .map(|s| heal_time(*s, heal_n, Duration::from_secs(60)).as_secs_f64())
        .collect();
    let (median, max) = median_max(&mut heal);
    println!("| seconds to one layout and everyone up: median | max |");
    println!("|---:|---:|");
    println!("| {median:.1} s | {max:.1} s |");
    println!();
    println!("(report took {:.1} s)", started.elapsed().as_secs_f64());
}

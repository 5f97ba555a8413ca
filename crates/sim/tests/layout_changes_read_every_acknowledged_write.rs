//! Without faults other than layout changes (joins, leaves, capacity
//! changes and aborts, made while the clients run), R + W > N holds across
//! the change: every read that starts after a write was acknowledged sees
//! it, whichever layouts the nodes route with at the time. (The checker's
//! `stale_reads` rule; the fault runs cannot promise it.)
#![allow(clippy::unwrap_used)]

use gyre_sim::{SimConfig, run, seed_count_from_env, seed_from_env};

#[test]
fn reads_see_every_write_acknowledged_before_them_during_layout_changes() {
    let seeds: Vec<u64> = match seed_from_env() {
        Some(seed) => vec![seed],
        None => (0..seed_count_from_env(40)).collect(),
    };
    let mut changes = 0;
    let mut failed = Vec::new();
    for &seed in &seeds {
        let report = run(seed, &SimConfig::calm_layouts(seed));
        changes += report.faults.layout_changes;
        if !report.is_ok() {
            failed.push(report.to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} seeds failed:\n{}",
        failed.len(),
        seeds.len(),
        failed.join("\n")
    );
    assert!(
        changes as usize >= seeds.len(),
        "{changes} layout changes in {} runs",
        seeds.len()
    );
}

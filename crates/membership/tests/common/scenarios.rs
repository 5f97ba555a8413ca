//! Measured scenarios, shared by the tests (which assert bounds on them) and
//! `benches/convergence.rs` (which prints them).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use super::sim::{Sim, SimConfig};

const CHECK: Duration = Duration::from_millis(100);

/// `n` nodes in 3 zones that have all met (no layout).
pub fn met(seed: u64, n: usize, config: SimConfig) -> Sim {
    let mut sim = Sim::new(seed, config);
    for i in 0..n {
        sim.add_node(&format!("z{}", i % 3));
    }
    sim.run_until(
        Duration::from_secs(120),
        Duration::from_millis(500),
        Sim::all_see_all_up,
    )
    .unwrap_or_else(|| panic!("seed {seed}: {n} nodes did not meet in 120 s"));
    sim
}

/// Gossip rounds until the state of a node that joins a cluster of `n - 1`
/// has reached all `n - 1` of them.
pub fn rounds_to_spread(seed: u64, n: usize) -> f64 {
    let mut sim = met(seed, n - 1, SimConfig::default());
    let interval = sim.config.membership.gossip_interval;
    let new = sim.add_node("z0");
    let took = sim
        .run_until(interval * 100, CHECK, |s| s.all_know(new))
        .unwrap_or_else(|| panic!("seed {seed}: a new node's state did not reach {n} nodes"));
    took.as_secs_f64() / interval.as_secs_f64()
}

/// Per live node, the time from a crash to that node's verdict that the
/// crashed node is down. In a cluster of `n` that has met.
pub fn detection_times(seed: u64, n: usize) -> Vec<Duration> {
    let mut sim = met(seed, n, SimConfig::default());
    sim.run_for(Duration::from_secs(30)); // some heartbeat history
    let ids = sim.live_ids();
    let victim = ids[sim.rng.below(ids.len() as u64) as usize];
    sim.crash(victim);
    let start = sim.now;
    let mut detected: Vec<Option<Duration>> = vec![None; ids.len()];
    let limit = Duration::from_secs(120);
    while detected
        .iter()
        .zip(&ids)
        .any(|(d, id)| d.is_none() && *id != victim)
    {
        assert!(
            sim.now - start < limit,
            "seed {seed}: crash of {victim} not detected by every node in {limit:?}"
        );
        sim.run_for(CHECK);
        for (d, id) in detected.iter_mut().zip(&ids) {
            if d.is_none() && *id != victim && !sim.node(*id).is_up(victim, sim.now) {
                *d = Some(sim.now - start);
            }
        }
    }
    detected.into_iter().flatten().collect()
}

/// What a lossy network does to the verdicts about live nodes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Suspicion {
    /// Fraction of (observer, live target) samples in which the target
    /// was considered down.
    pub rate: f64,
    /// Longest time any observer considered a live target down.
    pub longest: Duration,
    /// Number of separate false-down periods.
    pub episodes: u64,
    /// (observer, target) pairs sampled, and duration observed.
    pub pairs: usize,
    pub observed: Duration,
}

/// `n` nodes that have met, then `duration` under `loss`; samples every
/// node's verdict about every other node every 100 ms.
pub fn false_suspicion(seed: u64, n: usize, loss: f64, duration: Duration) -> Suspicion {
    let mut sim = met(seed, n, SimConfig::default());
    sim.config.loss = loss;
    let ids = sim.live_ids();
    let mut down_since: Vec<Option<Duration>> = vec![None; ids.len() * ids.len()];
    let (mut down, mut total, mut episodes) = (0u64, 0u64, 0u64);
    let mut longest = Duration::ZERO;
    let end = sim.now + duration;
    while sim.now < end {
        sim.run_for(CHECK);
        for (i, a) in ids.iter().enumerate() {
            let m = sim.node(*a);
            for (j, b) in ids.iter().enumerate() {
                if i == j {
                    continue;
                }
                total += 1;
                let slot = &mut down_since[i * ids.len() + j];
                if m.is_up(*b, sim.now) {
                    if let Some(since) = slot.take() {
                        longest = longest.max(sim.now - since);
                    }
                } else {
                    down += 1;
                    if slot.is_none() {
                        *slot = Some(sim.now);
                        episodes += 1;
                    }
                }
            }
        }
    }
    for since in down_since.into_iter().flatten() {
        longest = longest.max(sim.now - since);
    }
    Suspicion {
        rate: down as f64 / total.max(1) as f64,
        longest,
        episodes,
        pairs: ids.len() * (ids.len() - 1),
        observed: duration,
    }
}

/// `n` nodes with a layout, cut in two halves for `cut`; a layout change is
/// committed on one side meanwhile. Returns the time from the heal until
/// every node sees every other up and all hold the same layout, which must
/// be the one committed during the partition.
pub fn heal_time(seed: u64, n: usize, cut: Duration) -> Duration {
    let mut sim = Sim::cluster(seed, n, 3, SimConfig::default());
    let ids = sim.live_ids();
    let (a, b) = ids.split_at(n / 2);
    sim.partition(&[a, b]);
    sim.run_for(Duration::from_secs(20));
    let on = a[0];
    let target = b[0];
    let stamp = sim
        .commit(on, vec![gyre_membership::Change::SetCapacity(target, 3)])
        .unwrap();
    sim.run_for(cut.saturating_sub(Duration::from_secs(20)));
    // Each side has convicted the other and holds its own layout.
    assert!(
        !sim.node(a[0]).is_up(b[0], sim.now),
        "seed {seed}: the partition went unnoticed"
    );
    assert!(sim.node(b[0]).layout_stamp() < Some(stamp));
    sim.heal();
    let took = sim
        .run_until(Duration::from_secs(120), CHECK, |s| {
            s.all_see_all_up() && s.stamps().len() == 1
        })
        .unwrap_or_else(|| panic!("seed {seed}: no convergence 120 s after the heal"));
    assert_eq!(
        sim.stamps().into_iter().next().unwrap(),
        Some(stamp),
        "seed {seed}: converged on another layout"
    );
    took
}

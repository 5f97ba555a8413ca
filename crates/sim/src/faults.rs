//! The fault schedule: while the clients run, one random fault event after
//! another.

use std::sync::Arc;

use gyre_transport::Faults;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::config::FaultConfig;
use crate::rng::SimRng;

/// How many fault events of each kind a run saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Message faults changed (loss, duplication, delay).
    pub messages: u32,
    /// Message faults back to the base delay.
    pub calm: u32,
    /// Symmetric partitions.
    pub partitions: u32,
    /// One-way cuts.
    pub one_way: u32,
    /// Nodes isolated.
    pub isolations: u32,
    /// Heals.
    pub heals: u32,
    /// Crashes.
    pub crashes: u32,
    /// Restarts.
    pub restarts: u32,
    /// Wipes.
    pub wipes: u32,
}

/// Injects faults into `cluster` until `deadline`, as `plan` says, drawing
/// from `rng`. Every event is recorded in the history. Leaves the faults
/// in place: the caller heals.
pub async fn inject(
    cluster: Arc<Cluster>,
    mut rng: SimRng,
    plan: FaultConfig,
    deadline: Instant,
) -> FaultCounts {
    let mut counts = FaultCounts::default();
    let w = plan.weights;
    let network = cluster.network().clone();
    let base = cluster.config().base_delay;
    loop {
        tokio::time::sleep(rng.duration(plan.interval.0, plan.interval.1)).await;
        if Instant::now() >= deadline {
            return counts;
        }
        let n = cluster.len();
        let down = n - cluster.running().len();
        // Only events that can happen now.
        let weights = [
            w.messages,
            w.calm,
            w.partition,
            if n > 1 { w.one_way } else { 0 },
            w.isolate,
            w.heal,
            if down < plan.max_down { w.crash } else { 0 },
            if down > 0 { w.restart } else { 0 },
            w.wipe,
        ];
        let Some(kind) = rng.weighted(&weights) else {
            continue;
        };
        let event = match kind {
            0 => {
                let max_ms = plan.max_delay.as_millis() as u64;
                let hi = base.1 + std::time::Duration::from_millis(rng.below(max_ms + 1));
                let faults = Faults {
                    drop: rng.unit() * plan.max_drop,
                    duplicate: rng.unit() * plan.max_duplicate,
                    delay: (base.0, hi),
                };
                network.set_faults(faults);
                counts.messages += 1;
                Some(format!(
                    "messages: drop {:.3}, duplicate {:.3}, delay {:?}..{:?}",
                    faults.drop, faults.duplicate, faults.delay.0, faults.delay.1
                ))
            }
            1 => {
                network.set_faults(Faults {
                    delay: base,
                    ..Faults::default()
                });
                counts.calm += 1;
                Some("messages: calm".to_owned())
            }
            2 => {
                // A random group of 1..=n/2 nodes cut from the rest.
                let mut order: Vec<usize> = (0..n).collect();
                for i in (1..order.len()).rev() {
                    order.swap(i, rng.index(i + 1));
                }
                let size = 1 + rng.index((n / 2).max(1));
                let (minority, majority) = order.split_at(size.min(n));
                for &a in minority {
                    for &b in majority {
                        network.partition(cluster.id(a), cluster.id(b));
                    }
                }
                counts.partitions += 1;
                let names = |g: &[usize]| {
                    g.iter()
                        .map(|&i| cluster.id(i).as_u64())
                        .collect::<Vec<_>>()
                };
                Some(format!(
                    "partition {:?} | {:?}",
                    names(minority),
                    names(majority)
                ))
            }
            3 => {
                let a = rng.index(n);
                let b = (a + 1 + rng.index(n - 1)) % n;
                network.partition_one_way(cluster.id(a), cluster.id(b));
                counts.one_way += 1;
                Some(format!(
                    "one-way cut {} -> {}",
                    cluster.id(a),
                    cluster.id(b)
                ))
            }
            4 => {
                let a = rng.index(n);
                network.isolate(cluster.id(a));
                counts.isolations += 1;
                Some(format!("isolate {}", cluster.id(a)))
            }
            5 => {
                network.heal();
                counts.heals += 1;
                Some("heal links".to_owned())
            }
            6 => {
                let running = cluster.running();
                let i = running.get(rng.index(running.len())).copied();
                if let Some(i) = i {
                    cluster.crash(i).await;
                    counts.crashes += 1;
                }
                None
            }
            7 => {
                let crashed: Vec<usize> =
                    (0..n).filter(|i| !cluster.running().contains(i)).collect();
                if let Some(&i) = crashed.get(rng.index(crashed.len()))
                    && cluster.restart(i).unwrap_or(false)
                {
                    counts.restarts += 1;
                }
                None
            }
            8 => {
                let i = rng.index(n);
                if cluster.wipe(i).await.is_ok() {
                    counts.wipes += 1;
                }
                None
            }
            _ => None,
        };
        if let Some(event) = event {
            cluster.record_event(event);
        }
    }
}

//! The fault schedule: while the clients run, one random fault event after
//! another.

use std::sync::Arc;

use gyre_transport::Faults;
use tokio::time::Instant;

use gyre_membership::Change;

use crate::cluster::Cluster;
use crate::config::FaultConfig;
use crate::rng::SimRng;

/// How often the cluster is recorded between fault events.
const EPOCH_SAMPLE: std::time::Duration = std::time::Duration::from_millis(100);

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
    /// Layout changes committed (joins, leaves, capacity changes,
    /// replacements, aborts).
    pub layout_changes: u32,
    /// Layout changes refused (nobody to join, a node still seen up, ...).
    pub refused_changes: u32,
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
    // Between fault events the cluster changes too (layout changes advance
    // by gossip): an epoch every 100 ms, for the availability rule.
    let sampler = {
        let cluster = Arc::clone(&cluster);
        tokio::spawn(async move {
            while Instant::now() < deadline {
                tokio::time::sleep(EPOCH_SAMPLE).await;
                cluster.record_epoch();
            }
        })
    };
    let w = plan.weights;
    let network = cluster.network().clone();
    let base = cluster.config().base_delay;
    loop {
        tokio::time::sleep(rng.duration(plan.interval.0, plan.interval.1)).await;
        if Instant::now() >= deadline {
            let _ = sampler.await;
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
            w.join,
            w.leave,
            w.capacity,
            w.replace,
            w.abort,
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
            9..=13 => {
                let (what, outcome) = layout_change(&cluster, &mut rng, kind);
                match outcome {
                    Ok(version) => {
                        counts.layout_changes += 1;
                        Some(format!("layout change: {what} -> version {version}"))
                    }
                    Err(why) => {
                        counts.refused_changes += 1;
                        Some(format!("layout change refused: {what}: {why}"))
                    }
                }
            }
            _ => None,
        };
        if let Some(event) = event {
            cluster.record_event(event);
        }
        cluster.record_epoch();
    }
}

/// One random layout change of `kind` (9 join, 10 leave, 11 capacity,
/// 12 replace, 13 abort): what it was, and the new layout's version or why
/// it was refused.
fn layout_change(
    cluster: &Cluster,
    rng: &mut SimRng,
    kind: usize,
) -> (String, Result<u64, String>) {
    let members = cluster.members();
    let running = cluster.running();
    let pick = |rng: &mut SimRng, from: &[usize]| from.get(rng.index(from.len().max(1))).copied();
    let spares: Vec<usize> = running
        .iter()
        .copied()
        .filter(|&i| !members.contains(&cluster.id(i)))
        .collect();
    let running_members: Vec<usize> = running
        .iter()
        .copied()
        .filter(|&i| members.contains(&cluster.id(i)))
        .collect();
    let nothing = |what: &str| (what.to_owned(), Err("no node to change".to_owned()));
    match kind {
        9 => match pick(rng, &spares) {
            Some(i) => {
                let id = cluster.id(i);
                (format!("join {id}"), cluster.change(&[Change::Join(id)]))
            }
            None => nothing("join"),
        },
        10 if members.len() > usize::from(cluster.config().replication) => {
            match pick(rng, &running_members) {
                Some(i) => {
                    let id = cluster.id(i);
                    (format!("leave {id}"), cluster.change(&[Change::Leave(id)]))
                }
                None => nothing("leave"),
            }
        }
        10 => nothing("leave"),
        11 => match pick(rng, &running_members) {
            Some(i) => {
                let id = cluster.id(i);
                let capacity = 50 + rng.below(151) as u32;
                (
                    format!("capacity of {id} to {capacity}"),
                    cluster.change(&[Change::SetCapacity(id, capacity)]),
                )
            }
            None => nothing("capacity"),
        },
        12 => {
            let crashed: Vec<usize> = (0..cluster.len())
                .filter(|i| !running.contains(i) && !cluster.is_retired(*i))
                .filter(|&i| members.contains(&cluster.id(i)))
                .collect();
            match (pick(rng, &crashed), pick(rng, &spares)) {
                (Some(old), Some(new)) => {
                    let (o, n) = (cluster.id(old), cluster.id(new));
                    let outcome = cluster.change(&[Change::Remove(o), Change::Join(n)]);
                    if outcome.is_ok() {
                        cluster.retire(old);
                    }
                    (format!("replace {o} by {n}"), outcome)
                }
                _ => nothing("replace"),
            }
        }
        _ => ("abort".to_owned(), cluster.abort_change()),
    }
}

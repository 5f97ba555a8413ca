//! Counters under faults: clients increment counters through random nodes
//! while nodes crash and restart, links are cut and messages are lost. After
//! the heal every replica holds the same state, and each counter, read at
//! R = N through every node, counts every acknowledged increment exactly
//! once: at least their sum, and at most that plus the increments whose
//! outcome the clients could not know (deltas are positive, so a lost or
//! double-counted increment shows). Prints the seed of a failure;
//! `GYRE_SIM_SEED` replays one, `GYRE_SIM_SEEDS` runs more.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{block_on, cluster};
use gyre_sim::{ClusterConfig, SettleConfig, SimRng, bucket, seed_count_from_env, seed_from_env};
use gyre_types::{BucketProps, ConflictMode, Key};
use gyre_wire::{ClientOp, ClientReply};

const KEYS: usize = 4;

/// Per key: the acknowledged sum and the sum of unknown outcomes.
type Tally = Arc<Mutex<Vec<(i64, i64)>>>;

async fn run_seed(seed: u64) -> Result<(), String> {
    let (cluster, _recorder) = cluster(ClusterConfig::default(), seed).await;
    let keys: Vec<Key> = (0..KEYS)
        .map(|i| Key::new(format!("counter:{i}").into_bytes()).unwrap())
        .collect();
    let tally: Tally = Arc::new(Mutex::new(vec![(0, 0); KEYS]));
    // The run's bucket holds counters, on every node.
    let props = BucketProps::default().with_conflict_mode(ConflictMode::Counter);
    let (acked, members) = cluster
        .node(0)
        .unwrap()
        .set_bucket(bucket(), props)
        .await
        .map_err(|e| e.to_string())?;
    if acked != members {
        return Err(format!("the bucket reached {acked} of {members} members"));
    }
    let mut rng = SimRng::new(seed);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);

    // Clients.
    let mut clients = Vec::new();
    for c in 0..3u64 {
        let (cluster, keys, tally) = (Arc::clone(&cluster), keys.clone(), Arc::clone(&tally));
        let mut rng = SimRng::new(seed ^ (c + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        clients.push(tokio::spawn(async move {
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(
                    rng.duration(Duration::from_millis(5), Duration::from_millis(80)),
                )
                .await;
                let running = cluster.running();
                let Some(&via) = running.get(rng.index(running.len())) else {
                    continue;
                };
                let Some(node) = cluster.node(via) else {
                    continue;
                };
                let k = rng.index(KEYS);
                let delta = 1 + rng.below(9) as i64;
                let op = ClientOp::Increment {
                    bucket: bucket(),
                    key: keys[k].clone(),
                    delta,
                    w: None,
                };
                let answer =
                    tokio::time::timeout(Duration::from_secs(5), node.replication().client(op))
                        .await;
                let mut t = tally.lock().unwrap();
                match answer {
                    Ok(Ok(ClientReply::Counted { .. })) => t[k].0 += delta,
                    // Refused before anything was written.
                    Ok(Err(
                        gyre_replication::Error::BadRequest(_) | gyre_replication::Error::NoLayout,
                    )) => {}
                    // Unavailable, failed, timed out: it may exist.
                    _ => t[k].1 += delta,
                }
            }
        }));
    }

    // Faults.
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(rng.duration(Duration::from_millis(300), Duration::from_millis(1500)))
            .await;
        let i = rng.index(cluster.len());
        match rng.index(5) {
            4 => cluster.network().set_faults(gyre_transport::Faults {
                drop: 0.05,
                duplicate: 0.02,
                delay: (Duration::from_millis(1), Duration::from_millis(30)),
            }),
            0 => {
                cluster.crash(i).await;
            }
            1 => {
                let _ = cluster.restart(i);
            }
            2 => {
                let j = (i + 1 + rng.index(cluster.len() - 1)) % cluster.len();
                cluster.network().partition(cluster.id(i), cluster.id(j));
            }
            _ => cluster.heal(),
        }
    }
    for c in clients {
        c.await.unwrap();
    }
    cluster.heal();
    cluster.restart_all().map_err(|e| e.to_string())?;
    let settle = SettleConfig::default();
    if cluster.settle(&settle, &bucket(), &keys).await.is_none() {
        return Err(format!(
            "not converged: {:?}",
            cluster.snapshot(&bucket(), &keys)
        ));
    }
    let tally = tally.lock().unwrap().clone();
    eprintln!("seed {seed}: (acknowledged, unknown) per key {tally:?}");
    for (k, key) in keys.iter().enumerate() {
        let (acked, unknown) = tally[k];
        for via in 0..cluster.len() {
            let node = cluster.node(via).unwrap();
            let op = ClientOp::Get {
                bucket: bucket(),
                key: key.clone(),
                r: Some(3),
            };
            let value = match node.replication().client(op).await {
                Ok(ClientReply::Values { values, .. }) => values.first().map_or(0, |v| {
                    std::str::from_utf8(v).unwrap().parse::<i64>().unwrap()
                }),
                other => return Err(format!("read of {key:?} via {via}: {other:?}")),
            };
            if !(acked..=acked + unknown).contains(&value) {
                return Err(format!(
                    "{key:?} via node {via}: {value}, acknowledged {acked}, unknown {unknown}"
                ));
            }
        }
    }
    // Nothing left behind.
    for via in 0..cluster.len() {
        if let Some(store) = cluster.store(via) {
            use gyre_storage::Store as _;
            if !store.hint_backlog().is_empty() {
                return Err(format!("node {via} still holds hints"));
            }
        }
    }
    cluster.shutdown().await;
    Ok(())
}

#[test]
fn every_acknowledged_increment_is_counted_once_after_the_heal() {
    let seeds: Vec<u64> = match seed_from_env() {
        Some(seed) => vec![seed],
        None => (0..seed_count_from_env(12)).collect(),
    };
    let mut failed = Vec::new();
    for &seed in &seeds {
        if let Err(e) = block_on(run_seed(seed)) {
            failed.push(format!("seed {seed}: {e}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} seeds failed (replay one with GYRE_SIM_SEED):\n{}",
        failed.len(),
        seeds.len(),
        failed.join("\n")
    );
}

//! A peer seen up again is compared with alone: every node that sees it
//! come back runs anti-entropy with it for what both replicate, not a full
//! round with every replica of everything it holds. The full round per Up
//! event made each node of a 16-node cluster run about five full rounds in
//! the minute after forming (one per peer it saw come up), a cost that grew
//! with n. Writes made while the peer was away still reach it.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{block_on, client, cluster, keys_where};
use gyre_sim::{ClusterConfig, bucket};

#[test]
fn a_restarted_peer_costs_only_the_sessions_it_shares() {
    block_on(async {
        let mut config = ClusterConfig {
            nodes: 8,
            ..ClusterConfig::default()
        };
        // Only the Up events compare trees, and hints are out of the way.
        config.node.anti_entropy_interval = Duration::from_secs(3600);
        config.node.hint_interval = Duration::from_secs(3600);
        let (cluster, recorder) = cluster(config, 11).await;
        let away = 2;
        let away_id = cluster.id(away);
        let layout = cluster.layout().unwrap();
        // Each (partition, n_val 3) the node replicates is shared with two
        // other replicas: a round of its own is a session with each, and
        // its coming back is worth a session on each side of each pair.
        let round = |id| 2 * layout.partitions_of(id).len() as u64;
        let shared = 2 * round(away_id);
        // Every node's first periodic round (a jitter after it starts)
        // is over.
        let first_rounds_done = cluster
            .wait_until(Duration::from_secs(60), |c| {
                (0..c.len()).all(|i| {
                    let done = c
                        .node(i)
                        .unwrap()
                        .replication()
                        .counters()
                        .ae_sessions
                        .load(Ordering::Relaxed);
                    done >= round(c.id(i))
                })
            })
            .await;
        assert!(first_rounds_done);

        common::crash_and_notice(&cluster, away).await;
        let others: Vec<usize> = (0..cluster.len()).filter(|&i| i != away).collect();
        // Written while it is away, on keys it replicates.
        let keys = keys_where(&cluster, "away-", 10, |p| p.contains(&away_id));
        let mut c = client(&cluster, &recorder, 0);
        let values = common::put_avoiding(&cluster, &mut c, &keys, away).await;

        let before = cluster.totals().ae_sessions;
        cluster.restart(away).unwrap();
        let back = cluster
            .wait_until(Duration::from_secs(10), |c| {
                others
                    .iter()
                    .all(|&i| c.sees_up(i, away) && c.sees_up(away, i))
            })
            .await;
        assert!(back, "the others did not see it back");
        let caught_up = cluster
            .wait_until(Duration::from_secs(20), |c| {
                keys.iter().zip(&values).all(|(key, value)| {
                    c.replica_state(away, &bucket(), key)
                        .is_some_and(|s| s.values().any(|v| v == value))
                })
            })
            .await;
        assert!(caught_up, "the writes it missed did not reach it");
        // Let every Up event's sessions run out.
        tokio::time::sleep(Duration::from_secs(10)).await;
        // It also runs its own first periodic round once restarted.
        let sessions = cluster.totals().ae_sessions - before;
        assert!(
            sessions <= shared + round(away_id),
            "{sessions} anti-entropy sessions for a node back that shares {shared}, and its own round"
        );
        cluster.shutdown().await;
    });
}

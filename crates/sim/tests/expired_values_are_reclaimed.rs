//! Sessions expire and nobody reads them again: the sweep purges them from
//! every replica, including one that was cut off while they were written
//! (its copies arrive as hints after the heal), and nothing expired is ever
//! read again. Values without an expiry are untouched.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{block_on, client, cluster, keys_where, settle};
use gyre_sim::{ClusterConfig, Outcome, bucket, check};
use gyre_storage::{ObjectId, Store};

#[test]
fn expired_values_are_purged_everywhere_and_never_read_again() {
    block_on(async {
        let mut config = ClusterConfig::default();
        config.replica.tombstone_grace = Duration::from_secs(2);
        config.node.sweep_interval = Duration::from_secs(3);
        let (cluster, recorder) = cluster(config, 11).await;
        let far = 3;
        let far_id = cluster.id(far);
        let sessions = keys_where(&cluster, "session-", 8, |p| p.contains(&far_id));
        let users = keys_where(&cluster, "user-", 4, |_| true);

        // Node 4 is cut off while the sessions are written.
        for a in (0..cluster.len()).filter(|&a| a != far) {
            cluster.network().partition(cluster.id(a), far_id);
        }
        let split = cluster
            .wait_until(Duration::from_secs(10), |c| !c.sees_up(0, far))
            .await;
        assert!(split);
        let mut writer = client(&cluster, &recorder, 0);
        let ttl = Duration::from_secs(1);
        for key in &sessions {
            let (_, outcome) = writer.put_expiring(0, key, None, Some(ttl)).await;
            assert!(matches!(outcome, Outcome::Written { .. }), "{outcome:?}");
        }
        for key in &users {
            let (_, outcome) = writer.put(0, key, None).await;
            assert!(matches!(outcome, Outcome::Written { .. }), "{outcome:?}");
        }
        let mut reader = client(&cluster, &recorder, 1);
        for key in &sessions {
            let read = reader.get(1, key).await;
            assert!(
                matches!(&read, Outcome::Read { values, .. } if values.len() == 1),
                "{read:?}"
            );
        }
        tokio::time::sleep(ttl).await;
        for key in &sessions {
            let read = reader.get(2, key).await;
            assert!(
                matches!(&read, Outcome::Read { values, .. } if values.is_empty()),
                "an expired session was read: {read:?}"
            );
        }

        // The heal brings the far node its hints (expired already), then
        // the sweep purges every copy.
        cluster.heal();
        let held = |c: &gyre_sim::Cluster, i: usize| {
            let store = c.store(i).unwrap();
            sessions
                .iter()
                .filter(|k| {
                    let id = ObjectId::new(bucket(), (*k).clone());
                    store.get(&id).unwrap().is_some()
                })
                .count()
        };
        let purged = cluster
            .wait_until(Duration::from_secs(60), |c| {
                (0..c.len()).all(|i| held(c, i) == 0)
                    && (0..c.len()).all(|i| c.store(i).is_some_and(|s| s.hint_backlog().is_empty()))
            })
            .await;
        let left: Vec<usize> = (0..cluster.len()).map(|i| held(&cluster, i)).collect();
        assert!(purged, "sessions still held per node: {left:?}");
        let expired_purged: u64 = (0..cluster.len())
            .filter_map(|i| cluster.node(i))
            .map(|n| {
                n.replication()
                    .counters()
                    .expired_purged
                    .load(Ordering::Relaxed)
            })
            .sum();
        assert!(expired_purged >= sessions.len() as u64, "{expired_purged}");

        // Nothing comes back, on any node; the users are all there.
        settle(&cluster, &users).await;
        for key in &sessions {
            for i in 0..cluster.len() {
                let read = reader.get(i, key).await;
                assert!(
                    matches!(&read, Outcome::Read { values, .. } if values.is_empty()),
                    "{read:?}"
                );
            }
        }
        for key in &users {
            let read = reader.get(far, key).await;
            assert!(
                matches!(&read, Outcome::Read { values, .. } if values.len() == 1),
                "{read:?}"
            );
        }
        let result = check(&recorder.history(), &cluster.snapshot(&bucket(), &users));
        common::assert_clean(&result, &recorder);
        cluster.shutdown().await;
    });
}

//! A delete made on one side of a partition, while the other side still
//! holds the value, stays deleted once the partition heals: hinted handoff,
//! read repair and anti-entropy all merge, and the tombstone's context
//! covers the old value.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{assert_clean, block_on, client, cluster, keys_where, settle};
use gyre_sim::{ClusterConfig, Outcome, bucket};

#[test]
fn a_delete_during_a_partition_does_not_come_back_after_the_heal() {
    block_on(async {
        let (cluster, recorder) = cluster(ClusterConfig::default(), 4).await;
        // Nodes 4 and 5 will be cut off; each key lives on one of them (so
        // the old value sits on the far side during the delete) and on two
        // nodes of the near side (so the near side can read it at R = 2:
        // reads ask primaries only).
        let far = [3, 4];
        let far_ids = [cluster.id(3), cluster.id(4)];
        let keys = keys_where(&cluster, "session-", 6, |p| {
            p.iter().filter(|n| far_ids.contains(n)).count() == 1
        });
        let mut writer = client(&cluster, &recorder, 0);
        for key in &keys {
            let (_, outcome) = writer.put(0, key, None).await;
            assert!(matches!(outcome, Outcome::Written { .. }), "{outcome:?}");
        }
        settle(&cluster, &keys).await;

        // {1, 2, 3} | {4, 5}.
        for a in 0..3 {
            for b in far {
                cluster.network().partition(cluster.id(a), cluster.id(b));
            }
        }
        let split = cluster
            .wait_until(Duration::from_secs(10), |c| {
                (0..3).all(|a| far.iter().all(|&b| !c.sees_up(a, b)))
            })
            .await;
        assert!(split);

        // The near side reads and deletes every key.
        let mut deleter = client(&cluster, &recorder, 1);
        for (n, key) in keys.iter().enumerate() {
            let via = n % 3;
            let read = deleter.get(via, key).await;
            assert!(
                matches!(&read, Outcome::Read { values, .. } if values.len() == 1),
                "{read:?}"
            );
            let context = deleter.context(key);
            let outcome = deleter.delete(via, key, context).await;
            assert!(matches!(outcome, Outcome::Written { .. }), "{outcome:?}");
        }
        // The far side still reads the old values (R = 2 of whatever it
        // holds; it may not reach a quorum).
        let mut far_reader = client(&cluster, &recorder, 2);
        for key in &keys {
            far_reader.get(far[0], key).await;
        }

        cluster.heal();
        settle(&cluster, &keys).await;
        // Reads everywhere (which also read-repair) find nothing.
        let mut reader = client(&cluster, &recorder, 3);
        for key in &keys {
            for i in 0..cluster.len() {
                let read = reader.get(i, key).await;
                assert!(
                    matches!(&read, Outcome::Read { values, .. } if values.is_empty()),
                    "{key:?} via {i}: {read:?}"
                );
            }
        }
        settle(&cluster, &keys).await;
        let check = cluster.check(&recorder.history(), &bucket(), &keys);
        assert_clean(&check, &recorder);
        assert_eq!(check.stats.keys_deleted, keys.len() as u64);
        cluster.shutdown().await;
    });
}

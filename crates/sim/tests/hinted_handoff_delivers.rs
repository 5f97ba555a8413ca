//! One replica down during writes: sloppy quorum sends its copies to
//! fallbacks as hints, and once it is back the hints reach it.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{assert_clean, block_on, client, cluster, keys_where, settle};
use gyre_sim::{ClusterConfig, bucket};

#[test]
fn one_replica_down_during_writes_gets_its_hints() {
    block_on(async {
        let mut config = ClusterConfig::default();
        // Anti-entropy out of the way: hinted handoff alone must do it.
        config.node.anti_entropy_interval = Duration::from_secs(3600);
        let (cluster, recorder) = cluster(config, 1).await;
        let down = 2; // node 3
        let down_id = cluster.id(down);
        let keys = keys_where(&cluster, "hint-", 20, |p| p.contains(&down_id));

        common::crash_and_notice(&cluster, down).await;

        // Every write is coordinated by a running primary and acknowledged
        // at W = 2 with a fallback standing in for the crashed one.
        let mut c = client(&cluster, &recorder, 0);
        let values = common::put_avoiding(&cluster, &mut c, &keys, down).await;
        let fallbacks = cluster.totals().fallbacks;
        assert!(
            fallbacks >= keys.len() as u64,
            "only {fallbacks} fallbacks used"
        );
        let held: u64 = (0..cluster.len())
            .filter_map(|i| cluster.store(i))
            .map(|s| {
                gyre_storage::Store::hint_backlog(&*s)
                    .get(&down_id)
                    .copied()
                    .unwrap_or(0)
            })
            .sum();
        assert!(
            held >= keys.len() as u64,
            "only {held} hints held for {down_id}"
        );
        // The crashed node has none of it.
        assert!(
            keys.iter()
                .all(|k| cluster.replica_state(down, &bucket(), k).is_none())
        );

        // Back up: the fallbacks hand the hints over.
        assert!(cluster.restart(down).unwrap());
        let delivered = cluster
            .wait_until(Duration::from_secs(30), |c| {
                (0..c.len()).all(|i| {
                    c.store(i)
                        .is_some_and(|s| gyre_storage::Store::hint_backlog(&*s).is_empty())
                })
            })
            .await;
        assert!(delivered, "hints left after 30 s");
        assert!(cluster.totals().hints_delivered >= keys.len() as u64);
        for (key, value) in keys.iter().zip(&values) {
            let state = cluster.replica_state(down, &bucket(), key).unwrap();
            assert_eq!(state.values().collect::<Vec<_>>(), [value], "{key:?}");
        }

        settle(&cluster, &keys).await;
        assert_clean(
            &cluster.check(&recorder.history(), &bucket(), &keys),
            &recorder,
        );
        cluster.shutdown().await;
    });
}

//! A replica whose data is wiped comes back empty (same id, no layout) and
//! is rebuilt by the nodes' background anti-entropy alone: no reads (so no
//! read repair), no writes (so no hints), no explicit sync calls. Every key
//! it holds ends equal to the other primaries' copies, and so do the Merkle
//! roots.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{assert_clean, block_on, client, cluster, keys_where, settle, settle_with};
use gyre_sim::{ClusterConfig, Outcome, SettleConfig, bucket};
use gyre_storage::Store;

#[test]
fn a_wiped_replica_is_rebuilt_by_anti_entropy_alone() {
    block_on(async {
        let (cluster, recorder) = cluster(ClusterConfig::default(), 5).await;
        let keys = keys_where(&cluster, "item-", 300, |_| true);
        let mut writer = client(&cluster, &recorder, 0);
        for (n, key) in keys.iter().enumerate() {
            let (_, outcome) = writer.put(n % cluster.len(), key, None).await;
            assert!(matches!(outcome, Outcome::Written { .. }), "{outcome:?}");
        }
        settle(&cluster, &keys).await;

        let wiped = 1; // node 2
        let wiped_id = cluster.id(wiped);
        let held: Vec<_> = keys
            .iter()
            .filter(|k| cluster.primaries(&bucket(), k).contains(&wiped_id))
            .cloned()
            .collect();
        assert!(held.len() > 100, "node 2 holds {} of the keys", held.len());
        let before = cluster.totals();
        cluster.wipe(wiped).await.unwrap();
        let store = cluster.store(wiped).unwrap();
        assert!(store.merkle_trees().is_empty(), "the new store is empty");

        // Nothing but the nodes' own background work from here on.
        let background_only = SettleConfig {
            explicit: false,
            within: Duration::from_secs(120),
            ..SettleConfig::default()
        };
        let took = settle_with(&cluster, &keys, &background_only).await;
        assert!(took < Duration::from_secs(60), "rebuilt in {took:?}");

        for key in &held {
            let mine = cluster.replica_state(wiped, &bucket(), key).unwrap();
            for p in cluster.primaries(&bucket(), key) {
                let theirs = cluster
                    .replica_state(cluster.index_of(p).unwrap(), &bucket(), key)
                    .unwrap();
                assert_eq!(mine, theirs, "{key:?} on {p}");
            }
        }
        let snapshot = cluster.snapshot(&bucket(), &keys);
        assert!(
            snapshot.root_mismatches.is_empty(),
            "{:?}",
            snapshot.root_mismatches
        );
        assert!(store.verify_trees().unwrap().is_empty());

        let after = cluster.totals();
        assert_eq!(after.read_repairs, before.read_repairs, "no read repair");
        assert_eq!(after.hints_delivered, before.hints_delivered, "no hints");
        assert!(after.ae_keys - before.ae_keys >= held.len() as u64);
        assert_clean(
            &cluster.check(&recorder.history(), &bucket(), &keys),
            &recorder,
        );
        cluster.shutdown().await;
    });
}

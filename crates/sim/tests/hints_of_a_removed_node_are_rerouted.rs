//! A replica lost for good while it was owed hints: once an operator
//! removes it from the layout, the hints held for it go to each key's new
//! replicas instead of waiting forever.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{block_on, client, cluster, keys_where};
use gyre_membership::Change;
use gyre_sim::{ClusterConfig, bucket};

#[test]
fn hints_for_a_removed_node_reach_the_new_replicas() {
    block_on(async {
        let mut config = ClusterConfig {
            nodes: 4,
            ..ClusterConfig::default()
        };
        // Hinted handoff alone must do it.
        config.node.anti_entropy_interval = Duration::from_secs(3600);
        let (cluster, recorder) = cluster(config, 7).await;
        let lost = 3; // node 4
        let lost_id = cluster.id(lost);
        let keys = keys_where(&cluster, "lost-", 20, |p| p.contains(&lost_id));

        common::crash_and_notice(&cluster, lost).await;
        let others: Vec<usize> = (0..cluster.len()).filter(|&i| i != lost).collect();

        let mut c = client(&cluster, &recorder, 0);
        let values = common::put_avoiding(&cluster, &mut c, &keys, lost).await;
        let held = |c: &gyre_sim::Cluster| -> u64 {
            others
                .iter()
                .filter_map(|&i| c.store(i))
                .map(|s| {
                    gyre_storage::Store::hint_backlog(&*s)
                        .get(&lost_id)
                        .copied()
                        .unwrap_or(0)
                })
                .sum()
        };
        assert!(held(&cluster) >= keys.len() as u64, "too few hints held");

        // The operator removes the lost node: the three others own all.
        let admin = cluster.node(0).unwrap();
        let membership = admin.membership();
        membership
            .with(|core, _| core.stage(Change::Remove(lost_id)))
            .unwrap();
        membership
            .commit(membership.with(|core, _| core.plan()).unwrap())
            .unwrap();

        let rerouted = cluster
            .wait_until(Duration::from_secs(30), |c| held(c) == 0)
            .await;
        assert!(
            rerouted,
            "{} hints still held for the removed node",
            held(&cluster)
        );
        let layout = cluster.layout().unwrap();
        assert!(layout.member(lost_id).is_none());
        for (key, value) in keys.iter().zip(&values) {
            for owner in cluster.primaries(&bucket(), key) {
                let i = cluster.index_of(owner).unwrap();
                let state = cluster.replica_state(i, &bucket(), key);
                assert!(
                    state.is_some_and(|s| s.values().any(|v| v == value)),
                    "{key:?} missing on its new replica {owner}"
                );
            }
        }
        cluster.shutdown().await;
    });
}

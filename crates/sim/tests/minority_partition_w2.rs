//! A minority partition with W = 2: a node cut off from the others cannot
//! make any write reach its quorum and says so; the majority keeps writing
//! (with fallbacks standing in for the cut-off node); after the heal nothing
//! acknowledged is lost and the replicas converge.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{assert_clean, block_on, client, cluster, keys_where, settle};
use gyre_sim::{ClusterConfig, Outcome, bucket};

#[test]
fn writes_succeed_on_the_majority_and_are_unavailable_on_the_minority() {
    block_on(async {
        let (cluster, recorder) = cluster(ClusterConfig::default(), 2).await;
        let cut = 4; // node 5
        let cut_id = cluster.id(cut);
        // Keys node 5 holds (it coordinates them itself) and keys it does
        // not (it would have to forward them).
        let mut keys = keys_where(&cluster, "mine-", 5, |p| p.contains(&cut_id));
        keys.extend(keys_where(&cluster, "theirs-", 5, |p| !p.contains(&cut_id)));

        cluster.network().isolate(cut_id);
        let majority: Vec<usize> = (0..cluster.len()).filter(|&i| i != cut).collect();
        let split = cluster
            .wait_until(Duration::from_secs(10), |c| {
                majority
                    .iter()
                    .all(|&i| !c.sees_up(i, cut) && !c.sees_up(cut, i))
            })
            .await;
        assert!(split, "the failure detectors did not notice the partition");

        let mut on_majority = client(&cluster, &recorder, 0);
        let mut on_minority = client(&cluster, &recorder, 1);
        for (n, key) in keys.iter().enumerate() {
            let via = majority[n % majority.len()];
            let (_, outcome) = on_majority.put(via, key, None).await;
            assert!(
                matches!(outcome, Outcome::Written { .. }),
                "majority: {outcome:?}"
            );

            let (_, outcome) = on_minority.put(cut, key, None).await;
            // Its own keys: stored locally, no second replica reachable.
            // The others: no primary to forward to.
            assert!(
                matches!(outcome, Outcome::Unavailable { .. }),
                "minority put: {outcome:?}"
            );
            let outcome = on_minority.delete(cut, key, None).await;
            assert!(
                matches!(outcome, Outcome::Unavailable { .. }),
                "minority delete: {outcome:?}"
            );
            let outcome = on_minority.get(cut, key).await;
            assert!(
                matches!(outcome, Outcome::Unavailable { .. }),
                "minority get: {outcome:?}"
            );
        }
        // The majority wrote node 5's copies to fallbacks.
        assert!(cluster.totals().fallbacks >= 5);

        cluster.heal();
        settle(&cluster, &keys).await;
        let check = cluster.check(&recorder.history(), &bucket(), &keys);
        assert_clean(&check, &recorder);
        assert_eq!(check.stats.acked_writes, keys.len() as u64);
        cluster.shutdown().await;
    });
}

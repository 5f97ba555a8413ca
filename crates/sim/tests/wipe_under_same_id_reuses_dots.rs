//! Why the mixed-faults suite does not wipe nodes: a node wiped and
//! restarted under the same id mints dots its previous life already
//! minted. Here it coordinates a blind put on a key it has not relearned
//! yet and acknowledges it with the very dot of an earlier write of that
//! key; the checker catches it. (The design's answer is a fresh id for a
//! node whose data was lost.)
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{block_on, client, cluster, keys_where, settle};
use gyre_sim::{ClusterConfig, Outcome, Violation, bucket};

#[test]
fn the_checker_catches_a_dot_minted_twice_after_a_wipe() {
    block_on(async {
        let mut config = ClusterConfig::default();
        // No anti-entropy to rebuild the wiped node before it coordinates.
        config.node.anti_entropy_interval = Duration::from_secs(3600);
        let (cluster, recorder) = cluster(config, 6).await;
        let wiped = 2;
        let wiped_id = cluster.id(wiped);
        let key = keys_where(&cluster, "k", 1, |p| p.first() == Some(&wiped_id)).remove(0);

        let mut first = client(&cluster, &recorder, 0);
        let (_, outcome) = first.put(wiped, &key, None).await;
        let Outcome::Written { dot: before, .. } = outcome else {
            panic!("{outcome:?}")
        };
        settle(&cluster, std::slice::from_ref(&key)).await;

        cluster.wipe(wiped).await.unwrap();
        let pulled = cluster
            .wait_until(Duration::from_secs(10), |c| {
                c.node(wiped)
                    .is_some_and(|n| n.membership().layout().is_some())
            })
            .await;
        assert!(pulled);
        let mut second = client(&cluster, &recorder, 1);
        let (_, outcome) = second.put(wiped, &key, None).await;
        let Outcome::Written { dot: again, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(before, again, "the wiped node minted its old dot again");

        settle(&cluster, std::slice::from_ref(&key)).await;
        let check = cluster.check(&recorder.history(), &bucket(), std::slice::from_ref(&key));
        assert!(
            check
                .violations
                .iter()
                .any(|v| matches!(v, Violation::DotReused { .. })),
            "{:?}",
            check.violations
        );
        // One of the two acknowledged writes is gone: its dot now names the
        // other's value.
        assert!(
            check
                .violations
                .iter()
                .any(|v| matches!(v, Violation::LostWrite { .. })),
            "{:?}",
            check.violations
        );
        cluster.shutdown().await;
    });
}

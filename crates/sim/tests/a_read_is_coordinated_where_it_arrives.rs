//! A read mints no version, so the node a client asks coordinates it even
//! if it holds no replica of the key: it asks the replicas itself rather
//! than forwarding to one. So a node that reaches R replicas serves the
//! read, whether or not the replicas reach one another (forwarded, the
//! read failed: the primary it went to could reach no second replica).
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_clean, block_on, client, cluster, keys_where, settle};
use gyre_sim::{ClusterConfig, Outcome, bucket};

#[test]
fn a_node_without_a_replica_reads_from_replicas_that_cannot_reach_each_other() {
    block_on(async {
        let (cluster, recorder) = cluster(ClusterConfig::default(), 3).await;
        let asked = 0;
        let asked_id = cluster.id(asked);
        let keys = keys_where(&cluster, "elsewhere-", 5, |p| !p.contains(&asked_id));
        let mut c = client(&cluster, &recorder, 0);
        let mut written = Vec::new();
        for key in &keys {
            let (value, put) = c.put(asked, key, None).await;
            assert!(matches!(put, Outcome::Written { .. }), "{put:?}");
            written.push(value);
        }

        // Every other node is cut off from every other but the asked one.
        let others: Vec<_> = (0..cluster.len())
            .filter(|&i| i != asked)
            .map(|i| cluster.id(i))
            .collect();
        for (n, &a) in others.iter().enumerate() {
            for &b in &others[n + 1..] {
                cluster.network().partition(a, b);
            }
        }
        for (key, value) in keys.iter().zip(&written) {
            let read = c.get(asked, key).await;
            assert!(
                matches!(&read, Outcome::Read { values, .. } if values == std::slice::from_ref(value)),
                "{read:?}"
            );
        }

        cluster.heal();
        settle(&cluster, &keys).await;
        let check = cluster.check(&recorder.history(), &bucket(), &keys);
        assert_clean(&check, &recorder);
        cluster.shutdown().await;
    });
}

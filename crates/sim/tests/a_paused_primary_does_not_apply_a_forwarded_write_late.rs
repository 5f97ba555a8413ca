//! Forwarding never waits on the dead, and never applies a write twice
//! (issue 23). A node that is not a replica of a key forwards its writes
//! to a primary (its reads it coordinates itself, from the replicas).
//! When the first primary is paused (as by SIGSTOP: what is sent to it
//! arrives when it resumes), neither waits for it: a read is answered by
//! the other two replicas, and after the hedge delay a write goes on to the
//! next primary, which starts it only with the forwarder's permit,
//! given to the first primary that asks. When the paused primary wakes and
//! asks for the permit of the write it was sent, it is refused: the write
//! is not applied a second time, and not after a later write that
//! superseded it.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{assert_clean, block_on, client, cluster, keys_where, settle};
use gyre_sim::{ClusterConfig, Outcome, bucket};

/// How long the first primary is paused: longer than any hedge, shorter
/// than the clients' 5 s timeout.
const PAUSE: Duration = Duration::from_secs(3);

#[test]
fn a_paused_primary_does_not_apply_a_forwarded_write_late() {
    block_on(async {
        let (cluster, recorder) = cluster(ClusterConfig::default(), 7).await;
        let forwarder = 0;
        let me = cluster.id(forwarder);
        let key = keys_where(&cluster, "cart-", 1, |p| !p.contains(&me)).remove(0);
        let primaries: Vec<usize> = cluster
            .primaries(&bucket(), &key)
            .iter()
            .map(|&p| cluster.index_of(p).unwrap())
            .collect();
        let (mut alice, mut bob) = (
            client(&cluster, &recorder, 0),
            client(&cluster, &recorder, 1),
        );
        let (v0, put) = alice.put(primaries[1], &key, None).await;
        assert!(matches!(put, Outcome::Written { .. }), "{put:?}");
        settle(&cluster, std::slice::from_ref(&key)).await;

        // The primary the forwarder asks first stops.
        let paused = primaries[0];
        cluster.network().pause_inbound(cluster.id(paused), PAUSE);

        // A read through the forwarder: answered by the other replicas.
        let start = cluster.now();
        let read = alice.get(forwarder, &key).await;
        let took = cluster.now() - start;
        assert!(
            matches!(&read, Outcome::Read { values, .. } if values == std::slice::from_ref(&v0)),
            "{read:?}"
        );
        assert!(
            took < PAUSE / 2,
            "the read waited {took:?} for the paused primary"
        );

        // A write through the forwarder: taken by the next primary, which
        // asked for the permit first.
        let start = cluster.now();
        let (v1, put) = alice.put(forwarder, &key, alice.context(&key)).await;
        let took = cluster.now() - start;
        assert!(matches!(put, Outcome::Written { .. }), "{put:?}");
        assert!(
            took < PAUSE / 2,
            "the write waited {took:?} for the paused primary"
        );

        // A later write supersedes it, while the paused primary still
        // sleeps with the forwarded write in its queue.
        let read = bob.get(primaries[2], &key).await;
        assert!(
            matches!(&read, Outcome::Read { values, .. } if values == std::slice::from_ref(&v1)),
            "{read:?}"
        );
        let (v2, put) = bob.put(primaries[2], &key, bob.context(&key)).await;
        assert!(matches!(put, Outcome::Written { .. }), "{put:?}");

        // The paused primary wakes, asks for the write's permit, and is
        // refused.
        tokio::time::sleep(PAUSE).await;
        settle(&cluster, std::slice::from_ref(&key)).await;
        for &i in &primaries {
            let read = bob.get(i, &key).await;
            assert!(
                matches!(&read, Outcome::Read { values, .. } if values == std::slice::from_ref(&v2)),
                "through node {i}: {read:?} (v1 was {v1:?}, v2 {v2:?})"
            );
        }
        let check = cluster.check(&recorder.history(), &bucket(), std::slice::from_ref(&key));
        assert_clean(&check, &recorder);
        cluster.shutdown().await;
    });
}

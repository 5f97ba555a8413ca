//! Concurrent writers produce siblings; a put with the context of a read
//! that saw them all resolves them to one value.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_clean, block_on, client, cluster, keys_where, settle};
use gyre_sim::{ClusterConfig, Outcome, bucket};

#[test]
fn concurrent_writers_make_siblings_that_a_later_put_resolves() {
    block_on(async {
        let (cluster, recorder) = cluster(ClusterConfig::default(), 3).await;
        let key = keys_where(&cluster, "cart-", 1, |_| true).remove(0);
        let primaries: Vec<usize> = cluster
            .primaries(&bucket(), &key)
            .iter()
            .map(|&p| cluster.index_of(p).unwrap())
            .collect();
        let (mut alice, mut bob, mut carol) = (
            client(&cluster, &recorder, 0),
            client(&cluster, &recorder, 1),
            client(&cluster, &recorder, 2),
        );

        // Both read the empty key, then write with what they read, at the
        // same moment, through two different primaries: neither saw the
        // other's write.
        alice.get(primaries[0], &key).await;
        bob.get(primaries[1], &key).await;
        let (ctx_a, ctx_b) = (alice.context(&key), bob.context(&key));
        let ((va, a), (vb, b)) = tokio::join!(
            alice.put(primaries[0], &key, ctx_a),
            bob.put(primaries[1], &key, ctx_b),
        );
        let (Outcome::Written { dot: da, .. }, Outcome::Written { dot: db, .. }) = (&a, &b) else {
            panic!("{a:?} {b:?}");
        };
        assert_ne!(da.node, db.node);
        settle(&cluster, std::slice::from_ref(&key)).await;

        // Carol sees both, and resolves them with her read's context.
        let Outcome::Read { mut values, .. } = carol.get(primaries[2], &key).await else {
            panic!("read failed");
        };
        values.sort();
        let mut expected = vec![va, vb];
        expected.sort();
        assert_eq!(values, expected, "both concurrent writes are siblings");
        let context = carol.context(&key);
        let (resolved, outcome) = carol.put(primaries[1], &key, context).await;
        assert!(matches!(outcome, Outcome::Written { .. }), "{outcome:?}");
        settle(&cluster, std::slice::from_ref(&key)).await;

        for &i in &primaries {
            let read = carol.get(i, &key).await;
            assert!(
                matches!(&read, Outcome::Read { values, .. } if values == std::slice::from_ref(&resolved)),
                "{read:?}"
            );
        }
        let check = cluster.check(&recorder.history(), &bucket(), std::slice::from_ref(&key));
        assert_clean(&check, &recorder);
        assert_eq!(check.stats.superseded, 2);
        cluster.shutdown().await;
    });
}

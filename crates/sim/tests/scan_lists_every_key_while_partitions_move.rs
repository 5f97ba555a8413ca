//! A key listing (`SCAN`) walks the ring with a cursor that is a key hash.
//! Every key written before a walk starts is listed by it: with a node
//! crashed (each page is the union of a read quorum of replicas), and
//! while a layout change moves partitions to two joining nodes (reads, and
//! so listings, stay on the old replicas until the new ones hold the data;
//! a cursor is a hash, so any replica resumes it).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{block_on, client, cluster};
use gyre_membership::Change;
use gyre_sim::{Cluster, ClusterConfig, Outcome, bucket};
use gyre_types::Key;

/// One whole walk through node `via`, `count` keys a page: every key seen,
/// and how many pages it took.
async fn walk(cluster: &Cluster, via: usize, count: usize) -> (BTreeSet<Key>, usize) {
    let node = cluster.node(via).unwrap();
    let mut seen = BTreeSet::new();
    let mut cursor = 0;
    let mut pages = 0;
    loop {
        let page = node
            .replication()
            .list_keys(&bucket(), cursor, count)
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.keys);
        cursor = page.cursor;
        if cursor == 0 {
            return (seen, pages);
        }
    }
}

#[test]
fn every_key_written_before_a_walk_is_listed_by_it() {
    block_on(async {
        let config = ClusterConfig {
            nodes: 4,
            spares: 2,
            ..ClusterConfig::default()
        };
        let (cluster, recorder) = cluster(config, 5).await;
        let mut writer = client(&cluster, &recorder, 0);
        let mut written = BTreeSet::new();
        for i in 0..120 {
            let key = Key::new(format!("user:{i}").into_bytes()).unwrap();
            let (_, outcome) = writer.put(i % 4, &key, None).await;
            assert!(matches!(outcome, Outcome::Written { .. }), "{outcome:?}");
            written.insert(key);
        }
        // Deleted and expired keys are not listed.
        let gone = Key::new(b"gone".to_vec()).unwrap();
        writer.put(0, &gone, None).await;
        // Deleted with what a read returned: a blind delete through another
        // node may be concurrent with the put (a sibling beside the value).
        let Outcome::Read { context, .. } = writer.get(1, &gone).await else {
            panic!("gone not read");
        };
        assert!(matches!(
            writer.delete(1, &gone, Some(context)).await,
            Outcome::Written { .. }
        ));
        let brief = Key::new(b"brief".to_vec()).unwrap();
        writer
            .put_expiring(0, &brief, None, Some(Duration::from_millis(10)))
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;

        let (seen, pages) = walk(&cluster, 1, 7).await;
        assert_eq!(seen, written);
        assert!(pages > 1);

        // One node down: a read quorum of each partition still answers.
        assert!(cluster.crash(3).await);
        cluster
            .wait_until(Duration::from_secs(10), |c| !c.sees_up(0, 3))
            .await;
        let (seen, _) = walk(&cluster, 0, 13).await;
        assert_eq!(seen, written);
        cluster.restart(3).unwrap();
        cluster
            .wait_until(Duration::from_secs(10), |c| c.all_up())
            .await;

        // Two nodes join: walks run while partitions move, through every
        // node, and each lists everything written before it started.
        let spares = [cluster.id(4), cluster.id(5)];
        cluster
            .change(&[Change::Join(spares[0]), Change::Join(spares[1])])
            .unwrap();
        let mut walks = 0;
        let mut during_change = 0;
        while walks < 40 {
            let via = walks % 4;
            let changing = cluster
                .node(via)
                .and_then(|n| n.membership().routing())
                .is_some_and(|r| r.is_changing());
            let (seen, _) = walk(&cluster, via, 5 + walks).await;
            let missing: Vec<_> = written.difference(&seen).collect();
            assert!(
                missing.is_empty(),
                "walk {walks} via {via} missed {missing:?}"
            );
            walks += 1;
            during_change += usize::from(changing);
            if !changing && during_change > 0 {
                break;
            }
        }
        assert!(during_change > 0, "no walk ran during the change");
        cluster.shutdown().await;
    });
}

//! A node that was down while a change passed every barrier (they do not
//! wait for a node that is down and leaves the layout) comes back with the
//! layouts it held, and coordinates at once: a read asks every primary of
//! its old read layout, itself among them. Its own replica missed every
//! write made meanwhile, and so may another of the old set that is still a
//! replica under the new layout. Those two must not make a read quorum: a
//! replica refuses a read routed with a layout it retired. Before that
//! check, the read here returned the value overwritten while the node was
//! down. Writes likewise: a replica refuses a write routed with a layout it
//! retired, so the node's own copy and one of a replica that dropped the
//! key or is no longer where reads look do not acknowledge it.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{assert_clean, block_on, client, cluster, crash_and_notice, keys_where, settle};
use gyre_membership::Change;
use gyre_sim::{Cluster, ClusterConfig, Outcome, bucket};
use gyre_types::NodeId;

/// Whether every running node uses the one newest layout.
fn retired_everywhere(cluster: &Cluster) -> bool {
    let Some(newest) = cluster.layout().map(|l| l.version()) else {
        return false;
    };
    cluster.running().into_iter().all(|i| {
        cluster.node(i).is_some_and(|n| {
            n.membership().with(|core, _| {
                core.history().len() == 1 && core.layout().map(|l| l.version()) == Some(newest)
            })
        })
    })
}

#[test]
fn a_node_back_with_a_retired_layout_reads_nothing_stale() {
    block_on(async {
        let config = ClusterConfig {
            nodes: 4,
            ..ClusterConfig::default()
        };
        let (cluster, recorder) = cluster(config, 11).await;
        let away = 3;
        let away_id = cluster.id(away);
        // A key the away node replicates, with two other replicas: `stale`
        // will miss the second write, `fresh` takes it.
        let key = keys_where(&cluster, "back-", 1, |p| p.contains(&away_id)).remove(0);
        let old_set: Vec<NodeId> = cluster.primaries(&bucket(), &key);
        let others: Vec<usize> = old_set
            .iter()
            .filter(|&&p| p != away_id)
            .map(|&p| cluster.index_of(p).unwrap())
            .collect();
        let (stale, fresh) = (others[0], others[1]);
        let spare = (0..4).find(|i| ![away, stale, fresh].contains(i)).unwrap();
        // A key the away node and `stale` replicate (in the old layout).
        let stale_id = cluster.id(stale);
        let written = keys_where(&cluster, "back-written-", 1, |p| {
            p.contains(&away_id) && p.contains(&stale_id)
        })
        .remove(0);
        let mut c = client(&cluster, &recorder, 0);
        let (_, put) = c.put(fresh, &key, None).await;
        assert!(matches!(put, Outcome::Written { .. }), "{put:?}");

        // The node goes down, and leaves the layout while it is away: the
        // three left replicate every key, and retire the old layout.
        crash_and_notice(&cluster, away).await;
        cluster.change(&[Change::Leave(away_id)]).unwrap();
        let retired = cluster
            .wait_until(Duration::from_secs(60), retired_everywhere)
            .await;
        assert!(retired, "{:?}", cluster.unsettled_layouts());

        // `stale` is cut off, and the key is overwritten without it.
        for other in [cluster.id(fresh), cluster.id(spare)] {
            cluster.network().partition(stale_id, other);
            cluster.network().partition(away_id, other);
        }
        let Outcome::Read { context, .. } = c.get(fresh, &key).await else {
            panic!("the key does not read back on the new replicas")
        };
        let (second, put) = c.put(fresh, &key, Some(context)).await;
        assert!(matches!(put, Outcome::Written { .. }), "{put:?}");

        // The node comes back, reaching `stale` only, and is asked at once
        // to read the key and to write one that it and `stale` replicated
        // under the old layout.
        let mut writer = client(&cluster, &recorder, 1);
        assert!(cluster.restart(away).unwrap());
        let (read, (_, put)) = tokio::join!(c.get(away, &key), writer.put(away, &written, None));
        // Its old write set is itself (out of the newest layout) and
        // `stale`: taken there, the write would be acknowledged with one
        // copy where reads look, fewer than W.
        assert!(!matches!(put, Outcome::Written { .. }), "{put:?}");
        let values = match &read {
            Outcome::Read { values, .. } => Some(values.clone()),
            _ => None,
        };
        assert!(
            values.is_none() || values == Some(vec![second.clone()]),
            "read {read:?}: the second write ({second:?}) was acknowledged before it"
        );

        cluster.heal();
        let keys = [key, written];
        settle(&cluster, &keys).await;
        assert_clean(
            &cluster.check(&recorder.history(), &bucket(), &keys),
            &recorder,
        );
        cluster.shutdown().await;
    });
}

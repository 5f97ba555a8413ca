//! A node refuses replica reads of a partition it holds under no layout in
//! use, rather than answering "nothing here": once a leave has moved a
//! partition away and the leaver has dropped it, a read routed with the old
//! layout (by a coordinator that had not switched yet, or a node back with
//! an old layout) counts the leaver as failed, never as a replica that
//! holds nothing of the key, so it cannot return a stale "not found".
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{block_on, client, cluster, keys_where};
use gyre_membership::Change;
use gyre_sim::{ClusterConfig, Outcome, bucket};
use gyre_transport::Transport;
use gyre_wire::{ErrorKind, Request, Response};

#[test]
fn a_replica_that_dropped_a_partition_refuses_reads_of_it() {
    block_on(async {
        let config = ClusterConfig {
            nodes: 4,
            ..ClusterConfig::default()
        };
        let (cluster, recorder) = cluster(config, 9).await;
        let leaver = 3;
        let leaver_id = cluster.id(leaver);
        let key = keys_where(&cluster, "moved-", 1, |p| p.contains(&leaver_id)).remove(0);
        let old = cluster.layout().unwrap().version();
        let mut c = client(&cluster, &recorder, 0);
        let (value, put) = c.put(0, &key, None).await;
        assert!(matches!(put, Outcome::Written { .. }), "{put:?}");

        cluster.change(&[Change::Leave(leaver_id)]).unwrap();
        let settled = cluster
            .wait_until(Duration::from_secs(60), |c| {
                c.unsettled_layouts().is_empty()
            })
            .await;
        assert!(settled, "{:?}", cluster.unsettled_layouts());
        assert!(
            cluster.replica_state(leaver, &bucket(), &key).is_none(),
            "not dropped"
        );

        // Asked as by a coordinator still routing with the old layout.
        let asker = cluster.node(0).unwrap();
        let transport = asker.membership().transport();
        let timeout = Duration::from_secs(1);
        let get = Request::ReplicaGet {
            layout: old,
            bucket: bucket(),
            key: key.clone(),
        };
        let answer = transport.request(leaver_id, get, timeout).await.unwrap();
        assert!(
            matches!(&answer, Response::Error(e) if e.kind == ErrorKind::WrongLayout),
            "{answer:?}"
        );
        let hash = gyre_types::KeyHash::of(&bucket(), &key).as_u64();
        let scan = Request::ScanKeys {
            bucket: bucket(),
            from: hash,
            limit: 10,
        };
        let answer = transport.request(leaver_id, scan, timeout).await.unwrap();
        assert!(
            matches!(&answer, Response::Error(e) if e.kind == ErrorKind::WrongLayout),
            "{answer:?}"
        );
        // The replicas that hold it answer, and the key reads back.
        let read = c.get(0, &key).await;
        assert!(
            matches!(&read, Outcome::Read { values, .. } if values == std::slice::from_ref(&value)),
            "{read:?}"
        );
        cluster.shutdown().await;
    });
}

//! A node says it routes with a new layout (what the prepare barrier of a
//! change waits for) only once the writes it routed with older layouts are
//! over. Without that, a write routed just before the change, slow to reach
//! the old replicas, could land there after the new replicas had copied
//! and verified the partition: acknowledged, yet missing from the replicas
//! reads move to. Garage's `ack_lock` closes the same gap.
//!
//! A primary's messages to the other replicas of a key are cut, so a write
//! it coordinates stays in flight (to them, until the request timeout)
//! while a change is committed and the primary adopts it: it routes with
//! the new layout at once, and says so only when that write is over.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{block_on, cluster, keys_where};
use gyre_membership::{Change, LayoutStamp};
use gyre_sim::{ClusterConfig, bucket};
use gyre_wire::{ClientOp, Expiry};

#[test]
fn a_layout_is_announced_only_after_the_writes_routed_before_it() {
    block_on(async {
        let config = ClusterConfig {
            nodes: 4,
            spares: 1,
            ..ClusterConfig::default()
        };
        let (cluster, _) = cluster(config, 3).await;
        let key = keys_where(&cluster, "slow-", 1, |_| true).remove(0);
        let primaries = cluster.primaries(&bucket(), &key);
        let (coordinator, others) = (primaries[0], &primaries[1..]);
        let c = cluster.index_of(coordinator).unwrap();
        for &other in others {
            cluster.network().partition_one_way(coordinator, other);
        }
        let node = cluster.node(c).unwrap();
        let before = node.membership().with(|core, _| core.layout_stamp());

        // The write is routed with the layout in use now…
        let put = ClientOp::Put {
            bucket: bucket(),
            key: key.clone(),
            context: None,
            value: Bytes::from("slow"),
            w: None,
            expiry: Expiry::Never,
        };
        let write = tokio::spawn({
            let node = std::sync::Arc::clone(&node);
            async move { node.replication().client(put).await }
        });
        tokio::task::yield_now().await;
        // …then a change is committed, and the coordinator adopts it.
        let spare = cluster.id(cluster.len() - 1);
        cluster.change(&[Change::Join(spare)]).unwrap();
        let new = LayoutStamp::of(&cluster.layout().unwrap());
        let adopted = cluster
            .wait_until(Duration::from_secs(5), |_| {
                node.membership().with(|core, _| core.layout_stamp()) == Some(new)
            })
            .await;
        assert!(adopted, "the coordinator did not adopt the change");
        assert!(!write.is_finished(), "the write was over before the change");
        // It routes with it, but does not say so while that write is out.
        let said = node.membership().with(|core, _| core.state().layout);
        assert_eq!(
            said, before,
            "said it routes with {new} while a write routed with {before:?} was in flight"
        );

        // Once the write is over (acknowledged through a fallback, or not),
        // it says so, and the change goes on.
        write.await.unwrap().ok();
        let said = cluster
            .wait_until(Duration::from_secs(5), |_| {
                node.membership().with(|core, _| core.state().layout) == Some(new)
            })
            .await;
        assert!(said, "never said it routes with {new}");
        cluster.network().heal();
        let settled = cluster
            .wait_until(Duration::from_secs(60), |c| {
                c.unsettled_layouts().is_empty()
            })
            .await;
        assert!(settled, "{:?}", cluster.unsettled_layouts());
        cluster.shutdown().await;
    });
}

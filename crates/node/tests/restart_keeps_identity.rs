//! A node's id and layout survive a restart on its data directory (fjall),
//! a data directory refuses a node of another id, and a node an operator
//! removed is refused when it comes back, and refuses everything itself.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gyre_membership::{Change, Config, Membership, NodeInfo};
use gyre_node::{BootError, Node, NodeConfig, boot};
use gyre_replication::Replica;
use gyre_storage::{Durability, FjallStore, Store, StoreConfig};
use gyre_transport::{MemNetwork, MemTransport, Transport};
use gyre_types::{BucketName, Key, NodeId, ZoneName};
use gyre_wire::{ClientOp, ClientReply, ErrorKind, Expiry, Request, Response};

type TestNode = Node<MemTransport, Arc<FjallStore>>;

fn open(dir: &std::path::Path) -> Arc<FjallStore> {
    let config = StoreConfig {
        durability: Durability::None,
        ..StoreConfig::default()
    };
    Arc::new(FjallStore::open(dir, config).unwrap())
}

fn start(
    network: &MemNetwork,
    id: NodeId,
    store: Arc<FjallStore>,
    generation: u64,
    seeds: Vec<String>,
) -> Arc<TestNode> {
    let booted = boot(&store, id).unwrap();
    let (transport, inbound) = network.join(id);
    let me = NodeInfo {
        id,
        peer_addr: id.to_string(),
        client_addrs: Vec::new(),
        zone: ZoneName::new(format!("z{id}")).unwrap(),
        capacity: 100,
    };
    let config = Config {
        gossip_interval: Duration::from_millis(100),
        ..Config::default()
    };
    let core = Membership::new(me, generation, booted.layout, config, id.as_u64())
        .unwrap()
        .with_self_removed(booted.removed);
    let replica = Replica::new(id, store, gyre_replication::Config::default()).unwrap();
    Node::start(
        core,
        replica,
        transport,
        inbound,
        seeds,
        0,
        NodeConfig::default(),
    )
}

/// Advances virtual time in 100 ms steps until `cond` holds (at most 60 s).
async fn until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..600 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not {what} within 60 s of virtual time");
}

#[test]
fn id_and_layout_survive_a_restart_and_a_foreign_store_is_refused() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let ids = [NodeId::new(1), NodeId::new(2)];
    runtime.block_on(async {
        let network = MemNetwork::new(3);
        let a = start(&network, ids[0], open(dirs[0].path()), 1, Vec::new());
        let b = start(
            &network,
            ids[1],
            open(dirs[1].path()),
            1,
            vec![ids[0].to_string()],
        );
        until("seeing each other", || {
            a.membership().is_up(ids[1]) && b.membership().is_up(ids[0])
        })
        .await;
        let admin = a.membership();
        for id in ids {
            admin.with(|core, _| core.stage(Change::Join(id))).unwrap();
        }
        let plan = admin.with(|core, _| core.plan()).unwrap();
        let stamp = plan.stamp();
        admin.commit(plan).unwrap();
        until("holding the layout on disk", || {
            [&a, &b].iter().all(|n| {
                n.replication()
                    .replica()
                    .store()
                    .layout()
                    .unwrap()
                    .is_some_and(|l| l.version() == stamp.version)
            })
        })
        .await;

        // Node 1 stops; its data directory is closed.
        a.shutdown().await;
        network.leave(ids[0]);
        drop(a);

        let store = open(dirs[0].path());
        let booted = boot(&store, ids[0]).unwrap();
        assert!(!booted.fresh);
        assert_eq!(
            booted.layout.as_ref().map(|l| l.version()),
            Some(stamp.version)
        );
        // The directory is node 1's: another id is refused.
        assert!(matches!(
            boot(&store, NodeId::new(9)),
            Err(BootError::NotMine { stored, .. }) if stored == ids[0]
        ));

        // Restarted with its layout and a greater generation: up again.
        let a = start(&network, ids[0], store, 2, vec![ids[1].to_string()]);
        assert_eq!(
            a.membership().layout().map(|l| l.version()),
            Some(stamp.version)
        );
        until("up again on both sides", || {
            a.membership().is_up(ids[1]) && b.membership().is_up(ids[0])
        })
        .await;
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn a_removed_node_that_comes_back_is_refused_and_refuses() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let ids = [NodeId::new(1), NodeId::new(2), NodeId::new(3)];
    let gone = ids[2];
    runtime.block_on(async {
        let network = MemNetwork::new(5);
        let mut nodes: Vec<_> = (0..3)
            .map(|i| {
                let seeds = if i == 0 {
                    Vec::new()
                } else {
                    vec![ids[0].to_string()]
                };
                start(&network, ids[i], open(dirs[i].path()), 1, seeds)
            })
            .collect();
        until("seeing each other", || {
            ids.iter()
                .all(|&id| nodes.iter().all(|n| n.membership().is_up(id)))
        })
        .await;
        let admin = Arc::clone(nodes[0].membership());
        for id in ids {
            admin.with(|core, _| core.stage(Change::Join(id))).unwrap();
        }
        admin
            .commit(admin.with(|core, _| core.plan()).unwrap())
            .unwrap();
        until("all holding the layout", || {
            nodes.iter().all(|n| n.membership().layout().is_some())
        })
        .await;
        let (bucket, key) = (
            BucketName::new("b").unwrap(),
            Key::new(b"k".to_vec()).unwrap(),
        );
        let put = ClientOp::Put {
            bucket: bucket.clone(),
            key: key.clone(),
            context: None,
            value: Bytes::from("v"),
            w: None,
            expiry: Expiry::Default,
        };
        let written = nodes[0].replication().client(put.clone()).await.unwrap();
        assert!(
            matches!(written, ClientReply::Written { .. }),
            "{written:?}"
        );

        // Node 3 stops, is seen down, and an operator removes it.
        let stopped = nodes.pop().unwrap();
        stopped.shutdown().await;
        network.leave(gone);
        drop(stopped);
        until("node 3 seen down", || !admin.is_up(gone)).await;
        admin
            .with(|core, _| core.stage(Change::Remove(gone)))
            .unwrap();
        let plan = admin.with(|core, _| core.plan()).unwrap();
        let removal = plan.stamp();
        admin.commit(plan).unwrap();
        until("the removal adopted", || {
            nodes.iter().all(|n| {
                n.membership()
                    .layout()
                    .is_some_and(|l| l.member(gone).is_none())
            })
        })
        .await;

        // It comes back on its data, with the layout it held.
        let back = start(
            &network,
            gone,
            open(dirs[2].path()),
            2,
            vec![ids[0].to_string()],
        );
        until("node 3 told it was removed", || {
            back.membership().with(|core, _| core.is_self_removed())
        })
        .await;
        // It serves no client and adopts nothing more.
        let refused = back.replication().client(put.clone()).await;
        assert!(
            matches!(refused, Err(gyre_replication::Error::Removed(id)) if id == gone),
            "{refused:?}"
        );
        let get = ClientOp::Get {
            bucket: bucket.clone(),
            key: key.clone(),
            r: None,
        };
        let refused = back.replication().client(get.clone()).await;
        assert!(
            matches!(refused, Err(gyre_replication::Error::Removed(_))),
            "{refused:?}"
        );
        assert_ne!(
            back.membership()
                .layout()
                .map(|l| gyre_membership::LayoutStamp::of(&l)),
            Some(removal)
        );
        // Peers refuse what it asks, saying why.
        let asked = back
            .membership()
            .transport()
            .request(ids[0], Request::Ping, Duration::from_secs(2))
            .await
            .unwrap();
        assert!(
            matches!(&asked, Response::Error(e) if e.kind == ErrorKind::Removed),
            "{asked:?}"
        );
        // And go on without it: they see it removed, never up.
        tokio::time::sleep(Duration::from_secs(5)).await;
        for n in &nodes {
            assert!(!n.membership().is_up(gone));
            let seen = n
                .membership()
                .with(|core, now| core.members(now).find(|m| m.id == gone).map(|m| m.removed));
            assert_eq!(seen, Some(true));
        }
        let read = nodes[1].replication().client(get.clone()).await.unwrap();
        assert!(
            matches!(&read, ClientReply::Values { values, .. } if values == &[Bytes::from("v")]),
            "{read:?}"
        );

        // Restarted once more, it refuses from its first moment, before
        // any peer has said a word.
        back.shutdown().await;
        network.leave(gone);
        drop(back);
        let store = open(dirs[2].path());
        assert!(boot(&store, gone).unwrap().removed);
        let again = start(&network, gone, store, 3, vec![ids[0].to_string()]);
        let refused = again.replication().client(put).await;
        assert!(
            matches!(refused, Err(gyre_replication::Error::Removed(_))),
            "{refused:?}"
        );
        again.shutdown().await;
        for n in &nodes {
            n.shutdown().await;
        }
    });
}

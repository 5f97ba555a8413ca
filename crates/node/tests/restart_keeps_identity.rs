//! A node's id and layout survive a restart on its data directory (fjall),
//! and a data directory refuses a node of another id.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use gyre_membership::{Change, Config, Membership, NodeInfo};
use gyre_node::{BootError, Node, NodeConfig, boot};
use gyre_replication::Replica;
use gyre_storage::{Durability, FjallStore, Store, StoreConfig};
use gyre_transport::{MemNetwork, MemTransport};
use gyre_types::{NodeId, ZoneName};

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
    let core = Membership::new(me, generation, booted.layout, config, id.as_u64()).unwrap();
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

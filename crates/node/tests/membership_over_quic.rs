//! Three nodes over real QUIC on loopback form a cluster from one seed,
//! agree on a committed layout, mark a killed node down, and mark it up
//! again when it restarts.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gyre_membership::{Change, Config, Membership, NodeInfo};
use gyre_node::{MembershipService, Node, NodeConfig};
use gyre_replication::Replica;
use gyre_ring::Layout;
use gyre_storage::{Durability, MemStore, StoreConfig};
use gyre_transport::tls::ClusterCa;
use gyre_transport::{QuicConfig, QuicTransport};
use gyre_types::{NodeId, ZoneName};

/// Longest wait for any one condition.
const PATIENCE: Duration = Duration::from_secs(30);

fn config() -> Config {
    // Ten times faster than the defaults, so the test takes seconds.
    Config {
        gossip_interval: Duration::from_millis(100),
        min_std_deviation: Duration::from_millis(50),
        acceptable_heartbeat_pause: Duration::from_millis(300),
        first_heartbeat_estimate: Duration::from_millis(100),
        layout_pull_timeout: Duration::from_millis(500),
        ..Config::default()
    }
}

type QuicNode = Node<QuicTransport, MemStore>;

/// Starts node `id` listening on `listen`, with `seeds`.
fn start(
    ca: &ClusterCa,
    id: u64,
    listen: SocketAddr,
    generation: u64,
    layout: Option<Layout>,
    seeds: Vec<SocketAddr>,
) -> Arc<QuicNode> {
    let node = NodeId::new(id);
    let mut quic = QuicConfig::new(listen, "test", ca.identity(node).unwrap());
    quic.idle_timeout = Duration::from_secs(2);
    quic.keep_alive = Duration::from_millis(300);
    let (transport, inbound) = QuicTransport::bind(quic).unwrap();
    let me = NodeInfo {
        id: node,
        peer_addr: transport.local_addr().unwrap().to_string(),
        client_addrs: Vec::new(),
        zone: ZoneName::new(format!("zone-{id}")).unwrap(),
        capacity: 100,
    };
    let core = Membership::new(me, generation, layout, config(), id).unwrap();
    let store = MemStore::new(StoreConfig {
        durability: Durability::None,
        ..StoreConfig::default()
    })
    .unwrap();
    let replica = Replica::new(node, store, gyre_replication::Config::default()).unwrap();
    let seeds = seeds.iter().map(ToString::to_string).collect();
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

/// Waits until `cond` holds on `node`, re-checking at each of its events.
async fn until(
    node: &QuicNode,
    what: &str,
    cond: impl Fn(&MembershipService<QuicTransport>) -> bool,
) {
    let node = node.membership();
    let mut events = node.subscribe();
    let deadline = Instant::now() + PATIENCE;
    while !cond(node) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("node {}: events ended ({e}) before {what}", node.id()),
            Err(_) => panic!("node {}: not {what} within {PATIENCE:?}", node.id()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_form_a_cluster_detect_a_crash_and_a_restart() {
    let ca = ClusterCa::generate("test").unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let a = start(&ca, 1, any, 1, None, Vec::new());
    let seed = a.membership().transport().local_addr().unwrap();
    let b = start(&ca, 2, any, 1, None, vec![seed]);
    let c = start(&ca, 3, any, 1, None, vec![seed]);
    let c_addr = c.membership().transport().local_addr().unwrap();
    let ids = [1, 2, 3].map(NodeId::new);

    // One seed is enough for everyone to learn of everyone.
    for node in [&a, &b, &c] {
        let me = node.membership().id();
        until(node, "seeing every other node up", |n| {
            ids.iter().filter(|&&id| id != me).all(|&id| n.is_up(id))
        })
        .await;
    }

    // A layout committed on one node reaches the others.
    for id in ids {
        a.membership()
            .with(|core, _| core.stage(Change::Join(id)))
            .unwrap();
    }
    let plan = a.membership().with(|core, _| core.plan()).unwrap();
    let stamp = plan.stamp();
    a.membership().commit(plan).unwrap();
    for node in [&a, &b, &c] {
        until(node, "holding the committed layout", |n| {
            n.with(|core, _| core.layout_stamp()) == Some(stamp)
        })
        .await;
    }
    let layout = Layout::clone(&c.membership().layout().unwrap());
    assert_eq!(layout.members().len(), 3);

    // Killed: the others mark it down.
    let killed = Instant::now();
    c.shutdown().await;
    c.membership().transport().shutdown().await;
    drop(c);
    for node in [&a, &b] {
        until(node, "seeing node 3 down", |n| !n.is_up(ids[2])).await;
    }
    println!("node 3 declared down by both after {:?}", killed.elapsed());

    // Restarted on the same address, with its layout and a new generation:
    // up again everywhere.
    let restarted = Instant::now();
    let c = start(&ca, 3, c_addr, 2, Some(layout), vec![seed]);
    for node in [&a, &b] {
        until(node, "seeing node 3 up again", |n| n.is_up(ids[2])).await;
    }
    until(&c, "seeing nodes 1 and 2 up", |n| {
        n.is_up(ids[0]) && n.is_up(ids[1])
    })
    .await;
    println!("node 3 up again everywhere after {:?}", restarted.elapsed());
    assert_eq!(
        c.membership().with(|core, _| core.layout_stamp()),
        Some(stamp)
    );

    for node in [a, b, c] {
        node.shutdown().await;
        node.membership().transport().shutdown().await;
    }
}

//! Gyre's membership: who is in the cluster, who is up, and which ring
//! layout is current. A pure state machine (no IO, no clock, no async) that
//! the node drives with tokio and the simulator drives on a virtual clock.
//!
//! # The model
//!
//! - **Gossip.** Every node owns one [`NodeState`] (addresses, zone,
//!   capacity, [`NodeStatus`], the stamp of the layout it holds) and only it
//!   makes new versions of it. A state is ordered by `(generation, version)`
//!   for its fields and `(generation, heartbeat)` for liveness; the driver
//!   picks a greater generation at each start, so a restarted node's state
//!   wins over its previous life's. Every [`Membership::tick`] bumps the
//!   heartbeat and opens a round with one random live peer (now and then also
//!   an unreachable node and a seed): a Cassandra-style scuttlebutt exchange
//!   of digests, then only what is newer ([`Message`]). A new state reaches
//!   every node in O(log n) rounds.
//! - **Failure detection.** Each node runs a phi-accrual detector per peer
//!   on the arrival of that peer's heartbeat advances, and convicts it when
//!   phi passes [`Config::phi_threshold`]. Verdicts are local to each node.
//!   Hearsay never brings a peer back up: a convicted (or new) peer is up
//!   again only once it answered this node directly, so a stale heartbeat
//!   relayed late cannot resurrect a crashed node.
//! - **Seeds.** The driver resolves configured seed addresses to node ids
//!   and [`Membership::introduce`]s them; the core gossips with seeds until
//!   it knows live peers, and now and then afterwards.
//! - **Explicit layout changes.** Gossip carries liveness for everybody, but
//!   the layout changes only by an operator's [`Change`]s: staged, turned into
//!   a [`Plan`] (the next [`gyre_ring::Layout`] and its
//!   [`gyre_ring::LayoutDiff`]), and committed. A node that sees a peer
//!   advertise a greater [`LayoutStamp`] asks its driver to pull that layout
//!   ([`Output::PullLayout`]). Stamps order by `(version, digest)`, so two
//!   commits made concurrently converge on the same winner everywhere.
//! - **Removal.** A node whose data is lost comes back with a fresh id; an
//!   operator removes the old one. A removal is a [`Tombstone`] that wins over
//!   any state of the id for [`Config::removed_ttl`], so nodes that still
//!   remember the id cannot gossip it back.
//!
//! Nothing from the network can panic the core or change this node's own
//! state: every list is read only up to the limits in [`Config`], and claims
//! about this node only make it move its versions past them.
//!
//! # Example
//!
//! Two nodes, their messages delivered by hand, until each sees the other up;
//! then the first layout, committed on one node and pulled by the other.
//!
//! ```
//! use std::time::Duration;
//!
//! use gyre_membership::{Change, Config, Membership, NodeInfo, Output};
//! use gyre_types::{NodeId, ZoneName};
//!
//! let info = |id: u64| NodeInfo {
//!     id: NodeId::new(id),
//!     peer_addr: format!("10.0.0.{id}:7000"),
//!     client_addrs: vec![format!("10.0.0.{id}:6379")],
//!     zone: ZoneName::new(format!("zone-{id}")).unwrap(),
//!     capacity: 1,
//! };
//! let a = Membership::new(info(1), 1, None, Config::default(), 11)?;
//! let mut b = Membership::new(info(2), 1, None, Config::default(), 22)?;
//! b.introduce(a.id(), "10.0.0.1:7000".to_owned()); // a is b's seed
//! let mut nodes = [a, b];
//!
//! /// Carries out outputs (messages and layout pulls) until none are left.
//! fn deliver(nodes: &mut [Membership; 2], now: Duration, mut work: Vec<(NodeId, Output)>) {
//!     while let Some((me, output)) = work.pop() {
//!         match output {
//!             Output::Send { to, msg } => {
//!                 let peer = nodes.iter_mut().find(|n| n.id() == to).unwrap();
//!                 work.extend(peer.receive(now, me, msg).into_iter().map(|o| (to, o)));
//!             }
//!             Output::PullLayout { from, .. } => {
//!                 let layout = nodes.iter().find(|n| n.id() == from).unwrap().layout().cloned();
//!                 let node = nodes.iter_mut().find(|n| n.id() == me).unwrap();
//!                 work.extend(node.layout_received(now, layout.unwrap()).into_iter().map(|o| (me, o)));
//!             }
//!             Output::Event(event) => println!("{me}: {event:?}"),
//!         }
//!     }
//! }
//!
//! let mut now = Duration::ZERO;
//! let both_up = |n: &[Membership; 2], now| n[0].is_up(n[1].id(), now) && n[1].is_up(n[0].id(), now);
//! while !both_up(&nodes, now) {
//!     now += Duration::from_secs(1);
//!     for i in 0..2 {
//!         let id = nodes[i].id();
//!         let work = nodes[i].tick(now).into_iter().map(|o| (id, o)).collect();
//!         deliver(&mut nodes, now, work);
//!     }
//!     assert!(now < Duration::from_secs(10));
//! }
//!
//! // An operator makes the first layout on node 1.
//! nodes[0].stage(Change::Join(NodeId::new(1)))?;
//! nodes[0].stage(Change::Join(NodeId::new(2)))?;
//! let plan = nodes[0].plan()?;
//! assert_eq!(plan.layout().members().len(), 2);
//! let work = nodes[0].commit(now, plan)?.into_iter().map(|o| (NodeId::new(1), o)).collect();
//! deliver(&mut nodes, now, work);
//!
//! // Gossip tells node 2, which pulls the layout.
//! while nodes[1].layout_stamp() != nodes[0].layout_stamp() {
//!     now += Duration::from_secs(1);
//!     for i in 0..2 {
//!         let id = nodes[i].id();
//!         let work = nodes[i].tick(now).into_iter().map(|o| (id, o)).collect();
//!         deliver(&mut nodes, now, work);
//!     }
//! }
//! assert_eq!(nodes[1].layout().unwrap().version(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod change;
mod config;
mod error;
pub mod history;
mod membership;
mod msg;
mod phi;
mod rng;
mod stamp;

pub use change::{Change, Plan};
pub use config::{Config, MAX_ADDR_LEN, MAX_CLIENT_ADDRS, NodeInfo};
pub use error::{Error, Result};
pub use history::{MAX_HISTORY, Transition};
pub use membership::{Event, MemberView, Membership, Output};
pub use msg::{Digest, Heartbeat, MAX_LIST, MAX_STATES, Message, NodeState, NodeStatus, Tombstone};
pub use phi::MAX_PHI;
pub use stamp::{LayoutStamp, layout_digest};

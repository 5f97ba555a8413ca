//! A Gyre node: the services that run the pure cores over real IO.
//!
//! - [`MembershipService`] runs a node's [`gyre_membership::Membership`]: a
//!   gossip round on a timer, layout pulls, seeds resolved to node ids,
//!   events logged and broadcast; it is also the [`ClusterView`] replication
//!   routes with.
//! - [`ReplicationService`] runs [`gyre_replication`]: client operations
//!   coordinated here (reads always; writes to a key this node holds no
//!   replica of are forwarded to a primary), peers' replica requests
//!   served, hinted handoff and anti-entropy sessions.
//! - [`Node`] composes both over one transport and dispatches what peers
//!   send; hints and anti-entropy run in its background.
//!
//! Every service is generic over the transport ([`Peers`]: QUIC, or the
//! in-memory network of the simulator) and the store, and uses tokio's
//! clock, so the simulator runs the very same code on virtual time.
//!
//! ```
//! use std::time::Duration;
//!
//! use bytes::Bytes;
//! use gyre_membership::{Change, Config, Membership, NodeInfo};
//! use gyre_node::{Node, NodeConfig};
//! use gyre_replication::Replica;
//! use gyre_storage::{Durability, MemStore, StoreConfig};
//! use gyre_transport::MemNetwork;
//! use gyre_types::{BucketName, Key, NodeId, ZoneName};
//! use gyre_wire::{ClientOp, ClientReply, Expiry};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
//! runtime.block_on(async {
//!     let network = MemNetwork::new(7);
//!     let ids = [NodeId::new(1), NodeId::new(2)];
//!     let mut nodes = Vec::new();
//!     for id in ids {
//!         let (transport, inbound) = network.join(id);
//!         let me = NodeInfo { id, peer_addr: id.to_string(), client_addrs: Vec::new(), zone: ZoneName::new("z1")?, capacity: 100 };
//!         let core = Membership::new(me, 1, None, Config::default(), id.as_u64())?;
//!         let store = MemStore::new(StoreConfig { durability: Durability::None, ..StoreConfig::default() })?;
//!         let replica = Replica::new(id, store, gyre_replication::Config::default())?;
//!         // Node 2 knows node 1 as its seed (on the in-memory network a
//!         // node's address is its id).
//!         let seeds = if id == ids[1] { vec![ids[0].to_string()] } else { Vec::new() };
//!         nodes.push(Node::start(core, replica, transport, inbound, seeds, 0, NodeConfig::default()));
//!     }
//!     // Once they see each other, an operator commits a layout with both.
//!     while !nodes[0].membership().is_up(ids[1]) {
//!         tokio::time::sleep(Duration::from_millis(100)).await;
//!     }
//!     let admin = nodes[0].membership();
//!     for id in ids {
//!         admin.with(|core, _| core.stage(Change::Join(id)))?;
//!     }
//!     admin.commit(admin.with(|core, _| core.plan())?)?;
//!     while nodes[1].membership().layout().is_none() {
//!         tokio::time::sleep(Duration::from_millis(100)).await;
//!     }
//!
//!     // A write through one node is read through the other.
//!     let (bucket, key) = (BucketName::new("carts")?, Key::new(b"alice".to_vec())?);
//!     let put = ClientOp::Put { bucket: bucket.clone(), key: key.clone(), context: None, value: Bytes::from("3 apples"), w: None, expiry: Expiry::Default };
//!     assert!(matches!(nodes[0].replication().client(put).await?, ClientReply::Written { .. }));
//!     let get = ClientOp::Get { bucket, key, r: None };
//!     match nodes[1].replication().client(get).await? {
//!         ClientReply::Values { values, .. } => assert_eq!(values, [Bytes::from("3 apples")]),
//!         other => panic!("{other:?}"),
//!     }
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(())
//! # }
//! ```

mod background;
mod buckets;
mod drain;
mod handoff;
mod listing;
mod membership;
mod node;
mod outbound;
mod peers;
mod persist;
mod plan;
mod replication;
mod sweep;

use std::sync::Arc;

use gyre_replication::route::Routing;
use gyre_ring::Layout;
use gyre_types::NodeId;

pub use background::{DEFAULT_BACKGROUND_NICE, Offload};
pub use buckets::BucketCatalog;
pub use drain::Routed;
pub use gyre_handoff::{NodeEstimate, PlanEstimate};
pub use gyre_handoff::{PartitionTransfer, Stage, TransferProgress, TransferSummary};
pub use handoff::{DEFAULT_MAX_RATE, HandoffConfig, Transfers};
pub use listing::KeyListing;
pub use membership::MembershipService;
pub use node::{Node, NodeConfig};
pub use peers::Peers;
pub use persist::{Boot, BootError, boot};
pub use plan::CommitError;
pub use replication::{Counters, ReadReply, ReplicationService};
pub use sweep::SweepStats;

/// What a removed node logs when it learns it was removed, and at each
/// start after.
pub const REMOVED_ADVICE: &str = "an operator removed this node from the cluster: it serves no \
    requests and peers refuse it; its data is no longer the cluster's. Stop it; to use this \
    machine again, wipe its data directory and join it as a new node";

/// What replication needs to know of the cluster: the layouts to route
/// with, the failure detector's verdicts, and the time.
pub trait ClusterView: Send + Sync + 'static {
    /// The layouts this node routes with (several while a layout change
    /// moves data).
    fn routing(&self) -> Option<Routing>;
    /// The newest layout this node holds.
    fn layout(&self) -> Option<Arc<Layout>> {
        self.routing().map(|r| Arc::clone(r.newest()))
    }
    /// Whether this node considers `id` up.
    fn is_up(&self, id: NodeId) -> bool;
    /// Counts a write this node coordinates, routed with layout `version`,
    /// until the guard is dropped: the node says it routes with a newer
    /// layout only once no write routed with an older one is in flight.
    /// `None`: not counted.
    fn routed(&self, _version: u64) -> Option<Routed> {
        None
    }
    /// Whether an operator removed `id` from the cluster (this node's own
    /// id included: then it serves nothing). Peers refuse what a removed
    /// node asks.
    fn is_removed(&self, _id: NodeId) -> bool {
        false
    }
    /// A request to `id` went unanswered for its whole timeout: evidence
    /// for the failure detector (see
    /// [`gyre_membership::Membership::unresponsive`]).
    fn unresponsive(&self, _id: NodeId) {}
    /// Wall-clock milliseconds since the Unix epoch (for the hybrid logical
    /// clock and tombstone ages).
    fn wall_ms(&self) -> u64;
}

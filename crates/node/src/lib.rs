//! A Gyre node: the services that run the pure cores over real IO.
//!
//! - [`MembershipService`] runs a node's [`gyre_membership::Membership`]
//!   over a [`QuicTransport`](gyre_transport::QuicTransport): a gossip round
//!   on a timer, gossip messages and layout pulls from peers, seeds resolved
//!   to node ids at start, events logged and broadcast.
//!
//! ```
//! use std::time::Duration;
//!
//! use gyre_membership::{Config, Membership, NodeInfo};
//! use gyre_node::MembershipService;
//! use gyre_transport::tls::ClusterCa;
//! use gyre_transport::{QuicConfig, QuicTransport};
//! use gyre_types::{NodeId, ZoneName};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Runtime::new()?;
//! runtime.block_on(async {
//!     let ca = ClusterCa::generate("demo")?;
//!     let config = Config {
//!         gossip_interval: Duration::from_millis(50),
//!         ..Config::default()
//!     };
//!     let mut nodes = Vec::new();
//!     let mut seed = None;
//!     for id in [1, 2] {
//!         let id = NodeId::new(id);
//!         let (transport, inbound) = QuicTransport::bind(QuicConfig::new(
//!             "127.0.0.1:0".parse()?,
//!             "demo",
//!             ca.identity(id)?,
//!         ))?;
//!         let addr = transport.local_addr()?;
//!         let me = NodeInfo {
//!             id,
//!             peer_addr: addr.to_string(),
//!             client_addrs: Vec::new(),
//!             zone: ZoneName::new("z1")?,
//!             capacity: 100,
//!         };
//!         let core = Membership::new(me, 1, None, config.clone(), id.as_u64())?;
//!         // Node 1 is the seed of node 2.
//!         let seeds = seed.into_iter().collect();
//!         seed = Some(addr);
//!         nodes.push(MembershipService::start(core, transport, inbound, seeds));
//!     }
//!     // Each learns of the other and sees it up.
//!     let mut events = nodes[0].subscribe();
//!     while !nodes[0].is_up(NodeId::new(2)) {
//!         events.recv().await?;
//!     }
//!     for node in &nodes {
//!         node.shutdown().await;
//!     }
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(())
//! # }
//! ```

mod membership;

pub use membership::MembershipService;

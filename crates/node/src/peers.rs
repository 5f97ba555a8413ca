//! [`Peers`]: what the node needs of a transport beyond [`Transport`]:
//! finding peers by address.

use std::future::Future;

use gyre_transport::{MemTransport, QuicTransport, Transport};
use gyre_types::NodeId;

/// A transport whose peers can be found by address: QUIC, or the
/// in-memory network (where an "address" is the node id itself).
pub trait Peers: Transport + Clone {
    /// Learns that `id` listens at `addr` (as gossip says).
    fn learn(&self, id: NodeId, addr: &str) -> impl Future<Output = ()> + Send;

    /// Finds which node answers at `seed`.
    fn discover(&self, seed: &str) -> impl Future<Output = Result<NodeId, String>> + Send;
}

impl Peers for QuicTransport {
    async fn learn(&self, id: NodeId, addr: &str) {
        match tokio::net::lookup_host(addr).await.map(|mut a| a.next()) {
            Ok(Some(at)) => self.set_peer_addr(id, at),
            _ => tracing::debug!(peer = %id, %addr, "cannot resolve a peer's address"),
        }
    }

    async fn discover(&self, seed: &str) -> Result<NodeId, String> {
        let addr = tokio::net::lookup_host(seed)
            .await
            .map_err(|e| format!("cannot resolve {seed}: {e}"))?
            .next()
            .ok_or_else(|| format!("{seed} resolves to no address"))?;
        QuicTransport::discover(self, addr)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Peers for MemTransport {
    async fn learn(&self, _id: NodeId, _addr: &str) {}

    async fn discover(&self, seed: &str) -> Result<NodeId, String> {
        seed.parse::<NodeId>()
            .map_err(|e| format!("seed {seed:?}: {e}"))
    }
}

//! How Gyre nodes talk to each other.
//!
//! One [`Transport`] trait with two implementations held to one
//! conformance suite (`tests/conformance.rs`):
//!
//! - [`QuicTransport`]: QUIC (quinn) with mutual TLS under a cluster CA
//!   ([`tls`]); one connection per peer, reused; small requests share the
//!   connection's lane (one long-lived stream of tagged frames), large
//!   ones and bulk transfers get streams of their own; reconnect with backoff, keep-alive and an idle timeout that notice a
//!   dead peer within seconds.
//! - [`MemTransport`]: an in-process network for the simulator and fast
//!   tests, with seeded faults (drop, delay, reorder, duplicate, partitions
//!   one-way or both ways, heal).
//!
//! Messages are the types of `gyre-wire`. Whatever arrives for this node
//! comes out of the [`Inbound`] receiver returned with the transport.
//!
//! This is the only crate of the workspace that imports quinn and rustls.
//!
//! ```
//! use std::time::Duration;
//!
//! use gyre_transport::tls::ClusterCa;
//! use gyre_transport::{Inbound, QuicConfig, QuicTransport, Transport};
//! use gyre_types::NodeId;
//! use gyre_wire::{Request, Response};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Runtime::new()?;
//! runtime.block_on(async {
//!     // One cluster CA; a certificate per node, naming its id.
//!     let ca = ClusterCa::generate("demo")?;
//!     let any = "127.0.0.1:0".parse()?;
//!     let (a, _a_inbound) = QuicTransport::bind(QuicConfig::new(any, "demo", ca.identity(NodeId::new(1))?))?;
//!     let (b, mut b_inbound) = QuicTransport::bind(QuicConfig::new(any, "demo", ca.identity(NodeId::new(2))?))?;
//!     a.set_peer_addr(b.local(), b.local_addr()?);
//!
//!     // Node b answers pings; node a asks over mutually authenticated QUIC.
//!     tokio::spawn(async move {
//!         while let Some(Inbound::Request { from, reply, .. }) = b_inbound.recv().await {
//!             assert_eq!(from, NodeId::new(1));
//!             reply.respond(Response::Pong);
//!         }
//!     });
//!     let answer = a.request(b.local(), Request::Ping, Duration::from_secs(5)).await?;
//!     assert_eq!(answer, Response::Pong);
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(())
//! # }
//! ```

mod error;
mod inbound;
mod lane;
mod mem;
mod metrics;
mod quic;
pub mod tls;

use std::future::Future;
use std::time::Duration;

use gyre_types::NodeId;
use gyre_wire::{OneWay, Request, Response, StreamOpen};

pub use error::{Error, Result};
pub use inbound::{InStream, Inbound, OutStream, Responder};
pub use mem::{Faults, MemNetwork, MemTransport};
pub use metrics::TransportCollector;
pub use quic::{QuicConfig, QuicTransport};

/// Sending to peers. Receiving is the [`Inbound`] channel each
/// implementation hands out when it is created.
pub trait Transport: Send + Sync + 'static {
    /// This node.
    fn local(&self) -> NodeId;

    /// Sends `request` to `peer` and waits for its answer, at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`], [`Error::Unreachable`], [`Error::Refused`] or
    /// [`Error::Broken`]; the request may or may not have been processed.
    fn request(
        &self,
        peer: NodeId,
        request: Request,
        timeout: Duration,
    ) -> impl Future<Output = Result<Response>> + Send;

    /// Sends a one-way message. Returns once it is on its way; delivery is
    /// not confirmed.
    ///
    /// # Errors
    /// [`Error::Unreachable`] or [`Error::Refused`] if it could not leave.
    fn send(&self, peer: NodeId, message: OneWay) -> impl Future<Output = Result<()>> + Send;

    /// Opens a bulk stream to `peer`.
    ///
    /// # Errors
    /// As [`request`](Self::request).
    fn open_stream(
        &self,
        peer: NodeId,
        open: StreamOpen,
    ) -> impl Future<Output = Result<OutStream>> + Send;
}

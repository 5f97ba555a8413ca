use std::time::Duration;

use gyre_types::NodeId;

use crate::tls::TlsError;

/// Why a message did not get through.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No way to reach the peer: no known address, the connection failed,
    /// or the network (or a fault injected into it) lost the message.
    #[error("peer {peer} unreachable: {reason}")]
    Unreachable {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: String,
    },
    /// No answer within the deadline.
    #[error("no answer from {peer} within {after:?}")]
    Timeout {
        /// The peer.
        peer: NodeId,
        /// The deadline.
        after: Duration,
    },
    /// The peer refused the connection (another cluster, another protocol
    /// version, a certificate that does not match its claimed id).
    #[error("peer {peer} refused the connection: {reason}")]
    Refused {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: String,
    },
    /// The connection or stream broke while in use.
    #[error("connection to {peer} broke: {reason}")]
    Broken {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: String,
    },
    /// Nothing of this cluster could be reached at a seed address.
    #[error("seed {addr}: {reason}")]
    Seed {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        reason: String,
    },
    /// A message could not be encoded or a received one decoded.
    #[error(transparent)]
    Wire(#[from] gyre_wire::Error),
    /// Certificates or TLS settings are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The local endpoint could not be set up (binding the socket, say).
    #[error("transport setup failed: {0}")]
    Setup(String),
    /// The transport was shut down.
    #[error("transport is shut down")]
    Shutdown,
}

/// Result of transport operations.
pub type Result<T> = std::result::Result<T, Error>;

//! What can go wrong in replication, as the client sees it.

use gyre_types::NodeId;

/// A replication failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request cannot be carried out as asked (R or W of 0 or above N,
    /// a context that does not decode, a value over the bucket's limit…).
    /// Nothing was written.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Too few replicas answered. A write may still exist on some of them:
    /// it is not confirmed, not "not written".
    #[error(
        "unavailable: {answered} of {required} required replicas answered{}",
        in_parens(detail)
    )]
    Unavailable {
        /// Replicas that answered in time.
        answered: u8,
        /// Replicas the quorum required.
        required: u8,
        /// What fell short, whom it asked, how long it waited (may be
        /// empty).
        detail: String,
    },
    /// This node has no layout yet (the cluster was never set up).
    #[error("no layout: the cluster has no committed layout yet")]
    NoLayout,
    /// A forwarded operation reached a node that holds no replica of its
    /// key under the layouts it uses: nothing was done, another primary
    /// may take it.
    #[error("wrong layout: this node holds no replica of the key")]
    WrongLayout,
    /// A forwarded write its forwarder did not permit (another primary
    /// took it, or the forwarder gave up on it): nothing was written.
    #[error("withdrawn: the forwarder gave the write to another primary; nothing was written")]
    Withdrawn,
    /// An operator removed node `0` from the cluster (this node, or the
    /// peer that asked): it serves nothing and nothing it asks is done.
    /// Nothing was read or written.
    #[error(
        "removed: an operator removed node {0} from the cluster; it serves nothing and peers \
         refuse it (wipe its data directory and join it as a new node)"
    )]
    Removed(NodeId),
    /// The local store failed.
    #[error("storage: {0}")]
    Storage(#[from] gyre_storage::Error),
    /// A peer answered with something that makes no sense here.
    #[error("unexpected answer from {peer}: {what}")]
    Protocol {
        /// The peer.
        peer: NodeId,
        /// What it sent.
        what: String,
    },
}

/// ` (detail)`, or nothing for no detail.
pub(crate) fn in_parens(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

/// Result of replication operations.
pub type Result<T> = std::result::Result<T, Error>;

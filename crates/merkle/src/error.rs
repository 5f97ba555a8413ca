use gyre_types::{KeyHash, PartitionCount, PartitionId};

use crate::TreeId;

/// Why a tree could not be built or updated, or why an exchange message was refused.
///
/// Every message from a peer is checked; a malformed one becomes one of these
/// values, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tree shape broke the limits of [`crate::TreeShape::new`].
    #[error("invalid tree shape (fanout_bits {fanout_bits}, depth {depth}): {reason}")]
    InvalidShape {
        /// The rejected fanout, as a power of two.
        fanout_bits: u8,
        /// The rejected depth.
        depth: u8,
        /// Which limit it broke.
        reason: &'static str,
    },
    /// The leaves of the shape need more hash bits than a partition of `q` has left.
    #[error("{q:?} leaves {available} hash bits below the partition, the shape needs {needed}")]
    ShapeTooFine {
        /// The partition count.
        q: PartitionCount,
        /// Hash bits the leaf index needs.
        needed: u32,
        /// Hash bits left below the partition bits.
        available: u32,
    },
    /// A partition number was not below Q.
    #[error("partition {partition} does not exist with {q:?}")]
    PartitionOutOfRange {
        /// The partition count.
        q: PartitionCount,
        /// The rejected partition.
        partition: PartitionId,
    },
    /// A key hash does not belong to the tree's partition.
    #[error("key hash {key_hash} is outside partition {partition}")]
    KeyOutsidePartition {
        /// The rejected hash.
        key_hash: KeyHash,
        /// The tree's partition.
        partition: PartitionId,
    },
    /// A list of leaves did not have one digest per leaf of the shape.
    #[error("expected {expected} leaf digests, got {got}")]
    LeafCount {
        /// Leaves of the shape.
        expected: usize,
        /// Digests supplied.
        got: usize,
    },
    /// The two sides of an exchange (or a tree and its exchange) do not describe the same tree.
    #[error("tree mismatch: ours is {ours}, theirs is {theirs}")]
    TreeMismatch {
        /// This side's tree.
        ours: TreeId,
        /// The other side's tree.
        theirs: TreeId,
    },
    /// A request named a level that has no children (or does not exist).
    #[error("level {level} has no children in a tree of depth {depth}")]
    LevelOutOfRange {
        /// The rejected level.
        level: u8,
        /// The tree's depth.
        depth: u8,
    },
    /// A request named a node that its level does not have.
    #[error("node {index} does not exist at level {level} ({len} nodes)")]
    IndexOutOfRange {
        /// The level.
        level: u8,
        /// The rejected index.
        index: u32,
        /// Nodes at that level.
        len: usize,
    },
    /// A request listed more nodes than [`crate::TreeShape::max_nodes_per_request`] allows.
    #[error("request lists {count} nodes, at most {max} are allowed")]
    TooManyNodes {
        /// Nodes listed.
        count: usize,
        /// The limit for this shape.
        max: usize,
    },
    /// A response of the wrong kind arrived.
    #[error("expected a {expected} response, got a {got} response")]
    UnexpectedResponse {
        /// The kind the exchange waited for.
        expected: &'static str,
        /// The kind that arrived.
        got: &'static str,
    },
    /// A response answered a different level than the one asked for.
    #[error("response is for level {got}, the request was for level {expected}")]
    WrongLevel {
        /// The level asked for.
        expected: u8,
        /// The level answered.
        got: u8,
    },
    /// A response carried the wrong number of digests.
    #[error("response carries {got} digests, expected {expected}")]
    WrongDigestCount {
        /// Digests the request calls for.
        expected: usize,
        /// Digests received.
        got: usize,
    },
    /// A response contradicted itself or the request (see the message).
    #[error("malformed response: {0}")]
    MalformedResponse(&'static str),
    /// A response arrived after the exchange finished or failed.
    #[error("the exchange is over (finished or failed)")]
    ExchangeOver,
    /// A list given to [`crate::diff_items`] was not strictly ascending by (hash, key).
    #[error("item list {side} is not strictly ascending by (hash, key) at position {index}")]
    UnsortedItems {
        /// `"a"` or `"b"`.
        side: &'static str,
        /// Position of the first item that is not above its predecessor.
        index: usize,
    },
    /// A key range whose start is after its end.
    #[error("key range {start}..={end} is empty")]
    InvalidKeyRange {
        /// First hash.
        start: KeyHash,
        /// Last hash.
        end: KeyHash,
    },
}

/// Result of this crate's fallible operations.
pub type Result<T> = std::result::Result<T, Error>;

use gyre_types::NodeId;

/// Why an operation of this crate failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A client put or delete would have left more siblings than the
    /// [`Policy`](crate::Policy) allows. The state was not changed.
    ///
    /// Only client writes are refused: [`sync`](crate::DvvSet::sync) never is,
    /// because replication must not drop data.
    #[error(
        "the write would leave {count} siblings, the limit is {max}: read the key and write with its context"
    )]
    TooManySiblings {
        /// Siblings the write would have left (the new value included).
        count: usize,
        /// The limit in force.
        max: usize,
    },
    /// The coordinator's counter for this key cannot grow any further
    /// (a context claimed `u64::MAX` events for it).
    #[error("the event counter of node {node} is exhausted")]
    CounterOverflow {
        /// The coordinator whose counter would overflow.
        node: NodeId,
    },
    /// A causal context could not be decoded.
    #[error("invalid causal context: {0}")]
    InvalidContext(#[from] ContextError),
    /// A stored or received version state breaks the invariants of a
    /// [`DvvSet`](crate::DvvSet).
    #[error("invalid version state: {reason}")]
    InvalidState {
        /// Which invariant was broken.
        reason: &'static str,
    },
}

/// What was wrong with the bytes given to
/// [`Context::from_bytes`](crate::Context::from_bytes) (or with a deserialized
/// context).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// The input ended before the encoding did.
    #[error("truncated")]
    Truncated,
    /// The first byte names a format this version does not know.
    #[error("unknown format version {0}")]
    UnknownVersion(u8),
    /// The checksum does not match: the bytes were altered or mangled.
    #[error("checksum mismatch")]
    BadChecksum,
    /// Node ids are not in strictly increasing order.
    #[error("entries are not sorted by node id")]
    NotSorted,
    /// The same node id appears twice.
    #[error("duplicate node id")]
    Duplicate,
    /// An entry has a zero counter (zero entries are never encoded).
    #[error("zero counter")]
    ZeroCounter,
    /// Bytes follow the checksum.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A varint uses more bytes than its value needs.
    #[error("overlong varint")]
    OverlongVarint,
    /// A varint does not fit in 64 bits.
    #[error("varint overflows 64 bits")]
    VarintOverflow,
}

/// Result of this crate's fallible operations.
pub type Result<T> = std::result::Result<T, Error>;

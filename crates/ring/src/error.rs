use gyre_types::{NodeId, PartitionCount};

/// Why a layout could not be computed or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A layout needs at least one member.
    #[error("a layout needs at least one member")]
    NoMembers,
    /// The same node was listed twice.
    #[error("node {0} is listed more than once")]
    DuplicateMember(NodeId),
    /// Capacities are relative weights and must be at least 1.
    #[error("node {0} has capacity 0; a member's capacity must be at least 1")]
    ZeroCapacity(NodeId),
    /// More members than a layout supports.
    #[error("{count} members; a layout supports at most {max}")]
    TooManyMembers {
        /// Members given.
        count: usize,
        /// The limit ([`crate::MAX_MEMBERS`]).
        max: usize,
    },
    /// The replication factor is outside `1..=MAX_REPLICATION`.
    #[error("replication factor {0} is outside 1..={max}", max = crate::MAX_REPLICATION)]
    InvalidReplication(u8),
    /// A new layout must keep the partition count and replication factor of
    /// the one it follows: both are fixed when a cluster is created.
    #[error(
        "the previous layout has Q={prev_q} and N={prev_n}; a cluster's Q and N are fixed at creation (asked for Q={q}, N={n})"
    )]
    IncompatibleLayout {
        /// Partition count of the previous layout.
        prev_q: PartitionCount,
        /// Replication factor of the previous layout.
        prev_n: u8,
        /// Partition count asked for.
        q: PartitionCount,
        /// Replication factor asked for.
        n: u8,
    },
    /// No assignment meets the placement rules. (Not reachable with valid
    /// members: reported rather than panicking should the solver ever disagree.)
    #[error("could not place {missing} partition replicas under the placement rules")]
    Unplaceable {
        /// Replicas left without a node.
        missing: usize,
    },
    /// A serialised layout broke an invariant.
    #[error("corrupt layout: {0}")]
    Corrupt(&'static str),
    /// A bucket asked for more replicas than the cluster keeps.
    #[error("n_val {n_val} is outside 1..={n} (the cluster's replication factor)")]
    InvalidNVal {
        /// Asked for.
        n_val: usize,
        /// The cluster's replication factor.
        n: u8,
    },
}

/// Result of this crate's operations.
pub type Result<T> = std::result::Result<T, Error>;

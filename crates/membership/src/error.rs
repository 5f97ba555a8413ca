use gyre_types::NodeId;

use crate::LayoutStamp;

/// Why an operator's action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Gossip has not (or no longer) brought a state of this node.
    #[error("node {0} is not known to this node")]
    UnknownNode(NodeId),
    /// The change needs a member of the layout.
    #[error("node {0} is not a member of the layout")]
    NotAMember(NodeId),
    /// A join of a node that already is a member.
    #[error("node {0} is already a member of the layout")]
    AlreadyMember(NodeId),
    /// The node id was removed: it can never come back (a wiped node
    /// rejoins with a fresh id).
    #[error("node {0} was removed; a removed id never comes back")]
    Removed(NodeId),
    /// A node cannot remove itself; `Leave` it, or remove it from another node.
    #[error("a node cannot remove itself; stage the removal on another node")]
    RemoveSelf,
    /// `Remove` is for nodes gone for good; a live node should `Leave`.
    #[error("node {0} is up; remove only nodes that are gone for good (a live node should leave)")]
    NodeIsUp(NodeId),
    /// Capacities are relative weights, at least 1.
    #[error("node {0} would have capacity 0; a member's capacity must be at least 1")]
    ZeroCapacity(NodeId),
    /// `plan` with no staged change.
    #[error("no change is staged")]
    NothingStaged,
    /// The plan was made against another layout than the current one.
    #[error(
        "stale plan: it was made against layout {}, but the current layout is {}; plan again",
        show(.planned_against),
        show(.current)
    )]
    StalePlan {
        /// The layout the plan was made against.
        planned_against: Option<LayoutStamp>,
        /// The current layout.
        current: Option<LayoutStamp>,
    },
    /// A peer advertises a newer layout than this node holds: wait until it
    /// has been pulled, then plan again.
    #[error("a newer layout ({newest}) exists than this node's ({}); wait for it and plan again", show(.current))]
    LayoutBehind {
        /// This node's layout.
        current: Option<LayoutStamp>,
        /// The newest a peer advertises.
        newest: LayoutStamp,
    },
    /// So many layout changes are still moving data that another would
    /// overflow the history ([`crate::MAX_HISTORY`]): wait for them.
    #[error(
        "the changes from layout {from} to {to} are still moving data; commit the next once they complete"
    )]
    ChangeInProgress {
        /// The layout reads still use.
        from: LayoutStamp,
        /// The newest layout.
        to: LayoutStamp,
    },
    /// An abort with no change in flight.
    #[error("no layout change is in flight")]
    NothingToAbort,
    /// [`crate::NodeInfo`] breaks a limit.
    #[error("invalid node info: {0}")]
    InvalidNodeInfo(&'static str),
    /// The ring could not compute the layout.
    #[error(transparent)]
    Ring(#[from] gyre_ring::Error),
}

fn show(stamp: &Option<LayoutStamp>) -> String {
    stamp.map_or_else(|| "none".to_owned(), |s| s.to_string())
}

/// Result of the operator actions.
pub type Result<T> = std::result::Result<T, Error>;

//! Staged layout changes and the plans made from them.

use gyre_ring::{Layout, LayoutDiff};
use gyre_types::{NodeId, ZoneName};

use crate::LayoutStamp;

/// An operator's change to the layout. Changes are staged on one node
/// ([`crate::Membership::stage`]), turned into a [`Plan`] and committed;
/// nothing reaches the ring before the commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Make a node gossip knows a member, with the zone and capacity it
    /// advertises.
    Join(NodeId),
    /// Take a member out of the layout; its replicas move to the others and
    /// it advertises [`crate::NodeStatus::Leaving`].
    Leave(NodeId),
    /// Change a member's capacity (at least 1).
    SetCapacity(NodeId, u32),
    /// Move a member to another zone.
    SetZone(NodeId, ZoneName),
    /// Forget a node that is gone for good (its data was lost; it may have
    /// come back under a fresh id): out of the layout if it is a member, and
    /// a tombstone so that gossip from nodes that still remember the id
    /// cannot bring it back. Refused while this node sees it up (as of the
    /// latest time given to [`crate::Membership`]).
    Remove(NodeId),
}

/// A new layout computed from the staged changes, and what it moves. Made by
/// [`crate::Membership::plan`], applied by [`crate::Membership::commit`]
/// unless the layout changed meanwhile.
#[derive(Clone, Debug)]
pub struct Plan {
    pub(crate) base: Option<LayoutStamp>,
    pub(crate) layout: Layout,
    pub(crate) stamp: LayoutStamp,
    pub(crate) diff: Option<LayoutDiff>,
    pub(crate) removed: Vec<NodeId>,
    pub(crate) changes: Vec<Change>,
}

impl Plan {
    /// The layout the plan was made against (`None`: the cluster had none).
    pub fn base(&self) -> Option<LayoutStamp> {
        self.base
    }

    /// The layout the commit would install.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Its stamp.
    pub fn stamp(&self) -> LayoutStamp {
        self.stamp
    }

    /// Every partition replica that changes owner (`None` for a cluster's
    /// first layout: nothing moves, everything is new).
    pub fn diff(&self) -> Option<&LayoutDiff> {
        self.diff.as_ref()
    }

    /// The node ids the commit tombstones.
    pub fn removed(&self) -> &[NodeId] {
        &self.removed
    }

    /// The staged changes the plan was made from.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }
}

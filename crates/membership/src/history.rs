//! The layouts still in use while a change moves data, and the barriers
//! that retire the old ones.
//!
//! A committed layout does not replace the one before it at once. Until the
//! data has moved, a node keeps the older layouts (oldest first) and the
//! newest one:
//!
//! 1. every node that adopted the newest layout writes to the replicas of
//!    *every* layout it holds, with a full quorum in each;
//! 2. reads use the oldest layout (its replicas hold everything) until every
//!    member of the newest layout says it is **synced**: it holds every
//!    partition the newest layout gives it, filled and verified from the
//!    replicas of the layout reads used (the node's driver does that work
//!    and reports it with [`crate::Membership::set_synced`]);
//! 3. a node that sees every member synced starts **reading** with the newest
//!    layout and says so in gossip;
//! 4. once every node that can still route (the newest layout's members, and
//!    the older layouts' members that are up) reads with the newest layout,
//!    nobody reads the older ones: they are **retired**, writes go to the
//!    newest layout only, and the replicas it no longer names may drop
//!    their copies.
//!
//! Each barrier is a fact gossip spreads ([`crate::NodeState::synced`],
//! [`crate::NodeState::reading`]), so every node reaches the same stages
//! in the same order, whatever it missed while it was away.

use gyre_ring::Layout;
use gyre_types::NodeId;

use crate::LayoutStamp;

/// Most layouts a history holds (a pulled history longer than this keeps
/// its newest ones).
pub const MAX_HISTORY: usize = 8;

/// Where the layout change in flight stands, as one node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The layout reads used before the change (the oldest still in use).
    pub from: LayoutStamp,
    /// The newest layout.
    pub to: LayoutStamp,
    /// Members of the newest layout that have not said they are synced.
    pub not_synced: Vec<NodeId>,
    /// Nodes that have not said they read with the newest layout.
    pub not_reading: Vec<NodeId>,
    /// Whether this node reads with the newest layout already.
    pub reading_new: bool,
}

/// Checks a history as it arrives from a peer: oldest first, stamps strictly
/// increasing, all of one ring configuration. Returns it with its stamps,
/// cut to its newest [`MAX_HISTORY`].
pub(crate) fn checked(layouts: Vec<Layout>) -> Option<Vec<(LayoutStamp, Layout)>> {
    let mut out: Vec<(LayoutStamp, Layout)> = Vec::with_capacity(layouts.len());
    for layout in layouts {
        let stamp = LayoutStamp::of(&layout);
        if let Some((last, first)) = out.last().zip(out.first())
            && (stamp <= last.0 || first.1.config() != layout.config())
        {
            return None;
        }
        out.push((stamp, layout));
    }
    let excess = out.len().saturating_sub(MAX_HISTORY);
    out.drain(..excess);
    (!out.is_empty()).then_some(out)
}

/// The nodes whose word each barrier waits for: every member of the
/// newest layout must be synced; every node that can still route must
/// read with it before the older layouts retire. That is the newest
/// layout's members, the older layouts' members that are up and not
/// removed, and every other node that is up and holds a layout (a leaving
/// node, a spare: each coordinates or forwards with its own read layout).
pub(crate) fn barrier_nodes(
    current: &Layout,
    older: &[(LayoutStamp, Layout)],
    others: impl IntoIterator<Item = NodeId>,
    removed: impl Fn(NodeId) -> bool,
    up: impl Fn(NodeId) -> bool,
) -> (Vec<NodeId>, Vec<NodeId>) {
    let synced: Vec<NodeId> = current.members().iter().map(|m| m.id).collect();
    let mut reading = synced.clone();
    let older_members = older
        .iter()
        .flat_map(|(_, layout)| layout.members().iter().map(|m| m.id));
    for id in older_members.chain(others) {
        if !reading.contains(&id) && !removed(id) && up(id) {
            reading.push(id);
        }
    }
    (synced, reading)
}

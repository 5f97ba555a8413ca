use gyre_types::{NodeId, ZoneName};
use serde::{Deserialize, Serialize};

/// A node as the ring sees it: who it is, where it is, how much it can hold.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// The node.
    pub id: NodeId,
    /// Its failure domain. Replicas of a partition go to distinct zones
    /// wherever there are enough of them.
    pub zone: ZoneName,
    /// Relative weight, at least 1: a node of capacity 2 holds twice the
    /// partition replicas of a node of capacity 1.
    pub capacity: u32,
}

impl Member {
    /// A member in `zone` with the given capacity.
    pub fn new(id: NodeId, zone: ZoneName, capacity: u32) -> Self {
        Self { id, zone, capacity }
    }
}

//! What nodes gossip: per-node states and the three messages of a round.

use gyre_types::{NodeId, ZoneName};
use serde::{Deserialize, Serialize};

use crate::LayoutStamp;

/// Where a node is in its life, as it says of itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NodeStatus {
    /// Not a member of the layout it holds, and never was while running:
    /// a new node waiting for an operator's `Join`. (Status is derived from
    /// the layouts a node saw since it started, so a node that left and then
    /// restarted says `Joining` too.)
    Joining,
    /// A member of the layout it holds. (Not a liveness verdict: that is
    /// each observer's own, see [`crate::Membership::is_up`].)
    Member,
    /// Was a member, and a newer layout left it out: its partitions move to
    /// their new owners.
    Leaving,
    /// Was a member, left the layout, and has handed every partition it
    /// held to its new owners (see [`crate::Membership::set_left`]): it
    /// holds no data the cluster needs and can be stopped.
    Left,
}

/// One node's state as gossip spreads it. Only the node itself creates new
/// versions of its state; everybody else relays it.
///
/// Field order is the encoding (postcard): append new fields only behind a
/// protocol version change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// The node.
    pub id: NodeId,
    /// Chosen by the node's driver at each start, increasing from one start
    /// to the next (wall-clock milliseconds will do), so that a restarted
    /// node's state supersedes its previous life's.
    pub generation: u64,
    /// Bumped by the node on every gossip round. Its advance is what the
    /// failure detector listens to.
    pub heartbeat: u64,
    /// Bumped by the node whenever a field below changes; at least 1.
    pub version: u64,
    /// Where peers reach it (QUIC, `host:port`).
    pub peer_addr: String,
    /// Where clients reach it (RESP, HTTP).
    #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, 16>")]
    pub client_addrs: Vec<String>,
    /// The failure domain it was configured with.
    pub zone: ZoneName,
    /// The capacity it was configured with.
    pub capacity: u32,
    /// Where it is in its life.
    pub status: NodeStatus,
    /// The layout it holds, if any. A node that sees a greater stamp pulls
    /// that layout.
    pub layout: Option<LayoutStamp>,
    /// The newest layout for which this node holds every partition it is
    /// given, filled from the replicas that served reads before it and
    /// verified against them (see [`crate::Membership::set_synced`]).
    pub synced: Option<LayoutStamp>,
    /// The newest layout this node reads with: it saw every member of that
    /// layout synced. Once every node reads with a layout, older layouts are
    /// retired everywhere.
    pub reading: Option<LayoutStamp>,
}

impl NodeState {
    /// The versions of this state, as a [`Digest`] names them.
    pub fn digest(&self) -> Digest {
        Digest {
            id: self.id,
            generation: self.generation,
            heartbeat: self.heartbeat,
            version: self.version,
        }
    }
}

/// Which versions of a node's state a gossiper holds.
///
/// `(generation, version)` orders the state's fields and
/// `(generation, heartbeat)` its liveness. A digest with `version` 0 says
/// "I know nothing of this node".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Digest {
    /// The node.
    pub id: NodeId,
    /// Its generation.
    pub generation: u64,
    /// Its heartbeat.
    pub heartbeat: u64,
    /// The version of its fields (0: none known).
    pub version: u64,
}

/// A newer heartbeat for a state the receiver already holds (same
/// generation and version): liveness without resending the fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The node.
    pub id: NodeId,
    /// Its generation.
    pub generation: u64,
    /// Its heartbeat.
    pub heartbeat: u64,
}

/// An operator removed this node id for good: it wins over any state of the
/// id and is kept for [`crate::Config::removed_ttl`], so that nodes which
/// still remember the id cannot gossip it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tombstone {
    /// The removed node.
    pub id: NodeId,
    /// How long ago it was removed, as far as the sender knows, in
    /// milliseconds. Receivers keep the oldest age they hear, so every node
    /// forgets the tombstone at about the same time and none gossips it back
    /// to nodes that already forgot it.
    pub age_ms: u64,
}

/// Most digests, heartbeats or tombstones a decoded message may list (the
/// core reads at most [`crate::Config::max_nodes`] of them).
pub const MAX_LIST: usize = 8192;

/// Most node states a decoded message may carry (the core reads at most
/// [`crate::Config::max_states_per_message`]).
pub const MAX_STATES: usize = 1024;

/// One step of a gossip round (Cassandra's scuttlebutt exchange):
///
/// 1. the initiator sends [`Message::Syn`]: a digest of everything it knows;
/// 2. the receiver answers [`Message::Ack`]: the states and heartbeats it has
///    newer, and digests of those it wants;
/// 3. the initiator closes with [`Message::Ack2`]: what was wanted.
///
/// [`Message::Ping`] and [`Message::Pong`] confirm that a peer is alive.
///
/// Messages are bounded: a receiver reads at most
/// [`crate::Config::max_nodes`] digests, heartbeats or tombstones and
/// [`crate::Config::max_states_per_message`] states from one message and
/// ignores the rest; it sends no more than that either.
///
/// Variant and field order are the encoding (postcard): new variants go last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Opens a round.
    Syn {
        /// The sender's view, one digest per node it knows (its own first).
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, MAX_LIST>")]
        digests: Vec<Digest>,
        /// The sender's removal tombstones.
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, MAX_LIST>")]
        tombstones: Vec<Tombstone>,
    },
    /// Answers a [`Message::Syn`].
    Ack {
        /// States the initiator lacks or holds older fields of.
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, MAX_STATES>")]
        states: Vec<NodeState>,
        /// Newer heartbeats of states whose fields the initiator has.
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, MAX_LIST>")]
        heartbeats: Vec<Heartbeat>,
        /// What the responder holds of nodes the initiator knows better.
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, MAX_LIST>")]
        want: Vec<Digest>,
        /// Tombstones the initiator did not list.
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, MAX_LIST>")]
        tombstones: Vec<Tombstone>,
    },
    /// Closes a round: what the [`Message::Ack`] wanted.
    Ack2 {
        /// States the responder lacks or holds older fields of.
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, MAX_STATES>")]
        states: Vec<NodeState>,
        /// Newer heartbeats of states whose fields the responder has.
        #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, MAX_LIST>")]
        heartbeats: Vec<Heartbeat>,
    },
    /// Are you there? Sent to a peer believed down (or never seen) whose
    /// heartbeat advanced in gossip: hearsay is not enough to call it up again,
    /// an answer from the peer itself is (Cassandra's echo).
    Ping,
    /// Answers a [`Message::Ping`].
    Pong,
}

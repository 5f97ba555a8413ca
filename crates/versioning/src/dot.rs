use std::fmt;

use gyre_types::{NodeId, Timestamp};
use serde::{Deserialize, Serialize};

/// The identity of one write: the node that coordinated it and that node's
/// event counter for the key (1 for its first write, then 2, 3, …).
///
/// Only `node` mints dots for `node`, so a dot names exactly one value: two
/// siblings with the same dot are the same write.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// The coordinating node.
    pub node: NodeId,
    /// The coordinator's counter for this write, at least 1.
    pub counter: u64,
}

impl Dot {
    /// A dot for `node`'s `counter`-th write.
    pub const fn new(node: NodeId, counter: u64) -> Self {
        Self { node, counter }
    }
}

impl fmt::Display for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.node, self.counter)
    }
}

impl fmt::Debug for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dot({self})")
    }
}

/// One version of a key: a value written by a put, or a tombstone written by
/// a delete (`value: None`), with the dot and timestamp of that write, and
/// for a value written with a time to live, when it expires.
///
/// An expiry is part of the write it belongs to: the coordinator sets it
/// (an absolute reading of its clock) and every replica stores the same, so
/// a dot still names exactly one `(timestamp, value, expiry)`. A value reads
/// as absent from its expiry on ([`is_live_at`](Self::is_live_at)), on every
/// replica and after any repair: nothing can bring an expired value back.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sibling<V> {
    /// Which write this is.
    pub dot: Dot,
    /// When the coordinator stamped it; orders writes in
    /// [`ConflictMode::Lww`](crate::ConflictMode::Lww).
    pub timestamp: Timestamp,
    /// The value, or `None` for a tombstone.
    pub value: Option<V>,
    /// When the value expires (a hybrid-clock reading: it is absent at and
    /// after it), or `None` if it never does. Always `None` on a tombstone.
    pub expires: Option<Timestamp>,
}

impl<V> Sibling<V> {
    /// Whether this sibling records a delete.
    pub const fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// Whether this is a value that has not expired at `now`.
    pub fn is_live_at(&self, now: Timestamp) -> bool {
        self.value.is_some() && self.expires.is_none_or(|e| now < e)
    }

    /// Whether this is a value whose expiry is at or before `now`.
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.value.is_some() && self.expires.is_some_and(|e| e <= now)
    }

    /// When this version stopped being a value, if it did or will: a
    /// tombstone's timestamp, a value's expiry.
    pub fn gone_at(&self) -> Option<Timestamp> {
        match self.value {
            None => Some(self.timestamp),
            Some(_) => self.expires,
        }
    }

    /// The value, unless this is a tombstone.
    pub const fn value(&self) -> Option<&V> {
        self.value.as_ref()
    }

    /// The last-writer-wins order: timestamp, then node id, then counter.
    /// Distinct writes never tie, since their dots differ.
    pub const fn lww_key(&self) -> (Timestamp, NodeId, u64) {
        (self.timestamp, self.dot.node, self.dot.counter)
    }
}

//! Counters: a `counter` bucket's keys are PN-counters, built on the DVV
//! machinery rather than beside it.
//!
//! Each node that coordinates an increment of a key keeps exactly one
//! sibling of it: its own running totals `(p, n)` (increments and
//! decrements it coordinated, ever). An increment at node X writes X's new
//! totals under a new dot of X with a context that covers only X's own
//! dots, so it supersedes X's previous sibling and nothing of any other
//! node. The DVV merge then keeps, per node, its latest sibling: the
//! greatest totals, which is the PN-counter's pointwise maximum. The value
//! is the sum over siblings of `p − n`.
//!
//! So the merge laws (commutative, associative, idempotent) are the DVV
//! set's, and every acknowledged increment is counted exactly once: it is
//! part of its coordinator's totals from then on (the coordinator reads its
//! own totals from its own store, where each of its increments lands first,
//! under the key's lock), and no other write supersedes a node's totals but
//! that node's next increment. A delete (a tombstone with the read's
//! context) removes the totals it saw, and a node whose totals were deleted
//! counts from zero again. A node that increments concurrently with a
//! delete, not having seen it, writes its whole running total, so the
//! increments the delete saw from that node come back with it (Riak's
//! counters share this): delete a counter only once nothing increments it.
//!
//! Under sloppy quorum an increment is acknowledged by W nodes, fallbacks
//! included, like any write; a read may miss increments still on their way
//! (hints, replicas behind), never count one twice.

use bytes::{BufMut, Bytes, BytesMut};
use gyre_types::{NodeId, Timestamp};
use gyre_versioning::{Context, Dot, DvvSet, Policy};

use crate::{Error, Result};

/// The first byte of a counter sibling's value: the format.
const TAG: u8 = 0xc1;
/// A counter sibling's value: tag, `p` and `n` (u64 little-endian).
const LEN: usize = 17;

/// One node's running totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Everything it added.
    pub p: u64,
    /// Everything it subtracted.
    pub n: u64,
}

impl Totals {
    /// The value bytes of a counter sibling.
    pub fn encode(self) -> Bytes {
        let mut b = BytesMut::with_capacity(LEN);
        b.put_u8(TAG);
        b.put_u64_le(self.p);
        b.put_u64_le(self.n);
        b.freeze()
    }

    /// Reads a counter sibling's value; `None` if it is not one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (&tag, rest) = bytes.split_first()?;
        if tag != TAG || rest.len() != LEN - 1 {
            return None;
        }
        let (p, n) = rest.split_at(8);
        Some(Self {
            p: u64::from_le_bytes(p.try_into().ok()?),
            n: u64::from_le_bytes(n.try_into().ok()?),
        })
    }

    /// These totals after adding `delta`, or `None` if a total overflows.
    fn add(self, delta: i64) -> Option<Self> {
        let mut t = self;
        if delta >= 0 {
            t.p = t.p.checked_add(delta.unsigned_abs())?;
        } else {
            t.n = t.n.checked_add(delta.unsigned_abs())?;
        }
        Some(t)
    }
}

/// The counter's value in `object` at `now`: the sum of every live
/// sibling's `p − n`. Siblings that are not counters (written before the
/// bucket became a counter bucket) count as zero.
pub fn value(object: &DvvSet<Bytes>, now: Timestamp) -> i128 {
    object
        .read_at(now)
        .values()
        .filter_map(|v| Totals::decode(v))
        .map(|t| i128::from(t.p) - i128::from(t.n))
        .sum()
}

/// Applies an increment of `delta` coordinated by `me` at `ts` to `object`:
/// `me`'s totals grow by `delta` under a new dot whose context covers `me`'s
/// dots only. Returns the new dot and the context written with.
///
/// # Errors
/// [`Error::BadRequest`] if the counter, as this node holds it, would leave
/// the range of a signed 64-bit integer (as Redis refuses it), or the
/// versioning refuses the write.
pub fn increment(
    object: &mut DvvSet<Bytes>,
    me: NodeId,
    delta: i64,
    ts: Timestamp,
    now: Timestamp,
    policy: &Policy,
) -> Result<(Dot, Context)> {
    let overflow = || Error::BadRequest("increment or decrement would overflow".to_owned());
    let after = value(object, now) + i128::from(delta);
    if i64::try_from(after).is_err() {
        return Err(overflow());
    }
    // This node's latest totals: its sibling with the greatest dot.
    let mine = object
        .siblings()
        .filter(|s| s.dot.node == me)
        .max_by_key(|s| s.dot.counter)
        .and_then(|s| s.value.as_deref().and_then(Totals::decode))
        .unwrap_or_default();
    let totals = mine.add(delta).ok_or_else(overflow)?;
    let context = Context::from_entries([(me, object.counter(me))]);
    let dot = object
        .put(&context, totals.encode(), me, ts, policy)
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    Ok((dot, context))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_round_trip_and_garbage_is_not_a_counter() {
        let t = Totals { p: 7, n: u64::MAX };
        assert_eq!(Totals::decode(&t.encode()), Some(t));
        assert_eq!(Totals::decode(b""), None);
        assert_eq!(Totals::decode(b"12"), None);
        let mut bad = t.encode().to_vec();
        bad[0] = 0;
        assert_eq!(Totals::decode(&bad), None);
        bad.truncate(10);
        assert_eq!(Totals::decode(&bad), None);
    }
}

use std::fmt;
use std::ops::RangeInclusive;

use gyre_types::{KeyHash, PartitionCount, PartitionId};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The shape of a tree: how many children each inner node has and how many levels
/// lie below the root.
///
/// Level 0 is the root (one node), level `depth` holds the
/// `fanout^depth` leaves. Storage is dense: a tree keeps every node of every
/// level, 16 bytes each, whether or not any key falls under it.
///
/// The default is fanout 16, depth 3: 4,096 leaves and 4,369 nodes, so
/// 69,904 bytes (≈ 70 KB) of digests per tree. With 256 partitions and N = 3
/// a node of a 12-node cluster holds ~64 partition replicas, so ~4.5 MB of
/// trees per n_val in use. A partition of 1 million keys puts ~244 keys under
/// each leaf, which bounds what one differing leaf costs to list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawShape", into = "RawShape")]
pub struct TreeShape {
    fanout_bits: u8,
    depth: u8,
}

#[derive(Serialize, Deserialize)]
struct RawShape {
    fanout_bits: u8,
    depth: u8,
}

impl TreeShape {
    /// Deepest tree allowed (levels below the root).
    pub const MAX_DEPTH: u8 = 6;
    /// Widest fanout allowed, as a power of two (fanout 256).
    pub const MAX_FANOUT_BITS: u8 = 8;
    /// Most leaves allowed, as a power of two (2^20 leaves, 16 MiB of leaf digests).
    pub const MAX_LEAF_BITS: u32 = 20;
    /// Most parent nodes one request may list.
    pub const MAX_NODES_PER_REQUEST: usize = 4096;
    /// Most digests one response may carry (1 MiB of digests).
    pub const MAX_DIGESTS_PER_RESPONSE: usize = 65_536;
    /// Fanout 16, depth 3: 4,096 leaves, ≈ 70 KB per tree.
    pub const DEFAULT: Self = Self {
        fanout_bits: 4,
        depth: 3,
    };

    /// Checks and builds a shape: `fanout_bits` in 1..=8 (fanout 2..=256),
    /// `depth` in 1..=6, and at most 2^20 leaves.
    pub fn new(fanout_bits: u8, depth: u8) -> Result<Self> {
        let err = |reason| Error::InvalidShape {
            fanout_bits,
            depth,
            reason,
        };
        if !(1..=Self::MAX_FANOUT_BITS).contains(&fanout_bits) {
            return Err(err("fanout_bits must be 1..=8"));
        }
        if !(1..=Self::MAX_DEPTH).contains(&depth) {
            return Err(err("depth must be 1..=6"));
        }
        if u32::from(fanout_bits) * u32::from(depth) > Self::MAX_LEAF_BITS {
            return Err(err("at most 2^20 leaves"));
        }
        Ok(Self { fanout_bits, depth })
    }

    /// log2 of the fanout.
    pub const fn fanout_bits(self) -> u8 {
        self.fanout_bits
    }

    /// Children per inner node.
    pub const fn fanout(self) -> usize {
        1 << self.fanout_bits
    }

    /// Levels below the root; the leaves are at level `depth`.
    pub const fn depth(self) -> u8 {
        self.depth
    }

    /// Hash bits that select a leaf within a partition: `fanout_bits * depth` (at most 20).
    pub const fn leaf_bits(self) -> u32 {
        self.fanout_bits as u32 * self.depth as u32
    }

    /// Number of leaves: `fanout^depth`.
    pub const fn leaf_count(self) -> usize {
        1 << self.leaf_bits()
    }

    /// Number of nodes at `level`, or `None` if the tree has no such level.
    pub const fn level_len(self, level: u8) -> Option<usize> {
        if level <= self.depth {
            Some(1 << (self.fanout_bits as u32 * level as u32))
        } else {
            None
        }
    }

    /// Nodes in the whole tree, root to leaves.
    pub fn node_count(self) -> usize {
        (0..=self.depth).filter_map(|l| self.level_len(l)).sum()
    }

    /// Bytes of digests a tree of this shape keeps in memory (16 per node).
    pub fn memory_bytes(self) -> usize {
        self.node_count() * 16
    }

    /// Most parent nodes one children request may list: 4,096, or fewer for wide
    /// fanouts so that a response carries at most 65,536 digests (1 MiB).
    pub const fn max_nodes_per_request(self) -> usize {
        let by_digests = Self::MAX_DIGESTS_PER_RESPONSE >> self.fanout_bits;
        if by_digests < Self::MAX_NODES_PER_REQUEST {
            by_digests
        } else {
            Self::MAX_NODES_PER_REQUEST
        }
    }
}

impl Default for TreeShape {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<RawShape> for TreeShape {
    type Error = Error;
    fn try_from(raw: RawShape) -> Result<Self> {
        Self::new(raw.fanout_bits, raw.depth)
    }
}

impl From<TreeShape> for RawShape {
    fn from(s: TreeShape) -> Self {
        Self {
            fanout_bits: s.fanout_bits,
            depth: s.depth,
        }
    }
}

impl fmt::Debug for TreeShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TreeShape(fanout {}, depth {})",
            self.fanout(),
            self.depth
        )
    }
}

/// What a tree covers and how it is cut: both sides of an exchange must agree on all of it.
///
/// Every request carries the initiator's `TreeId`, so a responder with a
/// different Q, partition or shape answers with [`Error::TreeMismatch`]
/// instead of comparing unrelated digests. (Which n_val the tree belongs to is
/// the caller's routing concern: it picks the tree before calling
/// [`crate::MerkleTree::answer`].)
///
/// Always valid: the partition exists and the shape's leaves fit in the hash
/// bits below the partition bits. Deserialisation runs the same checks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawTreeId", into = "RawTreeId")]
pub struct TreeId {
    q: PartitionCount,
    partition: PartitionId,
    shape: TreeShape,
}

#[derive(Serialize, Deserialize)]
struct RawTreeId {
    q: PartitionCount,
    partition: PartitionId,
    shape: TreeShape,
}

impl TreeId {
    /// Checks and builds a tree identity: `partition` must be below `q`, and
    /// `q.bits() + shape.leaf_bits()` must not exceed 64 (always true within the
    /// limits of both types, checked anyway).
    pub fn new(q: PartitionCount, partition: PartitionId, shape: TreeShape) -> Result<Self> {
        if !q.contains(partition) {
            return Err(Error::PartitionOutOfRange { q, partition });
        }
        let available = 64 - q.bits();
        if shape.leaf_bits() > available {
            return Err(Error::ShapeTooFine {
                q,
                needed: shape.leaf_bits(),
                available,
            });
        }
        Ok(Self {
            q,
            partition,
            shape,
        })
    }

    /// Partitions of the ring.
    pub const fn q(self) -> PartitionCount {
        self.q
    }

    /// The partition the tree covers.
    pub const fn partition(self) -> PartitionId {
        self.partition
    }

    /// How the tree is cut.
    pub const fn shape(self) -> TreeShape {
        self.shape
    }

    /// The hashes the tree covers: its whole partition.
    pub fn range(self) -> KeyRange {
        let r = self.q.range(self.partition);
        KeyRange::from_ordered(*r.start(), *r.end())
    }

    /// The leaf that holds `key_hash`, or an error if the hash is outside the partition.
    ///
    /// The leaf index is the `shape.leaf_bits()` bits of the hash just below
    /// its top `log2(Q)` (partition) bits.
    pub fn leaf_of(self, key_hash: KeyHash) -> Result<usize> {
        let r = self.q.range(self.partition);
        if !r.contains(&key_hash.as_u64()) {
            return Err(Error::KeyOutsidePartition {
                key_hash,
                partition: self.partition,
            });
        }
        let offset = key_hash.as_u64() - r.start();
        // new() guarantees bits() + leaf_bits() <= 64 and bits() >= 6, so the
        // shift is below 64; the result is below 2^leaf_bits <= 2^20.
        let shift = 64 - self.q.bits() - self.shape.leaf_bits();
        Ok(offset.checked_shr(shift).unwrap_or(0) as usize)
    }

    /// The hashes under node `index` at `level` (0 = root), if the node exists.
    pub fn node_range(self, level: u8, index: usize) -> Option<KeyRange> {
        let len = self.shape.level_len(level)?;
        if index >= len {
            return None;
        }
        let start = *self.q.range(self.partition).start();
        // A node at `level` covers 2^width hashes: the bits left below the
        // partition bits and the `level * fanout_bits` bits that select it.
        let width = 64 - self.q.bits() - u32::from(self.shape.fanout_bits()) * u32::from(level);
        // The low 64 - bits() bits of `start` are zero and
        // index < 2^(level * fanout_bits), so `first` stays inside the partition.
        let first = start | (index as u64).checked_shl(width)?;
        let last = first | u64::MAX.checked_shr(64 - width).unwrap_or(0);
        Some(KeyRange::from_ordered(first, last))
    }

    /// The hashes under `leaf`, if the leaf exists.
    pub fn leaf_range(self, leaf: usize) -> Option<KeyRange> {
        self.node_range(self.shape.depth(), leaf)
    }
}

impl TryFrom<RawTreeId> for TreeId {
    type Error = Error;
    fn try_from(raw: RawTreeId) -> Result<Self> {
        Self::new(raw.q, raw.partition, raw.shape)
    }
}

impl From<TreeId> for RawTreeId {
    fn from(id: TreeId) -> Self {
        Self {
            q: id.q,
            partition: id.partition,
            shape: id.shape,
        }
    }
}

impl fmt::Debug for TreeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TreeId({self})")
    }
}

impl fmt::Display for TreeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "partition {} of {}, fanout {}, depth {}",
            self.partition,
            self.q,
            self.shape.fanout(),
            self.shape.depth()
        )
    }
}

/// An inclusive, non-empty range of key hashes in the full 64-bit hash space.
///
/// The exchange reports differences as key ranges; the caller then lists the
/// keys whose hash falls in them on both sides and compares the lists with
/// [`crate::diff_items`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawRange", into = "RawRange")]
pub struct KeyRange {
    start: KeyHash,
    end: KeyHash,
}

#[derive(Serialize, Deserialize)]
struct RawRange {
    start: KeyHash,
    end: KeyHash,
}

impl KeyRange {
    /// The hashes `start..=end`; an error if `start > end`.
    pub fn new(start: KeyHash, end: KeyHash) -> Result<Self> {
        if start <= end {
            Ok(Self { start, end })
        } else {
            Err(Error::InvalidKeyRange { start, end })
        }
    }

    /// For bounds derived so that `start <= end` (checked in debug builds).
    pub(crate) fn from_ordered(start: u64, end: u64) -> Self {
        debug_assert!(start <= end, "{start:x} > {end:x}");
        Self {
            start: KeyHash::from_u64(start),
            end: KeyHash::from_u64(end),
        }
    }

    /// The hashes of partition `p` (which must exist with `q`).
    pub fn of_partition(q: PartitionCount, p: PartitionId) -> Result<Self> {
        if !q.contains(p) {
            return Err(Error::PartitionOutOfRange { q, partition: p });
        }
        let r = q.range(p);
        Ok(Self {
            start: KeyHash::from_u64(*r.start()),
            end: KeyHash::from_u64(*r.end()),
        })
    }

    /// First hash in the range.
    pub const fn start(self) -> KeyHash {
        self.start
    }

    /// Last hash in the range (inclusive).
    pub const fn end(self) -> KeyHash {
        self.end
    }

    /// Whether `h` is in the range.
    pub fn contains(self, h: KeyHash) -> bool {
        self.start <= h && h <= self.end
    }

    /// The range as raw hashes.
    pub const fn to_range_inclusive(self) -> RangeInclusive<u64> {
        self.start.as_u64()..=self.end.as_u64()
    }
}

impl TryFrom<RawRange> for KeyRange {
    type Error = Error;
    fn try_from(raw: RawRange) -> Result<Self> {
        Self::new(raw.start, raw.end)
    }
}

impl From<KeyRange> for RawRange {
    fn from(r: KeyRange) -> Self {
        Self {
            start: r.start,
            end: r.end,
        }
    }
}

impl fmt::Debug for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyRange({}..={})", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_shape_is_4096_leaves_in_70_kb() {
        let s = TreeShape::default();
        assert_eq!(s.fanout(), 16);
        assert_eq!(s.leaf_count(), 4096);
        assert_eq!(s.node_count(), 1 + 16 + 256 + 4096);
        assert_eq!(s.memory_bytes(), 69_904);
        assert_eq!(s.max_nodes_per_request(), 4096);
    }

    #[test]
    fn limits_are_enforced() {
        for (f, d) in [(1, 1), (8, 1), (1, 6), (4, 5), (5, 4), (2, 6)] {
            assert!(TreeShape::new(f, d).is_ok(), "({f}, {d})");
        }
        for (f, d) in [(0, 3), (9, 1), (4, 0), (1, 7), (4, 6), (8, 3), (7, 3)] {
            assert!(
                matches!(TreeShape::new(f, d), Err(Error::InvalidShape { .. })),
                "({f}, {d})"
            );
        }
    }

    #[test]
    fn wide_fanouts_request_fewer_nodes() {
        assert_eq!(TreeShape::new(8, 2).unwrap().max_nodes_per_request(), 256);
        assert_eq!(TreeShape::new(1, 6).unwrap().max_nodes_per_request(), 4096);
    }

    #[test]
    fn key_ranges_are_non_empty() {
        let (a, b) = (KeyHash::from_u64(5), KeyHash::from_u64(6));
        assert!(KeyRange::new(a, a).is_ok());
        assert!(KeyRange::new(a, b).unwrap().contains(b));
        assert_eq!(
            KeyRange::new(b, a),
            Err(Error::InvalidKeyRange { start: b, end: a })
        );
    }
}

use std::fmt;

use gyre_types::{KeyHash, PartitionCount, PartitionId};
use serde::{Deserialize, Serialize, Serializer};

use crate::digest::many;
use crate::{Error, ItemDigest, KeyRange, Result, TreeId, TreeShape};

/// An incremental hash tree over the keys of one partition (kept per n_val).
///
/// The leaf of a key hash is given by the `shape.leaf_bits()` bits just below
/// the partition's top `log2(Q)` bits, so leaf `i` covers a contiguous range of
/// hashes ([`MerkleTree::leaf_range`]) and the leaves tile the partition in hash order.
///
/// **Aggregation is XOR.** A leaf's digest is the XOR of the [`ItemDigest`]s of
/// the items under it; an inner node's digest is the XOR of its children's,
/// so every node is the XOR of all items below it. XOR is chosen because it is
/// order-independent (two replicas that applied the same writes in different
/// orders hold equal trees) and invertible: a write XORs the old digest out and
/// the new one in, touching one leaf and its `depth` ancestors, without reading
/// any other key or re-hashing any sibling (a hash-of-children tree must
/// re-hash `fanout` children at every level, and a hash-of-items leaf must
/// re-read its items).
///
/// The limits are the price of linearity. XOR is not a cryptographic
/// commitment: a peer that chooses items can forge any digest, so the tree
/// detects accidental divergence between honest replicas, not tampering (peers
/// are authenticated by TLS). Two sets of random 128-bit digests collide with
/// probability ~2^-128 per compared node. Equal item digests cancel, which is
/// why an item digest names both the key (qualified with its bucket) and its
/// version: one key appears once per tree, and the same key holding different
/// versions gives different digests.
///
/// The tree is exactly the XOR of the items only if every [`MerkleTree::update`]
/// passes the digest the item really had before; the storage layer must
/// update it in the same atomic write as the item, and can rebuild it with
/// [`MerkleTree::from_items`] when in doubt.
///
/// Serialisation stores the [`TreeId`] and the leaves only; deserialisation
/// validates them and recomputes the inner levels (see [`TreeParts`]).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "TreeParts")]
pub struct MerkleTree {
    id: TreeId,
    /// `levels[0]` is the root (one node), `levels[depth]` the leaves; level
    /// `l` has `fanout^l` nodes. Never resized after construction.
    levels: Vec<Vec<u128>>,
}

/// The persistent form of a [`MerkleTree`]: its identity and its leaf digests.
///
/// `MerkleTree::try_from(parts)` is the validating path (the one serde's
/// `Deserialize` takes): the partition must exist, the shape must fit the
/// partition, and there must be exactly one digest per leaf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeParts {
    /// Which tree this is.
    pub id: TreeId,
    /// One digest per leaf, in leaf order.
    #[serde(with = "many")]
    pub leaves: Vec<u128>,
}

impl MerkleTree {
    /// An empty tree (every digest zero) for `partition` of `q`.
    pub fn new(q: PartitionCount, partition: PartitionId, shape: TreeShape) -> Result<Self> {
        let id = TreeId::new(q, partition, shape)?;
        let levels = (0..=shape.depth())
            .filter_map(|l| shape.level_len(l))
            .map(|len| vec![0; len])
            .collect();
        Ok(Self { id, levels })
    }

    /// A tree with the given leaf digests (in leaf order); the inner levels are
    /// recomputed. For trees whose leaves were persisted.
    pub fn from_leaves(
        q: PartitionCount,
        partition: PartitionId,
        shape: TreeShape,
        leaves: Vec<u128>,
    ) -> Result<Self> {
        let id = TreeId::new(q, partition, shape)?;
        if leaves.len() != shape.leaf_count() {
            return Err(Error::LeafCount {
                expected: shape.leaf_count(),
                got: leaves.len(),
            });
        }
        let mut levels = vec![leaves];
        for _ in 0..shape.depth() {
            let parents = levels
                .last()
                .map(|children| {
                    children
                        .chunks_exact(shape.fanout())
                        .map(|c| c.iter().fold(0, |acc, d| acc ^ d))
                        .collect()
                })
                .unwrap_or_default();
            levels.push(parents);
        }
        levels.reverse();
        Ok(Self { id, levels })
    }

    /// A tree holding exactly `items` (key hash and item digest, in any order).
    /// For rebuilds from storage: one pass over the items, then one over the tree.
    pub fn from_items(
        q: PartitionCount,
        partition: PartitionId,
        shape: TreeShape,
        items: impl IntoIterator<Item = (KeyHash, ItemDigest)>,
    ) -> Result<Self> {
        let empty = Self::new(q, partition, shape)?;
        let mut leaves = vec![0u128; shape.leaf_count()];
        for (h, d) in items {
            let leaf = empty.leaf_of(h)?;
            if let Some(l) = leaves.get_mut(leaf) {
                *l ^= d.as_u128();
            }
        }
        Self::from_leaves(q, partition, shape, leaves)
    }

    /// Records that the item at `key_hash` changed from `old` to `new` digest
    /// (`None`: absent). O(depth); reads nothing but the path to the root.
    pub fn update(
        &mut self,
        key_hash: KeyHash,
        old: Option<ItemDigest>,
        new: Option<ItemDigest>,
    ) -> Result<()> {
        let leaf = self.leaf_of(key_hash)?;
        let delta = old.map_or(0, ItemDigest::as_u128) ^ new.map_or(0, ItemDigest::as_u128);
        if delta != 0 {
            let fanout_bits = self.id.shape().fanout_bits();
            let mut index = leaf;
            for level in self.levels.iter_mut().rev() {
                if let Some(node) = level.get_mut(index) {
                    *node ^= delta;
                }
                index >>= fanout_bits;
            }
        }
        Ok(())
    }

    /// Records a new item: `update(key_hash, None, Some(digest))`.
    pub fn insert(&mut self, key_hash: KeyHash, digest: ItemDigest) -> Result<()> {
        self.update(key_hash, None, Some(digest))
    }

    /// Records that an item is gone: `update(key_hash, Some(digest), None)`.
    pub fn remove(&mut self, key_hash: KeyHash, digest: ItemDigest) -> Result<()> {
        self.update(key_hash, Some(digest), None)
    }

    /// Forgets every item (all digests zero).
    pub fn clear(&mut self) {
        for level in &mut self.levels {
            level.fill(0);
        }
    }

    /// What the tree covers and how it is cut.
    pub const fn id(&self) -> TreeId {
        self.id
    }

    /// The partition count the tree was built for.
    pub const fn q(&self) -> PartitionCount {
        self.id.q()
    }

    /// The partition the tree covers.
    pub const fn partition(&self) -> PartitionId {
        self.id.partition()
    }

    /// The tree's shape.
    pub const fn shape(&self) -> TreeShape {
        self.id.shape()
    }

    /// The hashes the tree covers: its whole partition.
    pub fn range(&self) -> KeyRange {
        self.id.range()
    }

    /// The root digest: the XOR of every item in the partition (0 when empty).
    pub fn root(&self) -> u128 {
        self.node(0, 0).unwrap_or(0)
    }

    /// The digest of node `index` at `level` (0 = root), if it exists.
    pub fn node(&self, level: u8, index: usize) -> Option<u128> {
        self.level(level)?.get(index).copied()
    }

    /// All digests of `level`, if it exists.
    pub fn level(&self, level: u8) -> Option<&[u128]> {
        self.levels.get(usize::from(level)).map(Vec::as_slice)
    }

    /// The leaf digests, in leaf (and hash) order.
    pub fn leaves(&self) -> &[u128] {
        self.level(self.id.shape().depth()).unwrap_or_default()
    }

    /// The leaf that holds `key_hash`, or an error if the hash is outside the partition.
    pub fn leaf_of(&self, key_hash: KeyHash) -> Result<usize> {
        self.id.leaf_of(key_hash)
    }

    /// The hashes under node `index` at `level` (0 = root), if the node exists.
    pub fn node_range(&self, level: u8, index: usize) -> Option<KeyRange> {
        self.id.node_range(level, index)
    }

    /// The hashes under `leaf`, if the leaf exists.
    pub fn leaf_range(&self, leaf: usize) -> Option<KeyRange> {
        self.id.leaf_range(leaf)
    }

    /// The persistent form: identity and leaves.
    pub fn into_parts(self) -> TreeParts {
        let id = self.id;
        let leaves = self.levels.into_iter().last().unwrap_or_default();
        TreeParts { id, leaves }
    }
}

impl TryFrom<TreeParts> for MerkleTree {
    type Error = Error;
    fn try_from(parts: TreeParts) -> Result<Self> {
        let id = parts.id;
        Self::from_leaves(id.q(), id.partition(), id.shape(), parts.leaves)
    }
}

impl From<MerkleTree> for TreeParts {
    fn from(tree: MerkleTree) -> Self {
        tree.into_parts()
    }
}

impl Serialize for MerkleTree {
    /// Serialises as [`TreeParts`] (identity and leaves), without copying the leaves.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename = "TreeParts")]
        struct PartsRef<'a> {
            id: &'a TreeId,
            #[serde(with = "many")]
            leaves: &'a [u128],
        }
        PartsRef {
            id: &self.id,
            leaves: self.leaves(),
        }
        .serialize(s)
    }
}

impl fmt::Debug for MerkleTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerkleTree")
            .field("id", &self.id)
            .field("root", &format_args!("{:032x}", self.root()))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: u32) -> PartitionCount {
        PartitionCount::new(n).unwrap()
    }

    #[test]
    fn leaves_tile_the_partition_in_order() {
        let shape = TreeShape::new(2, 2).unwrap();
        let p = PartitionId::new(5);
        let t = MerkleTree::new(q(64), p, shape).unwrap();
        let mut next = *q(64).range(p).start();
        for leaf in 0..shape.leaf_count() {
            let r = t.leaf_range(leaf).unwrap();
            assert_eq!(r.start().as_u64(), next);
            assert_eq!(t.leaf_of(r.start()).unwrap(), leaf);
            assert_eq!(t.leaf_of(r.end()).unwrap(), leaf);
            next = r.end().as_u64().wrapping_add(1);
        }
        assert_eq!(next - 1, *q(64).range(p).end());
        assert_eq!(t.leaf_range(shape.leaf_count()), None);
        assert_eq!(t.node_range(0, 0), Some(t.range()));
        assert_eq!(t.node_range(3, 0), None);
    }

    #[test]
    fn last_partition_ends_at_the_top_of_the_hash_space() {
        let t = MerkleTree::new(q(4096), PartitionId::new(4095), TreeShape::DEFAULT).unwrap();
        let r = t.leaf_range(4095).unwrap();
        assert_eq!(r.end().as_u64(), u64::MAX);
        assert_eq!(t.leaf_of(KeyHash::from_u64(u64::MAX)).unwrap(), 4095);
    }

    #[test]
    fn keys_outside_the_partition_are_refused() {
        let mut t = MerkleTree::new(q(64), PartitionId::new(1), TreeShape::DEFAULT).unwrap();
        let outside = KeyHash::from_u64(0);
        let err = t.insert(outside, ItemDigest::from_u128(1)).unwrap_err();
        assert!(matches!(err, Error::KeyOutsidePartition { .. }));
        assert_eq!(t.root(), 0);
        assert!(MerkleTree::new(q(64), PartitionId::new(64), TreeShape::DEFAULT).is_err());
    }

    #[test]
    fn every_level_is_the_xor_of_the_items() {
        let mut t = MerkleTree::new(q(64), PartitionId::new(0), TreeShape::DEFAULT).unwrap();
        let items = [(1u64 << 40, 0xaa), (3u64 << 50, 0x0f), (1u64 << 20, 0xf0)];
        for (h, d) in items {
            t.insert(KeyHash::from_u64(h), ItemDigest::from_u128(d))
                .unwrap();
        }
        assert_eq!(t.root(), 0xaa ^ 0x0f ^ 0xf0);
        for level in 0..=3 {
            let sum = t.level(level).unwrap().iter().fold(0, |a, d| a ^ d);
            assert_eq!(sum, t.root(), "level {level}");
        }
        t.clear();
        assert!(t.leaves().iter().all(|&d| d == 0));
        assert_eq!(t.root(), 0);
    }
}

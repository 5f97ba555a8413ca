//! The Merkle tree and the size of every (partition, n_val) a store holds
//! objects in: kept in memory, and persisted (its changed leaves and its
//! size row) in the same batch as the objects that change them, so that
//! after a crash the trees and sizes sum exactly what the store holds, and
//! neither is ever recomputed by a scan except once after an upgrade.

use std::collections::{BTreeMap, HashMap};

use gyre_merkle::{ItemDigest, MerkleTree, TreeId, TreeShape};
use gyre_types::{KeyHash, PartitionCount, PartitionId};

use crate::codec;
use crate::engine::{Engine, Op, Space, SyncMode};
use crate::node_store::{BATCH, decode_stored, each_page};
use crate::{Error, Object, ObjectId, Result, TreeSize, meta, object_bytes};

/// How one object counts in its tree: which tree (its n_val), its digest
/// and its bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Filing {
    n_val: u8,
    digest: ItemDigest,
    bytes: u64,
}

impl Filing {
    /// `object` filed under `n_val`.
    pub(crate) fn of(id: &ObjectId, n_val: u8, object: &Object) -> Self {
        Self {
            n_val,
            digest: ItemDigest::of_bucket_key(id.bucket(), id.key(), object.version_digest()),
            bytes: object_bytes(id.key(), object),
        }
    }

    /// A state's filing (`None`: no record).
    pub(crate) fn of_state(id: &ObjectId, state: Option<&(u8, Object)>) -> Option<Self> {
        state.map(|(n_val, object)| Self::of(id, *n_val, object))
    }
}

/// A planned change to one tree: apply once the batch that persists its
/// leaf and size is written.
pub(crate) struct TreeChange {
    tree: (PartitionId, u8),
    hash: KeyHash,
    old: Option<(ItemDigest, u64)>,
    new: Option<(ItemDigest, u64)>,
}

impl TreeChange {
    /// Objects and bytes this change adds to its tree (negative: removes).
    fn size_delta(&self) -> SizeDelta {
        let count = |s: &Option<(ItemDigest, u64)>| i128::from(s.is_some());
        let bytes = |s: &Option<(ItemDigest, u64)>| s.map_or(0, |(_, b)| i128::from(b));
        SizeDelta {
            objects: count(&self.new) - count(&self.old),
            bytes: bytes(&self.new) - bytes(&self.old),
        }
    }
}

/// A change of a tree's size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SizeDelta {
    objects: i128,
    bytes: i128,
}

impl SizeDelta {
    fn add(&mut self, other: Self) {
        self.objects += other.objects;
        self.bytes += other.bytes;
    }

    /// `size` changed by this delta (never below zero: a size that would go
    /// negative was off, and `verify_trees` reports it).
    fn applied_to(self, size: TreeSize) -> TreeSize {
        let clamp =
            |now: u64, d: i128| u64::try_from((i128::from(now) + d).max(0)).unwrap_or(u64::MAX);
        TreeSize {
            objects: clamp(size.objects, self.objects),
            bytes: clamp(size.bytes, self.bytes),
        }
    }
}

/// What one batch changes of the trees: per (partition, n_val, leaf), the
/// XOR of every change to it, and per tree the change of its size.
/// Objects of a batch that share a leaf each count, and the batch writes
/// the leaf (and the size) once.
#[derive(Default)]
pub(crate) struct LeafWrites {
    leaves: BTreeMap<(PartitionId, u8, usize), u128>,
    sizes: BTreeMap<(PartitionId, u8), SizeDelta>,
}

/// The trees and sizes of every (partition, n_val) the store holds objects
/// in.
pub(crate) struct Trees {
    q: PartitionCount,
    shape: TreeShape,
    map: HashMap<(PartitionId, u8), MerkleTree>,
    sizes: HashMap<(PartitionId, u8), TreeSize>,
}

impl Trees {
    fn empty(&self, partition: PartitionId) -> Result<MerkleTree> {
        tree_error(MerkleTree::new(self.q, partition, self.shape))
    }

    pub(crate) fn get(&self, partition: PartitionId, n_val: u8) -> Result<MerkleTree> {
        match self.map.get(&(partition, n_val)) {
            Some(t) => Ok(t.clone()),
            None => self.empty(partition),
        }
    }

    pub(crate) fn non_empty(&self) -> Vec<(PartitionId, u8)> {
        let mut out: Vec<_> = self
            .map
            .iter()
            .filter(|(_, t)| t.leaves().iter().any(|&d| d != 0))
            .map(|(&k, _)| k)
            .collect();
        out.sort_unstable();
        out
    }

    /// The size of every tree that holds objects.
    pub(crate) fn sizes(&self) -> BTreeMap<(PartitionId, u8), TreeSize> {
        self.sizes.iter().map(|(&k, &s)| (k, s)).collect()
    }

    fn size(&self, tree: (PartitionId, u8)) -> TreeSize {
        self.sizes.get(&tree).copied().unwrap_or_default()
    }

    /// Plans moving the item at `hash` from `old` to `new` (`None`:
    /// absent): the changes to apply once written, and their part of the
    /// batch's writes in `writes`.
    pub(crate) fn plan(
        &mut self,
        hash: KeyHash,
        old: Option<Filing>,
        new: Option<Filing>,
        writes: &mut LeafWrites,
    ) -> Result<Vec<TreeChange>> {
        let partition = self.q.partition_of(hash);
        let mut changes = Vec::with_capacity(2);
        let counted = |f: Filing| Some((f.digest, f.bytes));
        match (old, new) {
            (Some(o), Some(n)) if o.n_val == n.n_val => {
                changes.push(TreeChange {
                    tree: (partition, n.n_val),
                    hash,
                    old: counted(o),
                    new: counted(n),
                });
            }
            (old, new) => {
                if let Some(o) = old {
                    changes.push(TreeChange {
                        tree: (partition, o.n_val),
                        hash,
                        old: counted(o),
                        new: None,
                    });
                }
                if let Some(n) = new {
                    changes.push(TreeChange {
                        tree: (partition, n.n_val),
                        hash,
                        old: None,
                        new: counted(n),
                    });
                }
            }
        }
        for c in &changes {
            let digest = |s: Option<(ItemDigest, u64)>| s.map_or(0, |(d, _)| d.as_u128());
            let delta = digest(c.old) ^ digest(c.new);
            if !self.map.contains_key(&c.tree) {
                let empty = self.empty(partition)?;
                self.map.insert(c.tree, empty);
            }
            let Some(tree) = self.map.get(&c.tree) else {
                continue;
            };
            let leaf = tree_error(tree.leaf_of(hash))?;
            *writes.leaves.entry((c.tree.0, c.tree.1, leaf)).or_default() ^= delta;
            writes.sizes.entry(c.tree).or_default().add(c.size_delta());
        }
        Ok(changes)
    }

    /// Appends to `ops` one write per leaf that `writes` changes (its
    /// digest with every change of the batch applied) and one per tree
    /// whose size it changes.
    pub(crate) fn leaf_ops(&self, writes: LeafWrites, ops: &mut Vec<Op>) {
        for ((partition, n_val, leaf), delta) in writes.leaves {
            let key = codec::leaf_key(partition, n_val, leaf as u32).to_vec();
            ops.push(match self.leaf(partition, n_val, leaf) ^ delta {
                0 => Op::Delete(Space::Leaves, key),
                d => Op::Put(Space::Leaves, key, codec::encode_leaf(d).to_vec()),
            });
        }
        for (tree, delta) in writes.sizes {
            if delta == SizeDelta::default() {
                continue;
            }
            let key = codec::sizes_key(tree.0, tree.1).to_vec();
            ops.push(match delta.applied_to(self.size(tree)) {
                s if s.objects == 0 => Op::Delete(Space::Leaves, key),
                s => Op::Put(Space::Leaves, key, codec::encode_sizes(s).to_vec()),
            });
        }
    }

    /// Applies changes whose leaves and sizes were written.
    pub(crate) fn apply(&mut self, changes: Vec<TreeChange>) {
        for c in changes {
            if let Some(tree) = self.map.get_mut(&c.tree) {
                // The hash lies in the tree's partition (plan derived the
                // partition from it), so update cannot fail.
                let _ = tree.update(c.hash, c.old.map(|(d, _)| d), c.new.map(|(d, _)| d));
            }
            let size = c.size_delta().applied_to(self.size(c.tree));
            if size.objects == 0 {
                self.sizes.remove(&c.tree);
            } else {
                self.sizes.insert(c.tree, size);
            }
        }
    }

    /// The trees of `partition`, by n_val.
    pub(crate) fn of_partition(
        &self,
        partition: PartitionId,
    ) -> impl Iterator<Item = (u8, &MerkleTree)> {
        self.map
            .iter()
            .filter(move |((p, _), _)| *p == partition)
            .map(|(&(_, n_val), tree)| (n_val, tree))
    }

    /// A leaf's digest (0 where the store holds no tree).
    pub(crate) fn leaf(&self, partition: PartitionId, n_val: u8, leaf: usize) -> u128 {
        self.map
            .get(&(partition, n_val))
            .and_then(|t| t.leaves().get(leaf).copied())
            .unwrap_or(0)
    }

    pub(crate) fn forget_partition(&mut self, partition: PartitionId) {
        self.map.retain(|(p, _), _| *p != partition);
        self.sizes.retain(|(p, _), _| *p != partition);
    }

    /// Loads the persisted trees and sizes, or rebuilds them from the
    /// objects when they were kept in another shape, never kept, or kept
    /// by an earlier format: format 1's leaves may be off (a batch that
    /// changed a leaf twice persisted only its last change), and format 2
    /// kept no sizes.
    pub(crate) fn load<E: Engine>(engine: &E, q: PartitionCount, shape: TreeShape) -> Result<Self> {
        let mut trees = Self {
            q,
            shape,
            map: HashMap::new(),
            sizes: HashMap::new(),
        };
        let stored_shape: Option<TreeShape> = engine
            .get(Space::Meta, meta::MERKLE_TREES.as_bytes())?
            .map(|b| meta::decode(meta::MERKLE_TREES, b.as_ref()))
            .transpose()?;
        let earlier = |name: &str| engine.get(Space::Meta, name.as_bytes());
        if stored_shape == Some(shape) {
            match Self::load_rows(engine, q, shape) {
                Ok((map, sizes)) => {
                    trees.map = map;
                    trees.sizes = sizes;
                    return Ok(trees);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "stored Merkle leaves are unusable; rebuilding the trees from the data");
                }
            }
        } else if earlier(meta::MERKLE_SHAPE_V1)?.is_some() {
            tracing::info!(
                "Merkle leaves kept by an earlier version may be off where a batch changed a leaf twice; rebuilding the trees from the data once"
            );
        } else if earlier(meta::MERKLE_LEAVES_V2)?.is_some() {
            tracing::info!(
                "an earlier version kept no per-partition sizes; rebuilding the trees and sizes from the data once"
            );
        } else {
            tracing::info!(
                ?stored_shape,
                ?shape,
                "Merkle trees are kept in another shape (or not at all); rebuilding them from the data"
            );
        }
        // Until the rebuild is complete no marker is present, so a crash
        // midway rebuilds again at the next open.
        engine.write(
            [
                meta::MERKLE_TREES,
                meta::MERKLE_LEAVES_V2,
                meta::MERKLE_SHAPE_V1,
            ]
            .into_iter()
            .map(|name| Op::Delete(Space::Meta, name.as_bytes().to_vec()))
            .collect(),
        )?;
        trees.rebuild(engine)?;
        let marker = meta::encode(meta::MERKLE_TREES, &shape)?;
        engine.write(vec![Op::Put(
            Space::Meta,
            meta::MERKLE_TREES.as_bytes().to_vec(),
            marker,
        )])?;
        engine.sync(SyncMode::Disk)?;
        Ok(trees)
    }

    /// Reads the persisted leaves and sizes of every tree.
    #[allow(clippy::type_complexity)]
    fn load_rows<E: Engine>(
        engine: &E,
        q: PartitionCount,
        shape: TreeShape,
    ) -> Result<(
        HashMap<(PartitionId, u8), MerkleTree>,
        HashMap<(PartitionId, u8), TreeSize>,
    )> {
        let mut leaves: HashMap<(PartitionId, u8), Vec<u128>> = HashMap::new();
        let mut sizes = HashMap::new();
        each_page(engine, Space::Leaves, |rows| {
            for (k, v) in rows {
                let corrupt = |reason| Error::Corrupt {
                    location: format!("merkle leaf {}", codec::hex(k)),
                    reason,
                };
                let (p, n, leaf) = codec::decode_leaf_key(k).map_err(corrupt)?;
                if !q.contains(p) {
                    return Err(corrupt("leaf outside the configured trees".to_owned()));
                }
                if leaf == codec::SIZES_LEAF {
                    sizes.insert((p, n), codec::decode_sizes(v.as_ref()).map_err(corrupt)?);
                    continue;
                }
                let digest = codec::decode_leaf(v.as_ref()).map_err(corrupt)?;
                let slot = leaves
                    .entry((p, n))
                    .or_insert_with(|| vec![0; shape.leaf_count()])
                    .get_mut(leaf as usize);
                match slot {
                    Some(slot) => *slot = digest,
                    None => return Err(corrupt("leaf outside the configured trees".to_owned())),
                }
            }
            Ok(())
        })?;
        let map = leaves
            .into_iter()
            .map(|((p, n), l)| Ok(((p, n), tree_error(MerkleTree::from_leaves(q, p, shape, l))?)))
            .collect::<Result<_>>()?;
        Ok((map, sizes))
    }

    /// Recomputes every tree and size from the objects and rewrites them.
    fn rebuild<E: Engine>(&mut self, engine: &E) -> Result<()> {
        self.map.clear();
        self.sizes.clear();
        each_page(engine, Space::Leaves, |rows| {
            let ops = rows
                .iter()
                .map(|(k, _)| Op::Delete(Space::Leaves, k.clone()));
            engine.write(ops.collect())
        })?;
        let (q, shape) = (self.q, self.shape);
        let mut leaves: HashMap<(PartitionId, u8), Vec<u128>> = HashMap::new();
        let (mut seen, mut skipped) = (0u64, 0u64);
        each_page(engine, Space::Objects, |rows| {
            for (k, v) in rows {
                seen += 1;
                let s = match decode_stored(k, v.as_ref()) {
                    Ok(s) => s,
                    Err(e) => {
                        skipped += 1;
                        tracing::warn!(error = %e, "skipping a corrupt object while rebuilding Merkle trees");
                        continue;
                    }
                };
                let p = q.partition_of(s.id.hash());
                let leaf =
                    tree_error(TreeId::new(q, p, shape).and_then(|t| t.leaf_of(s.id.hash())))?;
                let filing = Filing::of(&s.id, s.n_val, &s.object);
                if let Some(slot) = leaves
                    .entry((p, s.n_val))
                    .or_insert_with(|| vec![0; shape.leaf_count()])
                    .get_mut(leaf)
                {
                    *slot ^= filing.digest.as_u128();
                }
                let size = self.sizes.entry((p, s.n_val)).or_default();
                size.objects += 1;
                size.bytes += filing.bytes;
            }
            if seen % (100 * BATCH as u64) < rows.len() as u64 {
                tracing::info!(objects = seen, "rebuilding Merkle trees");
            }
            Ok(())
        })?;
        let mut ops = Vec::new();
        let flush = |ops: &mut Vec<Op>, force: bool| {
            if force || ops.len() >= BATCH {
                engine.write(std::mem::take(ops))
            } else {
                Ok(())
            }
        };
        for ((p, n), l) in leaves {
            for (i, &d) in l.iter().enumerate().filter(|(_, d)| **d != 0) {
                ops.push(Op::Put(
                    Space::Leaves,
                    codec::leaf_key(p, n, i as u32).to_vec(),
                    codec::encode_leaf(d).to_vec(),
                ));
                flush(&mut ops, false)?;
            }
            self.map
                .insert((p, n), tree_error(MerkleTree::from_leaves(q, p, shape, l))?);
        }
        for (&(p, n), &size) in &self.sizes {
            ops.push(Op::Put(
                Space::Leaves,
                codec::sizes_key(p, n).to_vec(),
                codec::encode_sizes(size).to_vec(),
            ));
            flush(&mut ops, false)?;
        }
        flush(&mut ops, true)?;
        tracing::info!(
            objects = seen,
            skipped,
            trees = self.map.len(),
            "Merkle trees rebuilt"
        );
        Ok(())
    }
}

/// Tree errors here mean the store's own configuration is inconsistent.
pub(crate) fn tree_error<T>(r: std::result::Result<T, gyre_merkle::Error>) -> Result<T> {
    r.map_err(|e| Error::Config(e.to_string()))
}

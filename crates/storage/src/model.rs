use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use gyre_merkle::MerkleTree;
use gyre_types::{BucketName, Key, KeyHash, PartitionId};
use gyre_versioning::DvvSet;

/// A value as stored: bytes, cheap to clone and to share between replicas.
pub type Value = Bytes;

/// Everything a replica knows of one key: its DVV set (values, siblings,
/// tombstones and causal context).
pub type Object = DvvSet<Value>;

/// Which object: a key in a bucket, with its ring hash computed once.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ObjectId {
    bucket: BucketName,
    key: Key,
    hash: KeyHash,
}

impl ObjectId {
    /// The object `key` of `bucket`.
    pub fn new(bucket: BucketName, key: Key) -> Self {
        let hash = KeyHash::of(&bucket, &key);
        Self { bucket, key, hash }
    }

    /// The bucket.
    pub fn bucket(&self) -> &BucketName {
        &self.bucket
    }

    /// The key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The key's position on the ring.
    pub fn hash(&self) -> KeyHash {
        self.hash
    }
}

impl PartialOrd for ObjectId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ObjectId {
    /// Storage order: by hash, then bucket, then key.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (
            self.hash,
            self.bucket.as_str().len(),
            &self.bucket,
            &self.key,
        )
            .cmp(&(
                other.hash,
                other.bucket.as_str().len(),
                &other.bucket,
                &other.key,
            ))
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:?}", self.bucket, self.key)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// What an [`update`](crate::Store::update) closure decided.
#[derive(Debug)]
pub enum Change<T> {
    /// Write nothing; the update returns `T`.
    Keep(T),
    /// Store this object (an empty one removes the record); the update returns `T`.
    Write(Object, T),
}

/// An object as iterated: which it is, which Merkle tree it belongs to
/// (its bucket's n_val when it was last written), and its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Which object.
    pub id: ObjectId,
    /// The n_val of its tree.
    pub n_val: u8,
    /// Its state.
    pub object: Object,
}

/// A write held for another node under sloppy quorum: the state to merge
/// into the owner's replica once it is reachable again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hint {
    /// Which object.
    pub id: ObjectId,
    /// The n_val of its bucket when the write was made.
    pub n_val: u8,
    /// The state to merge into the owner's.
    pub object: Object,
}

/// A hint's place in its target's queue. Ids grow with arrival, per target,
/// and are never reused (not even after every hint was removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HintId(pub(crate) u64);

impl HintId {
    /// The sequence number (for logs and status pages).
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for HintId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One page of a partition scan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// Objects in key-hash order.
    pub items: Vec<Stored>,
    /// Where the next page starts (pass it as `after`), or `None` at the end
    /// of the partition.
    pub next: Option<ObjectId>,
}

/// What one (partition, n_val) tree's objects hold, kept with the tree
/// ([`Store::tree_sizes`](crate::Store::tree_sizes)): read without a scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeSize {
    /// Objects, tombstones included.
    pub objects: u64,
    /// Their bytes as [`object_bytes`] counts them.
    pub bytes: u64,
}

/// An object's bytes as sizes count them: its key and its values (what a
/// client wrote), not its encoding, version vectors or tombstones.
pub fn object_bytes(key: &Key, object: &Object) -> u64 {
    key.as_bytes().len() as u64 + object.values().map(|v| v.len() as u64).sum::<u64>()
}

/// A Merkle tree (or its kept size) that disagrees with the data it should
/// summarise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeMismatch {
    /// The partition.
    pub partition: PartitionId,
    /// The n_val of the tree.
    pub n_val: u8,
    /// The root the store keeps.
    pub kept_root: u128,
    /// The root computed from the data.
    pub data_root: u128,
    /// The size the store keeps.
    pub kept_size: TreeSize,
    /// The size counted from the data.
    pub data_size: TreeSize,
}

/// Copies of one partition's Merkle trees, one per n_val, taken together
/// ([`Store::partition_trees`](crate::Store::partition_trees)): what a
/// hand-off that starts after the copy promises to have copied. Only
/// objects whose leaves still match it are dropped
/// ([`Store::drop_partition`](crate::Store::drop_partition)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionTrees {
    /// The partition.
    pub partition: PartitionId,
    /// Its trees by n_val (n_vals without objects are absent).
    pub trees: BTreeMap<u8, MerkleTree>,
}

/// What [`Store::drop_partition`](crate::Store::drop_partition) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Objects removed.
    pub objects: u64,
    /// Leaves whose objects were kept because they changed after the copy
    /// of the trees was taken (written since: not handed off yet).
    pub changed_leaves: u64,
}

impl Dropped {
    /// Whether the partition is gone whole (nothing changed since the copy).
    pub const fn is_complete(self) -> bool {
        self.changed_leaves == 0
    }
}

use std::collections::BTreeMap;

use gyre_merkle::MerkleTree;
use gyre_ring::Layout;
use gyre_types::{BucketName, BucketProps, KeyHash, NodeId, PartitionId};

use crate::{
    Change, Dropped, Hint, HintId, Object, ObjectId, PartitionTrees, Result, ScanPage, StoreConfig,
    TreeMismatch, TreeSize,
};

/// Everything a node keeps durably: objects with their Merkle trees, hint
/// queues and node metadata.
///
/// Implemented by [`FjallStore`](crate::FjallStore) (on disk) and
/// [`MemStore`](crate::MemStore) (in memory); `tests/conformance.rs` holds
/// both to the same behaviour.
///
/// Every write is atomic (an object and its Merkle leaves change together
/// or not at all) and returns only once it is as durable as the store's
/// [`Durability`](crate::Durability) promises. Input over the configured
/// [`Limits`](crate::Limits) is refused with a typed error and writes nothing.
pub trait Store: Send + Sync {
    /// How the store was opened.
    fn config(&self) -> &StoreConfig;

    /// The state of an object, or `None` if the store holds no record of it.
    ///
    /// # Errors
    /// [`Error::Corrupt`](crate::Error::Corrupt) naming the object if its
    /// record does not decode.
    fn get(&self, id: &ObjectId) -> Result<Option<Object>>;

    /// Reads, changes and writes one object atomically with respect to every
    /// other update of it: `f` sees the current state and decides. The
    /// object is filed under the Merkle tree of (its partition, `n_val`).
    ///
    /// `f` runs under the object's lock and must not call the store.
    ///
    /// # Errors
    /// [`Error::KeyTooLong`](crate::Error::KeyTooLong) before `f` runs;
    /// [`Error::ValueTooLarge`](crate::Error::ValueTooLarge) if `f` adds a
    /// value over the limit (nothing is written); `Corrupt` if the current
    /// record does not decode; `Fatal` if the write could not be made durable.
    fn update<T>(
        &self,
        id: &ObjectId,
        n_val: u8,
        f: impl FnOnce(Option<&Object>) -> Change<T>,
    ) -> Result<T>;

    /// Updates several objects in one atomic write and one durability
    /// wait: as [`update`](Self::update) for each `(id, n_val)` in order,
    /// `f` given the update's index and the object's state (a key named
    /// twice sees its earlier change). Every check is made before anything
    /// is written: an error writes nothing.
    ///
    /// `f` runs under the objects' locks and must not call the store.
    ///
    /// # Errors
    /// As [`update`](Self::update), for any of the objects.
    fn update_many<T>(
        &self,
        ids: &[(ObjectId, u8)],
        f: impl FnMut(usize, Option<&Object>) -> Change<T>,
    ) -> Result<Vec<T>>;

    /// Removes an object if its
    /// [`version_digest`](gyre_versioning::DvvSet::version_digest) is still
    /// `version` and it holds only tombstones and values that expire
    /// ([`is_transient`](gyre_versioning::DvvSet::is_transient)); returns
    /// whether it did. Tombstones and expired values stay until this is
    /// called: the replication layer decides when every replica holds the
    /// same deleted state (which the digest pins, expiries included).
    fn purge(&self, id: &ObjectId, version: u128) -> Result<bool>;

    /// Up to `limit` objects of `partition` in key-hash order, starting after
    /// `after` (the `next` of the previous page).
    fn scan(
        &self,
        partition: PartitionId,
        after: Option<&ObjectId>,
        limit: usize,
    ) -> Result<ScanPage>;

    /// Up to `limit` objects whose key hash is at least `from`, in key-hash
    /// order, within the partition that holds `from` (a key listing resumed
    /// from a position that names no object). `next` is as in
    /// [`scan`](Self::scan).
    fn scan_from(&self, from: KeyHash, limit: usize) -> Result<ScanPage>;

    /// Copies of the Merkle trees of `partition` (every n_val), taken at
    /// one moment: take them before handing the partition off, and give
    /// them to [`drop_partition`](Self::drop_partition) after.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for a partition out of range.
    fn partition_trees(&self, partition: PartitionId) -> Result<PartitionTrees>;

    /// Removes the objects of a partition that were handed off: those in
    /// leaves (of every n_val's tree) that are as in `handed_off`, the
    /// copy of the trees taken before the hand-off started. A leaf that
    /// changed since (a write arrived) keeps its objects, for the next
    /// hand-off; its digest is compared again before every batch, so a
    /// write that lands during the drop is kept too. Once the partition
    /// holds no object its trees go. Done in batches, each of which keeps
    /// data and trees in agreement, so an interrupted drop can simply be
    /// called again.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for a partition out of range
    /// or trees of another shape; `Fatal` if a batch could not be written.
    fn drop_partition(&self, handed_off: &PartitionTrees) -> Result<Dropped>;

    /// A copy of the Merkle tree of (`partition`, `n_val`), empty if the store
    /// holds no object there.
    fn merkle_tree(&self, partition: PartitionId, n_val: u8) -> Result<MerkleTree>;

    /// The (partition, n_val) pairs that have a non-empty Merkle tree.
    fn merkle_trees(&self) -> Vec<(PartitionId, u8)>;

    /// The size of every (partition, n_val) tree that holds objects: kept
    /// with the trees, changed in the same batches as the objects, so this
    /// reads no object.
    fn tree_sizes(&self) -> BTreeMap<(PartitionId, u8), TreeSize>;

    /// Queues `hint` for `target`; returns its place in the queue.
    fn add_hint(&self, target: NodeId, hint: &Hint) -> Result<HintId>;

    /// Up to `limit` of `target`'s hints in arrival order, after `after`.
    fn hints(
        &self,
        target: NodeId,
        after: Option<HintId>,
        limit: usize,
    ) -> Result<Vec<(HintId, Hint)>>;

    /// Removes a delivered hint; returns whether it was there.
    fn remove_hint(&self, target: NodeId, id: HintId) -> Result<bool>;

    /// How many hints wait, per target node (targets with none are absent).
    fn hint_backlog(&self) -> BTreeMap<NodeId, u64>;

    /// A metadata entry's raw bytes. Prefer the typed accessors below.
    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>>;

    /// Sets a metadata entry (durably, as every write).
    fn set_meta(&self, name: &str, bytes: Vec<u8>) -> Result<()>;

    /// Sets several metadata entries in one atomic write: after a crash
    /// either every one of them changed or none did.
    fn set_metas(&self, entries: Vec<(String, Vec<u8>)>) -> Result<()>;

    /// Metadata entries whose names start with `prefix`, in name order.
    fn meta_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>>;

    /// Makes everything written so far durable on disk, whatever the
    /// durability mode (for a clean shutdown).
    fn flush(&self) -> Result<()>;

    /// Whether the store failed (a write or an fsync did: a full disk, a
    /// failing device) and refuses every write until the node restarts.
    fn has_failed(&self) -> bool;

    /// This node's id, once set.
    fn node_id(&self) -> Result<Option<NodeId>> {
        crate::meta::get(self, crate::meta::NODE_ID)
    }

    /// Records this node's id.
    fn set_node_id(&self, id: NodeId) -> Result<()> {
        crate::meta::set(self, crate::meta::NODE_ID, &id)
    }

    /// The cluster this node belongs to, once set.
    fn cluster_id(&self) -> Result<Option<String>> {
        crate::meta::get(self, crate::meta::CLUSTER_ID)
    }

    /// Records the cluster this node belongs to.
    fn set_cluster_id(&self, id: &str) -> Result<()> {
        crate::meta::set(self, crate::meta::CLUSTER_ID, &id)
    }

    /// The last ring layout this node committed to, once set.
    fn layout(&self) -> Result<Option<Layout>> {
        crate::meta::get(self, crate::meta::LAYOUT)
    }

    /// Records the current ring layout.
    fn set_layout(&self, layout: &Layout) -> Result<()> {
        crate::meta::set(self, crate::meta::LAYOUT, layout)
    }

    /// The older layouts still in use while a layout change moves data
    /// (oldest first; empty when none).
    fn older_layouts(&self) -> Result<Vec<Layout>> {
        Ok(crate::meta::get(self, crate::meta::OLDER_LAYOUTS)?.unwrap_or_default())
    }

    /// Records the older layouts still in use.
    fn set_older_layouts(&self, layouts: &[Layout]) -> Result<()> {
        crate::meta::set(self, crate::meta::OLDER_LAYOUTS, layouts)
    }

    /// Records the layouts in use, `older` (oldest first) and `current`,
    /// and the raw metadata entries `also`, in one atomic write: a crash
    /// never leaves a current layout beside older ones of another moment.
    fn set_layouts(
        &self,
        older: &[Layout],
        current: &Layout,
        also: Vec<(String, Vec<u8>)>,
    ) -> Result<()> {
        use crate::meta::{LAYOUT, OLDER_LAYOUTS, encode};
        let mut entries = vec![
            (LAYOUT.to_owned(), encode(LAYOUT, current)?),
            (OLDER_LAYOUTS.to_owned(), encode(OLDER_LAYOUTS, older)?),
        ];
        entries.extend(also);
        self.set_metas(entries)
    }

    /// The properties of `bucket`, if they were ever set.
    fn bucket_props(&self, bucket: &BucketName) -> Result<Option<BucketProps>> {
        crate::meta::get(self, &crate::meta::bucket(bucket))
    }

    /// Records the properties of `bucket`.
    fn set_bucket_props(&self, bucket: &BucketName, props: &BucketProps) -> Result<()> {
        crate::meta::set(self, &crate::meta::bucket(bucket), props)
    }

    /// Every bucket with recorded properties.
    fn all_bucket_props(&self) -> Result<BTreeMap<BucketName, BucketProps>> {
        crate::meta::all_buckets(self)
    }

    /// Rebuilds every Merkle tree and size from the data and lists the
    /// trees whose kept leaves or size disagree (none, unless something is
    /// badly wrong). Reads everything: for tests and operator checks.
    fn verify_trees(&self) -> Result<Vec<TreeMismatch>> {
        crate::verify::verify_trees(self)
    }
}

/// A shared store is a store: a node and whatever outlives it (a simulated
/// crash and restart over the same data, a test that inspects it) can hold
/// one `Arc` each. Every call goes to the shared store, default methods
/// included.
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn config(&self) -> &StoreConfig {
        (**self).config()
    }

    fn get(&self, id: &ObjectId) -> Result<Option<Object>> {
        (**self).get(id)
    }

    fn update<T>(
        &self,
        id: &ObjectId,
        n_val: u8,
        f: impl FnOnce(Option<&Object>) -> Change<T>,
    ) -> Result<T> {
        (**self).update(id, n_val, f)
    }

    fn update_many<T>(
        &self,
        ids: &[(ObjectId, u8)],
        f: impl FnMut(usize, Option<&Object>) -> Change<T>,
    ) -> Result<Vec<T>> {
        (**self).update_many(ids, f)
    }

    fn purge(&self, id: &ObjectId, version: u128) -> Result<bool> {
        (**self).purge(id, version)
    }

    fn scan(
        &self,
        partition: PartitionId,
        after: Option<&ObjectId>,
        limit: usize,
    ) -> Result<ScanPage> {
        (**self).scan(partition, after, limit)
    }

    fn scan_from(&self, from: KeyHash, limit: usize) -> Result<ScanPage> {
        (**self).scan_from(from, limit)
    }

    fn partition_trees(&self, partition: PartitionId) -> Result<PartitionTrees> {
        (**self).partition_trees(partition)
    }

    fn drop_partition(&self, handed_off: &PartitionTrees) -> Result<Dropped> {
        (**self).drop_partition(handed_off)
    }

    fn merkle_tree(&self, partition: PartitionId, n_val: u8) -> Result<MerkleTree> {
        (**self).merkle_tree(partition, n_val)
    }

    fn merkle_trees(&self) -> Vec<(PartitionId, u8)> {
        (**self).merkle_trees()
    }

    fn tree_sizes(&self) -> BTreeMap<(PartitionId, u8), TreeSize> {
        (**self).tree_sizes()
    }

    fn add_hint(&self, target: NodeId, hint: &Hint) -> Result<HintId> {
        (**self).add_hint(target, hint)
    }

    fn hints(
        &self,
        target: NodeId,
        after: Option<HintId>,
        limit: usize,
    ) -> Result<Vec<(HintId, Hint)>> {
        (**self).hints(target, after, limit)
    }

    fn remove_hint(&self, target: NodeId, id: HintId) -> Result<bool> {
        (**self).remove_hint(target, id)
    }

    fn hint_backlog(&self) -> BTreeMap<NodeId, u64> {
        (**self).hint_backlog()
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        (**self).meta(name)
    }

    fn set_meta(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        (**self).set_meta(name, bytes)
    }

    fn set_metas(&self, entries: Vec<(String, Vec<u8>)>) -> Result<()> {
        (**self).set_metas(entries)
    }

    fn meta_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        (**self).meta_with_prefix(prefix)
    }

    fn flush(&self) -> Result<()> {
        (**self).flush()
    }

    fn has_failed(&self) -> bool {
        (**self).has_failed()
    }

    fn node_id(&self) -> Result<Option<NodeId>> {
        (**self).node_id()
    }

    fn set_node_id(&self, id: NodeId) -> Result<()> {
        (**self).set_node_id(id)
    }

    fn cluster_id(&self) -> Result<Option<String>> {
        (**self).cluster_id()
    }

    fn set_cluster_id(&self, id: &str) -> Result<()> {
        (**self).set_cluster_id(id)
    }

    fn layout(&self) -> Result<Option<Layout>> {
        (**self).layout()
    }

    fn set_layout(&self, layout: &Layout) -> Result<()> {
        (**self).set_layout(layout)
    }

    fn bucket_props(&self, bucket: &BucketName) -> Result<Option<BucketProps>> {
        (**self).bucket_props(bucket)
    }

    fn set_bucket_props(&self, bucket: &BucketName, props: &BucketProps) -> Result<()> {
        (**self).set_bucket_props(bucket, props)
    }

    fn all_bucket_props(&self) -> Result<BTreeMap<BucketName, BucketProps>> {
        (**self).all_bucket_props()
    }

    fn verify_trees(&self) -> Result<Vec<TreeMismatch>> {
        (**self).verify_trees()
    }
}

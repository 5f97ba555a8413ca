use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
#[cfg(feature = "fjall")]
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use gyre_merkle::{MerkleTree, TreeId};
use gyre_types::{BucketProps, KeyHash, NodeId, PartitionCount, PartitionId};

#[cfg(feature = "fjall")]
use crate::FjallEngine;
use crate::codec::{self, DecodeError};
use crate::durability::Syncer;
use crate::engine::{Engine, MemEngine, Op, Space};
use crate::trees::{Filing, LeafWrites, Trees, tree_error};
use crate::{
    Change, Dropped, Error, Hint, HintId, Object, ObjectId, PartitionTrees, Result, ScanPage,
    Store, StoreConfig, Stored, TreeSize, meta,
};

/// An object as filed: the n_val of its tree and its state (`None`: no
/// record).
type Filed = Option<(u8, Object)>;

/// Object locks: updates of one object are serialised by the stripe its
/// hash falls in.
const STRIPES: usize = 1024;

/// Objects per batch when dropping a partition or rebuilding trees.
pub(crate) const BATCH: usize = 1024;

/// A node's store: the logic shared by every engine. Use it as
/// [`FjallStore`] or [`MemStore`].
///
/// Lock order: an object's stripe, then the trees, then the engine's own.
/// Hint queues and metadata take only their own lock.
pub struct NodeStore<E: Engine> {
    engine: Arc<E>,
    config: StoreConfig,
    stripes: Box<[Mutex<()>]>,
    trees: Mutex<Trees>,
    hints: Mutex<HintQueues>,
    syncer: Syncer<E>,
}

/// The durable store on fjall: one database directory per node.
#[cfg(feature = "fjall")]
pub type FjallStore = NodeStore<FjallEngine>;

/// The in-memory store, for the simulator and fast tests: the same
/// behaviour as [`FjallStore`], nothing on disk.
pub type MemStore = NodeStore<MemEngine>;

#[cfg(feature = "fjall")]
impl FjallStore {
    /// Opens the store in `dir`, creating it if needed. Recovery replays the
    /// journal, so every acknowledged write is there; Merkle trees are loaded
    /// (or rebuilt from the data if the tree shape changed, logging progress).
    ///
    /// # Errors
    /// [`Error::Config`] if the directory holds data of another partition
    /// count; engine errors if it cannot be opened (another process holds it,
    /// for instance).
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> Result<Self> {
        let engine = FjallEngine::open(dir.as_ref(), &config)?;
        Self::with_engine(engine, config)
    }
}

impl MemStore {
    /// An empty store in memory.
    ///
    /// # Errors
    /// Only if the group-commit thread cannot be started.
    pub fn new(config: StoreConfig) -> Result<Self> {
        Self::with_engine(MemEngine::default(), config)
    }
}

impl<E: Engine> NodeStore<E> {
    pub(crate) fn with_engine(engine: E, config: StoreConfig) -> Result<Self> {
        let engine = Arc::new(engine);
        check_partitions(&*engine, config.partitions)?;
        let trees = Trees::load(&*engine, config.partitions, config.merkle_shape)?;
        let hints = HintQueues::load(&*engine)?;
        let syncer = Syncer::new(Arc::clone(&engine), config.durability, config.group_window)?;
        Ok(Self {
            engine,
            config,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            trees: Mutex::new(trees),
            hints: Mutex::new(hints),
            syncer,
        })
    }

    /// The store's metrics, for a prometheus-client registry: engine
    /// figures read on each scrape, fsync latency and group size.
    pub fn collector(&self) -> crate::StoreCollector<E> {
        crate::StoreCollector {
            engine: Arc::clone(&self.engine),
            sync: self.syncer.metrics().clone(),
        }
    }

    #[cfg(all(test, feature = "fjall"))]
    pub(crate) fn engine(&self) -> &E {
        &self.engine
    }

    fn stripe(&self, hash: KeyHash) -> MutexGuard<'_, ()> {
        let i = (hash.as_u64() as usize) % STRIPES;
        // The stripes guard no data of their own: a poisoned one is fine.
        match self.stripes.get(i) {
            Some(m) => m.lock().unwrap_or_else(|p| p.into_inner()),
            None => unreachable!("stripe index is reduced modulo STRIPES"),
        }
    }

    /// Locks the stripes of every hash, in index order (the only places
    /// that hold more than one take them so, and no two callers deadlock).
    fn lock_stripes(&self, hashes: impl Iterator<Item = u64>) -> Vec<MutexGuard<'_, ()>> {
        let mut ids: Vec<usize> = hashes.map(|h| (h as usize) % STRIPES).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.iter()
            .filter_map(|&i| self.stripes.get(i))
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
            .collect()
    }

    fn trees(&self) -> MutexGuard<'_, Trees> {
        // Trees change only after their batch is written, in one call that
        // cannot panic midway; a poisoned lock still guards whole trees.
        self.trees.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hint_queues(&self) -> MutexGuard<'_, HintQueues> {
        self.hints.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes a batch; a failure fails the store (durability is unknown).
    fn write(&self, ops: Vec<Op>) -> Result<u64> {
        match self.engine.write(ops) {
            Ok(()) => Ok(self.syncer.written()),
            Err(e) => {
                self.syncer.write_failed(&e);
                Err(e)
            }
        }
    }

    /// Writes one object's change with the Merkle leaves and the size it
    /// moves, in one batch, and applies it to the trees; returns the
    /// batch's ticket. The caller holds the object's stripe.
    fn commit_object(
        &self,
        hash: KeyHash,
        op: Op,
        old: Option<Filing>,
        new: Option<Filing>,
    ) -> Result<u64> {
        let mut trees = self.trees();
        let mut ops = Vec::with_capacity(3);
        ops.push(op);
        let mut leaves = LeafWrites::default();
        let changes = trees.plan(hash, old, new, &mut leaves)?;
        trees.leaf_ops(leaves, &mut ops);
        let ticket = self.write(ops)?;
        trees.apply(changes);
        Ok(ticket)
    }

    /// The write of an object's record at `key`: `object` filed under its
    /// n_val, or a delete for none or an empty one.
    fn object_op(id: &ObjectId, key: Vec<u8>, object: Option<(u8, &Object)>) -> Result<Op> {
        let Some((n_val, object)) = object.filter(|(_, o)| !o.is_empty()) else {
            return Ok(Op::Delete(Space::Objects, key));
        };
        let record = codec::encode_object(n_val, object);
        if u32::try_from(record.len()).is_err() {
            return Err(Error::ObjectTooLarge {
                location: id.to_string(),
                len: record.len(),
            });
        }
        Ok(Op::Put(Space::Objects, key, record))
    }

    fn check_key(&self, id: &ObjectId) -> Result<()> {
        let (len, max) = (id.key().len(), self.config.limits.max_key_len);
        if len > max {
            return Err(Error::KeyTooLong { len, max });
        }
        Ok(())
    }

    /// Values new in `new` (not already held under the same dot) must be
    /// within the limit; values already stored are grandfathered.
    fn check_values(&self, old: Option<&Object>, new: &Object) -> Result<()> {
        let max = self.config.limits.max_value_len;
        for s in new.siblings() {
            let len = s.value.as_ref().map_or(0, |v| v.len());
            if len > max && old.is_none_or(|o| o.sibling(s.dot).is_none()) {
                return Err(Error::ValueTooLarge { len, max });
            }
        }
        Ok(())
    }

    fn read_object(&self, key: &[u8], id: &ObjectId) -> Result<Option<(u8, Object)>> {
        match self.engine.get(Space::Objects, key)? {
            None => Ok(None),
            Some(bytes) => codec::decode_object(bytes.as_ref())
                .map(Some)
                .map_err(|reason| corrupt_object(id, reason)),
        }
    }

    /// The object-key bounds of a partition.
    fn partition_bounds(&self, p: PartitionId) -> Result<(Vec<u8>, Bound<Vec<u8>>)> {
        let q = self.config.partitions;
        if !q.contains(p) {
            return Err(Error::Config(format!("partition {p:?} is not below {q}")));
        }
        let range = q.range(p);
        let start = codec::hash_prefix(*range.start()).to_vec();
        let end = match range.end().checked_add(1) {
            Some(next) => Bound::Excluded(codec::hash_prefix(next).to_vec()),
            None => Bound::Unbounded,
        };
        Ok((start, end))
    }

    /// A page of a scan from the rows the engine returned for `limit`:
    /// decoded, and where the next page starts if the limit was reached.
    fn page<K: AsRef<[u8]>, V: AsRef<[u8]>>(rows: &[(K, V)], limit: usize) -> Result<ScanPage> {
        let full = rows.len() == limit;
        let items = rows
            .iter()
            .map(|(k, v)| decode_stored(k.as_ref(), v.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let next = if full {
            items.last().map(|s| s.id.clone())
        } else {
            None
        };
        Ok(ScanPage { items, next })
    }
}

/// An object record decoded with its key.
pub(crate) fn decode_stored(key: &[u8], value: &[u8]) -> Result<Stored> {
    let id = codec::decode_object_key(key).map_err(|reason| Error::Corrupt {
        location: codec::describe_object_key(key),
        reason,
    })?;
    let (n_val, object) =
        codec::decode_object(value).map_err(|reason| corrupt_object(&id, reason))?;
    Ok(Stored { id, n_val, object })
}

fn corrupt_object(id: &ObjectId, reason: DecodeError) -> Error {
    Error::Corrupt {
        location: format!("object {id}"),
        reason,
    }
}

fn check_n_val(n_val: u8) -> Result<()> {
    if n_val == 0 || n_val > BucketProps::MAX_N_VAL {
        return Err(Error::Config(format!(
            "n_val {n_val} is not in 1..={}",
            BucketProps::MAX_N_VAL
        )));
    }
    Ok(())
}

impl<E: Engine> Store for NodeStore<E> {
    fn config(&self) -> &StoreConfig {
        &self.config
    }

    fn get(&self, id: &ObjectId) -> Result<Option<Object>> {
        self.check_key(id)?;
        Ok(self
            .read_object(&codec::object_key(id), id)?
            .map(|(_, o)| o))
    }

    fn update<T>(
        &self,
        id: &ObjectId,
        n_val: u8,
        f: impl FnOnce(Option<&Object>) -> Change<T>,
    ) -> Result<T> {
        self.check_key(id)?;
        check_n_val(n_val)?;
        self.syncer.check()?;
        let key = codec::object_key(id);
        let stripe = self.stripe(id.hash());
        let old = self.read_object(&key, id)?;
        let (new, out) = match f(old.as_ref().map(|(_, o)| o)) {
            Change::Keep(out) => {
                drop(stripe);
                // What the caller saw may still be on its way to the disk.
                self.syncer.wait_all()?;
                return Ok(out);
            }
            Change::Write(new, out) => (new, out),
        };
        self.check_values(old.as_ref().map(|(_, o)| o), &new)?;
        let old_filing = Filing::of_state(id, old.as_ref());
        let op = Self::object_op(id, key, Some((n_val, &new)))?;
        let new_filing = (!new.is_empty()).then(|| Filing::of(id, n_val, &new));
        let ticket = self.commit_object(id.hash(), op, old_filing, new_filing)?;
        drop(stripe);
        self.syncer.wait(ticket)?;
        Ok(out)
    }

    fn update_many<T>(
        &self,
        ids: &[(ObjectId, u8)],
        mut f: impl FnMut(usize, Option<&Object>) -> Change<T>,
    ) -> Result<Vec<T>> {
        for (id, n_val) in ids {
            self.check_key(id)?;
            check_n_val(*n_val)?;
        }
        self.syncer.check()?;
        let stripes = self.lock_stripes(ids.iter().map(|(id, _)| id.hash().as_u64()));
        // Per key changed: its state before the batch and after it.
        let mut states: HashMap<&ObjectId, (Filed, Filed)> = HashMap::new();
        let mut outs = Vec::with_capacity(ids.len());
        for (i, (id, n_val)) in ids.iter().enumerate() {
            if !states.contains_key(id) {
                let before = self.read_object(&codec::object_key(id), id)?;
                states.insert(id, (before.clone(), before));
            }
            let Some((_, now)) = states.get_mut(id) else {
                continue;
            };
            match f(i, now.as_ref().map(|(_, o)| o)) {
                Change::Keep(out) => outs.push(out),
                Change::Write(new, out) => {
                    self.check_values(now.as_ref().map(|(_, o)| o), &new)?;
                    *now = (!new.is_empty()).then_some((*n_val, new));
                    outs.push(out);
                }
            }
        }
        let mut trees = self.trees();
        let mut ops = Vec::new();
        let mut changes = Vec::new();
        let mut leaves = LeafWrites::default();
        for (id, (before, after)) in &states {
            if before == after {
                continue;
            }
            let filed = after.as_ref().map(|(n_val, object)| (*n_val, object));
            ops.push(Self::object_op(id, codec::object_key(id), filed)?);
            let (before, after) = (
                Filing::of_state(id, before.as_ref()),
                Filing::of_state(id, after.as_ref()),
            );
            changes.extend(trees.plan(id.hash(), before, after, &mut leaves)?);
        }
        trees.leaf_ops(leaves, &mut ops);
        if ops.is_empty() {
            drop(trees);
            drop(stripes);
            // What the caller saw may still be on its way to the disk.
            self.syncer.wait_all()?;
            return Ok(outs);
        }
        let ticket = self.write(ops)?;
        trees.apply(changes);
        drop(trees);
        drop(stripes);
        self.syncer.wait(ticket)?;
        Ok(outs)
    }

    fn purge(&self, id: &ObjectId, version: u128) -> Result<bool> {
        self.check_key(id)?;
        self.syncer.check()?;
        let key = codec::object_key(id);
        let stripe = self.stripe(id.hash());
        let Some((n_val, object)) = self.read_object(&key, id)? else {
            return Ok(false);
        };
        if !object.is_transient() || object.version_digest() != version {
            return Ok(false);
        }
        let old = Some(Filing::of(id, n_val, &object));
        let ticket = self.commit_object(id.hash(), Op::Delete(Space::Objects, key), old, None)?;
        drop(stripe);
        self.syncer.wait(ticket)?;
        Ok(true)
    }

    fn scan(
        &self,
        partition: PartitionId,
        after: Option<&ObjectId>,
        limit: usize,
    ) -> Result<ScanPage> {
        let (start, end) = self.partition_bounds(partition)?;
        let after_key = after.map(codec::object_key);
        let from = match &after_key {
            Some(a) if *a >= start => Bound::Excluded(a.as_slice()),
            _ => Bound::Included(start.as_slice()),
        };
        let limit = limit.max(1);
        let rows =
            self.engine
                .range(Space::Objects, from, end.as_ref().map(Vec::as_slice), limit)?;
        Self::page(&rows, limit)
    }

    fn scan_from(&self, from: KeyHash, limit: usize) -> Result<ScanPage> {
        let partition = self.config.partitions.partition_of(from);
        let (_, end) = self.partition_bounds(partition)?;
        let start = codec::hash_prefix(from.as_u64());
        let limit = limit.max(1);
        let rows = self.engine.range(
            Space::Objects,
            Bound::Included(start.as_slice()),
            end.as_ref().map(Vec::as_slice),
            limit,
        )?;
        Self::page(&rows, limit)
    }

    fn partition_trees(&self, partition: PartitionId) -> Result<PartitionTrees> {
        self.partition_bounds(partition)?;
        let trees = self.trees();
        let copies = trees
            .of_partition(partition)
            .map(|(n_val, tree)| (n_val, tree.clone()))
            .collect();
        Ok(PartitionTrees {
            partition,
            trees: copies,
        })
    }

    fn drop_partition(&self, handed_off: &PartitionTrees) -> Result<Dropped> {
        let partition = handed_off.partition;
        let (start, end) = self.partition_bounds(partition)?;
        let id = tree_error(TreeId::new(
            self.config.partitions,
            partition,
            self.config.merkle_shape,
        ))?;
        if let Some((n_val, _)) = handed_off.trees.iter().find(|(_, t)| t.id() != id) {
            return Err(Error::Config(format!(
                "the copy of tree ({partition:?}, n_val {n_val}) is not of this store's {id}"
            )));
        }
        // What each leaf should hold for its objects to go: as handed off,
        // less what this drop removed.
        let mut expected: BTreeMap<u8, Vec<u128>> = handed_off
            .trees
            .iter()
            .map(|(&n_val, tree)| (n_val, tree.leaves().to_vec()))
            .collect();
        let mut dropped = Dropped::default();
        // Leaves found changed: their objects stay, whatever page they
        // fall in.
        let mut changed: BTreeSet<usize> = BTreeSet::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            self.syncer.check()?;
            let from = match &after {
                Some(key) => Bound::Excluded(key.as_slice()),
                None => Bound::Included(start.as_slice()),
            };
            // Keys only: each object is read once, under its stripe, below.
            let rows = self.engine.range_keys(
                Space::Objects,
                from,
                end.as_ref().map(Vec::as_slice),
                BATCH,
            )?;
            let Some(last) = rows.last() else {
                break;
            };
            after = Some(last.clone());
            let guards = self.lock_stripes(
                rows.iter()
                    .filter_map(|k| k.get(..8)?.try_into().ok())
                    .map(u64::from_be_bytes),
            );
            let mut trees = self.trees();
            let n_vals: BTreeSet<u8> = trees
                .of_partition(partition)
                .map(|(n_val, _)| n_val)
                .chain(expected.keys().copied())
                .collect();
            // Each leaf of the page is judged once, before anything of
            // this page is removed: as handed off (less this drop's own
            // removals) in every n_val's tree, or changed.
            let mut judged: BTreeMap<usize, bool> = BTreeMap::new();
            let mut ops = Vec::with_capacity(2 * rows.len());
            let mut changes = Vec::new();
            let mut leaves = LeafWrites::default();
            let mut touched = BTreeSet::new();
            for key in &rows {
                let Some(hash) = key.get(..8).and_then(|h| h.try_into().ok()) else {
                    continue;
                };
                let Ok(leaf) = id.leaf_of(KeyHash::from_u64(u64::from_be_bytes(hash))) else {
                    continue;
                };
                let unchanged = *judged.entry(leaf).or_insert_with(|| {
                    !changed.contains(&leaf)
                        && n_vals.iter().all(|&n_val| {
                            let want = expected
                                .get(&n_val)
                                .and_then(|l| l.get(leaf))
                                .copied()
                                .unwrap_or(0);
                            trees.leaf(partition, n_val, leaf) == want
                        })
                });
                if !unchanged {
                    changed.insert(leaf);
                    continue;
                }
                let Some(bytes) = self.engine.get(Space::Objects, key)? else {
                    continue;
                };
                // A record that no longer decodes is dropped all the same;
                // its digest goes with the partition's trees at the end.
                if let Ok(s) = decode_stored(key, bytes.as_ref()) {
                    let old = Some(Filing::of(&s.id, s.n_val, &s.object));
                    changes.extend(trees.plan(s.id.hash(), old, None, &mut leaves)?);
                }
                ops.push(Op::Delete(Space::Objects, key.clone()));
                touched.insert(leaf);
                dropped.objects += 1;
            }
            trees.leaf_ops(leaves, &mut ops);
            let ticket = if ops.is_empty() {
                None
            } else {
                Some(self.write(ops)?)
            };
            trees.apply(changes);
            // What this drop removed is not a change: a leaf's next rows
            // (in the next page) compare against what it holds now.
            for (n_val, tree) in trees.of_partition(partition) {
                let leaves = expected
                    .entry(n_val)
                    .or_insert_with(|| vec![0; tree.leaves().len()]);
                for &leaf in &touched {
                    if let (Some(l), Some(now)) = (leaves.get_mut(leaf), tree.leaves().get(leaf)) {
                        *l = *now;
                    }
                }
            }
            drop(trees);
            drop(guards);
            if let Some(t) = ticket {
                self.syncer.wait(t)?;
            }
        }
        dropped.changed_leaves = changed.len() as u64;
        // Under the trees lock no object can be written, so an empty range
        // here stays empty until the trees are gone.
        let mut trees = self.trees();
        let empty = self
            .engine
            .range_keys(
                Space::Objects,
                Bound::Included(start.as_slice()),
                end.as_ref().map(Vec::as_slice),
                1,
            )?
            .is_empty();
        if !empty {
            return Ok(dropped);
        }
        let prefix = partition.get().to_be_bytes();
        let leaves = self.engine.range(
            Space::Leaves,
            Bound::Included(&prefix[..]),
            prefix_end(&prefix).as_ref().map(Vec::as_slice),
            usize::MAX,
        )?;
        let ops = leaves
            .into_iter()
            .map(|(k, _)| Op::Delete(Space::Leaves, k))
            .collect::<Vec<_>>();
        let ticket = if ops.is_empty() {
            None
        } else {
            Some(self.write(ops)?)
        };
        trees.forget_partition(partition);
        drop(trees);
        if let Some(t) = ticket {
            self.syncer.wait(t)?;
        }
        Ok(dropped)
    }

    fn merkle_tree(&self, partition: PartitionId, n_val: u8) -> Result<MerkleTree> {
        self.trees().get(partition, n_val)
    }

    fn merkle_trees(&self) -> Vec<(PartitionId, u8)> {
        self.trees().non_empty()
    }

    fn tree_sizes(&self) -> BTreeMap<(PartitionId, u8), TreeSize> {
        self.trees().sizes()
    }

    fn add_hint(&self, target: NodeId, hint: &Hint) -> Result<HintId> {
        self.check_key(&hint.id)?;
        check_n_val(hint.n_val)?;
        self.check_values(None, &hint.object)?;
        self.syncer.check()?;
        let record = codec::encode_hint(hint);
        let (id, ticket) = {
            let mut queues = self.hint_queues();
            let seq = queues.next_seq(&*self.engine, target)?;
            let name = meta::hint_seq(target);
            let ticket = self.write(vec![
                Op::Put(Space::Hints, codec::hint_key(target, seq).to_vec(), record),
                Op::Put(
                    Space::Meta,
                    name.clone().into_bytes(),
                    meta::encode(&name, &seq)?,
                ),
            ])?;
            queues.added(target, seq);
            (HintId(seq), ticket)
        };
        self.syncer.wait(ticket)?;
        Ok(id)
    }

    fn hints(
        &self,
        target: NodeId,
        after: Option<HintId>,
        limit: usize,
    ) -> Result<Vec<(HintId, Hint)>> {
        let first = codec::hint_key(target, 0);
        let last = codec::hint_key(target, u64::MAX);
        let after = after.map(|h| codec::hint_key(target, h.0));
        let from = match &after {
            Some(a) => Bound::Excluded(&a[..]),
            None => Bound::Included(&first[..]),
        };
        let rows = self
            .engine
            .range(Space::Hints, from, Bound::Included(&last[..]), limit)?;
        rows.into_iter()
            .map(|(k, v)| {
                let location = || format!("hint {}", codec::hex(&k));
                let (_, seq) = codec::decode_hint_key(&k).map_err(|reason| Error::Corrupt {
                    location: location(),
                    reason,
                })?;
                let hint = codec::decode_hint(v.as_ref()).map_err(|reason| Error::Corrupt {
                    location: format!("hint {seq} for {target}"),
                    reason,
                })?;
                Ok((HintId(seq), hint))
            })
            .collect()
    }

    fn remove_hint(&self, target: NodeId, id: HintId) -> Result<bool> {
        self.syncer.check()?;
        let key = codec::hint_key(target, id.0);
        let ticket = {
            let mut queues = self.hint_queues();
            if self.engine.get(Space::Hints, &key)?.is_none() {
                return Ok(false);
            }
            let ticket = self.write(vec![Op::Delete(Space::Hints, key.to_vec())])?;
            queues.removed(target);
            ticket
        };
        self.syncer.wait(ticket)?;
        Ok(true)
    }

    fn hint_backlog(&self) -> BTreeMap<NodeId, u64> {
        self.hint_queues().counts.clone()
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .engine
            .get(Space::Meta, name.as_bytes())?
            .map(|b| b.as_ref().to_vec()))
    }

    fn set_meta(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        self.set_metas(vec![(name.to_owned(), bytes)])
    }

    fn set_metas(&self, entries: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.syncer.check()?;
        let ops = entries
            .into_iter()
            .map(|(name, bytes)| Op::Put(Space::Meta, name.into_bytes(), bytes))
            .collect();
        let ticket = self.write(ops)?;
        self.syncer.wait(ticket)
    }

    fn meta_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let end = prefix_end(prefix.as_bytes());
        let rows = self.engine.range(
            Space::Meta,
            Bound::Included(prefix.as_bytes()),
            end.as_ref().map(Vec::as_slice),
            usize::MAX,
        )?;
        rows.into_iter()
            .map(|(k, v)| {
                let name = String::from_utf8(k).map_err(|e| Error::Corrupt {
                    location: format!("metadata {}", codec::hex(e.as_bytes())),
                    reason: "name is not UTF-8".to_owned(),
                })?;
                Ok((name, v.as_ref().to_vec()))
            })
            .collect()
    }

    fn flush(&self) -> Result<()> {
        self.syncer.sync_all()
    }

    fn has_failed(&self) -> bool {
        self.syncer.check().is_err()
    }
}

impl<E: Engine> Drop for NodeStore<E> {
    fn drop(&mut self) {
        // Best effort: a clean shutdown leaves everything on disk. A failure
        // was already logged by the syncer.
        let _ = self.syncer.sync_all();
    }
}

/// Calls `f` with every entry of `space`, a page at a time, in key order.
pub(crate) fn each_page<E: Engine>(
    engine: &E,
    space: Space,
    mut f: impl FnMut(&[(Vec<u8>, E::Bytes)]) -> Result<()>,
) -> Result<()> {
    let mut from: Option<Vec<u8>> = None;
    loop {
        let lower = from.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let rows = engine.range(space, lower, Bound::Unbounded, BATCH)?;
        let Some((last, _)) = rows.last() else {
            return Ok(());
        };
        from = Some(last.clone());
        f(&rows)?;
    }
}

/// The first key after every key that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Bound<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Bound::Excluded(end);
        }
    }
    Bound::Unbounded
}

/// Refuses data written with another partition count; records it on first open.
fn check_partitions<E: Engine>(engine: &E, q: PartitionCount) -> Result<()> {
    match engine.get(Space::Meta, meta::PARTITIONS.as_bytes())? {
        Some(bytes) => {
            let stored: PartitionCount = meta::decode(meta::PARTITIONS, bytes.as_ref())?;
            if stored != q {
                return Err(Error::Config(format!(
                    "the store holds data for {stored} partitions, not {q}"
                )));
            }
            Ok(())
        }
        None => {
            let bytes = meta::encode(meta::PARTITIONS, &q)?;
            engine.write(vec![Op::Put(
                Space::Meta,
                meta::PARTITIONS.as_bytes().to_vec(),
                bytes,
            )])
        }
    }
}

/// Per-target hint sequence numbers and backlog counts.
struct HintQueues {
    next: HashMap<NodeId, u64>,
    counts: BTreeMap<NodeId, u64>,
}

impl HintQueues {
    /// Counts the stored hints per target.
    fn load<E: Engine>(engine: &E) -> Result<Self> {
        let mut counts: BTreeMap<NodeId, u64> = BTreeMap::new();
        each_page(engine, Space::Hints, |rows| {
            for (k, _) in rows {
                let (target, _) = codec::decode_hint_key(k).map_err(|reason| Error::Corrupt {
                    location: format!("hint {}", codec::hex(k)),
                    reason,
                })?;
                *counts.entry(target).or_default() += 1;
            }
            Ok(())
        })?;
        Ok(Self {
            next: HashMap::new(),
            counts,
        })
    }

    /// The next sequence number of `target`'s queue: one past the last ever
    /// issued (the greater of the last stored hint and the recorded
    /// high-water mark, which survives the removal of every hint).
    fn next_seq<E: Engine>(&mut self, engine: &E, target: NodeId) -> Result<u64> {
        if let Some(&n) = self.next.get(&target) {
            return Ok(n);
        }
        let first = codec::hint_key(target, 0);
        let last = codec::hint_key(target, u64::MAX);
        let stored = match engine.last_key(
            Space::Hints,
            Bound::Included(&first[..]),
            Bound::Included(&last[..]),
        )? {
            None => 0,
            Some(k) => {
                codec::decode_hint_key(&k)
                    .map_err(|reason| Error::Corrupt {
                        location: format!("hint {}", codec::hex(&k)),
                        reason,
                    })?
                    .1
            }
        };
        let name = meta::hint_seq(target);
        let issued: u64 = match engine.get(Space::Meta, name.as_bytes())? {
            Some(b) => meta::decode(&name, b.as_ref())?,
            None => 0,
        };
        let next = stored
            .max(issued)
            .checked_add(1)
            .ok_or_else(|| Error::Config(format!("hint queue of {target} is exhausted")))?;
        self.next.insert(target, next);
        Ok(next)
    }

    fn added(&mut self, target: NodeId, seq: u64) {
        self.next.insert(target, seq + 1);
        *self.counts.entry(target).or_default() += 1;
    }

    fn removed(&mut self, target: NodeId) {
        if let Some(c) = self.counts.get_mut(&target) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.counts.remove(&target);
            }
        }
    }
}

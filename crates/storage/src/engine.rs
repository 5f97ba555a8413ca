//! The ordered key-value engines under a [`NodeStore`](crate::NodeStore):
//! fjall on disk, a `BTreeMap` in memory. Everything above them (encoding,
//! locking, Merkle trees, hints, durability waits) is shared, so the two
//! stores cannot drift apart.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::Result;

/// The separate key spaces a store keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    /// Object records, by object key.
    Objects,
    /// Merkle leaf digests, by (partition, n_val, leaf).
    Leaves,
    /// Hint records, by (target, sequence).
    Hints,
    /// Node metadata, by name.
    Meta,
}

impl Space {
    /// Every space, in a fixed order.
    pub const ALL: [Self; 4] = [Self::Objects, Self::Leaves, Self::Hints, Self::Meta];

    /// The name of the space (fjall's keyspace name).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Objects => "objects",
            Self::Leaves => "leaves",
            Self::Hints => "hints",
            Self::Meta => "meta",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// One change in an atomic batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Set `key` to `value` in a space.
    Put(Space, Vec<u8>, Vec<u8>),
    /// Remove `key` from a space.
    Delete(Space, Vec<u8>),
}

/// How far [`Engine::sync`] pushes written batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Into the operating system: survives the process dying.
    Os,
    /// Onto the disk (`fdatasync`): survives power loss. Writers wait
    /// while it runs (fjall holds its journal lock through the fsync).
    Disk,
    /// Onto the disk like [`Disk`](Self::Disk), but writers may append to
    /// the journal while the fsync runs: the journal is handed to the OS
    /// under the lock and fsynced outside it. For group commit, where the
    /// next batch of writers should gather while this fsync is in flight.
    DiskOverlapped,
}

/// An ordered key-value engine with atomic multi-space batches.
///
/// Sealed: implemented by [`FjallEngine`](crate::FjallEngine) and
/// [`MemEngine`] only.
pub trait Engine: Send + Sync + 'static + sealed::Sealed {
    /// Bytes read back.
    type Bytes: AsRef<[u8]> + Send;

    /// The value at `key`.
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Self::Bytes>>;

    /// Applies `ops` atomically: after a crash, all or none of them are
    /// there. Not yet durable: see [`sync`](Self::sync).
    fn write(&self, ops: Vec<Op>) -> Result<()>;

    /// Up to `limit` entries with keys between `from` and `to`, in key order.
    fn range(
        &self,
        space: Space,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Self::Bytes)>>;

    /// Up to `limit` keys between `from` and `to`, in key order. An engine
    /// that keeps large values apart (fjall) overrides it to leave them
    /// unread; here they are read and dropped.
    fn range_keys(
        &self,
        space: Space,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let rows = self.range(space, from, to, limit)?;
        Ok(rows.into_iter().map(|(k, _)| k).collect())
    }

    /// The greatest key between `from` and `to`.
    fn last_key(
        &self,
        space: Space,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
    ) -> Result<Option<Vec<u8>>>;

    /// Makes every batch written so far as durable as `mode` says.
    fn sync(&self, mode: SyncMode) -> Result<()>;

    /// What the engine tells of itself, for metrics. Cheap: no scan.
    fn stats(&self) -> EngineStats;
}

/// An engine's own figures (see [`Engine::stats`]). Figures an engine does
/// not have (the memory engine has no disk) are 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Object records (one per stored key), approximately: an LSM tree
    /// counts overwritten and deleted records until compaction drops them.
    pub objects: u64,
    /// Bytes on disk: tables, value logs and journals.
    pub disk_bytes: u64,
    /// Of those, the write-ahead journal.
    pub journal_bytes: u64,
    /// Bytes in memtables, not yet flushed to tables.
    pub memtable_bytes: u64,
    /// Tables on disk, over all spaces.
    pub tables: u64,
    /// Compactions finished since the engine opened.
    pub compactions: u64,
    /// Compactions running now.
    pub compacting: u64,
    /// Time spent compacting since the engine opened, microseconds.
    pub compaction_micros: u64,
}

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// The in-memory engine behind [`MemStore`](crate::MemStore): one sorted map
/// per space under one lock. Nothing survives the process.
#[derive(Default)]
pub struct MemEngine {
    spaces: Mutex<[MemSpace; 4]>,
}

/// One space of a [`MemEngine`].
type MemSpace = BTreeMap<Vec<u8>, Arc<[u8]>>;

impl MemEngine {
    fn lock(&self) -> MutexGuard<'_, [MemSpace; 4]> {
        // A panic while holding the lock leaves every map consistent (each
        // operation is one map call), so a poisoned lock is still usable.
        self.spaces.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(all(test, feature = "fjall"))]
impl MemEngine {
    /// Every entry of every space, in order.
    pub(crate) fn dump(&self) -> Vec<(Space, Vec<u8>, Vec<u8>)> {
        let spaces = self.lock();
        Space::ALL
            .iter()
            .flat_map(|&s| {
                spaces[s.index()]
                    .iter()
                    .map(move |(k, v)| (s, k.clone(), v.to_vec()))
            })
            .collect()
    }
}

impl sealed::Sealed for MemEngine {}

impl Engine for MemEngine {
    type Bytes = Arc<[u8]>;

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Arc<[u8]>>> {
        Ok(self.lock()[space.index()].get(key).cloned())
    }

    fn write(&self, ops: Vec<Op>) -> Result<()> {
        let mut spaces = self.lock();
        for op in ops {
            match op {
                Op::Put(s, k, v) => {
                    spaces[s.index()].insert(k, v.into());
                }
                Op::Delete(s, k) => {
                    spaces[s.index()].remove(&k);
                }
            }
        }
        Ok(())
    }

    fn range(
        &self,
        space: Space,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Arc<[u8]>)>> {
        if is_empty_range(from, to) {
            return Ok(Vec::new());
        }
        Ok(self.lock()[space.index()]
            .range::<[u8], _>((from, to))
            .take(limit)
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect())
    }

    fn last_key(
        &self,
        space: Space,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
    ) -> Result<Option<Vec<u8>>> {
        if is_empty_range(from, to) {
            return Ok(None);
        }
        Ok(self.lock()[space.index()]
            .range::<[u8], _>((from, to))
            .next_back()
            .map(|(k, _)| k.clone()))
    }

    fn stats(&self) -> EngineStats {
        EngineStats {
            objects: self.lock()[Space::Objects.index()].len() as u64,
            ..EngineStats::default()
        }
    }

    fn sync(&self, _mode: SyncMode) -> Result<()> {
        Ok(())
    }
}

/// Whether no key lies between `from` and `to` for structural reasons
/// (`from` after `to`), which `BTreeMap::range` would panic on.
pub(crate) fn is_empty_range(from: Bound<&[u8]>, to: Bound<&[u8]>) -> bool {
    use Bound::{Excluded, Included};
    match (from, to) {
        (Included(f), Included(t)) => f > t,
        (Included(f) | Excluded(f), Excluded(t)) | (Excluded(f), Included(t)) => f >= t,
        _ => false,
    }
}

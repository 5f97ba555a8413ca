//! Helpers shared by the storage tests: opening each kind of store, and
//! building ids, values and objects.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use bytes::Bytes;
use gyre_storage::{Change, FjallStore, MemStore, Object, ObjectId, Store, StoreConfig};
use gyre_types::{BucketName, Key, NodeId, PartitionCount, Timestamp};
use gyre_versioning::Policy;
use tempfile::TempDir;

/// A store under test, and how to close and reopen it.
pub trait Harness: Sized {
    /// The store type.
    type S: Store;
    /// A fresh, empty store.
    fn open(config: StoreConfig) -> Self;
    /// The store.
    fn store(&self) -> &Self::S;
    /// Closes and reopens the store, if it survives that (on disk); `false`
    /// for in-memory stores.
    fn reopen(&mut self) -> bool;
}

/// A [`MemStore`].
pub struct Mem(pub MemStore);

impl Harness for Mem {
    type S = MemStore;
    fn open(config: StoreConfig) -> Self {
        Self(MemStore::new(config).unwrap())
    }
    fn store(&self) -> &MemStore {
        &self.0
    }
    fn reopen(&mut self) -> bool {
        false
    }
}

/// A [`FjallStore`] in a temporary directory.
pub struct Disk {
    pub store: Option<FjallStore>,
    pub dir: TempDir,
    pub config: StoreConfig,
}

impl Harness for Disk {
    type S = FjallStore;
    fn open(config: StoreConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Some(FjallStore::open(dir.path(), config).unwrap());
        Self { store, dir, config }
    }
    fn store(&self) -> &FjallStore {
        self.store.as_ref().unwrap()
    }
    fn reopen(&mut self) -> bool {
        drop(self.store.take());
        self.store = Some(FjallStore::open(self.dir.path(), self.config).unwrap());
        true
    }
}

/// A small ring, so that tests cover several keys per partition.
pub fn config() -> StoreConfig {
    StoreConfig {
        partitions: PartitionCount::new(64).unwrap(),
        ..StoreConfig::default()
    }
}

pub fn bucket(name: &str) -> BucketName {
    BucketName::new(name).unwrap()
}

pub fn id(bucket_name: &str, key: &str) -> ObjectId {
    ObjectId::new(
        bucket(bucket_name),
        Key::new(key.as_bytes().to_vec()).unwrap(),
    )
}

pub fn node(n: u64) -> NodeId {
    NodeId::new(n)
}

/// A blind put of `value` coordinated by `coordinator`.
pub fn put<S: Store>(store: &S, id: &ObjectId, n_val: u8, value: &[u8], coordinator: u64) {
    let value = Bytes::copy_from_slice(value);
    write_blind(store, id, n_val, |o, ts, p| {
        o.put_blind(value, node(coordinator), ts, p).map(drop)
    });
}

/// A blind delete coordinated by `coordinator`.
pub fn delete<S: Store>(store: &S, id: &ObjectId, n_val: u8, coordinator: u64) {
    write_blind(store, id, n_val, |o, ts, p| {
        o.delete_blind(node(coordinator), ts, p).map(drop)
    });
}

/// Applies a blind write (stamped 1, default policy) to the current state.
fn write_blind<S: Store>(
    store: &S,
    id: &ObjectId,
    n_val: u8,
    write: impl FnOnce(&mut Object, Timestamp, &Policy) -> gyre_versioning::Result<()>,
) {
    store
        .update(id, n_val, |cur| {
            let mut o = cur.cloned().unwrap_or_default();
            write(&mut o, Timestamp::from_u64(1), &Policy::default()).unwrap();
            Change::Write(o, ())
        })
        .unwrap();
}

/// The live values of an object, sorted.
pub fn values<S: Store>(store: &S, id: &ObjectId) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = store
        .get(id)
        .unwrap()
        .map(|o| o.values().map(|b| b.to_vec()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

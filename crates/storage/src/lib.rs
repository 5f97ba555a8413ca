//! A Gyre node's durable state, behind one [`Store`] trait.
//!
//! - **Objects**: per key, the DVV set of [`gyre_versioning`] (values,
//!   siblings, tombstones) and the n_val of its bucket, changed only through
//!   [`Store::update`], which reads, decides and writes under the object's
//!   lock.
//! - **Merkle trees**, one per (partition, n_val), updated in the same atomic
//!   batch as the object, so that after any crash they agree with the data.
//! - **Hints**: a durable queue per target node for writes held under
//!   sloppy quorum, read in order and removed once delivered.
//! - **Metadata**: node id, cluster id, ring layout, bucket properties.
//!
//! Two stores share all of that logic over two engines: [`FjallStore`] on
//! fjall (the only crate of the workspace that imports it), and
//! [`MemStore`] in memory for the simulator and fast tests. One conformance
//! suite (`tests/conformance.rs`) runs against both.
//!
//! Durability is a per-store [`Durability`] mode; its documentation says
//! exactly what each mode promises. The record formats are described in
//! the `codec` module and pinned by a committed fixture.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use gyre_storage::{Change, Durability, FjallStore, ObjectId, Store, StoreConfig};
//! use gyre_types::{BucketName, Key, NodeId, Timestamp};
//! use gyre_versioning::Policy;
//! # let dir = tempfile::tempdir()?;
//!
//! let config = StoreConfig { durability: Durability::Always, ..StoreConfig::default() };
//! let store = FjallStore::open(dir.path(), config)?;
//! let id = ObjectId::new(BucketName::new("carts")?, Key::new(b"user:42".to_vec())?);
//!
//! // A coordinator's put: read the current state, add a version, write it back.
//! let dot = store.update(&id, 3, |current| {
//!     let mut object = current.cloned().unwrap_or_default();
//!     match object.put_blind(Bytes::from("3 apples"), NodeId::new(1), Timestamp::from_u64(7), &Policy::default()) {
//!         Ok(dot) => Change::Write(object, Ok(dot)),
//!         Err(e) => Change::Keep(Err(e)),
//!     }
//! })??;
//! assert_eq!(dot.counter, 1);
//!
//! // Reopening recovers the object and its Merkle tree.
//! drop(store);
//! let store = FjallStore::open(dir.path(), config)?;
//! let object = store.get(&id)?.expect("written");
//! assert_eq!(object.values().collect::<Vec<_>>(), [&Bytes::from("3 apples")]);
//! let partition = config.partitions.partition_of(id.hash());
//! assert_ne!(store.merkle_tree(partition, 3)?.root(), 0);
//! assert!(store.verify_trees()?.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod codec;
mod config;
mod durability;
mod engine;
mod error;
#[cfg(feature = "fjall")]
mod fjall_engine;
#[cfg(test)]
#[cfg(feature = "fjall")]
mod format_fixture;
mod meta;
mod metrics;
mod model;
mod node_store;
mod store;
mod trees;
mod verify;

pub use config::{Durability, Limits, StoreConfig};
pub use engine::{Engine, EngineStats, MemEngine};
pub use error::{Error, Result};
#[cfg(feature = "fjall")]
pub use fjall_engine::FjallEngine;
pub use metrics::StoreCollector;
pub use model::{
    Change, Dropped, Hint, HintId, Object, ObjectId, PartitionTrees, ScanPage, Stored,
    TreeMismatch, TreeSize, Value, object_bytes,
};
#[cfg(feature = "fjall")]
pub use node_store::FjallStore;
pub use node_store::{MemStore, NodeStore};
pub use store::Store;

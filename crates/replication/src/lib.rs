//! Gyre's replication core: everything in Dynamo's request and repair paths,
//! with no IO of its own.
//!
//! - [`Replica`]: one node's replicas over its [`Store`](gyre_storage::Store):
//!   serves peers' requests (replica reads and merges, hints, Merkle
//!   exchanges, key listings, fetches, purges) and makes the local half of
//!   the writes this node coordinates (a new dot minted here).
//! - [`WriteOp`] and [`ReadOp`]: the coordinator's state machines. A write
//!   is stored locally, sent to the other primaries, and acknowledged at W;
//!   a primary that is down or fails is replaced by the next fallback of
//!   the extended preference list, which keeps the write as a hint for it
//!   (sloppy quorum). A read asks one primary for its state and the others
//!   for a digest of theirs (a differing digest gets that state asked for),
//!   and answers once R are covered, with the merged siblings and one
//!   context; once every primary answered, replicas
//!   that returned less get the merged state (read repair), and a tombstone
//!   that all hold and that is older than the grace period is purged.
//! - [`RttEstimator`]: when a replica counts as slow. A write hedges a
//!   slow replica with the next fallback ([`WriteOp::on_slow`]), so a node
//!   that died but is not yet judged down costs a request latency, never
//!   its answer.
//! - [`Replica::hint_batch`] / [`Replica::hints_delivered`]: hinted handoff.
//! - [`SyncSession`]: Merkle anti-entropy with one peer for one (partition,
//!   n_val): only differing subtrees are exchanged, then differing keys are
//!   synced both ways.
//! - [`route`]: who may coordinate a key.
//!
//! The driver (the node, or the simulator) carries each request: to a peer
//! over the transport, or, for a send to itself, to its own
//! [`Replica::serve`]. Time comes in as wall-clock milliseconds (for the
//! hybrid logical clock and tombstone ages).
//!
//! ```
//! use bytes::Bytes;
//! use gyre_replication::{Config, Replica, WriteOp};
//! use gyre_storage::{MemStore, StoreConfig, Durability};
//! use gyre_types::{BucketName, Key, NodeId};
//! use gyre_wire::{Request, Response};
//!
//! let store = || MemStore::new(StoreConfig { durability: Durability::None, ..StoreConfig::default() });
//! let (a, b) = (NodeId::new(1), NodeId::new(2));
//! let ra = Replica::new(a, store()?, Config::default())?;
//! let rb = Replica::new(b, store()?, Config::default())?;
//! let (bucket, key) = (BucketName::new("carts")?, Key::new(b"alice".to_vec())?);
//!
//! // Node a coordinates a put: its own write first, then the other primary.
//! let written = ra.write(1_000, &bucket, &key, Some(Bytes::from("3 apples")), None)?;
//! let (mut op, sends) = WriteOp::start(a, written.item, 1, &[a, b], [a, b], 2, |_| true);
//! assert_eq!(sends.len(), 1);
//! let answer = rb.serve(1_000, a, sends[0].request.clone());
//! assert_eq!(answer, Response::Stored);
//! let (_, outcome) = op.on_answer(sends[0].tag, true);
//! assert!(outcome.expect("decided").is_ok());
//!
//! // Both replicas now hold the value.
//! let at_b = rb.get(&bucket, &key)?.expect("replicated");
//! assert_eq!(at_b.values().collect::<Vec<_>>(), [&Bytes::from("3 apples")]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod anti_entropy;
mod config;
mod coordinator;
pub mod counter;
mod error;
mod expiry;
mod hedge;
mod hints;
mod replica;
pub mod route;
mod scan;

pub use anti_entropy::{Direction, SyncSession, SyncStats, SyncStep};
pub use config::Config;
pub use coordinator::{ReadAnswer, ReadOp, Repairs, Send, WriteOp};
pub use error::{Error, Result};
pub use expiry::{expires, read_time, unix_ms};
/// The bytes one object takes in a transfer and in size reports: its key
/// and its values.
pub use gyre_storage::object_bytes;
pub use hedge::RttEstimator;
pub use hints::HintBatch;
pub use replica::{Replica, Written};
pub use scan::KeyPage;

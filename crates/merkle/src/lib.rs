//! Incremental hash trees for anti-entropy, and the exchange that compares two of them.
//!
//! Each node keeps one [`MerkleTree`] per (partition, n_val) it replicates. A
//! tree covers exactly the key hashes of its partition; its leaves cut the
//! partition into `fanout^depth` equal hash ranges ([`TreeShape`], default
//! 16^3 = 4,096 leaves, ≈ 70 KB). Each stored item contributes an
//! [`ItemDigest`] (of its key and version) to the leaf its hash falls in, and
//! every node is the XOR of the digests below it, so a write updates a leaf in
//! O(1) and the path to the root in O(depth), without reading any other key.
//!
//! Two replicas compare their trees with an [`Exchange`]: the initiator sends
//! its root ([`Request::Root`]); the responder ([`MerkleTree::answer`]) returns
//! its root and, if they differ, the root's children; the initiator asks for
//! the children of every node that differs, one level per round, down to the
//! leaves, and ends with the hash ranges of the differing leaves
//! ([`ExchangeOutcome`]). Both sides then list their items in those ranges and
//! [`diff_items`] names the keys to sync, both ways.
//!
//! The crate is pure logic: no IO, no clock, no async, no encoding. Messages
//! are plain serde types; the wire crate encodes them, the replication layer
//! carries them, the storage layer keeps the trees.
//!
//! ```
//! use gyre_merkle::{Exchange, Item, ItemDigest, MerkleTree, Step, TreeShape, diff_items};
//! use gyre_types::{BucketName, Key, KeyHash, PartitionCount};
//!
//! let q = PartitionCount::new(64)?;
//! let bucket = BucketName::new("carts")?;
//! let item = |name: String, version: u128| -> Result<Item<Key>, gyre_types::Error> {
//!     let key = Key::new(name)?;
//!     let digest = ItemDigest::of_bucket_key(&bucket, &key, version);
//!     Ok(Item::new(KeyHash::of(&bucket, &key), key, digest))
//! };
//!
//! // Replica A's items in one partition, sorted by (hash, key) as storage lists them.
//! let mut a = (0..1000)
//!     .map(|i| item(format!("user:{i}"), 1))
//!     .collect::<Result<Vec<_>, _>>()?;
//! let partition = q.partition_of(a[0].hash);
//! a.retain(|i| q.partition_of(i.hash) == partition);
//! a.sort_by(|x, y| (x.hash, &x.key).cmp(&(y.hash, &y.key)));
//!
//! // Replica B missed the last write to one key.
//! let mut b = a.clone();
//! b[3].digest = ItemDigest::of_bucket_key(&bucket, &b[3].key, 0);
//!
//! let tree_of = |items: &[Item<Key>]| {
//!     let digests = items.iter().map(|i| (i.hash, i.digest));
//!     MerkleTree::from_items(q, partition, TreeShape::default(), digests)
//! };
//! let tree_a = tree_of(&a)?;
//! let mut tree_b = tree_of(&b)?;
//!
//! // A initiates; in a cluster the requests and responses cross the network.
//! let (mut exchange, mut request) = Exchange::new(&tree_a);
//! let outcome = loop {
//!     let response = tree_b.answer(&request)?;
//!     match exchange.on_response(&tree_a, response)? {
//!         Step::Send(next) => request = next,
//!         Step::Done(outcome) => break outcome,
//!     }
//! };
//! assert_eq!(outcome.ranges.len(), 1);
//!
//! // Both sides list the items in the differing ranges and diff them.
//! let listed = |items: &[Item<Key>]| -> Vec<Item<Key>> {
//!     let wanted = |i: &&Item<Key>| outcome.ranges.iter().any(|r| r.contains(i.hash));
//!     items.iter().filter(wanted).cloned().collect()
//! };
//! let (listed_a, listed_b) = (listed(&a), listed(&b));
//! let diffs = diff_items(&listed_a, &listed_b)?;
//! assert_eq!(diffs.len(), 1);
//! assert_eq!(diffs[0].key(), &a[3].key);
//!
//! // Once B has merged A's version, its tree agrees again.
//! tree_b.update(b[3].hash, Some(b[3].digest), Some(a[3].digest))?;
//! assert_eq!(tree_a.root(), tree_b.root());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod diff;
mod digest;
mod error;
mod exchange;
mod shape;
mod tree;

pub use diff::{Item, ItemDiff, diff_items};
pub use digest::ItemDigest;
pub use error::{Error, Result};
pub use exchange::{Exchange, ExchangeOutcome, ExchangeStats, Request, Response, Step};
pub use shape::{KeyRange, TreeId, TreeShape};
pub use tree::{MerkleTree, TreeParts};

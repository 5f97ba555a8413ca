//! The shared vocabulary of Gyre.
//!
//! Every other crate speaks in these types: who a node is ([`NodeId`]), which
//! namespace a key lives in ([`BucketName`]), the key itself ([`Key`]), where it
//! lands on the ring ([`KeyHash`], [`PartitionCount`], [`PartitionId`]), which
//! failure domain a node sits in ([`ZoneName`]), when something happened
//! ([`Timestamp`], produced by a [`HybridClock`]) and how a bucket replicates
//! and resolves conflicts ([`BucketProps`], [`ConflictMode`]).
//!
//! The crate is deliberately small and does no IO: time is passed in, never read.
//!
//! ```
//! use gyre_types::{BucketName, HybridClock, Key, KeyHash, PartitionCount};
//!
//! let bucket = BucketName::new("carts")?;
//! let key = Key::new(b"user:42".to_vec())?;
//! let hash = KeyHash::of(&bucket, &key);
//!
//! // 256 equal partitions of the 64-bit hash space.
//! let q = PartitionCount::new(256)?;
//! let partition = q.partition_of(hash);
//! assert!(q.range(partition).contains(&hash.as_u64()));
//!
//! // Timestamps are hybrid logical clocks: physical milliseconds plus a logical counter.
//! let mut clock = HybridClock::default();
//! let t1 = clock.now(1_700_000_000_000);
//! let t2 = clock.now(1_700_000_000_000); // same millisecond: the counter breaks the tie
//! assert!(t2 > t1);
//! # Ok::<(), gyre_types::Error>(())
//! ```

pub mod bounded;
mod bucket;
mod error;
mod hash;
mod hlc;
mod key;
mod node;
mod partition;
mod props;

pub use bucket::BucketName;
pub use error::{Error, Result};
pub use hash::KeyHash;
pub use hlc::{HybridClock, Timestamp};
pub use key::Key;
pub use node::{NodeId, ZoneName};
pub use partition::{PartitionCount, PartitionId};
pub use props::{BucketProps, ConflictMode};

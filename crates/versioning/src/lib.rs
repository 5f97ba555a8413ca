//! Causality tracking for Gyre: dotted version vector sets.
//!
//! Each replica keeps, per key, a [`DvvSet`]: a causal context (for each node
//! that coordinated a write of the key, how many of its writes this replica
//! has seen) and the live versions ([`Sibling`]s), each named by the [`Dot`]
//! its coordinator minted. This is the `dvvset` of Riak 2.x (Almeida et al.,
//! *Scalable and Accurate Causality Tracking for Eventually Consistent
//! Stores*), with explicit dots so that last-writer-wins can keep any one
//! version, and with tombstones for deletes.
//!
//! - A **read** ([`DvvSet::read`]) returns the live values and one
//!   [`Context`]; clients carry it as opaque bytes ([`Context::to_bytes`]).
//! - A **put** ([`DvvSet::put`]) with that context supersedes exactly what the
//!   client saw; writes it did not see survive as siblings. A put without a
//!   context is [`DvvSet::put_blind`]. Deletes write tombstones.
//! - **Replication** of any kind — quorum writes, read repair, hinted
//!   handoff, anti-entropy — merges with [`DvvSet::sync`], never replaces.
//! - **Expiry** is part of a write: [`DvvSet::put_expiring`] stores an
//!   absolute expiry with the value, the same on every replica.
//!   [`DvvSet::read_at`] leaves expired values out (its context still covers
//!   them) and [`DvvSet::is_deleted_at`] counts them as tombstones; merging
//!   never reads a clock.
//! - **Counters** (`ConflictMode::Counter`) version like siblings; the
//!   replication crate keeps one sibling of running totals per coordinating
//!   node, so the ordinary merge is a PN-counter's.
//!
//! # Laws
//!
//! For states `a`, `b`, `c` of one key under one [`Policy`], `sync` (written
//! `⊔`) is commutative (`a ⊔ b = b ⊔ a`), associative
//! (`(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)`) and idempotent (`a ⊔ a = a`), comparing
//! contexts and sets of `(dot, timestamp, value)`. After replicas have synced,
//! the live values are exactly the acknowledged writes that no later write's
//! context covered: nothing is lost unless a client saw it and wrote over it,
//! and nothing superseded comes back. In [`ConflictMode::Lww`] the one
//! survivor is the greatest `(timestamp, node, counter)` of every write seen,
//! whatever the merge order. The property tests in `tests/` check all of it.
//!
//! The crate does no IO and reads no clock: nodes and timestamps come in as
//! arguments.
//!
//! # Example
//!
//! ```
//! use gyre_types::{NodeId, Timestamp};
//! use gyre_versioning::{Context, DvvSet, Policy};
//!
//! let policy = Policy::default(); // siblings, at most 100
//! let (a, b) = (NodeId::new(0xa), NodeId::new(0xb));
//! let mut replica_a = DvvSet::new();
//! let mut replica_b = DvvSet::new();
//!
//! // Two clients write the same key at once, through different replicas.
//! replica_a.put_blind("red", a, Timestamp::from_parts(1_000, 0), &policy)?;
//! replica_b.put_blind("blue", b, Timestamp::from_parts(1_001, 0), &policy)?;
//!
//! // Anti-entropy merges the replicas: both writes survive, as siblings.
//! replica_a.sync(&replica_b, &policy);
//! replica_b.sync(&replica_a, &policy);
//! assert_eq!(replica_a, replica_b);
//!
//! // A read returns both values and a single context covering them.
//! let read = replica_a.read();
//! assert!(read.has_conflict());
//! let mut values: Vec<&str> = read.values().copied().collect();
//! values.sort();
//! assert_eq!(values, ["blue", "red"]);
//!
//! // The context goes to the client as bytes, and comes back with its write.
//! let bytes = read.context().to_bytes();
//! let ctx = Context::from_bytes(&bytes)?;
//! assert_eq!(&ctx, read.context());
//! assert!(Context::from_bytes(&bytes[1..]).is_err());
//!
//! // A put with that context resolves the conflict, on every replica.
//! replica_b.put(&ctx, "purple", b, Timestamp::from_parts(1_002, 0), &policy)?;
//! replica_a.sync(&replica_b, &policy);
//! assert_eq!(replica_a.values().collect::<Vec<_>>(), [&"purple"]);
//! assert_eq!(replica_a.version_digest(), replica_b.version_digest());
//! # Ok::<(), gyre_versioning::Error>(())
//! ```

mod context;
mod dot;
mod dvv;
mod error;
mod policy;

pub use context::Context;
pub use dot::{Dot, Sibling};
pub use dvv::{DvvSet, EntryRef, MAX_ENTRIES, MAX_ENTRY_SIBLINGS, Read, SiblingParts};
pub use error::{ContextError, Error, Result};
pub use policy::{ConflictMode, Policy};

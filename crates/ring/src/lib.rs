//! Gyre's ring: Q fixed, equal partitions of the 64-bit key-hash space, each
//! replicated on N nodes chosen in proportion to their capacity and spread
//! across zones (Dynamo's "strategy 3", placed like Garage's layouts).
//!
//! - [`Layout`] assigns every partition's replicas to nodes. It is computed
//!   deterministically from the [`Member`]s and the previous layout, so every
//!   node that is given the same input gets the same layout, and it is
//!   versioned so that nodes can agree on the newest.
//! - [`Layout::preference_list`] gives the N (or a bucket's `n_val`) nodes that
//!   hold a key; [`Layout::extended_preference_list`] continues past N with the
//!   fallbacks that sloppy quorum uses.
//! - [`LayoutDiff`] lists every partition replica that changes owner between
//!   two layouts: the work of a join, a leave or a capacity change.
//! - [`Balance`] compares each node's share with the capacity-proportional
//!   ideal and says where the placement rules keep it away from it.
//!
//! The crate is pure: no IO, no clock, no async.
//!
//! ```
//! use gyre_ring::{Layout, LayoutDiff, Member, RingConfig};
//! use gyre_types::{BucketName, Key, KeyHash, NodeId, PartitionCount, ZoneName};
//!
//! let zone = |z: &str| ZoneName::new(z).unwrap();
//! let config = RingConfig { partitions: PartitionCount::new(256)?, replication: 3 };
//! let members = vec![
//!     Member::new(NodeId::new(1), zone("a"), 1),
//!     Member::new(NodeId::new(2), zone("b"), 1),
//!     Member::new(NodeId::new(3), zone("c"), 2),
//! ];
//! let v1 = Layout::initial(config, members.clone())?;
//!
//! // Where does a key live?
//! let hash = KeyHash::of(&BucketName::default(), &Key::try_from("user:42").unwrap());
//! let nodes = v1.preference_list(hash, 3)?;
//! assert_eq!(nodes.len(), 3); // three distinct nodes, in three distinct zones
//!
//! // A fourth node joins: only about a quarter of the replicas move.
//! let mut bigger = members.clone();
//! bigger.push(Member::new(NodeId::new(4), zone("a"), 1));
//! let v2 = v1.next(bigger)?;
//! let diff = LayoutDiff::between(&v1, &v2)?;
//! assert_eq!(v2.version(), 2);
//! assert!(diff.replicas_moved() < 3 * 256 / 3);
//! assert!(v2.balance().min_zone_spread == 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod apportion;
mod assign;
mod diff;
mod error;
mod flow;
mod layout;
mod member;

pub use diff::{LayoutDiff, Move, NodeChange, gained};
pub use error::{Error, Result};
pub use layout::{
    Balance, ExtendedPreferenceList, Layout, MAX_MEMBERS, MAX_REPLICATION, MemberBalance,
    RingConfig,
};
pub use member::Member;

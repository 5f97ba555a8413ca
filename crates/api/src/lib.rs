//! Gyre's client front ends, over any [`Backend`]:
//!
//! - [`resp`]: the Redis protocol (RESP2, and RESP3 through `HELLO`), so
//!   `redis-cli`, `redis-benchmark` and Redis client libraries work
//!   unchanged; plus `GYRE.*` commands that expose contexts and siblings.
//! - [`http`]: the HTTP/JSON API (axum): keys, bucket properties, cluster
//!   status and administration, health and Prometheus metrics.
//!
//! The [`Backend`] is what a front end asks of the node: key operations,
//! bucket properties, cluster status and administration. `gyre-node`'s
//! running node implements it in the `gyre` binary; tests implement it with
//! a model.
//!
//! Both front ends share the same [`Metrics`] and the same rules for bad
//! input: a clear error in the protocol's own form, nothing written, the
//! connection still usable.
//!
//! ```
//! use gyre_api::{Backend, KvError};
//! use gyre_types::BucketName;
//!
//! // A front end turns a backend's failure into its own protocol's form.
//! let e = KvError::Unavailable { answered: 1, required: 2, detail: "waited 2001 ms".into() };
//! assert_eq!(e.to_string(), "1 of 2 required replicas answered (waited 2001 ms)");
//! assert_eq!(gyre_api::DEFAULT_BUCKET, "default");
//! # let _ = BucketName::new(gyre_api::DEFAULT_BUCKET).unwrap();
//! ```

pub mod auth;
mod backend;
pub mod http;
mod metrics;
pub mod resp;
pub mod tls;

pub use backend::{
    AdminCommand, AdminError, AdminReply, Backend, BucketSet, ChangeStatus, ClusterStatus, KeyPage,
    KvError, MemberStatus, NodeMoves, NodeStats, PeerStats, PlanSummary, ProcessStats, TreeRoot,
};
pub use gyre_handoff::{PartitionTransfer, Stage, TransferProgress, TransferSummary};
pub use metrics::{Front, Metrics, Op};

/// The bucket that always exists, used by plain Redis commands unless a
/// connection selects another.
pub const DEFAULT_BUCKET: &str = "default";

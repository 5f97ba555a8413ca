//! [`Backend`]: what the front ends ask of a node, and the shapes of its
//! answers.

use std::future::Future;

use bytes::Bytes;
use gyre_types::{BucketName, BucketProps, Key};
use gyre_wire::{ClientOp, ClientReply};
use serde::{Deserialize, Serialize};

/// What the front ends need from a node. The `gyre` binary implements it
/// over a running `gyre_node::Node`.
pub trait Backend: Send + Sync + 'static {
    /// One key operation, coordinated by this node or forwarded to a
    /// primary. Never returns [`ClientReply::Unavailable`]: that is
    /// [`KvError::Unavailable`].
    fn kv(&self, op: ClientOp) -> impl Future<Output = Result<ClientReply, KvError>> + Send;

    /// A bucket's properties, or `None` if the bucket does not exist.
    /// [`crate::DEFAULT_BUCKET`] always exists.
    fn bucket(&self, bucket: &BucketName) -> Option<BucketProps>;

    /// Every bucket that exists, with its properties.
    fn buckets(&self) -> Vec<(BucketName, BucketProps)>;

    /// Creates a bucket or changes its properties, cluster-wide: the change
    /// is stored here and sent to every member this node can reach; the
    /// others get it from anti-entropy of the bucket catalogue.
    fn set_bucket(
        &self,
        bucket: BucketName,
        props: BucketProps,
    ) -> impl Future<Output = Result<BucketSet, AdminError>> + Send;

    /// The cluster as this node sees it.
    fn status(&self) -> ClusterStatus;

    /// Stages a layout change, shows the plan, or commits it.
    fn admin(
        &self,
        command: AdminCommand,
    ) -> impl Future<Output = Result<AdminReply, AdminError>> + Send;

    /// What replication did so far, for metrics.
    fn stats(&self) -> NodeStats;

    /// The roots of this node's own Merkle trees (one per partition and
    /// n_val it holds data of): equal roots on two replicas mean equal data.
    fn local_trees(&self) -> Vec<TreeRoot>;

    /// The live values this node's own replica holds for a key: no quorum,
    /// no forwarding, no repair. `None` if it holds no record.
    ///
    /// # Errors
    /// [`KvError::Internal`] if the store fails.
    fn local_get(&self, bucket: &BucketName, key: &Key) -> Result<Option<Vec<Bytes>>, KvError>;
}

/// The root of one of a node's Merkle trees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeRoot {
    /// The partition.
    pub partition: u32,
    /// The n_val of the keys it covers.
    pub n_val: u8,
    /// The root hash, 32 hex digits.
    pub root: String,
}

/// Why a key operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The request is malformed or impossible (R or W above N, a context
    /// that does not decode, a value over the bucket's limit…). Nothing was
    /// written.
    #[error("{0}")]
    BadRequest(String),
    /// The bucket does not exist.
    #[error("unknown bucket '{0}'")]
    UnknownBucket(String),
    /// Too few replicas answered. A write may still exist on some of them:
    /// not confirmed, not "not written".
    #[error("{answered} of {required} required replicas answered")]
    Unavailable {
        /// Replicas that answered in time.
        answered: u8,
        /// Replicas the quorum required.
        required: u8,
    },
    /// The node cannot serve yet (no committed layout).
    #[error("not ready: {0}")]
    NotReady(String),
    /// Something failed inside the node.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why an administrative request failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The request is malformed or refused as asked (unknown node, a stale
    /// plan, removing a node that is up…).
    #[error("{0}")]
    BadRequest(String),
    /// Something failed inside the node.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The outcome of [`Backend::set_bucket`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketSet {
    /// The bucket.
    pub bucket: String,
    /// Members that stored the change (this node included).
    pub acknowledged: u32,
    /// Members in the layout (or just this node without one).
    pub members: u32,
}

/// A layout change, a plan, or a commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum AdminCommand {
    /// Stage: make a node that gossip knows a member.
    Join {
        /// The node's id (16 hex digits).
        node: String,
    },
    /// Stage: take a member out; its replicas move to the others.
    Leave {
        /// The node's id.
        node: String,
    },
    /// Stage: forget a node that is gone for good.
    Remove {
        /// The node's id.
        node: String,
    },
    /// Stage: change a member's capacity and/or zone.
    Set {
        /// The node's id.
        node: String,
        /// The new capacity.
        capacity: Option<u32>,
        /// The new zone.
        zone: Option<String>,
    },
    /// Forget the staged changes.
    Clear,
    /// Show what the staged changes would do.
    Plan,
    /// Apply the staged changes.
    Commit,
}

/// The answer to an [`AdminCommand`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminReply {
    /// The changes staged so far (after the command).
    Staged(Vec<String>),
    /// What a commit would do.
    Plan(PlanSummary),
    /// The layout version now in force.
    Committed(PlanSummary),
}

/// A plan: the staged changes and what they would move.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// The staged changes, readable.
    pub changes: Vec<String>,
    /// The layout version the plan makes.
    pub version: u64,
    /// Partition replicas that change owner.
    pub moves: u64,
    /// Each member's share of partition replicas afterwards (id → share in
    /// 0..=1).
    pub ownership: Vec<(String, f64)>,
}

/// The cluster as one node sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node answering.
    pub node: String,
    /// The layout version it holds (`None`: no layout committed yet).
    pub layout_version: Option<u64>,
    /// Partitions of the layout.
    pub partitions: Option<u32>,
    /// Replicas per partition the layout places.
    pub replication: Option<u8>,
    /// Every node it knows of.
    pub members: Vec<MemberStatus>,
    /// Changes staged on this node, not committed.
    pub staged: Vec<String>,
}

/// One node as another sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Its id.
    pub id: String,
    /// Its peer (QUIC) address.
    pub peer_addr: Option<String>,
    /// Its client endpoints (`resp=…`, `http=…`).
    pub client_addrs: Vec<String>,
    /// Its zone.
    pub zone: Option<String>,
    /// Its capacity (relative weight).
    pub capacity: Option<u32>,
    /// What it advertises: `joining`, `member`, `leaving` (or `unknown`,
    /// `removed`).
    pub status: String,
    /// Whether it is in the layout.
    pub in_layout: bool,
    /// Whether the observer considers it up.
    pub up: bool,
    /// The failure detector's suspicion (phi).
    pub phi: Option<f64>,
    /// Its share of partition replicas in the layout (0..=1).
    pub ownership: f64,
    /// Hints the observer holds for it.
    pub hints_pending: u64,
}

/// Counts of what replication did on this node, since it started (hints
/// pending: now).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStats {
    /// Writes that went to a fallback as a hint (sloppy quorum).
    pub fallbacks: u64,
    /// Hints delivered to their owners.
    pub hints_delivered: u64,
    /// Hints held for other nodes now.
    pub hints_pending: u64,
    /// Replicas repaired on reads.
    pub read_repairs: u64,
    /// Keys exchanged by anti-entropy.
    pub anti_entropy_keys: u64,
    /// Operations refused for lack of replicas.
    pub quorum_failures: u64,
    /// Tombstones purged.
    pub purges: u64,
}

//! [`Backend`]: what the front ends ask of a node, and the shapes of its
//! answers.

use std::future::Future;

use bytes::Bytes;
use gyre_handoff::TransferProgress;
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

    /// About `count` keys of `bucket` that have a value, in key-hash order,
    /// from `cursor` on (0: the start); the page's cursor is where the next
    /// one starts, 0 once the walk is done. Every key that has a value for
    /// the whole walk is listed at least once.
    fn list_keys(
        &self,
        bucket: &BucketName,
        cursor: u64,
        count: usize,
    ) -> impl Future<Output = Result<KeyPage, KvError>> + Send;

    /// An estimate of how many keys the cluster holds: every bucket, with
    /// tombstones and expired values not yet purged.
    fn key_count(&self) -> impl Future<Output = Result<u64, KvError>> + Send;
}

/// One page of a key listing ([`Backend::list_keys`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// Keys, in key-hash order.
    pub keys: Vec<Key>,
    /// Where the next page starts; 0 once the walk is done.
    pub cursor: u64,
}

/// The root of one of a node's Merkle trees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    #[error(
        "{answered} of {required} required replicas answered{}",
        in_parens(detail)
    )]
    Unavailable {
        /// Replicas that answered in time.
        answered: u8,
        /// Replicas the quorum required.
        required: u8,
        /// What fell short, whom the coordinator asked, how long it waited
        /// (may be empty).
        detail: String,
    },
    /// The node cannot serve yet (no committed layout).
    #[error("not ready: {0}")]
    NotReady(String),
    /// Something failed inside the node.
    #[error("internal error: {0}")]
    Internal(String),
}

/// ` (detail)`, or nothing for no detail.
fn in_parens(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BucketSet {
    /// The bucket.
    pub bucket: String,
    /// Members that stored the change (this node included).
    pub acknowledged: u32,
    /// Members in the layout (or just this node without one).
    pub members: u32,
}

/// A layout change, a plan, or a commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Show what the staged changes would do: partitions and bytes that
    /// move, the time it takes at the throttle, and a safety verdict.
    Plan,
    /// Apply the staged changes. A plan that fails the safety verdict is
    /// refused unless `force` is set.
    Commit {
        /// Commit even though the plan fails its safety verdict.
        #[serde(default)]
        force: bool,
    },
    /// Undo the layout change in flight: a new layout with the replicas
    /// reads still use; the partial copies of the new replicas are dropped.
    Abort,
    /// Change this node's handoff throttle (what is not given stays).
    Throttle {
        /// Bytes per second it pulls at most (0: no limit).
        rate: Option<u64>,
        /// Partitions it pulls at once.
        inbound: Option<u32>,
        /// Partitions it serves at once.
        #[serde(default)]
        outbound: Option<u32>,
    },
}

/// The answer to an [`AdminCommand`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdminReply {
    /// The changes staged so far (after the command).
    Staged(Vec<String>),
    /// What a commit would do.
    Plan(PlanSummary),
    /// The layout version now in force.
    Committed(PlanSummary),
    /// The throttle now in force on the node that answered.
    Throttle {
        /// Bytes per second (0: no limit).
        rate: u64,
        /// Partitions pulled at once.
        inbound: u32,
        /// Partitions served at once.
        outbound: u32,
    },
}

/// A plan: the staged changes and what they would move.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Per node: partition replicas it gains and loses.
    #[serde(default)]
    pub nodes: Vec<NodeMoves>,
    /// Bytes that will move: what the old replicas hold of every partition
    /// replica that moves, from their own size reports.
    #[serde(default)]
    pub bytes: u64,
    /// Nodes that did not report their sizes (their partitions are not in
    /// `bytes`).
    #[serde(default)]
    pub unreported: Vec<String>,
    /// Seconds the move takes at the throttle (`None`: no throttle set).
    #[serde(default)]
    pub eta_secs: Option<u64>,
    /// Whether every partition keeps W live replicas in both its old and
    /// new replica sets if one more node fails.
    #[serde(default)]
    pub safe: bool,
    /// Why the plan is unsafe, or that it is safe.
    #[serde(default)]
    pub safety: String,
}

/// What a plan moves to and from one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeMoves {
    /// The node.
    pub node: String,
    /// Partition replicas it receives.
    pub gains: u64,
    /// Partition replicas it hands off.
    pub losses: u64,
    /// Bytes it receives.
    pub bytes_in: u64,
}

/// The cluster as one node sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// The layout change in flight, if any.
    #[serde(default)]
    pub change: Option<ChangeStatus>,
    /// This node's partition transfers.
    #[serde(default)]
    pub transfers: TransferProgress,
}

/// A layout change in flight, as one node sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeStatus {
    /// The version reads used before the change.
    pub from: u64,
    /// The newest version.
    pub to: u64,
    /// Layouts in use (writes go to all of them).
    pub layouts_in_use: u32,
    /// The stage: `filling` (new replicas stream and verify; reads use the
    /// old ones), `reading_new` (reads use the new replicas; writes still go
    /// to both) or `retiring` (waiting for every node to read the new ones).
    pub stage: String,
    /// Members of the new layout that are not filled yet.
    pub not_synced: Vec<String>,
    /// Nodes that do not read with the new layout yet.
    pub not_reading: Vec<String>,
}

/// One node as another sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// What it advertises: `joining`, `member`, `leaving`, `left` (every
    /// partition handed off: it can be stopped), or `unknown`, `removed`.
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
/// pending: now), and gauges of the node's view and process.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// Anti-entropy sessions run to the end.
    pub anti_entropy_sessions: u64,
    /// Anti-entropy sessions that failed.
    pub anti_entropy_failures: u64,
    /// Operations refused for lack of replicas.
    pub quorum_failures: u64,
    /// Replica requests that did not answer within their hedge delay, so
    /// that a fallback or the next primary was asked beside them.
    pub hedged: u64,
    /// Tombstones purged.
    pub purges: u64,
    /// Of those, states that held expired values: storage reclaimed by
    /// expiry.
    pub expired_purged: u64,
    /// Keys the sweep read because they looked collectable.
    pub swept: u64,
    /// Layouts in use (more than one while a layout change moves data).
    pub layouts_in_use: u64,
    /// This node's partition transfers.
    pub transfers: TransferProgress,
    /// Hints held now, per target node.
    pub hints_by_target: Vec<(String, u64)>,
    /// This node's own membership status (`member`, `joining`, ...).
    pub status: String,
    /// Every other member as this node's failure detector sees it.
    pub peers: Vec<PeerStats>,
    /// The node's process, if the platform tells.
    pub process: Option<ProcessStats>,
}

/// One peer, as a node's failure detector sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerStats {
    /// Its node id.
    pub id: String,
    /// Its membership status (`member`, `joining`, `leaving`, `left`,
    /// `unknown`).
    pub status: String,
    /// Whether it is judged up.
    pub up: bool,
    /// Its phi (suspicion), when known and finite.
    pub phi: Option<f64>,
}

/// What the operating system says of the node's process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStats {
    /// Resident memory, bytes.
    pub resident_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Threads.
    pub threads: u64,
    /// CPU time used, user and system, in milliseconds.
    pub cpu_ms: u64,
}

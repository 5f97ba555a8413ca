//! What a node reports of the partition transfers a layout change gives it.

use gyre_membership::LayoutStamp;
use gyre_types::NodeId;
use serde::Serialize;

/// Where one partition replica this node is filling stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Waiting until every live node routes with the new layout, so that
    /// no write can miss the new replica any more (the *prepare* barrier).
    /// Writes already go to both replica sets; reads use the old one.
    Prepare,
    /// Pulling the partition from an old replica, chunk by chunk in key
    /// order, each merged (DVV sync) and its cursor persisted.
    Stream,
    /// Comparing Merkle trees with a majority of the old replicas and
    /// repairing what differs, after the prepare barrier.
    Verify,
    /// Filled and verified. Reads move to the new replicas once every
    /// member of the new layout is synced; writes keep going to both
    /// until every node reads with the new layout.
    Synced,
}

/// One (partition, n_val) this node is filling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionTransfer {
    /// The partition.
    pub partition: u32,
    /// The n_val of the keys moved.
    pub n_val: u8,
    /// Its stage.
    pub stage: Stage,
    /// The old replica it streams from.
    pub source: Option<NodeId>,
    /// Objects received so far.
    pub keys: u64,
    /// Bytes (keys and values) received so far.
    pub bytes: u64,
    /// What it waits for, when it is not moving.
    pub waiting: Option<String>,
}

/// A finished change, as this node saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransferSummary {
    /// The layout that was filled.
    pub layout: LayoutStamp,
    /// Partition replicas this node filled.
    pub partitions: usize,
    /// Objects received.
    pub keys: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Chunks that were received twice (a resumed stream re-asks at most
    /// the chunk it had not recorded).
    pub resent_chunks: u64,
    /// Milliseconds from the start (the prepare barrier included) to the
    /// last verification.
    pub took_ms: u64,
    /// Milliseconds from the first chunk to the last: what the throttle
    /// paces.
    pub stream_ms: u64,
}

/// The transfers of one node: the change it is filling replicas for, each
/// partition's stage, the totals and the throttle.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TransferProgress {
    /// The layout being filled; `None` when no change gives this node
    /// anything to fill.
    pub layout: Option<LayoutStamp>,
    /// Each partition replica being filled.
    pub partitions: Vec<PartitionTransfer>,
    /// Bytes the old replicas hold of those partitions (an estimate, from
    /// their size reports; 0 until they answered).
    pub bytes_total: u64,
    /// Bytes received so far.
    pub bytes_done: u64,
    /// Objects received so far.
    pub keys_done: u64,
    /// Receive rate over the transfer so far, bytes per second.
    pub rate: u64,
    /// Seconds left at that rate, if it can be told.
    pub eta_secs: Option<u64>,
    /// The throttle: bytes per second this node pulls at most (0: none).
    pub max_rate: u64,
    /// The throttle: partitions this node pulls at once.
    pub max_inbound: usize,
    /// The throttle: partitions this node serves at once.
    pub max_outbound: usize,
    /// Partitions this node serves now.
    pub outbound: usize,
    /// Partitions held here that no layout in use gives this node, waiting
    /// to be handed to their replicas and dropped.
    pub to_drop: usize,
    /// Partitions dropped since the node started.
    pub dropped: u64,
    /// The last change this node finished filling.
    pub last: Option<TransferSummary>,
}

impl TransferProgress {
    /// Partitions per stage: prepare, stream, verify, synced.
    pub fn stage_counts(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for p in &self.partitions {
            let i = match p.stage {
                Stage::Prepare => 0,
                Stage::Stream => 1,
                Stage::Verify => 2,
                Stage::Synced => 3,
            };
            if let Some(c) = counts.get_mut(i) {
                *c += 1;
            }
        }
        counts
    }

    /// The partition that has waited longest, and why (the first one not
    /// moving, in partition order).
    pub fn stalled(&self) -> Option<&PartitionTransfer> {
        self.partitions.iter().find(|p| p.waiting.is_some())
    }
}

//! What a node reports of the partition transfers a layout change gives
//! it: one type, kept by the node, served by the HTTP API and read by the
//! CLI as it is.

use std::time::Duration;

use gyre_membership::LayoutStamp;
use gyre_types::{NodeId, PartitionId};
use serde::{Deserialize, Serialize};

// `LayoutStamp`'s shape, for the OpenAPI document.
/// A layout: its version, and the digest that tells two commits of one
/// version apart.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = LayoutStamp)]
#[allow(dead_code)]
struct LayoutStampSchema {
    /// The layout's version.
    version: u64,
    /// The digest of the layout (two commits of one version differ in it).
    digest: u64,
}

/// Where one partition replica this node is filling stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A node id as its text (a JSON number would lose digits in clients that
/// read numbers as doubles).
mod id_text {
    use gyre_types::NodeId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(id: &Option<NodeId>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.collect_str(id),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NodeId>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl Stage {
    /// Every stage, in the order a partition goes through them.
    pub const ALL: [Self; 4] = [Self::Prepare, Self::Stream, Self::Verify, Self::Synced];

    /// Its name, as serialised: `prepare`, `stream`, `verify`, `synced`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Prepare => "prepare",
            Self::Stream => "stream",
            Self::Verify => "verify",
            Self::Synced => "synced",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One (partition, n_val) this node is filling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PartitionTransfer {
    /// The partition.
    pub partition: u32,
    /// The n_val of the keys moved.
    pub n_val: u8,
    /// Its stage.
    pub stage: Stage,
    /// The old replica it streams from (its id as 16 hexadecimal digits,
    /// as everywhere in the HTTP API).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(with = "id_text")]
    pub source: Option<NodeId>,
    /// Objects received so far.
    pub keys: u64,
    /// Bytes (keys and values) received so far.
    pub bytes: u64,
    /// Bytes its source held when the transfer began (its size report; 0
    /// if it gave none): what [`TransferProgress::bytes_done`] counts it
    /// for at most.
    pub expected: u64,
    /// What it waits for, when it is not moving.
    pub waiting: Option<String>,
}

/// A finished change, as this node saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferSummary {
    /// The layout that was filled.
    #[cfg_attr(feature = "openapi", schema(value_type = LayoutStampSchema))]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferProgress {
    /// The layout being filled; `None` when no change gave this node
    /// anything to fill since it started.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<LayoutStampSchema>))]
    pub layout: Option<LayoutStamp>,
    /// Each partition replica being filled.
    pub partitions: Vec<PartitionTransfer>,
    /// Bytes the old replicas hold of those partitions (an estimate, from
    /// their size reports; 0 until they answered).
    pub bytes_total: u64,
    /// Bytes received so far of those `bytes_total`: never more than it.
    pub bytes_done: u64,
    /// Bytes received beyond each partition's estimate: written while the
    /// change runs (or missed by the estimate). Counted apart, so that done
    /// never exceeds the total.
    pub bytes_extra: u64,
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
    /// Partitions per stage, in the order of [`Stage::ALL`].
    pub fn stage_counts(&self) -> [usize; 4] {
        Stage::ALL.map(|stage| self.partitions.iter().filter(|p| p.stage == stage).count())
    }

    /// Bytes received in all: the estimate's share and the rest.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_done + self.bytes_extra
    }

    /// Counts a chunk of `keys` objects and `bytes` bytes received for
    /// (`partition`, `n_val`): toward [`Self::bytes_done`] up to what is
    /// left of its estimate, the rest toward [`Self::bytes_extra`].
    pub fn received(&mut self, partition: PartitionId, n_val: u8, keys: u64, bytes: u64) {
        let mut counted = 0;
        if let Some(t) = self
            .partitions
            .iter_mut()
            .find(|t| t.partition == partition.get() && t.n_val == n_val)
        {
            counted = bytes.min(t.expected.saturating_sub(t.bytes));
            t.keys += keys;
            t.bytes += bytes;
        }
        self.keys_done += keys;
        self.bytes_done += counted;
        self.bytes_extra += bytes - counted;
    }

    /// Sets the rate and the time left from how long the transfer has run
    /// (both stay as they were until something was received).
    pub fn running_for(&mut self, elapsed: Duration) {
        let (secs, received) = (elapsed.as_secs_f64(), self.bytes_received());
        if secs > 0.0 && received > 0 {
            self.rate = (received as f64 / secs) as u64;
            let left = self.bytes_total.saturating_sub(self.bytes_done);
            self.eta_secs = (self.rate > 0).then(|| left / self.rate.max(1));
        }
    }

    /// Closes the transfer of `layout`: it took `took` from its start to
    /// its last verification, `streamed` from its first chunk to its last,
    /// and `resent` chunks were received twice. The rate stays as it was
    /// over the whole transfer; [`Self::last`] sums it up.
    pub fn finish(&mut self, layout: LayoutStamp, took: Duration, streamed: Duration, resent: u64) {
        let received = self.bytes_received();
        let took_ms = took.as_millis() as u64;
        self.rate = (received * 1000).checked_div(took_ms).unwrap_or(0);
        self.eta_secs = Some(0);
        self.last = Some(TransferSummary {
            layout,
            partitions: self.partitions.len(),
            keys: self.keys_done,
            bytes: received,
            resent_chunks: resent,
            took_ms,
            stream_ms: streamed.as_millis() as u64,
        });
    }

    /// The partition that has waited longest, and why (the first one not
    /// moving, in partition order).
    pub fn stalled(&self) -> Option<&PartitionTransfer> {
        self.partitions.iter().find(|p| p.waiting.is_some())
    }

    /// [`Self::stalled`], readable: "partition 7: every old replica is
    /// down: …".
    pub fn stalled_because(&self) -> Option<String> {
        self.stalled().map(|t| {
            format!(
                "partition {}: {}",
                t.partition,
                t.waiting.as_deref().unwrap_or("")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filling(expected: &[u64]) -> TransferProgress {
        let partitions: Vec<PartitionTransfer> = expected
            .iter()
            .zip(0u32..)
            .map(|(&expected, partition)| PartitionTransfer {
                partition,
                n_val: 3,
                stage: Stage::Stream,
                source: None,
                keys: 0,
                bytes: 0,
                expected,
                waiting: None,
            })
            .collect();
        TransferProgress {
            bytes_total: expected.iter().sum(),
            partitions,
            ..TransferProgress::default()
        }
    }

    #[test]
    fn the_rate_and_the_time_left_follow_what_was_received() {
        let mut p = filling(&[1000, 1000]);
        p.running_for(Duration::from_secs(2));
        assert_eq!((p.rate, p.eta_secs), (0, None));
        p.received(PartitionId::new(0), 3, 5, 500);
        p.running_for(Duration::from_secs(2));
        assert_eq!((p.rate, p.eta_secs), (250, Some(6)));
        let stamp = LayoutStamp {
            version: 3,
            digest: 9,
        };
        p.finish(stamp, Duration::from_secs(5), Duration::from_secs(1), 1);
        assert_eq!((p.rate, p.eta_secs), (100, Some(0)));
        let last = p.last.clone().unwrap_or_else(|| unreachable!());
        assert_eq!(
            (last.layout, last.partitions, last.keys, last.bytes),
            (stamp, 2, 5, 500)
        );
        assert_eq!(
            (last.resent_chunks, last.took_ms, last.stream_ms),
            (1, 5000, 1000)
        );
    }

    #[test]
    fn stages_are_serialised_by_their_names() {
        for stage in Stage::ALL {
            let json = serde_json::to_string(&stage).unwrap_or_default();
            assert_eq!(json, format!("\"{stage}\""));
            assert_eq!(serde_json::from_str::<Stage>(&json).ok(), Some(stage));
        }
    }

    #[test]
    fn progress_reads_back_as_it_was_served() {
        let mut p = filling(&[10, 20]);
        p.received(PartitionId::new(1), 3, 2, 25);
        p.partitions[0].waiting = Some("prepare".to_owned());
        p.partitions[1].source = "00000000000000ff".parse().ok();
        let json = serde_json::to_vec(&p).unwrap_or_default();
        assert!(String::from_utf8_lossy(&json).contains(r#""source":"00000000000000ff""#));
        assert_eq!(
            serde_json::from_slice::<TransferProgress>(&json).ok(),
            Some(p)
        );
    }

    #[test]
    fn done_never_exceeds_the_total_and_the_rest_is_counted_apart() {
        let mut p = filling(&[100, 50]);
        p.received(PartitionId::new(0), 3, 2, 80);
        p.received(PartitionId::new(1), 3, 1, 20);
        assert_eq!((p.bytes_done, p.bytes_extra), (100, 0));
        // Partition 0 grew while it moved: 40 more than its estimate.
        p.received(PartitionId::new(0), 3, 3, 60);
        p.received(PartitionId::new(1), 3, 1, 30);
        assert_eq!((p.bytes_done, p.bytes_extra), (150, 40));
        assert_eq!(p.bytes_done, p.bytes_total);
        assert_eq!(p.keys_done, 7);
        assert_eq!(p.partitions[0].bytes, 140);
        // A partition that gave no estimate counts only as extra.
        let mut p = filling(&[0]);
        p.received(PartitionId::new(0), 3, 1, 10);
        assert_eq!((p.bytes_done, p.bytes_extra, p.bytes_total), (0, 10, 0));
    }
}

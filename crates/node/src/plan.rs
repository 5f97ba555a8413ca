//! A layout change's dry run: what it moves, how many bytes, how long at
//! the throttle, and whether it is safe to start.

use std::collections::BTreeMap;

use gyre_ring::Layout;
use gyre_storage::Store;
use gyre_types::NodeId;

use crate::{Peers, Transfers};

/// What a layout change would move, before it is committed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanEstimate {
    /// Per node: partition replicas gained, lost, and the bytes it receives.
    pub nodes: BTreeMap<NodeId, NodeEstimate>,
    /// Bytes that move in all, from the old replicas' size reports.
    pub bytes: u64,
    /// Nodes that did not report their sizes.
    pub unreported: Vec<NodeId>,
    /// Seconds the move takes at this node's throttle, if one is set (the
    /// receivers pull in parallel, so the busiest one decides).
    pub eta_secs: Option<u64>,
    /// Why the change is unsafe (`None`: safe): a partition whose old or
    /// new replica set would keep fewer than W live replicas if one more
    /// node failed.
    pub unsafe_because: Option<String>,
}

/// What a change moves to and from one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeEstimate {
    /// Partition replicas it receives.
    pub gains: u64,
    /// Partition replicas it hands off.
    pub losses: u64,
    /// Bytes it receives.
    pub bytes_in: u64,
}

impl<T: Peers, S: Store + 'static> Transfers<T, S> {
    /// Estimates what changing from `current` to `next` moves, asking the
    /// old replicas for their partitions' sizes, and judges its safety with
    /// write quorum `w`. An old replica set holding a node the change
    /// `removes` (it is gone for good: the change is its remedy) is not
    /// judged; its new set is.
    pub async fn estimate(
        &self,
        current: &Layout,
        next: &Layout,
        removes: &[NodeId],
        w: u8,
    ) -> PlanEstimate {
        let mut estimate = PlanEstimate::default();
        // Liveness as it is now, before the size reports: each is a scan of
        // a member's whole store, and with millions of keys on a small
        // machine the scans can delay gossip enough for the failure
        // detector to suspect nodes that are up (seen at 1,000,000 keys on
        // two cores: a safe plan judged unsafe).
        let up: std::collections::BTreeSet<NodeId> = next
            .members()
            .iter()
            .chain(current.members())
            .map(|m| m.id)
            .filter(|&id| self.membership().is_up(id))
            .collect();
        let reports = self
            .replication()
            .partition_sizes(current.members().iter().map(|m| m.id))
            .await;
        let sizes: BTreeMap<NodeId, BTreeMap<u32, u64>> = reports
            .into_iter()
            .map(|(id, list)| {
                let bytes = list.into_iter().map(|s| (s.partition.get(), s.bytes));
                (id, bytes.collect())
            })
            .collect();
        estimate.unreported = current
            .members()
            .iter()
            .map(|m| m.id)
            .filter(|id| !sizes.contains_key(id))
            .collect();
        let up = |id: NodeId| up.contains(&id);
        for partition in next.partitions().iter() {
            let old = current.replicas(partition);
            let new = next.replicas(partition);
            let size = old
                .iter()
                .find_map(|n| {
                    sizes
                        .get(n)
                        .map(|s| s.get(&partition.get()).copied().unwrap_or(0))
                })
                .unwrap_or(0);
            for &n in new.iter().filter(|n| !old.contains(n)) {
                let e = estimate.nodes.entry(n).or_default();
                e.gains += 1;
                e.bytes_in += size;
                estimate.bytes += size;
            }
            for &n in old.iter().filter(|n| !new.contains(n)) {
                estimate.nodes.entry(n).or_default().losses += 1;
            }
            if estimate.unsafe_because.is_none() {
                let old_judged = !old.iter().any(|n| removes.contains(n));
                let sets = [("old", old), ("new", new)];
                for (name, set) in sets.into_iter().filter(|(n, _)| *n == "new" || old_judged) {
                    let live = set.iter().filter(|&&n| up(n)).count();
                    if live.saturating_sub(1) < usize::from(w) {
                        estimate.unsafe_because = Some(format!(
                            "partition {} would keep {} live replicas in its {name} set \
                             ({set:?}) if one more node failed, fewer than W={w}",
                            partition.get(),
                            live.saturating_sub(1),
                        ));
                        break;
                    }
                }
            }
        }
        let rate = self.progress().max_rate;
        if rate > 0 {
            let busiest = estimate
                .nodes
                .values()
                .map(|e| e.bytes_in)
                .max()
                .unwrap_or(0);
            estimate.eta_secs = Some(busiest.div_ceil(rate));
        }
        estimate
    }
}

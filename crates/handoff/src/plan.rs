//! [`PlanEstimate`]: a layout change's dry run, what it moves, how many
//! bytes, how long at the throttle, and whether it is safe to start.

use std::collections::{BTreeMap, BTreeSet};

use gyre_ring::{Layout, LayoutDiff};
use gyre_types::NodeId;

/// What a layout change would move, before it is committed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanEstimate {
    /// Per node: partition replicas gained, lost, and the bytes it receives.
    pub nodes: BTreeMap<NodeId, NodeEstimate>,
    /// Bytes that move in all, from the old replicas' size reports.
    pub bytes: u64,
    /// Nodes that did not report their sizes.
    pub unreported: Vec<NodeId>,
    /// Seconds the move takes at the throttle, if one is set (the
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

/// What the dry run of a change from one layout to the next is made of.
#[derive(Clone, Copy, Debug)]
pub struct DryRun<'a> {
    /// The layout in use.
    pub current: &'a Layout,
    /// The layout the change makes.
    pub next: &'a Layout,
    /// Their diff.
    pub diff: &'a LayoutDiff,
    /// Nodes the change removes for good: an old replica set holding one
    /// is not judged (the change is its remedy); its new set is.
    pub removes: &'a [NodeId],
    /// The write quorum the safety verdict is judged with.
    pub w: u8,
    /// The nodes up when the dry run began.
    pub up: &'a BTreeSet<NodeId>,
    /// Per member of `current` that answered: bytes per partition it holds.
    pub sizes: &'a BTreeMap<NodeId, BTreeMap<u32, u64>>,
    /// The throttle, bytes per second (0: none).
    pub rate: u64,
}

impl PlanEstimate {
    /// The dry run: every move of the diff counted for its nodes with the
    /// partition's size as its first reporting old replica gave it, and
    /// every partition's old and new replica sets judged for one more
    /// failure.
    pub fn of(run: &DryRun<'_>) -> Self {
        let mut estimate = Self {
            unreported: run
                .current
                .members()
                .iter()
                .map(|m| m.id)
                .filter(|id| !run.sizes.contains_key(id))
                .collect(),
            ..Self::default()
        };
        let size = |partition: gyre_types::PartitionId| {
            run.current
                .replicas(partition)
                .iter()
                .find_map(|n| run.sizes.get(n).map(|s| s.get(&partition.get()).copied()))
                .flatten()
                .unwrap_or(0)
        };
        for m in &run.diff.moves {
            if let Some(to) = m.to {
                let bytes = size(m.partition);
                let e = estimate.nodes.entry(to).or_default();
                e.gains += 1;
                e.bytes_in += bytes;
                estimate.bytes += bytes;
            }
            if let Some(from) = m.from {
                estimate.nodes.entry(from).or_default().losses += 1;
            }
        }
        estimate.unsafe_because = run
            .next
            .partitions()
            .iter()
            .find_map(|partition| unsafe_because(run, partition));
        if run.rate > 0 {
            let busiest = estimate.nodes.values().map(|e| e.bytes_in).max();
            estimate.eta_secs = Some(busiest.unwrap_or(0).div_ceil(run.rate));
        }
        estimate
    }
}

/// Why changing `partition` is unsafe, if it is: its old or new replica
/// set would keep fewer than W live replicas if one more node failed.
fn unsafe_because(run: &DryRun<'_>, partition: gyre_types::PartitionId) -> Option<String> {
    let (old, new) = (
        run.current.replicas(partition),
        run.next.replicas(partition),
    );
    let old_judged = !old.iter().any(|n| run.removes.contains(n));
    let sets = [("old", old), ("new", new)];
    sets.into_iter()
        .filter(|(name, _)| *name == "new" || old_judged)
        .find_map(|(name, set)| {
            let live = set.iter().filter(|n| run.up.contains(n)).count();
            let after_one_more = live.saturating_sub(1);
            (after_one_more < usize::from(run.w)).then(|| {
                format!(
                    "partition {} would keep {after_one_more} live replicas in its {name} set \
                     ({set:?}) if one more node failed, fewer than W={}",
                    partition.get(),
                    run.w
                )
            })
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use gyre_ring::{Member, RingConfig};
    use gyre_types::{PartitionCount, ZoneName};

    use super::*;

    fn members(ids: &[u64]) -> Vec<Member> {
        ids.iter()
            .map(|&i| Member::new(NodeId::new(i), ZoneName::new(format!("z{i}")).unwrap(), 1))
            .collect()
    }

    fn layouts(before: &[u64], after: &[u64]) -> (Layout, Layout, LayoutDiff) {
        let config = RingConfig {
            partitions: PartitionCount::new(64).unwrap(),
            replication: 3,
        };
        let current = Layout::initial(config, members(before)).unwrap();
        let next = current.next(members(after)).unwrap();
        let diff = LayoutDiff::between(&current, &next).unwrap();
        (current, next, diff)
    }

    fn up(ids: &[u64]) -> BTreeSet<NodeId> {
        ids.iter().map(|&i| NodeId::new(i)).collect()
    }

    /// Every member of `layout` reports `bytes` for each partition it holds.
    fn sizes(layout: &Layout, bytes: u64) -> BTreeMap<NodeId, BTreeMap<u32, u64>> {
        layout
            .members()
            .iter()
            .map(|m| {
                let held = layout
                    .partitions_of(m.id)
                    .into_iter()
                    .map(|p| (p.get(), bytes));
                (m.id, held.collect())
            })
            .collect()
    }

    #[test]
    fn a_join_moves_what_the_diff_moves_at_the_reported_sizes() {
        let (current, next, diff) = layouts(&[1, 2, 3], &[1, 2, 3, 4]);
        let (up, sizes) = (up(&[1, 2, 3, 4]), sizes(&current, 100));
        let run = DryRun {
            current: &current,
            next: &next,
            diff: &diff,
            removes: &[],
            w: 2,
            up: &up,
            sizes: &sizes,
            rate: 1000,
        };
        let e = PlanEstimate::of(&run);
        let gained = diff.nodes[&NodeId::new(4)].gains;
        assert!(gained > 0);
        assert_eq!(e.nodes[&NodeId::new(4)].gains, u64::from(gained));
        assert_eq!(e.bytes, 100 * u64::from(gained));
        let losses: u64 = e.nodes.values().map(|n| n.losses).sum();
        assert_eq!(losses, u64::from(gained));
        assert_eq!(e.eta_secs, Some(e.bytes.div_ceil(1000)));
        assert_eq!((e.unsafe_because, e.unreported), (None, vec![]));
    }

    #[test]
    fn a_change_that_one_more_failure_would_leave_below_w_is_unsafe() {
        let (current, next, diff) = layouts(&[1, 2, 3], &[1, 2, 3, 4]);
        // Node 3 is down: a set holding it keeps 2 live, 1 after one more.
        let (up, sizes) = (up(&[1, 2, 4]), BTreeMap::new());
        let run = DryRun {
            current: &current,
            next: &next,
            diff: &diff,
            removes: &[],
            w: 2,
            up: &up,
            sizes: &sizes,
            rate: 0,
        };
        let e = PlanEstimate::of(&run);
        assert!(e.unsafe_because.unwrap().contains("fewer than W=2"));
        assert_eq!(e.unreported.len(), 3);
        assert_eq!((e.bytes, e.eta_secs), (0, None));
        // At W = 1 the same change is safe.
        assert_eq!(
            PlanEstimate::of(&DryRun { w: 1, ..run }).unsafe_because,
            None
        );
    }

    #[test]
    fn old_sets_of_a_removed_node_are_not_judged() {
        // Node 3 is lost for good and removed; 4 replaces it.
        let (current, next, diff) = layouts(&[1, 2, 3], &[1, 2, 4]);
        let up = up(&[1, 2, 4]);
        let sizes = BTreeMap::new();
        let run = DryRun {
            current: &current,
            next: &next,
            diff: &diff,
            removes: &[NodeId::new(3)],
            w: 1,
            up: &up,
            sizes: &sizes,
            rate: 0,
        };
        assert_eq!(PlanEstimate::of(&run).unsafe_because, None);
        // Not removed (it left, say), its old sets are judged.
        let judged = PlanEstimate::of(&DryRun {
            removes: &[],
            w: 2,
            ..run
        });
        assert!(judged.unsafe_because.unwrap().contains("old set"));
    }
}

use std::collections::BTreeMap;
use std::fmt;

use gyre_types::{NodeId, PartitionId};

use crate::{Error, Layout, Result};

/// One partition replica that changes owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    /// The partition.
    pub partition: PartitionId,
    /// Position in the new preference list (or, for a replica that is only
    /// dropped, in the old one).
    pub slot: usize,
    /// The node that gives the replica up; `None` when the partition gains a
    /// replica (the cluster grew towards N), in which case any old replica can
    /// stream it.
    pub from: Option<NodeId>,
    /// The node that takes it; `None` when the partition loses a replica (the
    /// cluster shrank below N).
    pub to: Option<NodeId>,
}

/// The partitions a change from `old` to `new` gives `node` to fill for
/// keys of buckets with `n_val` replicas: those of which it is one of the
/// first `n_val` replicas under `new` and not under `old`. With `n_val` =
/// N these are the [`Move`]s of [`LayoutDiff::between`] to `node`.
pub fn gained<'a>(
    old: &'a Layout,
    new: &'a Layout,
    node: NodeId,
    n_val: u8,
) -> impl Iterator<Item = PartitionId> + 'a {
    new.partitions_of(node).into_iter().filter(move |&p| {
        new.primaries(p, n_val).contains(&node) && !old.primaries(p, n_val).contains(&node)
    })
}

/// Per-node totals of a [`LayoutDiff`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeChange {
    /// Replicas held before.
    pub before: u32,
    /// Replicas held after.
    pub after: u32,
    /// Replicas the node receives.
    pub gains: u32,
    /// Replicas the node hands off.
    pub losses: u32,
}

/// What changes between two layouts of the same cluster: every partition
/// replica that changes owner, from whom to whom, and totals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutDiff {
    /// Version of the old layout.
    pub from_version: u64,
    /// Version of the new layout.
    pub to_version: u64,
    /// The replicas that change owner, by partition.
    pub moves: Vec<Move>,
    /// Per node (old and new members), sorted by id.
    pub nodes: BTreeMap<NodeId, NodeChange>,
}

impl LayoutDiff {
    /// The changes that take `old` to `new`. Both must have the same Q and N.
    pub fn between(old: &Layout, new: &Layout) -> Result<Self> {
        if old.config() != new.config() {
            return Err(Error::IncompatibleLayout {
                prev_q: old.partitions(),
                prev_n: old.replication(),
                q: new.partitions(),
                n: new.replication(),
            });
        }
        let mut moves = Vec::new();
        let mut nodes: BTreeMap<NodeId, NodeChange> = BTreeMap::new();
        for p in old.partitions().iter() {
            let (a, b) = (old.replicas(p), new.replicas(p));
            for id in a {
                nodes.entry(*id).or_default().before += 1;
            }
            for id in b {
                nodes.entry(*id).or_default().after += 1;
            }
            let mut lost = a.iter().enumerate().filter(|(_, id)| !b.contains(id));
            let mut gained = b.iter().enumerate().filter(|(_, id)| !a.contains(id));
            loop {
                let (l, g) = (lost.next(), gained.next());
                let (slot, from, to) = match (l, g) {
                    (None, None) => break,
                    (l, Some((k, to))) => (k, l.map(|(_, id)| *id), Some(*to)),
                    (Some((k, from)), None) => (k, Some(*from), None),
                };
                if let Some(f) = from {
                    nodes.entry(f).or_default().losses += 1;
                }
                if let Some(t) = to {
                    nodes.entry(t).or_default().gains += 1;
                }
                moves.push(Move {
                    partition: p,
                    slot,
                    from,
                    to,
                });
            }
        }
        Ok(Self {
            from_version: old.version(),
            to_version: new.version(),
            moves,
            nodes,
        })
    }

    /// Partition replicas that a node must receive: the data the change moves.
    pub fn replicas_moved(&self) -> usize {
        self.moves.iter().filter(|m| m.to.is_some()).count()
    }

    /// Distinct partitions with at least one move.
    pub fn partitions_touched(&self) -> usize {
        let mut ps: Vec<PartitionId> = self.moves.iter().map(|m| m.partition).collect();
        ps.dedup();
        ps.len()
    }

    /// Whether nothing moves.
    pub fn is_empty(&self) -> bool {
        self.moves.is_empty()
    }
}

impl fmt::Display for LayoutDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "layout {} → {}: {} partition replica(s) move, {} partition(s) touched",
            self.from_version,
            self.to_version,
            self.replicas_moved(),
            self.partitions_touched()
        )?;
        writeln!(
            f,
            "{:<16}  {:>6} {:>6} {:>6} {:>6}",
            "node", "before", "after", "gains", "losses"
        )?;
        for (id, c) in &self.nodes {
            writeln!(
                f,
                "{:<16}  {:>6} {:>6} {:>+6} {:>6}",
                id.to_string(),
                c.before,
                c.after,
                c.gains,
                -i64::from(c.losses)
            )?;
        }
        Ok(())
    }
}

//! The availability rule: a request is never refused while the replicas it
//! needs were up and reachable for the whole of it (issue 23, Dynamo's
//! "always writable").
//!
//! The fault schedule records an [`Epoch`] after every fault event, once
//! the cluster formed, and every 100 ms between: who runs, which directed
//! links are up, whether messages are lost or duplicated, and the routing
//! (the layout reads use and every layout writes go to) if every running
//! node uses the same. An operation that began and ended within one epoch
//! is *servable* when, in that epoch:
//!
//! - messages were neither lost nor duplicated (delays are allowed);
//! - every running node routed alike, at the epoch's start and at the next
//!   epoch's (a layout change in flight is included: its barriers move
//!   the routing only between samples that then differ);
//! - the node the client asked ran, and its key's replicas that it reaches
//!   (both ways, or itself) reach each other both ways and number at least
//!   the quorum in each replica set the operation needs: R of the read
//!   layout's primaries for a read, W of each layout's primaries for a
//!   write. Whichever of them coordinates then reaches its quorums without
//!   any fallback.
//!
//! A servable operation must not end `Unavailable`, `TimedOut` or
//! `Failed`: the client's budget (5 s in the simulator) is far above the
//! hedge delay, and a node that can reach W replicas takes the write.

use std::time::Duration;

use gyre_replication::route::Routing;
use gyre_types::{BucketProps, NodeId};

use crate::checker::Violation;
use crate::history::{History, Outcome};

/// The cluster between two fault events.
#[derive(Clone, Debug)]
pub struct Epoch {
    /// When it began (virtual time since the cluster started).
    pub at: Duration,
    /// Every node's id, by index.
    pub ids: Vec<NodeId>,
    /// Which nodes ran.
    pub running: Vec<bool>,
    /// `links[i][j]`: whether what node `i` sends reaches node `j`.
    pub links: Vec<Vec<bool>>,
    /// No message was lost or duplicated.
    pub calm: bool,
    /// The routing every running node used, if they all used the same.
    pub routing: Option<Routing>,
}

impl Epoch {
    fn index(&self, id: NodeId) -> Option<usize> {
        self.ids.iter().position(|&n| n == id)
    }

    fn both_ways(&self, a: usize, b: usize) -> bool {
        a == b || (self.links[a][b] && self.links[b][a])
    }

    /// Why an operation through `entry` that needs `q` of each of `sets`
    /// (replica sets) could be served in this epoch, or `None` if it could
    /// not be counted on.
    fn servable(&self, entry: NodeId, sets: &[Vec<NodeId>], q: usize) -> Option<String> {
        if !self.calm || self.routing.is_none() {
            return None;
        }
        let e = self.index(entry)?;
        if !self.running[e] {
            return None;
        }
        let mut reached: Vec<usize> = sets
            .iter()
            .flatten()
            .filter_map(|&p| self.index(p))
            .filter(|&p| self.running[p] && self.both_ways(e, p))
            .collect();
        reached.sort_unstable();
        reached.dedup();
        let clique = reached
            .iter()
            .all(|&a| reached.iter().all(|&b| self.both_ways(a, b)));
        let enough = sets.iter().all(|set| {
            set.iter()
                .filter(|&&p| self.index(p).is_some_and(|i| reached.contains(&i)))
                .count()
                >= q
        });
        (enough && clique).then(|| {
            let names: Vec<String> = reached.iter().map(|&i| self.ids[i].to_string()).collect();
            format!(
                "replicas {} ran and reached {entry} and each other: quorum {q} in each of {} replica set(s)",
                names.join(", "),
                sets.len()
            )
        })
    }

    /// Whether every running node routed as in `other` too.
    fn same_routing(&self, other: &Epoch) -> bool {
        let versions = |r: &Routing| {
            (
                r.read.version(),
                r.write.iter().map(|l| l.version()).collect::<Vec<_>>(),
            )
        };
        match (&self.routing, &other.routing) {
            (Some(a), Some(b)) => versions(a) == versions(b),
            _ => false,
        }
    }
}

/// Every operation of `history` refused although it was servable (see the
/// module docs), judged by `epochs` (in time order). Keys use the default
/// bucket properties, as the simulator's workload does.
pub fn refused_while_servable(history: &History, epochs: &[Epoch]) -> Vec<Violation> {
    let props = BucketProps::default();
    let mut out = Vec::new();
    for op in &history.ops {
        if !matches!(
            op.outcome,
            Outcome::Unavailable { .. } | Outcome::TimedOut | Outcome::Failed(_)
        ) {
            continue;
        }
        // The epoch the operation began in, if it also ended in it.
        let Some(i) = epochs.iter().rposition(|e| e.at <= op.start) else {
            continue;
        };
        if epochs.get(i + 1).is_some_and(|next| next.at <= op.end) {
            continue;
        }
        let epoch = &epochs[i];
        let Some(routing) = &epoch.routing else {
            continue;
        };
        // The routing held until the next sample (a barrier may have moved
        // it in between otherwise).
        if epochs
            .get(i + 1)
            .is_some_and(|next| !epoch.same_routing(next))
        {
            continue;
        }
        let bucket = crate::bucket();
        let (sets, q) = if op.op.is_write() {
            let Ok(sets) = routing.write_sets(&bucket, &op.key, &props) else {
                continue;
            };
            (sets, props.w())
        } else {
            let Ok(primaries) =
                gyre_replication::route::primaries(&routing.read, &bucket, &op.key, &props)
            else {
                continue;
            };
            (vec![primaries], props.r())
        };
        if let Some(why) = epoch.servable(op.node, &sets, usize::from(q)) {
            out.push(Violation::Refused {
                key: op.key.clone(),
                detail: format!(
                    "{op}: {why}, layouts read v{} write {:?}",
                    routing.read.version(),
                    routing
                        .write
                        .iter()
                        .map(|l| l.version())
                        .collect::<Vec<_>>()
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn epoch(n: usize) -> Epoch {
        Epoch {
            at: Duration::ZERO,
            ids: (1..=n as u64).map(NodeId::new).collect(),
            running: vec![true; n],
            links: vec![vec![true; n]; n],
            calm: true,
            routing: None,
        }
    }

    #[test]
    fn a_quorum_that_reaches_the_entry_and_each_other_is_servable() {
        let mut e = epoch(4);
        let ids = e.ids.clone();
        let p = [vec![ids[1], ids[2], ids[3]]];
        // No single layout: never counted on.
        assert!(e.servable(ids[0], &p, 2).is_none());
        let members = ids
            .iter()
            .map(|&id| gyre_ring::Member::new(id, gyre_types::ZoneName::default(), 100))
            .collect();
        e.routing = Some(Routing::single(Arc::new(
            gyre_ring::Layout::initial(gyre_ring::RingConfig::default(), members).unwrap(),
        )));
        assert!(e.servable(ids[0], &p, 2).is_some());
        // One primary down: still two.
        e.running[1] = false;
        assert!(e.servable(ids[0], &p, 2).is_some());
        // The other two cannot reach each other: not counted on.
        e.links[2][3] = false;
        assert!(e.servable(ids[0], &p, 2).is_none());
        e.links[2][3] = true;
        // Lossy messages: not counted on.
        e.calm = false;
        assert!(e.servable(ids[0], &p, 2).is_none());
        e.calm = true;
        // The entry node is cut from one of the two.
        e.links[0][3] = false;
        assert!(e.servable(ids[0], &p, 2).is_none());
        e.links[0][3] = true;
        // During a change: W in each set (node 1 is still down). Through
        // node 0: {1, 2, 3} has 2 and 3, {0, 1, 3} has 0 and 3.
        let change = [vec![ids[1], ids[2], ids[3]], vec![ids[0], ids[1], ids[3]]];
        assert!(e.servable(ids[0], &change, 2).is_some());
        // Node 2 cut from node 0: the second set has only 3 within reach.
        e.links[2][0] = false;
        assert!(e.servable(ids[2], &change, 2).is_none());
        assert!(e.servable(ids[2], &change[..1], 2).is_some());
    }
}

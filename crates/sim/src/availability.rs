//! The availability rule: a request is never refused while the replicas it
//! needs were up and reachable for the whole of it (issue 23, Dynamo's
//! "always writable").
//!
//! The fault schedule records an [`Epoch`] after every fault event (and
//! once the cluster formed): who runs, which directed links are up, whether
//! messages are lost or duplicated, and the layout if one alone is in use on
//! every running node. An operation that began and ended within one epoch
//! is *servable* when, in that epoch:
//!
//! - messages were neither lost nor duplicated (delays are allowed);
//! - one layout was in use everywhere (a change in flight is left out: its
//!   replica sets are per node and move as the change advances);
//! - the node the client asked ran, and the key's primaries it reaches
//!   (both ways, or itself) number at least the quorum (R for a read, W for
//!   a write) and reach each other both ways. Whichever of them
//!   coordinates then reaches a quorum without any fallback.
//!
//! A servable operation must not end `Unavailable`, `TimedOut` or
//! `Failed`: the client's budget (5 s in the simulator) is far above the
//! hedge delay, and a node that can reach W replicas takes the write.

use std::sync::Arc;
use std::time::Duration;

use gyre_ring::Layout;
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
    /// The one layout every running node used, if so.
    pub layout: Option<Arc<Layout>>,
}

impl Epoch {
    fn index(&self, id: NodeId) -> Option<usize> {
        self.ids.iter().position(|&n| n == id)
    }

    fn both_ways(&self, a: usize, b: usize) -> bool {
        a == b || (self.links[a][b] && self.links[b][a])
    }

    /// Why an operation through `entry` on a key with `primaries` and
    /// quorum `q` could be served in this epoch, or `None` if it could not
    /// be counted on.
    fn servable(&self, entry: NodeId, primaries: &[NodeId], q: usize) -> Option<String> {
        if !self.calm || self.layout.is_none() {
            return None;
        }
        let e = self.index(entry)?;
        if !self.running[e] {
            return None;
        }
        let reached: Vec<usize> = primaries
            .iter()
            .filter_map(|&p| self.index(p))
            .filter(|&p| self.running[p] && self.both_ways(e, p))
            .collect();
        let clique = reached
            .iter()
            .all(|&a| reached.iter().all(|&b| self.both_ways(a, b)));
        (reached.len() >= q && clique).then(|| {
            let names: Vec<String> = reached.iter().map(|&i| self.ids[i].to_string()).collect();
            format!(
                "{} of the primaries ran and reached {entry} and each other ({}), quorum {q}",
                reached.len(),
                names.join(", ")
            )
        })
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
        let Some(layout) = &epoch.layout else {
            continue;
        };
        let Ok(primaries) =
            gyre_replication::route::primaries(layout, &crate::bucket(), &op.key, &props)
        else {
            continue;
        };
        let q = usize::from(if op.op.is_write() {
            props.w()
        } else {
            props.r()
        });
        if let Some(why) = epoch.servable(op.node, &primaries, q) {
            out.push(Violation::Refused {
                key: op.key.clone(),
                detail: format!("{op}: {why}, layout v{}", layout.version()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(n: usize) -> Epoch {
        Epoch {
            at: Duration::ZERO,
            ids: (1..=n as u64).map(NodeId::new).collect(),
            running: vec![true; n],
            links: vec![vec![true; n]; n],
            calm: true,
            layout: None,
        }
    }

    #[test]
    fn a_quorum_that_reaches_the_entry_and_each_other_is_servable() {
        let mut e = epoch(4);
        e.layout = None;
        let ids = e.ids.clone();
        let p = [ids[1], ids[2], ids[3]];
        // No single layout: never counted on.
        assert!(e.servable(ids[0], &p, 2).is_none());
        let members = ids
            .iter()
            .map(|&id| gyre_ring::Member::new(id, gyre_types::ZoneName::default(), 100))
            .collect();
        e.layout = Some(Arc::new(
            Layout::initial(gyre_ring::RingConfig::default(), members).unwrap(),
        ));
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
    }
}

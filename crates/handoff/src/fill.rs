//! What a layout change gives a node to fill, from whom, and the barrier
//! it waits on first: the rules, in one place, over the membership core's
//! view and the layouts in use.

use std::sync::Arc;
use std::time::Duration;

use gyre_membership::{LayoutStamp, Membership};
use gyre_ring::Layout;
use gyre_types::{NodeId, PartitionId};

/// The (partition, n_val) pairs `newest` gives `me` and `read` (the layout
/// reads use) does not. Every member of `read` is synced and every write
/// since reached it, so what it gives `me` is here already; layouts older
/// than it may miss writes (nodes that saw every node read with it retired
/// them).
pub fn gained(newest: &Layout, read: &Layout, me: NodeId, n_vals: &[u8]) -> Vec<(PartitionId, u8)> {
    let mut out: Vec<(PartitionId, u8)> = n_vals
        .iter()
        .flat_map(|&n| gyre_ring::gained(read, newest, me, n).map(move |p| (p, n)))
        .collect();
    out.sort_unstable();
    out
}

/// The live nodes of any layout in use that do not say yet that they
/// route with `stamp` (the *prepare* barrier waits until none is left). A
/// node says so only once every write it routed with an older layout is
/// over, so once none is left no write routed with an old layout can land
/// on the old replicas after the new ones copied and verified them.
pub fn not_prepared(core: &Membership, now: Duration, stamp: LayoutStamp) -> Vec<NodeId> {
    let mut waiting = Vec::new();
    for layout in core.history() {
        for m in layout.members() {
            let behind = core.node(m.id).and_then(|s| s.layout) < Some(stamp);
            if behind && !core.is_removed(m.id) && core.is_up(m.id, now) && !waiting.contains(&m.id)
            {
                waiting.push(m.id);
            }
        }
    }
    waiting
}

/// The replicas to fill (`partition`, `n_val`) from: those of `read` (they
/// hold every write: see [`gained`]), else of the first layout in use after
/// it (`write`, oldest first) that has any, leaving out `me` and nodes
/// removed for good (a replace of a lost node removes it while it was still
/// an old replica). Empty: every replica it had was removed, there is
/// nothing to fetch.
pub fn sources(
    core: &Membership,
    read: &Layout,
    write: &[Arc<Layout>],
    me: NodeId,
    partition: PartitionId,
    n_val: u8,
) -> Vec<NodeId> {
    let from = write
        .iter()
        .position(|l| l.version() == read.version())
        .unwrap_or(0);
    std::iter::once(read)
        .chain(write.iter().skip(from + 1).map(|l| &**l))
        .map(|l| {
            l.primaries(partition, n_val)
                .iter()
                .copied()
                .filter(|&n| n != me && !core.is_removed(n))
                .collect::<Vec<_>>()
        })
        .find(|set| !set.is_empty())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use gyre_membership::{Config, NodeInfo};
    use gyre_ring::{Member, RingConfig};
    use gyre_types::{PartitionCount, ZoneName};

    use super::*;

    fn zone(i: u64) -> ZoneName {
        ZoneName::new(format!("z{i}")).unwrap()
    }

    fn layouts() -> (Arc<Layout>, Arc<Layout>) {
        let members = |ids: &[u64]| -> Vec<Member> {
            ids.iter()
                .map(|&i| Member::new(NodeId::new(i), zone(i), 1))
                .collect()
        };
        let config = RingConfig {
            partitions: PartitionCount::new(64).unwrap(),
            replication: 3,
        };
        let old = Layout::initial(config, members(&[1, 2, 3])).unwrap();
        let new = old.next(members(&[1, 2, 3, 4])).unwrap();
        (Arc::new(old), Arc::new(new))
    }

    fn core(me: u64) -> Membership {
        let info = NodeInfo {
            id: NodeId::new(me),
            peer_addr: format!("10.0.0.{me}:7000"),
            client_addrs: Vec::new(),
            zone: zone(me),
            capacity: 1,
        };
        Membership::new(info, 1, None, Config::default(), me).unwrap()
    }

    #[test]
    fn a_joiner_fills_what_it_gained_per_n_val_from_the_read_layout() {
        let (old, new) = layouts();
        let me = NodeId::new(4);
        let work = gained(&new, &old, me, &[1, 3]);
        assert!(work.iter().any(|&(_, n)| n == 3));
        for &(p, n) in &work {
            assert!(new.primaries(p, n).contains(&me));
            assert!(!old.primaries(p, n).contains(&me));
        }
        // Nothing is gained once reads use the new layout.
        assert!(gained(&new, &new, me, &[1, 3]).is_empty());
        let core = core(4);
        let write = [Arc::clone(&old), Arc::clone(&new)];
        for &(p, n) in &work {
            assert_eq!(sources(&core, &old, &write, me, p, n), old.primaries(p, n));
        }
    }

    #[test]
    fn a_member_of_the_read_set_is_not_its_own_source() {
        let (old, new) = layouts();
        let me = NodeId::new(1);
        let p = old.partitions_of(me)[0];
        let core = core(1);
        let from = sources(&core, &old, &[old.clone(), new], me, p, 3);
        assert_eq!(from.len(), 2);
        assert!(!from.contains(&me));
    }
}

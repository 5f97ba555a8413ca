//! Property tests: every layout of a random cluster keeps the placement rules.
#![allow(clippy::unwrap_used)] // tests fail loudly

mod common;

use common::*;
use gyre_ring::{Layout, Member};
use gyre_types::{KeyHash, ZoneName};
use proptest::prelude::*;

fn check_rules(layout: &Layout) -> Result<(), TestCaseError> {
    let members = layout.members();
    let n = usize::from(layout.replication());
    let width = n.min(members.len());
    let mut zones: Vec<&ZoneName> = members.iter().map(|m| &m.zone).collect();
    zones.sort();
    zones.dedup();
    prop_assert_eq!(layout.width(), width);
    for p in layout.partitions().iter() {
        let r = layout.replicas(p);
        prop_assert_eq!(r.len(), width, "partition {:?}", p);
        let mut ids = r.to_vec();
        ids.sort();
        ids.dedup();
        prop_assert_eq!(ids.len(), width, "distinct nodes in {:?}", p);
        let mut zs: Vec<&ZoneName> = r
            .iter()
            .map(|id| &layout.member(*id).unwrap().zone)
            .collect();
        zs.sort();
        zs.dedup();
        prop_assert_eq!(
            zs.len(),
            width.min(zones.len()),
            "distinct zones in {:?}",
            p
        );
    }
    // Shares: within tolerance of the most proportional share the rules allow.
    let allowed = allowed_shares(layout.config(), members);
    let counts = counts(layout);
    let balance = layout.balance();
    for (i, m) in members.iter().enumerate() {
        let got = f64::from(counts[&m.id]);
        prop_assert!(
            (got - allowed[i]).abs() <= tolerance(allowed[i]),
            "node {} has {} replicas, the rules allow {:.1}\n{}",
            m.id,
            got,
            allowed[i],
            balance
        );
        let mb = &balance.members[i];
        prop_assert_eq!(mb.replicas, counts[&m.id]);
        // Where the rules allow the ideal, the layout reports itself proportional.
        if (allowed[i] - mb.ideal).abs() < 1e-6 {
            prop_assert!(mb.is_within_tolerance(), "{}", balance);
        }
    }
    // The report names exactly the members outside tolerance.
    let flagged: Vec<_> = balance.constrained().map(|m| m.id).collect();
    let outside: Vec<_> = balance
        .members
        .iter()
        .filter(|m| (f64::from(m.replicas) - m.ideal).abs() > tolerance(m.ideal))
        .map(|m| m.id)
        .collect();
    prop_assert_eq!(flagged, outside);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn initial_layouts_keep_every_rule(config in config(), members in cluster(64)) {
        let layout = Layout::initial(config, members).unwrap();
        check_rules(&layout)?;
    }

    #[test]
    fn later_layouts_keep_every_rule(
        config in config(),
        before in cluster(40),
        after in cluster(40),
        keep in 0usize..40,
    ) {
        // The second member list shares a prefix with the first, so some nodes stay.
        let mut next: Vec<Member> = before.iter().take(keep).cloned().collect();
        next.extend(after.into_iter().filter(|m| !before.iter().any(|b| b.id == m.id)));
        prop_assume!(!next.is_empty());
        let v1 = Layout::initial(config, before).unwrap();
        let v2 = v1.next(next).unwrap();
        prop_assert_eq!(v2.version(), 2);
        check_rules(&v2)?;
    }

    #[test]
    fn layouts_are_deterministic(config in config(), members in cluster(32), seed: u64) {
        let mut shuffled = members.clone();
        // A cheap deterministic shuffle: members are given in another order.
        shuffled.sort_by_key(|m| m.id.as_u64() ^ seed);
        let a = Layout::initial(config, members).unwrap();
        let b = Layout::initial(config, shuffled).unwrap();
        prop_assert!(a == b);
    }

    #[test]
    fn extended_preference_lists_start_with_the_replicas_and_hold_every_member_once(
        config in config(),
        members in cluster(24),
        hash: u64,
    ) {
        let layout = Layout::initial(config, members).unwrap();
        let p = layout.partition_of(KeyHash::from_u64(hash));
        let ext: Vec<_> = layout.extended_preference_list(p).collect();
        prop_assert_eq!(&ext[..layout.width()], layout.replicas(p));
        let mut sorted = ext.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(sorted.len(), ext.len());
        prop_assert_eq!(ext.len(), layout.members().len());
        for n_val in 1..=usize::from(layout.replication()) {
            let pl = layout.preference_list(KeyHash::from_u64(hash), n_val).unwrap();
            prop_assert_eq!(pl, &ext[..n_val.min(ext.len())]);
        }
    }
}

/// The largest rings keep the rules too (Q = 4096, 64 nodes in 5 zones).
#[test]
fn the_largest_ring_keeps_every_rule() {
    use gyre_types::{NodeId, PartitionCount};
    let members: Vec<Member> = (0..64)
        .map(|i| {
            Member::new(
                NodeId::new(i * 7919 + 1),
                zone(i as usize % 5),
                1 + (i as u32 % 10),
            )
        })
        .collect();
    let config = gyre_ring::RingConfig {
        partitions: PartitionCount::new(4096).unwrap(),
        replication: 3,
    };
    let v1 = Layout::initial(config, members.clone()).unwrap();
    check_rules(&v1).unwrap();
    let v2 = v1.next(members[1..].to_vec()).unwrap();
    check_rules(&v2).unwrap();
}

//! Shared generators and an independent reference for the placement rules.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::needless_range_loop
)]

use gyre_ring::{Layout, Member, RingConfig};
use gyre_types::{NodeId, PartitionCount, ZoneName};
use proptest::prelude::*;

pub fn zone(i: usize) -> ZoneName {
    ZoneName::new(format!("z{i}")).unwrap()
}

/// A random cluster: 1–64 nodes, 1–5 zones, capacities 1–10.
pub fn cluster(max_nodes: usize) -> impl Strategy<Value = Vec<Member>> {
    (1usize..=5).prop_flat_map(move |zones| {
        proptest::collection::vec((any::<u64>(), 0..zones, 1u32..=10), 1..=max_nodes).prop_map(
            |nodes| {
                let mut seen = std::collections::HashSet::new();
                nodes
                    .into_iter()
                    .filter(|(id, _, _)| seen.insert(*id))
                    .map(|(id, z, c)| Member::new(NodeId::new(id), zone(z), c))
                    .collect()
            },
        )
    })
}

pub fn partitions() -> impl Strategy<Value = PartitionCount> {
    prop_oneof![
        4 => Just(64u32),
        3 => Just(256),
        1 => Just(1024),
    ]
    .prop_map(|q| PartitionCount::new(q).unwrap())
}

pub fn config() -> impl Strategy<Value = RingConfig> {
    (
        partitions(),
        prop_oneof![1 => Just(1u8), 1 => Just(2), 6 => Just(3), 1 => Just(4), 1 => Just(5)],
    )
        .prop_map(|(partitions, replication)| RingConfig {
            partitions,
            replication,
        })
}

/// Sum of `clamp(lambda * w_i, lo_i, hi_i)` equals `total`: solved by bisection.
fn water_fill(weights: &[f64], lo: &[f64], hi: &[f64], total: f64) -> Vec<f64> {
    let at = |lambda: f64| -> Vec<f64> {
        weights
            .iter()
            .zip(lo.iter().zip(hi))
            .map(|(&w, (&l, &h))| (lambda * w).clamp(l, h))
            .collect()
    };
    let (mut a, mut b) = (0.0f64, 1.0f64);
    while at(b).iter().sum::<f64>() < total && b < 1e12 {
        b *= 2.0;
    }
    for _ in 0..200 {
        let mid = (a + b) / 2.0;
        if at(mid).iter().sum::<f64>() < total {
            a = mid;
        } else {
            b = mid;
        }
    }
    at(b)
}

/// The most proportional real-valued share each member can have under the
/// placement rules, written independently of the crate's solver:
/// - `w = min(N, nodes)` replicas per partition, on distinct nodes, so a node
///   holds at most Q;
/// - with at least `w` zones, a partition has at most one replica per zone, so
///   a zone holds at most Q;
/// - with fewer zones, every partition has a replica in every zone and at most
///   `w - zones + 1` in one, so a zone holds between Q and Q·(w - zones + 1),
///   and never more than Q per node it has.
pub fn allowed_shares(config: RingConfig, members: &[Member]) -> Vec<f64> {
    let q = f64::from(config.partitions.get());
    let w = usize::from(config.replication).min(members.len());
    let mut zones: Vec<&ZoneName> = members.iter().map(|m| &m.zone).collect();
    zones.sort();
    zones.dedup();
    let zone_of: Vec<usize> = members
        .iter()
        .map(|m| zones.iter().position(|z| **z == m.zone).unwrap())
        .collect();
    let zc = zones.len();
    let mut zw = vec![0.0; zc];
    let mut zsize = vec![0usize; zc];
    for (m, &z) in members.iter().zip(&zone_of) {
        zw[z] += f64::from(m.capacity);
        zsize[z] += 1;
    }
    let (lo, hi): (Vec<f64>, Vec<f64>) = zsize
        .iter()
        .map(|&s| {
            if zc >= w {
                (0.0, q)
            } else {
                (q, q * ((w - zc + 1).min(s)) as f64)
            }
        })
        .unzip();
    let per_zone = water_fill(&zw, &lo, &hi, w as f64 * q);
    let mut out = vec![0.0; members.len()];
    for z in 0..zc {
        let idx: Vec<usize> = (0..members.len()).filter(|&i| zone_of[i] == z).collect();
        let ws: Vec<f64> = idx
            .iter()
            .map(|&i| f64::from(members[i].capacity))
            .collect();
        let share = water_fill(&ws, &vec![0.0; idx.len()], &vec![q; idx.len()], per_zone[z]);
        for (&i, s) in idx.iter().zip(share) {
            out[i] = s;
        }
    }
    out
}

pub fn tolerance(ideal: f64) -> f64 {
    (0.05 * ideal).max(2.0)
}

/// Replica count per member id.
pub fn counts(layout: &Layout) -> std::collections::BTreeMap<NodeId, u32> {
    let mut c = std::collections::BTreeMap::new();
    for m in layout.members() {
        c.insert(m.id, 0);
    }
    for p in layout.partitions().iter() {
        for id in layout.replicas(p) {
            *c.get_mut(id).unwrap() += 1;
        }
    }
    c
}

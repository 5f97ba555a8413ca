//! Placement: which nodes hold the replicas of each partition.
//!
//! 1. **Targets.** How many partition replicas each node should hold. The
//!    replica slots (`width · Q`, `width = min(N, members)`) are apportioned to
//!    zones by capacity within the bounds the zone rule allows, then to the
//!    nodes of each zone by capacity, at most one replica of a partition per
//!    node (so at most Q per node).
//! 2. **Assignment.** A flow network (after Garage's layout solver):
//!    `source → partition → (partition, zone) → node → sink`, where the edges
//!    into `(partition, zone)` enforce the zone rule and `node → sink` carries
//!    the node's target. A full flow is a placement meeting every rule.
//! 3. **Minimal movement.** The rules ask for shares within a tolerance of the
//!    ideal, not for exact targets, and insisting on exact integer targets
//!    forces needless moves (a node one replica over its target must hand one
//!    off, which may cascade through the distinct-node rule). So each node has
//!    a window around its target, and costs rank the goals:
//!    - replicas below the node's window floor cost nothing, those between
//!      the floor and the target cost `A`, those above the target `A + 1`;
//!    - a replica placed where the previous layout did not have it costs
//!      `BIG`, one kept where it was costs nothing;
//!    - with `A > BIG · slots > slots`, a minimum-cost flow first reaches every
//!      window floor (when the rules allow), then moves as few replicas as
//!      possible, then stays as close to the targets as possible.
//!
//!    Without a previous layout all placements cost the same and every node
//!    gets exactly its target.

use gyre_types::{NodeId, PartitionCount, ZoneName};

use crate::apportion::{apportion, water_fill};
use crate::flow::{EdgeId, Graph};
use crate::{Error, Member, Result};

/// Targets computed from the members alone (no previous layout involved).
#[derive(Clone, Debug)]
pub(crate) struct Targets {
    /// Replicas per partition: `min(N, members)`.
    pub(crate) width: usize,
    /// Zone index of each member (zones sorted by name).
    pub(crate) zone_of: Vec<usize>,
    /// Number of distinct zones.
    pub(crate) zones: usize,
    /// How many distinct zones each partition must span: `min(width, zones)`.
    pub(crate) zone_spread: usize,
    /// Replicas each member should hold.
    pub(crate) per_member: Vec<u32>,
    /// The range of replicas each member may hold and stay within tolerance
    /// of its most proportional share under the rules (always contains the
    /// target).
    pub(crate) window: Vec<(u32, u32)>,
}

/// How far a share may be from the most proportional one the rules allow:
/// 5%, or 2 replicas, whichever is larger.
pub(crate) fn tolerance(share: f64) -> f64 {
    (0.05 * share).max(2.0)
}

pub(crate) fn targets(q: PartitionCount, n: usize, members: &[Member]) -> Result<Targets> {
    let qn = q.get();
    let width = n.min(members.len());
    let mut zone_names: Vec<&ZoneName> = members.iter().map(|m| &m.zone).collect();
    zone_names.sort();
    zone_names.dedup();
    let zones = zone_names.len();
    let zone_of: Vec<usize> = members
        .iter()
        .map(|m| zone_names.binary_search(&&m.zone).unwrap_or(0))
        .collect();
    let zone_spread = width.min(zones);
    let mut zone_weight = vec![0u64; zones];
    let mut zone_size = vec![0u32; zones];
    for (m, &z) in members.iter().zip(&zone_of) {
        zone_weight[z] += u64::from(m.capacity);
        zone_size[z] += 1;
    }
    // With at least `width` zones a partition has at most one replica per zone;
    // with fewer, every zone holds at least one replica of every partition and
    // at most `width - zones + 1`. No zone can hold more than one replica of a
    // partition per node.
    let (lo, hi): (Vec<u32>, Vec<u32>) = zone_size
        .iter()
        .map(|&size| {
            if zones >= width {
                (0, qn)
            } else {
                let per_partition = ((width - zones + 1) as u32).min(size);
                (qn, qn * per_partition)
            }
        })
        .unzip();
    let slots = width as u32 * qn;
    let per_zone = apportion(&zone_weight, &lo, &hi, slots).ok_or(Error::Unplaceable {
        missing: slots as usize,
    })?;
    // The same shares as real numbers, for the tolerance windows.
    let as_f64 = |v: &[u32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let zone_share = water_fill(
        &zone_weight.iter().map(|&w| w as f64).collect::<Vec<_>>(),
        &as_f64(&lo),
        &as_f64(&hi),
        f64::from(slots),
    );
    let mut window = vec![(0u32, 0u32); members.len()];
    let mut per_member = vec![0u32; members.len()];
    for (z, &zone_total) in per_zone.iter().enumerate() {
        let idx: Vec<usize> = (0..members.len()).filter(|&i| zone_of[i] == z).collect();
        let weights: Vec<u64> = idx
            .iter()
            .map(|&i| u64::from(members[i].capacity))
            .collect();
        let seats = apportion(
            &weights,
            &vec![0; idx.len()],
            &vec![qn; idx.len()],
            zone_total,
        )
        .ok_or(Error::Unplaceable {
            missing: zone_total as usize,
        })?;
        let real = water_fill(
            &weights.iter().map(|&w| w as f64).collect::<Vec<_>>(),
            &vec![0.0; idx.len()],
            &vec![f64::from(qn); idx.len()],
            zone_share.get(z).copied().unwrap_or(0.0),
        );
        for ((&i, s), share) in idx.iter().zip(seats).zip(real) {
            per_member[i] = s;
            // A small margin keeps the window inside the tolerance whatever
            // rounding the real share carries.
            let tol = tolerance(share) - 0.01;
            let floor = (share - tol).ceil().max(0.0) as u32;
            let ceil = ((share + tol).floor() as u32).min(qn);
            window[i] = (floor.min(s), ceil.max(s));
        }
    }
    Ok(Targets {
        width,
        zone_of,
        zones,
        zone_spread,
        per_member,
        window,
    })
}

/// The replicas of every partition, `width` per partition, in preference order.
pub(crate) fn place(
    q: PartitionCount,
    n: usize,
    members: &[Member],
    previous: Option<(&[NodeId], usize)>,
) -> Result<(Targets, Vec<NodeId>)> {
    let t = targets(q, n, members)?;
    let qn = q.as_usize();
    let width = t.width;
    let m = members.len();
    let zones = t.zones;
    let extra = width - t.zone_spread;

    let mut zone_members: Vec<Vec<usize>> = vec![Vec::new(); zones];
    for (i, &z) in t.zone_of.iter().enumerate() {
        zone_members[z].push(i);
    }
    let member_index = |id: NodeId| members.binary_search_by_key(&id, |m| m.id).ok();
    let was_replica = |p: usize, i: usize| -> bool {
        previous.is_some_and(|(replicas, w)| {
            replicas
                .get(p * w..(p + 1) * w)
                .is_some_and(|r| r.contains(&members[i].id))
        })
    };

    // Vertices: source, sink, then per partition its vertices, then members.
    let mut g = Graph::new(2);
    let (s, sink) = (0, 1);
    let member_vertex: Vec<usize> = (0..m).map(|_| g.add_vertex()).collect();
    let slots = (width * qn) as i64;
    let big = slots + 1;
    let a = big * (slots + 1);
    let mut sink_edges: Vec<EdgeId> = Vec::with_capacity(m);
    for (i, &v) in member_vertex.iter().enumerate() {
        let target = t.per_member[i];
        let (floor, ceil) = t.window[i];
        g.add_edge(v, sink, floor);
        g.add_costed_edge(v, sink, target - floor, a);
        sink_edges.push(g.add_costed_edge(v, sink, ceil - target, a + 1));
    }
    // Per partition, the (member, edge) pairs of its (partition, zone) → node edges.
    let mut choice_edges: Vec<(u32, EdgeId)> = Vec::with_capacity(qn * m);
    let mut choice_start: Vec<usize> = Vec::with_capacity(qn + 1);
    let mut zone_order: Vec<usize> = (0..zones).collect();
    let mut node_order: Vec<usize> = Vec::with_capacity(m);
    for p in 0..qn {
        choice_start.push(choice_edges.len());
        // Visit zones and nodes in an order of their own for each partition
        // (deterministic, from the partition number): the solver takes the
        // first workable edges, and a fixed order would give every node the
        // same co-replicas. Well-mixed replica sets let later changes spread
        // their moves evenly instead of being cornered by the zone rule.
        let mut rng = SplitMix64(p as u64);
        rng.shuffle(&mut zone_order);
        let spread = g.add_vertex();
        g.add_edge(s, spread, t.zone_spread as u32);
        let rest = (extra > 0).then(|| {
            let v = g.add_vertex();
            g.add_edge(s, v, extra as u32);
            v
        });
        for &z in &zone_order {
            let pz = g.add_vertex();
            g.add_edge(spread, pz, 1);
            if let Some(rest) = rest {
                g.add_edge(rest, pz, extra as u32);
            }
            node_order.clear();
            node_order.extend_from_slice(&zone_members[z]);
            rng.shuffle(&mut node_order);
            for &i in &node_order {
                // With no previous layout every placement costs the same.
                let cost = if previous.is_some() && !was_replica(p, i) {
                    big
                } else {
                    0
                };
                let e = g.add_costed_edge(pz, member_vertex[i], 1, cost);
                choice_edges.push((i as u32, e));
            }
        }
    }
    choice_start.push(choice_edges.len());

    let needed = (width * qn) as u64;
    let mut flow = g.min_cost_max_flow(s, sink);
    // Should the targets ever be unreachable under the placement rules, give
    // every node room for one more replica at a time until all are placed; the
    // balance report then shows the deviation. (Costs are ignored here: this
    // is a fallback for the solver disagreeing with the targets, not a path
    // that valid input takes.)
    let mut slack: Vec<u32> = t.window.iter().map(|w| w.1).collect();
    while flow < needed {
        let mut raised = false;
        for (i, &e) in sink_edges.iter().enumerate() {
            if slack[i] < q.get() {
                slack[i] += 1;
                g.raise_capacity(e, 1);
                raised = true;
            }
        }
        if !raised {
            return Err(Error::Unplaceable {
                missing: (needed - flow) as usize,
            });
        }
        flow += g.max_flow(s, sink);
    }

    // Read the placement off the flow and put each partition's replicas in order.
    let mut replicas = Vec::with_capacity(width * qn);
    let mut position_counts = vec![vec![0u32; m]; width];
    let mut chosen: Vec<usize> = Vec::with_capacity(width);
    let mut slots: Vec<Option<usize>> = vec![None; width];
    for p in 0..qn {
        chosen.clear();
        let edges = choice_edges
            .get(choice_start[p]..choice_start[p + 1])
            .unwrap_or(&[]);
        chosen.extend(
            edges
                .iter()
                .filter(|&&(_, e)| g.flow(e) > 0)
                .map(|&(i, _)| i as usize),
        );
        slots.fill(None);
        // Replicas that stay keep their position in the preference list.
        if let Some((prev, w)) = previous {
            for (k, id) in prev
                .get(p * w..(p + 1) * w)
                .unwrap_or(&[])
                .iter()
                .enumerate()
            {
                if let Some(i) = member_index(*id)
                    && k < width
                    && chosen.contains(&i)
                {
                    slots[k] = Some(i);
                }
            }
        }
        let mut fresh: Vec<usize> = chosen
            .iter()
            .copied()
            .filter(|i| !slots.contains(&Some(*i)))
            .collect();
        // New replicas fill the free positions, each going where it evens out
        // how often a node is first (the default coordinator), second, ...
        for k in 0..width {
            if slots[k].is_some() {
                continue;
            }
            let best = fresh
                .iter()
                .enumerate()
                .min_by_key(|&(_, &i)| (position_counts[k][i], (i + m - p % m) % m))
                .map(|(j, _)| j);
            if let Some(j) = best {
                slots[k] = Some(fresh.swap_remove(j));
            }
        }
        for (k, slot) in slots.iter().enumerate() {
            // Full flow gives each partition exactly `width` replicas.
            let i = slot.ok_or(Error::Unplaceable { missing: 1 })?;
            position_counts[k][i] += 1;
            replicas.push(members[i].id);
        }
    }
    Ok((t, replicas))
}

/// A tiny deterministic generator (SplitMix64) for the solver's visiting
/// order. Part of the layout algorithm: changing it changes layouts.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fisher–Yates.
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

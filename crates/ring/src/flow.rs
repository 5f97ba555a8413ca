//! Maximum flow of minimum cost on small integer graphs.
//!
//! [`Graph::min_cost_max_flow`] is the primal-dual method: Dijkstra over
//! reduced costs finds the cheapest remaining path length, then a blocking
//! flow (Dinic) saturates every path of that length at once. Placement uses
//! few distinct costs, so there are few distinct path lengths and few phases. [`Graph::max_flow`] ignores costs.
//!
//! The graph is built once; capacities of existing edges may be raised between
//! runs and the next run continues from the flow already found. Depth-first
//! search is iterative so no input can overflow the stack.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Index of an edge in [`Graph`], returned by [`Graph::add_edge`].
pub(crate) type EdgeId = usize;

#[derive(Clone, Debug)]
struct Edge {
    to: u32,
    /// Residual capacity.
    cap: u32,
    /// Cost per unit of flow (the reverse edge has the negated cost).
    cost: i64,
}

/// A flow network. Edge `2k` is a forward edge and `2k + 1` its reverse.
#[derive(Clone, Debug)]
pub(crate) struct Graph {
    edges: Vec<Edge>,
    adj: Vec<Vec<u32>>,
    /// Vertex potentials that make every residual edge's reduced cost
    /// non-negative (valid while the current flow is of minimum cost).
    potential: Vec<i64>,
}

impl Graph {
    pub(crate) fn new(vertices: usize) -> Self {
        Self {
            edges: Vec::new(),
            adj: vec![Vec::new(); vertices],
            potential: Vec::new(),
        }
    }

    pub(crate) fn add_vertex(&mut self) -> usize {
        self.adj.push(Vec::new());
        self.adj.len() - 1
    }

    pub(crate) fn add_edge(&mut self, from: usize, to: usize, cap: u32) -> EdgeId {
        self.add_costed_edge(from, to, cap, 0)
    }

    /// An edge with a cost per unit of flow. Costs must be non-negative.
    pub(crate) fn add_costed_edge(
        &mut self,
        from: usize,
        to: usize,
        cap: u32,
        cost: i64,
    ) -> EdgeId {
        debug_assert!(cost >= 0);
        let id = self.edges.len();
        self.edges.push(Edge {
            to: to as u32,
            cap,
            cost,
        });
        self.edges.push(Edge {
            to: from as u32,
            cap: 0,
            cost: -cost,
        });
        self.adj[from].push(id as u32);
        self.adj[to].push(id as u32 + 1);
        id
    }

    /// Flow currently through forward edge `e`.
    pub(crate) fn flow(&self, e: EdgeId) -> u32 {
        self.edges[e | 1].cap
    }

    /// Adds `extra` to the capacity of forward edge `e`.
    pub(crate) fn raise_capacity(&mut self, e: EdgeId, extra: u32) {
        self.edges[e].cap += extra;
    }

    /// Augments from `s` to `t` until no augmenting path is left; returns the
    /// flow added by this call. Shortest paths are used first (Dinic), which
    /// prefers direct assignments over ones that reroute existing flow.
    pub(crate) fn max_flow(&mut self, s: usize, t: usize) -> u64 {
        self.blocking_flows(s, t, false)
    }

    /// Augments from `s` to `t` along cheapest paths until no augmenting path
    /// is left. Starting from zero flow, the result is a maximum flow of
    /// minimum cost; it returns the flow added.
    pub(crate) fn min_cost_max_flow(&mut self, s: usize, t: usize) -> u64 {
        let n = self.adj.len();
        self.potential.resize(n, 0);
        let mut dist = vec![i64::MAX; n];
        let mut heap = BinaryHeap::new();
        let mut total = 0;
        loop {
            // Dijkstra over reduced costs (non-negative by the potentials).
            dist.fill(i64::MAX);
            dist[s] = 0;
            heap.clear();
            heap.push(Reverse((0i64, s as u32)));
            while let Some(Reverse((d, v))) = heap.pop() {
                let v = v as usize;
                if d > dist[v] {
                    continue;
                }
                for &e in &self.adj[v] {
                    let edge = &self.edges[e as usize];
                    if edge.cap == 0 {
                        continue;
                    }
                    let w = edge.to as usize;
                    let nd = d + self.reduced_cost(v, e as usize);
                    if nd < dist[w] {
                        dist[w] = nd;
                        heap.push(Reverse((nd, w as u32)));
                    }
                }
            }
            if dist[t] == i64::MAX {
                return total;
            }
            // Shift the potentials so that the shortest paths have reduced cost 0.
            let cap = dist[t];
            for (p, &d) in self.potential.iter_mut().zip(&dist) {
                *p += d.min(cap);
            }
            let added = self.blocking_flows(s, t, true);
            if added == 0 {
                return total;
            }
            total += added;
        }
    }

    fn reduced_cost(&self, from: usize, e: usize) -> i64 {
        let edge = &self.edges[e];
        edge.cost + self.potential[from] - self.potential[edge.to as usize]
    }

    /// Whether edge `e` out of `v` may carry flow in this phase.
    fn usable(&self, v: usize, e: usize, cheapest_only: bool) -> bool {
        self.edges[e].cap > 0 && (!cheapest_only || self.reduced_cost(v, e) == 0)
    }

    /// Dinic's algorithm, over every residual edge or (`cheapest_only`) over
    /// the edges of reduced cost 0.
    fn blocking_flows(&mut self, s: usize, t: usize, cheapest_only: bool) -> u64 {
        let n = self.adj.len();
        let mut total = 0u64;
        let mut level = vec![u32::MAX; n];
        let mut next = vec![0usize; n];
        let mut queue = Vec::with_capacity(n);
        let mut path: Vec<u32> = Vec::new();
        loop {
            // Breadth-first: distance labels from s in the residual graph.
            level.fill(u32::MAX);
            level[s] = 0;
            queue.clear();
            queue.push(s as u32);
            let mut head = 0;
            while let Some(&v) = queue.get(head) {
                head += 1;
                for &e in &self.adj[v as usize] {
                    let w = self.edges[e as usize].to as usize;
                    if level[w] == u32::MAX && self.usable(v as usize, e as usize, cheapest_only) {
                        level[w] = level[v as usize] + 1;
                        queue.push(w as u32);
                    }
                }
            }
            if level[t] == u32::MAX {
                return total;
            }
            // Depth-first along level-increasing edges, with per-vertex cursors
            // (a blocking flow). `path` holds the edges from s to the current vertex.
            next.fill(0);
            path.clear();
            let mut v = s;
            loop {
                if v == t {
                    let push = path
                        .iter()
                        .map(|&e| self.edges[e as usize].cap)
                        .min()
                        .unwrap_or(0);
                    for &e in &path {
                        self.edges[e as usize].cap -= push;
                        self.edges[(e ^ 1) as usize].cap += push;
                    }
                    total += u64::from(push);
                    // Restart from s; saturated edges are skipped by their cursors.
                    path.clear();
                    v = s;
                    continue;
                }
                let mut advanced = false;
                while let Some(&e) = self.adj[v].get(next[v]) {
                    let w = self.edges[e as usize].to as usize;
                    if level[w] == level[v] + 1 && self.usable(v, e as usize, cheapest_only) {
                        path.push(e);
                        v = w;
                        advanced = true;
                        break;
                    }
                    next[v] += 1;
                }
                if !advanced {
                    // Dead end: retreat and never come back to v in this phase.
                    level[v] = u32::MAX;
                    match path.pop() {
                        Some(e) => {
                            v = self.edges[(e ^ 1) as usize].to as usize;
                            next[v] += 1;
                        }
                        None => break,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
impl Graph {
    /// Bellman–Ford over the residual graph: a negative-cost cycle exists iff
    /// the current flow is not of minimum cost for its value.
    fn has_negative_cycle(&self) -> bool {
        let n = self.adj.len();
        let mut dist = vec![0i64; n];
        for round in 0..=n {
            let mut changed = false;
            for v in 0..n {
                for &e in &self.adj[v] {
                    let edge = &self.edges[e as usize];
                    if edge.cap > 0 && dist[v] + edge.cost < dist[edge.to as usize] {
                        dist[edge.to as usize] = dist[v] + edge.cost;
                        changed = true;
                    }
                }
            }
            if !changed {
                return false;
            }
            if round == n {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// On random graphs the result is a maximum flow (same value as
        /// costless Dinic) of minimum cost (no negative cycle left).
        #[test]
        fn min_cost_flow_is_maximal_and_optimal(
            n in 3usize..12,
            edges in proptest::collection::vec((0usize..12, 0usize..12, 0u32..4, 0i64..5), 0..40),
        ) {
            let mut g = Graph::new(n);
            for (a, b, cap, cost) in edges {
                let (a, b) = (a % n, b % n);
                if a != b {
                    g.add_costed_edge(a, b, cap, cost);
                }
            }
            let mut plain = g.clone();
            let f = g.min_cost_max_flow(0, n - 1);
            prop_assert_eq!(f, plain.max_flow(0, n - 1));
            prop_assert!(!g.has_negative_cycle());
        }
    }

    #[test]
    fn classic_network() {
        // s=0, t=5; max flow 23 (CLRS figure 26.1).
        let mut g = Graph::new(6);
        for (a, b, c) in [
            (0, 1, 16),
            (0, 2, 13),
            (1, 3, 12),
            (2, 1, 4),
            (2, 4, 14),
            (3, 2, 9),
            (3, 5, 20),
            (4, 3, 7),
            (4, 5, 4),
        ] {
            g.add_edge(a, b, c);
        }
        assert_eq!(g.max_flow(0, 5), 23);
        assert_eq!(g.max_flow(0, 5), 0, "a second run adds nothing");
    }

    #[test]
    fn cheapest_maximum_flow() {
        // Two units from s=0 to t=3: the direct edge costs 5, the detour 1 + 1.
        let mut g = Graph::new(4);
        let direct = g.add_costed_edge(0, 3, 1, 5);
        let a = g.add_costed_edge(0, 1, 1, 1);
        g.add_costed_edge(1, 3, 1, 0);
        g.add_costed_edge(0, 2, 1, 0);
        let b = g.add_costed_edge(2, 1, 1, 1);
        g.add_costed_edge(2, 3, 1, 3);
        assert_eq!(g.min_cost_max_flow(0, 3), 3);
        // All three paths are needed for flow 3; with flow on `a` and `b`
        // blocked by the shared edge 1→3, one goes direct and one via 2→3.
        assert_eq!(g.flow(direct) + g.flow(a) + g.flow(b), 2);
    }

    #[test]
    fn keeps_cheap_edges_when_rerouting() {
        // Two sources of one unit each (1, 2) share sinks 3 and 4, each of
        // capacity 1. 1→3 is free, 1→4 and 2→3 and 2→4 cost 1: the minimum-cost
        // flow keeps 1→3 and routes 2→4.
        let mut g = Graph::new(6);
        g.add_edge(0, 1, 1);
        g.add_edge(0, 2, 1);
        let keep = g.add_costed_edge(1, 3, 1, 0);
        g.add_costed_edge(1, 4, 1, 1);
        g.add_costed_edge(2, 3, 1, 1);
        let new = g.add_costed_edge(2, 4, 1, 1);
        g.add_edge(3, 5, 1);
        g.add_edge(4, 5, 1);
        assert_eq!(g.min_cost_max_flow(0, 5), 2);
        assert_eq!((g.flow(keep), g.flow(new)), (1, 1));
    }

    #[test]
    fn raising_capacity_continues_the_flow() {
        let mut g = Graph::new(3);
        let a = g.add_edge(0, 1, 1);
        g.add_edge(1, 2, 5);
        assert_eq!(g.max_flow(0, 2), 1);
        g.raise_capacity(a, 3);
        assert_eq!(g.max_flow(0, 2), 3);
        assert_eq!(g.flow(a), 4);
    }
}

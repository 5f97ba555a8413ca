use std::fmt;

use gyre_types::{KeyHash, NodeId, PartitionCount, PartitionId, ZoneName};
use serde::{Deserialize, Serialize};

use crate::assign::{place, targets};
use crate::{Error, Member, Result};

/// Most members a layout supports.
pub const MAX_MEMBERS: usize = 1024;
/// Largest replication factor N.
pub const MAX_REPLICATION: u8 = 9;

/// What a cluster fixes when it is created: Q and N.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingConfig {
    /// Q, the number of partitions.
    pub partitions: PartitionCount,
    /// N, how many nodes hold each partition (default 3). A bucket may use
    /// fewer (`n_val ≤ N`): the first `n_val` of the preference list.
    pub replication: u8,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self {
            partitions: PartitionCount::DEFAULT,
            replication: 3,
        }
    }
}

/// A versioned assignment of every partition's replicas to nodes.
///
/// Computed deterministically from the members and the previous layout, so
/// every node that is given the same input computes the same layout.
///
/// Rules a layout keeps (checked by this crate's property tests):
/// - each partition has `min(N, members)` replicas on distinct nodes, spread
///   over `min(N, zones)` distinct zones;
/// - each node holds replicas in proportion to its capacity, within ±5% (or
///   ±2 replicas) of `N·Q·capacity / total capacity` wherever the rules above
///   allow it; [`Layout::balance`] reports where they do not, and by how much;
/// - a new layout keeps replicas where the previous one had them wherever it
///   can, so a change moves few partitions ([`crate::LayoutDiff`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LayoutRepr", into = "LayoutRepr")]
pub struct Layout {
    version: u64,
    config: RingConfig,
    /// Sorted by node id.
    members: Vec<Member>,
    /// Replicas per partition: `min(N, members)`.
    width: usize,
    /// `width` node ids per partition, partition after partition.
    replicas: Vec<NodeId>,
}

impl Layout {
    /// The first layout of a new cluster (version 1).
    pub fn initial(config: RingConfig, members: Vec<Member>) -> Result<Self> {
        Self::compute(config, 1, members, None)
    }

    /// The layout that follows this one for a new member list (version + 1):
    /// joins, leaves, capacity and zone changes all come down to this. Replicas
    /// stay where they are wherever the rules allow.
    pub fn next(&self, members: Vec<Member>) -> Result<Self> {
        Self::compute(
            self.config,
            self.version + 1,
            members,
            Some((&self.replicas, self.width)),
        )
    }

    /// The layout that follows this one (version + 1) with exactly the
    /// members and replicas of `earlier`: how a layout change is undone
    /// (nothing that `earlier` placed moves).
    ///
    /// # Errors
    /// [`Error::IncompatibleLayout`] if `earlier` has another Q or N.
    pub fn restore(&self, earlier: &Layout) -> Result<Self> {
        if earlier.config != self.config {
            return Err(Error::IncompatibleLayout {
                prev_q: self.config.partitions,
                prev_n: self.config.replication,
                q: earlier.config.partitions,
                n: earlier.config.replication,
            });
        }
        Ok(Self {
            version: self.version + 1,
            ..earlier.clone()
        })
    }

    /// Like [`Layout::next`], but checks that `config` is this cluster's.
    pub fn next_with(&self, config: RingConfig, members: Vec<Member>) -> Result<Self> {
        if config != self.config {
            return Err(Error::IncompatibleLayout {
                prev_q: self.config.partitions,
                prev_n: self.config.replication,
                q: config.partitions,
                n: config.replication,
            });
        }
        self.next(members)
    }

    fn compute(
        config: RingConfig,
        version: u64,
        mut members: Vec<Member>,
        previous: Option<(&[NodeId], usize)>,
    ) -> Result<Self> {
        check_config(config)?;
        check_members(&mut members)?;
        let n = usize::from(config.replication);
        let (t, replicas) = place(config.partitions, n, &members, previous)?;
        Ok(Self {
            version,
            config,
            members,
            width: t.width,
            replicas,
        })
    }

    /// The layout version: 1 for the first, one more for each that follows.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Q and N.
    pub fn config(&self) -> RingConfig {
        self.config
    }

    /// Q.
    pub fn partitions(&self) -> PartitionCount {
        self.config.partitions
    }

    /// N.
    pub fn replication(&self) -> u8 {
        self.config.replication
    }

    /// Replicas each partition actually has: N, or fewer while the cluster has
    /// fewer than N members.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The members, sorted by id.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member with this id, if it is one.
    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members
            .binary_search_by_key(&id, |m| m.id)
            .ok()
            .and_then(|i| self.members.get(i))
    }

    /// The partition that holds `hash`.
    pub fn partition_of(&self, hash: KeyHash) -> PartitionId {
        self.config.partitions.partition_of(hash)
    }

    /// The replicas of partition `p`, in preference order (the first is the
    /// default coordinator). Empty if `p` is not a partition of this ring.
    pub fn replicas(&self, p: PartitionId) -> &[NodeId] {
        let w = self.width;
        self.replicas
            .get(p.as_usize() * w..(p.as_usize() + 1) * w)
            .unwrap_or(&[])
    }

    /// The first `n_val` replicas of partition `p` (all of them if it has
    /// fewer): the primaries of its keys in buckets with that n_val.
    pub fn primaries(&self, p: PartitionId, n_val: u8) -> &[NodeId] {
        let replicas = self.replicas(p);
        replicas
            .get(..usize::from(n_val).min(replicas.len()))
            .unwrap_or(replicas)
    }

    /// The nodes that hold a key of a bucket with `n_val` replicas: the first
    /// `n_val` of its partition's preference list.
    pub fn preference_list(&self, hash: KeyHash, n_val: usize) -> Result<&[NodeId]> {
        if n_val == 0 || n_val > usize::from(self.config.replication) {
            return Err(Error::InvalidNVal {
                n_val,
                n: self.config.replication,
            });
        }
        let r = self.replicas(self.partition_of(hash));
        Ok(r.get(..n_val.min(r.len())).unwrap_or(r))
    }

    /// The extended preference list of partition `p`: its replicas, then every
    /// other member once, in the order met walking the partitions clockwise
    /// from `p`. Sloppy quorum takes fallbacks from here, past the first
    /// `n_val`, skipping nodes it believes down.
    pub fn extended_preference_list(&self, p: PartitionId) -> ExtendedPreferenceList<'_> {
        ExtendedPreferenceList {
            layout: self,
            start: p,
            partition: p,
            offset: 0,
            seen: Vec::with_capacity(self.members.len()),
            walked: 0,
        }
    }

    /// Partitions each node holds a replica of, in ring order.
    pub fn partitions_of(&self, id: NodeId) -> Vec<PartitionId> {
        self.config
            .partitions
            .iter()
            .filter(|&p| self.replicas(p).contains(&id))
            .collect()
    }

    /// How the replicas are spread, against the capacity-proportional ideal.
    pub fn balance(&self) -> Balance {
        let q = self.config.partitions.get();
        let n = u32::from(self.config.replication);
        let total_capacity: u64 = self.members.iter().map(|m| u64::from(m.capacity)).sum();
        // `targets` succeeded when this layout was made (or read), and is deterministic.
        let t = targets(
            self.config.partitions,
            usize::from(self.config.replication),
            &self.members,
        )
        .ok();
        let mut counts = vec![(0u32, 0u32); self.members.len()];
        for chunk in self.replicas.chunks(self.width.max(1)) {
            for (k, id) in chunk.iter().enumerate() {
                if let Ok(i) = self.members.binary_search_by_key(id, |m| m.id)
                    && let Some(c) = counts.get_mut(i)
                {
                    c.0 += 1;
                    if k == 0 {
                        c.1 += 1;
                    }
                }
            }
        }
        let members = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| MemberBalance {
                id: m.id,
                zone: m.zone.clone(),
                capacity: m.capacity,
                replicas: counts.get(i).map_or(0, |c| c.0),
                primaries: counts.get(i).map_or(0, |c| c.1),
                ideal: f64::from(n * q) * f64::from(m.capacity) / total_capacity as f64,
                allowed: t
                    .as_ref()
                    .and_then(|t| t.per_member.get(i).copied())
                    .unwrap_or(0),
            })
            .collect();
        let zones = t.as_ref().map_or(0, |t| t.zones);
        let min_zone_spread = self
            .replicas
            .chunks(self.width.max(1))
            .map(|chunk| {
                let mut zs: Vec<&ZoneName> = chunk
                    .iter()
                    .filter_map(|id| self.member(*id).map(|m| &m.zone))
                    .collect();
                zs.sort();
                zs.dedup();
                zs.len()
            })
            .min()
            .unwrap_or(0);
        Balance {
            replication: self.config.replication,
            width: self.width,
            zones,
            min_zone_spread,
            members,
        }
    }
}

impl fmt::Debug for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layout")
            .field("version", &self.version)
            .field("config", &self.config)
            .field("members", &self.members.len())
            .field("width", &self.width)
            .finish_non_exhaustive()
    }
}

fn check_config(config: RingConfig) -> Result<()> {
    if config.replication == 0 || config.replication > MAX_REPLICATION {
        return Err(Error::InvalidReplication(config.replication));
    }
    Ok(())
}

/// Sorts members by id and checks them.
fn check_members(members: &mut [Member]) -> Result<()> {
    if members.is_empty() {
        return Err(Error::NoMembers);
    }
    if members.len() > MAX_MEMBERS {
        return Err(Error::TooManyMembers {
            count: members.len(),
            max: MAX_MEMBERS,
        });
    }
    members.sort_by_key(|m| m.id);
    for pair in members.windows(2) {
        if let [a, b] = pair
            && a.id == b.id
        {
            return Err(Error::DuplicateMember(a.id));
        }
    }
    if let Some(m) = members.iter().find(|m| m.capacity == 0) {
        return Err(Error::ZeroCapacity(m.id));
    }
    Ok(())
}

/// Iterator over an extended preference list; see
/// [`Layout::extended_preference_list`].
#[derive(Clone, Debug)]
pub struct ExtendedPreferenceList<'a> {
    layout: &'a Layout,
    start: PartitionId,
    partition: PartitionId,
    offset: usize,
    seen: Vec<NodeId>,
    walked: u32,
}

impl Iterator for ExtendedPreferenceList<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        let q = self.layout.config.partitions;
        if !q.contains(self.start) {
            return None;
        }
        while self.seen.len() < self.layout.members.len() && self.walked < q.get() {
            let replicas = self.layout.replicas(self.partition);
            match replicas.get(self.offset) {
                Some(&id) => {
                    self.offset += 1;
                    if !self.seen.contains(&id) {
                        self.seen.push(id);
                        return Some(id);
                    }
                }
                None => {
                    self.offset = 0;
                    self.walked += 1;
                    self.partition = q.next(self.partition);
                }
            }
        }
        // Members that hold no replica at all (possible when members outnumber
        // N·Q) still belong at the end of the list, in id order.
        let next = self
            .layout
            .members
            .iter()
            .map(|m| m.id)
            .find(|id| !self.seen.contains(id))?;
        self.seen.push(next);
        Some(next)
    }
}

/// The replica counts of a layout, per member, beside the ideal.
#[derive(Clone, Debug, PartialEq)]
pub struct Balance {
    /// N.
    pub replication: u8,
    /// Replicas per partition (N, or fewer when there are fewer members).
    pub width: usize,
    /// Distinct zones among the members.
    pub zones: usize,
    /// The fewest distinct zones any partition's replicas span.
    pub min_zone_spread: usize,
    /// One entry per member, sorted by id.
    pub members: Vec<MemberBalance>,
}

impl Balance {
    /// Whether every member is within tolerance of its ideal share (see
    /// [`MemberBalance::is_within_tolerance`]).
    pub fn is_proportional(&self) -> bool {
        self.members.iter().all(MemberBalance::is_within_tolerance)
    }

    /// Members whose share the placement rules keep away from the ideal: the
    /// distinct-node rule (at most one replica of a partition per node), the
    /// zone rule, or fewer than N members. Each says by how much.
    pub fn constrained(&self) -> impl Iterator<Item = &MemberBalance> {
        self.members.iter().filter(|m| !m.is_within_tolerance())
    }

    /// Whether each partition has N replicas (not fewer for lack of members).
    pub fn is_fully_replicated(&self) -> bool {
        self.width == usize::from(self.replication)
    }
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} replicas per partition (N={}), {} zone(s), every partition spans ≥ {} zone(s)",
            self.width, self.replication, self.zones, self.min_zone_spread
        )?;
        writeln!(
            f,
            "{:<16}  {:<12} {:>8} {:>9} {:>9} {:>8}",
            "node", "zone", "capacity", "replicas", "ideal", "diff"
        )?;
        for m in &self.members {
            writeln!(
                f,
                "{:<16}  {:<12} {:>8} {:>9} {:>9.1} {:>+7.1}%{}",
                m.id.to_string(),
                m.zone.as_str(),
                m.capacity,
                m.replicas,
                m.ideal,
                m.deviation() * 100.0,
                if m.is_within_tolerance() {
                    ""
                } else {
                    "  (limited by placement rules)"
                }
            )?;
        }
        Ok(())
    }
}

/// One member's share of the partition replicas.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberBalance {
    /// The member.
    pub id: NodeId,
    /// Its zone.
    pub zone: ZoneName,
    /// Its capacity.
    pub capacity: u32,
    /// Partition replicas it holds (all N positions counted).
    pub replicas: u32,
    /// Partitions it is first in the preference list of (default coordinator).
    pub primaries: u32,
    /// `N·Q·capacity / total capacity`.
    pub ideal: f64,
    /// The closest share to the ideal that the placement rules allow.
    pub allowed: u32,
}

impl MemberBalance {
    /// `(replicas - ideal) / ideal`.
    pub fn deviation(&self) -> f64 {
        (f64::from(self.replicas) - self.ideal) / self.ideal
    }

    /// Within ±5% of the ideal, or ±2 replicas, whichever is larger.
    pub fn is_within_tolerance(&self) -> bool {
        (f64::from(self.replicas) - self.ideal).abs() <= (0.05 * self.ideal).max(2.0)
    }
}

/// The serialised form: replicas as member indices, checked on the way in.
#[derive(Serialize, Deserialize)]
struct LayoutRepr {
    version: u64,
    config: RingConfig,
    members: Vec<Member>,
    width: u16,
    replicas: Vec<u16>,
}

impl From<Layout> for LayoutRepr {
    fn from(l: Layout) -> Self {
        let replicas = l
            .replicas
            .iter()
            // Every replica is a member (Layout invariant) and MAX_MEMBERS < u16::MAX.
            .map(|id| l.members.binary_search_by_key(id, |m| m.id).unwrap_or(0) as u16)
            .collect();
        Self {
            version: l.version,
            config: l.config,
            width: l.width as u16,
            members: l.members,
            replicas,
        }
    }
}

impl TryFrom<LayoutRepr> for Layout {
    type Error = Error;

    fn try_from(mut r: LayoutRepr) -> Result<Self> {
        check_config(r.config)?;
        let unsorted = r
            .members
            .windows(2)
            .any(|w| matches!(w, [a, b] if a.id >= b.id));
        if unsorted {
            return Err(Error::Corrupt("members are not sorted by id"));
        }
        check_members(&mut r.members)?;
        let width = usize::from(r.width);
        if width != usize::from(r.config.replication).min(r.members.len()) {
            return Err(Error::Corrupt(
                "width does not match N and the member count",
            ));
        }
        if r.replicas.len() != width * r.config.partitions.as_usize() {
            return Err(Error::Corrupt("wrong number of replicas"));
        }
        let mut replicas = Vec::with_capacity(r.replicas.len());
        for chunk in r.replicas.chunks(width) {
            for (k, &i) in chunk.iter().enumerate() {
                let m = r
                    .members
                    .get(usize::from(i))
                    .ok_or(Error::Corrupt("replica is not a member"))?;
                if chunk.get(..k).is_some_and(|before| before.contains(&i)) {
                    return Err(Error::Corrupt("a partition has the same node twice"));
                }
                replicas.push(m.id);
            }
        }
        Ok(Self {
            version: r.version,
            config: r.config,
            members: r.members,
            width,
            replicas,
        })
    }
}

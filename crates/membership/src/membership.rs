//! The membership state machine.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gyre_ring::{Layout, LayoutDiff, Member};
use gyre_types::NodeId;

use crate::config::{MAX_ADDR_LEN, acceptable};
use crate::history::{Transition, barrier_nodes, checked};
use crate::phi::{PhiDetector, PhiParams};
use crate::rng::Rng;
use crate::{
    Change, Config, Digest, Error, Heartbeat, LayoutStamp, Message, NodeInfo, NodeState,
    NodeStatus, Plan, Result, Tombstone,
};

/// What the core asks its driver to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send `msg` to `to` (its address: [`Membership::peer_addr`]). Delivery
    /// may fail or be late; the protocol tolerates both.
    Send {
        /// The peer.
        to: NodeId,
        /// The message.
        msg: Message,
    },
    /// `from` advertises a newer layout than this node holds: fetch it and
    /// hand it to [`Membership::layout_received`]. Asked again after
    /// [`Config::layout_pull_timeout`] if it has not arrived.
    PullLayout {
        /// A node that advertises it.
        from: NodeId,
        /// The layout advertised.
        stamp: LayoutStamp,
    },
    /// Something worth telling the node (and its operator).
    Event(Event),
}

/// What changed in this node's view of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A state of a node not known before arrived.
    Discovered(NodeId),
    /// A node started again (a new generation of its state arrived): what it
    /// held only in memory is gone. Its up/down verdict is unchanged.
    Restarted(NodeId),
    /// A node this node considered down (or had not seen up yet) answered
    /// it directly. Gossip alone never brings a node up.
    Up(NodeId),
    /// The failure detector convicted a node (phi above the threshold), or
    /// a request to it went unanswered ([`Membership::unresponsive`]).
    Down(NodeId),
    /// A node id was removed by an operator (here or elsewhere).
    Removed(NodeId),
    /// An operator removed this node's id. From now on the core is quiet
    /// ([`Membership::is_self_removed`]); its driver should persist this
    /// (restored with [`Membership::with_self_removed`]) and refuse
    /// requests. A node whose data is wiped comes back with a fresh id.
    SelfRemoved,
    /// This node now holds another layout.
    LayoutChanged(LayoutStamp),
    /// A layout was refused: its Q or N differ from the cluster's.
    LayoutRefused(LayoutStamp),
    /// Every member of the newest layout is synced: this node reads with it
    /// from now on.
    ReadingNew(LayoutStamp),
    /// Every node reads with this layout: the older ones are retired, and
    /// writes go to this one only.
    LayoutsRetired(LayoutStamp),
    /// This node, left out of the layout, handed off every partition it
    /// held ([`Membership::set_left`]): it can be stopped.
    Left,
    /// A peer's word on a change (the layout it routes with, the one it is
    /// synced for, the one it reads with, its status) changed: a barrier
    /// this node's driver waits on may have passed (the prepare barrier of
    /// a fill, which is the driver's to judge), so it looks again now
    /// rather than at its next poll.
    WordChanged(NodeId),
}

/// One node as this node sees it, for a status page.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberView<'a> {
    /// The node.
    pub id: NodeId,
    /// Its gossiped state (`None` for a seed not heard from yet, or a
    /// removed id).
    pub state: Option<&'a NodeState>,
    /// Whether it is a member of this node's layout.
    pub in_layout: bool,
    /// Whether the driver introduced it as a seed.
    pub seed: bool,
    /// Whether it was removed (a tombstone is held).
    pub removed: bool,
    /// This node's verdict: up (answered directly, phi under the threshold).
    pub up: bool,
    /// The failure detector's suspicion level (`None` before any state).
    pub phi: Option<f64>,
}

/// What this node knows of one other node.
#[derive(Clone, Debug)]
struct Entry {
    /// `None` while only introduced as a seed.
    state: Option<NodeState>,
    /// The address the driver gave with [`Membership::introduce`].
    seed_addr: Option<String>,
    /// Present with `state`.
    detector: Option<PhiDetector>,
    /// The verdict last reported by an event.
    up: bool,
    /// When it was last pinged.
    last_ping: Option<Duration>,
    /// When its heartbeat last advanced while it was down (or new). It is
    /// pinged every round until it answers, or until gossip has brought no
    /// advance for [`PING_WHILE_HEARD`] rounds (a crashed node's last
    /// heartbeats still travel for a while).
    heard: Option<Duration>,
}

impl Entry {
    fn empty() -> Self {
        Self {
            state: None,
            seed_addr: None,
            detector: None,
            up: false,
            last_ping: None,
            heard: None,
        }
    }
}

/// Rounds a down node is pinged after gossip last brought an advance of its
/// heartbeat.
const PING_WHILE_HEARD: u32 = 5;

/// How two versions of one node's state compare.
enum Newer {
    /// Mine has newer fields: send the whole state.
    MineFields,
    /// Same fields, my heartbeat is newer: send the heartbeat.
    MineHeartbeat,
    /// Theirs is newer.
    Theirs,
    Same,
}

fn compare(mine: &NodeState, theirs: &Digest) -> Newer {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match (mine.generation, mine.version).cmp(&(theirs.generation, theirs.version)) {
        Greater => Newer::MineFields,
        Less => Newer::Theirs,
        Equal => match mine.heartbeat.cmp(&theirs.heartbeat) {
            Greater => Newer::MineHeartbeat,
            Less => Newer::Theirs,
            Equal => Newer::Same,
        },
    }
}

fn same_fields(a: &NodeState, b: &NodeState) -> bool {
    a.peer_addr == b.peer_addr
        && a.client_addrs == b.client_addrs
        && a.zone == b.zone
        && a.capacity == b.capacity
        && a.status == b.status
        && a.layout == b.layout
        && a.synced == b.synced
        && a.reading == b.reading
}

/// The membership of one node: its view of every other node, its failure
/// detector verdicts, its layout, and the layout changes staged on it.
///
/// A pure state machine: the driver feeds it time ([`Membership::tick`])
/// and messages ([`Membership::receive`], [`Membership::layout_received`])
/// and carries out the [`Output`]s. See the crate docs for the model.
#[derive(Clone, Debug)]
pub struct Membership {
    config: Config,
    me: NodeState,
    entries: BTreeMap<NodeId, Entry>,
    seeds: BTreeSet<NodeId>,
    /// Removed ids, with the local time their tombstone expires.
    tombstones: BTreeMap<NodeId, Duration>,
    layout: Option<Layout>,
    stamp: Option<LayoutStamp>,
    /// Older layouts still in use while data moves, oldest first (see
    /// [`crate::history`]).
    older: Vec<(LayoutStamp, Layout)>,
    /// The newest layout asked for, and when.
    pending_pull: Option<(LayoutStamp, Duration)>,
    staged: Vec<Change>,
    rng: Rng,
    was_member: bool,
    self_removed: bool,
    /// Whether this node says it routes with a layout only once its driver
    /// reports the writes routed with older ones finished
    /// ([`Membership::with_write_drain`]).
    drain_writes: bool,
    /// The latest `now` any call brought: the time operator actions (which
    /// take none) judge liveness at.
    last_now: Duration,
    /// This node's word on a change, as last pushed to its peers.
    announced: Word,
}

/// What a node says of a change in flight: the layout it routes with, the
/// one it is synced for, the one it reads with, and its status. Each
/// barrier of a change waits for every node to say one of these.
type Word = (
    Option<LayoutStamp>,
    Option<LayoutStamp>,
    Option<LayoutStamp>,
    NodeStatus,
);

/// What `state` says of a change in flight.
fn word(state: &NodeState) -> Word {
    (state.layout, state.synced, state.reading, state.status)
}

impl Membership {
    /// The membership of node `me`, started with `generation` (greater than
    /// at its previous start: wall-clock milliseconds will do) and the layout
    /// it persisted, if any. `rng_seed` makes peer choice reproducible.
    pub fn new(
        me: NodeInfo,
        generation: u64,
        layout: Option<Layout>,
        config: Config,
        rng_seed: u64,
    ) -> Result<Self> {
        me.check()?;
        let mut config = config;
        config.max_nodes = config.max_nodes.max(1);
        config.max_states_per_message = config.max_states_per_message.max(1);
        config.phi_window = config.phi_window.max(1);
        let stamp = layout.as_ref().map(LayoutStamp::of);
        let member = layout.as_ref().is_some_and(|l| l.member(me.id).is_some());
        let status = if member {
            NodeStatus::Member
        } else {
            NodeStatus::Joining
        };
        let state = NodeState {
            id: me.id,
            generation,
            heartbeat: 0,
            version: 1,
            peer_addr: me.peer_addr,
            client_addrs: me.client_addrs,
            zone: me.zone,
            capacity: me.capacity,
            status,
            layout: stamp,
            // One layout in use: nothing of it is still to fill.
            synced: stamp,
            reading: stamp,
        };
        Ok(Self {
            config,
            me: state,
            entries: BTreeMap::new(),
            seeds: BTreeSet::new(),
            tombstones: BTreeMap::new(),
            layout,
            stamp,
            older: Vec::new(),
            pending_pull: None,
            staged: Vec::new(),
            rng: Rng::new(rng_seed),
            was_member: member,
            self_removed: false,
            drain_writes: false,
            last_now: Duration::ZERO,
            announced: (stamp, stamp, stamp, status),
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.me.id
    }

    /// This node's own state, as it gossips it.
    pub fn state(&self) -> &NodeState {
        &self.me
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The state of `id` as this node knows it (its own included).
    pub fn node(&self, id: NodeId) -> Option<&NodeState> {
        if id == self.me.id {
            return Some(&self.me);
        }
        self.entries.get(&id).and_then(|e| e.state.as_ref())
    }

    /// Where to reach `id`: its gossiped peer address, or the one it was
    /// introduced with.
    pub fn peer_addr(&self, id: NodeId) -> Option<&str> {
        if id == self.me.id {
            return Some(&self.me.peer_addr);
        }
        let e = self.entries.get(&id)?;
        e.state
            .as_ref()
            .map(|s| s.peer_addr.as_str())
            .or(e.seed_addr.as_deref())
    }

    /// The layout this node holds.
    pub fn layout(&self) -> Option<&Layout> {
        self.layout.as_ref()
    }

    /// The stamp of [`Membership::layout`].
    pub fn layout_stamp(&self) -> Option<LayoutStamp> {
        self.stamp
    }

    /// Restores the older layouts a node persisted with its newest one
    /// (oldest first, as [`Membership::history`] gave them): a restart in
    /// the middle of a change routes as before it. Layouts that are not
    /// older than the current one, or of another ring, are ignored.
    #[must_use]
    pub fn with_older(mut self, older: Vec<Layout>) -> Self {
        let (Some(stamp), Some(current)) = (self.stamp, self.layout.as_ref()) else {
            return self;
        };
        let config = current.config();
        let older = older
            .into_iter()
            .filter(|l| l.config() == config && LayoutStamp::of(l) < stamp)
            .collect::<Vec<_>>();
        self.older = checked(older).unwrap_or_default();
        if !self.older.is_empty() {
            self.me.reading = self.older.first().map(|(s, _)| *s);
            self.me.synced = self.me.reading;
        }
        self
    }

    /// Restores the layout this node read with before a restart (its
    /// [`NodeState::reading`], as its driver persisted it), after
    /// [`Membership::with_older`]: a node that said it reads with a layout
    /// must not read an older one again, since peers may have retired those
    /// on its word and stopped writing to them. Ignored unless it names a
    /// layout in use.
    #[must_use]
    pub fn with_reading(mut self, reading: Option<LayoutStamp>) -> Self {
        let in_use =
            |r: LayoutStamp| Some(r) == self.stamp || self.older.iter().any(|(s, _)| *s == r);
        if let Some(r) = reading
            && in_use(r)
            && Some(r) > self.me.reading
        {
            self.me.reading = Some(r);
        }
        self
    }

    /// Restores what this node learned before a restart: that an operator
    /// removed its id ([`Event::SelfRemoved`], as its driver persisted it).
    /// A removed node stays quiet ([`Membership::is_self_removed`]).
    pub fn with_self_removed(mut self, removed: bool) -> Self {
        self.self_removed |= removed;
        self
    }

    /// Whether an operator removed this node's id (a peer's tombstone said
    /// so, now or before a restart). A removed node is out of the cluster
    /// for good: it gossips no more and answers no gossip, its driver
    /// serves no requests, and peers refuse what it asks. Its data is no
    /// longer the cluster's; the machine comes back only wiped, as a new
    /// node under a fresh id.
    pub fn is_self_removed(&self) -> bool {
        self.self_removed
    }

    /// Makes this node say it routes with a layout it adopted
    /// ([`NodeState::layout`], what the prepare barrier of a change waits
    /// for) only once its driver reports, with [`Membership::writes_drained`],
    /// that every write it routed with an older layout has finished. It
    /// routes with the new layout at once. Without this (the default), it
    /// says so at adoption; a write routed just before could then still be
    /// in flight, to the old replicas only, when the new replicas copy the
    /// partition (Garage's `ack_lock` closes the same gap).
    pub fn with_write_drain(mut self) -> Self {
        self.drain_writes = true;
        self
    }

    /// The driver's word that every write this node routed with a layout
    /// older than `stamp` has finished: with
    /// [`Membership::with_write_drain`], it now says it routes with
    /// `stamp` (if that is still the layout it holds) and pushes that word
    /// to every node. Otherwise nothing.
    pub fn writes_drained(&mut self, now: Duration, stamp: LayoutStamp) -> Vec<Output> {
        self.last_now = self.last_now.max(now);
        let mut out = Vec::new();
        if !self.drain_writes || self.stamp != Some(stamp) || self.me.layout >= Some(stamp) {
            return out;
        }
        self.me.layout = Some(stamp);
        self.me.version = self.me.version.saturating_add(1);
        self.advance_transition(now, &mut out);
        self.announce(&mut out);
        out
    }

    /// Every layout in use, oldest first; the last is [`Membership::layout`].
    /// More than one while a change moves data: writes go to every one of
    /// them, reads to [`Membership::read_layout`].
    pub fn history(&self) -> Vec<&Layout> {
        self.older
            .iter()
            .map(|(_, l)| l)
            .chain(self.layout.as_ref())
            .collect()
    }

    /// The layout reads use: the newest this node saw every member of
    /// synced (its [`NodeState::reading`]), else the oldest still in use.
    pub fn read_layout(&self) -> Option<&Layout> {
        if self.older.is_empty() || self.me.reading >= self.stamp {
            return self.layout.as_ref();
        }
        self.older
            .iter()
            .rev()
            .find(|(s, _)| Some(*s) <= self.me.reading)
            .or(self.older.first())
            .map(|(_, l)| l)
    }

    /// A plan that undoes the change in flight: the next version, with the
    /// members and replicas of the oldest layout still in use, whose
    /// replicas hold everything (every write went to them too); nodes
    /// removed meanwhile stay out, their replicas placed as a change would. Committed,
    /// it moves nothing back: the nodes the change was filling drop their
    /// partial copies once it completes.
    ///
    /// # Errors
    /// [`Error::NothingToAbort`] when one layout is in use.
    pub fn abort_plan(&self) -> Result<Plan> {
        let ((_, oldest), current) = self
            .older
            .first()
            .zip(self.layout.as_ref())
            .ok_or(Error::NothingToAbort)?;
        let mut layout = current.restore(oldest)?;
        // A node removed since cannot come back: its replicas are placed
        // as a change from the restored layout would place them.
        if layout.members().iter().any(|m| self.is_removed(m.id)) {
            let members = layout
                .members()
                .iter()
                .filter(|m| !self.is_removed(m.id))
                .cloned()
                .collect();
            layout = layout.next(members)?;
        }
        Ok(Plan {
            base: self.stamp,
            stamp: LayoutStamp::of(&layout),
            diff: Some(LayoutDiff::between(current, &layout)?),
            layout,
            removed: Vec::new(),
            changes: Vec::new(),
        })
    }

    /// Where the change in flight stands; `None` when one layout is in use.
    pub fn transition(&self, now: Duration) -> Option<Transition> {
        let (from, _) = self.older.first()?;
        let (current, to) = self.layout.as_ref().zip(self.stamp)?;
        let routing_nodes = self
            .entries
            .iter()
            .filter(|(_, e)| e.state.as_ref().is_some_and(|s| s.layout.is_some()))
            .map(|(id, _)| *id);
        let (synced, reading) = barrier_nodes(
            current,
            &self.older,
            routing_nodes,
            |id| self.is_removed(id),
            |id| self.is_up(id, now),
        );
        let said = |id: NodeId, f: fn(&NodeState) -> Option<LayoutStamp>| {
            self.node(id).and_then(f) >= Some(to)
        };
        Some(Transition {
            from: *from,
            to,
            not_synced: synced
                .into_iter()
                .filter(|id| !said(*id, |s| s.synced))
                .collect(),
            not_reading: reading
                .into_iter()
                .filter(|id| !said(*id, |s| s.reading))
                .collect(),
            reading_new: self.me.reading >= Some(to),
        })
    }

    /// The driver's word that this node holds every partition `stamp` gives
    /// it, filled and verified from the replicas reads used. Ignored unless
    /// `stamp` is the current layout's. Gossip spreads it; once every member
    /// said so, reads move to the new layout.
    pub fn set_synced(&mut self, now: Duration, stamp: LayoutStamp) -> Vec<Output> {
        let mut out = Vec::new();
        if Some(stamp) == self.stamp && self.me.synced < Some(stamp) {
            self.me.synced = Some(stamp);
            self.me.version = self.me.version.saturating_add(1);
        }
        self.advance_transition(now, &mut out);
        self.announce(&mut out);
        out
    }

    /// Tells the core that this node, which the layout in use leaves out,
    /// has handed off and dropped every partition it held: it says it
    /// [`NodeStatus::Left`] (and can be stopped). Ignored while it is a
    /// member or a change is in flight.
    pub fn set_left(&mut self, now: Duration) -> Vec<Output> {
        let mut out = Vec::new();
        let left_out = self
            .layout
            .as_ref()
            .is_some_and(|l| l.member(self.me.id).is_none());
        if self.me.status == NodeStatus::Leaving && left_out && self.older.is_empty() {
            self.me.status = NodeStatus::Left;
            self.me.version = self.me.version.saturating_add(1);
            out.push(Output::Event(Event::Left));
        }
        self.advance(now);
        self.announce(&mut out);
        out
    }

    /// Whether `id` is up by this node's verdict: it answered directly since
    /// it was last down, and its phi is under the threshold at `now`. This
    /// node is always up; unknown and removed ids never are.
    pub fn is_up(&self, id: NodeId, now: Duration) -> bool {
        if id == self.me.id {
            return true;
        }
        self.entries.get(&id).is_some_and(|e| {
            e.up && self
                .entry_phi(e, now)
                .is_some_and(|phi| phi <= self.config.phi_threshold)
        })
    }

    /// A request to `id` went unanswered for the driver's whole timeout:
    /// evidence the failure detector would need several seconds of silence
    /// to reach. A node that is up is judged down now (an
    /// [`Event::Down`]); it is pinged every round, and comes back up as
    /// soon as it speaks to this node again, so a live node that was only
    /// slow is down for about a gossip round, and that verdict only reorders
    /// whom requests ask first.
    pub fn unresponsive(&mut self, now: Duration, id: NodeId) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(e) = self.entries.get_mut(&id)
            && e.up
        {
            e.up = false;
            e.heard = Some(now);
            out.push(Output::Event(Event::Down(id)));
        }
        out
    }

    /// The failure detector's suspicion of `id` at `now` (0 for this node;
    /// `None` when no state of `id` is known).
    pub fn phi(&self, id: NodeId, now: Duration) -> Option<f64> {
        if id == self.me.id {
            return Some(0.0);
        }
        self.entries.get(&id).and_then(|e| self.entry_phi(e, now))
    }

    /// Whether `id` was removed (this node holds its tombstone).
    pub fn is_removed(&self, id: NodeId) -> bool {
        self.tombstones.contains_key(&id)
    }

    /// Every removed id this node knows of: those it holds tombstones of,
    /// and its own if it was removed ([`Membership::is_self_removed`]).
    pub fn removed_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.tombstones
            .keys()
            .copied()
            .chain(self.self_removed.then_some(self.me.id))
    }

    /// Every node this node knows of (itself, peers, seeds, removed ids),
    /// sorted by id.
    pub fn members(&self, now: Duration) -> impl Iterator<Item = MemberView<'_>> + '_ {
        let in_layout = |id| self.layout.as_ref().is_some_and(|l| l.member(id).is_some());
        let mut views: Vec<MemberView<'_>> = Vec::with_capacity(self.entries.len() + 1);
        views.push(MemberView {
            id: self.me.id,
            state: Some(&self.me),
            in_layout: in_layout(self.me.id),
            seed: false,
            removed: self.self_removed,
            up: true,
            phi: Some(0.0),
        });
        for (id, e) in &self.entries {
            views.push(MemberView {
                id: *id,
                state: e.state.as_ref(),
                in_layout: in_layout(*id),
                seed: self.seeds.contains(id),
                removed: false,
                up: self.is_up(*id, now),
                phi: self.entry_phi(e, now),
            });
        }
        for id in self.tombstones.keys() {
            views.push(MemberView {
                id: *id,
                state: None,
                in_layout: in_layout(*id),
                seed: false,
                removed: true,
                up: false,
                phi: None,
            });
        }
        views.sort_by_key(|v| v.id);
        views.into_iter()
    }

    /// A seed: a node the driver resolved from configuration (the transport
    /// learns its id at the handshake). The core gossips with seeds while it
    /// knows no live peer, and now and then afterwards, which also heals
    /// partitions. Ignored for this node's own id, removed ids, an address
    /// over [`crate::MAX_ADDR_LEN`] bytes, or when [`Config::max_nodes`] are known.
    pub fn introduce(&mut self, id: NodeId, peer_addr: String) {
        if id == self.me.id
            || self.tombstones.contains_key(&id)
            || peer_addr.len() > MAX_ADDR_LEN
            || !self.has_room(id)
        {
            return;
        }
        self.entries
            .entry(id)
            .or_insert_with(Entry::empty)
            .seed_addr = Some(peer_addr);
        self.seeds.insert(id);
    }

    /// Tells the core the time without a gossip round, so that checks made
    /// between rounds (a staged `Remove` refused while its node is up) judge
    /// liveness as of `now`.
    pub fn advance(&mut self, now: Duration) {
        self.last_now = self.last_now.max(now);
    }

    /// One gossip round; call every [`Config::gossip_interval`]. Bumps this
    /// node's heartbeat, convicts silent peers, pings down peers whose
    /// heartbeat gossip still brings, forgets expired tombstones, asks again
    /// for an overdue layout, and opens a round with a random live peer,
    /// sometimes also with an unreachable node and a seed (Cassandra's choice).
    /// A removed node ([`Membership::is_self_removed`]) does nothing.
    pub fn tick(&mut self, now: Duration) -> Vec<Output> {
        self.last_now = self.last_now.max(now);
        let mut out = Vec::new();
        if self.self_removed {
            return out;
        }
        self.me.heartbeat = self.me.heartbeat.saturating_add(1);
        self.tombstones.retain(|_, expires| *expires > now);
        let params = self.phi_params();
        let threshold = self.config.phi_threshold;
        let every = self.config.gossip_interval;
        let mut pings = Vec::new();
        for (id, e) in &mut self.entries {
            let phi = e.detector.as_ref().map(|d| d.phi(now, params));
            if e.up && phi.is_none_or(|phi| phi > threshold) {
                e.up = false;
                out.push(Output::Event(Event::Down(*id)));
            }
            let recent = every.saturating_mul(PING_WHILE_HEARD);
            if !e.up && e.heard.is_some_and(|at| now <= at.saturating_add(recent)) {
                ping(e, *id, now, every, &mut pings);
            }
        }
        out.extend(pings.into_iter().map(|to| Output::Send {
            to,
            msg: Message::Ping,
        }));
        self.advance_transition(now, &mut out);
        self.announce(&mut out);
        self.maybe_pull(now, &mut out);
        let targets = self.gossip_targets();
        if !targets.is_empty() {
            let syn = self.syn(now);
            for to in targets {
                out.push(Output::Send {
                    to,
                    msg: syn.clone(),
                });
            }
        }
        out
    }

    /// A message from `from` (authenticated by the transport). Any content is
    /// handled: unknown ids are learned (up to [`Config::max_nodes`]), long
    /// lists are read only up to the limits, states over the limits are
    /// ignored, and claims about this node never change it other than to
    /// move its versions past them, so that its own state wins again. A
    /// removed node ([`Membership::is_self_removed`]) ignores everything.
    pub fn receive(&mut self, now: Duration, from: NodeId, msg: Message) -> Vec<Output> {
        self.last_now = self.last_now.max(now);
        let mut out = Vec::new();
        if self.self_removed {
            return out;
        }
        let mut pings = Vec::new();
        match msg {
            Message::Syn {
                digests,
                tombstones,
            } => {
                let listed = self.merge_tombstones(now, &tombstones, &mut out);
                if self.self_removed {
                    return out;
                }
                let reply = self.answer_syn(now, &digests, &listed);
                out.push(Output::Send {
                    to: from,
                    msg: reply,
                });
            }
            Message::Ack {
                states,
                heartbeats,
                want,
                tombstones,
            } => {
                self.merge_tombstones(now, &tombstones, &mut out);
                if self.self_removed {
                    return out;
                }
                self.apply_states(now, states, &mut out, &mut pings);
                self.apply_heartbeats(now, &heartbeats, &mut pings);
                let (states, heartbeats) = self.answer_want(&want);
                if !states.is_empty() || !heartbeats.is_empty() {
                    out.push(Output::Send {
                        to: from,
                        msg: Message::Ack2 { states, heartbeats },
                    });
                }
            }
            Message::Ack2 { states, heartbeats } => {
                self.apply_states(now, states, &mut out, &mut pings);
                self.apply_heartbeats(now, &heartbeats, &mut pings);
            }
            Message::Ping => out.push(Output::Send {
                to: from,
                msg: Message::Pong,
            }),
            Message::Pong => {}
        }
        self.direct_contact(now, from, &mut out);
        for id in pings {
            if id != from {
                out.push(Output::Send {
                    to: id,
                    msg: Message::Ping,
                });
            }
        }
        self.advance_transition(now, &mut out);
        self.announce(&mut out);
        self.maybe_pull(now, &mut out);
        out
    }

    /// A layout the driver fetched (after [`Output::PullLayout`], or on its
    /// own). Installed if its stamp is greater than this node's and it keeps
    /// the cluster's Q and N; otherwise ignored. It goes on top of the
    /// layouts this node uses, which stay in use until the change passes
    /// its barriers (as a commit here would); a peer's whole history goes to
    /// [`Membership::history_received`].
    pub fn layout_received(&mut self, now: Duration, layout: Layout) -> Vec<Output> {
        let same_ring = self
            .layout
            .as_ref()
            .is_none_or(|current| current.config() == layout.config());
        if !same_ring {
            // Refused there, with the event that says so.
            return self.history_received(now, vec![layout]);
        }
        let mut history: Vec<Layout> = self.history().into_iter().cloned().collect();
        history.push(layout);
        self.history_received(now, history)
    }

    /// A layout history the driver fetched (a peer's [`Membership::history`],
    /// oldest first). If its newest layout is newer than this node's, it is
    /// installed with the older layouts the peer still uses (it knows better:
    /// it held the newer layout first). A history that is not ordered, mixes
    /// rings or keeps another Q or N than the cluster's is refused.
    pub fn history_received(&mut self, now: Duration, layouts: Vec<Layout>) -> Vec<Output> {
        self.last_now = self.last_now.max(now);
        let mut out = Vec::new();
        let Some(mut history) = checked(layouts) else {
            return out;
        };
        let Some((stamp, layout)) = history.pop() else {
            return out;
        };
        if Some(stamp) <= self.stamp {
            return out;
        }
        if let Some(current) = &self.layout
            && current.config() != layout.config()
        {
            out.push(Output::Event(Event::LayoutRefused(stamp)));
            return out;
        }
        // Layouts this node retired stay retired: it saw every node that
        // routes read with a newer one, and nodes that saw the same write
        // to the newer ones only. A peer that has not seen it yet sends
        // them along; taking them back would only add work.
        if let Some(oldest) = self.older.first().map(|(s, _)| *s).or(self.stamp) {
            history.retain(|(s, _)| *s >= oldest);
        }
        self.install(layout, stamp, &mut out);
        self.older = history;
        // Reading never moves back: this node said it reads with a layout
        // (every member of it synced), and peers may have retired the
        // older ones on its word, so writes no longer reach those.
        let floor = self.older.first().map_or(Some(stamp), |(s, _)| Some(*s));
        self.me.reading = self.me.reading.max(floor);
        if self.older.is_empty() {
            self.me.synced = Some(stamp);
        }
        self.advance_transition(now, &mut out);
        self.announce(&mut out);
        self.maybe_pull(now, &mut out);
        out
    }

    /// The staged changes, in order.
    pub fn staged(&self) -> &[Change] {
        &self.staged
    }

    /// Stages a change after checking it against the current layout, what
    /// gossip knows and the changes already staged.
    pub fn stage(&mut self, change: Change) -> Result<()> {
        let mut all = self.staged.clone();
        all.push(change.clone());
        self.apply_changes(&all)?;
        self.staged.push(change);
        Ok(())
    }

    /// Drops every staged change.
    pub fn clear_staged(&mut self) {
        self.staged.clear();
    }

    /// The layout the staged changes make (the next version of the current
    /// one, or the cluster's first with [`Config::ring`]) and what it moves.
    pub fn plan(&self) -> Result<Plan> {
        if self.staged.is_empty() {
            return Err(Error::NothingStaged);
        }
        let (members, removed) = self.apply_changes(&self.staged)?;
        let layout = match &self.layout {
            Some(current) => current.next(members)?,
            None => Layout::initial(self.config.ring, members)?,
        };
        let diff = match &self.layout {
            Some(current) => Some(LayoutDiff::between(current, &layout)?),
            None => None,
        };
        Ok(Plan {
            base: self.stamp,
            stamp: LayoutStamp::of(&layout),
            layout,
            diff,
            removed,
            changes: self.staged.clone(),
        })
    }

    /// Installs a plan's layout and tombstones, and clears the staged
    /// changes. Gossip then spreads the layout: peers see this node's stamp
    /// and pull it.
    ///
    /// Refused if the plan was made against another layout than the current
    /// one ([`Error::StalePlan`]) or a peer advertises a newer layout
    /// ([`Error::LayoutBehind`]). A commit made concurrently on another node
    /// may still win (see [`LayoutStamp`]): check [`Membership::layout`]
    /// once gossip has settled.
    pub fn commit(&mut self, now: Duration, plan: Plan) -> Result<Vec<Output>> {
        self.last_now = self.last_now.max(now);
        if plan.base != self.stamp {
            return Err(Error::StalePlan {
                planned_against: plan.base,
                current: self.stamp,
            });
        }
        if let Some(newest) = self.newest_advertised()
            && Some(newest) > self.stamp
        {
            return Err(Error::LayoutBehind {
                current: self.stamp,
                newest,
            });
        }
        if self.older.len() + 1 >= crate::MAX_HISTORY
            && let Some(((from, _), to)) = self.older.first().zip(self.stamp)
        {
            return Err(Error::ChangeInProgress { from: *from, to });
        }
        let mut out = Vec::new();
        for id in &plan.removed {
            self.tombstone(now, *id, &mut out);
        }
        self.staged.clear();
        self.install(plan.layout, plan.stamp, &mut out);
        self.advance_transition(now, &mut out);
        self.announce(&mut out);
        Ok(out)
    }

    // ---- internals ----

    fn phi_params(&self) -> PhiParams {
        PhiParams {
            min_std: self.config.min_std_deviation,
            acceptable_pause: self.config.acceptable_heartbeat_pause,
        }
    }

    fn entry_phi(&self, e: &Entry, now: Duration) -> Option<f64> {
        e.detector.as_ref().map(|d| d.phi(now, self.phi_params()))
    }

    fn has_room(&self, id: NodeId) -> bool {
        self.entries.contains_key(&id) || self.entries.len() < self.config.max_nodes
    }

    fn gossip_targets(&mut self) -> Vec<NodeId> {
        let mut live = Vec::new();
        let mut unreachable = Vec::new();
        for (id, e) in &self.entries {
            if e.state.is_none() {
                continue;
            }
            if e.up {
                live.push(*id);
            } else {
                unreachable.push(*id);
            }
        }
        let seeds: Vec<NodeId> = self.seeds.iter().copied().collect();
        let mut targets = Vec::with_capacity(3);
        let mut to_seed = false;
        if let Some(peer) = self.rng.pick(&live) {
            targets.push(peer);
            to_seed = self.seeds.contains(&peer);
        }
        if !unreachable.is_empty() {
            let p = unreachable.len() as f64 / (live.len() + 1) as f64;
            if self.rng.chance(p)
                && let Some(peer) = self.rng.pick(&unreachable)
                && !targets.contains(&peer)
            {
                targets.push(peer);
            }
        }
        if !seeds.is_empty() && (!to_seed || live.len() < seeds.len()) {
            let go = live.is_empty() || {
                let p = seeds.len() as f64 / (live.len() + unreachable.len()) as f64;
                self.rng.chance(p)
            };
            if go
                && let Some(seed) = self.rng.pick(&seeds)
                && !targets.contains(&seed)
            {
                targets.push(seed);
            }
        }
        targets
    }

    fn syn(&self, now: Duration) -> Message {
        let mut digests = Vec::with_capacity(self.entries.len() + 1);
        digests.push(self.me.digest());
        digests.extend(
            self.entries
                .values()
                .filter_map(|e| e.state.as_ref().map(NodeState::digest)),
        );
        Message::Syn {
            digests,
            tombstones: self.tombstone_list(now, &BTreeSet::new()),
        }
    }

    fn tombstone_list(&self, now: Duration, skip: &BTreeSet<NodeId>) -> Vec<Tombstone> {
        let ttl = self.config.removed_ttl;
        self.tombstones
            .iter()
            .filter(|(id, _)| !skip.contains(id))
            .map(|(id, expires)| Tombstone {
                id: *id,
                age_ms: u64::try_from(ttl.saturating_sub(expires.saturating_sub(now)).as_millis())
                    .unwrap_or(u64::MAX),
            })
            .collect()
    }

    /// Merges tombstones from a peer; returns the ids it listed.
    fn merge_tombstones(
        &mut self,
        now: Duration,
        list: &[Tombstone],
        out: &mut Vec<Output>,
    ) -> BTreeSet<NodeId> {
        let ttl = self.config.removed_ttl;
        let mut listed = BTreeSet::new();
        for t in list.iter().take(self.config.max_nodes) {
            listed.insert(t.id);
            let age = Duration::from_millis(t.age_ms);
            if age >= ttl {
                continue;
            }
            let expires = now.checked_add(ttl - age).unwrap_or(Duration::MAX);
            if t.id == self.me.id {
                if !self.self_removed {
                    self.self_removed = true;
                    out.push(Output::Event(Event::SelfRemoved));
                }
                continue;
            }
            if let Some(e) = self.tombstones.get_mut(&t.id) {
                *e = (*e).min(expires);
            } else if self.tombstones.len() < self.config.max_nodes {
                self.forget(t.id, expires, out);
            }
        }
        listed
    }

    fn tombstone(&mut self, now: Duration, id: NodeId, out: &mut Vec<Output>) {
        let expires = now
            .checked_add(self.config.removed_ttl)
            .unwrap_or(Duration::MAX);
        self.forget(id, expires, out);
    }

    fn forget(&mut self, id: NodeId, expires: Duration, out: &mut Vec<Output>) {
        self.tombstones.insert(id, expires);
        self.entries.remove(&id);
        self.seeds.remove(&id);
        out.push(Output::Event(Event::Removed(id)));
    }

    fn answer_syn(
        &mut self,
        now: Duration,
        digests: &[Digest],
        listed_tombstones: &BTreeSet<NodeId>,
    ) -> Message {
        let max_states = self.config.max_states_per_message;
        let mut mentioned = BTreeSet::new();
        let mut newer_fields = Vec::new();
        let mut heartbeats = Vec::new();
        let mut want = Vec::new();
        for d in digests.iter().take(self.config.max_nodes) {
            if d.id == self.me.id {
                self.leap(d.generation, d.version, d.heartbeat, None);
            }
            if !mentioned.insert(d.id) {
                continue;
            }
            if self.tombstones.contains_key(&d.id) {
                continue;
            }
            match self.node(d.id) {
                None => {
                    if d.version >= 1 && self.has_room(d.id) {
                        want.push(Digest {
                            id: d.id,
                            generation: 0,
                            heartbeat: 0,
                            version: 0,
                        });
                    }
                }
                Some(mine) => match compare(mine, d) {
                    Newer::MineFields => newer_fields.push(d.id),
                    Newer::MineHeartbeat => heartbeats.push(Heartbeat {
                        id: mine.id,
                        generation: mine.generation,
                        heartbeat: mine.heartbeat,
                    }),
                    Newer::Theirs => want.push(mine.digest()),
                    Newer::Same => {}
                },
            }
        }
        // What the initiator lacks entirely, this node's own state first,
        // then what it holds older fields of.
        let unmentioned = std::iter::once(&self.me)
            .chain(self.entries.values().filter_map(|e| e.state.as_ref()))
            .filter(|s| !mentioned.contains(&s.id));
        let newer = newer_fields.iter().filter_map(|id| self.node(*id));
        let states: Vec<NodeState> = unmentioned.chain(newer).take(max_states).cloned().collect();
        Message::Ack {
            states,
            heartbeats,
            want,
            tombstones: self.tombstone_list(now, listed_tombstones),
        }
    }

    fn answer_want(&mut self, want: &[Digest]) -> (Vec<NodeState>, Vec<Heartbeat>) {
        let mut seen = BTreeSet::new();
        let mut states = Vec::new();
        let mut heartbeats = Vec::new();
        for w in want.iter().take(self.config.max_nodes) {
            if w.id == self.me.id {
                self.leap(w.generation, w.version, w.heartbeat, None);
            }
            if !seen.insert(w.id) || self.tombstones.contains_key(&w.id) {
                continue;
            }
            let Some(mine) = self.node(w.id) else {
                continue;
            };
            match compare(mine, w) {
                Newer::MineFields if states.len() < self.config.max_states_per_message => {
                    states.push(mine.clone());
                }
                Newer::MineHeartbeat => heartbeats.push(Heartbeat {
                    id: mine.id,
                    generation: mine.generation,
                    heartbeat: mine.heartbeat,
                }),
                _ => {}
            }
        }
        (states, heartbeats)
    }

    /// Someone holds versions of this node's state at or past `generation`,
    /// `version`, `heartbeat`: move past them, so that the state this node
    /// gossips wins again (a restart whose generation is not greater than the
    /// last, or a bogus claim).
    fn leap(&mut self, generation: u64, version: u64, heartbeat: u64, fields: Option<&NodeState>) {
        let me = &mut self.me;
        if generation > me.generation {
            me.generation = generation;
            me.version = version.saturating_add(1).max(1);
            me.heartbeat = heartbeat.saturating_add(1);
        } else if generation == me.generation {
            let conflict = fields.is_some_and(|s| !same_fields(s, me));
            if version > me.version || (version == me.version && conflict) {
                me.version = version.saturating_add(1);
            }
            if heartbeat > me.heartbeat {
                me.heartbeat = heartbeat.saturating_add(1);
            }
        }
    }

    fn apply_states(
        &mut self,
        now: Duration,
        states: Vec<NodeState>,
        out: &mut Vec<Output>,
        pings: &mut Vec<NodeId>,
    ) {
        let max = self.config.max_states_per_message;
        for s in states.into_iter().take(max) {
            self.apply_state(now, s, out, pings);
        }
    }

    fn apply_state(
        &mut self,
        now: Duration,
        s: NodeState,
        out: &mut Vec<Output>,
        pings: &mut Vec<NodeId>,
    ) {
        if !acceptable(&s) {
            return;
        }
        if s.id == self.me.id {
            self.leap(s.generation, s.version, s.heartbeat, Some(&s));
            return;
        }
        if self.tombstones.contains_key(&s.id) || !self.has_room(s.id) {
            return;
        }
        let id = s.id;
        let estimate = self.config.first_heartbeat_estimate;
        let window = self.config.phi_window;
        let ping_every = self.config.gossip_interval;
        let entry = self.entries.entry(id).or_insert_with(Entry::empty);
        let Some(current) = &mut entry.state else {
            entry.state = Some(s);
            entry.detector = Some(PhiDetector::new(now, estimate));
            out.push(Output::Event(Event::Discovered(id)));
            entry.heard = Some(now);
            ping(entry, id, now, ping_every, pings);
            return;
        };
        if s.generation > current.generation {
            *current = s;
            entry.detector = Some(PhiDetector::new(now, estimate));
            out.push(Output::Event(Event::Restarted(id)));
            // An up node stays up: its new life has evidently begun. A down
            // one is asked directly, as for any heartbeat heard of it.
            if !entry.up {
                entry.last_ping = None;
                entry.heard = Some(now);
                ping(entry, id, now, ping_every, pings);
            }
            return;
        }
        if s.generation < current.generation {
            return;
        }
        let advanced = s.heartbeat > current.heartbeat;
        if s.version > current.version {
            if word(current) != word(&s) {
                out.push(Output::Event(Event::WordChanged(id)));
            }
            let heartbeat = current.heartbeat.max(s.heartbeat);
            *current = s;
            current.heartbeat = heartbeat;
        } else if advanced {
            current.heartbeat = s.heartbeat;
        }
        if advanced {
            heartbeat_arrived(entry, id, now, window, ping_every, pings);
        }
    }

    fn apply_heartbeats(
        &mut self,
        now: Duration,
        heartbeats: &[Heartbeat],
        pings: &mut Vec<NodeId>,
    ) {
        let window = self.config.phi_window;
        let ping_every = self.config.gossip_interval;
        for h in heartbeats.iter().take(self.config.max_nodes) {
            if h.id == self.me.id {
                self.leap(h.generation, 0, h.heartbeat, None);
                continue;
            }
            let Some(entry) = self.entries.get_mut(&h.id) else {
                continue;
            };
            let Some(current) = &mut entry.state else {
                continue;
            };
            if h.generation == current.generation && h.heartbeat > current.heartbeat {
                current.heartbeat = h.heartbeat;
                heartbeat_arrived(entry, h.id, now, window, ping_every, pings);
            }
        }
    }

    /// `from` spoke to this node: it is alive now.
    fn direct_contact(&mut self, now: Duration, from: NodeId, out: &mut Vec<Output>) {
        if let Some(e) = self.entries.get_mut(&from)
            && !e.up
            && let Some(detector) = &mut e.detector
        {
            detector.restart(now);
            e.up = true;
            e.heard = None;
            out.push(Output::Event(Event::Up(from)));
        }
    }

    fn newest_advertised(&self) -> Option<LayoutStamp> {
        self.entries
            .values()
            .filter_map(|e| e.state.as_ref()?.layout)
            .max()
    }

    fn maybe_pull(&mut self, now: Duration, out: &mut Vec<Output>) {
        let Some(best) = self.newest_advertised() else {
            return;
        };
        if Some(best) <= self.stamp {
            return;
        }
        if let Some((asked, at)) = self.pending_pull
            && asked >= best
            && now < at.saturating_add(self.config.layout_pull_timeout)
        {
            return;
        }
        let advertising = |up: bool| -> Vec<NodeId> {
            self.entries
                .iter()
                .filter(|(_, e)| {
                    (e.up || !up) && e.state.as_ref().and_then(|s| s.layout) == Some(best)
                })
                .map(|(id, _)| *id)
                .collect()
        };
        let mut sources = advertising(true);
        if sources.is_empty() {
            sources = advertising(false);
        }
        if let Some(from) = self.rng.pick(&sources) {
            out.push(Output::PullLayout { from, stamp: best });
            self.pending_pull = Some((best, now));
        }
    }

    /// Moves the change in flight past every barrier that gossip shows is
    /// met: reading with the newest layout once every member of it is
    /// synced, then retiring the older layouts once every node reads with
    /// it.
    fn advance_transition(&mut self, now: Duration, out: &mut Vec<Output>) {
        let Some(t) = self.transition(now) else {
            return;
        };
        if !t.reading_new && t.not_synced.is_empty() {
            self.me.reading = Some(t.to);
            self.me.version = self.me.version.saturating_add(1);
            out.push(Output::Event(Event::ReadingNew(t.to)));
            // This node's own word counts at once.
            return self.advance_transition(now, out);
        }
        if t.reading_new && t.not_reading.is_empty() {
            self.older.clear();
            out.push(Output::Event(Event::LayoutsRetired(t.to)));
        }
    }

    /// Pushes this node's state to every known peer as soon as what a
    /// barrier waits on changes (see [`Word`]), rather than leaving it
    /// to gossip rounds: each barrier of a change then costs a message
    /// instead of a few rounds. The push is an unsolicited
    /// [`Message::Ack2`] (a receiver merges its states as any other).
    fn announce(&mut self, out: &mut Vec<Output>) {
        let now = word(&self.me);
        if now == self.announced {
            return;
        }
        self.announced = now;
        let push = Message::Ack2 {
            states: vec![self.me.clone()],
            heartbeats: Vec::new(),
        };
        // Every node whose state is known, not only those judged up: one
        // this node never spoke to directly (so never judged up) may wait
        // on this word as much as any.
        for (id, e) in &self.entries {
            if e.state.is_some() {
                out.push(Output::Send {
                    to: *id,
                    msg: push.clone(),
                });
            }
        }
    }

    fn install(&mut self, layout: Layout, stamp: LayoutStamp, out: &mut Vec<Output>) {
        let member = layout.member(self.me.id).is_some();
        if let Some(previous) = self.layout.take()
            && let Some(previous_stamp) = self.stamp
        {
            self.older.push((previous_stamp, previous));
        }
        if self.older.is_empty() {
            self.me.reading = Some(stamp);
            self.me.synced = Some(stamp);
        }
        self.layout = Some(layout);
        self.stamp = Some(stamp);
        if self.pending_pull.is_some_and(|(asked, _)| asked <= stamp) {
            self.pending_pull = None;
        }
        let status = if member {
            self.was_member = true;
            NodeStatus::Member
        } else if self.me.status == NodeStatus::Left {
            // It holds nothing; a layout that leaves it out again changes
            // nothing of that.
            NodeStatus::Left
        } else if self.was_member {
            NodeStatus::Leaving
        } else {
            NodeStatus::Joining
        };
        self.me.status = status;
        if !self.drain_writes {
            self.me.layout = Some(stamp);
        }
        self.me.version = self.me.version.saturating_add(1);
        out.push(Output::Event(Event::LayoutChanged(stamp)));
    }

    fn apply_changes(&self, changes: &[Change]) -> Result<(Vec<Member>, Vec<NodeId>)> {
        let mut members = self
            .layout
            .as_ref()
            .map_or_else(Vec::new, |l| l.members().to_vec());
        let mut removed = Vec::new();
        for change in changes {
            self.apply_change(&mut members, &mut removed, change)?;
        }
        Ok((members, removed))
    }

    fn apply_change(
        &self,
        members: &mut Vec<Member>,
        removed: &mut Vec<NodeId>,
        change: &Change,
    ) -> Result<()> {
        let position = |members: &[Member], id: NodeId| members.iter().position(|m| m.id == id);
        let gone = |id: &NodeId| self.tombstones.contains_key(id) || removed.contains(id);
        match change {
            Change::Join(id) => {
                if gone(id) {
                    return Err(Error::Removed(*id));
                }
                if position(members, *id).is_some() {
                    return Err(Error::AlreadyMember(*id));
                }
                let s = self.node(*id).ok_or(Error::UnknownNode(*id))?;
                if s.capacity == 0 {
                    return Err(Error::ZeroCapacity(*id));
                }
                members.push(Member::new(*id, s.zone.clone(), s.capacity));
            }
            Change::Leave(id) => {
                let i = position(members, *id).ok_or(Error::NotAMember(*id))?;
                members.remove(i);
            }
            Change::SetCapacity(id, capacity) => {
                if *capacity == 0 {
                    return Err(Error::ZeroCapacity(*id));
                }
                let m = members
                    .iter_mut()
                    .find(|m| m.id == *id)
                    .ok_or(Error::NotAMember(*id))?;
                m.capacity = *capacity;
            }
            Change::SetZone(id, zone) => {
                let m = members
                    .iter_mut()
                    .find(|m| m.id == *id)
                    .ok_or(Error::NotAMember(*id))?;
                m.zone = zone.clone();
            }
            Change::Remove(id) => {
                if *id == self.me.id {
                    return Err(Error::RemoveSelf);
                }
                if gone(id) {
                    return Err(Error::Removed(*id));
                }
                let i = position(members, *id);
                if i.is_none() && self.node(*id).is_none() {
                    return Err(Error::UnknownNode(*id));
                }
                if self.is_up(*id, self.last_now) {
                    return Err(Error::NodeIsUp(*id));
                }
                if let Some(i) = i {
                    members.remove(i);
                }
                removed.push(*id);
            }
        }
        Ok(())
    }
}

/// A heartbeat of `id` advanced in gossip: a sample for the detector while
/// the node is up; otherwise a reason to ask the node itself.
fn heartbeat_arrived(
    entry: &mut Entry,
    id: NodeId,
    now: Duration,
    window: usize,
    ping_every: Duration,
    pings: &mut Vec<NodeId>,
) {
    if entry.up {
        if let Some(d) = &mut entry.detector {
            d.heartbeat(now, window);
        }
    } else {
        entry.heard = Some(now);
        ping(entry, id, now, ping_every, pings);
    }
}

fn ping(entry: &mut Entry, id: NodeId, now: Duration, every: Duration, pings: &mut Vec<NodeId>) {
    if entry
        .last_ping
        .is_none_or(|at| now >= at.saturating_add(every))
    {
        entry.last_ping = Some(now);
        pings.push(id);
    }
}

//! [`Cluster`]: K real nodes over the in-memory network, on virtual time,
//! with crashes, restarts and wipes.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use gyre_membership::{Change, LayoutStamp, Membership, NodeInfo};
use gyre_node::{Node, NodeConfig};
use gyre_replication::{Replica, SyncStats};
use gyre_ring::Layout;
use gyre_storage::{Durability, MemStore, ObjectId, Store, StoreConfig};
use gyre_transport::{Faults, MemNetwork};
use gyre_types::{BucketName, BucketProps, Key, NodeId, ZoneName};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::availability::Epoch;
use crate::checker::{FinalKey, Snapshot};
use crate::config::{ClusterConfig, SettleConfig};
use crate::history::Recorder;
use crate::rng::SimRng;
use crate::transport::{SimTransport, Traffic};
use crate::{Error, Result};

/// A node's store as the simulator holds it: shared between the node and
/// the simulator, so that it outlives the node's crash.
pub type SimStore = Arc<MemStore>;

/// A simulated node: the real [`Node`] over the in-memory transport
/// (metered: [`SimTransport`]) and a shared [`MemStore`].
pub type SimNode = Node<SimTransport, SimStore>;

/// Virtual wall-clock time at the start of every run (2023-11-14): node
/// generations and hybrid clocks read `WALL_BASE_MS` plus virtual time.
pub(crate) const WALL_BASE_MS: u64 = 1_700_000_000_000;

/// How often [`Cluster::wait_until`] re-checks its condition.
const POLL: Duration = Duration::from_millis(50);

/// What replication did, summed over every node and every life of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Writes sent to a fallback as a hint (sloppy quorum).
    pub fallbacks: u64,
    /// Hints delivered to their owners.
    pub hints_delivered: u64,
    /// Replicas repaired on reads.
    pub read_repairs: u64,
    /// Keys synced by anti-entropy.
    pub ae_keys: u64,
    /// Anti-entropy sessions (Merkle exchanges) completed.
    pub ae_sessions: u64,
    /// Operations refused for lack of replicas.
    pub unavailable: u64,
}

impl Totals {
    fn add(&mut self, node: &SimNode) {
        let c = node.replication().counters();
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        self.fallbacks += get(&c.fallbacks);
        self.hints_delivered += get(&c.hints_delivered);
        self.read_repairs += get(&c.read_repairs);
        self.ae_keys += get(&c.ae_keys);
        self.ae_sessions += get(&c.ae_sessions);
        self.unavailable += get(&c.unavailable);
    }
}

/// One node's place in the cluster, across its lives.
struct Slot {
    id: NodeId,
    zone: ZoneName,
    store: SimStore,
    /// The running node; `None` while crashed.
    node: Option<Arc<SimNode>>,
    /// Membership generation of the current (or last) life.
    generation: u64,
    /// The layouts the node held when it crashed (oldest first), to
    /// restart with.
    held_layout: Vec<Layout>,
    /// The layout it read with when it crashed (as the node persists it).
    held_reading: Option<LayoutStamp>,
    /// Removed from the cluster for good (a replace): never restarted, its
    /// store no longer checked.
    retired: bool,
    /// Bumped when the node crashes, so that operations waiting on it end.
    life: watch::Sender<u64>,
    /// Counters of earlier lives.
    totals: Totals,
}

/// K nodes running the real node code (membership, replication, hinted
/// handoff, anti-entropy) over one [`MemNetwork`], on tokio's paused clock.
///
/// Must be used inside a current-thread runtime with paused time (see
/// [`crate::runtime`]); then the same seed and the same calls give the
/// same run.
///
/// - A **crash** is [`Node::shutdown`] (its tasks stop, requests it was
///   serving are dropped) and [`MemNetwork::leave`] (messages in flight to
///   it are lost). Its store is kept: the stores acknowledge a write only
///   once it is durable, as `Durability::Always` or `Group` do on disk, so
///   a crash loses only what was not yet acknowledged — requests in its
///   inbound queue, replies not yet sent, replication still in flight —
///   never a write it reported stored. (The stores themselves run with
///   `Durability::None`, which in memory means the same and keeps every
///   run on one thread.) Background work the dead node spawned outside its
///   task set (the tail of a write after its quorum, read repair) may
///   still finish; it can only merge states into replicas, like a message
///   that was already on its way.
/// - A **restart** starts a new [`Node`] over the same store with a greater
///   membership generation and the layout it held, and joins the network
///   again; it is introduced to every other node as a seed.
/// - A **wipe** crashes the node if it runs, gives it an empty store and
///   restarts it with the same id and no layout (it pulls the layout from
///   its peers).
pub struct Cluster {
    config: ClusterConfig,
    network: MemNetwork,
    epoch: Instant,
    rng: Mutex<SimRng>,
    slots: Mutex<Vec<Slot>>,
    recorder: Recorder,
    traffic: Arc<Traffic>,
    /// The cluster between fault events, for the availability rule.
    epochs: Mutex<Vec<Epoch>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("nodes", &self.config.nodes)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

fn recover<G>(r: std::result::Result<G, PoisonError<G>>) -> G {
    // Slots and the generator are replaced field by field between awaits;
    // a panicking test has already failed.
    r.unwrap_or_else(PoisonError::into_inner)
}

impl Cluster {
    /// Starts `config.nodes` nodes (ids 1..=K) and forms the cluster: every
    /// node is given node 1 as its seed; once node 1 sees all of them up, it
    /// stages a join of each, plans and commits the first layout, and the
    /// cluster waits until every node holds it. Everything random derives
    /// from `seed`; fault and lifecycle events go to `recorder`.
    ///
    /// # Errors
    /// [`Error::Setup`] if the cluster does not form within
    /// `config.form_within` (virtual).
    pub async fn start(config: ClusterConfig, seed: u64, recorder: Recorder) -> Result<Arc<Self>> {
        let mut rng = SimRng::new(seed);
        let network = MemNetwork::new(rng.next_u64());
        network.set_faults(Faults {
            delay: config.base_delay,
            ..Faults::default()
        });
        let store_config = StoreConfig {
            partitions: config.partitions,
            durability: Durability::None,
            merkle_shape: config.merkle_shape,
            ..StoreConfig::default()
        };
        let mut slots = Vec::with_capacity(config.nodes + config.spares);
        for i in 0..config.nodes + config.spares {
            let n = i as u64 + 1;
            let zone = match config.zones {
                0 => n,
                zones => (i % zones) as u64 + 1,
            };
            slots.push(Slot {
                id: NodeId::new(n),
                zone: ZoneName::new(format!("z{zone}")).map_err(|e| Error::Setup(e.to_string()))?,
                store: Arc::new(
                    MemStore::new(store_config).map_err(|e| Error::Setup(e.to_string()))?,
                ),
                node: None,
                generation: 0,
                held_layout: Vec::new(),
                held_reading: None,
                retired: false,
                life: watch::channel(0).0,
                totals: Totals::default(),
            });
        }
        let cluster = Arc::new(Self {
            config,
            network,
            epoch: Instant::now(),
            rng: Mutex::new(rng),
            slots: Mutex::new(slots),
            recorder,
            traffic: Arc::new(Traffic::default()),
            epochs: Mutex::new(Vec::new()),
        });
        let first = cluster.id(0);
        for i in 0..cluster.len() {
            let seeds = if i == 0 {
                Vec::new()
            } else {
                vec![first.to_string()]
            };
            cluster.launch(i, seeds, Vec::new(), None)?;
        }
        cluster.form().await?;
        cluster.record_event("cluster formed");
        cluster.record_epoch();
        Ok(cluster)
    }

    /// Records the cluster as it is now (who runs, which links are up,
    /// whether messages are lost, the layout if one alone is in use): a
    /// fault event just changed it. See [`crate::availability`].
    pub fn record_epoch(&self) {
        let n = self.len();
        let ids = self.ids();
        let running_now = self.running();
        let running: Vec<bool> = (0..n).map(|i| running_now.contains(&i)).collect();
        let links = ids
            .iter()
            .map(|&a| ids.iter().map(|&b| self.network.link_up(a, b)).collect())
            .collect();
        let faults = self.network.faults();
        let calm = faults.drop == 0.0 && faults.duplicate == 0.0;
        // The routing every running node uses, if they all use the same.
        let mut routings = (0..n)
            .filter(|&i| running[i])
            .map(|i| self.node(i).and_then(|node| node.membership().routing()));
        let first = routings.next().flatten();
        let routing = first.filter(|r| routings.all(|other| other.as_ref() == Some(r)));
        let epoch = Epoch {
            at: self.now(),
            ids,
            running,
            links,
            calm,
            routing,
        };
        recover(self.epochs.lock()).push(epoch);
    }

    /// The epochs recorded so far, in time order.
    pub fn epochs(&self) -> Vec<Epoch> {
        recover(self.epochs.lock()).clone()
    }

    async fn form(&self) -> Result<()> {
        let within = self.config.form_within;
        let ids = self.ids();
        let seen_all = |c: &Self| {
            c.node(0).is_some_and(|n| {
                ids.iter().all(|&id| {
                    n.membership().with(|core, now| core.is_up(id, now)) || id == c.id(0)
                })
            })
        };
        if !self.wait_until(within, seen_all).await {
            return Err(Error::Setup("node 1 did not see every node up".to_owned()));
        }
        let admin = self
            .node(0)
            .ok_or_else(|| Error::Setup("node 1 is not running".to_owned()))?;
        let admin = admin.membership();
        for &id in ids.iter().take(self.config.nodes) {
            admin
                .with(|core, _| core.stage(Change::Join(id)))
                .map_err(|e| Error::Setup(e.to_string()))?;
        }
        let plan = admin
            .with(|core, _| core.plan())
            .map_err(|e| Error::Setup(e.to_string()))?;
        admin
            .commit(plan)
            .map_err(|e| Error::Setup(e.to_string()))?;
        if !self.wait_until(within, Self::all_up).await {
            return Err(Error::Setup(
                "the first layout did not reach every node".to_owned(),
            ));
        }
        Ok(())
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        recover(self.slots.lock())
    }

    /// Starts node `i` over its store, with `seeds` and `layout`.
    fn launch(
        &self,
        i: usize,
        seeds: Vec<String>,
        mut history: Vec<Layout>,
        reading: Option<LayoutStamp>,
    ) -> Result<()> {
        let layout = history.pop();
        let wall = self.wall_ms();
        let rng_seed = recover(self.rng.lock()).next_u64();
        let mut slots = self.slots();
        let slot = slots
            .get_mut(i)
            .ok_or_else(|| Error::Setup(format!("no node {i}")))?;
        // Greater than the previous life's, as the wall clock would be.
        slot.generation = (slot.generation + 1).max(wall);
        let me = NodeInfo {
            id: slot.id,
            peer_addr: slot.id.to_string(),
            client_addrs: Vec::new(),
            zone: slot.zone.clone(),
            capacity: 100,
        };
        let mut membership = self.config.membership.clone();
        membership.ring = gyre_ring::RingConfig {
            partitions: self.config.partitions,
            replication: self.config.replication,
        };
        // What the node recorded with its data that the simulator does not
        // hold for it: whether it was removed.
        let removed = gyre_node::boot(&slot.store, slot.id)
            .map_err(|e| Error::Setup(e.to_string()))?
            .removed;
        let core = Membership::new(me, slot.generation, layout, membership, rng_seed)
            .map_err(|e| Error::Setup(e.to_string()))?
            .with_older(history)
            .with_reading(reading)
            .with_self_removed(removed);
        let replica = Replica::new(
            slot.id,
            Arc::clone(&slot.store),
            self.config.replica.clone(),
        )
        .map_err(|e| Error::Setup(e.to_string()))?;
        let (transport, inbound) = self.network.join(slot.id);
        let config: NodeConfig = self.config.node.clone();
        let transport = SimTransport::new(
            transport,
            Arc::clone(&self.traffic),
            self.config.duplicate_forwards,
        );
        slot.node = Some(Node::start(
            core, replica, transport, inbound, seeds, wall, config,
        ));
        Ok(())
    }

    /// Records an event in the run's history, at the current virtual time.
    pub fn record_event(&self, what: impl Into<String>) {
        self.recorder.event(self.now(), what);
    }

    /// The settings the cluster runs with.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// What the nodes asked each other so far, by request kind.
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// The primaries of `key` of `bucket` (default properties) under the
    /// newest layout, in preference order.
    pub fn primaries(&self, bucket: &BucketName, key: &Key) -> Vec<NodeId> {
        self.layout()
            .and_then(|l| {
                gyre_replication::route::primaries(&l, bucket, key, &BucketProps::default()).ok()
            })
            .unwrap_or_default()
    }

    /// What node `i`'s store holds for `key` of `bucket` (also while the
    /// node is crashed).
    pub fn replica_state(
        &self,
        i: usize,
        bucket: &BucketName,
        key: &Key,
    ) -> Option<gyre_storage::Object> {
        let store = self.store(i)?;
        store
            .get(&ObjectId::new(bucket.clone(), key.clone()))
            .ok()
            .flatten()
    }

    /// Snapshots every replica ([`Cluster::snapshot`]) and checks `history`
    /// against it ([`crate::check`]).
    pub fn check(
        &self,
        history: &crate::History,
        bucket: &BucketName,
        keys: &[Key],
    ) -> crate::Check {
        crate::checker::check(history, &self.snapshot(bucket, keys))
    }

    /// The network (to inject faults directly).
    pub fn network(&self) -> &MemNetwork {
        &self.network
    }

    /// How many nodes (running or not).
    pub fn len(&self) -> usize {
        self.slots().len()
    }

    /// Whether the cluster has no node at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id of node `i` (`NodeId::new(i + 1)`).
    pub fn id(&self, i: usize) -> NodeId {
        NodeId::new(i as u64 + 1)
    }

    /// Every node's id, in order.
    pub fn ids(&self) -> Vec<NodeId> {
        self.slots().iter().map(|s| s.id).collect()
    }

    /// The zone of node `i`.
    pub fn zone(&self, i: usize) -> Option<ZoneName> {
        self.slots().get(i).map(|s| s.zone.clone())
    }

    /// The index of the node with `id`.
    pub fn index_of(&self, id: NodeId) -> Option<usize> {
        self.slots().iter().position(|s| s.id == id)
    }

    /// Node `i`, unless it is crashed.
    pub fn node(&self, i: usize) -> Option<Arc<SimNode>> {
        self.slots().get(i).and_then(|s| s.node.clone())
    }

    /// Node `i` and a watch that changes when it crashes.
    pub(crate) fn handle(&self, i: usize) -> Option<(Arc<SimNode>, watch::Receiver<u64>)> {
        let slots = self.slots();
        let slot = slots.get(i)?;
        Some((slot.node.clone()?, slot.life.subscribe()))
    }

    /// The nodes running now, by index.
    pub fn running(&self) -> Vec<usize> {
        self.slots()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.node.is_some())
            .map(|(i, _)| i)
            .collect()
    }

    /// Node `i`'s store (also while it is crashed).
    pub fn store(&self, i: usize) -> Option<SimStore> {
        self.slots().get(i).map(|s| Arc::clone(&s.store))
    }

    /// Virtual time since the cluster started.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Virtual wall-clock milliseconds (what the nodes are told).
    pub fn wall_ms(&self) -> u64 {
        WALL_BASE_MS + self.now().as_millis() as u64
    }

    /// The newest layout any running node holds.
    pub fn layout(&self) -> Option<Arc<Layout>> {
        self.slots()
            .iter()
            .filter_map(|s| s.node.as_ref()?.membership().layout())
            .max_by_key(|l| l.version())
    }

    /// Replication counters summed over every node and every life.
    pub fn totals(&self) -> Totals {
        let slots = self.slots();
        let mut t = Totals::default();
        for s in slots.iter() {
            t.fallbacks += s.totals.fallbacks;
            t.hints_delivered += s.totals.hints_delivered;
            t.read_repairs += s.totals.read_repairs;
            t.ae_keys += s.totals.ae_keys;
            t.ae_sessions += s.totals.ae_sessions;
            t.unavailable += s.totals.unavailable;
            if let Some(n) = &s.node {
                t.add(n);
            }
        }
        t
    }

    /// Crashes node `i`; returns whether it was running.
    pub async fn crash(&self, i: usize) -> bool {
        let node = {
            let mut slots = self.slots();
            let Some(slot) = slots.get_mut(i) else {
                return false;
            };
            let Some(node) = slot.node.take() else {
                return false;
            };
            (slot.held_layout, slot.held_reading) = node.membership().with(|core, _| {
                (
                    core.history().into_iter().cloned().collect(),
                    core.state().reading,
                )
            });
            slot.totals.add(&node);
            slot.life.send_modify(|l| *l += 1);
            node
        };
        let id = self.id(i);
        self.network.leave(id);
        node.shutdown().await;
        self.record_event(format!("crash {id}"));
        true
    }

    /// Restarts crashed node `i` over its store with the layout it held;
    /// returns whether it was crashed.
    ///
    /// # Errors
    /// [`Error::Setup`] if the node cannot be built.
    pub fn restart(&self, i: usize) -> Result<bool> {
        let (layout, reading, running) = {
            let slots = self.slots();
            let Some(slot) = slots.get(i) else {
                return Ok(false);
            };
            (
                slot.held_layout.clone(),
                slot.held_reading,
                slot.node.is_some() || slot.retired,
            )
        };
        if running {
            return Ok(false);
        }
        let me = self.id(i);
        let seeds = self
            .ids()
            .into_iter()
            .filter(|&id| id != me)
            .map(|id| id.to_string())
            .collect();
        self.launch(i, seeds, layout, reading)?;
        self.record_event(format!("restart {me}"));
        Ok(true)
    }

    /// Wipes node `i`: crashed if it runs, then restarted with the same id,
    /// an empty store and no layout.
    ///
    /// # Errors
    /// [`Error::Setup`] if the node cannot be built.
    pub async fn wipe(&self, i: usize) -> Result<()> {
        self.crash(i).await;
        {
            let mut slots = self.slots();
            let Some(slot) = slots.get_mut(i) else {
                return Ok(());
            };
            let config = *slot.store.config();
            slot.store = Arc::new(MemStore::new(config).map_err(|e| Error::Setup(e.to_string()))?);
            slot.held_layout = Vec::new();
            slot.held_reading = None;
        }
        self.record_event(format!("wipe {}", self.id(i)));
        self.restart(i)?;
        Ok(())
    }

    /// The members of the newest layout any node holds.
    pub fn members(&self) -> Vec<NodeId> {
        self.layout()
            .map(|l| l.members().iter().map(|m| m.id).collect())
            .unwrap_or_default()
    }

    /// Whether node `i` was retired (removed for good by a replace).
    pub fn is_retired(&self, i: usize) -> bool {
        self.slots().get(i).is_some_and(|s| s.retired)
    }

    /// Stages `changes` on a running node that holds the newest layout,
    /// plans and commits there; returns the new layout's version, or why
    /// the change was refused.
    pub fn change(&self, changes: &[Change]) -> std::result::Result<u64, String> {
        let admin = self.admin()?;
        let m = admin.membership();
        m.with(|core, _| {
            core.clear_staged();
            for c in changes {
                core.stage(c.clone())?;
            }
            Ok::<_, gyre_membership::Error>(())
        })
        .map_err(|e| e.to_string())?;
        let plan = m.with(|core, _| core.plan()).map_err(|e| e.to_string())?;
        let version = plan.layout().version();
        m.commit(plan).map_err(|e| e.to_string())?;
        Ok(version)
    }

    /// Undoes the layout change in flight (see
    /// `gyre_membership::Membership::abort_plan`); returns the new layout's
    /// version, or why it was refused.
    pub fn abort_change(&self) -> std::result::Result<u64, String> {
        let admin = self.admin()?;
        admin
            .membership()
            .abort()
            .map(|s| s.version)
            .map_err(|e| e.to_string())
    }

    /// A running node that holds the newest layout.
    fn admin(&self) -> std::result::Result<Arc<SimNode>, String> {
        let newest = self.layout().map(|l| LayoutStamp::of(&l));
        self.running()
            .into_iter()
            .filter_map(|i| self.node(i))
            .find(|n| n.membership().with(|core, _| core.layout_stamp()) == newest)
            .ok_or_else(|| "no running node holds the newest layout".to_owned())
    }

    /// Retires crashed node `i` (after an operator removed it): it is
    /// never restarted, and its store is no longer checked.
    pub fn retire(&self, i: usize) {
        if let Some(slot) = self.slots().get_mut(i)
            && slot.node.is_none()
        {
            slot.retired = true;
        }
    }

    /// What keeps the layouts from being settled: a running node that
    /// still uses older layouts or another newest one, a store that still
    /// holds a partition the newest layout does not give it.
    pub fn unsettled_layouts(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(layout) = self.layout() else {
            return vec!["no node holds a layout".to_owned()];
        };
        let newest = LayoutStamp::of(&layout);
        for i in 0..self.len() {
            if self.is_retired(i) {
                continue;
            }
            let id = self.id(i);
            if let Some(node) = self.node(i) {
                let (stamp, in_use) = node
                    .membership()
                    .with(|core, _| (core.layout_stamp(), core.history().len()));
                if stamp != Some(newest) || in_use != 1 {
                    let transition = node.membership().with(|core, now| core.transition(now));
                    problems.push(format!(
                        "{id} uses {in_use} layouts, the newest {stamp:?} (cluster's {newest}): {transition:?}"
                    ));
                }
            }
            if let Some(store) = self.store(i) {
                let mut stray: Vec<u32> = store
                    .merkle_trees()
                    .into_iter()
                    .filter(|(p, _)| !layout.replicas(*p).contains(&id))
                    .map(|(p, _)| p.get())
                    .collect();
                stray.dedup();
                if !stray.is_empty() {
                    problems.push(format!(
                        "{id} still holds partitions {stray:?} it no longer replicates"
                    ));
                }
            }
        }
        problems
    }

    /// Ends every fault: links heal and message faults return to the base
    /// delay.
    pub fn heal(&self) {
        self.network.heal();
        self.network.set_faults(Faults {
            delay: self.config.base_delay,
            ..Faults::default()
        });
        self.record_event("heal, message faults off");
    }

    /// Restarts every crashed node.
    ///
    /// # Errors
    /// As [`Cluster::restart`].
    pub fn restart_all(&self) -> Result<()> {
        for i in 0..self.len() {
            self.restart(i)?;
        }
        Ok(())
    }

    /// Stops every node (the end of a run).
    pub async fn shutdown(&self) {
        for i in 0..self.len() {
            let node = {
                let mut slots = self.slots();
                let Some(slot) = slots.get_mut(i) else {
                    continue;
                };
                let Some(node) = slot.node.take() else {
                    continue;
                };
                slot.totals.add(&node);
                slot.life.send_modify(|l| *l += 1);
                node
            };
            self.network.leave(self.id(i));
            node.shutdown().await;
        }
    }

    /// Waits (virtual time, re-checking every 50 ms) until `cond` holds;
    /// returns whether it did within `within`.
    pub async fn wait_until(&self, within: Duration, cond: impl Fn(&Self) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether every node (but retired ones) runs, sees every other up,
    /// and holds the same layout.
    pub fn all_up(&self) -> bool {
        let nodes: Vec<Option<Arc<SimNode>>> = self
            .slots()
            .iter()
            .filter(|s| !s.retired)
            .map(|s| s.node.clone())
            .collect();
        let ids: Vec<NodeId> = (0..self.len())
            .filter(|&i| !self.is_retired(i))
            .map(|i| self.id(i))
            .collect();
        let mut stamp = None;
        for node in &nodes {
            let Some(node) = node else { return false };
            let mine = node.membership().with(|core, _| core.layout_stamp());
            if mine.is_none() || (stamp.is_some() && stamp != mine) {
                return false;
            }
            stamp = mine;
            let me = node.membership().id();
            let all = node
                .membership()
                .with(|core, now| ids.iter().all(|&id| id == me || core.is_up(id, now)));
            if !all {
                return false;
            }
        }
        true
    }

    /// Whether node `i` considers node `j` up.
    pub fn sees_up(&self, i: usize, j: usize) -> bool {
        let id = self.id(j);
        self.node(i)
            .is_some_and(|n| n.membership().with(|core, now| core.is_up(id, now)))
    }

    /// Hinted handoff on every running node, in order; returns how many
    /// hints were delivered.
    pub async fn deliver_all_hints(&self) -> u64 {
        let mut delivered = 0;
        for i in 0..self.len() {
            if let Some(node) = self.node(i) {
                delivered += node.replication().deliver_hints().await;
            }
        }
        delivered
    }

    /// Anti-entropy on every running node, in order; returns the summed
    /// stats.
    pub async fn sync_all(&self) -> SyncStats {
        let mut total = SyncStats::default();
        for i in 0..self.len() {
            if let Some(node) = self.node(i) {
                total += node.replication().sync_all().await;
            }
        }
        total
    }

    /// Every replica's state as it is now, for the checker: each of `keys`
    /// (of `bucket`) on each of its primaries under the newest layout,
    /// every partition whose primaries' Merkle roots differ, every hint
    /// left, and every store whose trees disagree with its data. Reads the
    /// stores directly, so crashed nodes count with what they hold.
    pub fn snapshot(&self, bucket: &BucketName, keys: &[Key]) -> Snapshot {
        let mut snap = Snapshot::default();
        let Some(layout) = self.layout() else {
            snap.problems.push("no node holds a layout".to_owned());
            return snap;
        };
        let stores: Vec<(NodeId, SimStore)> = self
            .slots()
            .iter()
            .filter(|s| !s.retired)
            .map(|s| (s.id, Arc::clone(&s.store)))
            .collect();
        let store_of = |id: NodeId| stores.iter().find(|(n, _)| *n == id).map(|(_, s)| s);
        for key in keys {
            let Ok(primaries) =
                gyre_replication::route::primaries(&layout, bucket, key, &BucketProps::default())
            else {
                snap.problems.push(format!("no primaries for {key:?}"));
                continue;
            };
            let id = ObjectId::new(bucket.clone(), key.clone());
            let mut replicas = Vec::new();
            for p in primaries {
                let state = match store_of(p).map(|s| s.get(&id)) {
                    Some(Ok(state)) => state,
                    Some(Err(e)) => {
                        snap.problems.push(format!("{p} cannot read {key:?}: {e}"));
                        None
                    }
                    None => None,
                };
                replicas.push((p, state));
            }
            snap.keys.push(FinalKey {
                key: key.clone(),
                replicas,
            });
        }
        snap.root_mismatches = self.root_mismatches();
        snap.problems.extend(self.unsettled_layouts());
        for (id, store) in &stores {
            let backlog = store.hint_backlog();
            if !backlog.is_empty() {
                snap.hints_left.push((*id, backlog));
            }
            match store.verify_trees() {
                Ok(m) if m.is_empty() => {}
                Ok(m) => snap
                    .problems
                    .push(format!("{id}: trees disagree with data: {m:?}")),
                Err(e) => snap
                    .problems
                    .push(format!("{id}: cannot verify trees: {e}")),
            }
        }
        snap
    }

    /// The partitions whose primaries (for the default n_val, under the
    /// newest layout) have different Merkle roots, each described with its
    /// roots; every partition if no node holds a layout.
    pub fn root_mismatches(&self) -> Vec<String> {
        let Some(layout) = self.layout() else {
            return vec!["no node holds a layout".to_owned()];
        };
        let stores: Vec<(NodeId, SimStore)> = self
            .slots()
            .iter()
            .map(|s| (s.id, Arc::clone(&s.store)))
            .collect();
        let n_val = BucketProps::default().n_val();
        let mut mismatches = Vec::new();
        for partition in layout.partitions().iter() {
            let holders = layout.replicas(partition);
            let holders = &holders[..usize::from(n_val).min(holders.len())];
            let mut roots = Vec::new();
            for &h in holders {
                let store = stores.iter().find(|(n, _)| *n == h).map(|(_, s)| s);
                match store.map(|s| s.merkle_tree(partition, n_val)) {
                    Some(Ok(tree)) => roots.push((h, tree.root())),
                    Some(Err(e)) => mismatches.push(format!("{h}: tree of {partition:?}: {e}")),
                    None => {}
                }
            }
            if roots.windows(2).any(|w| w[0].1 != w[1].1) {
                mismatches.push(format!("partition {partition:?}: roots {roots:x?}"));
            }
        }
        mismatches
    }

    /// Brings the cluster to rest after the faults stopped (see
    /// [`SettleConfig`]); returns how long after the call it converged, or
    /// `None` if it did not within `settle.within`.
    pub async fn settle(
        &self,
        settle: &SettleConfig,
        bucket: &BucketName,
        keys: &[Key],
    ) -> Option<Duration> {
        let start = Instant::now();
        let deadline = start + settle.within;
        self.wait_until(settle.within, Self::all_up).await;
        loop {
            if self.snapshot(bucket, keys).is_converged() {
                // Left alone a while, it must stay converged.
                tokio::time::sleep(settle.quiet).await;
                if self.snapshot(bucket, keys).is_converged() {
                    let after = start.elapsed().saturating_sub(settle.quiet);
                    self.record_event(format!(
                        "converged {:.3}s after the heal",
                        after.as_secs_f64()
                    ));
                    return Some(after);
                }
            }
            if Instant::now() >= deadline {
                self.record_event("did not converge");
                return None;
            }
            if settle.explicit {
                self.deliver_all_hints().await;
                self.sync_all().await;
            }
            tokio::time::sleep(settle.poll).await;
        }
    }
}

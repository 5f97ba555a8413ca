//! [`MembershipService`]: a node's membership core, driven over a
//! transport.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use gyre_membership::{Event, LayoutStamp, Membership, Message, Output, Plan};
use gyre_replication::route::Routing;
use gyre_ring::Layout;
use gyre_types::NodeId;
use gyre_wire::{OneWay, Request, Response};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::drain::{Drain, Routed};
use crate::{ClusterView, Peers};

/// How long a layout pull may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(5);

/// First wait before retrying a seed that could not be reached; doubles up
/// to [`SEED_RETRY_MAX`].
const SEED_RETRY_MIN: Duration = Duration::from_millis(200);
const SEED_RETRY_MAX: Duration = Duration::from_secs(5);

/// Events buffered for slow subscribers before they miss some.
const EVENT_BUFFER: usize = 1024;

/// A node's membership, running: the [`Membership`] core behind a lock,
/// its outputs carried out over a transport.
///
/// - every `gossip_interval` a round ([`Membership::tick`]);
/// - gossip messages from peers go to [`Membership::receive`] (the node's
///   dispatcher calls [`MembershipService::receive`]), and layout pulls are
///   answered from the layout held here ([`MembershipService::answer_pull`]);
/// - seeds are resolved to node ids ([`Peers::discover`]) and introduced,
///   retried with backoff until each answers once;
/// - events are logged and broadcast ([`MembershipService::subscribe`]).
///
/// The lock is never held across an await: sends and pulls run in their own
/// tasks, so a slow peer delays nothing else. Time is tokio's, so under a
/// paused clock (the simulator) the whole service runs on virtual time.
#[derive(Debug)]
pub struct MembershipService<T> {
    core: Mutex<Membership>,
    transport: T,
    epoch: Instant,
    /// Wall-clock milliseconds at `epoch`.
    wall_base_ms: u64,
    /// What replication routes with, and the core's state it was made of.
    routing: RwLock<Option<(RoutingKey, Routing)>>,
    /// The removed ids the core knows (its own included once removed), as
    /// of its last change: what every request checks, read without the
    /// core's lock.
    removed: RwLock<BTreeSet<NodeId>>,
    events: broadcast::Sender<Event>,
    tasks: Mutex<JoinSet<()>>,
    /// The peer address last taught to the transport, per peer.
    learned: Mutex<HashMap<NodeId, String>>,
    /// Writes in flight by the layout they were routed with.
    drain: Arc<Drain>,
}

impl<T: Peers> MembershipService<T> {
    /// Starts the service for `core` on `transport` and introduces `seeds`
    /// as they answer. `wall_ms` is the wall-clock time now (milliseconds
    /// since the Unix epoch). Must run inside a tokio runtime.
    pub fn start(core: Membership, transport: T, seeds: Vec<String>, wall_ms: u64) -> Arc<Self> {
        let interval = core.config().gossip_interval;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let routing = routing_of(&core);
        let removed = core.removed_ids().collect();
        let service = Arc::new(Self {
            core: Mutex::new(core.with_write_drain()),
            transport,
            epoch: Instant::now(),
            wall_base_ms: wall_ms,
            routing: RwLock::new(routing),
            removed: RwLock::new(removed),
            events,
            tasks: Mutex::new(JoinSet::new()),
            learned: Mutex::new(HashMap::new()),
            drain: Arc::default(),
        });
        let weak = Arc::downgrade(&service);
        service.spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(service) = weak.upgrade() else {
                    return;
                };
                let outputs = service.with(Membership::tick);
                service.carry_out(outputs);
            }
        });
        for seed in seeds {
            let weak = Arc::downgrade(&service);
            service.spawn(introduce_seed(weak, seed));
        }
        service
    }

    /// Time since the service started: the core's clock.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.transport.local()
    }

    /// The transport the service gossips over.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Runs `f` on the core with the current time; what it returns is not
    /// carried out (use the dedicated methods for what sends).
    pub fn with<R>(&self, f: impl FnOnce(&mut Membership, Duration) -> R) -> R {
        let now = self.now();
        let mut core = self.lock();
        core.advance(now);
        f(&mut core, now)
    }

    /// Whether this node considers `id` up.
    pub fn is_up(&self, id: NodeId) -> bool {
        self.with(|core, now| core.is_up(id, now))
    }

    /// The newest layout this node holds.
    pub fn layout(&self) -> Option<Arc<Layout>> {
        recover(self.routing.read())
            .as_ref()
            .map(|(_, r)| Arc::clone(r.newest()))
    }

    /// The layouts replication routes with: where reads go, and every
    /// layout writes go to while a change moves data.
    pub fn routing(&self) -> Option<Routing> {
        recover(self.routing.read())
            .as_ref()
            .map(|(_, r)| r.clone())
    }

    /// Tells the core that this node holds every partition `stamp` gives
    /// it (see [`Membership::set_synced`]).
    pub fn set_synced(self: &Arc<Self>, stamp: LayoutStamp) {
        let outputs = self.with(|core, now| core.set_synced(now, stamp));
        self.carry_out(outputs);
    }

    /// Tells the core that this node, left out of the layout, handed off
    /// every partition it held (see [`Membership::set_left`]).
    pub fn set_left(self: &Arc<Self>) {
        let outputs = self.with(|core, now| core.set_left(now));
        self.carry_out(outputs);
    }

    /// Commits a plan that undoes the layout change in flight (see
    /// [`Membership::abort_plan`]); returns the new layout's stamp.
    ///
    /// # Errors
    /// [`gyre_membership::Error::NothingToAbort`] when no change is in
    /// flight; as [`Membership::commit`].
    pub fn abort(self: &Arc<Self>) -> gyre_membership::Result<LayoutStamp> {
        let plan = self.with(|core, _| core.abort_plan())?;
        let stamp = plan.stamp();
        self.commit(plan)?;
        Ok(stamp)
    }

    /// Refreshes the shared routing if the core's layouts changed, and the
    /// removed ids if they did.
    fn refresh_layout(&self) {
        let core = self.lock();
        let key = routing_key(&core);
        let cached = recover(self.routing.read()).as_ref().map(|(k, _)| *k);
        if key != cached {
            *recover(self.routing.write()) = routing_of(&core);
        }
        let changed = {
            let removed = recover(self.removed.read());
            core.removed_ids().count() != removed.len()
                || !core.removed_ids().all(|id| removed.contains(&id))
        };
        if changed {
            *recover(self.removed.write()) = core.removed_ids().collect();
        }
    }

    /// Events from now on: nodes up and down, layouts adopted.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Commits `plan` (made with [`Membership::plan`]) and spreads the new
    /// layout.
    ///
    /// # Errors
    /// As [`Membership::commit`]: a stale plan, for one.
    pub fn commit(self: &Arc<Self>, plan: Plan) -> gyre_membership::Result<()> {
        let outputs = self.with(|core, now| core.commit(now, plan))?;
        self.carry_out(outputs);
        Ok(())
    }

    /// Hands a gossip message from `from` to the core.
    pub fn receive(self: &Arc<Self>, from: NodeId, msg: Message) {
        let outputs = self.with(|core, now| core.receive(now, from, msg));
        self.carry_out(outputs);
    }

    /// The answer to a layout pull: this node's layout history if its
    /// newest layout is newer than `have`.
    pub fn answer_pull(&self, have: Option<LayoutStamp>) -> Response {
        let core = self.lock();
        let newer = core.layout_stamp().is_some_and(|mine| Some(mine) > have);
        let history = if newer {
            core.history().into_iter().cloned().collect()
        } else {
            Vec::new()
        };
        Response::Layout(history)
    }

    /// Stops every task of the service.
    pub async fn shutdown(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks());
        tasks.shutdown().await;
    }

    fn lock(&self) -> MutexGuard<'_, Membership> {
        // The core's methods leave it consistent between calls; a panic in
        // one cannot leave it half-updated in a way a later call trusts.
        recover(self.core.lock())
    }

    fn tasks(&self) -> MutexGuard<'_, JoinSet<()>> {
        recover(self.tasks.lock())
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks();
        // Reap finished tasks so the set does not grow with every send.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Carries out what the core asked for.
    fn carry_out(self: &Arc<Self>, outputs: Vec<Output>) {
        self.refresh_layout();
        for output in outputs {
            match output {
                Output::Send { to, msg } => {
                    // Without a gossiped address the transport may still
                    // know one: where the peer last connected from.
                    // Only a changed address is taught: the transport may
                    // know a better one meanwhile (where a restarted peer
                    // connected from, before its new state reached us), and
                    // the gossiped one of its previous life must not
                    // overwrite it.
                    let gossiped = self.lock().peer_addr(to).map(str::to_owned);
                    let addr = gossiped.filter(|a| {
                        let mut learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
                        learned.insert(to, a.clone()).as_ref() != Some(a)
                    });
                    let transport = self.transport.clone();
                    self.spawn(async move {
                        if let Some(addr) = addr {
                            transport.learn(to, &addr).await;
                        }
                        if let Err(e) = transport.send(to, OneWay::Gossip(msg)).await {
                            tracing::debug!(peer = %to, error = %e, "gossip not sent");
                        }
                    });
                }
                Output::PullLayout { from, stamp } => {
                    let weak = Arc::downgrade(self);
                    self.spawn(pull_layout(weak, from, stamp));
                }
                Output::Event(event) => {
                    if let Event::LayoutChanged(stamp) = event {
                        // Say so once what was routed with older ones is done.
                        let weak = Arc::downgrade(self);
                        let drain = Arc::clone(&self.drain);
                        self.spawn(async move {
                            drain.older_done(stamp.version).await;
                            if let Some(s) = weak.upgrade() {
                                let outputs = s.with(|core, now| core.writes_drained(now, stamp));
                                s.carry_out(outputs);
                            }
                        });
                    }
                    log(&event);
                    let _ = self.events.send(event);
                }
            }
        }
    }
}

fn log(event: &Event) {
    match event {
        Event::Up(id) => tracing::info!(node = %id, "node up"),
        Event::Down(id) => tracing::warn!(node = %id, "node down"),
        Event::SelfRemoved => tracing::error!("{}", crate::REMOVED_ADVICE),
        Event::LayoutRefused(stamp) => tracing::error!(%stamp, "refused a layout of another ring"),
        Event::LayoutChanged(stamp) => tracing::info!(%stamp, "layout adopted"),
        Event::Left => tracing::warn!(
            "this node left the cluster: every partition it held was handed off to its new \
             owners; it can be stopped"
        ),
        Event::WordChanged(id) => tracing::debug!(node = %id, "a peer's word on a change"),
        other => tracing::info!(event = ?other, "membership"),
    }
}

/// Asks `from` for its layout (advertised as `stamp`) and adopts it.
async fn pull_layout<T: Peers>(
    service: std::sync::Weak<MembershipService<T>>,
    from: NodeId,
    stamp: LayoutStamp,
) {
    let Some(s) = service.upgrade() else { return };
    let have = s.lock().layout_stamp();
    let transport = s.transport.clone();
    drop(s);
    let answer = transport
        .request(from, Request::PullLayout { have }, PULL_TIMEOUT)
        .await;
    let Some(s) = service.upgrade() else { return };
    match answer {
        Ok(Response::Layout(history)) if !history.is_empty() => {
            let outputs = s.with(|core, now| core.history_received(now, history));
            s.carry_out(outputs);
        }
        Ok(other) => {
            tracing::debug!(peer = %from, %stamp, answer = ?other, "layout pull brought nothing");
        }
        Err(e) => tracing::debug!(peer = %from, %stamp, error = %e, "layout pull failed"),
    }
}

/// Resolves a seed to its node and introduces it, retrying with backoff
/// until it answers once.
async fn introduce_seed<T: Peers>(service: std::sync::Weak<MembershipService<T>>, seed: String) {
    let mut wait = SEED_RETRY_MIN;
    loop {
        let Some(transport) = service.upgrade().map(|s| s.transport.clone()) else {
            return;
        };
        match transport.discover(&seed).await {
            Ok(id) => {
                let Some(s) = service.upgrade() else { return };
                s.lock().introduce(id, seed.clone());
                tracing::info!(%seed, node = %id, "seed reached");
                return;
            }
            Err(e) => {
                tracing::warn!(%seed, error = %e, ?wait, "seed unreachable; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(SEED_RETRY_MAX);
            }
        }
    }
}

/// What the routing is made of: the newest layout, the layout reads use,
/// and how many layouts are in use.
type RoutingKey = (LayoutStamp, LayoutStamp, usize);

fn routing_key(core: &Membership) -> Option<RoutingKey> {
    let read = core.read_layout().map(LayoutStamp::of)?;
    Some((core.layout_stamp()?, read, core.history().len()))
}

fn routing_of(core: &Membership) -> Option<(RoutingKey, Routing)> {
    let key = routing_key(core)?;
    let read = Arc::new(core.read_layout()?.clone());
    let write = core
        .history()
        .into_iter()
        .map(|l| {
            if LayoutStamp::of(l) == key.1 {
                Arc::clone(&read)
            } else {
                Arc::new(l.clone())
            }
        })
        .collect();
    Some((key, Routing { read, write }))
}

fn recover<G>(r: Result<G, std::sync::PoisonError<G>>) -> G {
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<T: Peers> ClusterView for MembershipService<T> {
    fn routing(&self) -> Option<Routing> {
        MembershipService::routing(self)
    }

    fn layout(&self) -> Option<Arc<Layout>> {
        MembershipService::layout(self)
    }

    fn is_up(&self, id: NodeId) -> bool {
        id == self.id() || MembershipService::is_up(self, id)
    }

    fn routed(&self, version: u64) -> Option<Routed> {
        Some(self.drain.routed(version))
    }

    fn is_removed(&self, id: NodeId) -> bool {
        recover(self.removed.read()).contains(&id)
    }

    fn unresponsive(&self, id: NodeId) {
        for output in self.with(|core, now| core.unresponsive(now, id)) {
            if let Output::Event(event) = output {
                tracing::warn!(node = %id, "a request to it went unanswered");
                log(&event);
                let _ = self.events.send(event);
            }
        }
    }

    fn wall_ms(&self) -> u64 {
        self.wall_base_ms + self.epoch.elapsed().as_millis() as u64
    }
}

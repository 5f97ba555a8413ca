//! [`MembershipService`]: a node's membership core, driven over QUIC.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gyre_membership::{Event, LayoutStamp, Membership, Message, Output, Plan};
use gyre_ring::Layout;
use gyre_transport::{Inbound, QuicTransport, Transport};
use gyre_types::NodeId;
use gyre_wire::{ErrorKind, OneWay, RemoteError, Request, Response};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;

/// How long a layout pull may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(5);

/// First wait before retrying a seed that could not be reached; doubles up
/// to [`SEED_RETRY_MAX`].
const SEED_RETRY_MIN: Duration = Duration::from_millis(200);
const SEED_RETRY_MAX: Duration = Duration::from_secs(5);

/// Events buffered for slow subscribers before they miss some.
const EVENT_BUFFER: usize = 1024;

/// A node's membership, running: the [`Membership`] core behind a lock,
/// its outputs carried out over a [`QuicTransport`].
///
/// - every `gossip_interval` a round ([`Membership::tick`]);
/// - gossip messages from peers go to [`Membership::receive`], and layout
///   pulls are answered from the layout held here;
/// - seed addresses are resolved to node ids ([`QuicTransport::discover`])
///   and introduced, retried with backoff until each answers once;
/// - events are logged and broadcast ([`MembershipService::subscribe`]).
///
/// The lock is never held across an await: sends and pulls run in their own
/// tasks, so a slow peer delays nothing else.
#[derive(Debug)]
pub struct MembershipService {
    core: Mutex<Membership>,
    transport: QuicTransport,
    epoch: Instant,
    events: broadcast::Sender<Event>,
    tasks: Mutex<JoinSet<()>>,
}

impl MembershipService {
    /// Starts the service for `core` on `transport`, serving what arrives on
    /// `inbound`, and introduces `seeds` as they answer. Must run inside a
    /// tokio runtime.
    ///
    /// Until replication serves them, requests other than pings and layout
    /// pulls are answered with a [`ErrorKind::BadRequest`] error.
    pub fn start(
        core: Membership,
        transport: QuicTransport,
        inbound: mpsc::Receiver<Inbound>,
        seeds: Vec<SocketAddr>,
    ) -> Arc<Self> {
        let interval = core.config().gossip_interval;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let service = Arc::new(Self {
            core: Mutex::new(core),
            transport,
            epoch: Instant::now(),
            events,
            tasks: Mutex::new(JoinSet::new()),
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
        let weak = Arc::downgrade(&service);
        service.spawn(serve(weak, inbound));
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
    pub fn transport(&self) -> &QuicTransport {
        &self.transport
    }

    /// Runs `f` on the core with the current time; what it returns is not
    /// carried out (use the dedicated methods for what sends).
    pub fn with<R>(&self, f: impl FnOnce(&mut Membership, Duration) -> R) -> R {
        let now = self.now();
        f(&mut self.lock(), now)
    }

    /// Whether this node considers `id` up.
    pub fn is_up(&self, id: NodeId) -> bool {
        self.with(|core, now| core.is_up(id, now))
    }

    /// The layout this node holds.
    pub fn layout(&self) -> Option<Layout> {
        self.lock().layout().cloned()
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

    /// The answer to a layout pull: this node's layout if it is newer than
    /// `have`.
    pub fn answer_pull(&self, have: Option<LayoutStamp>) -> Response {
        let core = self.lock();
        let newer = core.layout_stamp().is_some_and(|mine| Some(mine) > have);
        Response::Layout(
            newer
                .then(|| core.layout().cloned().map(Box::new))
                .flatten(),
        )
    }

    /// Stops every task of the service and closes the transport.
    pub async fn shutdown(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks());
        tasks.shutdown().await;
        self.transport.shutdown().await;
    }

    fn lock(&self) -> MutexGuard<'_, Membership> {
        // The core's methods leave it consistent between calls; a panic in
        // one cannot leave it half-updated in a way a later call trusts.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tasks(&self) -> MutexGuard<'_, JoinSet<()>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks();
        // Reap finished tasks so the set does not grow with every send.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Carries out what the core asked for.
    fn carry_out(self: &Arc<Self>, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { to, msg } => {
                    // Without a gossiped address the transport may still
                    // know one: where the peer last connected from.
                    let addr = self.lock().peer_addr(to).map(str::to_owned);
                    let transport = self.transport.clone();
                    self.spawn(async move {
                        if let Some(addr) = addr {
                            match tokio::net::lookup_host(&addr).await.map(|mut a| a.next()) {
                                Ok(Some(at)) => transport.set_peer_addr(to, at),
                                _ => tracing::debug!(peer = %to, %addr, "cannot resolve a peer's address"),
                            }
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
        Event::SelfRemoved => tracing::error!("this node's id was removed by an operator"),
        Event::LayoutRefused(stamp) => tracing::error!(%stamp, "refused a layout of another ring"),
        Event::LayoutChanged(stamp) => tracing::info!(%stamp, "layout adopted"),
        other => tracing::info!(event = ?other, "membership"),
    }
}

/// Asks `from` for its layout (advertised as `stamp`) and adopts it.
async fn pull_layout(
    service: std::sync::Weak<MembershipService>,
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
        Ok(Response::Layout(Some(layout))) => {
            let outputs = s.with(|core, now| core.layout_received(now, *layout));
            s.carry_out(outputs);
        }
        Ok(other) => {
            tracing::debug!(peer = %from, %stamp, answer = ?other, "layout pull brought nothing");
        }
        Err(e) => tracing::debug!(peer = %from, %stamp, error = %e, "layout pull failed"),
    }
}

/// Resolves a seed address to its node and introduces it, retrying with
/// backoff until it answers once.
async fn introduce_seed(service: std::sync::Weak<MembershipService>, seed: SocketAddr) {
    let mut wait = SEED_RETRY_MIN;
    loop {
        let Some(transport) = service.upgrade().map(|s| s.transport.clone()) else {
            return;
        };
        match transport.discover(seed).await {
            Ok(id) => {
                let Some(s) = service.upgrade() else { return };
                s.lock().introduce(id, seed.to_string());
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

/// Serves what peers send: gossip to the core, layout pulls and pings
/// answered; anything else refused until replication serves it.
async fn serve(service: std::sync::Weak<MembershipService>, mut inbound: mpsc::Receiver<Inbound>) {
    while let Some(message) = inbound.recv().await {
        let Some(s) = service.upgrade() else { return };
        match message {
            Inbound::Message {
                from,
                message: OneWay::Gossip(msg),
            } => s.receive(from, msg),
            Inbound::Request { request, reply, .. } => reply.respond(match request {
                Request::Ping => Response::Pong,
                Request::PullLayout { have } => s.answer_pull(have),
                other => Response::Error(RemoteError {
                    kind: ErrorKind::BadRequest,
                    message: format!("not served by this node: {}", kind(&other)),
                }),
            }),
            Inbound::Stream { from, .. } => {
                tracing::warn!(peer = %from, "a bulk stream this node does not serve; dropped");
            }
        }
    }
}

/// A request's name, for errors.
fn kind(request: &Request) -> &'static str {
    match request {
        Request::Ping => "ping",
        Request::ReplicaGet { .. } => "replica get",
        Request::ReplicaPut { .. } => "replica put",
        Request::Coordinate { .. } => "coordinate",
        Request::DeliverHints { .. } => "deliver hints",
        Request::Merkle { .. } => "merkle",
        Request::ListKeys { .. } => "list keys",
        Request::Fetch { .. } => "fetch",
        Request::PullLayout { .. } => "pull layout",
    }
}

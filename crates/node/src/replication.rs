//! [`ReplicationService`]: the replication core driven over a transport.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gyre_replication::route::Routing;
use gyre_replication::{
    Direction, Error, HintBatch, ReadAnswer, ReadOp, Replica, Result, RttEstimator, Send,
    SyncSession, SyncStats, SyncStep, WriteOp, counter, route,
};
use gyre_ring::Layout;
use gyre_storage::Store;
use gyre_types::{BucketName, BucketProps, ConflictMode, Key, KeyHash, NodeId, PartitionId};
use gyre_versioning::{Context, Policy};
use gyre_wire::{
    ClientOp, ClientReply, ErrorKind, Expiry, Item, Object, RemoteError, Request, Response,
};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;

use crate::ClusterView;
use crate::background::{BACKGROUND_THREADS, Background, Offload};
use crate::outbound::Outbound;

/// A read's answer: the live values (siblings) and the context to write
/// with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadReply {
    /// The siblings' values; empty if the key is absent or deleted.
    pub values: Vec<Bytes>,
    /// The opaque context (encoded [`Context`]).
    pub context: Bytes,
}

/// Counters of what replication did, for metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Writes that went to a fallback as a hint (sloppy quorum).
    pub fallbacks: std::sync::atomic::AtomicU64,
    /// Hints delivered to their owners.
    pub hints_delivered: std::sync::atomic::AtomicU64,
    /// Replicas repaired on reads.
    pub read_repairs: std::sync::atomic::AtomicU64,
    /// Tombstones purged (purge requests sent).
    pub purges: std::sync::atomic::AtomicU64,
    /// Of those, states that held expired values.
    pub expired_purged: std::sync::atomic::AtomicU64,
    /// Keys the expiry and tombstone sweep read because they looked
    /// collectable (see [`ReplicationService::sweep`]).
    pub swept: std::sync::atomic::AtomicU64,
    /// Keys synced by anti-entropy.
    pub ae_keys: std::sync::atomic::AtomicU64,
    /// Anti-entropy sessions that compared their trees to the end.
    pub ae_sessions: std::sync::atomic::AtomicU64,
    /// Anti-entropy sessions that failed (the peer failed or answered
    /// nonsense).
    pub ae_failures: std::sync::atomic::AtomicU64,
    /// Operations refused for lack of replicas.
    pub unavailable: std::sync::atomic::AtomicU64,
    /// Replica requests that did not answer within their hedge delay, so
    /// that a fallback (a write) or the next primary (a forwarded
    /// operation) was asked beside them.
    pub hedged: std::sync::atomic::AtomicU64,
}

fn bump(counter: &std::sync::atomic::AtomicU64, by: u64) {
    counter.fetch_add(by, std::sync::atomic::Ordering::Relaxed);
}

/// A node's replication, running: client operations coordinated here or
/// forwarded to a primary, peers' replica requests served, hinted handoff
/// and anti-entropy in the background.
pub struct ReplicationService<T, S> {
    replica: Replica<S>,
    transport: T,
    pub(crate) view: Arc<dyn ClusterView>,
    counters: Counters,
    offload: bool,
    /// Where store work no client waits on runs (handoff's reads, merges
    /// and drops), if store calls are offloaded at all.
    background: Option<Background>,
    outbound: Outbound,
    /// Round trips per peer: when a request to it counts as slow.
    rtt: std::sync::Mutex<HashMap<NodeId, RttEstimator>>,
    /// The next ticket a forwarded write gets (starting from this life's
    /// wall clock, so no ticket of an earlier life comes back).
    next_ticket: std::sync::atomic::AtomicU64,
    /// Forwarded writes in flight, by ticket: the primary permitted to
    /// start each, if one asked yet.
    permits: std::sync::Mutex<HashMap<u64, Option<NodeId>>>,
}

impl<T, S> std::fmt::Debug for ReplicationService<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationService").finish_non_exhaustive()
    }
}

impl<T: gyre_transport::Transport, S: Store + 'static> ReplicationService<T, S> {
    /// The service of `replica`, sending over `transport`, routing with what
    /// `view` says of the cluster. With `offload`, store calls that may wait
    /// for the disk (every write, Merkle and key scans) run on tokio's
    /// blocking threads, so an fsync holds up no other task and concurrent
    /// writers share group commits; without, they run in place (in-memory
    /// stores, and the simulator, whose replay needs one thread).
    ///
    /// Offloaded, the store work of layout changes runs on threads of its
    /// own at a lower CPU priority (`Offload::Threads::background_nice`),
    /// so that client requests get the CPU first (on tokio's blocking
    /// threads, at the node's priority, if the OS refuses more threads).
    pub fn new(
        replica: Replica<S>,
        transport: T,
        view: Arc<dyn ClusterView>,
        offload: Offload,
    ) -> Arc<Self> {
        let first_ticket = view.wall_ms() << 20;
        let background = match offload {
            Offload::InPlace => None,
            Offload::Threads { background_nice } => {
                match Background::start(BACKGROUND_THREADS, background_nice) {
                    Ok(pool) => Some(pool),
                    Err(e) => {
                        tracing::error!(error = %e, "no background threads: layout changes run at the node's priority");
                        None
                    }
                }
            }
        };
        Arc::new(Self {
            replica,
            transport,
            view,
            counters: Counters::default(),
            offload: offload != Offload::InPlace,
            background,
            outbound: Outbound::new(crate::HandoffConfig::default().max_outbound),
            rtt: std::sync::Mutex::default(),
            next_ticket: std::sync::atomic::AtomicU64::new(first_ticket),
            permits: std::sync::Mutex::default(),
        })
    }

    /// Runs `f` on the replica: on a blocking thread if the service
    /// offloads store calls and `blocks` says this call may wait for the
    /// disk, in place otherwise.
    pub(crate) async fn on_store<R: std::marker::Send + 'static>(
        self: &Arc<Self>,
        blocks: bool,
        f: impl FnOnce(&Replica<S>) -> R + std::marker::Send + 'static,
    ) -> R {
        if !(self.offload && blocks) {
            return f(&self.replica);
        }
        let this = Arc::clone(self);
        match tokio::task::spawn_blocking(move || f(&this.replica)).await {
            Ok(r) => r,
            // The closure panicked: carry the panic on, as if run in place.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Runs `f` on the replica at background priority: store work of a
    /// layout change, which no client waits on. In place if the service
    /// does not offload store calls.
    pub(crate) async fn on_background<R: std::marker::Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Replica<S>) -> R + std::marker::Send + 'static,
    ) -> R {
        let Some(background) = &self.background else {
            return self.on_store(true, f).await;
        };
        let this = Arc::clone(self);
        background.run(move || f(&this.replica)).await
    }

    /// Why this node refuses replica request `request` as routed to the
    /// wrong node (`None`: it serves it), with the routing read once.
    ///
    /// - A replica read (of a key, or a page of keys) of a partition this
    ///   node holds under no layout in use (a read routed with a layout
    ///   retired here, whose partition may be dropped already) is refused,
    ///   not answered "nothing here": the coordinator then counts it as
    ///   failed, never as a replica that holds nothing.
    /// - A replica read or write routed with a layout this node retired
    ///   comes from a coordinator that missed the retirement (one that was
    ///   down or cut off while a change passed its barriers, which do not
    ///   wait for it): its read set may hold replicas that missed writes
    ///   made since, itself among them, and its write set replicas that
    ///   dropped the partition, so it is refused rather than counted. A
    ///   read routed just before its coordinator moved its reads on can
    ///   meet this too, and asks again with the new routing (`get`); a
    ///   write cannot (no node says it routes with a layout before every
    ///   write it routed with an older one is over: `drain.rs`).
    fn wrong_layout(&self, request: &Request) -> Option<String> {
        let (read_of, routed_with) = match request {
            Request::ReplicaGet {
                layout,
                bucket,
                key,
            }
            | Request::ReplicaDigest {
                layout,
                bucket,
                key,
            } => (Some((bucket, KeyHash::of(bucket, key))), Some(*layout)),
            Request::ScanKeys { bucket, from, .. } => {
                (Some((bucket, KeyHash::from_u64(*from))), None)
            }
            Request::ReplicaPut { layout, .. } => (None, Some(*layout)),
            _ => return None,
        };
        let routing = self.view.routing()?;
        let newest = routing.newest().version();
        if let Some((bucket, hash)) = read_of {
            let n_val = self.replica.props(bucket).n_val();
            let partition = routing.newest().partition_of(hash);
            let me = self.me();
            let holds = routing
                .write
                .iter()
                .any(|l| route::partition_primaries(l, partition, n_val).contains(&me));
            if !holds {
                return Some(format!(
                    "this node holds no replica of partition {} under the layouts it uses (newest: version {newest})",
                    partition.get(),
                ));
            }
        }
        let oldest = routing.write.first().map(|l| l.version())?;
        match routed_with {
            Some(layout) if layout < oldest => Some(format!(
                "routed with layout version {layout}, which this node retired (it uses versions {oldest} to {newest})"
            )),
            _ => None,
        }
    }

    /// Serves a replica request locally (on a blocking thread if it may
    /// wait for the disk). A handoff chunk is served only for this node's
    /// newest layout, so a transfer that a newer layout replaced gets
    /// nothing more.
    ///
    /// A replica write routed with an older layout still in use here is
    /// taken: its coordinator has not adopted the change yet, and the new
    /// replicas it leaves out catch up when they verify against the old
    /// ones, which they do only once every live node routes with the new
    /// layout. One routed with a layout retired here is refused.
    async fn serve_here(self: &Arc<Self>, from: NodeId, request: Request) -> Response {
        if let Some(message) = self.wrong_layout(&request) {
            return Response::Error(RemoteError {
                kind: ErrorKind::WrongLayout,
                message,
            });
        }
        if let Request::HandoffChunk { layout, .. } = &request {
            let newest = self.view.layout();
            if newest.as_ref().map(|l| gyre_membership::LayoutStamp::of(l)) != Some(*layout) {
                return Response::Error(RemoteError {
                    kind: ErrorKind::WrongLayout,
                    message: format!(
                        "routed with another layout than this node's (version {})",
                        newest.map_or(0, |l| l.version())
                    ),
                });
            }
        }
        let chunk_of = match &request {
            Request::HandoffChunk {
                partition, n_val, ..
            } => Some((*partition, *n_val)),
            _ => None,
        };
        if let Some((partition, n_val)) = chunk_of
            && from != self.me()
            && !self.outbound.admit(from, partition, n_val)
        {
            return Response::Error(RemoteError {
                kind: ErrorKind::Busy,
                message: format!(
                    "throttled: this node serves {} partitions to handoff at once",
                    self.outbound.max()
                ),
            });
        }
        let blocks = !matches!(
            request,
            Request::Ping | Request::ReplicaGet { .. } | Request::ReplicaDigest { .. }
        );
        let wall = self.view.wall_ms();
        let response = if chunk_of.is_some() {
            // A handoff chunk: read at background priority.
            self.on_background(move |replica| replica.serve(wall, from, request))
                .await
        } else {
            self.on_store(blocks, move |replica| replica.serve(wall, from, request))
                .await
        };
        if let (Some((partition, n_val)), Response::Chunk { next: None, .. }) =
            (chunk_of, &response)
        {
            self.outbound.finished(from, partition, n_val);
        }
        response
    }

    /// The partitions this node serves to handoff at once: the most, and
    /// how many now.
    pub fn outbound(&self) -> (usize, usize) {
        (self.outbound.max(), self.outbound.active())
    }

    /// Sets the most partitions this node serves to handoff at once.
    pub fn set_max_outbound(&self, max: usize) {
        self.outbound.set_max(max);
    }

    /// The local replica.
    pub fn replica(&self) -> &Replica<S> {
        &self.replica
    }

    /// What replication did so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    fn me(&self) -> NodeId {
        self.replica.id()
    }

    /// Wall-clock milliseconds, as the cluster view tells them.
    pub(crate) fn wall_ms(&self) -> u64 {
        self.view.wall_ms()
    }

    fn routing(&self) -> Result<Routing> {
        self.view.routing().ok_or(Error::NoLayout)
    }

    fn timeout(&self) -> Duration {
        self.replica.config().request_timeout
    }

    /// Sends `request` to `to` (serving it here if `to` is this node).
    pub(crate) async fn ask(
        self: &Arc<Self>,
        to: NodeId,
        request: Request,
    ) -> std::result::Result<Response, String> {
        if to == self.me() {
            return Ok(self.serve_here(to, request).await);
        }
        let sent = Instant::now();
        let answer = self.transport.request(to, request, self.timeout()).await;
        match &answer {
            Ok(_) => self.observe_rtt(to, sent.elapsed()),
            // Evidence for the failure detector, long before phi.
            Err(gyre_transport::Error::Timeout { .. }) => self.view.unresponsive(to),
            Err(_) => {}
        }
        answer.map_err(|e| e.to_string())
    }

    fn observe_rtt(&self, peer: NodeId, rtt: Duration) {
        let config = self.replica.config();
        if let Ok(mut rtts) = self.rtt.lock() {
            rtts.entry(peer)
                .or_insert_with(|| RttEstimator::new(config.hedge_floor, config.hedge_cap))
                .observe(rtt);
        }
    }

    /// How long a request to `peer` may take before it is hedged.
    fn hedge_delay(&self, peer: NodeId) -> Duration {
        let cap = self.replica.config().hedge_cap;
        self.rtt
            .lock()
            .ok()
            .and_then(|rtts| rtts.get(&peer).map(RttEstimator::delay))
            .unwrap_or(cap)
    }

    /// Carries out `sends` concurrently; each answer comes back with its tag.
    fn launch(self: &Arc<Self>, set: &mut Answers, sends: Vec<Send>) {
        for send in sends {
            let this = Arc::clone(self);
            set.spawn(async move { (send.tag, this.ask(send.to, send.request).await) });
        }
    }

    /// Notes when each of `sends` counts as slow: its peer's hedge delay
    /// from now.
    fn arm(&self, slow_at: &mut SlowAt, sends: &[Send]) {
        let now = Instant::now();
        for send in sends {
            slow_at.0.insert(send.tag, now + self.hedge_delay(send.to));
        }
    }

    /// The next answer in `set`, `None` once it is empty. Meanwhile every
    /// request of `op` that turns slow is hedged as `op` says, its new
    /// sends armed and launched into `set` (counted as fallbacks if
    /// `fallbacks`: a write's go to fallbacks).
    async fn next_answer(
        self: &Arc<Self>,
        op: &mut impl Hedged,
        set: &mut Answers,
        slow_at: &mut SlowAt,
        fallbacks: bool,
    ) -> Option<std::result::Result<(usize, std::result::Result<Response, String>), JoinError>>
    {
        loop {
            tokio::select! {
                biased;
                joined = set.join_next() => return joined,
                () = sleep_until_some(slow_at.next(op.in_time())) => {
                    for tag in slow_at.due(op.in_time()) {
                        let more = op.on_slow(tag);
                        bump(&self.counters.hedged, u64::from(!more.is_empty()));
                        if fallbacks {
                            bump(&self.counters.fallbacks, more.len() as u64);
                        }
                        self.arm(slow_at, &more);
                        self.launch(set, more);
                    }
                }
            }
        }
    }

    /// Serves one operation a client (or a forwarding peer) asked for.
    ///
    /// # Errors
    /// [`Error::BadRequest`] (impossible R/W, bad context, oversized value:
    /// nothing written), [`Error::Unavailable`] (too few replicas answered,
    /// here or at the primary it was forwarded to: not confirmed),
    /// [`Error::NoLayout`], [`Error::Storage`].
    pub async fn client(self: &Arc<Self>, op: ClientOp) -> Result<ClientReply> {
        self.route_op(op, None).await
    }

    /// Coordinates `op` here (any read; a write if this node is one of the
    /// key's primaries) or forwards it to a primary. An operation a
    /// peer `forwarded` here is never forwarded again: nodes that route with
    /// different layouts (one reading the new, one the old during a change)
    /// would send it back and forth, and a write still travelling after its
    /// client was told "not confirmed" could land after writes acknowledged
    /// meanwhile. It is coordinated here if this node holds the key under
    /// any layout in use, else refused untouched ([`Error::WrongLayout`]),
    /// so that the forwarder asks the next primary.
    ///
    /// `forwarded` names the forwarder and the write's ticket: a forwarded
    /// write starts only with the forwarder's permit ([`Error::Withdrawn`]
    /// without).
    async fn route_op(
        self: &Arc<Self>,
        op: ClientOp,
        forwarded: Option<Forwarded>,
    ) -> Result<ClientReply> {
        if self.view.is_removed(self.me()) {
            return Err(Error::Removed(self.me()));
        }
        let (bucket, key) = {
            let (bucket, key) = op.target();
            (bucket.clone(), key.clone())
        };
        let routing = self.routing()?;
        let props = self.replica.props(&bucket);
        // Reads, and the choice of a write's coordinator, follow the layout
        // reads use: its replicas hold everything while a change moves data.
        let primaries = route::primaries(&routing.read, &bucket, &key, &props)?;
        // Check the quorum before anything moves.
        let quorum = match &op {
            ClientOp::Get { r, .. } => route::quorum("r", *r, props.r(), props.n_val())?,
            ClientOp::Put { w, .. }
            | ClientOp::Delete { w, .. }
            | ClientOp::Increment { w, .. } => route::quorum("w", *w, props.w(), props.n_val())?,
        };
        if matches!(op, ClientOp::Get { .. }) {
            return self.get(op, &props, quorum, routing, primaries).await;
        }
        let mut route = route::coordinator(self.me(), &primaries, |n| self.view.is_up(n));
        // A node whose store failed (a full disk, a failed fsync) cannot
        // make a write's new version: another primary coordinates it, and
        // this replica is brought level once the node restarts.
        if route == route::Route::Local && forwarded.is_none() && self.replica.store().has_failed()
        {
            route = route::coordinator_elsewhere(self.me(), &primaries, |n| self.view.is_up(n));
        }
        if forwarded.is_some() && route != route::Route::Local {
            let sets = routing.write_sets(&bucket, &key, &props)?;
            if !sets.iter().any(|s| s.contains(&self.me())) {
                return Err(Error::WrongLayout);
            }
            route = route::Route::Local;
        }
        match route {
            route::Route::Local => {
                let permit = forwarded.filter(|f| f.ticket != 0);
                self.coordinate(op, &props, quorum, &routing, &primaries, permit)
                    .await
            }
            route::Route::Forward(candidates) => {
                self.forward(op, routing.newest().version(), candidates)
                    .await
            }
        }
    }

    /// Coordinates read `op` here, whether or not this node holds a
    /// replica of the key. A read mints no dot, so it needs no replica to
    /// coordinate it (Dynamo's client-driven reads): a node that holds none
    /// asks the replicas itself instead of forwarding, one hop and one
    /// coordinator's work less. It reads as a primary routing with the same
    /// layouts would: the same replicas, each of which refuses a read of a
    /// partition it holds under no layout it uses, or routed with a layout
    /// it retired. A read refused because the read layout changed while it
    /// was asked (a change retired the layout it was routed with) asks once
    /// more with the new one.
    async fn get(
        self: &Arc<Self>,
        op: ClientOp,
        props: &BucketProps,
        r: u8,
        routing: Routing,
        primaries: Vec<NodeId>,
    ) -> Result<ClientReply> {
        let read = self
            .coordinate(op.clone(), props, r, &routing, &primaries, None)
            .await;
        if !matches!(read, Err(Error::Unavailable { .. })) {
            return read;
        }
        let now = self.routing()?;
        if now.read.version() == routing.read.version() {
            return read;
        }
        let (bucket, key) = op.target();
        let primaries = route::primaries(&now.read, bucket, key, props)?;
        self.coordinate(op, props, r, &now, &primaries, None).await
    }

    /// Forwards write `op` to the key's primaries, `candidates` in order,
    /// and answers with the first that coordinates it (reads are
    /// coordinated where they arrive).
    ///
    /// A primary that has not answered within its hedge delay (doubling
    /// with each primary asked) does not hold the operation up: the next
    /// one is asked beside it. A write must be applied at most once — a
    /// second coordinator would apply it again under another dot, and a
    /// blind write applied late would supersede writes acknowledged in
    /// between — so a forwarded write
    /// carries a ticket, and a primary starts it only once this node
    /// permits it (`Request::Permit`), which it does for the first primary
    /// to ask and no other. Until one asked, the next primary is asked
    /// after the hedge delay, and a primary that was dead or paused and
    /// asks late is refused (`Withdrawn`: nothing written). Once one was
    /// permitted, its answer is the outcome: if it never comes, the write
    /// is not confirmed (it may exist on that primary).
    async fn forward(
        self: &Arc<Self>,
        op: ClientOp,
        layout: u64,
        candidates: Vec<NodeId>,
    ) -> Result<ClientReply> {
        let started = Instant::now();
        let ticket = self.open_ticket();
        let _close = TicketGuard {
            permits: &self.permits,
            ticket,
        };
        let mut queue: VecDeque<NodeId> = candidates.into_iter().collect();
        let mut pending: JoinSet<(NodeId, gyre_transport::Result<Response>)> = JoinSet::new();
        let mut asked = 0u32;
        let mut tried: Vec<String> = Vec::new();
        // When the next primary may be asked (None: not until an answer).
        let mut next_at = Some(started);
        loop {
            let permitted = self.permitted(ticket);
            if permitted.is_none() && next_at.is_some_and(|at| at <= Instant::now()) {
                next_at = None;
                if let Some(to) = queue.pop_front() {
                    let hedge =
                        (self.hedge_delay(to) * 2u32.saturating_pow(asked)).min(self.timeout());
                    let request = Request::Coordinate {
                        layout,
                        op: op.clone(),
                        ticket,
                    };
                    let this = Arc::clone(self);
                    let timeout = self.timeout() * 2;
                    pending.spawn(async move {
                        (to, this.transport.request(to, request, timeout).await)
                    });
                    asked += 1;
                    if asked > 1 {
                        bump(&self.counters.hedged, 1);
                    }
                    next_at = Some(Instant::now() + hedge);
                }
            }
            if pending.is_empty() && (next_at.is_none() || permitted.is_some()) {
                break;
            }
            let joined = tokio::select! {
                biased;
                joined = pending.join_next(), if !pending.is_empty() => joined,
                () = sleep_until_some(next_at.filter(|_| permitted.is_none())) => continue,
            };
            let Some(Ok((to, answer))) = joined else {
                continue;
            };
            match answer {
                // One error for unavailability, however far it travelled.
                Ok(Response::Client(ClientReply::Unavailable {
                    answered,
                    required,
                    detail,
                })) => {
                    return Err(Error::Unavailable {
                        answered,
                        required,
                        detail,
                    });
                }
                Ok(Response::Client(reply)) => return Ok(reply),
                Ok(Response::Error(e)) if e.kind == ErrorKind::BadRequest => {
                    return Err(Error::BadRequest(e.message));
                }
                Ok(Response::Error(e)) => tried.push(format!("{to}: {}", e.message)),
                Ok(other) => tried.push(format!("{to} answered {other:?}")),
                Err(e) => tried.push(format!("{to}: {e}")),
            }
            if self.permitted(ticket) == Some(to) {
                // It started the write and did not say how it ended: not
                // confirmed, and nobody else may take it.
                tried.push(format!(
                    "{to} started the write and did not say how it ended: it may exist there"
                ));
                break;
            }
            // It never started the write (it would have asked for the
            // permit first): the next primary may take it at once.
            next_at = Some(Instant::now());
        }
        let waited_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            asked,
            ?tried,
            waited_ms,
            "no primary coordinated a forwarded operation"
        );
        Err(Error::Unavailable {
            answered: 0,
            required: 1,
            detail: format!(
                "forwarded to {asked} primaries, waited {waited_ms} ms: {}",
                tried.join("; ")
            ),
        })
    }

    /// A new ticket for a forwarded write, open for a permit.
    fn open_ticket(&self) -> u64 {
        let ticket = self
            .next_ticket
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .max(1);
        if let Ok(mut permits) = self.permits.lock() {
            permits.insert(ticket, None);
        }
        ticket
    }

    /// The primary permitted to start the write of `ticket`, if any.
    fn permitted(&self, ticket: u64) -> Option<NodeId> {
        self.permits
            .lock()
            .ok()
            .and_then(|p| p.get(&ticket).copied().flatten())
    }

    /// Answers `from`'s [`Request::Permit`]: the first primary to ask for a
    /// ticket still open gets it (and gets it again if it asks again);
    /// everyone else, and every closed or unknown ticket, is refused.
    fn permit(&self, ticket: u64, from: NodeId) -> bool {
        let Ok(mut permits) = self.permits.lock() else {
            return false;
        };
        match permits.get_mut(&ticket) {
            Some(slot @ None) => {
                *slot = Some(from);
                true
            }
            Some(Some(holder)) => *holder == from,
            None => false,
        }
    }

    /// Coordinates an operation on a key this node is a primary of, with
    /// the bucket's `props` and the checked R or W `quorum`.
    async fn coordinate(
        self: &Arc<Self>,
        op: ClientOp,
        props: &BucketProps,
        quorum: u8,
        routing: &Routing,
        primaries: &[NodeId],
        permit: Option<Forwarded>,
    ) -> Result<ClientReply> {
        let wall = self.view.wall_ms();
        match op {
            ClientOp::Get { bucket, key, .. } => {
                let object = self
                    .read(
                        &bucket,
                        &key,
                        props.n_val(),
                        routing.read.version(),
                        primaries,
                        quorum,
                        Policy::from(props),
                    )
                    .await?;
                // Expired values are absent from the coordinator's wall clock on.
                let now = gyre_replication::read_time(wall);
                if props.conflict_mode() == ConflictMode::Counter {
                    return Ok(counter_read(&object, now));
                }
                let read = object.read_at(now);
                let latest = read.latest_index().and_then(|i| u32::try_from(i).ok());
                Ok(ClientReply::Values {
                    values: read.values().cloned().collect(),
                    latest,
                    context: Bytes::from(read.context().to_bytes()),
                    expires: read
                        .siblings()
                        .iter()
                        .map(|s| gyre_replication::unix_ms(s.expires))
                        .collect(),
                })
            }
            write @ (ClientOp::Put { .. }
            | ClientOp::Delete { .. }
            | ClientOp::Increment { .. }) => {
                let write = Write {
                    wall,
                    op: write,
                    w: quorum,
                    permit,
                };
                self.write(write, routing).await
            }
        }
    }

    async fn write(self: &Arc<Self>, write: Write, routing: &Routing) -> Result<ClientReply> {
        let Write {
            wall,
            op,
            w,
            permit,
        } = write;
        let started = Instant::now();
        // Counted until the write and its background sends are over.
        let routed = self.view.routed(routing.newest().version());
        let (bucket, key) = {
            let (bucket, key) = op.target();
            (bucket.clone(), key.clone())
        };
        let props = self.replica.props(&bucket);
        let sets = routing.write_sets(&bucket, &key, &props)?;
        let context = match &op {
            ClientOp::Put { context, .. } | ClientOp::Delete { context, .. } => context.as_ref(),
            ClientOp::Get { .. } | ClientOp::Increment { .. } => None,
        };
        let context = context
            .map(|c| Context::from_bytes(c).map_err(|e| Error::BadRequest(format!("context: {e}"))))
            .transpose()?;
        let is_increment = matches!(op, ClientOp::Increment { .. });
        // A forwarded write starts only with its forwarder's permit: the
        // forwarder may have given it to another primary already.
        if let Some(Forwarded { from, ticket }) = permit {
            let answer = self
                .transport
                .request(from, Request::Permit { ticket }, self.timeout())
                .await;
            if !matches!(answer, Ok(Response::Permit(true))) {
                return Err(Error::Withdrawn);
            }
        }
        let written = {
            let (bucket, key) = (bucket.clone(), key.clone());
            self.on_store(true, move |replica| match op {
                ClientOp::Increment { delta, .. } => replica.increment(wall, &bucket, &key, delta),
                ClientOp::Put { value, expiry, .. } => {
                    let ctx = context.as_ref();
                    replica.write_expiring(wall, &bucket, &key, Some(value), ctx, expiry)
                }
                ClientOp::Delete { .. } => replica.write_expiring(
                    wall,
                    &bucket,
                    &key,
                    None,
                    context.as_ref(),
                    Expiry::Never,
                ),
                ClientOp::Get { .. } => Err(Error::BadRequest("a read is not a write".into())),
            })
            .await?
        };
        let context = Bytes::from(written.item.object.context().to_bytes());
        let receipt = match is_increment {
            true => {
                let now = gyre_replication::read_time(wall);
                let value = counter::value(&written.item.object, now);
                ClientReply::Counted {
                    // `increment` refused any result out of range.
                    value: i64::try_from(value).unwrap_or(i64::MAX),
                    context,
                }
            }
            false => ClientReply::Written {
                dot: written.dot,
                supersedes: Bytes::from(written.supersedes.to_bytes()),
                context,
            },
        };
        let layout = routing.newest();
        let extended = route::extended(layout, &bucket, &key);
        let sets: Vec<&[NodeId]> = sets.iter().map(Vec::as_slice).collect();
        let (mut op, sends) = WriteOp::start_sets(
            self.me(),
            written.item,
            layout.version(),
            &sets,
            extended,
            w,
            |n| self.view.is_up(n),
        );
        let fallbacks = sends
            .iter()
            .filter(|s| matches!(s.request, Request::StoreHint { .. }))
            .count();
        bump(&self.counters.fallbacks, fallbacks as u64);
        let mut outcome = op.initial_outcome();
        let mut set = JoinSet::new();
        // When each attempt counts as slow.
        let mut slow_at = SlowAt::default();
        self.arm(&mut slow_at, &sends);
        self.launch(&mut set, sends);
        while outcome.is_none() {
            let Some(joined) = self
                .next_answer(&mut op, &mut set, &mut slow_at, true)
                .await
            else {
                break;
            };
            let Ok((tag, answer)) = joined else { continue };
            let stored = matches!(answer, Ok(Response::Stored));
            let (more, decided) = op.on_answer(tag, stored);
            bump(&self.counters.fallbacks, more.len() as u64);
            self.arm(&mut slow_at, &more);
            self.launch(&mut set, more);
            outcome = decided;
        }
        // The rest (slow replicas, fallbacks) finish in the background.
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let _routed = routed;
            while let Some(joined) = set.join_next().await {
                let Ok((tag, answer)) = joined else { continue };
                let (more, _) = op.on_answer(tag, matches!(answer, Ok(Response::Stored)));
                bump(&this.counters.fallbacks, more.len() as u64);
                this.launch(&mut set, more);
            }
        });
        match outcome {
            Some(Ok(())) => Ok(receipt),
            Some(Err(e)) => {
                bump(&self.counters.unavailable, 1);
                Err(waited(e, started))
            }
            None => Err(waited(
                Error::Unavailable {
                    answered: 1,
                    required: w,
                    detail: String::new(),
                },
                started,
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn read(
        self: &Arc<Self>,
        bucket: &BucketName,
        key: &Key,
        n_val: u8,
        layout: u64,
        primaries: &[NodeId],
        r: u8,
        policy: Policy,
    ) -> Result<Object> {
        // The first primary is asked for the object and the others for
        // its digest: this node if it is one (no network), else the one
        // believed up that has answered fastest.
        let me = self.me();
        let mut order = primaries.to_vec();
        order.sort_by_cached_key(|&p| (p != me, !self.view.is_up(p), self.hedge_delay(p)));
        let (mut op, sends) = ReadOp::start(
            bucket.clone(),
            key.clone(),
            n_val,
            layout,
            &order,
            r,
            policy,
        );
        let started = Instant::now();
        let mut set = JoinSet::new();
        // When each request of the object counts as slow.
        let mut slow_at = SlowAt::default();
        self.arm(&mut slow_at, &sends);
        self.launch(&mut set, sends);
        let mut outcome = None;
        // Why each failed replica failed, for an unavailability's log line.
        let mut failed: Vec<String> = Vec::new();
        while outcome.is_none() {
            let Some(joined) = self
                .next_answer(&mut op, &mut set, &mut slow_at, false)
                .await
            else {
                break;
            };
            let Ok((tag, answer)) = joined else { continue };
            if let Some(why) = failure(&answer) {
                let to = op.asked(tag).map(|n| n.to_string()).unwrap_or_default();
                failed.push(format!("{to}: {why}"));
            }
            let (more, decided) = op.on_answer(tag, read_answer(answer));
            self.arm(&mut slow_at, &more);
            self.launch(&mut set, more);
            outcome = decided;
        }
        if let Some(Err(e)) = &outcome {
            tracing::info!(
                %bucket, error = %e, primaries = primaries.len(), ?failed,
                waited_ms = started.elapsed().as_millis() as u64,
                "read refused"
            );
        }
        // Read repair once everyone answered, in the background.
        let this = Arc::clone(self);
        tokio::spawn(async move {
            while let Some(joined) = set.join_next().await {
                let Ok((tag, answer)) = joined else { continue };
                let (more, _) = op.on_answer(tag, read_answer(answer));
                this.launch(&mut set, more);
            }
            let grace = this.replica.config().tombstone_grace.as_millis() as u64;
            let wall = this.view.wall_ms();
            let repairs = op.repairs(wall, wall.saturating_sub(grace));
            if repairs.purge {
                bump(&this.counters.purges, 1);
            }
            if repairs.expired {
                bump(&this.counters.expired_purged, 1);
            }
            bump(&this.counters.read_repairs, repairs.repaired as u64);
            let mut set = JoinSet::new();
            this.launch(&mut set, repairs.sends);
            while set.join_next().await.is_some() {}
        });
        match outcome {
            Some(Ok(object)) => Ok(object),
            Some(Err(e)) => {
                bump(&self.counters.unavailable, 1);
                Err(waited(e, started))
            }
            None => Err(waited(
                Error::Unavailable {
                    answered: 0,
                    required: r,
                    detail: String::new(),
                },
                started,
            )),
        }
    }

    /// Serves a request from peer `from`: a forwarded client operation, or a
    /// replica request.
    pub async fn serve(self: &Arc<Self>, from: NodeId, request: Request) -> Response {
        // A removed node is out for good: nothing it asks is done, and a
        // removed node does nothing for others.
        for id in [from, self.me()] {
            if self.view.is_removed(id) {
                return Response::Error(remote(&Error::Removed(id)));
            }
        }
        match request {
            Request::Coordinate { op, ticket, .. } => {
                match self.route_op(op, Some(Forwarded { from, ticket })).await {
                    Ok(reply) => Response::Client(reply),
                    Err(Error::Unavailable {
                        answered,
                        required,
                        detail,
                    }) => Response::Client(ClientReply::Unavailable {
                        answered,
                        required,
                        detail,
                    }),
                    Err(e) => Response::Error(remote(&e)),
                }
            }
            Request::Permit { ticket } => Response::Permit(self.permit(ticket, from)),
            other => self.serve_here(from, other).await,
        }
    }

    /// Delivers the hints held for every owner that is up; returns how many
    /// were delivered.
    ///
    /// Hints are routed by the layouts in use now, not those they were
    /// written under: a hint whose owner no longer holds its key (the owner
    /// left, was removed after losing its data, or a layout change moved
    /// the key away from it) goes to the key's replicas in the newest
    /// layout instead, so a write acknowledged with it stays where reads
    /// will look.
    pub async fn deliver_hints(self: &Arc<Self>) -> u64 {
        let mut delivered = 0;
        let targets: Vec<NodeId> = self.replica.store().hint_backlog().into_keys().collect();
        let routing = self.view.routing();
        for target in targets {
            let member = routing
                .as_ref()
                .is_none_or(|r| r.newest().member(target).is_some());
            // An owner out of the layout will never be up for its hints.
            if member && !self.view.is_up(target) {
                continue;
            }
            loop {
                let mut batch: HintBatch = match self.replica.hint_batch(target) {
                    Ok(Some(b)) => b,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(%target, error = %e, "cannot read hints");
                        break;
                    }
                };
                let Request::DeliverHints { items } =
                    std::mem::replace(&mut batch.request, Request::Ping)
                else {
                    break;
                };
                let (owned, moved): (Vec<Item>, Vec<Item>) = match &routing {
                    Some(r) => items
                        .into_iter()
                        .partition(|item| self.holds(r, target, item)),
                    None => (items, Vec::new()),
                };
                let mut complete = true;
                if !moved.is_empty()
                    && let Some(r) = &routing
                {
                    complete &= self.put_to_replicas(r.newest(), moved).await;
                }
                if complete && !owned.is_empty() {
                    let request = Request::DeliverHints { items: owned };
                    let answer = self.ask(target, request).await;
                    complete &= matches!(answer, Ok(Response::Stored));
                    if !complete {
                        tracing::debug!(%target, answer = ?answer, "hint delivery failed");
                    }
                }
                if !complete {
                    break;
                }
                let count = batch.ids.len() as u64;
                let removed = self
                    .on_store(true, move |replica| replica.hints_delivered(&batch))
                    .await;
                if let Err(e) = removed {
                    tracing::warn!(%target, error = %e, "cannot remove delivered hints");
                    break;
                }
                if !member {
                    tracing::info!(%target, hints = count, "rerouted hints of a departed node");
                }
                delivered += count;
            }
        }
        bump(&self.counters.hints_delivered, delivered);
        delivered
    }

    /// Whether `owner` is a replica of `item`'s key under a layout in use.
    fn holds(&self, routing: &Routing, owner: NodeId, item: &Item) -> bool {
        let props = self.replica.props(&item.bucket);
        routing
            .write_sets(&item.bucket, &item.key, &props)
            .is_ok_and(|sets| sets.iter().any(|s| s.contains(&owner)))
    }

    /// Merges `items` into every replica of their keys under `layout`;
    /// returns whether all of them stored every item.
    async fn put_to_replicas(self: &Arc<Self>, layout: &Arc<Layout>, items: Vec<Item>) -> bool {
        let mut sends = JoinSet::new();
        let mut complete = true;
        for item in items {
            let props = self.replica.props(&item.bucket);
            let Ok(primaries) = route::primaries(layout, &item.bucket, &item.key, &props) else {
                complete = false;
                continue;
            };
            for to in primaries {
                let this = Arc::clone(self);
                let request = Request::ReplicaPut {
                    layout: layout.version(),
                    item: item.clone(),
                };
                sends.spawn(async move { this.ask(to, request).await });
            }
        }
        while let Some(answer) = sends.join_next().await {
            complete &= matches!(answer, Ok(Ok(Response::Stored)));
        }
        complete
    }

    /// What each of `nodes` reports of its partitions' sizes, all asked at
    /// once, each within a request timeout (this node's own scan too); a
    /// node that does not answer in time is absent.
    pub(crate) async fn partition_sizes(
        self: &Arc<Self>,
        nodes: impl IntoIterator<Item = NodeId>,
    ) -> std::collections::BTreeMap<NodeId, Vec<gyre_wire::PartitionSize>> {
        let mut asks = JoinSet::new();
        for id in nodes {
            let this = Arc::clone(self);
            asks.spawn(async move {
                let asked = this.ask(id, Request::PartitionSizes);
                (id, tokio::time::timeout(this.timeout(), asked).await)
            });
        }
        let mut sizes = std::collections::BTreeMap::new();
        while let Some(joined) = asks.join_next().await {
            if let Ok((id, Ok(Ok(Response::Sizes(list))))) = joined {
                sizes.insert(id, list);
            }
        }
        sizes
    }

    /// One anti-entropy session with `peer` over (`partition`, `n_val`).
    ///
    /// # Errors
    /// The session's error (the peer failed or answered nonsense).
    pub async fn sync_with(
        self: &Arc<Self>,
        peer: NodeId,
        partition: PartitionId,
        n_val: u8,
    ) -> Result<SyncStats> {
        self.sync_towards(peer, partition, n_val, Direction::Both)
            .await
    }

    /// A Merkle session with `peer` over (`partition`, `n_val`) that
    /// repairs as `direction` says.
    ///
    /// # Errors
    /// The session's error (the peer failed or answered nonsense).
    pub async fn sync_towards(
        self: &Arc<Self>,
        peer: NodeId,
        partition: PartitionId,
        n_val: u8,
        direction: Direction,
    ) -> Result<SyncStats> {
        let result = async {
            let (mut session, mut request) =
                SyncSession::start_towards(&self.replica, peer, partition, n_val, direction)?;
            loop {
                let answer = self
                    .ask(peer, request)
                    .await
                    .map_err(|what| Error::Protocol { peer, what })?;
                match session.on_response(&self.replica, self.view.wall_ms(), answer)? {
                    SyncStep::Send(next) => request = next,
                    SyncStep::Done(stats) => return Ok(stats),
                }
            }
        }
        .await;
        match &result {
            Ok(stats) => {
                bump(&self.counters.ae_sessions, 1);
                bump(
                    &self.counters.ae_keys,
                    stats.keys_fetched + stats.keys_pushed,
                );
            }
            Err(_) => bump(&self.counters.ae_failures, 1),
        }
        result
    }

    /// Every n_val in use: trees held here (none on a wiped node), the
    /// buckets' settings and the default.
    pub(crate) fn n_vals(&self) -> Vec<u8> {
        let mut n_vals: Vec<u8> = self
            .replica
            .store()
            .merkle_trees()
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        n_vals.extend(
            self.replica
                .store()
                .all_bucket_props()
                .unwrap_or_default()
                .values()
                .map(|p| p.n_val()),
        );
        n_vals.push(BucketProps::default().n_val());
        n_vals.sort_unstable();
        n_vals.dedup();
        n_vals
    }

    /// Anti-entropy for every (partition, n_val) this node replicates, with
    /// every other primary that is up (during a layout change, only among
    /// the replicas of both the oldest and the newest layout), one session
    /// at a time with `sync_pause` between sessions. Returns the summed
    /// stats.
    pub async fn sync_all(self: &Arc<Self>) -> SyncStats {
        self.sync_among(None).await
    }

    /// Anti-entropy with `peer` alone (seen up again), for every
    /// (partition, n_val) both replicate, as [`ReplicationService::sync_all`]
    /// would: what a node that was away may have missed, or may hold that
    /// this one lacks, without comparing every other replica again.
    pub async fn sync_peer(self: &Arc<Self>, peer: NodeId) -> SyncStats {
        self.sync_among(Some(peer)).await
    }

    /// [`ReplicationService::sync_all`], with `only` that peer if given.
    async fn sync_among(self: &Arc<Self>, only: Option<NodeId>) -> SyncStats {
        let mut total = SyncStats::default();
        let Ok(routing) = self.routing() else {
            return total;
        };
        let (layout, oldest) = (routing.newest(), &routing.write[0]);
        let me = self.me();
        let n_vals = self.n_vals();
        for partition in layout.partitions_of(me) {
            for &n_val in &n_vals {
                let mut primaries = route::partition_primaries(layout, partition, n_val).to_vec();
                // While a change moves data, the replicas it fills get the
                // partition from partition handoff (throttled, resumable),
                // not from anti-entropy: only replicas under both the
                // oldest and the newest layout compare trees.
                if routing.is_changing() {
                    let old = route::partition_primaries(oldest, partition, n_val);
                    primaries.retain(|p| old.contains(p));
                }
                if !primaries.contains(&me) {
                    continue;
                }
                let with = |p: NodeId| p != me && only.is_none_or(|o| o == p) && self.view.is_up(p);
                for &peer in primaries.iter().filter(|&&p| with(p)) {
                    tokio::time::sleep(self.replica.config().sync_pause).await;
                    match self.sync_with(peer, partition, n_val).await {
                        Ok(s) => total += s,
                        Err(e) => {
                            tracing::debug!(%peer, ?partition, error = %e, "anti-entropy session failed")
                        }
                    }
                }
            }
        }
        total
    }
}

/// A write to coordinate here, as [`ReplicationService::write`] takes it.
struct Write {
    /// Wall-clock milliseconds at its start.
    wall: u64,
    /// A put, a delete or an increment.
    op: ClientOp,
    w: u8,
    /// The forwarder whose permit the write needs, and its ticket.
    permit: Option<Forwarded>,
}

/// Who forwarded an operation here, and the ticket of a forwarded write
/// (0 for none).
#[derive(Clone, Copy, Debug)]
struct Forwarded {
    from: NodeId,
    ticket: u64,
}

/// Closes a forwarded write's ticket when the forward ends, however it
/// ends: a primary that asks for its permit later is refused.
struct TicketGuard<'a> {
    permits: &'a std::sync::Mutex<HashMap<u64, Option<NodeId>>>,
    ticket: u64,
}

impl Drop for TicketGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut permits) = self.permits.lock() {
            permits.remove(&self.ticket);
        }
    }
}

/// `e`, with how long the coordinator waited added to an unavailability's
/// detail.
fn waited(e: Error, since: Instant) -> Error {
    match e {
        Error::Unavailable {
            answered,
            required,
            detail,
        } => {
            let ms = since.elapsed().as_millis();
            let detail = if detail.is_empty() {
                format!("waited {ms} ms")
            } else {
                format!("{detail}, waited {ms} ms")
            };
            Error::Unavailable {
                answered,
                required,
                detail,
            }
        }
        other => other,
    }
}

/// Answers to an operation's sends, each with its send's tag.
type Answers = JoinSet<(usize, std::result::Result<Response, String>)>;

/// A coordinator's state machine whose slow requests are hedged.
trait Hedged {
    /// Its requests that may still turn slow, by tag, with their peers.
    fn in_time(&self) -> impl Iterator<Item = (usize, NodeId)> + '_;
    /// Request `tag` turned slow: what to send instead or as well.
    fn on_slow(&mut self, tag: usize) -> Vec<Send>;
}

impl Hedged for WriteOp {
    fn in_time(&self) -> impl Iterator<Item = (usize, NodeId)> + '_ {
        WriteOp::in_time(self)
    }
    fn on_slow(&mut self, tag: usize) -> Vec<Send> {
        WriteOp::on_slow(self, tag)
    }
}

impl Hedged for ReadOp {
    fn in_time(&self) -> impl Iterator<Item = (usize, NodeId)> + '_ {
        ReadOp::in_time(self)
    }
    fn on_slow(&mut self, tag: usize) -> Vec<Send> {
        ReadOp::on_slow(self, tag)
    }
}

/// When each request of an operation counts as slow, by tag
/// ([`ReplicationService::arm`]).
#[derive(Debug, Default)]
struct SlowAt(HashMap<usize, Instant>);

impl SlowAt {
    /// When the first of the requests `in_time` (by tag) turns slow.
    fn next(&self, in_time: impl Iterator<Item = (usize, NodeId)>) -> Option<Instant> {
        in_time
            .filter_map(|(tag, _)| self.0.get(&tag).copied())
            .min()
    }

    /// Those of the requests `in_time` that are slow by now, each said once.
    fn due(&mut self, in_time: impl Iterator<Item = (usize, NodeId)>) -> Vec<usize> {
        let now = Instant::now();
        let due: Vec<usize> = in_time
            .filter(|(tag, _)| self.0.get(tag).is_some_and(|&at| at <= now))
            .map(|(tag, _)| tag)
            .collect();
        for tag in &due {
            self.0.remove(tag);
        }
        due
    }
}

/// Sleeps until `at`, or forever if there is nothing to wait for.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Why a replica's answer is a failure, if it is one.
fn failure(answer: &std::result::Result<Response, String>) -> Option<String> {
    match answer {
        Ok(Response::Object(_) | Response::Digest(_) | Response::Stored) => None,
        Ok(other) => Some(format!("answered {other:?}")),
        Err(e) => Some(e.clone()),
    }
}

/// A replica's answer to a read's request, as the read sees it.
fn read_answer(answer: std::result::Result<Response, String>) -> ReadAnswer {
    answer.map_or(ReadAnswer::Failed, ReadAnswer::from)
}

/// A replication error as a peer's error response.
fn remote(e: &Error) -> RemoteError {
    let kind = match e {
        Error::BadRequest(_) => ErrorKind::BadRequest,
        Error::Unavailable { .. } => ErrorKind::Unavailable,
        Error::NoLayout | Error::WrongLayout => ErrorKind::WrongLayout,
        Error::Withdrawn => ErrorKind::Withdrawn,
        Error::Storage(_) => ErrorKind::Storage,
        Error::Removed(_) => ErrorKind::Removed,
        _ => ErrorKind::Internal,
    };
    RemoteError {
        kind,
        message: e.to_string(),
    }
}

/// A read of a counter: one value, the sum as decimal text (none if no
/// node's totals are live).
fn counter_read(object: &Object, now: gyre_types::Timestamp) -> ClientReply {
    let read = object.read_at(now);
    let values = if read.is_empty() {
        Vec::new()
    } else {
        vec![Bytes::from(counter::value(object, now).to_string())]
    };
    ClientReply::Values {
        latest: (!values.is_empty()).then_some(0),
        expires: vec![None; values.len()],
        values,
        context: Bytes::from(read.context().to_bytes()),
    }
}

//! [`Node`]: membership and replication composed over one transport.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use gyre_membership::{Event, Membership};
use gyre_replication::Replica;
use gyre_storage::Store;
use gyre_transport::Inbound;
use gyre_types::{BucketName, BucketProps, NodeId};
use gyre_wire::{OneWay, Request, Response};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;

use crate::{
    BucketCatalog, ClusterView, HandoffConfig, MembershipService, Offload, Peers,
    ReplicationService, Transfers,
};

/// How often the node's background work runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// How often held hints are offered to their owners (also at once when
    /// an owner is seen up again).
    pub hint_interval: Duration,
    /// How often every replicated (partition, n_val) is compared with its
    /// other replicas (and at once with a peer seen up again, for what both replicate). Each
    /// round starts after a jitter of up to a quarter of this.
    pub anti_entropy_interval: Duration,
    /// How often this node sweeps the partitions it is the first up primary
    /// of for tombstones and expired values nobody reads
    /// ([`ReplicationService::sweep`]). Each sweep reads every object held
    /// here, so it runs rarely; a key becomes collectable only after the
    /// replication config's `tombstone_grace` anyway.
    pub sweep_interval: Duration,
    /// Where store calls that may wait for the disk run (see
    /// [`ReplicationService::new`]): on threads for a store on disk, in
    /// place for in-memory stores and the simulator.
    pub offload: Offload,
    /// The properties of the default bucket, and of buckets created
    /// without any (the same on every node, or set the buckets explicitly).
    pub bucket_defaults: BucketProps,
    /// How partitions move when the layout changes.
    pub handoff: HandoffConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            hint_interval: Duration::from_secs(10),
            anti_entropy_interval: Duration::from_secs(600),
            sweep_interval: Duration::from_secs(3600),
            offload: Offload::InPlace,
            bucket_defaults: BucketProps::default(),
            handoff: HandoffConfig::default(),
        }
    }
}

/// A running node: what peers send is dispatched to membership (gossip,
/// layout pulls) or replication (everything else); hinted handoff and
/// anti-entropy run in the background.
pub struct Node<T, S> {
    membership: Arc<MembershipService<T>>,
    replication: Arc<ReplicationService<T, S>>,
    transfers: Arc<Transfers<T, S>>,
    buckets: Arc<BucketCatalog>,
    tasks: Mutex<JoinSet<()>>,
}

impl<T, S> std::fmt::Debug for Node<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").finish_non_exhaustive()
    }
}

impl<T: Peers, S: Store + 'static> Node<T, S> {
    /// Starts a node: membership `core` and `replica` over `transport`,
    /// serving `inbound`, introduced to `seeds`. `wall_ms` is the wall-clock
    /// time now. Must run inside a tokio runtime.
    pub fn start(
        core: Membership,
        replica: Replica<S>,
        transport: T,
        inbound: mpsc::Receiver<Inbound>,
        seeds: Vec<String>,
        wall_ms: u64,
        config: NodeConfig,
    ) -> Arc<Self> {
        let buckets = match BucketCatalog::load(&replica, config.bucket_defaults) {
            Ok(catalog) => catalog,
            Err(e) => {
                // Peers hold the catalogue too: the exchange refills it.
                tracing::error!(error = %e, "cannot read the bucket catalogue; starting without it");
                BucketCatalog::empty(config.bucket_defaults)
            }
        };
        let membership = MembershipService::start(core, transport.clone(), seeds, wall_ms);
        let view: Arc<dyn ClusterView> = membership.clone();
        let replication = ReplicationService::new(replica, transport, view, config.offload);
        let transfers = Transfers::new(
            Arc::clone(&membership),
            Arc::clone(&replication),
            config.handoff.clone(),
        );
        let node = Arc::new(Self {
            membership,
            replication,
            transfers,
            buckets: Arc::new(buckets),
            tasks: Mutex::new(JoinSet::new()),
        });
        let mut tasks = node.tasks();
        tasks.spawn(dispatch(
            Arc::clone(&node.membership),
            Arc::clone(&node.replication),
            Arc::clone(&node.buckets),
            inbound,
        ));
        tasks.spawn(Arc::clone(&node.transfers).run());
        tasks.spawn(background(
            Arc::clone(&node.membership),
            Arc::clone(&node.replication),
            Arc::clone(&node.buckets),
            config,
        ));
        drop(tasks);
        node
    }

    /// Membership.
    pub fn membership(&self) -> &Arc<MembershipService<T>> {
        &self.membership
    }

    /// Replication.
    pub fn replication(&self) -> &Arc<ReplicationService<T, S>> {
        &self.replication
    }

    /// Partition handoff.
    pub fn transfers(&self) -> &Arc<Transfers<T, S>> {
        &self.transfers
    }

    /// The bucket catalogue.
    pub fn buckets(&self) -> &BucketCatalog {
        &self.buckets
    }

    /// Creates a bucket or changes its properties: stored here, then sent to
    /// every other member of the layout (or every node gossip knows, before
    /// there is a layout). Returns how many nodes stored it (this one
    /// included) of how many were asked. Those that missed it get it from
    /// the periodic catalogue exchange.
    ///
    /// # Errors
    /// The store's, if this node cannot store the change (nothing sent).
    pub async fn set_bucket(
        &self,
        bucket: BucketName,
        props: BucketProps,
    ) -> Result<(u32, u32), gyre_storage::Error> {
        let me = self.membership.id();
        let entry = self
            .buckets
            .entry(bucket, props, self.membership.wall_ms(), me);
        self.buckets
            .merge(self.replication.replica(), [entry.clone()])?;
        let targets: Vec<NodeId> = match self.membership.layout() {
            Some(layout) => layout.members().iter().map(|m| m.id).collect(),
            None => self
                .membership
                .with(|core, now| core.members(now).map(|m| m.id).collect()),
        };
        let targets: Vec<NodeId> = targets.into_iter().filter(|id| *id != me).collect();
        let asked = u32::try_from(targets.len() + 1).unwrap_or(u32::MAX);
        let mut sends = JoinSet::new();
        for target in targets {
            let transport = self.membership.transport().clone();
            let request = Request::Buckets {
                entries: vec![entry.clone()],
            };
            let timeout = self.replication.replica().config().request_timeout;
            sends.spawn(async move { transport.request(target, request, timeout).await });
        }
        let mut stored = 1;
        while let Some(answer) = sends.join_next().await {
            if let Ok(Ok(Response::Buckets(theirs))) = answer {
                stored += 1;
                if let Err(e) = self.buckets.merge(self.replication.replica(), theirs) {
                    tracing::warn!(error = %e, "cannot store a peer's bucket catalogue");
                }
            }
        }
        Ok((stored, asked))
    }

    fn tasks(&self) -> MutexGuard<'_, JoinSet<()>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the node's tasks (a crash, as far as peers can tell: nothing
    /// is said to them).
    pub async fn shutdown(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks());
        tasks.shutdown().await;
        self.membership.shutdown().await;
    }
}

/// Hands each inbound message to the service it is for. Replica requests
/// run in their own tasks, so a slow one holds up nothing else.
async fn dispatch<T: Peers, S: Store + 'static>(
    membership: Arc<MembershipService<T>>,
    replication: Arc<ReplicationService<T, S>>,
    buckets: Arc<BucketCatalog>,
    mut inbound: mpsc::Receiver<Inbound>,
) {
    let mut running = JoinSet::new();
    while let Some(message) = inbound.recv().await {
        while running.try_join_next().is_some() {}
        match message {
            Inbound::Message {
                from,
                message: OneWay::Gossip(msg),
            } => membership.receive(from, msg),
            Inbound::Request {
                request: Request::PullLayout { have },
                reply,
                ..
            } => reply.respond(membership.answer_pull(have)),
            Inbound::Request {
                request: Request::Buckets { entries },
                reply,
                ..
            } => {
                if let Err(e) = buckets.merge(replication.replica(), entries) {
                    tracing::warn!(error = %e, "cannot store a peer's bucket catalogue");
                }
                reply.respond(Response::Buckets(buckets.entries()));
            }
            Inbound::Request {
                from,
                request,
                reply,
            } => {
                let replication = Arc::clone(&replication);
                running.spawn(async move {
                    reply.respond(replication.serve(from, request).await);
                });
            }
            Inbound::Stream { from, .. } => {
                tracing::warn!(peer = %from, "a bulk stream (handoff) this node does not serve yet; dropped");
            }
        }
    }
}

/// Hinted handoff and anti-entropy: on a timer, and at once for a peer seen
/// up again.
async fn background<T: Peers, S: Store + 'static>(
    membership: Arc<MembershipService<T>>,
    replication: Arc<ReplicationService<T, S>>,
    buckets: Arc<BucketCatalog>,
    config: NodeConfig,
) {
    let mut round: usize = 0;
    let mut events = membership.subscribe();
    let mut hints = tokio::time::interval(config.hint_interval);
    hints.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A jitter from the node id, so nodes do not all compare at once.
    let period = config.anti_entropy_interval;
    let jitter = period / 4 * (membership.id().as_u64() % 1000) as u32 / 1000;
    let mut sync_at = tokio::time::Instant::now() + jitter;
    let sweep_period = config.sweep_interval;
    let mut sweep_at = tokio::time::Instant::now()
        + sweep_period / 4 * (membership.id().as_u64() % 1000) as u32 / 1000
        + sweep_period / 2;
    loop {
        // `biased`: without it `select!` picks among ready branches with a
        // random number tokio seeds afresh for every runtime, so the
        // simulator could not replay a run from its seed. No branch can
        // starve the others: two are timers and events are rare.
        let removed = || membership.is_removed(membership.id());
        tokio::select! {
            biased;
            _ = hints.tick(), if !removed() => {
                replication.deliver_hints().await;
                round = round.wrapping_add(1);
                exchange_buckets(&membership, &replication, &buckets, round).await;
            }
            () = tokio::time::sleep_until(sync_at), if !removed() => {
                let stats = replication.sync_all().await;
                if stats.keys_fetched + stats.keys_pushed > 0 {
                    tracing::info!(?stats, "anti-entropy synced keys");
                }
                sync_at = tokio::time::Instant::now() + period;
            }
            () = tokio::time::sleep_until(sweep_at), if !removed() => {
                let stats = replication.sweep().await;
                if stats.read > 0 {
                    tracing::info!(?stats, "sweep read collectable keys");
                }
                sweep_at = tokio::time::Instant::now() + sweep_period;
            }
            event = events.recv() => match event {
                Ok(Event::SelfRemoved) => {
                    let store = replication.replica().store();
                    if let Err(e) = crate::persist::save_removed(store) {
                        tracing::error!(error = %e, "cannot record that this node was removed");
                    }
                }
                Ok(Event::Up(peer)) if !removed() => {
                    replication.deliver_hints().await;
                    replication.sync_peer(peer).await;
                }
                Ok(
                    Event::LayoutChanged(stamp)
                    | Event::LayoutsRetired(stamp)
                    | Event::ReadingNew(stamp),
                ) => {
                    // Kept with the data, so a restart routes with it at once.
                    let (history, reading) = membership.with(|core, _| {
                        let history: Vec<gyre_ring::Layout> =
                            core.history().into_iter().cloned().collect();
                        (history, core.state().reading)
                    });
                    let store = replication.replica().store();
                    let stored = crate::persist::save_routing(store, history, reading);
                    if let Err(e) = stored {
                        tracing::error!(%stamp, error = %e, "cannot store the layouts in use");
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// Exchanges the whole bucket catalogue with one peer that is up (another
/// each round), so a node that missed a change catches up.
async fn exchange_buckets<T: Peers, S: Store + 'static>(
    membership: &MembershipService<T>,
    replication: &ReplicationService<T, S>,
    buckets: &BucketCatalog,
    round: usize,
) {
    let me = membership.id();
    let peers: Vec<NodeId> = membership.with(|core, now| {
        core.members(now)
            .filter(|m| m.id != me && m.up && !m.removed)
            .map(|m| m.id)
            .collect()
    });
    let Some(peer) = peers.get(round % peers.len().max(1)).copied() else {
        return;
    };
    let request = Request::Buckets {
        entries: buckets.entries(),
    };
    let timeout = replication.replica().config().request_timeout;
    if let Ok(Response::Buckets(theirs)) =
        membership.transport().request(peer, request, timeout).await
        && let Err(e) = buckets.merge(replication.replica(), theirs)
    {
        tracing::warn!(error = %e, "cannot store a peer's bucket catalogue");
    }
}

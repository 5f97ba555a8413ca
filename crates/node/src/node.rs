//! [`Node`]: membership and replication composed over one transport.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use gyre_membership::{Event, Membership};
use gyre_replication::Replica;
use gyre_storage::Store;
use gyre_transport::Inbound;
use gyre_wire::{OneWay, Request};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;

use crate::{MembershipService, Peers, ReplicationService};

/// How often the node's background work runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// How often held hints are offered to their owners (also at once when
    /// an owner is seen up again).
    pub hint_interval: Duration,
    /// How often every replicated (partition, n_val) is compared with its
    /// other replicas (also at once when a peer is seen up again). Each
    /// round starts after a jitter of up to a quarter of this.
    pub anti_entropy_interval: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            hint_interval: Duration::from_secs(10),
            anti_entropy_interval: Duration::from_secs(600),
        }
    }
}

/// A running node: what peers send is dispatched to membership (gossip,
/// layout pulls) or replication (everything else); hinted handoff and
/// anti-entropy run in the background.
pub struct Node<T, S> {
    membership: Arc<MembershipService<T>>,
    replication: Arc<ReplicationService<T, S>>,
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
        let membership = MembershipService::start(core, transport.clone(), seeds, wall_ms);
        let view: Arc<dyn crate::ClusterView> = membership.clone();
        let replication = ReplicationService::new(replica, transport, view);
        let node = Arc::new(Self {
            membership,
            replication,
            tasks: Mutex::new(JoinSet::new()),
        });
        let mut tasks = node.tasks();
        tasks.spawn(dispatch(
            Arc::clone(&node.membership),
            Arc::clone(&node.replication),
            inbound,
        ));
        tasks.spawn(background(
            Arc::clone(&node.membership),
            Arc::clone(&node.replication),
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
    config: NodeConfig,
) {
    let mut events = membership.subscribe();
    let mut hints = tokio::time::interval(config.hint_interval);
    hints.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A jitter from the node id, so nodes do not all compare at once.
    let period = config.anti_entropy_interval;
    let jitter = period / 4 * (membership.id().as_u64() % 1000) as u32 / 1000;
    let mut sync_at = tokio::time::Instant::now() + jitter;
    loop {
        // `biased`: without it `select!` picks among ready branches with a
        // random number tokio seeds afresh for every runtime, so the
        // simulator could not replay a run from its seed. No branch can
        // starve the others: two are timers and events are rare.
        tokio::select! {
            biased;
            _ = hints.tick() => {
                replication.deliver_hints().await;
            }
            () = tokio::time::sleep_until(sync_at) => {
                let stats = replication.sync_all().await;
                if stats.keys_fetched + stats.keys_pushed > 0 {
                    tracing::info!(?stats, "anti-entropy synced keys");
                }
                sync_at = tokio::time::Instant::now() + period;
            }
            event = events.recv() => match event {
                Ok(Event::Up(_)) => {
                    replication.deliver_hints().await;
                    replication.sync_all().await;
                }
                Ok(Event::LayoutChanged(stamp)) => {
                    // Kept with the data, so a restart routes with it at once.
                    if let Some(layout) = membership.layout()
                        && let Err(e) = replication.replica().store().set_layout(&layout)
                    {
                        tracing::error!(%stamp, error = %e, "cannot store the new layout");
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

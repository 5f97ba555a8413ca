//! [`Transfers`]: partition handoff. Fills the replicas a layout change
//! gives this node, and hands off and drops those no layout in use gives
//! it any more. The rules are `gyre_handoff`'s (what to fill and from
//! whom, the prepare barrier, each replica's [`Transfer`], the cursors,
//! the throttle); this module carries them out over the network and the
//! store.
//!
//! Filling, per (partition, n_val) that the newest layout gives this node
//! and the layout reads use does not (the stages of [`Stage`]), from that
//! layout's replicas:
//!
//! 1. *prepare*: wait until every live node of every layout in use says
//!    it routes with the newest layout. Writes coordinated from then on
//!    reach the new replica set too. A node says so only once every write
//!    it routed with an older layout is over (`crate::drain`, as Garage's
//!    `ack_lock`), so none can land on the old replicas after *verify*
//!    below compared trees. Replicas take a write whatever layout it was
//!    routed with.
//! 2. *stream*: pull the partition from one old replica in key order, in
//!    chunks (at most `chunk_items` objects or about `chunk_bytes`), each
//!    merged by DVV sync (never replace) in one store write and its cursor
//!    persisted once durable, so a restart of either side re-asks at most one chunk.
//!    Chunks name the newest layout; a source serves them only while it is
//!    its newest too, and this node merges one only while it still fills
//!    that layout, so a transfer that a newer layout replaced (an abort)
//!    cannot write anything after it was replaced.
//! 3. *verify*: a Merkle exchange with a majority of the old replicas
//!    (every one that is up), repairing both ways what differs.
//! 4. *synced*: once every partition is, the node says so in gossip
//!    ([`MembershipService::set_synced`]); once every member of the new
//!    layout has, reads move to it, and once every node reads with it the
//!    old layouts are retired (see `gyre_membership::history`).
//!
//! Which replicas run when is a [`Schedule`]'s to say: at most
//! `max_inbound` at once, in order, and one that had to wait (its sources
//! busy or down, a verification short of its majority) started again after
//! `retry`, then twice as long per failure up to four `retry`s, while the
//! others go on.
//!
//! Dropping: once a single layout is in use and has been for `drop_grace`
//! (hints in flight land meanwhile, and are rerouted by the layout in use;
//! replica reads of partitions held under no layout in use are refused),
//! every partition held here that the layout does not give this node is
//! synced to each of its replicas (all must answer) and then dropped: only
//! the objects of Merkle leaves that are as they were before that sync
//! (delete-if-equal, per leaf), so a write that lands here late is kept
//! and handed off at the next round. A partition with a new replica down
//! waits for it without any session; one whose hand-off failed waits
//! twice as long as the last time (from `retry` to a minute).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use gyre_membership::LayoutStamp;
use gyre_replication::object_bytes;
use gyre_replication::route::{Routing, partition_primaries as primaries};
use gyre_storage::Store;
use gyre_types::{KeyHash, NodeId, PartitionId};
use gyre_wire::{Request, Response};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::{ClusterView, MembershipService, Peers, ReplicationService};

mod drop;
mod snapshots;
use gyre_handoff::{
    Cursor, Cursors, Next, Pacer, PartitionTransfer, Schedule, Stage, Transfer, TransferProgress,
    fill,
};
use snapshots::Snapshots;

/// Sleeps until `at`, or forever if `None`.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Longest wait between two failed hand-offs of a partition to drop.
const DROP_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Longest wait between two failed transfers of a partition to fill, in
/// `retry`s (4 s with the defaults): short, since the change waits on it.
const FILL_BACKOFF_MAX: u32 = 4;

/// The metadata entry that holds this node's transfer cursors.
const CURSORS: &str = "handoff";

/// The default byte-rate throttle of a node's pulls: 50 MB/s, 40% of a
/// gigabit link, so that a change's streams leave clients most of a 1 GbE
/// network. It does not bind for small values (a stream of 100-byte
/// objects is bound by CPU well below it: 18–22 MB/s alone on two cores,
/// 6–9 MB/s under a client load); for large values it holds a stream that
/// would take 150 MB/s alone. No lower rate measurably shortened the GET
/// tail during a change on a saturated two-core machine
/// (deploy/bench/HANDOFF.md), while every lower rate lengthened the change.
pub const DEFAULT_MAX_RATE: u64 = 50_000_000;

/// How partition handoff runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandoffConfig {
    /// Most objects in one chunk. Default 500.
    pub chunk_items: u32,
    /// About most bytes (keys and values) in one chunk. Default 1 MiB.
    pub chunk_bytes: u32,
    /// Partitions this node pulls at once. Default 4. Changeable at run
    /// time ([`Transfers::set_throttle`]).
    pub max_inbound: usize,
    /// Partitions this node serves to pullers at once (others are told it
    /// is busy and ask another old replica, or wait). Default 4.
    /// Changeable at run time.
    pub max_outbound: usize,
    /// Bytes per second this node pulls at most, 0 for no limit. Default
    /// [`DEFAULT_MAX_RATE`] (50 MB/s). Changeable at run time.
    pub max_rate: u64,
    /// How long a single layout must have been in use before partitions
    /// it no longer gives this node are handed off and dropped. `None`
    /// (the default): one gossip interval (1 s with the defaults). No
    /// grace is needed for safety: a drop takes only what the hand-off
    /// copied (leaf by leaf, delete-if-equal), so a late write is handed
    /// off at the next round, and a replica read of a partition this node
    /// holds under no layout in use is refused, not answered "nothing
    /// here", so a read routed with the old layout fails over instead of
    /// reading a dropped copy. The grace lets the change's last word (the
    /// old layout retired) reach every node first, so that few writes
    /// still go to the old replicas and need a second round.
    pub drop_grace: Option<Duration>,
    /// How often stalled work is tried again (and progress re-checked):
    /// a partition whose transfer had to wait starts again after `retry`,
    /// then twice as long per failure up to four `retry`s. Default 1 s.
    pub retry: Duration,
}

impl Default for HandoffConfig {
    fn default() -> Self {
        Self {
            chunk_items: 500,
            chunk_bytes: 1 << 20,
            max_inbound: 4,
            max_outbound: 4,
            max_rate: DEFAULT_MAX_RATE,
            drop_grace: None,
            retry: Duration::from_secs(1),
        }
    }
}

/// A node's partition handoff, running.
pub struct Transfers<T, S> {
    membership: Arc<MembershipService<T>>,
    replication: Arc<ReplicationService<T, S>>,
    config: HandoffConfig,
    /// `config.drop_grace`, or the one derived from the timeouts.
    drop_grace: Duration,
    /// The byte rate limit (0: none), told to pacing waits at once.
    max_rate: tokio::sync::watch::Sender<u64>,
    /// The throttle's bookings.
    pacer: Mutex<Pacer>,
    /// The start of the time the pacer is fed.
    epoch: Instant,
    max_inbound: AtomicUsize,
    progress: Mutex<TransferProgress>,
    /// When the transfer of the layout in `progress` started.
    started: Mutex<Option<Instant>>,
    /// Since when a single layout (this stamp) has been in use.
    settled: Mutex<Option<(LayoutStamp, Instant)>>,
    /// Per partition to drop whose hand-off failed: when to try again, and
    /// the wait that led there.
    drop_backoff: Mutex<BTreeMap<PartitionId, (Instant, Duration)>>,
    resent: AtomicU64,
    /// The cursors of every transfer, stored as one metadata entry;
    /// cursors saved while one write waits for the disk share the next.
    cursors: Snapshots<Cursors>,
    /// When the first and the last chunk of this change arrived.
    chunks_between: Mutex<Option<(Instant, Instant)>>,
}

impl<T, S> std::fmt::Debug for Transfers<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfers").finish_non_exhaustive()
    }
}

fn lock<G>(m: &Mutex<G>) -> MutexGuard<'_, G> {
    // Every guarded value is replaced or updated whole.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Peers, S: Store + 'static> Transfers<T, S> {
    /// The handoff of the node that `membership` and `replication` run.
    pub fn new(
        membership: Arc<MembershipService<T>>,
        replication: Arc<ReplicationService<T, S>>,
        config: HandoffConfig,
    ) -> Arc<Self> {
        replication.set_max_outbound(config.max_outbound);
        let cursors = match replication.replica().store().meta(CURSORS) {
            Ok(Some(bytes)) => Cursors::decode(&bytes).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "transfers in flight start over");
                Cursors::default()
            }),
            Ok(None) => Cursors::default(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the transfer cursors: transfers in flight start over");
                Cursors::default()
            }
        };
        let drop_grace = config
            .drop_grace
            .unwrap_or_else(|| membership.with(|core, _| core.config().gossip_interval));
        Arc::new(Self {
            drop_grace,
            max_rate: tokio::sync::watch::Sender::new(config.max_rate),
            pacer: Mutex::new(Pacer::new(config.max_rate)),
            epoch: Instant::now(),
            max_inbound: AtomicUsize::new(config.max_inbound.max(1)),
            membership,
            replication,
            config,
            progress: Mutex::new(TransferProgress::default()),
            started: Mutex::new(None),
            settled: Mutex::new(None),
            drop_backoff: Mutex::new(BTreeMap::new()),
            resent: AtomicU64::new(0),
            cursors: Snapshots::new(cursors),
            chunks_between: Mutex::new(None),
        })
    }

    /// What the transfers have done so far.
    pub fn progress(&self) -> TransferProgress {
        let mut p = lock(&self.progress).clone();
        p.max_rate = lock(&self.pacer).rate();
        p.max_inbound = self.max_inbound.load(Ordering::Relaxed);
        (p.max_outbound, p.outbound) = self.replication.outbound();
        if let Some(started) = *lock(&self.started) {
            p.running_for(started.elapsed());
        }
        p
    }

    /// Changes the throttle at run time: bytes per second (0: none),
    /// partitions pulled at once and partitions served at once (each at
    /// least 1).
    pub fn set_throttle(&self, max_rate: u64, max_inbound: usize, max_outbound: usize) {
        lock(&self.pacer).set_rate(self.epoch.elapsed(), max_rate);
        self.max_rate.send_replace(max_rate);
        self.max_inbound
            .store(max_inbound.max(1), Ordering::Relaxed);
        self.replication.set_max_outbound(max_outbound);
    }

    /// Runs until the membership service stops: a step after every
    /// membership event and every `retry`.
    pub async fn run(self: Arc<Self>) {
        let mut events = self.membership.subscribe();
        loop {
            self.step().await;
            tokio::select! {
                biased;
                event = events.recv() => {
                    if matches!(event, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        return;
                    }
                }
                () = tokio::time::sleep(self.config.retry) => {}
            }
        }
    }

    /// One pass: fill what the change in flight gives this node, or drop
    /// what no layout gives it any more.
    pub async fn step(self: &Arc<Self>) {
        let Some(routing) = self.membership.routing() else {
            return;
        };
        if self.membership.is_removed(self.me()) {
            // Out of the cluster: peers refuse it, and its data is no
            // longer the cluster's.
            return;
        }
        if routing.is_changing() {
            *lock(&self.settled) = None;
            self.fill(&routing).await;
        } else {
            self.drop_unowned(&routing).await;
        }
    }

    fn me(&self) -> NodeId {
        self.membership.id()
    }

    /// What the change in flight gives this node to fill
    /// ([`fill::gained`]).
    fn gained(&self, routing: &Routing) -> Vec<(PartitionId, u8)> {
        let n_vals = self.replication.n_vals();
        fill::gained(routing.newest(), &routing.read, self.me(), &n_vals)
    }

    async fn fill(self: &Arc<Self>, routing: &Routing) {
        let newest = Arc::clone(routing.newest());
        let stamp = LayoutStamp::of(&newest);
        let me = self.me();
        let (synced, waiting) = self.membership.with(|core, now| {
            (
                core.state().synced >= Some(stamp),
                fill::not_prepared(core, now, stamp),
            )
        });
        if newest.member(me).is_none() || synced {
            return;
        }
        let work = self.gained(routing);
        if work.is_empty() {
            // Nothing to fill here: this node's word is all the change
            // needs of it.
            self.membership.set_synced(stamp);
            return;
        }
        self.begin(stamp, &work, routing).await;
        if !waiting.is_empty() {
            let why = format!("prepare: waiting for {waiting:?} to adopt layout {stamp}");
            self.set_all_waiting(&why);
            return;
        }
        let mut schedule = Schedule::new(
            &work,
            |(p, n)| self.cursor(p, n) == Some(Cursor::Done),
            self.config.retry,
            self.config.retry * FILL_BACKOFF_MAX,
        );
        let mut events = self.membership.subscribe();
        let mut running = JoinSet::new();
        // Which replica each running task fills, so that one that panicked
        // is handed back as failed, not left running.
        let mut tasks = std::collections::HashMap::new();
        loop {
            if !self.still_filling(stamp) {
                // A newer layout (its news may have come before `events`
                // was subscribed): the transfers end at their next step,
                // and the next pass fills the newer one.
                break;
            }
            let max = self.max_inbound.load(Ordering::Relaxed);
            for (partition, n_val) in schedule.start(self.epoch.elapsed(), max) {
                let this = Arc::clone(self);
                let task =
                    running.spawn(async move { this.transfer(stamp, partition, n_val).await });
                tasks.insert(task.id(), (partition, n_val));
            }
            if schedule.is_done() {
                break;
            }
            let wake = schedule.next_timeout(max).map(|t| self.epoch + t);
            tokio::select! {
                biased;
                Some(joined) = running.join_next_with_id(), if !running.is_empty() => {
                    let (id, outcome) = match joined {
                        Ok((id, outcome)) => (id, outcome),
                        Err(e) => (e.id(), Err(format!("the transfer failed: {e}"))),
                    };
                    let Some((partition, n_val)) = tasks.remove(&id) else {
                        continue;
                    };
                    schedule.finished(self.epoch.elapsed(), (partition, n_val), outcome.is_ok());
                    match outcome {
                        Ok(()) => self.update(partition, n_val, |t| {
                            t.stage = Stage::Synced;
                            t.waiting = None;
                        }),
                        Err(why) => {
                            tracing::debug!(?partition, n_val, %why, "partition transfer waits");
                            self.update(partition, n_val, |t| t.waiting = Some(why.clone()));
                        }
                    }
                }
                event = events.recv() => {
                    if matches!(event, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        break;
                    }
                }
                () = sleep_until_some(wake) => {}
            }
        }
        while running.join_next().await.is_some() {}
        if schedule.is_done() && self.still_filling(stamp) {
            self.finish(stamp);
            self.membership.set_synced(stamp);
            tracing::info!(%stamp, partitions = work.len(), "every partition this layout gives this node is filled and verified");
        }
    }

    /// Starts tracking the transfer of `stamp` if it is new: carries over
    /// the cursors a stacked change keeps ([`Cursors::carry_to`]), forgets
    /// the others, and asks the sources their sizes.
    async fn begin(
        self: &Arc<Self>,
        stamp: LayoutStamp,
        work: &[(PartitionId, u8)],
        routing: &Routing,
    ) {
        if lock(&self.progress).layout == Some(stamp) {
            return;
        }
        (self.cursors).change(|c| c.carry_to(stamp, LayoutStamp::of(&routing.read), work));
        let read = &routing.read;
        let partitions = work
            .iter()
            .map(|&(partition, n_val)| {
                let done = self.cursor(partition, n_val) == Some(Cursor::Done);
                PartitionTransfer {
                    partition: partition.get(),
                    n_val,
                    stage: if done { Stage::Synced } else { Stage::Prepare },
                    source: None,
                    keys: 0,
                    bytes: 0,
                    expected: 0,
                    waiting: None,
                }
            })
            .collect();
        {
            let mut p = lock(&self.progress);
            let last = p.last.take();
            let dropped = p.dropped;
            *p = TransferProgress {
                layout: Some(stamp),
                partitions,
                last,
                dropped,
                ..TransferProgress::default()
            };
        }
        *lock(&self.started) = Some(Instant::now());
        *lock(&self.chunks_between) = None;
        self.resent.store(0, Ordering::Relaxed);
        // The estimate: what the old replicas hold of each partition.
        let mut sizes: BTreeMap<(NodeId, u32), u64> = BTreeMap::new();
        let mut sources: Vec<NodeId> = work
            .iter()
            .filter_map(|&(p, n)| primaries(read, p, n).first().copied())
            .collect();
        sources.sort_unstable();
        sources.dedup();
        for (source, list) in self.replication.partition_sizes(sources).await {
            for s in list {
                sizes.insert((source, s.partition.get()), s.bytes);
            }
        }
        let mut p = lock(&self.progress);
        for t in &mut p.partitions {
            let partition = PartitionId::new(t.partition);
            t.expected = primaries(read, partition, t.n_val)
                .first()
                .and_then(|source| sizes.get(&(*source, t.partition)))
                .copied()
                .unwrap_or(0);
        }
        p.bytes_total = p.partitions.iter().map(|t| t.expected).sum();
    }

    fn finish(&self, stamp: LayoutStamp) {
        // The rate and ETA stay as they were at the end.
        let took = lock(&self.started)
            .take()
            .map_or(Duration::ZERO, |s| s.elapsed());
        let streamed =
            lock(&self.chunks_between).map_or(Duration::ZERO, |(first, last)| last - first);
        let resent = self.resent.load(Ordering::Relaxed);
        lock(&self.progress).finish(stamp, took, streamed, resent);
    }

    fn set_all_waiting(&self, why: &str) {
        let mut p = lock(&self.progress);
        for t in &mut p.partitions {
            if t.stage == Stage::Prepare {
                t.waiting = Some(why.to_owned());
            }
        }
    }

    fn update(&self, partition: PartitionId, n_val: u8, f: impl FnOnce(&mut PartitionTransfer)) {
        let mut p = lock(&self.progress);
        if let Some(t) = p
            .partitions
            .iter_mut()
            .find(|t| t.partition == partition.get() && t.n_val == n_val)
        {
            f(t);
        }
    }

    fn cursor(&self, partition: PartitionId, n_val: u8) -> Option<Cursor> {
        self.cursors.with(|c| c.get(partition, n_val).cloned())
    }

    /// Records a cursor durably (after the chunk it follows is durable).
    async fn save_cursor(
        self: &Arc<Self>,
        stamp: LayoutStamp,
        partition: PartitionId,
        n_val: u8,
        cursor: Cursor,
    ) -> Result<(), String> {
        let store = |bytes: Vec<u8>| async move {
            self.replication
                .on_store(true, move |replica| {
                    replica.store().set_meta(CURSORS, bytes)
                })
                .await
                .map_err(|e| format!("cannot record the cursor: {e}"))
        };
        self.cursors
            .save(
                |c| {
                    c.set(stamp, partition, n_val, cursor)
                        .map_err(|e| e.to_string())
                },
                Cursors::encode,
                store,
            )
            .await
    }

    fn still_filling(&self, stamp: LayoutStamp) -> bool {
        self.membership
            .layout()
            .is_some_and(|l| LayoutStamp::of(&l) == stamp)
    }

    /// The replicas to fill (partition, n_val) from ([`fill::sources`]).
    fn sources(&self, routing: &Routing, partition: PartitionId, n_val: u8) -> Vec<NodeId> {
        let me = self.me();
        self.membership.with(|core, _| {
            fill::sources(core, &routing.read, &routing.write, me, partition, n_val)
        })
    }

    /// Drives the [`Transfer`] of one (partition, n_val) from the replicas
    /// [`Transfers::sources`] names: its chunk requests and tree
    /// comparisons carried out, their answers handed back, each chunk
    /// merged, its cursor recorded and its bytes paced.
    async fn transfer(
        self: &Arc<Self>,
        stamp: LayoutStamp,
        partition: PartitionId,
        n_val: u8,
    ) -> Result<(), String> {
        let routing = self
            .membership
            .routing()
            .filter(|r| LayoutStamp::of(r.newest()) == stamp)
            .ok_or_else(|| "superseded by a newer layout".to_owned())?;
        let routing = &routing;
        let old = self.sources(routing, partition, n_val);
        let cursor = self.cursor(partition, n_val);
        let mut t = Transfer::new(
            partition,
            n_val,
            &old,
            |n| self.membership.is_up(n),
            cursor.as_ref(),
        );
        if t.resumed() {
            self.resent.fetch_add(1, Ordering::Relaxed);
        }
        let newest = routing.newest();
        // The answer to the next fetch, asked for while the chunk before
        // it was merged.
        let mut ahead: Option<Result<Response, String>> = None;
        loop {
            let next = t.next();
            if let Next::Fetch { .. } | Next::Verify { .. } = &next {
                self.update(partition, n_val, |p| {
                    p.stage = t.stage();
                    p.source = t.source();
                    p.waiting = None;
                });
            }
            match next {
                Next::Fetch { source, after } => {
                    if !self.still_filling(stamp) {
                        return Err("superseded by a newer layout".to_owned());
                    }
                    let answer = match ahead.take() {
                        Some(answer) => answer,
                        None => self.fetch(stamp, partition, n_val, source, after).await,
                    };
                    match answer {
                        Ok(Response::Chunk { items, next }) => {
                            if !self.still_filling(stamp) {
                                return Err("superseded by a newer layout".to_owned());
                            }
                            let keys = items.iter().map(|i| (&i.bucket, &i.key, i.n_val));
                            let accepted = t.chunk(keys, next, |bucket, key| {
                                newest.partition_of(KeyHash::of(bucket, key))
                            })?;
                            // The source reads the next chunk while this
                            // one is merged: at most one chunk ahead, and
                            // merged only once this one and its cursor are
                            // durable.
                            let fetch_ahead = async {
                                match t.next() {
                                    Next::Fetch { source, after } => Some(
                                        self.fetch(stamp, partition, n_val, source, after).await,
                                    ),
                                    _ => None,
                                }
                            };
                            let (taken, fetched) = tokio::join!(
                                self.take_chunk(stamp, partition, n_val, items, accepted.cursor),
                                fetch_ahead
                            );
                            taken?;
                            ahead = fetched;
                        }
                        Ok(Response::Error(e)) if e.kind == gyre_wire::ErrorKind::Busy => {
                            t.busy(&e.message);
                        }
                        Ok(Response::Error(e)) => t.failed(format!("{source}: {}", e.message)),
                        Ok(other) => t.failed(format!("{source} answered {other:?}")),
                        Err(e) => t.failed(format!("{source} unreachable: {e}")),
                    }
                }
                Next::Verify { peers } => {
                    let mut sessions = JoinSet::new();
                    for peer in peers {
                        let replication = Arc::clone(&self.replication);
                        sessions.spawn(async move {
                            (peer, replication.sync_with(peer, partition, n_val).await)
                        });
                    }
                    let mut verified = 0;
                    while let Some(joined) = sessions.join_next().await {
                        match joined {
                            Ok((_, Ok(_))) => verified += 1,
                            Ok((peer, Err(e))) => {
                                tracing::debug!(%peer, ?partition, error = %e, "verification failed");
                            }
                            Err(e) => {
                                tracing::debug!(?partition, error = %e, "verification failed")
                            }
                        }
                    }
                    t.verified(verified);
                }
                Next::Done => {
                    return self
                        .save_cursor(stamp, partition, n_val, Cursor::Done)
                        .await;
                }
                Next::Wait(why) => return Err(why),
            }
        }
    }

    /// Asks `source` for the chunk of (`partition`, `n_val`) after `after`.
    async fn fetch(
        &self,
        stamp: LayoutStamp,
        partition: PartitionId,
        n_val: u8,
        source: NodeId,
        after: Option<(gyre_types::BucketName, gyre_types::Key)>,
    ) -> Result<Response, String> {
        let request = Request::HandoffChunk {
            layout: stamp,
            partition,
            n_val,
            after,
            max_items: self.config.chunk_items,
            max_bytes: self.config.chunk_bytes,
        };
        self.replication.ask(source, request).await
    }

    /// Merges an accepted chunk, records the cursor after it once it is
    /// durable, counts it and paces the stream.
    async fn take_chunk(
        self: &Arc<Self>,
        stamp: LayoutStamp,
        partition: PartitionId,
        n_val: u8,
        items: Vec<gyre_wire::Item>,
        cursor: Option<Cursor>,
    ) -> Result<(), String> {
        let keys = items.len() as u64;
        let bytes: u64 = items.iter().map(|i| object_bytes(&i.key, &i.object)).sum();
        self.merge_chunk(items).await?;
        {
            let now = Instant::now();
            let mut between = lock(&self.chunks_between);
            *between = Some((between.map_or(now, |(first, _)| first), now));
        }
        if let Some(cursor) = cursor {
            self.save_cursor(stamp, partition, n_val, cursor).await?;
        }
        lock(&self.progress).received(partition, n_val, keys, bytes);
        self.pace(stamp, bytes).await;
        Ok(())
    }

    /// Merges a chunk's objects (DVV sync) in one store write: one batch
    /// with their Merkle leaves, one durability wait, at background
    /// priority.
    async fn merge_chunk(self: &Arc<Self>, items: Vec<gyre_wire::Item>) -> Result<(), String> {
        let wall = self.replication.wall_ms();
        self.replication
            .on_background(move |replica| replica.merge_many(wall, &items))
            .await
            .map(drop)
            .map_err(|e| format!("cannot store a chunk: {e}"))
    }

    /// Waits until the node's streams together have taken no more than
    /// the throttle's rate: each chunk books its bytes' time after every
    /// chunk booked before it, whichever stream it belongs to. A throttle
    /// changed meanwhile rescales what is left of the wait at once, and a
    /// newer layout (an abort, a stacked change) ends it.
    async fn pace(&self, stamp: LayoutStamp, bytes: u64) {
        let mut throttle = self.max_rate.subscribe();
        throttle.borrow_and_update();
        let (mut rate, mut until) = {
            let mut pacer = lock(&self.pacer);
            let Some(until) = pacer.book(self.epoch.elapsed(), bytes) else {
                return;
            };
            (pacer.rate(), until)
        };
        let mut events = self.membership.subscribe();
        loop {
            tokio::select! {
                biased;
                changed = throttle.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // What is left of every booking scales alike (see
                    // `set_throttle`, which rescales the shared one).
                    let new = *throttle.borrow_and_update();
                    if new == 0 {
                        return;
                    }
                    until = Pacer::rescale(until, self.epoch.elapsed(), rate, new);
                    rate = new;
                }
                event = events.recv() => {
                    if matches!(event, Err(tokio::sync::broadcast::error::RecvError::Closed))
                        || !self.still_filling(stamp)
                    {
                        return;
                    }
                }
                () = tokio::time::sleep_until(self.epoch + until) => return,
            }
        }
    }
}

//! Merkle anti-entropy between two replicas of one (partition, n_val).
//!
//! A [`SyncSession`] compares this replica's tree with a peer's
//! ([`gyre_merkle::Exchange`]: only differing subtrees are exchanged; a
//! replica that holds nothing of the tree skips the walk), lists
//! the keys of both sides in the differing ranges, then syncs every key whose
//! versions differ, both ways: it fetches the peer's states and merges them
//! here, and pushes this replica's states to the peer (which merges them).
//! Merging is DVV sync, so a sync never loses a version either side had.

use gyre_merkle::{Exchange, KeyRange, Step};
use gyre_storage::Store;
use gyre_types::{BucketName, Key, NodeId, PartitionId};
use gyre_wire::{Item, KeyVersion, Request, Response};

use crate::{Error, Replica, Result};

/// What a finished session did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Round trips of the tree comparison.
    pub rounds: u32,
    /// Leaves whose digests differed.
    pub differing_leaves: u64,
    /// Keys whose versions differed.
    pub keys_differing: u64,
    /// Keys fetched from the peer and merged here.
    pub keys_fetched: u64,
    /// Keys pushed to the peer.
    pub keys_pushed: u64,
    /// Value bytes fetched and pushed.
    pub value_bytes: u64,
}

impl std::ops::AddAssign for SyncStats {
    /// Sums the counts of several sessions.
    fn add_assign(&mut self, other: Self) {
        self.rounds += other.rounds;
        self.differing_leaves += other.differing_leaves;
        self.keys_differing += other.keys_differing;
        self.keys_fetched += other.keys_fetched;
        self.keys_pushed += other.keys_pushed;
        self.value_bytes += other.value_bytes;
    }
}

/// Which way a session repairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    /// Both replicas end with the merge of both (anti-entropy).
    #[default]
    Both,
    /// Only the peer: this replica's states are pushed, nothing is fetched
    /// (a hand-off before this replica drops the partition).
    Push,
}

/// What the session asks next.
#[derive(Clone, Debug, PartialEq)]
pub enum SyncStep {
    /// Send this to the peer and feed the answer to
    /// [`SyncSession::on_response`].
    Send(Request),
    /// The session is over.
    Done(SyncStats),
}

#[derive(Debug)]
enum Phase {
    Comparing(Exchange),
    Listing(Vec<KeyRange>),
    Syncing,
}

/// One anti-entropy session with a peer, driven by its answers.
#[derive(Debug)]
pub struct SyncSession {
    peer: NodeId,
    partition: PartitionId,
    n_val: u8,
    direction: Direction,
    phase: Phase,
    /// Keys to fetch from the peer, not yet asked.
    fetch: Vec<(BucketName, Key)>,
    /// Items to push, not yet sent.
    push: Vec<Item>,
    /// Whether the last request sent was a fetch (its answer carries items).
    awaiting_fetch: bool,
    stats: SyncStats,
}

impl SyncSession {
    /// Starts comparing this replica's tree of (`partition`, `n_val`) with
    /// `peer`'s, to repair both.
    ///
    /// # Errors
    /// [`Error::Storage`] if the tree cannot be read.
    pub fn start<S: Store>(
        replica: &Replica<S>,
        peer: NodeId,
        partition: PartitionId,
        n_val: u8,
    ) -> Result<(Self, Request)> {
        Self::start_towards(replica, peer, partition, n_val, Direction::Both)
    }

    /// As [`start`](Self::start), repairing as `direction` says.
    ///
    /// # Errors
    /// [`Error::Storage`] if the tree cannot be read.
    pub fn start_towards<S: Store>(
        replica: &Replica<S>,
        peer: NodeId,
        partition: PartitionId,
        n_val: u8,
        direction: Direction,
    ) -> Result<(Self, Request)> {
        let tree = replica.store().merkle_tree(partition, n_val)?;
        let mut session = Self {
            peer,
            partition,
            n_val,
            direction,
            phase: Phase::Syncing,
            fetch: Vec::new(),
            push: Vec::new(),
            awaiting_fetch: false,
            stats: SyncStats::default(),
        };
        // Holding nothing here (a new or wiped replica), every leaf would
        // differ: skip the tree walk and list the whole partition at once.
        if !replica.store().merkle_trees().contains(&(partition, n_val)) {
            let whole = tree.range();
            session.phase = Phase::Listing(vec![whole]);
            let request = Request::ListKeys {
                partition,
                n_val,
                ranges: vec![whole],
            };
            return Ok((session, request));
        }
        let (exchange, request) = Exchange::new(&tree);
        session.phase = Phase::Comparing(exchange);
        Ok((session, Request::Merkle { n_val, request }))
    }

    /// The peer.
    pub fn peer(&self) -> NodeId {
        self.peer
    }

    /// Feeds the peer's answer to the last request.
    ///
    /// # Errors
    /// [`Error::Protocol`] for an answer that does not fit (the session is
    /// then over); [`Error::Storage`] if the local store fails.
    pub fn on_response<S: Store>(
        &mut self,
        replica: &Replica<S>,
        wall_ms: u64,
        response: Response,
    ) -> Result<SyncStep> {
        let peer = self.peer;
        let protocol = |what: String| Error::Protocol { peer, what };
        match (&mut self.phase, response) {
            (Phase::Comparing(exchange), Response::Merkle(answer)) => {
                let tree = replica.store().merkle_tree(self.partition, self.n_val)?;
                match exchange
                    .on_response(&tree, answer)
                    .map_err(|e| protocol(e.to_string()))?
                {
                    Step::Send(request) => Ok(SyncStep::Send(Request::Merkle {
                        n_val: self.n_val,
                        request,
                    })),
                    Step::Done(outcome) => {
                        self.stats.rounds = outcome.stats.rounds;
                        self.stats.differing_leaves = outcome.stats.differing_leaves;
                        if outcome.ranges.is_empty() {
                            return Ok(SyncStep::Done(self.stats));
                        }
                        let request = Request::ListKeys {
                            partition: self.partition,
                            n_val: self.n_val,
                            ranges: outcome.ranges.clone(),
                        };
                        self.phase = Phase::Listing(outcome.ranges);
                        Ok(SyncStep::Send(request))
                    }
                }
            }
            (Phase::Listing(ranges), Response::Keys(theirs)) => {
                let mine = replica.list_keys(self.partition, self.n_val, ranges)?;
                self.plan(replica, mine, theirs)?;
                self.phase = Phase::Syncing;
                self.next(replica)
            }
            (Phase::Syncing, Response::Items(items)) if self.awaiting_fetch => {
                self.stats.value_bytes += items.iter().map(value_bytes).sum::<u64>();
                self.stats.keys_fetched += replica.merge_many(wall_ms, &items)?;
                self.next(replica)
            }
            (Phase::Syncing, Response::Stored) if !self.awaiting_fetch => self.next(replica),
            (_, Response::Error(e)) => Err(protocol(format!("{:?}: {}", e.kind, e.message))),
            (_, other) => Err(protocol(format!("{other:?}"))),
        }
    }

    /// Decides which keys go which way.
    fn plan<S: Store>(
        &mut self,
        replica: &Replica<S>,
        mine: Vec<KeyVersion>,
        theirs: Vec<KeyVersion>,
    ) -> Result<()> {
        use std::collections::BTreeMap;
        let mut versions: BTreeMap<(BucketName, Key), (Option<u128>, Option<u128>)> =
            BTreeMap::new();
        for k in mine {
            versions.entry((k.bucket, k.key)).or_default().0 = Some(k.version);
        }
        for k in theirs {
            versions.entry((k.bucket, k.key)).or_default().1 = Some(k.version);
        }
        for ((bucket, key), (m, t)) in versions {
            if m == t {
                continue;
            }
            self.stats.keys_differing += 1;
            if t.is_some() && self.direction == Direction::Both {
                self.fetch.push((bucket.clone(), key.clone()));
            }
            if m.is_some()
                && let Some(object) = replica.get(&bucket, &key)?
            {
                self.push.push(Item {
                    bucket,
                    key,
                    n_val: self.n_val,
                    object,
                });
            }
        }
        Ok(())
    }

    /// The next batch to send, or done.
    fn next<S: Store>(&mut self, replica: &Replica<S>) -> Result<SyncStep> {
        let batch = replica.config().sync_batch.max(1);
        if !self.push.is_empty() {
            let items: Vec<Item> = self.push.drain(..batch.min(self.push.len())).collect();
            self.stats.keys_pushed += items.len() as u64;
            self.stats.value_bytes += items.iter().map(value_bytes).sum::<u64>();
            self.awaiting_fetch = false;
            return Ok(SyncStep::Send(Request::DeliverHints { items }));
        }
        if !self.fetch.is_empty() {
            let keys = self.fetch.drain(..batch.min(self.fetch.len())).collect();
            self.awaiting_fetch = true;
            return Ok(SyncStep::Send(Request::Fetch { keys }));
        }
        Ok(SyncStep::Done(self.stats))
    }
}

fn value_bytes(item: &Item) -> u64 {
    item.object.values().map(|v| v.len() as u64).sum()
}

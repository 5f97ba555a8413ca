//! The coordinator's side of one client operation: state machines that say
//! what to send and, fed the answers, when the quorum is met.
//!
//! Both are IO-free. The driver sends each [`Send`] (to itself too: it
//! serves those locally), feeds every answer or failure back with the
//! send's `tag`, and answers the client once an outcome appears.

use gyre_types::NodeId;
use gyre_versioning::Policy;
use gyre_wire::{Item, Object, Request, Response};

use crate::Error;

/// A request the coordinator wants sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Send {
    /// The node (possibly this one).
    pub to: NodeId,
    /// Identifies the attempt when its answer comes back.
    pub tag: usize,
    /// What to send.
    pub request: Request,
}

/// One attempt to place the write on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Attempt {
    /// Who was asked.
    node: NodeId,
    /// The primary it stands for (itself, or the owner of a hint).
    owner: NodeId,
    state: State,
    /// It did not answer within its hedge delay.
    slow: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Stored,
    Failed,
}

/// A write being replicated: the coordinator stored it locally (one of W
/// in every replica set it belongs to); now every other primary gets it,
/// and a primary that is down or fails is replaced by the next fallback of
/// the extended preference list, which stores the write as a hint for it
/// (sloppy quorum).
///
/// While a layout change moves data, a key has several replica sets (one
/// per layout in use) and the write needs W stores in *each*: a hint counts
/// for the sets of the primary it stands in for. The outcome comes once
/// every set has W, or once one of them can no longer get there.
///
/// A liveness verdict only orders whom to ask: a primary believed down is
/// replaced by a fallback, but if the fallbacks run out it is asked itself
/// before the write is given up, so a write succeeds whenever W replicas of
/// every set can be reached, whatever this node's failure detector thinks.
///
/// A node that is down but not yet judged so must not hold the write up
/// either: the driver calls [`WriteOp::on_slow`] for an attempt that has
/// not answered within its hedge delay, and, if the quorum now needs it,
/// the next fallback gets the write with a hint beside it (a hedged
/// request). Whichever of the two stores first covers the owner; an owner
/// counts once however many of its attempts store. A slow attempt whose
/// set can still reach W without it is not hedged (under load every
/// replica is sometimes slow, and a hint per slow reply would add load
/// where it hurts); if the others turn slow too, theirs is.
#[derive(Clone, Debug)]
pub struct WriteOp {
    item: Item,
    layout: u64,
    required: u8,
    /// The replica sets, each the key's primaries under one layout.
    sets: Vec<Vec<NodeId>>,
    /// Owners covered so far per set (the coordinator's own store
    /// included): each owner once, by its own store or a hint for it.
    stored: Vec<u8>,
    /// The owners covered (the coordinator included).
    covered: Vec<NodeId>,
    attempts: Vec<Attempt>,
    /// Fallbacks not yet used, in preference order.
    fallbacks: Vec<NodeId>,
    /// Primaries believed down and replaced by a fallback without being
    /// asked: asked themselves when their fallbacks fail.
    untried: Vec<NodeId>,
    reported: bool,
}

impl WriteOp {
    /// Starts replicating `item` (already stored by `me`, the coordinator)
    /// to `primaries` (the key's preference list, `me` among them) with
    /// write quorum `w`. `extended` is the partition's extended preference
    /// list (fallbacks are taken from it past the primaries); `is_up` is
    /// this node's failure detector.
    pub fn start(
        me: NodeId,
        item: Item,
        layout: u64,
        primaries: &[NodeId],
        extended: impl IntoIterator<Item = NodeId>,
        w: u8,
        is_up: impl Fn(NodeId) -> bool,
    ) -> (Self, Vec<Send>) {
        Self::start_sets(me, item, layout, &[primaries], extended, w, is_up)
    }

    /// Like [`WriteOp::start`], with one replica set per layout in use
    /// (oldest first; `me` a primary of at least one), each of which must
    /// store the write W times. `extended` is the newest layout's extended
    /// preference list; `layout` its version.
    pub fn start_sets(
        me: NodeId,
        item: Item,
        layout: u64,
        sets: &[&[NodeId]],
        extended: impl IntoIterator<Item = NodeId>,
        w: u8,
        is_up: impl Fn(NodeId) -> bool,
    ) -> (Self, Vec<Send>) {
        let mut owners: Vec<NodeId> = Vec::new();
        for &n in sets.iter().flat_map(|s| s.iter()) {
            if n != me && !owners.contains(&n) {
                owners.push(n);
            }
        }
        let fallbacks = extended
            .into_iter()
            .filter(|n| *n != me && !owners.contains(n))
            .filter(|n| is_up(*n))
            .collect();
        let sets: Vec<Vec<NodeId>> = sets.iter().map(|s| s.to_vec()).collect();
        let stored = sets.iter().map(|s| u8::from(s.contains(&me))).collect();
        let mut op = Self {
            item,
            layout,
            required: w,
            sets,
            stored,
            covered: vec![me],
            attempts: Vec::new(),
            fallbacks,
            untried: Vec::new(),
            reported: false,
        };
        let mut sends = Vec::new();
        for owner in owners {
            if is_up(owner) {
                sends.push(op.attempt(owner, owner));
            } else if let Some(send) = op.fallback_for(owner) {
                op.untried.push(owner);
                sends.push(send);
            } else {
                // No fallback left: the verdict may be wrong (a node that
                // just started has heard from nobody yet). Ask it.
                sends.push(op.attempt(owner, owner));
            }
        }
        (op, sends)
    }

    fn attempt(&mut self, node: NodeId, owner: NodeId) -> Send {
        let tag = self.attempts.len();
        self.attempts.push(Attempt {
            node,
            owner,
            state: State::Pending,
            slow: false,
        });
        let request = if node == owner {
            Request::ReplicaPut {
                layout: self.layout,
                item: self.item.clone(),
            }
        } else {
            Request::StoreHint {
                target: owner,
                item: self.item.clone(),
            }
        };
        Send {
            to: node,
            tag,
            request,
        }
    }

    fn fallback_for(&mut self, owner: NodeId) -> Option<Send> {
        if self.fallbacks.is_empty() {
            return None;
        }
        let node = self.fallbacks.remove(0);
        Some(self.attempt(node, owner))
    }

    /// Replicas that stored the write so far (the coordinator included), in
    /// the set that has the fewest.
    pub fn stored(&self) -> u8 {
        self.stored.iter().copied().min().unwrap_or(0)
    }

    /// Whether any attempt is still waiting for its answer.
    pub fn is_pending(&self) -> bool {
        self.attempts.iter().any(|a| a.state == State::Pending)
    }

    /// The answer to attempt `tag`: `true` if the node stored it durably.
    /// Returns what to send next (a fallback, or an untried primary, after
    /// a failure) and, the first time it is decided, the outcome.
    pub fn on_answer(
        &mut self,
        tag: usize,
        stored: bool,
    ) -> (Vec<Send>, Option<Result<(), Error>>) {
        let mut sends = Vec::new();
        let Some(attempt) = self.attempts.get_mut(tag) else {
            return (sends, None);
        };
        if attempt.state != State::Pending {
            return (sends, None);
        }
        let owner = attempt.owner;
        if stored {
            attempt.state = State::Stored;
            if !self.covered.contains(&owner) {
                self.covered.push(owner);
                for (set, count) in self.sets.iter().zip(&mut self.stored) {
                    if set.contains(&owner) {
                        *count = count.saturating_add(1);
                    }
                }
            }
        } else {
            attempt.state = State::Failed;
            // A hedge may already stand in for the owner.
            let standing = self
                .attempts
                .iter()
                .any(|a| a.owner == owner && a.state == State::Pending);
            if !standing && !self.covered.contains(&owner) {
                if let Some(send) = self.fallback_for(owner) {
                    sends.push(send);
                } else if let Some(i) = self.untried.iter().position(|&n| n == owner) {
                    self.untried.swap_remove(i);
                    sends.push(self.attempt(owner, owner));
                }
            }
        }
        (sends, self.outcome())
    }

    /// Attempt `tag` has not answered within its hedge delay. If its
    /// owner is not covered yet and some replica set can no longer reach W
    /// from the owners covered and those with an attempt still pending in
    /// time, the next fallback gets the write with a hint for it, while the
    /// attempt itself goes on (its store still counts). Each attempt is
    /// timed once; a fallback that is slow in turn may be hedged too.
    /// Returns what to send (nothing if not needed, the fallbacks ran out,
    /// the attempt answered, or the outcome is decided).
    pub fn on_slow(&mut self, tag: usize) -> Vec<Send> {
        let Some(attempt) = self.attempts.get_mut(tag) else {
            return Vec::new();
        };
        if attempt.state != State::Pending || attempt.slow || self.reported {
            return Vec::new();
        }
        attempt.slow = true;
        let owner = attempt.owner;
        if self.covered.contains(&owner) || !self.short_in_time() {
            return Vec::new();
        }
        if let Some(send) = self.fallback_for(owner) {
            return vec![send];
        }
        // No fallback left, and the owner was replaced without being
        // asked: ask it now.
        match self.untried.iter().position(|&n| n == owner) {
            Some(i) => {
                self.untried.swap_remove(i);
                vec![self.attempt(owner, owner)]
            }
            None => Vec::new(),
        }
    }

    /// Whether some replica set cannot reach W from the owners covered
    /// and those with an attempt pending that is not slow.
    fn short_in_time(&self) -> bool {
        self.sets.iter().any(|set| {
            let in_time = set
                .iter()
                .filter(|&&owner| {
                    self.covered.contains(&owner)
                        || self
                            .attempts
                            .iter()
                            .any(|a| a.owner == owner && a.state == State::Pending && !a.slow)
                })
                .count();
            in_time < usize::from(self.required)
        })
    }

    /// The attempts still waiting for an answer and not yet slow: their
    /// tags and the nodes they went to (what the driver times).
    pub fn in_time(&self) -> impl Iterator<Item = (usize, NodeId)> + '_ {
        self.attempts
            .iter()
            .enumerate()
            .filter(|(_, a)| a.state == State::Pending && !a.slow)
            .map(|(tag, a)| (tag, a.node))
    }

    fn outcome(&mut self) -> Option<Result<(), Error>> {
        if self.reported {
            return None;
        }
        if self.stored.iter().all(|&s| s >= self.required) {
            self.reported = true;
            return Some(Ok(()));
        }
        if !self.is_pending() {
            self.reported = true;
            return Some(Err(Error::Unavailable {
                answered: self.stored(),
                required: self.required,
                detail: self.shortfall(),
            }));
        }
        None
    }

    /// Which replica set fell short and whom the write asked.
    fn shortfall(&self) -> String {
        let primaries = self.attempts.iter().filter(|a| a.node == a.owner).count();
        let fallbacks = self.attempts.len() - primaries;
        let short = self
            .stored
            .iter()
            .position(|&s| s < self.required)
            .unwrap_or(0);
        let set = if self.sets.len() > 1 {
            format!("replica set {} of {}: ", short + 1, self.sets.len())
        } else {
            String::new()
        };
        format!(
            "{set}{} stored, asked {primaries} other primaries and {fallbacks} fallbacks",
            self.stored.get(short).copied().unwrap_or(0)
        )
    }

    /// The outcome if it is already decided at the start (W = 1: the
    /// coordinator's own write is enough; or nothing else to ask).
    pub fn initial_outcome(&mut self) -> Option<Result<(), Error>> {
        self.outcome()
    }
}

/// A read: the first primary is asked for its state of the key, every
/// other one for the version digest of its state only (as Cassandra's
/// digest reads), so a value crosses the network once per read, not once
/// per replica. A digest equal to the merged state's says that replica
/// holds exactly that state (a digest covers every dot, and a dot names one
/// value), so it counts towards R as a full answer would; a replica whose
/// digest differs is asked for its state, which is merged in.
///
/// The outcome comes once R primaries are covered by the merged state (and
/// at least one state came), with the merge of their states; or once that
/// can no longer happen (unavailable). If the primary asked for its state
/// fails, or is slow ([`ReadOp::on_slow`]), the next one is asked for its
/// state too, so a dead node not yet judged down costs a request latency,
/// never the read.
///
/// Once every primary has answered, [`ReadOp::repairs`] says which replicas
/// need the merged state (read repair) and whether a tombstone can be
/// purged.
#[derive(Clone, Debug)]
pub struct ReadOp {
    bucket: gyre_types::BucketName,
    key: gyre_types::Key,
    n_val: u8,
    layout: u64,
    required: u8,
    primaries: Vec<NodeId>,
    /// Per primary (same index): what it was asked and what it answered.
    replies: Vec<Reply>,
    merged: Object,
    /// `merged.version_digest()`, kept in step with `merged`.
    digest: u128,
    /// The digest of holding nothing (what a replica without the key
    /// answers): such a replica is covered by any state.
    empty: u128,
    policy: Policy,
    reported: bool,
}

/// What to do once a read has heard from every primary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repairs {
    /// Read repair: the merged state to replicas that lacked it.
    pub sends: Vec<Send>,
    /// Replicas repaired.
    pub repaired: usize,
    /// Whether the sends include purges of an old tombstone.
    pub purge: bool,
    /// Whether what is purged held expired values (storage reclaimed by
    /// expiry, not only tombstones).
    pub expired: bool,
}

/// What one primary of a read was asked, and what it answered.
#[derive(Clone, Debug, Default)]
struct Reply {
    /// Its state (`Got(None)`: it holds none).
    object: Ask<Option<Object>>,
    /// The digest of its state.
    digest: Ask<u128>,
    /// Its state was asked of another primary because it was slow.
    hedged: bool,
}

/// One request of a read to one primary.
#[derive(Clone, Debug, Default)]
enum Ask<T> {
    #[default]
    NotAsked,
    Pending,
    Got(T),
    Failed,
}

impl<T> Ask<T> {
    fn is_pending(&self) -> bool {
        matches!(self, Self::Pending)
    }
}

impl Reply {
    fn is_pending(&self) -> bool {
        self.object.is_pending() || self.digest.is_pending()
    }

    /// Its state's digest, if it answered with either (`empty`: the digest
    /// of holding nothing).
    fn version(&self, empty: u128) -> Option<u128> {
        match (&self.object, &self.digest) {
            (Ask::Got(o), _) => Some(o.as_ref().map_or(empty, Object::version_digest)),
            (_, Ask::Got(d)) => Some(*d),
            _ => None,
        }
    }
}

/// The digest of holding nothing (what a replica without the key answers).
fn empty_digest() -> u128 {
    Object::default().version_digest()
}

/// What a primary answered to one request of a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadAnswer {
    /// Its state of the key (`None`: it holds none).
    Object(Option<Object>),
    /// The version digest of its state.
    Digest(u128),
    /// It failed, refused, or did not answer in time.
    Failed,
}

impl From<Response> for ReadAnswer {
    fn from(response: Response) -> Self {
        match response {
            Response::Object(o) => Self::Object(o),
            Response::Digest(d) => Self::Digest(d),
            _ => Self::Failed,
        }
    }
}

impl ReadOp {
    /// Starts a read of `bucket`/`key` from `primaries` (each is asked,
    /// this node too, through a send to itself), with quorum `r`. The first
    /// primary is asked for its state and the others for its digest, so the
    /// driver puts first the one that answers cheapest (itself, if it is a
    /// primary).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        bucket: gyre_types::BucketName,
        key: gyre_types::Key,
        n_val: u8,
        layout: u64,
        primaries: &[NodeId],
        r: u8,
        policy: Policy,
    ) -> (Self, Vec<Send>) {
        let empty = empty_digest();
        let mut op = Self {
            bucket,
            key,
            n_val,
            layout,
            required: r,
            primaries: primaries.to_vec(),
            replies: vec![Reply::default(); primaries.len()],
            merged: Object::default(),
            digest: empty,
            empty,
            policy,
            reported: false,
        };
        let sends = (0..primaries.len())
            .map(|i| match i {
                0 => op.ask_object(i),
                _ => op.ask_digest(i),
            })
            .collect();
        (op, sends)
    }

    /// Asks primary `i` for its digest. Its tag is `i`.
    fn ask_digest(&mut self, i: usize) -> Send {
        self.replies[i].digest = Ask::Pending;
        Send {
            to: self.primaries[i],
            tag: i,
            request: Request::ReplicaDigest {
                layout: self.layout,
                bucket: self.bucket.clone(),
                key: self.key.clone(),
            },
        }
    }

    /// The tag of the request of primary `i`'s state: `i` for the first
    /// primary's first request, `n + i` for any other (n primaries), so
    /// every request of a read has its own tag.
    fn object_tag(&self, i: usize) -> usize {
        if i == 0 { 0 } else { self.primaries.len() + i }
    }

    /// Asks primary `i` for its state.
    fn ask_object(&mut self, i: usize) -> Send {
        self.replies[i].object = Ask::Pending;
        Send {
            to: self.primaries[i],
            tag: self.object_tag(i),
            request: Request::ReplicaGet {
                layout: self.layout,
                bucket: self.bucket.clone(),
                key: self.key.clone(),
            },
        }
    }

    /// Which primary a tag's request went to, and whether it asked for the
    /// state (else the digest).
    fn of_tag(&self, tag: usize) -> Option<(usize, bool)> {
        let n = self.primaries.len();
        match tag {
            0 if n > 0 => Some((0, true)),
            t if t < n => Some((t, false)),
            t if t > n && t < 2 * n => Some((t - n, true)),
            _ => None,
        }
    }

    /// The primary that request `tag` went to.
    pub fn asked(&self, tag: usize) -> Option<NodeId> {
        self.of_tag(tag).map(|(i, _)| self.primaries[i])
    }

    /// The answer to the request `tag`. Returns the requests it calls for
    /// (states of primaries whose digests differ from the merged state's,
    /// or of another primary if no state can come otherwise), and the
    /// outcome the first time it is decided: the merged state once R
    /// primaries are covered, or unavailability.
    pub fn on_answer(
        &mut self,
        tag: usize,
        answer: ReadAnswer,
    ) -> (Vec<Send>, Option<Result<Object, Error>>) {
        let Some((i, object)) = self.of_tag(tag) else {
            return (Vec::new(), None);
        };
        let reply = &mut self.replies[i];
        match (object, answer) {
            (true, ReadAnswer::Object(o)) if reply.object.is_pending() => {
                if let Some(o) = &o {
                    self.merged.sync(o, &self.policy);
                    self.digest = self.merged.version_digest();
                }
                reply.object = Ask::Got(o);
            }
            (false, ReadAnswer::Digest(d)) if reply.digest.is_pending() => {
                reply.digest = Ask::Got(d);
            }
            (true, _) if reply.object.is_pending() => reply.object = Ask::Failed,
            (false, _) if reply.digest.is_pending() => reply.digest = Ask::Failed,
            _ => return (Vec::new(), None),
        }
        let sends = self.follow_up();
        (sends, self.decide())
    }

    /// Whether the merged state covers (holds everything of) `reply`'s: it
    /// came and was merged, or its digest is the merged state's or that of
    /// holding nothing.
    fn covers(&self, reply: &Reply) -> bool {
        matches!(reply.object, Ask::Got(_))
            || matches!(reply.digest, Ask::Got(d) if d == self.digest || d == self.empty)
    }

    /// Whether some primary's state came.
    fn has_state(&self) -> bool {
        self.replies.iter().any(|r| matches!(r.object, Ask::Got(_)))
    }

    /// The states to ask for now: of each primary whose digest differs from
    /// the merged state's (once a state came to compare with), and of the
    /// next primary that may still answer if no state is on its way.
    fn follow_up(&mut self) -> Vec<Send> {
        let mut sends = Vec::new();
        if self.has_state() {
            for i in 0..self.replies.len() {
                let r = &self.replies[i];
                if matches!(r.object, Ask::NotAsked)
                    && !self.covers(r)
                    && r.version(self.empty).is_some()
                {
                    sends.push(self.ask_object(i));
                }
            }
        } else if !self.replies.iter().any(|r| r.object.is_pending())
            && let Some(send) = self.ask_another()
        {
            sends.push(send);
        }
        sends
    }

    /// Asks for the state of the first primary not asked for it yet that
    /// answered its digest, or else may still answer it.
    fn ask_another(&mut self) -> Option<Send> {
        let unasked = |r: &Reply| matches!(r.object, Ask::NotAsked);
        let i = (self.replies.iter())
            .position(|r| unasked(r) && matches!(r.digest, Ask::Got(_)))
            .or_else(|| (self.replies.iter()).position(|r| unasked(r) && r.digest.is_pending()))?;
        Some(self.ask_object(i))
    }

    /// The outcome, if it is decided now and was not reported before.
    fn decide(&mut self) -> Option<Result<Object, Error>> {
        if self.reported {
            return None;
        }
        let answered = self.answered();
        if answered >= self.required && self.has_state() {
            self.reported = true;
            return Some(Ok(self.merged.clone()));
        }
        // Who may still be covered: a replica with a request pending, and
        // one whose digest differs while a state is on its way (the
        // merged state may come to equal it).
        let states_coming = self.replies.iter().any(|r| r.object.is_pending());
        let pending = (self.replies.iter())
            .filter(|r| !self.covers(r))
            .filter(|r| r.is_pending() || (states_coming && r.version(self.empty).is_some()))
            .count();
        let state_may_come = self.has_state() || states_coming;
        if usize::from(answered) + pending < usize::from(self.required) || !state_may_come {
            self.reported = true;
            let failed = (self.replies.iter())
                .filter(|r| !r.is_pending() && r.version(self.empty).is_none())
                .count();
            return Some(Err(Error::Unavailable {
                answered,
                required: self.required,
                detail: format!("asked {} primaries, {failed} failed", self.primaries.len()),
            }));
        }
        None
    }

    /// The requests of the state of a primary that are still pending and
    /// were not hedged yet, by tag, with whom they went to.
    pub fn in_time(&self) -> impl Iterator<Item = (usize, NodeId)> + '_ {
        (self.replies.iter().enumerate())
            .filter(|(_, r)| r.object.is_pending() && !r.hedged)
            .map(|(i, _)| (self.object_tag(i), self.primaries[i]))
    }

    /// Request `tag` (of a primary's state) did not answer within its
    /// hedge delay: if no state came yet, the next primary is asked for its
    /// state too (a hedged request). Returns what to send.
    pub fn on_slow(&mut self, tag: usize) -> Vec<Send> {
        let Some((i, true)) = self.of_tag(tag) else {
            return Vec::new();
        };
        let reply = &self.replies[i];
        if self.reported || self.has_state() || !reply.object.is_pending() || reply.hedged {
            return Vec::new();
        }
        self.replies[i].hedged = true;
        self.ask_another().into_iter().collect()
    }

    fn answered(&self) -> u8 {
        let n = self.replies.iter().filter(|r| self.covers(r)).count();
        u8::try_from(n).unwrap_or(u8::MAX)
    }

    /// Whether every request to every primary was answered or failed.
    pub fn is_complete(&self) -> bool {
        !self.replies.iter().any(Reply::is_pending)
    }

    /// Once complete: the merged state to every replica that answered with
    /// less (read repair); and, if every primary answered with exactly the
    /// same state, deleted at `now_ms` (tombstones and expired values only),
    /// and gone since before `purge_before_ms` (wall-clock ms), purges of it
    /// to all of them instead.
    pub fn repairs(&self, now_ms: u64, purge_before_ms: u64) -> Repairs {
        let mut repairs = Repairs::default();
        if !self.is_complete() {
            return repairs;
        }
        let version = self.digest;
        let all_same = (self.replies.iter())
            .all(|r| !matches!(r.object, Ask::Got(None)) && r.version(self.empty) == Some(version));
        let old = self
            .merged
            .gone_since()
            .is_some_and(|ts| ts.physical_ms() < purge_before_ms);
        let tag_base = 2 * self.primaries.len();
        if all_same && self.merged.is_deleted_at(crate::read_time(now_ms)) && old {
            repairs.purge = true;
            repairs.expired = self.merged.siblings().any(|s| s.value.is_some());
            for (i, &to) in self.primaries.iter().enumerate() {
                repairs.sends.push(Send {
                    to,
                    tag: tag_base + i,
                    request: Request::Purge {
                        bucket: self.bucket.clone(),
                        key: self.key.clone(),
                        version,
                    },
                });
            }
            return repairs;
        }
        if self.merged.is_empty() {
            return repairs;
        }
        for (i, (&to, reply)) in self.primaries.iter().zip(&self.replies).enumerate() {
            // A replica that did not answer gets nothing: anti-entropy or
            // hinted handoff will reach it.
            let stale = reply.version(self.empty).is_some_and(|v| v != version);
            if stale {
                repairs.repaired += 1;
                repairs.sends.push(Send {
                    to,
                    tag: tag_base + i,
                    request: Request::ReplicaPut {
                        layout: self.layout,
                        item: Item {
                            bucket: self.bucket.clone(),
                            key: self.key.clone(),
                            n_val: self.n_val,
                            object: self.merged.clone(),
                        },
                    },
                });
            }
        }
        repairs
    }
}

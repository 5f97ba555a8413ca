use std::cmp::Ordering;
use std::fmt;

use gyre_types::{NodeId, Timestamp};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::{ConflictMode, Context, Dot, Error, Policy, Result, Sibling};

/// The versions of one key held by one replica: a dotted version vector set.
///
/// A state is a causal context (for each node that coordinated a write of
/// the key, how many of its writes this replica has seen) plus the dotted
/// siblings that are still live: every write the context covers is either
/// here or was superseded. Tombstones (deletes) are siblings without a value.
///
/// Laws (checked by property tests): for states `a`, `b`, `c` of one key
/// written and merged under one [`Policy`], [`sync`](Self::sync) is
/// - commutative: `a ⊔ b = b ⊔ a`,
/// - associative: `(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)`,
/// - idempotent: `a ⊔ a = a`,
///
/// where `=` compares the context and the set of `(dot, timestamp, value)`;
/// that is also what `==` and [`version_digest`](Self::version_digest) compare.
/// A dot is minted once by its coordinator, so two siblings with the same dot
/// are the same write.
///
/// In [`ConflictMode::Lww`] a state holds at most one sibling, and a merge
/// keeps the greatest `(timestamp, node, counter)` sibling of either side,
/// even one the other side's context covers: timestamps alone decide. (Keeping
/// the greatest of the causal survivors instead would not be associative: if
/// `x` loses to `y` in one merge and `y` was superseded in another replica,
/// the order of merges would decide whether `x` survives.)
///
/// Layout: entries sorted by node, one per node with a non-zero counter, each
/// holding that node's live siblings sorted by dot counter. Dots are explicit
/// (not Riak's implicit contiguous run) so that last-writer-wins can keep any
/// one of them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawDvvSet<V>", rename = "DvvSet")]
#[serde(bound(serialize = "V: Serialize", deserialize = "V: Deserialize<'de>"))]
pub struct DvvSet<V> {
    entries: Vec<Entry<V>>,
}

/// One node's part of a [`DvvSet`].
///
/// Invariants: `counter >= 1`; sibling dots name `node`, are strictly
/// increasing and lie in `1..=counter`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry<V> {
    node: NodeId,
    counter: u64,
    siblings: Vec<Sibling<V>>,
}

impl<V> Entry<V> {
    const fn empty(node: NodeId, counter: u64) -> Self {
        Self {
            node,
            counter,
            siblings: Vec::new(),
        }
    }
}

/// What a client gets back from a read: the live values of a key (siblings
/// when there are several) and the one [`Context`] to write them back with.
///
/// Tombstones are left out; a key that was deleted (or never written) reads
/// as no values, but its context still matters: a put with it supersedes the
/// tombstones.
#[derive(Clone, PartialEq, Eq)]
pub struct Read<'a, V> {
    siblings: Vec<&'a Sibling<V>>,
    context: Context,
}

impl<'a, V> Read<'a, V> {
    /// The live values, in dot order.
    pub fn values(&self) -> impl Iterator<Item = &'a V> + '_ {
        self.siblings.iter().filter_map(|s| s.value())
    }

    /// The live siblings (never tombstones), in dot order.
    pub fn siblings(&self) -> &[&'a Sibling<V>] {
        &self.siblings
    }

    /// The live sibling with the greatest `(timestamp, node, counter)`: what
    /// a protocol that cannot show siblings (plain Redis `GET`) would return.
    pub fn latest(&self) -> Option<&'a Sibling<V>> {
        self.siblings.iter().copied().max_by_key(|s| s.lww_key())
    }

    /// The position of [`latest`](Self::latest) among the live values (the
    /// order of [`values`](Self::values)); `None` when there are none.
    pub fn latest_index(&self) -> Option<usize> {
        let latest = self.latest()?.dot;
        self.siblings.iter().position(|s| s.dot == latest)
    }

    /// How many live values there are.
    pub fn len(&self) -> usize {
        self.siblings.len()
    }

    /// Whether the key has no live value (not found, or deleted).
    pub fn is_empty(&self) -> bool {
        self.siblings.is_empty()
    }

    /// Whether there are several live values in conflict.
    pub fn has_conflict(&self) -> bool {
        self.siblings.len() > 1
    }

    /// The context to send with the next write of this key.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Takes the context out of the read.
    pub fn into_context(self) -> Context {
        self.context
    }
}

impl<V: fmt::Debug> fmt::Debug for Read<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Read")
            .field("siblings", &self.siblings)
            .field("context", &self.context)
            .finish()
    }
}

/// Which siblings a merge keeps, beyond the context join.
#[derive(Clone, Copy)]
enum Keep {
    /// The dotted-version-vector rule: a sibling survives when both sides
    /// have it, or when the side without it has never seen its dot.
    Causal,
    /// Last writer wins: only this sibling (identified by its LWW key), if any.
    Winner(Option<(Timestamp, NodeId, u64)>),
}

impl Keep {
    /// For a sibling present on one side only, when the other side's counter
    /// for its node is `other_counter`.
    fn one_sided<V>(self, s: &Sibling<V>, other_counter: u64) -> bool {
        match self {
            Self::Causal => other_counter < s.dot.counter,
            Self::Winner(w) => w == Some(s.lww_key()),
        }
    }

    /// For a dot present on both sides (`s` being the copy that is kept).
    fn both_sided<V>(self, s: &Sibling<V>) -> bool {
        match self {
            Self::Causal => true,
            Self::Winner(w) => w == Some(s.lww_key()),
        }
    }
}

/// A sibling from the other state of a merge: borrowed (cloned if kept) or owned.
trait Incoming<V> {
    fn get(&self) -> &Sibling<V>;
    fn into_owned(self) -> Sibling<V>;
}

impl<V> Incoming<V> for Sibling<V> {
    fn get(&self) -> &Sibling<V> {
        self
    }
    fn into_owned(self) -> Sibling<V> {
        self
    }
}

impl<V: Clone> Incoming<V> for &Sibling<V> {
    fn get(&self) -> &Sibling<V> {
        self
    }
    fn into_owned(self) -> Sibling<V> {
        self.clone()
    }
}

/// An entry from the other state of a merge.
trait IncomingEntry<V> {
    type Sib: Incoming<V>;
    type Sibs: Iterator<Item = Self::Sib>;
    fn node(&self) -> NodeId;
    fn into_parts(self) -> (NodeId, u64, Self::Sibs);
}

impl<V> IncomingEntry<V> for Entry<V> {
    type Sib = Sibling<V>;
    type Sibs = std::vec::IntoIter<Sibling<V>>;
    fn node(&self) -> NodeId {
        self.node
    }
    fn into_parts(self) -> (NodeId, u64, Self::Sibs) {
        (self.node, self.counter, self.siblings.into_iter())
    }
}

impl<'a, V: Clone> IncomingEntry<V> for &'a Entry<V> {
    type Sib = &'a Sibling<V>;
    type Sibs = std::slice::Iter<'a, Sibling<V>>;
    fn node(&self) -> NodeId {
        self.node
    }
    fn into_parts(self) -> (NodeId, u64, Self::Sibs) {
        (self.node, self.counter, self.siblings.iter())
    }
}

/// One step of a merge of two sorted sequences.
enum Side<A, B> {
    /// Only in mine.
    Mine(A),
    /// Only in theirs.
    Theirs(B),
    /// In both, at the same position in the order.
    Both(A, B),
}

/// Walks two sequences sorted by the same key in step: a sort-merge join.
fn merge_join<A, B, K: Ord>(
    mine: impl Iterator<Item = A>,
    theirs: impl Iterator<Item = B>,
    key_a: impl Fn(&A) -> K,
    key_b: impl Fn(&B) -> K,
) -> impl Iterator<Item = Side<A, B>> {
    let mut a = mine.peekable();
    let mut b = theirs.peekable();
    std::iter::from_fn(move || {
        let order = match (a.peek(), b.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => key_a(x).cmp(&key_b(y)),
        };
        match order {
            Ordering::Less => a.next().map(Side::Mine),
            Ordering::Greater => b.next().map(Side::Theirs),
            Ordering::Equal => a.next().zip(b.next()).map(|(x, y)| Side::Both(x, y)),
        }
    })
}

/// Merges two entry lists (each sorted by node).
fn merge_entries<V, E: IncomingEntry<V>>(
    mine: Vec<Entry<V>>,
    theirs: impl Iterator<Item = E>,
    keep: Keep,
) -> Vec<Entry<V>> {
    let mut out = Vec::with_capacity(mine.len());
    for side in merge_join(mine.into_iter(), theirs, |x| x.node, |y| y.node()) {
        let entry = match side {
            Side::Mine(mut e) => {
                // The other side never saw this node: counter 0.
                e.siblings.retain(|s| keep.one_sided(s, 0));
                e
            }
            Side::Theirs(e) => {
                let (node, counter, sibs) = e.into_parts();
                let siblings = sibs
                    .filter(|s| keep.one_sided(s.get(), 0))
                    .map(Incoming::into_owned)
                    .collect();
                Entry {
                    node,
                    counter,
                    siblings,
                }
            }
            Side::Both(x, y) => {
                let (node, their_counter, sibs) = y.into_parts();
                let siblings = merge_siblings(x.siblings, x.counter, sibs, their_counter, keep);
                Entry {
                    node,
                    counter: x.counter.max(their_counter),
                    siblings,
                }
            }
        };
        out.push(entry);
    }
    out
}

/// Merges one node's siblings (each list sorted by dot counter).
fn merge_siblings<V, S: Incoming<V>>(
    mine: Vec<Sibling<V>>,
    my_counter: u64,
    theirs: impl Iterator<Item = S>,
    their_counter: u64,
    keep: Keep,
) -> Vec<Sibling<V>> {
    let mut out = Vec::with_capacity(mine.len());
    let sides = merge_join(
        mine.into_iter(),
        theirs,
        |x| x.dot.counter,
        |y| y.get().dot.counter,
    );
    for side in sides {
        let kept = match side {
            Side::Mine(x) => keep.one_sided(&x, their_counter).then_some(x),
            Side::Theirs(y) => keep.one_sided(y.get(), my_counter).then(|| y.into_owned()),
            Side::Both(x, y) => {
                // The same write on both sides. Should the copies differ
                // (only possible if a node id was reused), keep the later
                // stamp, so that the choice does not depend on merge order.
                let kept = if y.get().timestamp > x.timestamp {
                    y.into_owned()
                } else {
                    x
                };
                keep.both_sided(&kept).then_some(kept)
            }
        };
        out.extend(kept);
    }
    out
}

impl<V> DvvSet<V> {
    /// The state of a key nobody has written.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Whether this replica has seen no write of the key at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The causal context: every write this state has seen.
    pub fn context(&self) -> Context {
        Context::from_canonical(self.entries.iter().map(|e| (e.node, e.counter)).collect())
    }

    /// How many of `node`'s writes this state has seen.
    pub fn counter(&self, node: NodeId) -> u64 {
        self.entry(node).map_or(0, |e| e.counter)
    }

    /// Whether this state has seen everything `ctx` has.
    pub fn descends(&self, ctx: &Context) -> bool {
        ctx.iter().all(|(n, c)| self.counter(n) >= c)
    }

    /// Whether a sibling (value or tombstone) with this dot is held here.
    pub fn contains(&self, dot: Dot) -> bool {
        self.entry(dot.node).is_some_and(|e| {
            e.siblings
                .binary_search_by_key(&dot.counter, |s| s.dot.counter)
                .is_ok()
        })
    }

    /// Whether `self.sync(other, policy)` would leave `self` unchanged: this
    /// replica already knows everything `other` could tell it. (A replica
    /// whose state dominates another's holds its tombstones, or what
    /// superseded them.)
    pub fn dominates(&self, other: &DvvSet<V>, policy: &Policy) -> bool {
        if !other
            .entries
            .iter()
            .all(|e| self.counter(e.node) >= e.counter)
        {
            return false;
        }
        match policy.mode {
            ConflictMode::Siblings | ConflictMode::Counter => {
                // Siblings of `other` are all covered by our context, so they
                // can only come in as a later-stamped copy of a dot we hold.
                let theirs_ok = other.siblings().all(|s| {
                    self.sibling(s.dot)
                        .is_none_or(|mine| mine.timestamp >= s.timestamp)
                });
                // A sibling of ours that `other` has seen but dropped goes.
                let mine_ok = self
                    .siblings()
                    .all(|s| other.counter(s.dot.node) < s.dot.counter || other.contains(s.dot));
                theirs_ok && mine_ok
            }
            ConflictMode::Lww => {
                let winner = self
                    .siblings()
                    .chain(other.siblings())
                    .map(Sibling::lww_key)
                    .max();
                let mut mine = self.siblings();
                match (winner, mine.next(), mine.next()) {
                    (None, _, _) => true,
                    (Some(w), Some(only), None) => only.lww_key() == w,
                    _ => false,
                }
            }
        }
    }

    /// Every sibling, tombstones included, in dot order.
    pub fn siblings(&self) -> impl Iterator<Item = &Sibling<V>> + '_ {
        self.entries.iter().flat_map(|e| e.siblings.iter())
    }

    /// Takes the siblings out, in dot order.
    pub fn into_siblings(self) -> Vec<Sibling<V>> {
        self.entries.into_iter().flat_map(|e| e.siblings).collect()
    }

    /// The sibling (value or tombstone) with this dot, if it is held here.
    pub fn sibling(&self, dot: Dot) -> Option<&Sibling<V>> {
        let e = self.entry(dot.node)?;
        let i = e
            .siblings
            .binary_search_by_key(&dot.counter, |s| s.dot.counter)
            .ok()?;
        e.siblings.get(i)
    }

    /// How many siblings there are, tombstones included.
    pub fn sibling_count(&self) -> usize {
        self.entries.iter().map(|e| e.siblings.len()).sum()
    }

    /// The live values (tombstones left out), in dot order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.siblings().filter_map(Sibling::value)
    }

    /// Every value this replica holds and the context, expired values
    /// included: what the replica has, not what a client may see (that is
    /// [`read_at`](Self::read_at)).
    pub fn read(&self) -> Read<'_, V> {
        Read {
            siblings: self.siblings().filter(|s| !s.is_tombstone()).collect(),
            context: self.context(),
        }
    }

    /// What a client read at `now` returns: the values that have not
    /// expired, and the context (which covers the expired ones too, so a put
    /// with it supersedes them).
    pub fn read_at(&self, now: Timestamp) -> Read<'_, V> {
        Read {
            siblings: self.siblings().filter(|s| s.is_live_at(now)).collect(),
            context: self.context(),
        }
    }

    /// Whether the key is deleted here: there are siblings and every one of
    /// them is a tombstone. Expiry is not considered (see
    /// [`is_deleted_at`](Self::is_deleted_at)).
    pub fn is_deleted(&self) -> bool {
        let mut any = false;
        for s in self.siblings() {
            if !s.is_tombstone() {
                return false;
            }
            any = true;
        }
        any
    }

    /// Whether the key is gone at `now`: there are siblings and every one
    /// is a tombstone or a value expired at `now`. Such a state is what
    /// tombstone collection looks for: an expired value is a tombstone that
    /// was written in advance.
    pub fn is_deleted_at(&self, now: Timestamp) -> bool {
        let mut any = false;
        for s in self.siblings() {
            if s.is_live_at(now) {
                return false;
            }
            any = true;
        }
        any
    }

    /// Whether every sibling is a tombstone or a value that expires: the
    /// state turns deleted without any further write. The store checks this
    /// before it purges a state a coordinator judged deleted.
    pub fn is_transient(&self) -> bool {
        let mut any = false;
        for s in self.siblings() {
            if s.gone_at().is_none() {
                return false;
            }
            any = true;
        }
        any
    }

    /// When the last sibling stopped (or stops) being a value: the greatest
    /// tombstone timestamp or expiry, `None` if some sibling never does or
    /// there are none. Tombstone collection waits a grace period after it.
    pub fn gone_since(&self) -> Option<Timestamp> {
        let mut latest = None;
        for s in self.siblings() {
            let gone = s.gone_at()?;
            latest = latest.max(Some(gone));
        }
        latest
    }

    /// The greatest timestamp of any sibling (to advance a node's hybrid
    /// clock past what it stores), or `None` without siblings.
    pub fn max_timestamp(&self) -> Option<Timestamp> {
        self.siblings().map(|s| s.timestamp).max()
    }

    /// A stable 128-bit digest of the causal state, for Merkle anti-entropy.
    ///
    /// It covers the entries (node, counter) and each sibling's dot, timestamp,
    /// tombstone flag and expiry, not the value bytes: a dot names its value.
    /// States that are equal (`==`) have equal digests on every platform and
    /// in every version of this crate. The hashed bytes are, all integers
    /// big-endian: the tag `gyre-dvv-1`, the entry count (u64), then per entry
    /// its node (u64), counter (u64) and sibling count (u64), then per sibling
    /// its dot counter (u64), timestamp (u64) and one byte, 1 for a value and
    /// 0 for a tombstone, or 2 for a value that expires followed by its expiry
    /// (u64); the digest is XXH3-128 (seed 0) of them. (States without
    /// expiries hash as before expiry existed.)
    pub fn version_digest(&self) -> u128 {
        let mut h = xxhash_rust::xxh3::Xxh3Default::new();
        h.update(b"gyre-dvv-1");
        h.update(&(self.entries.len() as u64).to_be_bytes());
        for e in &self.entries {
            h.update(&e.node.as_u64().to_be_bytes());
            h.update(&e.counter.to_be_bytes());
            h.update(&(e.siblings.len() as u64).to_be_bytes());
            for s in &e.siblings {
                h.update(&s.dot.counter.to_be_bytes());
                h.update(&s.timestamp.as_u64().to_be_bytes());
                match (s.is_tombstone(), s.expires) {
                    (true, _) => h.update(&[0]),
                    (false, None) => h.update(&[1]),
                    (false, Some(expires)) => {
                        h.update(&[2]);
                        h.update(&expires.as_u64().to_be_bytes());
                    }
                }
            }
        }
        h.digest128()
    }

    /// A client put coordinated by `coordinator` at time `ts`, with the
    /// context `ctx` the client got from its last read of the key.
    ///
    /// Every sibling whose dot `ctx` covers is superseded and dropped; the
    /// others, written concurrently with what the client saw, survive
    /// alongside the new value. The new dot is
    /// `(coordinator, max(ctx[coordinator], self[coordinator]) + 1)` and the
    /// state's context absorbs `ctx`, so replicas that still hold superseded
    /// siblings drop them on sync.
    ///
    /// In [`ConflictMode::Lww`] the state keeps only the greatest
    /// `(timestamp, node, counter)` of the old siblings and the new value; the
    /// coordinator should stamp `ts` after observing
    /// [`max_timestamp`](Self::max_timestamp) so that its write wins locally.
    ///
    /// A write without a context (a blind write, like Redis `SET`) is
    /// [`put_blind`](Self::put_blind).
    ///
    /// # Errors
    /// [`Error::TooManySiblings`] if more than `policy.max_siblings` siblings
    /// would remain (in [`ConflictMode::Siblings`]), and
    /// [`Error::CounterOverflow`] if the coordinator's counter is exhausted.
    /// On error the state is unchanged.
    pub fn put(
        &mut self,
        ctx: &Context,
        value: V,
        coordinator: NodeId,
        ts: Timestamp,
        policy: &Policy,
    ) -> Result<Dot> {
        self.write(ctx, Some(value), None, coordinator, ts, policy)
    }

    /// A [`put`](Self::put) of a value that expires at `expires` (a reading
    /// of the coordinator's clock, usually `ts` plus a time to live): from
    /// then on it reads as absent ([`read_at`](Self::read_at)) and counts as
    /// deleted ([`is_deleted_at`](Self::is_deleted_at)). Making a key expire
    /// later, or never, is another put of its value with the read's context.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub fn put_expiring(
        &mut self,
        ctx: &Context,
        value: V,
        expires: Option<Timestamp>,
        coordinator: NodeId,
        ts: Timestamp,
        policy: &Policy,
    ) -> Result<Dot> {
        self.write(ctx, Some(value), expires, coordinator, ts, policy)
    }

    /// A put with this replica's own context: `put(&self.context(), …)`.
    ///
    /// It supersedes every sibling this replica holds; whatever was written
    /// concurrently elsewhere and has not reached this replica survives as a
    /// sibling when it does (in LWW mode the greater timestamp wins).
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub fn put_blind(
        &mut self,
        value: V,
        coordinator: NodeId,
        ts: Timestamp,
        policy: &Policy,
    ) -> Result<Dot> {
        let ctx = self.context();
        self.write(&ctx, Some(value), None, coordinator, ts, policy)
    }

    /// A client delete: a [`put`](Self::put) of a tombstone, with the same
    /// rules. The tombstone stays until collected by the store.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub fn delete(
        &mut self,
        ctx: &Context,
        coordinator: NodeId,
        ts: Timestamp,
        policy: &Policy,
    ) -> Result<Dot> {
        self.write(ctx, None, None, coordinator, ts, policy)
    }

    /// A delete with this replica's own context (like Redis `DEL`).
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub fn delete_blind(
        &mut self,
        coordinator: NodeId,
        ts: Timestamp,
        policy: &Policy,
    ) -> Result<Dot> {
        let ctx = self.context();
        self.write(&ctx, None, None, coordinator, ts, policy)
    }

    fn write(
        &mut self,
        ctx: &Context,
        value: Option<V>,
        expires: Option<Timestamp>,
        coordinator: NodeId,
        ts: Timestamp,
        policy: &Policy,
    ) -> Result<Dot> {
        let counter = ctx
            .get(coordinator)
            .max(self.counter(coordinator))
            .checked_add(1)
            .ok_or(Error::CounterOverflow { node: coordinator })?;
        let dot = Dot::new(coordinator, counter);
        if policy.mode != ConflictMode::Lww {
            let survivors: usize = self
                .entries
                .iter()
                .map(|e| {
                    let seen = ctx.get(e.node);
                    e.siblings.iter().filter(|s| s.dot.counter > seen).count()
                })
                .sum();
            let count = survivors.saturating_add(1);
            if count > policy.max_siblings {
                return Err(Error::TooManySiblings {
                    count,
                    max: policy.max_siblings,
                });
            }
            // Nothing fails from here on.
            for e in &mut self.entries {
                let seen = ctx.get(e.node);
                if seen > 0 {
                    e.siblings.retain(|s| s.dot.counter > seen);
                }
            }
        }
        self.join_context(ctx);
        let expires = if value.is_some() { expires } else { None };
        let new = Sibling {
            dot,
            timestamp: ts,
            value,
            expires,
        };
        match self.entries.binary_search_by_key(&coordinator, |e| e.node) {
            Ok(i) => {
                if let Some(e) = self.entries.get_mut(i) {
                    // `counter` exceeds every dot of this entry, so pushing
                    // keeps the siblings sorted.
                    e.counter = counter;
                    e.siblings.push(new);
                }
            }
            Err(i) => {
                let mut e = Entry::empty(coordinator, counter);
                e.siblings.push(new);
                self.entries.insert(i, e);
            }
        }
        if policy.mode == ConflictMode::Lww {
            self.keep_only_winner();
        }
        Ok(dot)
    }

    /// Merges another replica's state of the same key into this one: the
    /// contexts join, and a sibling survives if both sides hold it or if the
    /// side without it has never seen its dot (so a superseded value never
    /// comes back and a concurrent one is never lost). In
    /// [`ConflictMode::Lww`] only the greatest `(timestamp, node, counter)`
    /// sibling of either side survives.
    ///
    /// Never fails and ignores `max_siblings`: replication must not drop
    /// data. See the laws on [`DvvSet`].
    pub fn sync(&mut self, other: &DvvSet<V>, policy: &Policy)
    where
        V: Clone,
    {
        let keep = Self::keep_rule(self, other, policy);
        let mine = std::mem::take(&mut self.entries);
        self.entries = merge_entries(mine, other.entries.iter(), keep);
    }

    /// [`sync`](Self::sync) by value: merges two states without cloning any
    /// value.
    pub fn merge(mut self, other: DvvSet<V>, policy: &Policy) -> DvvSet<V> {
        let keep = Self::keep_rule(&self, &other, policy);
        let mine = std::mem::take(&mut self.entries);
        self.entries = merge_entries(mine, other.entries.into_iter(), keep);
        self
    }

    fn keep_rule(a: &DvvSet<V>, b: &DvvSet<V>, policy: &Policy) -> Keep {
        match policy.mode {
            ConflictMode::Siblings | ConflictMode::Counter => Keep::Causal,
            ConflictMode::Lww => {
                Keep::Winner(a.siblings().chain(b.siblings()).map(Sibling::lww_key).max())
            }
        }
    }

    /// Drops every sibling but the greatest `(timestamp, node, counter)`.
    fn keep_only_winner(&mut self) {
        let winner = self.siblings().map(Sibling::lww_key).max();
        for e in &mut self.entries {
            e.siblings.retain(|s| Some(s.lww_key()) == winner);
        }
    }

    /// Raises this state's counters to `ctx`'s. Drops no sibling.
    fn join_context(&mut self, ctx: &Context) {
        let mut missing = Vec::new();
        for (node, counter) in ctx.iter() {
            match self.entries.binary_search_by_key(&node, |e| e.node) {
                Ok(i) => {
                    if let Some(e) = self.entries.get_mut(i) {
                        e.counter = e.counter.max(counter);
                    }
                }
                Err(_) => missing.push(Entry::empty(node, counter)),
            }
        }
        if !missing.is_empty() {
            // One sort rather than one insertion per node: a client context
            // can name many nodes. Node ids are unique, so any sort will do.
            self.entries.append(&mut missing);
            self.entries.sort_unstable_by_key(|e| e.node);
        }
    }

    fn entry(&self, node: NodeId) -> Option<&Entry<V>> {
        let i = self.entries.binary_search_by_key(&node, |e| e.node).ok()?;
        self.entries.get(i)
    }
}

impl<V> Default for DvvSet<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: fmt::Debug> fmt::Debug for DvvSet<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DvvSet")
            .field("context", &self.context())
            .field("siblings", &self.siblings().collect::<Vec<_>>())
            .finish()
    }
}

impl<V: Serialize> Serialize for Entry<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        /// The siblings without their node, which the entry names once.
        struct Values<'a, V>(&'a [Sibling<V>]);
        impl<V: Serialize> Serialize for Values<'_, V> {
            fn serialize<S: Serializer>(
                &self,
                serializer: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                serializer.collect_seq(
                    self.0
                        .iter()
                        .map(|s| (s.dot.counter, s.timestamp, &s.value, s.expires)),
                )
            }
        }
        let mut st = serializer.serialize_struct("Entry", 3)?;
        st.serialize_field("node", &self.node)?;
        st.serialize_field("counter", &self.counter)?;
        st.serialize_field("values", &Values(&self.siblings))?;
        st.end()
    }
}

/// The serialized form of a [`DvvSet`], checked before it becomes one.
#[derive(Deserialize)]
#[serde(rename = "DvvSet", bound(deserialize = "V: Deserialize<'de>"))]
struct RawDvvSet<V> {
    #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, MAX_ENTRIES>")]
    entries: Vec<RawEntry<V>>,
}

/// Most entries (coordinating nodes) a decoded state may have: four times
/// the most members a layout holds, for nodes replaced over the years.
pub const MAX_ENTRIES: usize = 4096;

/// Most siblings one entry of a decoded state may have.
pub const MAX_ENTRY_SIBLINGS: usize = 4096;

/// The serialized form of an entry: siblings as `(dot counter, timestamp,
/// value, expiry)`.
#[derive(Deserialize)]
#[serde(rename = "Entry", bound(deserialize = "V: Deserialize<'de>"))]
struct RawEntry<V> {
    node: NodeId,
    counter: u64,
    #[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, MAX_ENTRY_SIBLINGS>")]
    values: Vec<SiblingParts<V>>,
}

impl<V> TryFrom<RawDvvSet<V>> for DvvSet<V> {
    type Error = Error;

    fn try_from(raw: RawDvvSet<V>) -> Result<Self> {
        Self::from_parts(
            raw.entries
                .into_iter()
                .map(|e| (e.node, e.counter, e.values)),
        )
    }
}

/// One node's part of a [`DvvSet`], as [`DvvSet::parts`] lists it: the node,
/// how many of its writes the state has seen, and its live siblings.
pub type EntryRef<'a, V> = (NodeId, u64, &'a [Sibling<V>]);

/// One sibling as [`DvvSet::from_parts`] takes it: its dot counter,
/// timestamp, value (`None`: a tombstone) and expiry.
pub type SiblingParts<V> = (u64, Timestamp, Option<V>, Option<Timestamp>);

impl<V> DvvSet<V> {
    /// The state's parts, for encoders: per node (ascending), the node, its
    /// counter and its live siblings (ascending dot counter). Every counter
    /// is at least 1 and every sibling's dot names the entry's node.
    pub fn parts(&self) -> impl ExactSizeIterator<Item = EntryRef<'_, V>> + '_ {
        self.entries
            .iter()
            .map(|e| (e.node, e.counter, e.siblings.as_slice()))
    }

    /// Rebuilds a state from its parts, for decoders: per node, the node,
    /// its counter, and its siblings as `(dot counter, timestamp, value,
    /// expiry)`.
    ///
    /// # Errors
    /// [`Error::InvalidState`] unless the parts are what [`parts`](Self::parts)
    /// produces: nodes strictly ascending, counters at least 1, sibling dot
    /// counters strictly ascending within `1..=counter`, no tombstone with an
    /// expiry.
    pub fn from_parts<S>(entries: impl IntoIterator<Item = (NodeId, u64, S)>) -> Result<Self>
    where
        S: IntoIterator<Item = SiblingParts<V>>,
    {
        let invalid = |reason| Error::InvalidState { reason };
        let entries = entries.into_iter();
        let mut out: Vec<Entry<V>> = Vec::with_capacity(entries.size_hint().0);
        for (node, counter, values) in entries {
            if let Some(prev) = out.last() {
                match prev.node.cmp(&node) {
                    Ordering::Less => {}
                    Ordering::Equal => return Err(invalid("duplicate node entry")),
                    Ordering::Greater => return Err(invalid("entries not sorted by node id")),
                }
            }
            if counter == 0 {
                return Err(invalid("entry with a zero counter"));
            }
            let values = values.into_iter();
            let mut siblings: Vec<Sibling<V>> = Vec::with_capacity(values.size_hint().0);
            for (dot_counter, timestamp, value, expires) in values {
                if dot_counter == 0 {
                    return Err(invalid("sibling with a zero dot counter"));
                }
                if dot_counter > counter {
                    return Err(invalid("sibling dot beyond its entry's counter"));
                }
                if siblings
                    .last()
                    .is_some_and(|p| p.dot.counter >= dot_counter)
                {
                    return Err(invalid("sibling dots not strictly increasing"));
                }
                if value.is_none() && expires.is_some() {
                    return Err(invalid("tombstone with an expiry"));
                }
                siblings.push(Sibling {
                    dot: Dot::new(node, dot_counter),
                    timestamp,
                    value,
                    expires,
                });
            }
            out.push(Entry {
                node,
                counter,
                siblings,
            });
        }
        Ok(Self { entries: out })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(x: u64) -> NodeId {
        NodeId::new(x)
    }

    fn ts(x: u64) -> Timestamp {
        Timestamp::from_u64(x)
    }

    fn raw(entries: Vec<(u64, u64, Vec<u64>)>) -> RawDvvSet<u8> {
        RawDvvSet {
            entries: entries
                .into_iter()
                .map(|(node, counter, dots)| RawEntry {
                    node: n(node),
                    counter,
                    values: dots
                        .into_iter()
                        .map(|d| (d, ts(d), Some(0), None))
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn valid_raw_states_are_accepted() {
        let s = DvvSet::try_from(raw(vec![(1, 3, vec![1, 3]), (2, 1, vec![])])).unwrap();
        assert_eq!(s.sibling_count(), 2);
        assert_eq!(s.context(), Context::from_entries([(n(1), 3), (n(2), 1)]));
        assert!(DvvSet::try_from(raw(vec![])).unwrap().is_empty());
    }

    #[test]
    fn raw_states_breaking_invariants_are_refused() {
        let bad = [
            (
                vec![(2, 1, vec![]), (1, 1, vec![])],
                "entries not sorted by node id",
            ),
            (vec![(1, 1, vec![]), (1, 2, vec![])], "duplicate node entry"),
            (vec![(1, 0, vec![])], "entry with a zero counter"),
            (vec![(1, 2, vec![0])], "sibling with a zero dot counter"),
            (
                vec![(1, 2, vec![3])],
                "sibling dot beyond its entry's counter",
            ),
            (
                vec![(1, 3, vec![2, 2])],
                "sibling dots not strictly increasing",
            ),
            (
                vec![(1, 3, vec![3, 1])],
                "sibling dots not strictly increasing",
            ),
        ];
        for (entries, reason) in bad {
            assert_eq!(
                DvvSet::try_from(raw(entries.clone())),
                Err(Error::InvalidState { reason }),
                "{entries:?}"
            );
        }
    }

    #[test]
    fn put_into_the_middle_of_the_entries_keeps_them_sorted() {
        let p = Policy::default();
        let mut s = DvvSet::new();
        for node in [5, 1, 3, 9, 0] {
            s.put(&Context::empty(), node, n(node), ts(node), &p)
                .unwrap();
        }
        let nodes: Vec<_> = s.context().iter().map(|e| e.0.as_u64()).collect();
        assert_eq!(nodes, vec![0, 1, 3, 5, 9]);
        let ctx = Context::from_entries([(n(2), 4), (n(7), 1), (n(10), 2)]);
        s.put(&ctx, 42, n(4), ts(42), &p).unwrap();
        let nodes: Vec<_> = s.context().iter().map(|e| e.0.as_u64()).collect();
        assert_eq!(nodes, vec![0, 1, 2, 3, 4, 5, 7, 9, 10]);
        assert_eq!(s.sibling_count(), 6);
    }

    /// The digest is a format: Merkle trees persist it and compare it across
    /// nodes running different builds. The pinned values were computed from
    /// the layout documented on `version_digest` with the reference xxHash
    /// (Python's `xxhash` package); if this fails, stored trees are stale.
    #[test]
    fn digest_is_pinned_and_ignores_value_bytes() {
        let p = Policy::default();
        let mut a = DvvSet::new();
        a.put(&Context::empty(), 1u8, n(1), ts(10), &p).unwrap();
        a.delete(&Context::empty(), n(2), ts(20), &p).unwrap();
        let mut b = DvvSet::new();
        b.put(&Context::empty(), 99u8, n(1), ts(10), &p).unwrap();
        b.delete(&Context::empty(), n(2), ts(20), &p).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.version_digest(), b.version_digest());
        assert_eq!(a.version_digest(), PINNED_DIGEST);
        assert_eq!(DvvSet::<u8>::new().version_digest(), PINNED_EMPTY_DIGEST);
        // Timestamps and tombstone flags count.
        let mut c = DvvSet::new();
        c.put(&Context::empty(), 1u8, n(1), ts(11), &p).unwrap();
        c.delete(&Context::empty(), n(2), ts(20), &p).unwrap();
        assert_ne!(a.version_digest(), c.version_digest());
        let mut d = DvvSet::new();
        d.put(&Context::empty(), 1u8, n(1), ts(10), &p).unwrap();
        d.put(&Context::empty(), 1u8, n(2), ts(20), &p).unwrap();
        assert_ne!(a.version_digest(), d.version_digest());
    }

    /// An expiring value hashes its flag 2 and its expiry (pinned the same
    /// way); a value that never expires hashes as before expiry existed.
    #[test]
    fn digest_of_an_expiring_value_is_pinned() {
        let p = Policy::default();
        let mut a = DvvSet::new();
        a.put_expiring(&Context::empty(), 1u8, Some(ts(1000)), n(1), ts(10), &p)
            .unwrap();
        assert_eq!(a.version_digest(), PINNED_EXPIRING_DIGEST);
        let mut b = DvvSet::new();
        b.put_expiring(&Context::empty(), 1u8, Some(ts(1001)), n(1), ts(10), &p)
            .unwrap();
        assert_ne!(a.version_digest(), b.version_digest());
        let mut c = DvvSet::new();
        c.put_expiring(&Context::empty(), 1u8, None, n(1), ts(10), &p)
            .unwrap();
        let mut d = DvvSet::new();
        d.put(&Context::empty(), 1u8, n(1), ts(10), &p).unwrap();
        assert_eq!(c, d);
        assert_eq!(c.version_digest(), d.version_digest());
        // A tombstone never carries an expiry, whatever the caller passes.
        let mut e = DvvSet::<u8>::new();
        e.write(&Context::empty(), None, Some(ts(5)), n(1), ts(10), &p)
            .unwrap();
        assert!(e.siblings().all(|s| s.expires.is_none()));
    }

    const PINNED_EXPIRING_DIGEST: u128 = 0x7652_b3f6_0849_d42b_3c4b_434c_d62d_ecc3;
    const PINNED_DIGEST: u128 = 0x092d_e064_184b_bbfd_bb2e_5bb2_3e1e_ee8d;
    const PINNED_EMPTY_DIGEST: u128 = 0x2f10_67aa_2aa9_dac1_cb18_027c_7eb4_93e2;

    #[test]
    fn counter_overflow_is_an_error_and_changes_nothing() {
        let mut s = DvvSet::new();
        s.put(&Context::empty(), 1u8, n(1), ts(1), &Policy::default())
            .unwrap();
        let before = s.clone();
        let ctx = Context::from_entries([(n(1), u64::MAX)]);
        assert_eq!(
            s.put(&ctx, 2, n(1), ts(2), &Policy::default()),
            Err(Error::CounterOverflow { node: n(1) })
        );
        assert_eq!(s, before);
    }
}

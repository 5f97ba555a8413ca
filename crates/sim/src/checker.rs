//! The checker: what must hold of a run's history and of every replica
//! once the faults stopped and the cluster settled.
//!
//! Values are unique per write (`c{client}-{seq}`), so a value names the
//! put that wrote it. An *acknowledged* write is one whose outcome is
//! [`Outcome::Written`]: its dot and `supersedes` (the context it was made
//! with) are known. A write with an *unknown* outcome (unavailable, timed
//! out, failed, its node crashed) may or may not have been applied, and
//! its dot is unknown; a write [`Outcome::Refused`] was not applied.
//!
//! For every key, with `F` the final state (the replicas must be equal; if
//! they are not, their merge is checked and the divergence reported):
//!
//! 1. **No acknowledged write is lost.** Each acknowledged write's dot is
//!    covered by `F`'s context, and either `F` holds a sibling with that
//!    dot (with that write's value, or a tombstone for a delete), or the dot
//!    is covered by the context of another write that may have been
//!    applied: any acknowledged write's `supersedes`, or the context sent
//!    with a put or delete whose outcome is unknown. Beyond that exactly
//!    one excuse is allowed, because a blind write's `supersedes` is the
//!    coordinator's local context and only its reply reveals it: a *blind*
//!    write with an unknown outcome that ended after the lost write started
//!    (so its coordinator may have seen it). A write whose node crashed
//!    under it counts as ending [`CRASH_IN_FLIGHT`] after the crash: a
//!    write that node had forwarded is still in flight that long, and its
//!    primary may mint it then. Such excused writes are
//!    counted in [`CheckStats::excused_by_unknown_blind`].
//! 2. **Replicas converge**: every primary of the key holds the same
//!    version digest ([`Violation::Diverged`]); across the cluster, the
//!    primaries of every partition have equal Merkle roots
//!    ([`Violation::RootsDiffer`]); the trees agree with the data.
//! 3. **Nothing superseded comes back**: no sibling of `F` (value or
//!    tombstone) has a dot covered by the `supersedes` of an acknowledged
//!    write (a delete: a deleted value resurrected; a put: an overwritten
//!    value resurrected), or by the context of an unknown-outcome put whose
//!    value is in `F` (so it was applied).
//! 4. **Siblings only for concurrent writes**: of two siblings of `F`,
//!    neither was written with a context covering the other's dot.
//! 5. **Every hint is delivered**: no store holds a hint.
//! 6. **Expiry**: no read that started [`EXPIRY_TOLERANCE`] after an
//!    acknowledged put's end plus its time to live returned its value
//!    (nothing expired is read again, whatever the faults); and every final
//!    sibling of an acknowledged put carries the expiry it asked for: its
//!    time to live after a stamp taken during the put (so nothing expires
//!    early or lives on), none if it asked for none.
//!
//! And of identity: no two acknowledged writes share a dot, a sibling's
//! value was written by a put of the history, under the dot its
//! acknowledgement named; every value a read returned was written by a put
//! of that key.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use gyre_storage::Object;
use gyre_types::{Key, NodeId};
use gyre_versioning::{Context, Dot, Policy};

use crate::history::{History, Outcome, Record};

/// One key's state on each of its primaries at the end of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalKey {
    /// The key.
    pub key: Key,
    /// Each primary and what it holds (`None`: no record of the key).
    pub replicas: Vec<(NodeId, Option<Object>)>,
}

impl FinalKey {
    /// Whether every primary holds the same version, as anti-entropy sees
    /// it (equal version digests).
    pub fn is_converged(&self) -> bool {
        let digests: Vec<Option<u128>> = self
            .replicas
            .iter()
            .map(|(_, o)| o.as_ref().map(Object::version_digest))
            .collect();
        digests.windows(2).all(|w| w[0] == w[1])
    }

    /// Whether every primary holds exactly the same state, values included
    /// (a version digest covers dots, not value bytes: one dot holding two
    /// values would hide from anti-entropy).
    pub fn is_identical(&self) -> bool {
        self.replicas.windows(2).all(|w| w[0].1 == w[1].1)
    }

    /// The merge of every primary's state (`None` if none holds the key).
    pub fn merged(&self) -> Option<Object> {
        let policy = Policy::default();
        let mut merged: Option<Object> = None;
        for (_, state) in &self.replicas {
            if let Some(state) = state {
                match &mut merged {
                    Some(m) => m.sync(state, &policy),
                    None => merged = Some(state.clone()),
                }
            }
        }
        merged
    }
}

/// What the replicas hold at the end of a run ([`crate::Cluster::snapshot`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Each workload key on each of its primaries.
    pub keys: Vec<FinalKey>,
    /// Partitions whose primaries' Merkle roots differ.
    pub root_mismatches: Vec<String>,
    /// Stores that still hold hints: per node, hints per target.
    pub hints_left: Vec<(NodeId, BTreeMap<NodeId, u64>)>,
    /// Anything else wrong (unreadable records, trees that disagree with
    /// the data, no layout).
    pub problems: Vec<String>,
}

impl Snapshot {
    /// Whether every replica agrees and no hint is left.
    pub fn is_converged(&self) -> bool {
        self.keys.iter().all(FinalKey::is_converged)
            && self.root_mismatches.is_empty()
            && self.hints_left.is_empty()
            && self.problems.is_empty()
    }
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// An acknowledged write is neither in the final state nor superseded
    /// by a write that saw it (rule 1).
    LostWrite {
        /// The key.
        key: Key,
        /// The write.
        write: String,
    },
    /// The primaries of a key hold different versions, or different
    /// values under one version (rule 2).
    Diverged {
        /// The key.
        key: Key,
        /// How they differ.
        detail: String,
    },
    /// A partition's primaries have different Merkle roots (rule 2).
    RootsDiffer(String),
    /// The cluster did not converge within the bound after the heal
    /// (rule 2).
    NotConverged(String),
    /// A final sibling was superseded by a write that saw it: a deleted or
    /// overwritten version came back (rule 3).
    Resurrected {
        /// The key.
        key: Key,
        /// The sibling that should be gone.
        sibling: String,
        /// The write whose context covered it.
        by: String,
    },
    /// Two final siblings, one written with a context that covered the
    /// other (rule 4).
    FalseSiblings {
        /// The key.
        key: Key,
        /// The sibling that should be gone.
        sibling: String,
        /// The sibling whose write saw it.
        by: String,
    },
    /// Hints were left undelivered (rule 5).
    HintsLeft {
        /// The node holding them.
        node: NodeId,
        /// Hints per target.
        backlog: BTreeMap<NodeId, u64>,
    },
    /// One dot names two different writes.
    DotReused {
        /// The key.
        key: Key,
        /// What was seen.
        detail: String,
    },
    /// A value that no put of the key wrote (in the final state or a read).
    UnknownValue {
        /// The key.
        key: Key,
        /// Where it was seen.
        detail: String,
    },
    /// A read that started after a write was acknowledged returned a
    /// context that had not seen it (checked where R + W > N and no fault
    /// keeps reads and writes apart: [`stale_reads`]).
    StaleRead {
        /// The key.
        key: Key,
        /// The read and the write it missed.
        detail: String,
    },
    /// A request was refused although, for the whole of it, a quorum of
    /// its key's primaries ran and reached the node asked and each other
    /// ([`crate::availability`]).
    Refused {
        /// The key.
        key: Key,
        /// The request and why it was servable.
        detail: String,
    },
    /// A read returned a value after it expired, or a final sibling
    /// carries another expiry than its put asked for (rule 6).
    Expiry {
        /// The key.
        key: Key,
        /// The read or sibling, and the put.
        detail: String,
    },
    /// Anything else (unreadable state, trees that disagree with data).
    Problem(String),
}

fn key_str(key: &Key) -> String {
    String::from_utf8_lossy(key.as_bytes()).into_owned()
}

fn value_str(v: &Option<Bytes>) -> String {
    match v {
        Some(v) => String::from_utf8_lossy(v).into_owned(),
        None => "<tombstone>".to_owned(),
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LostWrite { key, write } => {
                write!(f, "lost acknowledged write on {}: {write}", key_str(key))
            }
            Self::Diverged { key, detail } => {
                write!(f, "replicas of {} differ: {detail}", key_str(key))
            }
            Self::RootsDiffer(what) => write!(f, "Merkle roots differ: {what}"),
            Self::NotConverged(what) => write!(f, "not converged: {what}"),
            Self::Resurrected { key, sibling, by } => write!(
                f,
                "superseded version came back on {}: {sibling}, superseded by {by}",
                key_str(key)
            ),
            Self::FalseSiblings { key, sibling, by } => write!(
                f,
                "false siblings on {}: {sibling} beside {by}, whose write saw it",
                key_str(key)
            ),
            Self::HintsLeft { node, backlog } => {
                write!(f, "{node} still holds hints: {backlog:?}")
            }
            Self::DotReused { key, detail } => {
                write!(f, "one dot, two writes on {}: {detail}", key_str(key))
            }
            Self::UnknownValue { key, detail } => {
                write!(f, "value never written on {}: {detail}", key_str(key))
            }
            Self::StaleRead { key, detail } => {
                write!(f, "stale read on {}: {detail}", key_str(key))
            }
            Self::Refused { key, detail } => {
                write!(f, "refused while servable on {}: {detail}", key_str(key))
            }
            Self::Expiry { key, detail } => {
                write!(f, "expiry broken on {}: {detail}", key_str(key))
            }
            Self::Problem(what) => write!(f, "{what}"),
        }
    }
}

impl Violation {
    /// The key the violation is about, if it is about one.
    pub fn key(&self) -> Option<&Key> {
        match self {
            Self::LostWrite { key, .. }
            | Self::Diverged { key, .. }
            | Self::Resurrected { key, .. }
            | Self::FalseSiblings { key, .. }
            | Self::DotReused { key, .. }
            | Self::UnknownValue { key, .. }
            | Self::StaleRead { key, .. }
            | Self::Refused { key, .. }
            | Self::Expiry { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// What the checker saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckStats {
    /// Writes acknowledged to their client.
    pub acked_writes: u64,
    /// Of those, still a sibling of the final state.
    pub present: u64,
    /// Of those, superseded by a write whose context covered them.
    pub superseded: u64,
    /// Of those, gone with only an unknown-outcome blind write to explain
    /// it (allowed; see rule 1).
    pub excused_by_unknown_blind: u64,
    /// Writes whose outcome is unknown.
    pub unknown_writes: u64,
    /// Keys whose final state has several live values.
    pub keys_with_siblings: u64,
    /// Keys whose final state is deleted or empty.
    pub keys_deleted: u64,
}

/// The checker's verdict on one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Check {
    /// Every broken invariant (empty: the run passed).
    pub violations: Vec<Violation>,
    /// What was checked.
    pub stats: CheckStats,
}

/// A write whose context is known, and whether it is known to be applied.
struct Superseder<'a> {
    record: &'a Record,
    dot: Option<Dot>,
    context: Context,
    applied: bool,
}

fn describe(r: &Record, dot: Option<Dot>) -> String {
    let dot = dot.map_or_else(|| "?".to_owned(), |d| d.to_string());
    format!(
        "c{}#{} {:?} {} (dot {dot})",
        r.client,
        r.seq,
        r.op,
        value_str(&r.value)
    )
}

/// Read-your-acknowledged-writes, for runs where R + W > N and nothing
/// separates reads from writes (no message fault, partition or crash; layout
/// changes allowed: writes reach W replicas of every layout in use, reads
/// use one of them): every read that started after a write of its key was
/// acknowledged returns a context that covers the write's dot.
pub fn stale_reads(history: &History) -> Vec<Violation> {
    let mut out = Vec::new();
    for read in &history.ops {
        let Outcome::Read { context, .. } = &read.outcome else {
            continue;
        };
        let Ok(seen) = Context::from_bytes(context) else {
            continue;
        };
        for w in history.ops_on(&read.key) {
            if let Outcome::Written { dot, .. } = &w.outcome
                && w.end < read.start
                && !seen.covers(*dot)
            {
                out.push(Violation::StaleRead {
                    key: read.key.clone(),
                    detail: format!("{read} missed {w}, acknowledged before it started"),
                });
            }
        }
    }
    out
}

/// How long after its node crashed an operation may still take effect: a
/// write that node forwarded before the crash, and the permit it granted,
/// are still in flight for up to one message delay (the simulator's
/// longest is its base 5 ms plus 80 ms of message faults), and the primary
/// mints the write when the permit arrives.
pub const CRASH_IN_FLIGHT: std::time::Duration = std::time::Duration::from_millis(100);

/// The latest an operation may have taken effect: its end, or for one
/// whose node crashed under it, [`CRASH_IN_FLIGHT`] later.
fn effective_end(op: &Record) -> std::time::Duration {
    if matches!(op.outcome, Outcome::Crashed) {
        op.end + CRASH_IN_FLIGHT
    } else {
        op.end
    }
}

/// How far apart two nodes' readings of the simulated wall clock may be:
/// each node counts milliseconds from its own start, so their truncations
/// differ by a millisecond or so. Rule 6 allows this much.
pub const EXPIRY_TOLERANCE: std::time::Duration = std::time::Duration::from_millis(5);

/// Rule 6, for one key's operations and final state.
fn check_expiry(
    key: &Key,
    ops: &[&Record],
    puts_by_value: &BTreeMap<&Bytes, &Record>,
    finals: &Object,
    v: &mut Vec<Violation>,
) {
    let acked_ttl = |value: &Bytes| {
        let put = puts_by_value.get(value)?;
        matches!(put.outcome, Outcome::Written { .. }).then_some((*put, put.ttl))
    };
    for r in ops {
        let Outcome::Read { values, .. } = &r.outcome else {
            continue;
        };
        for value in values {
            if let Some((put, Some(ttl))) = acked_ttl(value)
                && r.start >= put.end + ttl + EXPIRY_TOLERANCE
            {
                v.push(Violation::Expiry {
                    key: key.clone(),
                    detail: format!(
                        "{} returned {} at {:?}, which expired by {:?}",
                        describe(r, None),
                        describe(put, None),
                        r.start,
                        put.end + ttl
                    ),
                });
            }
        }
    }
    let wall = |d: std::time::Duration| crate::cluster::WALL_BASE_MS + d.as_millis() as u64;
    for s in finals.siblings() {
        let Some((put, ttl)) = s.value.as_ref().and_then(&acked_ttl) else {
            continue;
        };
        let stored = s.expires.map(gyre_types::Timestamp::physical_ms);
        let fits = match (ttl, stored) {
            (None, None) => true,
            (Some(ttl), Some(at)) => {
                let tolerance = EXPIRY_TOLERANCE.as_millis() as u64;
                (wall(put.start + ttl).saturating_sub(tolerance)..=wall(put.end + ttl) + tolerance)
                    .contains(&at)
            }
            _ => false,
        };
        if !fits {
            v.push(Violation::Expiry {
                key: key.clone(),
                detail: format!(
                    "final sibling {} of {} expires at {stored:?}, asked for {ttl:?} (put from {} to {} ms)",
                    s.dot,
                    describe(put, None),
                    wall(put.start),
                    wall(put.end)
                ),
            });
        }
    }
}

/// Checks `history` against `snapshot` (the rules are in the module docs).
pub fn check(history: &History, snapshot: &Snapshot) -> Check {
    let mut out = Check::default();
    for fk in &snapshot.keys {
        check_key(history, fk, &mut out);
    }
    for m in &snapshot.root_mismatches {
        out.violations.push(Violation::RootsDiffer(m.clone()));
    }
    for (node, backlog) in &snapshot.hints_left {
        out.violations.push(Violation::HintsLeft {
            node: *node,
            backlog: backlog.clone(),
        });
    }
    for p in &snapshot.problems {
        out.violations.push(Violation::Problem(p.clone()));
    }
    out
}

fn check_key(history: &History, fk: &FinalKey, out: &mut Check) {
    let key = &fk.key;
    let v = &mut out.violations;
    if !fk.is_converged() {
        let digests: Vec<_> = fk
            .replicas
            .iter()
            .map(|(n, o)| (*n, o.as_ref().map(Object::version_digest)))
            .collect();
        v.push(Violation::Diverged {
            key: key.clone(),
            detail: format!("version digests {digests:x?}"),
        });
    } else if !fk.is_identical() {
        v.push(Violation::Diverged {
            key: key.clone(),
            detail: format!("equal version digests, different states {:?}", fk.replicas),
        });
    }
    let finals = fk.merged().unwrap_or_default();
    let final_context = finals.context();
    let siblings: Vec<(Dot, Option<Bytes>)> = finals
        .siblings()
        .map(|s| (s.dot, s.value.clone()))
        .collect();
    let live = siblings.iter().filter(|(_, v)| v.is_some()).count();
    if live > 1 {
        out.stats.keys_with_siblings += 1;
    }
    if live == 0 {
        out.stats.keys_deleted += 1;
    }

    let ops: Vec<&Record> = history.ops_on(key).collect();
    let puts_by_value: BTreeMap<&Bytes, &Record> = ops
        .iter()
        .filter_map(|r| Some((r.value.as_ref()?, *r)))
        .collect();

    // Values read must have been written.
    for r in &ops {
        if let Outcome::Read { values, .. } = &r.outcome {
            for value in values {
                if !puts_by_value.contains_key(value) {
                    v.push(Violation::UnknownValue {
                        key: key.clone(),
                        detail: format!("read by {}", describe(r, None)),
                    });
                }
            }
        }
    }

    check_expiry(key, &ops, &puts_by_value, &finals, v);

    // Acknowledged writes; a dot names one write.
    let mut acked: Vec<(&Record, Dot, &Context)> = Vec::new();
    let mut by_dot: BTreeMap<Dot, &Record> = BTreeMap::new();
    for r in ops.iter().filter(|r| r.op.is_write()) {
        match &r.outcome {
            Outcome::Written { dot, supersedes } => {
                if let Some(other) = by_dot.insert(*dot, r) {
                    v.push(Violation::DotReused {
                        key: key.clone(),
                        detail: format!(
                            "{} and {} were both acknowledged with dot {dot}",
                            describe(other, Some(*dot)),
                            describe(r, Some(*dot))
                        ),
                    });
                }
                acked.push((r, *dot, supersedes));
            }
            o if o.is_unknown() => out.stats.unknown_writes += 1,
            _ => {}
        }
    }
    out.stats.acked_writes += acked.len() as u64;

    // Every final sibling is a write of the history, under its own dot.
    let mut final_dot_of_value: BTreeMap<&Bytes, Dot> = BTreeMap::new();
    for (dot, value) in &siblings {
        match value {
            Some(value) => match puts_by_value.get(value) {
                None => v.push(Violation::UnknownValue {
                    key: key.clone(),
                    detail: format!(
                        "final sibling {dot} holds {}",
                        String::from_utf8_lossy(value)
                    ),
                }),
                Some(r) => {
                    final_dot_of_value.insert(value, *dot);
                    if let Outcome::Written { dot: acked_dot, .. } = r.outcome
                        && acked_dot != *dot
                    {
                        v.push(Violation::DotReused {
                            key: key.clone(),
                            detail: format!(
                                "{} is in the final state under dot {dot}",
                                describe(r, Some(acked_dot))
                            ),
                        });
                    }
                }
            },
            None => {
                if let Some(r) = by_dot.get(dot)
                    && !r.op.is_delete()
                {
                    v.push(Violation::DotReused {
                        key: key.clone(),
                        detail: format!(
                            "{} acknowledged with dot {dot}, a tombstone in the final state",
                            describe(r, Some(*dot))
                        ),
                    });
                }
            }
        }
    }

    // The writes whose contexts are known.
    let mut superseders: Vec<Superseder<'_>> = acked
        .iter()
        .map(|(r, dot, ctx)| Superseder {
            record: r,
            dot: Some(*dot),
            context: (*ctx).clone(),
            applied: true,
        })
        .collect();
    for r in ops
        .iter()
        .filter(|r| r.op.is_write() && r.outcome.is_unknown())
    {
        if let Some(context) = r.sent_context() {
            let dot = r
                .value
                .as_ref()
                .and_then(|val| final_dot_of_value.get(val).copied());
            superseders.push(Superseder {
                record: r,
                dot,
                context,
                applied: dot.is_some(),
            });
        }
    }

    // Rule 1: no acknowledged write lost.
    for (r, dot, _) in &acked {
        // Its dot, holding its value (or a tombstone for a delete).
        let present = siblings.iter().any(|(d, val)| d == dot && *val == r.value);
        let covered = superseders
            .iter()
            .any(|s| !std::ptr::eq(s.record, *r) && s.context.covers(*dot));
        if !final_context.covers(*dot) {
            v.push(Violation::LostWrite {
                key: key.clone(),
                write: format!(
                    "{} (the final context {final_context:?} has not seen it)",
                    describe(r, Some(*dot))
                ),
            });
        } else if present {
            out.stats.present += 1;
        } else if covered {
            out.stats.superseded += 1;
        } else if ops.iter().any(|b| {
            b.op.is_blind()
                && b.outcome.is_unknown()
                && effective_end(b) > r.start
                && !std::ptr::eq(*b, *r)
        }) {
            out.stats.excused_by_unknown_blind += 1;
        } else {
            v.push(Violation::LostWrite {
                key: key.clone(),
                write: format!(
                    "{} is not in the final state {:?} and no write saw it",
                    describe(r, Some(*dot)),
                    siblings
                        .iter()
                        .map(|(d, val)| format!("{d}={}", value_str(val)))
                        .collect::<Vec<_>>()
                ),
            });
        }
    }

    // Rules 3 and 4: nothing a known write superseded is in the final state.
    for (dot, value) in &siblings {
        let sibling = format!("{dot}={}", value_str(value));
        for s in superseders.iter().filter(|s| s.applied) {
            if s.dot == Some(*dot) || !s.context.covers(*dot) {
                continue;
            }
            let by = describe(s.record, s.dot);
            let both_final = s.dot.is_some_and(|d| siblings.iter().any(|(f, _)| *f == d));
            if both_final && !s.record.op.is_delete() && value.is_some() {
                v.push(Violation::FalseSiblings {
                    key: key.clone(),
                    sibling: sibling.clone(),
                    by,
                });
            } else {
                v.push(Violation::Resurrected {
                    key: key.clone(),
                    sibling: sibling.clone(),
                    by,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gyre_types::Timestamp;

    use crate::history::OpKind;

    use super::*;

    const N1: NodeId = NodeId::new(1);
    const N2: NodeId = NodeId::new(2);

    fn key() -> Key {
        Key::new(b"k".to_vec()).unwrap()
    }

    fn record(seq: u64, op: OpKind, value: Option<&str>, outcome: Outcome) -> Record {
        Record {
            client: 0,
            seq,
            node: N1,
            op,
            key: key(),
            value: value.map(|v| Bytes::from(v.to_owned())),
            context: None,
            ttl: None,
            start: Duration::from_millis(seq * 10),
            end: Duration::from_millis(seq * 10 + 5),
            outcome,
        }
    }

    fn written(node: NodeId, counter: u64, ctx: &[(NodeId, u64)]) -> Outcome {
        Outcome::Written {
            dot: Dot::new(node, counter),
            supersedes: Context::from_entries(ctx.iter().copied()),
        }
    }

    /// A write to replay: coordinator, value (`None`: delete), context.
    type Write<'a> = (NodeId, Option<&'a str>, &'a [(NodeId, u64)]);

    /// Replays writes on one state, as a single replica would.
    fn state(writes: &[Write<'_>]) -> Object {
        let mut o = Object::default();
        let policy = Policy::default();
        for (i, (node, value, ctx)) in writes.iter().enumerate() {
            let ctx = Context::from_entries(ctx.iter().copied());
            let ts = Timestamp::from_u64(i as u64 + 1);
            let r = match value {
                Some(v) => o.put(&ctx, Bytes::from(v.to_string()), *node, ts, &policy),
                None => o.delete(&ctx, *node, ts, &policy),
            };
            assert!(r.is_ok());
        }
        o
    }

    fn snapshot(o: Object) -> Snapshot {
        Snapshot {
            keys: vec![FinalKey {
                key: key(),
                replicas: vec![(N1, Some(o.clone())), (N2, Some(o))],
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_read_that_misses_an_earlier_acknowledged_write_is_stale() {
        let read = |seq, ctx: &[(NodeId, u64)]| {
            let context = Bytes::from(Context::from_entries(ctx.iter().copied()).to_bytes());
            record(
                seq,
                OpKind::Get,
                None,
                Outcome::Read {
                    values: Vec::new(),
                    context,
                },
            )
        };
        let history = History {
            ops: vec![
                record(0, OpKind::BlindPut, Some("a"), written(N1, 1, &[])),
                // Saw it: fine. Then one that did not.
                read(1, &[(N1, 1)]),
                read(2, &[]),
            ],
            events: Vec::new(),
        };
        let stale = stale_reads(&history);
        assert_eq!(stale.len(), 1, "{stale:?}");
        assert!(matches!(&stale[0], Violation::StaleRead { .. }));
    }

    #[test]
    fn a_clean_history_passes() {
        let history = History {
            ops: vec![
                record(0, OpKind::BlindPut, Some("a"), written(N1, 1, &[])),
                record(1, OpKind::Put, Some("b"), written(N1, 2, &[(N1, 1)])),
                record(2, OpKind::BlindPut, Some("c"), written(N2, 1, &[])),
            ],
            events: Vec::new(),
        };
        let o = state(&[
            (N1, Some("a"), &[]),
            (N1, Some("b"), &[(N1, 1)]),
            (N2, Some("c"), &[]),
        ]);
        let c = check(&history, &snapshot(o));
        assert_eq!(c.violations, []);
        assert_eq!(c.stats.acked_writes, 3);
        assert_eq!(c.stats.present, 2);
        assert_eq!(c.stats.superseded, 1);
        assert_eq!(c.stats.keys_with_siblings, 1);
    }

    #[test]
    fn a_lost_write_is_caught() {
        let history = History {
            ops: vec![
                record(0, OpKind::BlindPut, Some("a"), written(N1, 1, &[])),
                record(1, OpKind::BlindPut, Some("b"), written(N2, 1, &[])),
            ],
            events: Vec::new(),
        };
        // Only b survived, though nothing that saw a replaced it.
        let o = state(&[(N2, Some("b"), &[])]);
        let c = check(&history, &snapshot(o));
        assert!(
            matches!(c.violations[..], [Violation::LostWrite { .. }]),
            "{c:?}"
        );
    }

    #[test]
    fn an_unknown_blind_write_excuses_a_gap() {
        let mut unknown = record(1, OpKind::BlindPut, Some("b"), Outcome::TimedOut);
        unknown.node = N2;
        let history = History {
            ops: vec![
                record(0, OpKind::BlindPut, Some("a"), written(N1, 1, &[])),
                unknown,
            ],
            events: Vec::new(),
        };
        let o = state(&[(N1, Some("a"), &[]), (N2, Some("b"), &[(N1, 1)])]);
        let c = check(&history, &snapshot(o));
        assert_eq!(c.violations, []);
        assert_eq!(c.stats.excused_by_unknown_blind, 1);
    }

    #[test]
    fn a_resurrected_delete_is_caught() {
        let history = History {
            ops: vec![
                record(0, OpKind::BlindPut, Some("a"), written(N1, 1, &[])),
                record(1, OpKind::Delete, None, written(N2, 1, &[(N1, 1)])),
            ],
            events: Vec::new(),
        };
        // A state where the delete's tombstone sits beside the value it
        // deleted (a merge that replaced instead of syncing could do it).
        let o = Object::from_parts([
            (
                N1,
                1,
                vec![(1, Timestamp::from_u64(1), Some(Bytes::from("a")), None)],
            ),
            (N2, 1, vec![(1, Timestamp::from_u64(2), None, None)]),
        ])
        .unwrap();
        let c = check(&history, &snapshot(o));
        assert!(
            c.violations
                .iter()
                .any(|v| matches!(v, Violation::Resurrected { .. })),
            "{c:?}"
        );
    }

    #[test]
    fn reused_dots_and_divergence_are_caught() {
        let history = History {
            ops: vec![
                record(0, OpKind::BlindPut, Some("a"), written(N1, 1, &[])),
                record(1, OpKind::BlindPut, Some("b"), written(N1, 1, &[])),
            ],
            events: Vec::new(),
        };
        let a = state(&[(N1, Some("a"), &[])]);
        let b = state(&[(N1, Some("b"), &[])]);
        let snap = Snapshot {
            keys: vec![FinalKey {
                key: key(),
                replicas: vec![(N1, Some(a)), (N2, Some(b))],
            }],
            ..Snapshot::default()
        };
        let c = check(&history, &snap);
        assert!(
            c.violations
                .iter()
                .any(|v| matches!(v, Violation::DotReused { .. })),
            "{c:?}"
        );
        // Same dot, same timestamp: equal digests hide the different
        // values from anti-entropy, not from the checker.
        assert!(
            c.violations
                .iter()
                .any(|v| matches!(v, Violation::Diverged { .. })),
            "{c:?}"
        );
    }
}

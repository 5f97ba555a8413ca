//! The recorded history of a run: every client operation with its virtual
//! start and end, what was sent and what came back, and every fault and
//! lifecycle event.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use gyre_types::{Key, NodeId};
use gyre_versioning::{Context, Dot};

/// What a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    /// A read.
    Get,
    /// A put with the context of an earlier read.
    Put,
    /// A put without context.
    BlindPut,
    /// A delete with the context of an earlier read.
    Delete,
    /// A delete without context.
    BlindDelete,
}

impl OpKind {
    /// Whether the operation writes (a put or a delete).
    pub fn is_write(self) -> bool {
        self != Self::Get
    }

    /// Whether it writes a tombstone.
    pub fn is_delete(self) -> bool {
        matches!(self, Self::Delete | Self::BlindDelete)
    }

    /// Whether it writes without a context (so what it superseded is the
    /// coordinator's local state, known only from the reply).
    pub fn is_blind(self) -> bool {
        matches!(self, Self::BlindPut | Self::BlindDelete)
    }
}

/// What came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A read's values and context.
    Read {
        /// The live values (siblings).
        values: Vec<Bytes>,
        /// The opaque context.
        context: Bytes,
    },
    /// A write acknowledged at its quorum.
    Written {
        /// The new version's dot.
        dot: Dot,
        /// The context it was written with: what it superseded.
        supersedes: Context,
    },
    /// An increment acknowledged at its quorum, and the counter as its
    /// coordinator held it then.
    Counted {
        /// The counter's value at the coordinator.
        value: i64,
    },
    /// Too few replicas answered. A write may still exist.
    Unavailable {
        /// Replicas that answered.
        answered: u8,
        /// Replicas required.
        required: u8,
    },
    /// Refused before anything was written (a bad request, or the node has
    /// no layout yet, or no node was running to ask).
    Refused(String),
    /// Any other error. A write may still exist.
    Failed(String),
    /// No answer within the client's timeout. A write may still exist.
    TimedOut,
    /// The node asked crashed before it answered. A write may still exist.
    Crashed,
}

impl Outcome {
    /// Whether a write with this outcome may have been applied somewhere
    /// without the client knowing its dot.
    pub fn is_unknown(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. } | Self::Failed(_) | Self::TimedOut | Self::Crashed
        )
    }
}

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The client.
    pub client: u32,
    /// The client's operation number (from 0).
    pub seq: u64,
    /// The node the client asked.
    pub node: NodeId,
    /// What it asked.
    pub op: OpKind,
    /// The key (all in one bucket).
    pub key: Key,
    /// The value a put wrote (`c{client}-{seq}`: unique in the run).
    pub value: Option<Bytes>,
    /// The context sent, if any.
    pub context: Option<Bytes>,
    /// The time to live a put asked for (`None`: it never expires).
    pub ttl: Option<Duration>,
    /// Virtual time the operation started, since the cluster started.
    pub start: Duration,
    /// Virtual time it ended.
    pub end: Duration,
    /// The result.
    pub outcome: Outcome,
}

impl Record {
    /// The context sent, decoded (`None` for none, or one that does not
    /// decode: the simulator only sends contexts it was given).
    pub fn sent_context(&self) -> Option<Context> {
        self.context
            .as_ref()
            .and_then(|c| Context::from_bytes(c).ok())
    }
}

/// A fault or lifecycle event (crash, restart, partition, heal…).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Virtual time since the cluster started.
    pub at: Duration,
    /// What happened.
    pub what: String,
}

/// Everything recorded in a run, in the order it happened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Client operations, in the order they completed.
    pub ops: Vec<Record>,
    /// Fault and lifecycle events, in order.
    pub events: Vec<Event>,
}

impl History {
    /// A digest of the whole history (XXH3-64 of its `Debug` form): two
    /// runs of one seed must give the same.
    pub fn digest(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(format!("{self:?}").as_bytes())
    }

    /// The operations on `key`, in completion order.
    pub fn ops_on<'a>(&'a self, key: &'a Key) -> impl Iterator<Item = &'a Record> + 'a {
        self.ops.iter().filter(move |r| &r.key == key)
    }
}

fn key_str(key: &Key) -> String {
    String::from_utf8_lossy(key.as_bytes()).into_owned()
}

fn ms(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{} .. {}] c{}#{} @{} {:?} {}",
            ms(self.start),
            ms(self.end),
            self.client,
            self.seq,
            self.node,
            self.op,
            key_str(&self.key)
        )?;
        if let Some(v) = &self.value {
            write!(f, " = {}", String::from_utf8_lossy(v))?;
        }
        if let Some(c) = self.sent_context() {
            write!(f, " ctx {c:?}")?;
        }
        match &self.outcome {
            Outcome::Read { values, context } => {
                let values: Vec<_> = values.iter().map(|v| String::from_utf8_lossy(v)).collect();
                let ctx = Context::from_bytes(context).ok();
                write!(f, " -> {values:?} ctx {ctx:?}")
            }
            Outcome::Written { dot, supersedes } => {
                write!(f, " -> written {dot} supersedes {supersedes:?}")
            }
            other => write!(f, " -> {other:?}"),
        }
    }
}

impl fmt::Display for History {
    /// Events and operations merged by time (operations at their end).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut events = self.events.iter().peekable();
        for op in &self.ops {
            while let Some(e) = events.next_if(|e| e.at <= op.end) {
                writeln!(f, "[{}] ** {}", ms(e.at), e.what)?;
            }
            writeln!(f, "{op}")?;
        }
        for e in events {
            writeln!(f, "[{}] ** {}", ms(e.at), e.what)?;
        }
        Ok(())
    }
}

/// A shared handle that clients and the cluster record into. Cheap to
/// clone.
#[derive(Clone, Debug, Default)]
pub struct Recorder(Arc<Mutex<History>>);

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, History> {
        // Records are pushed whole: a panic elsewhere cannot leave one
        // half-written.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a completed operation.
    pub fn record(&self, record: Record) {
        self.lock().ops.push(record);
    }

    /// Records an event at virtual time `at`.
    pub fn event(&self, at: Duration, what: impl Into<String>) {
        self.lock().events.push(Event {
            at,
            what: what.into(),
        });
    }

    /// A copy of everything recorded so far.
    pub fn history(&self) -> History {
        self.lock().clone()
    }
}

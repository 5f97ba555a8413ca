//! Replication settings.

use std::time::Duration;

/// How a node replicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How long a coordinator waits for one replica before counting it
    /// failed (and, for a write, trying the next fallback).
    pub request_timeout: Duration,
    /// How old a tombstone must be before it may be purged, once every
    /// replica holds it. Must exceed the longest time a hint or a replica
    /// may stay away with an older version.
    pub tombstone_grace: Duration,
    /// Hints sent to a recovered owner per request.
    pub hint_batch: usize,
    /// Keys fetched or pushed per request during anti-entropy.
    pub sync_batch: usize,
    /// The pause between two anti-entropy sessions of one round: the rate
    /// limit that keeps a full comparison from crowding out client work.
    pub sync_pause: Duration,
    /// The shortest a coordinator waits for a replica before it hedges
    /// (asks a fallback beside it, or forwards to the next primary): the
    /// floor of the per-peer [`RttEstimator`](crate::RttEstimator).
    pub hedge_floor: Duration,
    /// The longest it waits before hedging, and what it waits for a peer
    /// it has not yet measured. Well under `request_timeout`: a node that
    /// died costs a request this much latency, not its answer.
    pub hedge_cap: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(2),
            tombstone_grace: Duration::from_secs(3600),
            hint_batch: 64,
            sync_batch: 256,
            sync_pause: Duration::from_millis(10),
            hedge_floor: Duration::from_millis(5),
            hedge_cap: Duration::from_millis(250),
        }
    }
}

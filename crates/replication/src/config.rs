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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(2),
            tombstone_grace: Duration::from_secs(3600),
            hint_batch: 64,
            sync_batch: 256,
            sync_pause: Duration::from_millis(10),
        }
    }
}

//! [`Outbound`]: the partitions a node serves to handoff at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use gyre_types::{NodeId, PartitionId};
use tokio::time::Instant;

/// A transfer that asked for no chunk this long is over (its puller died,
/// or moved to another source).
const IDLE: Duration = Duration::from_secs(10);

/// The transfers this node serves as a source: at most `max` (peer,
/// partition, n_val) at once. A chunk of another one is refused as busy,
/// and its puller asks another old replica or waits.
#[derive(Debug)]
pub(crate) struct Outbound {
    max: AtomicUsize,
    active: Mutex<BTreeMap<(NodeId, PartitionId, u8), Instant>>,
}

impl Outbound {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max: AtomicUsize::new(max.max(1)),
            active: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn set_max(&self, max: usize) {
        self.max.store(max.max(1), Ordering::Relaxed);
    }

    pub(crate) fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// Transfers served now.
    pub(crate) fn active(&self) -> usize {
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        active.retain(|_, at| at.elapsed() < IDLE);
        active.len()
    }

    /// Whether `peer` may have a chunk of (`partition`, `n_val`) now; if
    /// so, the transfer counts as served until it ends or idles.
    pub(crate) fn admit(&self, peer: NodeId, partition: PartitionId, n_val: u8) -> bool {
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        active.retain(|_, at| at.elapsed() < IDLE);
        let key = (peer, partition, n_val);
        if active.contains_key(&key) || active.len() < self.max() {
            active.insert(key, Instant::now());
            return true;
        }
        false
    }

    /// The transfer's last chunk went.
    pub(crate) fn finished(&self, peer: NodeId, partition: PartitionId, n_val: u8) {
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        active.remove(&(peer, partition, n_val));
    }
}

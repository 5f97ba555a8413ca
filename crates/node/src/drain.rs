//! [`Drain`]: the writes a node coordinates, counted by the layout version
//! they were routed with, so that it says it routes with a new layout only
//! once every write it routed with an older one has finished
//! ([`gyre_membership::Membership::with_write_drain`]).
//!
//! Without it, a write routed just before a change could still be on its
//! way to the old replicas only (its coordinator slow or paused) when the
//! prepare barrier passes and the new replicas copy and verify the
//! partition; acknowledged afterwards, it would be missing from the new
//! replicas when reads move to them. Garage closes the same gap with its
//! `ack_lock`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// Writes in flight per layout version.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    counts: Mutex<BTreeMap<u64, usize>>,
    changed: Notify,
}

impl Drain {
    /// Counts a write routed with layout `version` until the returned
    /// guard is dropped (once the write and its background sends are
    /// over).
    pub(crate) fn routed(self: &Arc<Self>, version: u64) -> Routed {
        *self.lock().entry(version).or_default() += 1;
        Routed {
            drain: Arc::clone(self),
            version,
        }
    }

    /// Waits until no write routed with a version below `version` is in
    /// flight.
    pub(crate) async fn older_done(&self, version: u64) {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if self.lock().range(..version).next().is_none() {
                return;
            }
            changed.await;
        }
    }

    /// Writes in flight routed with a version below `version`.
    #[cfg(test)]
    fn older_than(&self, version: u64) -> usize {
        self.lock().range(..version).map(|(_, n)| n).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, usize>> {
        // Every update leaves the map whole.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One write in flight, counted until it is dropped (see
/// [`crate::ClusterView::routed`]).
#[derive(Debug)]
pub struct Routed {
    drain: Arc<Drain>,
    version: u64,
}

impl Drop for Routed {
    fn drop(&mut self) {
        let mut counts = self.drain.lock();
        if let Some(n) = counts.get_mut(&self.version) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.version);
            }
        }
        drop(counts);
        self.drain.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_for_older_writes_only() {
        let drain = Arc::new(Drain::default());
        let old = drain.routed(1);
        let new = drain.routed(2);
        assert_eq!(drain.older_than(2), 1);
        // Writes routed with the new version do not hold it up.
        let waiting = tokio::spawn({
            let drain = Arc::clone(&drain);
            async move { drain.older_done(2).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(old);
        waiting.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(drain.older_than(3), 1);
        drop(new);
        drain.older_done(3).await;
        assert_eq!(drain.older_than(u64::MAX), 0);
    }
}

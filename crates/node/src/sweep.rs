//! The sweep: collects tombstones and expired values nobody reads.
//!
//! A deleted or expired key is purged by the read path once every primary
//! holds exactly the same deleted state and it has been gone for the grace
//! period ([`gyre_replication::ReadOp::repairs`]). Keys that are never read
//! again (most expired sessions) would keep their bytes for ever; the sweep
//! finds them. For each partition, the first primary that is up (so one
//! node per replica set, not all of them) walks its own copy page by page
//! and reads every key that looks collectable at `R = n_val`: the read's
//! repairs then purge it everywhere, under exactly the rule a client read
//! applies. Nothing is purged on one replica's word.
//!
//! A sweep is skipped while a layout change moves data: its replica sets
//! are in flux, and the purge rule wants every primary of one set.

use std::sync::Arc;

use gyre_replication::{read_time, route};
use gyre_storage::{ObjectId, Store};
use gyre_types::NodeId;
use gyre_versioning::Policy;

use crate::{Peers, ReplicationService};

/// Keys a sweep reads per page of a partition.
const PAGE: usize = 256;

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Objects looked at.
    pub scanned: u64,
    /// Objects that looked collectable and were read at `R = n_val` (each
    /// read purges them if every primary agrees).
    pub read: u64,
}

impl<T: Peers, S: Store + 'static> ReplicationService<T, S> {
    /// Sweeps every partition this node is the first up primary of (see
    /// the module documentation).
    pub async fn sweep(self: &Arc<Self>) -> SweepStats {
        let mut stats = SweepStats::default();
        let Some(routing) = self.view.routing() else {
            return stats;
        };
        if routing.is_changing() {
            return stats;
        }
        let layout = routing.newest().clone();
        let me = self.replica().id();
        let grace = self.replica().config().tombstone_grace.as_millis() as u64;
        let first_up = |primaries: &[NodeId]| {
            primaries
                .iter()
                .find(|&&p| p == me || self.view.is_up(p))
                .copied()
        };
        for partition in layout.partitions_of(me) {
            let mut after: Option<ObjectId> = None;
            loop {
                let from = after.clone();
                let page = self
                    .on_store(true, move |r| {
                        r.store().scan(partition, from.as_ref(), PAGE)
                    })
                    .await;
                let page = match page {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::warn!(?partition, error = %e, "sweep: cannot scan");
                        break;
                    }
                };
                let wall = self.view.wall_ms();
                let purge_before = wall.saturating_sub(grace);
                for item in page.items {
                    stats.scanned += 1;
                    let object = &item.object;
                    let collectable = object.is_deleted_at(read_time(wall))
                        && object
                            .gone_since()
                            .is_some_and(|t| t.physical_ms() < purge_before);
                    if !collectable {
                        continue;
                    }
                    let primaries = route::partition_primaries(&layout, partition, item.n_val);
                    if first_up(primaries) != Some(me) {
                        continue;
                    }
                    stats.read += 1;
                    let props = self.replica().props(item.id.bucket());
                    let read = self
                        .read(
                            item.id.bucket(),
                            item.id.key(),
                            item.n_val,
                            layout.version(),
                            primaries,
                            item.n_val,
                            Policy::from(&props),
                        )
                        .await;
                    if let Err(e) = read {
                        tracing::debug!(id = %item.id, error = %e, "sweep: read refused");
                    }
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        self.counters()
            .swept
            .fetch_add(stats.read, std::sync::atomic::Ordering::Relaxed);
        stats
    }
}

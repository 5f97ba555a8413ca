//! Dropping: once a single layout has been in use for the drop grace, every
//! partition held here that it does not give this node is handed off to its
//! replicas and dropped, leaf by leaf, delete-if-equal (see the parent
//! module's doc).

use std::collections::BTreeMap;
use std::sync::Arc;

use gyre_membership::LayoutStamp;
use gyre_replication::Direction;
use gyre_replication::route::{Routing, partition_primaries as primaries};
use gyre_ring::Layout;
use gyre_storage::Store;
use gyre_types::PartitionId;
use tokio::time::Instant;

use super::{DROP_BACKOFF_MAX, Transfers, lock};
use crate::Peers;

impl<T: Peers, S: Store + 'static> Transfers<T, S> {
    /// Hands off and drops what no layout in use gives this node, once one
    /// layout has been in use for `drop_grace`.
    pub(super) async fn drop_unowned(self: &Arc<Self>, routing: &Routing) {
        let newest = Arc::clone(routing.newest());
        let stamp = LayoutStamp::of(&newest);
        let me = self.me();
        let since = {
            let mut settled = lock(&self.settled);
            match *settled {
                Some((s, at)) if s == stamp => at,
                _ => {
                    let now = Instant::now();
                    *settled = Some((stamp, now));
                    now
                }
            }
        };
        let mut unowned: BTreeMap<PartitionId, Vec<u8>> = BTreeMap::new();
        for (partition, n_val) in self.replication.replica().store().merkle_trees() {
            if !newest.replicas(partition).contains(&me) {
                unowned.entry(partition).or_default().push(n_val);
            }
        }
        lock(&self.progress).to_drop = unowned.len();
        if unowned.is_empty() {
            if newest.member(me).is_none() {
                // Left out, and nothing left to hand off: say so.
                self.membership.set_left();
            }
            return;
        }
        if since.elapsed() < self.drop_grace {
            return;
        }
        let mut backoff = lock(&self.drop_backoff).clone();
        backoff.retain(|p, _| unowned.contains_key(p));
        for (partition, n_vals) in unowned {
            if !self.still_filling(stamp) {
                break;
            }
            let now = Instant::now();
            if backoff.get(&partition).is_some_and(|(next, _)| *next > now) {
                continue;
            }
            // A new replica that is down cannot take the hand-off: no
            // session with the others until it is back.
            let down = n_vals.iter().any(|&n_val| {
                primaries(&newest, partition, n_val)
                    .iter()
                    .any(|&peer| !self.membership.is_up(peer))
            });
            if down {
                continue;
            }
            let handed = self
                .hand_off_and_drop(stamp, &newest, partition, n_vals)
                .await;
            if handed {
                backoff.remove(&partition);
            } else {
                // Each failed hand-off waits twice as long as the last
                // (from `retry` up to a minute) before the next.
                let delay = backoff
                    .get(&partition)
                    .map_or(self.config.retry, |(_, d)| (*d * 2).min(DROP_BACKOFF_MAX));
                backoff.insert(partition, (Instant::now() + delay, delay));
            }
        }
        *lock(&self.drop_backoff) = backoff;
    }

    /// Hands `partition` off to its replicas in `newest` and drops what
    /// they took; whether every replica took it.
    async fn hand_off_and_drop(
        self: &Arc<Self>,
        stamp: LayoutStamp,
        newest: &Layout,
        partition: PartitionId,
        n_vals: Vec<u8>,
    ) -> bool {
        // What the hand-off below copies: only objects it leaves as they
        // were are dropped (a write that arrives meanwhile stays for the
        // next round).
        let handed_off = match self
            .replication
            .replica()
            .store()
            .partition_trees(partition)
        {
            Ok(trees) => trees,
            Err(e) => {
                tracing::warn!(?partition, error = %e, "cannot copy the trees of a partition");
                return false;
            }
        };
        for n_val in n_vals {
            for &peer in primaries(newest, partition, n_val) {
                // Push only: fetching would bring the owners' newer writes
                // here, changing the leaves that are to go.
                let pushed = self
                    .replication
                    .sync_towards(peer, partition, n_val, Direction::Push)
                    .await;
                if let Err(e) = pushed {
                    tracing::debug!(%peer, ?partition, error = %e, "handoff before a drop failed");
                    return false;
                }
            }
        }
        if !self.still_filling(stamp) {
            // A newer layout came: it decides again what to drop.
            return true;
        }
        let dropped = self
            .replication
            .on_background(move |replica| replica.store().drop_partition(&handed_off))
            .await;
        match dropped {
            Ok(dropped) if !dropped.is_complete() => tracing::debug!(
                ?partition,
                objects = dropped.objects,
                changed_leaves = dropped.changed_leaves,
                "dropped what was handed off; what was written since stays for the next round"
            ),
            Ok(dropped) => {
                tracing::info!(
                    ?partition,
                    objects = dropped.objects,
                    "handed off and dropped a partition this node no longer holds"
                );
                let mut p = lock(&self.progress);
                p.dropped += 1;
                p.to_drop = p.to_drop.saturating_sub(1);
            }
            Err(e) => {
                tracing::warn!(?partition, error = %e, "cannot drop a partition");
                return false;
            }
        }
        true
    }
}

//! Cluster-wide key listing (`SCAN`, `KEYS`, `GET /v1/kv/{bucket}`) and the
//! key count estimate (`DBSIZE`).
//!
//! A listing walks the ring in key-hash order, partition by partition. Its
//! cursor is a key hash: where the next page starts (0 is the start, and a
//! finished walk answers 0, as Redis does). Each page of a partition is the
//! union of what a read quorum (R) of the partition's primaries under the
//! read layout hold, so every key written with W acknowledgements (W + R >
//! N) is listed, even one whose newest write reached only some replicas. A
//! page ends where the replica that got least far stopped, so nothing is
//! skipped between pages. While a layout change moves a partition, reads
//! (and so listings) stay on its old replicas until the new ones hold it; a
//! cursor is a hash, so any replica resumes it.
//!
//! What a listing promises: every key that had a value for the whole walk
//! is listed at least once. Keys written or deleted during it may or may not
//! be; a key deleted (or expired) on some replicas only may still be listed.

use std::collections::BTreeSet;
use std::sync::Arc;

use gyre_replication::{Error, Result, route};
use gyre_storage::Store;
use gyre_types::{BucketName, Key, KeyHash, PartitionId};
use gyre_wire::{Request, Response};

use crate::{Peers, ReplicationService};

/// Partitions one page visits at most before it answers (with fewer keys
/// than asked, and a cursor to go on).
const PARTITIONS_PER_PAGE: usize = 16;

/// One page of a key listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyListing {
    /// Keys in key-hash order.
    pub keys: Vec<Key>,
    /// Where the next page starts; 0 once the walk is done.
    pub cursor: u64,
}

impl<T: Peers, S: Store + 'static> ReplicationService<T, S> {
    /// About `count` keys of `bucket` with a value, from `cursor` on (see
    /// the module documentation).
    ///
    /// # Errors
    /// [`Error::NoLayout`] before the cluster has one; [`Error::Unavailable`]
    /// if fewer than R primaries of a partition answer.
    pub async fn list_keys(
        self: &Arc<Self>,
        bucket: &BucketName,
        cursor: u64,
        count: usize,
    ) -> Result<KeyListing> {
        let props = self.replica().props(bucket);
        let count = count.max(1);
        let mut out = KeyListing::default();
        let mut from = cursor;
        for _ in 0..PARTITIONS_PER_PAGE {
            let remaining = count.saturating_sub(out.keys.len()).max(1);
            let (keys, next) = self.list_from(bucket, &props, from, remaining).await?;
            out.keys.extend(keys);
            let Some(next) = next else {
                out.cursor = 0;
                return Ok(out);
            };
            from = next;
            if out.keys.len() >= count {
                break;
            }
        }
        // A walk never stops at hash 0 (the first partition starts there
        // and the walk begins with it), so 0 is free to mean "done".
        out.cursor = from;
        Ok(out)
    }

    /// One page of the partition that holds hash `from`, and where the walk
    /// goes on (`None`: it is done). It uses the read layout as it is now (a
    /// page spans several partitions, and a change may retire the layout a
    /// page started with), and asks once more if the read layout changed
    /// while it asked (the retired layout's replicas then refuse).
    async fn list_from(
        self: &Arc<Self>,
        bucket: &BucketName,
        props: &gyre_types::BucketProps,
        from: u64,
        limit: usize,
    ) -> Result<(Vec<Key>, Option<u64>)> {
        let mut retried = false;
        loop {
            let routing = self.view.routing().ok_or(Error::NoLayout)?;
            let layout = &routing.read;
            let q = layout.partitions();
            let partition = q.partition_of(KeyHash::from_u64(from));
            let primaries = route::partition_primaries(layout, partition, props.n_val());
            let listed = self
                .list_partition(bucket, primaries, props.r(), from, limit)
                .await;
            let moved = || {
                self.view
                    .routing()
                    .is_some_and(|now| now.read.version() != layout.version())
            };
            match listed {
                Err(_) if !retried && moved() => retried = true,
                listed => {
                    return listed.map(|(keys, next)| {
                        (keys, next.or_else(|| next_partition_start(q, partition)))
                    });
                }
            }
        }
    }

    /// One page of one partition: the union of `r` up primaries' keys from
    /// `from`, cut where the replica that got least far stopped.
    async fn list_partition(
        self: &Arc<Self>,
        bucket: &BucketName,
        primaries: &[gyre_types::NodeId],
        r: u8,
        from: u64,
        limit: usize,
    ) -> Result<(Vec<Key>, Option<u64>)> {
        let me = self.replica().id();
        let mut asked: Vec<_> = primaries
            .iter()
            .copied()
            .filter(|&p| p == me || self.view.is_up(p))
            .collect();
        let mut answers = Vec::new();
        let mut failures = Vec::new();
        // The up primaries in order until R answered; a failed one is
        // replaced by the next.
        while answers.len() < usize::from(r) && !asked.is_empty() {
            let to = asked.remove(0);
            let request = Request::ScanKeys {
                bucket: bucket.clone(),
                from,
                limit: u32::try_from(limit).unwrap_or(u32::MAX),
            };
            match self.ask(to, request).await {
                Ok(Response::Scanned { keys, next }) => answers.push((keys, next)),
                Ok(other) => failures.push(format!("{to}: {other:?}")),
                Err(e) => failures.push(format!("{to}: {e}")),
            }
        }
        if answers.len() < usize::from(r) {
            return Err(Error::Unavailable {
                answered: u8::try_from(answers.len()).unwrap_or(u8::MAX),
                required: r,
                detail: format!("listing keys from {from:016x}: {}", failures.join("; ")),
            });
        }
        Ok(merge_pages(bucket, answers))
    }

    /// An estimate of how many keys the cluster holds (`DBSIZE`): for every
    /// partition, the largest object count any of its replicas reports.
    /// Counts every bucket, and tombstones and expired values not yet
    /// purged; a replica that does not answer is left out.
    pub async fn key_count_estimate(self: &Arc<Self>) -> u64 {
        let Some(routing) = self.view.routing() else {
            return 0;
        };
        let mut per_partition: std::collections::BTreeMap<u32, u64> =
            std::collections::BTreeMap::new();
        let me = self.replica().id();
        let asked = routing
            .read
            .members()
            .iter()
            .map(|m| m.id)
            .filter(|&id| id == me || self.view.is_up(id));
        for sizes in self.partition_sizes(asked).await.into_values() {
            for s in sizes {
                let n = per_partition.entry(s.partition.get()).or_default();
                *n = (*n).max(s.objects);
            }
        }
        per_partition.values().sum()
    }
}

/// The union of several replicas' pages of one partition, in hash order
/// and each key once, cut where the least advanced replica stopped (keys
/// at or past that position come again in the next page); and that
/// position, `None` if every replica reached the partition's end.
fn merge_pages(
    bucket: &BucketName,
    answers: Vec<(Vec<Key>, Option<u64>)>,
) -> (Vec<Key>, Option<u64>) {
    let stop = answers.iter().filter_map(|(_, next)| *next).min();
    let mut keys: BTreeSet<(u64, Key)> = BTreeSet::new();
    for (listed, _) in answers {
        for key in listed {
            let hash = KeyHash::of(bucket, &key).as_u64();
            if stop.is_none_or(|s| hash < s) {
                keys.insert((hash, key));
            }
        }
    }
    (keys.into_iter().map(|(_, k)| k).collect(), stop)
}

/// The first hash of the partition after `p`, if there is one.
fn next_partition_start(q: gyre_types::PartitionCount, p: PartitionId) -> Option<u64> {
    q.range(p).end().checked_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Key {
        Key::new(s.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn pages_of_several_replicas_merge_without_gaps_or_repeats() {
        let bucket = BucketName::default();
        let hash = |k: &Key| KeyHash::of(&bucket, k).as_u64();
        let mut all: Vec<Key> = (0..40).map(|i| key(&format!("k{i}"))).collect();
        all.sort_by_key(|k| hash(k));
        // Replica a lacks every third key; b lacks every fifth. a stopped
        // after 20 keys, b after 30.
        let a: Vec<Key> = all
            .iter()
            .take(20)
            .enumerate()
            .filter(|(i, _)| i % 3 != 0)
            .map(|(_, k)| k.clone())
            .collect();
        let b: Vec<Key> = all
            .iter()
            .take(30)
            .enumerate()
            .filter(|(i, _)| i % 5 != 0)
            .map(|(_, k)| k.clone())
            .collect();
        let (keys, stop) = merge_pages(
            &bucket,
            vec![(a, Some(hash(&all[20]))), (b, Some(hash(&all[30])))],
        );
        // Up to where a stopped, the union has every key but those both
        // lack (indexes divisible by 15), in order, once each.
        let want: Vec<Key> = all
            .iter()
            .take(20)
            .enumerate()
            .filter(|(i, _)| i % 15 != 0)
            .map(|(_, k)| k.clone())
            .collect();
        assert_eq!(keys, want);
        assert_eq!(stop, Some(hash(&all[20])));
        // Both at the end: everything, no position.
        let (keys, stop) = merge_pages(
            &bucket,
            vec![(all.clone(), None), (all[5..].to_vec(), None)],
        );
        assert_eq!(keys, all);
        assert_eq!(stop, None);
        // One at the end, one not: cut at the one that is not.
        let (keys, stop) = merge_pages(
            &bucket,
            vec![
                (all.clone(), None),
                (all[..10].to_vec(), Some(hash(&all[10]))),
            ],
        );
        assert_eq!(keys, all[..10].to_vec());
        assert_eq!(stop, Some(hash(&all[10])));
    }
}

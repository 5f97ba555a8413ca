//! Key listing for clients (`SCAN`, `KEYS`, the HTTP listing): one
//! replica's live keys of a bucket, from a key-hash position on.
//!
//! A position is a key hash: a listing resumes at the first key whose hash
//! is at least the position, and one answer never stops between two keys of
//! the same hash, so a position names a point between keys exactly (the
//! cursor a Redis client holds is that number). Hashes are the storage
//! order, so a position stays meaningful while partitions move between
//! nodes: any replica of the partition resumes it.

use gyre_storage::{ObjectId, Store};
use gyre_types::{BucketName, Key, KeyHash};
use gyre_wire::limits::MAX_SCAN_KEYS;

use crate::{Replica, Result, read_time};

/// Objects read from the store per page of a listing.
const PAGE: usize = 512;

/// What one listing found: keys in hash order, and the position to go on
/// from (`None`: the partition is done).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// Live keys of the bucket.
    pub keys: Vec<Key>,
    /// The hash to list from next, within the same partition.
    pub next: Option<u64>,
}

impl<S: Store> Replica<S> {
    /// Up to about `limit` keys of `bucket` this replica holds with a value
    /// not expired at `wall_ms`, from key hash `from` on, within the
    /// partition of `from`. It examines at most about four times `limit`
    /// objects (other buckets, tombstones), so an answer may hold fewer
    /// keys with a `next` position still to go.
    ///
    /// # Errors
    /// [`crate::Error::Storage`] if the store cannot be read.
    pub fn scan_keys(
        &self,
        wall_ms: u64,
        bucket: &BucketName,
        from: u64,
        limit: usize,
    ) -> Result<KeyPage> {
        let limit = limit.clamp(1, MAX_SCAN_KEYS);
        let budget = limit.saturating_mul(4).saturating_add(PAGE);
        let now = read_time(wall_ms);
        let store = self.store();
        let partition = store
            .config()
            .partitions
            .partition_of(KeyHash::from_u64(from));
        let mut out = KeyPage::default();
        let mut examined = 0usize;
        let mut last_hash: Option<u64> = None;
        let mut page = store.scan_from(KeyHash::from_u64(from), PAGE)?;
        loop {
            for item in page.items {
                let hash = item.id.hash().as_u64();
                let full = out.keys.len() >= limit || examined >= budget;
                if full && last_hash != Some(hash) {
                    out.next = Some(hash);
                    return Ok(out);
                }
                examined += 1;
                last_hash = Some(hash);
                if item.id.bucket() == bucket && !item.object.read_at(now).is_empty() {
                    out.keys.push(item.id.key().clone());
                }
            }
            let Some(after) = page.next else {
                return Ok(out);
            };
            page = store.scan(partition, Some(&after as &ObjectId), PAGE)?;
        }
    }
}

//! [`Replica`]: one node's side of replication, over its [`Store`].

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use bytes::Bytes;
use gyre_merkle::KeyRange;
use gyre_storage::{Change, Hint, ObjectId, Store, object_bytes};
use gyre_types::{
    BucketName, BucketProps, ConflictMode, HybridClock, Key, NodeId, PartitionId, Timestamp,
};
use gyre_versioning::{Context, Dot, Policy};
use gyre_wire::{ErrorKind, Expiry, Item, KeyVersion, Object, RemoteError, Request, Response};

use crate::{Config, Error, Result, counter, expires, read_time};

/// A write this node coordinated, as stored locally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The new state, to send to the other replicas.
    pub item: Item,
    /// The new version's dot.
    pub dot: Dot,
    /// The context it was written with: what it superseded.
    pub supersedes: Context,
}

impl Written {
    fn new(
        bucket: &BucketName,
        key: &Key,
        n_val: u8,
        object: Object,
        dot: Dot,
        supersedes: Context,
    ) -> Self {
        Self {
            item: Item {
                bucket: bucket.clone(),
                key: key.clone(),
                n_val,
                object,
            },
            dot,
            supersedes,
        }
    }
}

/// How many objects a handoff chunk reads at most, per object it may
/// carry ([`Replica::chunk`]).
const CHUNK_SCAN_FACTOR: usize = 8;

/// One node's replicas: serves peers' requests against the local store and
/// makes the local half of the writes this node coordinates. Thread-safe;
/// every method is synchronous (the store's own calls are the only IO).
#[derive(Debug)]
pub struct Replica<S> {
    id: NodeId,
    store: S,
    config: Config,
    clock: Mutex<HybridClock>,
    buckets: RwLock<BTreeMap<BucketName, BucketProps>>,
}

fn recover<T>(r: std::result::Result<T, PoisonError<T>>) -> T {
    // The guarded values (a clock reading, a props map) are replaced whole:
    // a panic elsewhere cannot leave them half-written.
    r.unwrap_or_else(PoisonError::into_inner)
}

impl<S: Store> Replica<S> {
    /// The replica of node `id` over `store`, with the bucket properties the
    /// store holds.
    ///
    /// # Errors
    /// [`Error::Storage`] if the properties cannot be read.
    pub fn new(id: NodeId, store: S, config: Config) -> Result<Self> {
        let buckets = store.all_bucket_props()?;
        Ok(Self {
            id,
            store,
            config,
            clock: Mutex::new(HybridClock::new()),
            buckets: RwLock::new(buckets),
        })
    }

    /// This node.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The local store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A bucket's properties (the defaults for a bucket never set).
    pub fn props(&self, bucket: &BucketName) -> BucketProps {
        recover(self.buckets.read())
            .get(bucket)
            .copied()
            .unwrap_or_default()
    }

    /// Sets a bucket's properties on this node (durably).
    ///
    /// # Errors
    /// [`Error::Storage`] if they cannot be stored.
    pub fn set_props(&self, bucket: &BucketName, props: BucketProps) -> Result<()> {
        self.store.set_bucket_props(bucket, &props)?;
        recover(self.buckets.write()).insert(bucket.clone(), props);
        Ok(())
    }

    fn clock(&self) -> MutexGuard<'_, HybridClock> {
        recover(self.clock.lock())
    }

    /// A timestamp for a local event at wall-clock `wall_ms`.
    pub fn now(&self, wall_ms: u64) -> Timestamp {
        self.clock().now(wall_ms)
    }

    /// The local state of a key.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub fn get(&self, bucket: &BucketName, key: &Key) -> Result<Option<Object>> {
        Ok(self
            .store
            .get(&ObjectId::new(bucket.clone(), key.clone()))?)
    }

    /// The local half of a coordinated write: a new version of the key
    /// (`value`, or a tombstone for `None`) superseding `context` (the
    /// client's, or this replica's own for a blind write), minted with this
    /// node's dot and stored durably.
    ///
    /// A value expires as the bucket's `default_ttl` says
    /// ([`write_expiring`](Self::write_expiring) chooses).
    ///
    /// # Errors
    /// [`Error::BadRequest`] for a value over the bucket's limit or too many
    /// siblings; [`Error::Storage`] if it cannot be stored.
    pub fn write(
        &self,
        wall_ms: u64,
        bucket: &BucketName,
        key: &Key,
        value: Option<Bytes>,
        context: Option<&Context>,
    ) -> Result<Written> {
        self.write_expiring(wall_ms, bucket, key, value, context, Expiry::Default)
    }

    /// [`write`](Self::write), with the value expiring as `expiry` says:
    /// turned into an absolute expiry here, from the write's own timestamp
    /// (see [`expires`]). A tombstone never expires.
    ///
    /// # Errors
    /// As [`write`](Self::write).
    pub fn write_expiring(
        &self,
        wall_ms: u64,
        bucket: &BucketName,
        key: &Key,
        value: Option<Bytes>,
        context: Option<&Context>,
        expiry: Expiry,
    ) -> Result<Written> {
        let props = self.props(bucket);
        if value.is_some() && props.conflict_mode() == ConflictMode::Counter {
            return Err(Error::BadRequest(format!(
                "bucket '{bucket}' holds counters: change them with INCR, INCRBY, DECR or \
                 DECRBY (HTTP: POST /v1/kv/{bucket}/<key>?incr=N), or delete them"
            )));
        }
        if let Some(v) = &value
            && v.len() > props.max_value_len() as usize
        {
            return Err(Error::BadRequest(format!(
                "value of {} bytes is over the bucket's limit of {}",
                v.len(),
                props.max_value_len()
            )));
        }
        let policy = Policy::from(&props);
        let me = self.id;
        self.mint(wall_ms, bucket, key, props.n_val(), |object, ts| {
            let supersedes = context.cloned().unwrap_or_else(|| object.context());
            let result = match value {
                Some(v) => {
                    let at = expires(expiry, ts, &props, object, &supersedes);
                    object.put_expiring(&supersedes, v, at, me, ts, &policy)
                }
                None => object.delete(&supersedes, me, ts, &policy),
            };
            let dot = result.map_err(|e| Error::BadRequest(e.to_string()))?;
            Ok((dot, supersedes))
        })
    }

    /// Makes one write of `bucket`/`key` under the object's lock: `f`
    /// changes the state as of the write's timestamp and names the new dot
    /// and the context written with; the new state is stored durably. If
    /// `f` fails, nothing is written.
    fn mint(
        &self,
        wall_ms: u64,
        bucket: &BucketName,
        key: &Key,
        n_val: u8,
        f: impl FnOnce(&mut Object, Timestamp) -> Result<(Dot, Context)>,
    ) -> Result<Written> {
        let id = ObjectId::new(bucket.clone(), key.clone());
        let (object, dot, supersedes) = self.store.update(&id, n_val, |current| {
            let mut object = current.cloned().unwrap_or_default();
            let ts = self.stamp(&object, wall_ms);
            match f(&mut object, ts) {
                Ok((dot, supersedes)) => {
                    Change::Write(object.clone(), Ok((object, dot, supersedes)))
                }
                Err(e) => Change::Keep(Err(e)),
            }
        })??;
        Ok(Written::new(bucket, key, n_val, object, dot, supersedes))
    }

    /// A timestamp for a write at `wall_ms` over `object`: after every
    /// timestamp it holds, so that the write is the latest here.
    fn stamp(&self, object: &Object, wall_ms: u64) -> Timestamp {
        let mut clock = self.clock();
        if let Some(seen) = object.max_timestamp() {
            clock.observe(seen, wall_ms);
        }
        clock.now(wall_ms)
    }

    /// The local half of a coordinated increment of a counter (see
    /// [`crate::counter`]): this node's totals of the key grow by `delta`
    /// under a new dot of this node, stored durably.
    ///
    /// # Errors
    /// [`Error::BadRequest`] if the bucket is not a counter bucket or the
    /// counter would overflow; [`Error::Storage`] if it cannot be stored.
    pub fn increment(
        &self,
        wall_ms: u64,
        bucket: &BucketName,
        key: &Key,
        delta: i64,
    ) -> Result<Written> {
        let props = self.props(bucket);
        if props.conflict_mode() != ConflictMode::Counter {
            return Err(Error::BadRequest(format!(
                "bucket '{bucket}' does not hold counters (its conflict_mode is {}): make one \
                 with PUT /v1/buckets/<name> {{\"conflict_mode\": \"counter\"}} and select it \
                 with GYRE.BUCKET <name>",
                props.conflict_mode().name()
            )));
        }
        let policy = Policy::from(&props);
        let me = self.id;
        self.mint(wall_ms, bucket, key, props.n_val(), |object, ts| {
            counter::increment(object, me, delta, ts, read_time(wall_ms), &policy)
        })
    }

    /// Merges a state into the local replica (DVV sync: never replaces);
    /// returns whether anything changed.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub fn merge(&self, wall_ms: u64, item: &Item) -> Result<bool> {
        let policy = Policy::from(&self.props(&item.bucket));
        if let Some(ts) = item.object.max_timestamp() {
            self.clock().observe(ts, wall_ms);
        }
        let id = ObjectId::new(item.bucket.clone(), item.key.clone());
        let changed = self
            .store
            .update(&id, item.n_val, |current| merged(current, item, &policy))?;
        Ok(changed)
    }

    /// Merges several states as [`merge`](Self::merge) does, in one store
    /// write (one durability wait for all); returns how many changed
    /// something. An error writes none of them.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub fn merge_many(&self, wall_ms: u64, items: &[Item]) -> Result<u64> {
        let mut policies: BTreeMap<&BucketName, Policy> = BTreeMap::new();
        let mut ids = Vec::with_capacity(items.len());
        for item in items {
            if let Some(ts) = item.object.max_timestamp() {
                self.clock().observe(ts, wall_ms);
            }
            policies
                .entry(&item.bucket)
                .or_insert_with(|| Policy::from(&self.props(&item.bucket)));
            ids.push((
                ObjectId::new(item.bucket.clone(), item.key.clone()),
                item.n_val,
            ));
        }
        let changed = self.store.update_many(&ids, |i, current| {
            match (
                items.get(i),
                items.get(i).and_then(|it| policies.get(&it.bucket)),
            ) {
                (Some(item), Some(policy)) => merged(current, item, policy),
                _ => Change::Keep(false),
            }
        })?;
        Ok(changed.into_iter().filter(|&c| c).count() as u64)
    }

    /// The keys this replica holds in `ranges` of the tree of
    /// (`partition`, `n_val`), with their versions, in storage order.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub fn list_keys(
        &self,
        partition: PartitionId,
        n_val: u8,
        ranges: &[KeyRange],
    ) -> Result<Vec<KeyVersion>> {
        let mut out = Vec::new();
        let mut after: Option<ObjectId> = None;
        loop {
            let page = self.store.scan(partition, after.as_ref(), 1024)?;
            for s in page.items {
                if s.n_val == n_val && ranges.iter().any(|r| r.contains(s.id.hash())) {
                    out.push(KeyVersion {
                        bucket: s.id.bucket().clone(),
                        key: s.id.key().clone(),
                        version: s.object.version_digest(),
                    });
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Up to `max_items` objects of `n_val` in `partition` (and about
    /// `max_bytes` of keys and values, at least one object), in key order,
    /// after `after`; and the id to resume after, `None` once the partition
    /// is done. A chunk of partition handoff. It reads at most eight times
    /// `max_items` objects: in a partition where
    /// few objects have `n_val`, a chunk may hold fewer (even none) and end
    /// early, so that no request scans a whole partition.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub fn chunk(
        &self,
        partition: PartitionId,
        n_val: u8,
        mut after: Option<ObjectId>,
        max_items: usize,
        max_bytes: u64,
    ) -> Result<(Vec<Item>, Option<ObjectId>)> {
        let max_items = max_items.clamp(1, gyre_wire::limits::MAX_ITEMS);
        let mut scan_budget = max_items.saturating_mul(CHUNK_SCAN_FACTOR);
        let mut items = Vec::new();
        let mut bytes = 0u64;
        loop {
            // Read no more than the chunk can still take: a page past it
            // would be decoded for nothing and read again by the next
            // chunk.
            let want = (max_items - items.len()).min(scan_budget).max(1);
            let page = self.store.scan(partition, after.as_ref(), want)?;
            for s in page.items {
                scan_budget = scan_budget.saturating_sub(1);
                after = Some(s.id.clone());
                if s.n_val != n_val {
                    continue;
                }
                bytes += object_bytes(s.id.key(), &s.object);
                items.push(Item {
                    bucket: s.id.bucket().clone(),
                    key: s.id.key().clone(),
                    n_val,
                    object: s.object,
                });
                if bytes >= max_bytes {
                    return Ok((items, after));
                }
            }
            match page.next {
                None => return Ok((items, None)),
                Some(next) => after = Some(next),
            }
            if items.len() >= max_items || scan_budget == 0 {
                return Ok((items, after));
            }
        }
    }

    /// What this replica holds per partition: objects and their bytes
    /// (keys and values, every n_val together), for partitions with any
    /// object. Read from the sizes the store keeps with its trees: no scan.
    pub fn partition_sizes(&self) -> Vec<gyre_wire::PartitionSize> {
        let mut per_partition: BTreeMap<PartitionId, (u64, u64)> = BTreeMap::new();
        for ((partition, _), size) in self.store.tree_sizes() {
            let (objects, bytes) = per_partition.entry(partition).or_default();
            *objects += size.objects;
            *bytes += size.bytes;
        }
        per_partition
            .into_iter()
            .map(|(partition, (objects, bytes))| gyre_wire::PartitionSize {
                partition,
                objects,
                bytes,
            })
            .collect()
    }

    /// Answers a request from peer `from` (`Coordinate`, `PullLayout` and
    /// `Buckets` are the node's, not the replica's). Never panics on a request's
    /// content: anything it cannot serve is an error response.
    pub fn serve(&self, wall_ms: u64, from: NodeId, request: Request) -> Response {
        match self.try_serve(wall_ms, from, request) {
            Ok(r) => r,
            Err(Error::BadRequest(message)) => Response::Error(RemoteError {
                kind: ErrorKind::BadRequest,
                message,
            }),
            Err(Error::Storage(e)) => Response::Error(RemoteError {
                kind: ErrorKind::Storage,
                message: e.to_string(),
            }),
            Err(e) => Response::Error(RemoteError {
                kind: ErrorKind::Internal,
                message: e.to_string(),
            }),
        }
    }

    fn try_serve(&self, wall_ms: u64, _from: NodeId, request: Request) -> Result<Response> {
        Ok(match request {
            Request::Ping => Response::Pong,
            Request::ReplicaGet { bucket, key, .. } => Response::Object(self.get(&bucket, &key)?),
            Request::ReplicaDigest { bucket, key, .. } => Response::Digest(
                self.get(&bucket, &key)?
                    .unwrap_or_default()
                    .version_digest(),
            ),
            Request::ReplicaPut { item, .. } => {
                self.merge(wall_ms, &item)?;
                Response::Stored
            }
            Request::DeliverHints { items } => {
                self.merge_many(wall_ms, &items)?;
                Response::Stored
            }
            Request::StoreHint { target, item } => {
                let hint = Hint {
                    id: ObjectId::new(item.bucket, item.key),
                    n_val: item.n_val,
                    object: item.object,
                };
                self.store.add_hint(target, &hint)?;
                Response::Stored
            }
            Request::Merkle { n_val, request } => {
                let tree = self.store.merkle_tree(request.tree().partition(), n_val)?;
                match tree.answer(&request) {
                    Ok(answer) => Response::Merkle(answer),
                    Err(e) => return Err(Error::BadRequest(e.to_string())),
                }
            }
            Request::ListKeys {
                partition,
                n_val,
                ranges,
            } => Response::Keys(self.list_keys(partition, n_val, &ranges)?),
            Request::Fetch { keys } => {
                let mut items = Vec::with_capacity(keys.len());
                for (bucket, key) in keys {
                    let id = ObjectId::new(bucket, key);
                    if let Some(object) = self.store.get(&id)? {
                        let n_val = self.props(id.bucket()).n_val();
                        items.push(Item {
                            bucket: id.bucket().clone(),
                            key: id.key().clone(),
                            n_val,
                            object,
                        });
                    }
                }
                Response::Items(items)
            }
            Request::Purge {
                bucket,
                key,
                version,
            } => {
                self.store.purge(&ObjectId::new(bucket, key), version)?;
                Response::Stored
            }
            Request::HandoffChunk {
                partition,
                n_val,
                after,
                max_items,
                max_bytes,
                ..
            } => {
                let after = after.map(|(bucket, key)| ObjectId::new(bucket, key));
                let (items, next) = self.chunk(
                    partition,
                    n_val,
                    after,
                    max_items as usize,
                    max_bytes as u64,
                )?;
                Response::Chunk {
                    items,
                    next: next.map(|id| (id.bucket().clone(), id.key().clone())),
                }
            }
            Request::PartitionSizes => Response::Sizes(self.partition_sizes()),
            Request::ScanKeys {
                bucket,
                from,
                limit,
            } => {
                let page = self.scan_keys(wall_ms, &bucket, from, limit as usize)?;
                Response::Scanned {
                    keys: page.keys,
                    next: page.next,
                }
            }
            Request::Coordinate { .. }
            | Request::Permit { .. }
            | Request::PullLayout { .. }
            | Request::Buckets { .. } => {
                return Err(Error::BadRequest(
                    "not a replica request (the node serves it)".to_owned(),
                ));
            }
        })
    }
}

/// What merging `item` into `current` writes (DVV sync: never replaces),
/// and whether it changes anything.
fn merged(current: Option<&Object>, item: &Item, policy: &Policy) -> Change<bool> {
    match current {
        None if item.object.is_empty() => Change::Keep(false),
        None => Change::Write(item.object.clone(), true),
        Some(mine) => {
            let merged = mine.clone().merge(item.object.clone(), policy);
            if merged.version_digest() == mine.version_digest() {
                Change::Keep(false)
            } else {
                Change::Write(merged, true)
            }
        }
    }
}

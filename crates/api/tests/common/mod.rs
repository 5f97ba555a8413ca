//! A one-replica model of a node for front-end tests: real DVV semantics
//! (contexts, siblings, tombstones) over a map, with switches to make it
//! unavailable.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use gyre_api::{
    AdminCommand, AdminError, AdminReply, Backend, BucketSet, ClusterStatus, KeyPage, KvError,
    MemberStatus, NodeStats, PlanSummary, TransferProgress, TreeRoot,
};
use gyre_types::{BucketName, BucketProps, Key, NodeId, Timestamp};
use gyre_versioning::{Context, DvvSet, Policy};
use gyre_wire::{ClientOp, ClientReply, Expiry};

/// The model's own node id.
pub const NODE: NodeId = NodeId::new(0x00ab_cdef_0123_4567);

/// A backend holding every key in one map.
#[derive(Default)]
pub struct ModelBackend {
    objects: Mutex<HashMap<(BucketName, Key), DvvSet<Bytes>>>,
    buckets: Mutex<BTreeMap<BucketName, BucketProps>>,
    clock: AtomicU64,
    /// While set, every key operation fails with 1 of 2 replicas answered.
    pub unavailable: AtomicBool,
    /// Key operations that reached the backend (bad input must not).
    pub calls: AtomicU64,
}

impl ModelBackend {
    /// A model with the default bucket.
    pub fn new() -> Self {
        let model = Self::default();
        model.buckets.lock().unwrap().insert(
            BucketName::new(gyre_api::DEFAULT_BUCKET).unwrap(),
            BucketProps::default(),
        );
        model
    }

    /// The model's state of a key, for assertions.
    pub fn values(&self, bucket: &str, key: &[u8]) -> Vec<Bytes> {
        let id = (
            BucketName::new(bucket).unwrap(),
            Key::new(key.to_vec()).unwrap(),
        );
        self.objects
            .lock()
            .unwrap()
            .get(&id)
            .map(|o| o.values().cloned().collect())
            .unwrap_or_default()
    }

    fn check(&self, bucket: &BucketName, quorum: Option<u8>) -> Result<BucketProps, KvError> {
        let props = self
            .bucket(bucket)
            .ok_or_else(|| KvError::UnknownBucket(bucket.to_string()))?;
        if let Some(q) = quorum
            && (q == 0 || q > props.n_val())
        {
            return Err(KvError::BadRequest(format!(
                "quorum {q} is impossible with n_val {}",
                props.n_val()
            )));
        }
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(KvError::Unavailable {
                answered: 1,
                required: 2,
                detail: "asked 2 other primaries, waited 2000 ms".to_owned(),
            });
        }
        Ok(props)
    }
}

fn context(bytes: Option<&Bytes>) -> Result<Option<Context>, KvError> {
    bytes
        .map(|b| {
            Context::from_bytes(b).map_err(|e| KvError::BadRequest(format!("bad context: {e}")))
        })
        .transpose()
}

/// Milliseconds since the Unix epoch.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

impl Backend for ModelBackend {
    async fn kv(&self, op: ClientOp) -> Result<ClientReply, KvError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        // Wall-clock time, as a node stamps writes (expiries count from it),
        // kept strictly increasing.
        let wall = wall_ms();
        let raw = Timestamp::from_parts(wall, 0).as_u64();
        let prev = self.clock.fetch_max(raw, Ordering::SeqCst);
        let ts = if prev >= raw {
            Timestamp::from_u64(self.clock.fetch_add(1, Ordering::SeqCst) + 1)
        } else {
            Timestamp::from_u64(raw)
        };
        let mut objects = self.objects.lock().unwrap();
        match op {
            ClientOp::Get { bucket, key, r } => {
                self.check(&bucket, r)?;
                let object = objects.get(&(bucket, key)).cloned().unwrap_or_default();
                let read = object.read_at(Timestamp::from_parts(wall, 0));
                let latest = read.latest_index().map(|i| i as u32);
                Ok(ClientReply::Values {
                    values: read.values().cloned().collect(),
                    latest,
                    context: Bytes::from(read.context().to_bytes()),
                    expires: read
                        .siblings()
                        .iter()
                        .map(|s| s.expires.map(Timestamp::physical_ms))
                        .collect(),
                })
            }
            ClientOp::Put {
                bucket,
                key,
                context: ctx,
                value,
                w,
                expiry,
            } => {
                let props = self.check(&bucket, w)?;
                if props.conflict_mode() == gyre_types::ConflictMode::Counter {
                    return Err(KvError::BadRequest(format!(
                        "bucket '{bucket}' holds counters"
                    )));
                }
                if value.len() > props.max_value_len() as usize {
                    return Err(KvError::BadRequest("value too large".into()));
                }
                let ctx = context(ctx.as_ref())?;
                let object = objects.entry((bucket, key)).or_default();
                let supersedes = ctx.clone().unwrap_or_else(|| object.context());
                let policy = Policy::from(&props);
                let after = |ms: u64| Some(Timestamp::from_parts(ts.physical_ms() + ms, 0));
                let expires = match expiry {
                    Expiry::Default => props.default_ttl().and_then(|s| after(u64::from(s) * 1000)),
                    Expiry::Never => None,
                    Expiry::After { ms } => after(ms),
                    Expiry::At { unix_ms } => Some(Timestamp::from_parts(unix_ms, 0)),
                    Expiry::Keep => object
                        .siblings()
                        .filter(|s| s.value.is_some() && supersedes.covers(s.dot))
                        .max_by_key(|s| s.lww_key())
                        .and_then(|s| s.expires),
                };
                let dot = object
                    .put_expiring(&supersedes, value, expires, NODE, ts, &policy)
                    .map_err(|e| KvError::BadRequest(e.to_string()))?;
                Ok(ClientReply::Written {
                    dot,
                    supersedes: Bytes::from(supersedes.to_bytes()),
                    context: Bytes::from(object.context().to_bytes()),
                })
            }
            ClientOp::Increment {
                bucket,
                key,
                delta,
                w,
            } => {
                // One replica: the counter is one decimal value.
                let props = self.check(&bucket, w)?;
                let object = objects.entry((bucket, key)).or_default();
                let now = Timestamp::from_parts(wall, 0);
                let current: i64 = object
                    .read_at(now)
                    .latest()
                    .and_then(|s| std::str::from_utf8(s.value.as_ref()?).ok()?.parse().ok())
                    .unwrap_or(0);
                let value = current.checked_add(delta).ok_or_else(|| {
                    KvError::BadRequest("increment or decrement would overflow".into())
                })?;
                let ctx = object.context();
                object
                    .put(
                        &ctx,
                        Bytes::from(value.to_string()),
                        NODE,
                        ts,
                        &Policy::from(&props),
                    )
                    .map_err(|e| KvError::BadRequest(e.to_string()))?;
                Ok(ClientReply::Counted {
                    value,
                    context: Bytes::from(object.context().to_bytes()),
                })
            }
            ClientOp::Delete {
                bucket,
                key,
                context: ctx,
                w,
            } => {
                let props = self.check(&bucket, w)?;
                let ctx = context(ctx.as_ref())?;
                let object = objects.entry((bucket, key)).or_default();
                let supersedes = ctx.clone().unwrap_or_else(|| object.context());
                let dot = object
                    .delete(&supersedes, NODE, ts, &Policy::from(&props))
                    .map_err(|e| KvError::BadRequest(e.to_string()))?;
                Ok(ClientReply::Written {
                    dot,
                    supersedes: Bytes::from(supersedes.to_bytes()),
                    context: Bytes::from(object.context().to_bytes()),
                })
            }
        }
    }

    fn bucket(&self, bucket: &BucketName) -> Option<BucketProps> {
        self.buckets.lock().unwrap().get(bucket).copied()
    }

    /// Keys with a live value, in hash order, from `cursor` on; the model
    /// holds everything, so a page is exact.
    async fn list_keys(
        &self,
        bucket: &BucketName,
        cursor: u64,
        count: usize,
    ) -> Result<KeyPage, KvError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.check(bucket, None)?;
        let now = Timestamp::from_parts(wall_ms(), 0);
        let mut live: Vec<(u64, Key)> = self
            .objects
            .lock()
            .unwrap()
            .iter()
            .filter(|((b, _), o)| b == bucket && !o.read_at(now).is_empty())
            .map(|((b, k), _)| (gyre_types::KeyHash::of(b, k).as_u64(), k.clone()))
            .filter(|(h, _)| *h >= cursor)
            .collect();
        live.sort();
        let more = live.len() > count.max(1);
        live.truncate(count.max(1));
        // Never cut between two keys of one hash.
        let cursor = match (more, live.last()) {
            (true, Some((h, _))) => h + 1,
            _ => 0,
        };
        Ok(KeyPage {
            keys: live.into_iter().map(|(_, k)| k).collect(),
            cursor,
        })
    }

    async fn key_count(&self) -> Result<u64, KvError> {
        Ok(self.objects.lock().unwrap().len() as u64)
    }

    fn buckets(&self) -> Vec<(BucketName, BucketProps)> {
        self.buckets
            .lock()
            .unwrap()
            .iter()
            .map(|(b, p)| (b.clone(), *p))
            .collect()
    }

    async fn set_bucket(
        &self,
        bucket: BucketName,
        props: BucketProps,
    ) -> Result<BucketSet, AdminError> {
        self.buckets.lock().unwrap().insert(bucket.clone(), props);
        Ok(BucketSet {
            bucket: bucket.to_string(),
            acknowledged: 1,
            members: 1,
        })
    }

    fn status(&self) -> ClusterStatus {
        ClusterStatus {
            node: NODE.to_string(),
            layout_version: Some(1),
            partitions: Some(64),
            replication: Some(3),
            members: vec![MemberStatus {
                id: NODE.to_string(),
                peer_addr: Some("127.0.0.1:7000".into()),
                client_addrs: vec!["resp=127.0.0.1:6379".into(), "http=127.0.0.1:8080".into()],
                zone: Some("z1".into()),
                capacity: Some(100),
                status: "member".into(),
                in_layout: true,
                up: true,
                phi: Some(0.0),
                ownership: 1.0,
                hints_pending: 0,
            }],
            staged: Vec::new(),
            change: None,
            transfers: TransferProgress::default(),
        }
    }

    async fn admin(&self, command: AdminCommand) -> Result<AdminReply, AdminError> {
        match command {
            AdminCommand::Plan | AdminCommand::Commit { .. } => Ok(AdminReply::Plan(PlanSummary {
                changes: Vec::new(),
                version: 1,
                moves: 0,
                ownership: vec![(NODE.to_string(), 1.0)],
                safe: true,
                ..PlanSummary::default()
            })),
            AdminCommand::Abort => Err(AdminError::BadRequest(
                "no layout change is in flight".to_owned(),
            )),
            AdminCommand::Throttle {
                rate,
                inbound,
                outbound,
            } => Ok(AdminReply::Throttle {
                rate: rate.unwrap_or(0),
                inbound: inbound.unwrap_or(2),
                outbound: outbound.unwrap_or(2),
            }),
            AdminCommand::Clear => Ok(AdminReply::Staged(Vec::new())),
            AdminCommand::Join { node }
            | AdminCommand::Leave { node }
            | AdminCommand::Remove { node }
            | AdminCommand::Set { node, .. } => {
                Err(AdminError::BadRequest(format!("unknown node {node}")))
            }
        }
    }

    fn stats(&self) -> NodeStats {
        NodeStats::default()
    }

    fn local_trees(&self) -> Vec<TreeRoot> {
        vec![TreeRoot {
            partition: 0,
            n_val: 3,
            root: format!("{:032x}", self.objects.lock().unwrap().len()),
        }]
    }

    fn local_get(&self, bucket: &BucketName, key: &Key) -> Result<Option<Vec<Bytes>>, KvError> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .get(&(bucket.clone(), key.clone()))
            .map(|o| o.values().cloned().collect()))
    }
}

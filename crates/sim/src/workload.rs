//! Clients: [`Client`] makes one operation at a time through a node of the
//! cluster and records it; [`random_client`] loops over random ones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gyre_types::{BucketName, Key};
use gyre_versioning::Context;
use gyre_wire::{ClientOp, ClientReply, Expiry};
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::config::WorkloadConfig;
use crate::history::{OpKind, Outcome, Record, Recorder};
use crate::rng::SimRng;

/// A client of the cluster: every operation goes through
/// `ReplicationService::client` of the node it names, bounded by a
/// virtual-time timeout, ends early if that node crashes, and is recorded
/// with its start and end time. Puts write unique values
/// (`c{client}-{seq}`). The client remembers, per key, the context of its
/// last read, to write with next.
#[derive(Debug)]
pub struct Client {
    id: u32,
    cluster: Arc<Cluster>,
    recorder: Recorder,
    bucket: BucketName,
    timeout: Duration,
    seq: u64,
    contexts: BTreeMap<Key, Bytes>,
    /// The time to live of the put being made, for its record.
    ttl: Option<Duration>,
}

impl Client {
    /// Client `id` of `cluster`, writing to `bucket`, recording into
    /// `recorder`, giving up on an operation after `timeout`.
    pub fn new(
        id: u32,
        cluster: Arc<Cluster>,
        recorder: Recorder,
        bucket: BucketName,
        timeout: Duration,
    ) -> Self {
        Self {
            id,
            cluster,
            recorder,
            bucket,
            timeout,
            seq: 0,
            contexts: BTreeMap::new(),
            ttl: None,
        }
    }

    /// The context of this client's last read of `key`.
    pub fn context(&self, key: &Key) -> Option<Bytes> {
        self.contexts.get(key).cloned()
    }

    /// Reads `key` through node `node`.
    pub async fn get(&mut self, node: usize, key: &Key) -> Outcome {
        let op = ClientOp::Get {
            bucket: self.bucket.clone(),
            key: key.clone(),
            r: None,
        };
        self.call(node, OpKind::Get, key, None, None, op).await
    }

    /// Puts a fresh value (returned with the outcome) on `key` through node
    /// `node`, with `context` (`None`: a blind put).
    pub async fn put(
        &mut self,
        node: usize,
        key: &Key,
        context: Option<Bytes>,
    ) -> (Bytes, Outcome) {
        self.put_expiring(node, key, context, None).await
    }

    /// [`put`](Self::put) of a value that expires `ttl` after the
    /// coordinator stamps it (`None`: never).
    pub async fn put_expiring(
        &mut self,
        node: usize,
        key: &Key,
        context: Option<Bytes>,
        ttl: Option<Duration>,
    ) -> (Bytes, Outcome) {
        let value = Bytes::from(format!("c{}-{}", self.id, self.seq));
        let kind = if context.is_some() {
            OpKind::Put
        } else {
            OpKind::BlindPut
        };
        let op = ClientOp::Put {
            bucket: self.bucket.clone(),
            key: key.clone(),
            context: context.clone(),
            value: value.clone(),
            w: None,
            expiry: ttl.map_or(Expiry::Never, |ttl| Expiry::After {
                ms: ttl.as_millis() as u64,
            }),
        };
        self.ttl = ttl;
        let outcome = self
            .call(node, kind, key, Some(value.clone()), context, op)
            .await;
        (value, outcome)
    }

    /// Deletes `key` through node `node`, with `context` (`None`: blind).
    pub async fn delete(&mut self, node: usize, key: &Key, context: Option<Bytes>) -> Outcome {
        let kind = if context.is_some() {
            OpKind::Delete
        } else {
            OpKind::BlindDelete
        };
        let op = ClientOp::Delete {
            bucket: self.bucket.clone(),
            key: key.clone(),
            context: context.clone(),
            w: None,
        };
        self.call(node, kind, key, None, context, op).await
    }

    async fn call(
        &mut self,
        node: usize,
        kind: OpKind,
        key: &Key,
        value: Option<Bytes>,
        context: Option<Bytes>,
        op: ClientOp,
    ) -> Outcome {
        let seq = self.seq;
        self.seq += 1;
        let start = self.cluster.now();
        let outcome = match self.cluster.handle(node) {
            None => Outcome::Refused("the node is not running".to_owned()),
            Some((target, mut life)) => {
                let asked = tokio::time::timeout(self.timeout, target.replication().client(op));
                tokio::select! {
                    biased;
                    answer = asked => match answer {
                        Err(_) => Outcome::TimedOut,
                        Ok(Ok(reply)) => outcome_of(reply),
                        Ok(Err(e)) => outcome_of_error(&e),
                    },
                    _ = life.changed() => Outcome::Crashed,
                }
            }
        };
        if let Outcome::Read { context, .. } = &outcome {
            self.contexts.insert(key.clone(), context.clone());
        }
        self.recorder.record(Record {
            client: self.id,
            seq,
            node: self.cluster.id(node),
            op: kind,
            key: key.clone(),
            value,
            context,
            ttl: self.ttl.take(),
            start,
            end: self.cluster.now(),
            outcome: outcome.clone(),
        });
        outcome
    }
}

fn outcome_of(reply: ClientReply) -> Outcome {
    match reply {
        ClientReply::Values {
            values, context, ..
        } => Outcome::Read { values, context },
        ClientReply::Written {
            dot, supersedes, ..
        } => match Context::from_bytes(&supersedes) {
            Ok(supersedes) => Outcome::Written { dot, supersedes },
            Err(e) => Outcome::Failed(format!(
                "acknowledged with a context that does not decode: {e}"
            )),
        },
        ClientReply::Unavailable {
            answered, required, ..
        } => Outcome::Unavailable { answered, required },
        ClientReply::Counted { value, .. } => Outcome::Counted { value },
    }
}

fn outcome_of_error(e: &gyre_replication::Error) -> Outcome {
    use gyre_replication::Error;
    match e {
        Error::Unavailable {
            answered, required, ..
        } => Outcome::Unavailable {
            answered: *answered,
            required: *required,
        },
        Error::BadRequest(_) | Error::NoLayout => Outcome::Refused(e.to_string()),
        other => Outcome::Failed(other.to_string()),
    }
}

/// The keys of a workload: `k0`, `k1`, ….
pub fn workload_keys(count: usize) -> Vec<Key> {
    (0..count)
        .filter_map(|i| Key::new(format!("k{i}").into_bytes()).ok())
        .collect()
}

/// Runs `client` until `deadline`: after a think time, one random
/// operation on a random key through a random running node, drawn from
/// `rng` with `config`'s mix.
pub async fn random_client(
    mut client: Client,
    mut rng: SimRng,
    config: WorkloadConfig,
    keys: Vec<Key>,
    deadline: Instant,
) {
    let m = config.mix;
    let weights = [m.get, m.put, m.blind_put, m.delete, m.blind_delete];
    loop {
        tokio::time::sleep(rng.duration(config.think.0, config.think.1)).await;
        if Instant::now() >= deadline {
            return;
        }
        let running = client.cluster.running();
        let Some(&node) = running.get(rng.index(running.len())) else {
            continue;
        };
        let Some(key) = keys.get(rng.index(keys.len())) else {
            return;
        };
        match rng.weighted(&weights) {
            Some(0) | None => {
                client.get(node, key).await;
            }
            Some(1) => {
                let context = client.context(key);
                let ttl = expiring(&mut rng, &config);
                client.put_expiring(node, key, context, ttl).await;
            }
            Some(2) => {
                let ttl = expiring(&mut rng, &config);
                client.put_expiring(node, key, None, ttl).await;
            }
            Some(3) => {
                let context = client.context(key);
                client.delete(node, key, context).await;
            }
            Some(_) => {
                client.delete(node, key, None).await;
            }
        }
    }
}

/// The time to live of the next put: `None` for most, one drawn from the
/// configured range for the configured share.
fn expiring(rng: &mut SimRng, config: &WorkloadConfig) -> Option<Duration> {
    let (share, min, max) = config.expiring;
    // No draw at all for a workload without expiry: its runs stay as they
    // were before expiry existed.
    (share > 0.0 && rng.chance(share)).then(|| rng.duration(min, max))
}

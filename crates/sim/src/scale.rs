//! Layout changes at sizes one machine cannot host as processes: a cluster
//! of 16 to 64 (or more) simulated nodes holding data, one change, and what
//! it cost.
//!
//! [`measure`] forms a cluster with the production timings (gossip every
//! second, anti-entropy every ten minutes, a 2 s request timeout, the
//! default handoff), writes keys through the real write path, watches it at
//! rest, then makes one change ([`Scenario`]) and reports ([`ScaleReport`]):
//! partition replicas and bytes moved against the least that must move,
//! gossip rounds until every node holds the new layout, virtual time until
//! the change is settled (one layout in use everywhere, no partition held
//! where the layout does not put it), messages per node per second at rest,
//! and the simulator's own real time. Every key is read back afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gyre_membership::{Change, LayoutStamp};
use gyre_ring::Layout;
use gyre_types::{Key, NodeId, PartitionCount};
use gyre_wire::{ClientOp, ClientReply, Expiry};
use tokio::task::JoinSet;

use crate::{Cluster, ClusterConfig, Error, Recorder, Result, bucket};

/// One layout change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// `count` new nodes join (spread over the zones).
    Join {
        /// How many.
        count: usize,
    },
    /// One member leaves, handing its partitions off.
    Leave,
    /// Every node of one zone crashes; once the others see them down, an
    /// operator removes them, and their replicas are filled again from the
    /// survivors.
    ZoneLost,
}

impl Scenario {
    /// Its name in reports: `join 1`, `join 8`, `leave`, `zone lost`.
    pub fn name(self) -> String {
        match self {
            Self::Join { count } => format!("join {count}"),
            Self::Leave => "leave".to_owned(),
            Self::ZoneLost => "zone lost".to_owned(),
        }
    }
}

/// The cluster a measurement runs on.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleConfig {
    /// Members of the first layout.
    pub nodes: usize,
    /// Zones they are spread over, round robin (node `i` in zone
    /// `i % zones`).
    pub zones: usize,
    /// Q.
    pub partitions: PartitionCount,
    /// Keys written before the change.
    pub keys: usize,
    /// Bytes of each value.
    pub value_len: usize,
    /// How long the cluster runs before it counts as at rest.
    pub warm_up: Duration,
    /// How long the cluster is watched at rest.
    pub rest: Duration,
    /// How long (virtual) the change may take to settle.
    pub settle_within: Duration,
}

impl ScaleConfig {
    /// `nodes` nodes in four zones, Q = 1024, 2,000 keys of 100 bytes,
    /// watched at rest for one anti-entropy period after a minute.
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes,
            zones: 4,
            partitions: PartitionCount::new(1024).unwrap_or(PartitionCount::DEFAULT),
            keys: 2000,
            value_len: 100,
            warm_up: Duration::from_secs(60),
            rest: gyre_node::NodeConfig::default().anti_entropy_interval,
            settle_within: Duration::from_secs(300),
        }
    }
}

/// What one change cost.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleReport {
    /// The change.
    pub scenario: Scenario,
    /// Members before it.
    pub nodes: usize,
    /// Q.
    pub partitions: u32,
    /// Partition replicas that changed owner (the layouts' diff).
    pub replicas_moved: usize,
    /// The least that must move: the replicas the new nodes hold after a
    /// join, those the leaving or lost nodes held before.
    pub replicas_ideal: usize,
    /// Value bytes the handoff streams carried.
    pub bytes_moved: u64,
    /// Value bytes of the replicas that must move, at the cluster's mean
    /// bytes per partition replica.
    pub bytes_ideal: u64,
    /// Gossip intervals from the commit until every running node held the
    /// new layout.
    pub rounds_to_know: f64,
    /// Virtual time from the commit until the change settled; `None` if it
    /// did not within [`ScaleConfig::settle_within`].
    pub settled: Option<Duration>,
    /// Messages (requests and one-way gossip) each running node (spares
    /// included) sent per second at rest, before the change.
    pub rest_messages_per_node_sec: f64,
    /// The same by kind of message (`one_way` is gossip).
    pub rest_by_kind: Vec<(&'static str, f64)>,
    /// Keys not read back with their value after the change.
    pub keys_lost: usize,
    /// Real time of the whole measurement.
    pub real: Duration,
}

impl ScaleReport {
    /// Replicas moved ÷ the least that must move.
    pub fn replicas_ratio(&self) -> f64 {
        ratio(self.replicas_moved as f64, self.replicas_ideal as f64)
    }

    /// Bytes moved ÷ the least that must move.
    pub fn bytes_ratio(&self) -> f64 {
        ratio(self.bytes_moved as f64, self.bytes_ideal as f64)
    }

    /// A Markdown table row: nodes, change, replicas moved ÷ ideal, bytes
    /// moved ÷ ideal, rounds to know, settled, messages per node per second
    /// at rest, keys lost, real time.
    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} / {} = {:.2} | {:.2} | {:.1} | {} | {:.1} | {} | {:.1} s |",
            self.nodes,
            self.scenario.name(),
            self.replicas_moved,
            self.replicas_ideal,
            self.replicas_ratio(),
            self.bytes_ratio(),
            self.rounds_to_know,
            self.settled
                .map_or_else(|| "no".to_owned(), |d| format!("{:.1} s", d.as_secs_f64())),
            self.rest_messages_per_node_sec,
            self.keys_lost,
            self.real.as_secs_f64(),
        )
    }

    /// The header of [`ScaleReport::row`]'s table.
    pub fn header() -> &'static str {
        "| nodes | change | replicas moved ÷ ideal | bytes ÷ ideal | rounds to know | settled (virtual) | msgs/node/s at rest | keys lost | real time |\n\
         |--:|---|--:|--:|--:|--:|--:|--:|--:|"
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 1.0 } else { a / b }
}

/// The production timings on `config`'s shape (see the module doc).
pub fn cluster_config(config: &ScaleConfig, spares: usize) -> ClusterConfig {
    let mut c = ClusterConfig {
        nodes: config.nodes,
        spares,
        zones: config.zones,
        partitions: config.partitions,
        form_within: Duration::from_secs(120),
        ..ClusterConfig::default()
    };
    c.membership = gyre_membership::Config::default();
    c.replica.request_timeout = gyre_replication::Config::default().request_timeout;
    let defaults = gyre_node::NodeConfig::default();
    c.node.hint_interval = defaults.hint_interval;
    c.node.anti_entropy_interval = defaults.anti_entropy_interval;
    c.node.handoff = gyre_node::HandoffConfig::default();
    c
}

/// Runs `scenario` on a cluster shaped by `config`, from `seed`.
///
/// # Errors
/// [`Error::Setup`] if the cluster does not form, a write fails, or the
/// change is refused.
pub async fn measure(config: &ScaleConfig, scenario: Scenario, seed: u64) -> Result<ScaleReport> {
    let started = Instant::now();
    let spares = match scenario {
        Scenario::Join { count } => count,
        Scenario::Leave | Scenario::ZoneLost => 0,
    };
    let cluster = Cluster::start(cluster_config(config, spares), seed, Recorder::default()).await?;
    let keys: Vec<Key> = (0..config.keys).map(key).collect();
    load(&cluster, &keys, config.value_len).await?;

    // At rest: after what forming and loading set off (anti-entropy with
    // every peer seen up), over one anti-entropy period.
    tokio::time::sleep(config.warm_up).await;
    cluster.traffic().reset();
    tokio::time::sleep(config.rest).await;
    let running = cluster.running().len().max(1) as f64;
    let per_node_sec = |n: u64| n as f64 / running / config.rest.as_secs_f64();
    let rest_by_kind: Vec<(&'static str, f64)> = cluster
        .traffic()
        .snapshot()
        .into_iter()
        .map(|(kind, t)| (kind, per_node_sec(t.requests)))
        .collect();
    let rest_messages_per_node_sec = rest_by_kind.iter().map(|(_, n)| n).sum();

    let old = cluster.layout().ok_or_else(|| setup("no layout"))?;
    let changes = changes(&cluster, &old, config, scenario).await?;
    cluster.traffic().reset();
    let committed = cluster.now();
    cluster.change(&changes).map_err(setup)?;
    let new = cluster.layout().ok_or_else(|| setup("no layout"))?;
    let stamp = LayoutStamp::of(&new);
    let knows = |c: &Cluster| {
        c.running().into_iter().all(|i| {
            c.node(i)
                .is_some_and(|n| n.membership().with(|core, _| core.layout_stamp()) >= Some(stamp))
        })
    };
    cluster.wait_until(config.settle_within, knows).await;
    let gossip = cluster.config().membership.gossip_interval;
    let rounds_to_know = (cluster.now() - committed).as_secs_f64() / gossip.as_secs_f64();
    let settled = cluster
        .wait_until(config.settle_within, |c| c.unsettled_layouts().is_empty())
        .await
        .then(|| cluster.now() - committed);

    let bytes_moved = cluster
        .traffic()
        .snapshot()
        .get("handoff_chunk")
        .map_or(0, |t| t.value_bytes);
    let diff = gyre_ring::LayoutDiff::between(&old, &new).map_err(|e| setup(e.to_string()))?;
    let replicas_ideal = must_move(&old, &new, scenario, &changes);
    let total_replicas = old.partitions().get() as u64 * u64::from(old.replication());
    let stored = (config.keys * config.value_len) as u64 * u64::from(old.replication());
    let bytes_ideal = stored * replicas_ideal as u64 / total_replicas.max(1);
    let keys_lost = read_back(&cluster, &keys, config.value_len).await;
    cluster.shutdown().await;
    Ok(ScaleReport {
        scenario,
        nodes: config.nodes,
        partitions: old.partitions().get(),
        replicas_moved: diff.replicas_moved(),
        replicas_ideal,
        bytes_moved,
        bytes_ideal,
        rounds_to_know,
        settled,
        rest_messages_per_node_sec,
        rest_by_kind,
        keys_lost,
        real: started.elapsed(),
    })
}

fn setup(e: impl ToString) -> Error {
    Error::Setup(e.to_string())
}

fn key(i: usize) -> Key {
    Key::new(format!("scale-{i:08}").into_bytes()).unwrap_or_else(|_| unreachable!())
}

fn value(i: usize, len: usize) -> Bytes {
    let mut v = format!("{i}:").into_bytes();
    v.resize(len.max(v.len()), b'v');
    Bytes::from(v)
}

/// Writes every key through the members, 64 at a time.
async fn load(cluster: &Arc<Cluster>, keys: &[Key], value_len: usize) -> Result<()> {
    const WRITERS: usize = 64;
    let members = cluster.members().len();
    let mut tasks = JoinSet::new();
    for w in 0..WRITERS {
        let cluster = Arc::clone(cluster);
        let mine: Vec<(usize, Key)> = keys
            .iter()
            .enumerate()
            .skip(w)
            .step_by(WRITERS)
            .map(|(i, k)| (i, k.clone()))
            .collect();
        tasks.spawn(async move {
            let mut failed = 0_usize;
            for (i, key) in mine {
                let op = ClientOp::Put {
                    bucket: bucket(),
                    key,
                    context: None,
                    value: value(i, value_len),
                    w: None,
                    expiry: Expiry::Default,
                };
                let ok = match cluster.node(i % members) {
                    Some(node) => matches!(
                        node.replication().client(op).await,
                        Ok(ClientReply::Written { .. })
                    ),
                    None => false,
                };
                failed += usize::from(!ok);
            }
            failed
        });
    }
    let mut failed = 0;
    while let Some(done) = tasks.join_next().await {
        failed += done.map_err(setup)?;
    }
    if failed > 0 {
        return Err(setup(format!("{failed} writes failed")));
    }
    Ok(())
}

/// What to commit for `scenario`; a zone lost is crashed and seen down
/// first.
async fn changes(
    cluster: &Cluster,
    old: &Layout,
    config: &ScaleConfig,
    scenario: Scenario,
) -> Result<Vec<Change>> {
    match scenario {
        Scenario::Join { count } => Ok((config.nodes..config.nodes + count)
            .map(|i| Change::Join(cluster.id(i)))
            .collect()),
        Scenario::Leave => Ok(vec![Change::Leave(cluster.id(config.nodes - 1))]),
        Scenario::ZoneLost => {
            let zone = cluster.zone(config.nodes - 1);
            let lost: Vec<usize> = (0..config.nodes)
                .filter(|&i| cluster.zone(i) == zone)
                .collect();
            for &i in &lost {
                cluster.crash(i).await;
            }
            let survivors: Vec<usize> = (0..config.nodes).filter(|i| !lost.contains(i)).collect();
            let seen = cluster
                .wait_until(Duration::from_secs(120), |c| {
                    survivors
                        .iter()
                        .all(|&s| lost.iter().all(|&l| !c.sees_up(s, l)))
                })
                .await;
            if !seen {
                return Err(setup("the lost zone was not seen down"));
            }
            for &i in &lost {
                cluster.retire(i);
            }
            let ids: Vec<NodeId> = lost.iter().map(|&i| cluster.id(i)).collect();
            debug_assert!(ids.iter().all(|&id| old.member(id).is_some()));
            Ok(ids.into_iter().map(Change::Remove).collect())
        }
    }
}

/// The least a change must move: what the new nodes hold after a join,
/// what the nodes it takes out held before.
fn must_move(old: &Layout, new: &Layout, scenario: Scenario, changes: &[Change]) -> usize {
    let held = |layout: &Layout, id: NodeId| layout.partitions_of(id).len();
    changes
        .iter()
        .map(|c| match (scenario, c) {
            (Scenario::Join { .. }, Change::Join(id)) => held(new, *id),
            (_, Change::Leave(id) | Change::Remove(id)) => held(old, *id),
            _ => 0,
        })
        .sum()
}

/// Reads every key through a running member; returns how many did not
/// come back with their value.
async fn read_back(cluster: &Cluster, keys: &[Key], value_len: usize) -> usize {
    let Some(layout) = cluster.layout() else {
        return keys.len();
    };
    let readers: Vec<_> = cluster
        .running()
        .into_iter()
        .filter(|&i| layout.member(cluster.id(i)).is_some())
        .filter_map(|i| cluster.node(i))
        .collect();
    let mut lost = 0;
    for (i, key) in keys.iter().enumerate() {
        let Some(node) = readers.get(i % readers.len().max(1)) else {
            return keys.len();
        };
        let op = ClientOp::Get {
            bucket: bucket(),
            key: key.clone(),
            r: None,
        };
        let found = matches!(
            node.replication().client(op).await,
            Ok(ClientReply::Values { values, .. }) if values == [value(i, value_len)]
        );
        lost += usize::from(!found);
    }
    lost
}

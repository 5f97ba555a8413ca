//! [`NodeBackend`]: the front ends' [`Backend`] over a running node.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use gyre_api::{
    AdminCommand, AdminError, AdminReply, Backend, BucketSet, ChangeStatus, ClusterStatus, KeyPage,
    KvError, MemberStatus, NodeMoves, NodeStats, PeerStats, PlanSummary, TreeRoot,
};
use gyre_membership::{Change, NodeStatus, Plan};
use gyre_node::PlanEstimate;
use gyre_ring::Layout;
use gyre_storage::Store;
use gyre_types::{BucketName, BucketProps, Key, NodeId, ZoneName};
use gyre_wire::{ClientOp, ClientReply};

use crate::run::GyreNode;

/// A running node, as the front ends see it.
pub(crate) struct NodeBackend {
    node: Arc<GyreNode>,
}

impl NodeBackend {
    pub(crate) fn new(node: Arc<GyreNode>) -> Self {
        Self { node }
    }

    /// Commits `plan` (see [`gyre_node::Node::commit_plan`]) and sums it up.
    async fn committed(&self, plan: Plan, force: bool) -> Result<AdminReply, AdminError> {
        let estimate = self
            .node
            .commit_plan(plan.clone(), force)
            .await
            .map_err(|e| AdminError::BadRequest(e.to_string()))?;
        Ok(AdminReply::Committed(summary(&plan, &estimate)))
    }
}

/// Each member's share of partition replicas in `layout`.
fn ownership(layout: &Layout, id: NodeId) -> f64 {
    let total = layout.partitions().get() as f64 * f64::from(layout.replication());
    if total == 0.0 {
        return 0.0;
    }
    layout.partitions_of(id).len() as f64 / total
}

fn summary(plan: &Plan, estimate: &PlanEstimate) -> PlanSummary {
    let layout = plan.layout();
    PlanSummary {
        changes: plan.changes().iter().map(describe).collect(),
        version: layout.version(),
        moves: plan.diff().map_or(0, |d| d.moves.len() as u64),
        ownership: layout
            .members()
            .iter()
            .map(|m| (m.id.to_string(), ownership(layout, m.id)))
            .collect(),
        nodes: estimate
            .nodes
            .iter()
            .map(|(id, e)| NodeMoves {
                node: id.to_string(),
                gains: e.gains,
                losses: e.losses,
                bytes_in: e.bytes_in,
            })
            .collect(),
        bytes: estimate.bytes,
        unreported: estimate.unreported.iter().map(ToString::to_string).collect(),
        eta_secs: estimate.eta_secs,
        safe: estimate.unsafe_because.is_none(),
        safety: estimate
            .unsafe_because
            .clone()
            .unwrap_or_else(|| "safe: every partition keeps W live replicas in its old and new sets if one more node fails".to_owned()),
    }
}

fn describe(change: &Change) -> String {
    match change {
        Change::Join(id) => format!("join {id}"),
        Change::Leave(id) => format!("leave {id}"),
        Change::Remove(id) => format!("remove {id}"),
        Change::SetCapacity(id, c) => format!("set {id} capacity {c}"),
        Change::SetZone(id, z) => format!("set {id} zone {z}"),
    }
}

fn node_id(s: &str) -> Result<NodeId, AdminError> {
    s.parse()
        .map_err(|e: gyre_types::Error| AdminError::BadRequest(e.to_string()))
}

fn bad(e: gyre_membership::Error) -> AdminError {
    AdminError::BadRequest(e.to_string())
}

/// A replication error as the front ends report it.
fn kv_error(e: gyre_replication::Error) -> KvError {
    match e {
        gyre_replication::Error::BadRequest(m) => KvError::BadRequest(m),
        gyre_replication::Error::Unavailable {
            answered,
            required,
            detail,
        } => KvError::Unavailable {
            answered,
            required,
            detail,
        },
        gyre_replication::Error::NoLayout => KvError::NotReady(
            "the cluster has no layout yet: join nodes with `gyre cluster join` and `gyre cluster commit`"
                .to_owned(),
        ),
        e @ gyre_replication::Error::Removed(_) => KvError::NotReady(e.to_string()),
        gyre_replication::Error::Storage(
            e @ (gyre_storage::Error::KeyTooLong { .. }
            | gyre_storage::Error::ValueTooLarge { .. }
            | gyre_storage::Error::ObjectTooLarge { .. }),
        ) => KvError::BadRequest(e.to_string()),
        e => KvError::Internal(e.to_string()),
    }
}

impl Backend for NodeBackend {
    async fn kv(&self, op: ClientOp) -> Result<ClientReply, KvError> {
        let (bucket, _) = op.target();
        if self.node.buckets().props(bucket).is_none() {
            return Err(KvError::UnknownBucket(bucket.to_string()));
        }
        // One unavailability, whether the reply or the error carries it.
        let outcome = self
            .node
            .replication()
            .client(op)
            .await
            .and_then(|reply| match reply {
                ClientReply::Unavailable {
                    answered,
                    required,
                    detail,
                } => Err(gyre_replication::Error::Unavailable {
                    answered,
                    required,
                    detail,
                }),
                reply => Ok(reply),
            });
        outcome.map_err(kv_error)
    }

    fn bucket(&self, bucket: &BucketName) -> Option<BucketProps> {
        self.node.buckets().props(bucket)
    }

    fn buckets(&self) -> Vec<(BucketName, BucketProps)> {
        self.node.buckets().buckets()
    }

    async fn set_bucket(
        &self,
        bucket: BucketName,
        props: BucketProps,
    ) -> Result<BucketSet, AdminError> {
        if let Some(layout) = self.node.membership().layout()
            && props.n_val() > layout.replication()
        {
            return Err(AdminError::BadRequest(format!(
                "n_val {} is more than the ring's {} replicas per partition",
                props.n_val(),
                layout.replication()
            )));
        }
        let name = bucket.to_string();
        let (acknowledged, members) = self
            .node
            .set_bucket(bucket, props)
            .await
            .map_err(|e| AdminError::Internal(e.to_string()))?;
        Ok(BucketSet {
            bucket: name,
            acknowledged,
            members,
        })
    }

    fn status(&self) -> ClusterStatus {
        let backlog = self.node.replication().replica().store().hint_backlog();
        let layout = self.node.membership().layout();
        self.node.membership().with(|core, now| {
            let members = core
                .members(now)
                .map(|m| {
                    let state = m.state;
                    MemberStatus {
                        id: m.id.to_string(),
                        peer_addr: state.map(|s| s.peer_addr.clone()),
                        client_addrs: state.map(|s| s.client_addrs.clone()).unwrap_or_default(),
                        zone: state.map(|s| s.zone.to_string()),
                        capacity: state.map(|s| s.capacity),
                        status: member_status(&m).to_owned(),
                        in_layout: m.in_layout,
                        up: m.up,
                        phi: m.phi.filter(|p| p.is_finite()),
                        ownership: layout.as_deref().map_or(0.0, |l| ownership(l, m.id)),
                        hints_pending: backlog.get(&m.id).copied().unwrap_or(0),
                    }
                })
                .collect();
            ClusterStatus {
                node: core.id().to_string(),
                layout_version: layout.as_ref().map(|l| l.version()),
                partitions: layout.as_ref().map(|l| l.partitions().get()),
                replication: layout.as_ref().map(|l| l.replication()),
                members,
                staged: core.staged().iter().map(describe).collect(),
                change: core.transition(now).map(|t| ChangeStatus {
                    from: t.from.version,
                    to: t.to.version,
                    layouts_in_use: u32::try_from(core.history().len()).unwrap_or(u32::MAX),
                    stage: if !t.reading_new {
                        "filling"
                    } else if t.not_reading.is_empty() {
                        "reading_new"
                    } else {
                        "retiring"
                    }
                    .to_owned(),
                    not_synced: t.not_synced.iter().map(ToString::to_string).collect(),
                    not_reading: t.not_reading.iter().map(ToString::to_string).collect(),
                }),
                transfers: self.node.transfers().progress(),
            }
        })
    }

    async fn admin(&self, command: AdminCommand) -> Result<AdminReply, AdminError> {
        let membership = self.node.membership();
        let stage = |changes: Vec<Change>| {
            membership.with(|core, _| {
                for change in changes {
                    core.stage(change).map_err(bad)?;
                }
                Ok(AdminReply::Staged(
                    core.staged().iter().map(describe).collect(),
                ))
            })
        };
        match command {
            AdminCommand::Join { node } => stage(vec![Change::Join(node_id(&node)?)]),
            AdminCommand::Leave { node } => stage(vec![Change::Leave(node_id(&node)?)]),
            AdminCommand::Remove { node } => stage(vec![Change::Remove(node_id(&node)?)]),
            AdminCommand::Set {
                node,
                capacity,
                zone,
            } => {
                let id = node_id(&node)?;
                let mut changes = Vec::new();
                if let Some(c) = capacity {
                    changes.push(Change::SetCapacity(id, c));
                }
                if let Some(z) = zone {
                    let zone =
                        ZoneName::new(z).map_err(|e| AdminError::BadRequest(e.to_string()))?;
                    changes.push(Change::SetZone(id, zone));
                }
                if changes.is_empty() {
                    return Err(AdminError::BadRequest(
                        "set what? give a capacity and/or a zone".to_owned(),
                    ));
                }
                stage(changes)
            }
            AdminCommand::Clear => membership.with(|core, _| {
                core.clear_staged();
                Ok(AdminReply::Staged(Vec::new()))
            }),
            AdminCommand::Plan => {
                let plan = membership.with(|core, _| core.plan()).map_err(bad)?;
                let estimate = self.node.dry_run(&plan).await;
                Ok(AdminReply::Plan(summary(&plan, &estimate)))
            }
            AdminCommand::Commit { force } => {
                let plan = membership.with(|core, _| core.plan()).map_err(bad)?;
                self.committed(plan, force).await
            }
            AdminCommand::Abort => {
                // An abort is the remedy, whatever the dry run says of it.
                let plan = membership.with(|core, _| core.abort_plan()).map_err(bad)?;
                self.committed(plan, true).await
            }
            AdminCommand::Throttle {
                rate,
                inbound,
                outbound,
            } => {
                let transfers = self.node.transfers();
                let now = transfers.progress();
                let rate = rate.unwrap_or(now.max_rate);
                let inbound = inbound.map_or(now.max_inbound, |i| i as usize).max(1);
                let outbound = outbound.map_or(now.max_outbound, |i| i as usize).max(1);
                transfers.set_throttle(rate, inbound, outbound);
                let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
                Ok(AdminReply::Throttle {
                    rate,
                    inbound: count(inbound),
                    outbound: count(outbound),
                })
            }
        }
    }

    fn local_trees(&self) -> Vec<TreeRoot> {
        let store = self.node.replication().replica().store();
        store
            .merkle_trees()
            .into_iter()
            .filter_map(|(partition, n_val)| {
                let tree = store.merkle_tree(partition, n_val).ok()?;
                Some(TreeRoot {
                    partition: partition.get(),
                    n_val,
                    root: format!("{:032x}", tree.root()),
                })
            })
            .collect()
    }

    fn local_get(&self, bucket: &BucketName, key: &Key) -> Result<Option<Vec<Bytes>>, KvError> {
        self.node
            .replication()
            .replica()
            .get(bucket, key)
            .map(|o| o.map(|o| o.values().cloned().collect()))
            .map_err(|e| KvError::Internal(e.to_string()))
    }

    async fn list_keys(
        &self,
        bucket: &BucketName,
        cursor: u64,
        count: usize,
    ) -> Result<KeyPage, KvError> {
        if self.node.buckets().props(bucket).is_none() {
            return Err(KvError::UnknownBucket(bucket.to_string()));
        }
        let page = self
            .node
            .replication()
            .list_keys(bucket, cursor, count)
            .await
            .map_err(kv_error)?;
        Ok(KeyPage {
            keys: page.keys,
            cursor: page.cursor,
        })
    }

    async fn key_count(&self) -> Result<u64, KvError> {
        Ok(self.node.replication().key_count_estimate().await)
    }

    fn stats(&self) -> NodeStats {
        let replication = self.node.replication();
        let c = replication.counters();
        let backlog = replication.replica().store().hint_backlog();
        let me = self.node.membership().id();
        let (status, peers) = self.node.membership().with(|core, now| {
            let mut status = "unknown";
            let mut peers = Vec::new();
            for m in core.members(now) {
                if m.id == me {
                    status = member_status(&m);
                } else if !m.removed {
                    peers.push(PeerStats {
                        id: m.id.to_string(),
                        status: member_status(&m).to_owned(),
                        up: m.up,
                        phi: m.phi.filter(|p| p.is_finite()),
                    });
                }
            }
            (status.to_owned(), peers)
        });
        NodeStats {
            fallbacks: c.fallbacks.load(Ordering::Relaxed),
            hints_delivered: c.hints_delivered.load(Ordering::Relaxed),
            hints_pending: backlog.values().sum(),
            hints_by_target: backlog.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
            status,
            peers,
            process: crate::process::stats(),
            read_repairs: c.read_repairs.load(Ordering::Relaxed),
            anti_entropy_keys: c.ae_keys.load(Ordering::Relaxed),
            anti_entropy_sessions: c.ae_sessions.load(Ordering::Relaxed),
            anti_entropy_failures: c.ae_failures.load(Ordering::Relaxed),
            quorum_failures: c.unavailable.load(Ordering::Relaxed),
            hedged: c.hedged.load(Ordering::Relaxed),
            purges: c.purges.load(Ordering::Relaxed),
            expired_purged: c.expired_purged.load(Ordering::Relaxed),
            swept: c.swept.load(Ordering::Relaxed),
            layouts_in_use: self
                .node
                .membership()
                .with(|core, _| core.history().len() as u64),
            transfers: self.node.transfers().progress(),
        }
    }
}

/// A member's status as the API and metrics name it.
fn member_status(m: &gyre_membership::MemberView<'_>) -> &'static str {
    match (m.removed, m.state.map(|s| s.status)) {
        (true, _) => "removed",
        (_, Some(NodeStatus::Joining)) => "joining",
        (_, Some(NodeStatus::Member)) => "member",
        (_, Some(NodeStatus::Leaving)) => "leaving",
        (_, Some(NodeStatus::Left)) => "left",
        (_, None) => "unknown",
    }
}

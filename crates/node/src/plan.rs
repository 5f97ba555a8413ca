//! A layout change's dry run and its commit: the old replicas' size
//! reports and the liveness snapshot gathered here, judged by
//! [`PlanEstimate::of`], and the commit refused when the verdict is unsafe.

use std::collections::{BTreeMap, BTreeSet};

use gyre_handoff::{DryRun, PlanEstimate};
use gyre_membership::Plan;
use gyre_storage::Store;
use gyre_types::{BucketName, NodeId};

use crate::{Node, Peers};

/// Why a plan was not committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Its dry run judged it unsafe, and it was not forced.
    #[error("unsafe plan: {0}; commit with force to go ahead anyway")]
    Unsafe(String),
    /// The membership core refused it (nothing staged, a stale plan…).
    #[error(transparent)]
    Membership(#[from] gyre_membership::Error),
}

impl<T: Peers, S: Store + 'static> Node<T, S> {
    /// The dry run of `plan` against the layout this node holds: what it
    /// moves (asking the old replicas for their partitions' sizes), how
    /// long at this node's throttle, and whether it is safe with the
    /// default bucket's W.
    pub async fn dry_run(&self, plan: &Plan) -> PlanEstimate {
        let (Some(current), Some(diff)) = (self.membership().layout(), plan.diff()) else {
            return PlanEstimate::default();
        };
        let next = plan.layout();
        let w = self
            .buckets()
            .props(&BucketName::default())
            .map_or(2, |p| p.w());
        // Liveness as it is now, before the size reports: a member slow to
        // answer them must not count as down (when each report was a scan
        // of a member's whole store, at 1,000,000 keys on two cores, the
        // scans delayed gossip enough to judge a safe plan unsafe).
        let up: BTreeSet<NodeId> = next
            .members()
            .iter()
            .chain(current.members())
            .map(|m| m.id)
            .filter(|&id| self.membership().is_up(id))
            .collect();
        let reports = self
            .replication()
            .partition_sizes(current.members().iter().map(|m| m.id))
            .await;
        let sizes: BTreeMap<NodeId, BTreeMap<u32, u64>> = reports
            .into_iter()
            .map(|(id, list)| {
                let bytes = list.into_iter().map(|s| (s.partition.get(), s.bytes));
                (id, bytes.collect())
            })
            .collect();
        PlanEstimate::of(&DryRun {
            current: &current,
            next,
            diff,
            removes: plan.removed(),
            w,
            up: &up,
            sizes: &sizes,
            rate: self.transfers().progress().max_rate,
        })
    }

    /// Commits `plan` unless its dry run judges it unsafe and it is not
    /// `force`d: its estimate, or why not.
    pub async fn commit_plan(&self, plan: Plan, force: bool) -> Result<PlanEstimate, CommitError> {
        let estimate = self.dry_run(&plan).await;
        if let Some(why) = &estimate.unsafe_because
            && !force
        {
            return Err(CommitError::Unsafe(why.clone()));
        }
        self.membership().commit(plan)?;
        Ok(estimate)
    }
}

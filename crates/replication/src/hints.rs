//! Hinted handoff: the writes this node holds for another, delivered when
//! it is back.

use gyre_storage::{HintId, Store};
use gyre_types::NodeId;
use gyre_wire::{Item, Request};

use crate::{Replica, Result};

/// A batch of hints on its way to their owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HintBatch {
    /// The owner.
    pub target: NodeId,
    /// The hints sent, to remove once the owner stored them.
    pub ids: Vec<HintId>,
    /// The request that delivers them (a merge at the owner).
    pub request: Request,
}

impl<S: Store> Replica<S> {
    /// The oldest hints held for `target`, as one delivery; `None` if there
    /// are none.
    ///
    /// # Errors
    /// [`crate::Error::Storage`].
    pub fn hint_batch(&self, target: NodeId) -> Result<Option<HintBatch>> {
        let hints = self
            .store()
            .hints(target, None, self.config().hint_batch.max(1))?;
        if hints.is_empty() {
            return Ok(None);
        }
        let mut ids = Vec::with_capacity(hints.len());
        let mut items = Vec::with_capacity(hints.len());
        for (id, hint) in hints {
            ids.push(id);
            items.push(Item {
                bucket: hint.id.bucket().clone(),
                key: hint.id.key().clone(),
                n_val: hint.n_val,
                object: hint.object,
            });
        }
        Ok(Some(HintBatch {
            target,
            ids,
            request: Request::DeliverHints { items },
        }))
    }

    /// The owner acknowledged `batch` as durably stored: its hints go.
    ///
    /// # Errors
    /// [`crate::Error::Storage`].
    pub fn hints_delivered(&self, batch: &HintBatch) -> Result<()> {
        for id in &batch.ids {
            self.store().remove_hint(batch.target, *id)?;
        }
        Ok(())
    }
}

//! What a node keeps across restarts besides its data: its id (bound to
//! the data directory) and the layout it last held.

use gyre_membership::LayoutStamp;
use gyre_ring::Layout;
use gyre_storage::Store;
use gyre_types::NodeId;

/// The metadata entry that holds the layout this node reads with.
const READING: &str = "reading";

/// The metadata entry that says an operator removed this node.
const REMOVED: &str = "removed";

/// Why a node cannot start on a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    /// The store belongs to another node: its data was written as
    /// `stored`, but this node is `id` (its certificate names that id).
    /// Start `stored` on it, or give this node its own data directory.
    #[error("the data directory belongs to node {stored}, not to {id}")]
    NotMine {
        /// The id recorded in the store.
        stored: NodeId,
        /// The id this node was started as.
        id: NodeId,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] gyre_storage::Error),
}

/// What a node starts from.
#[derive(Clone, Debug)]
pub struct Boot {
    /// The layout the node held when it stopped, if any.
    pub layout: Option<Layout>,
    /// The older layouts it still used (a layout change was moving data),
    /// oldest first: give them to [`gyre_membership::Membership::with_older`].
    pub older: Vec<Layout>,
    /// The layout it read with, if it said so during a change: give it to
    /// [`gyre_membership::Membership::with_reading`].
    pub reading: Option<LayoutStamp>,
    /// Whether the store was new (no data of any earlier life): a node id
    /// that is already a layout member on a new store means its data was
    /// lost, and the node must come back under a fresh id.
    pub fresh: bool,
    /// Whether an operator removed this node before it stopped: give it to
    /// [`gyre_membership::Membership::with_self_removed`], so that it
    /// refuses requests from its first moment.
    pub removed: bool,
}

/// Binds `store` to node `id` (recording the id in a new store, refusing a
/// store of another node) and reads the layout it held.
///
/// # Errors
/// [`BootError::NotMine`] for another node's store; store errors.
pub fn boot<S: Store>(store: &S, id: NodeId) -> Result<Boot, BootError> {
    match store.node_id()? {
        Some(stored) if stored != id => Err(BootError::NotMine { stored, id }),
        Some(_) => Ok(Boot {
            layout: store.layout()?,
            older: store.older_layouts()?,
            // Unreadable is as if never said: the oldest layout in use.
            reading: store
                .meta(READING)?
                .and_then(|bytes| serde_json::from_slice(&bytes).ok()),
            fresh: false,
            removed: store.meta(REMOVED)?.is_some(),
        }),
        None => {
            store.set_node_id(id)?;
            Ok(Boot {
                layout: None,
                older: Vec::new(),
                reading: None,
                fresh: true,
                removed: false,
            })
        }
    }
}

/// Records the layouts in use (`history`, oldest first) and the one this
/// node reads with, in one atomic write, so that a restart routes as
/// before it.
///
/// # Errors
/// Store errors.
pub(crate) fn save_routing<S: Store>(
    store: &S,
    mut history: Vec<Layout>,
    reading: Option<LayoutStamp>,
) -> Result<(), gyre_storage::Error> {
    let Some(newest) = history.pop() else {
        return Ok(());
    };
    // A stamp always serialises.
    let reading = serde_json::to_vec(&reading).unwrap_or_default();
    store.set_layouts(&history, &newest, vec![(READING.to_owned(), reading)])
}

/// Records that an operator removed this node, for good.
///
/// # Errors
/// Store errors.
pub(crate) fn save_removed<S: Store>(store: &S) -> Result<(), gyre_storage::Error> {
    store.set_meta(REMOVED, Vec::new())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use gyre_ring::{Member, RingConfig};
    use gyre_storage::{Durability, MemStore, StoreConfig};
    use gyre_types::ZoneName;

    use super::*;

    fn members(ids: &[u64]) -> Vec<Member> {
        ids.iter()
            .map(|&i| Member::new(NodeId::new(i), ZoneName::new(format!("z{i}")).unwrap(), 100))
            .collect()
    }

    #[test]
    fn the_layouts_in_use_and_the_one_read_survive_a_restart() {
        let store = MemStore::new(StoreConfig {
            durability: Durability::None,
            ..StoreConfig::default()
        })
        .unwrap();
        let me = NodeId::new(1);
        assert!(boot(&store, me).unwrap().fresh);
        let v1 = Layout::initial(RingConfig::default(), members(&[1, 2, 3])).unwrap();
        let v2 = v1.next(members(&[1, 2, 3, 4])).unwrap();
        let v3 = v2.next(members(&[1, 2, 3, 4, 5])).unwrap();
        let history = vec![v1.clone(), v2.clone(), v3.clone()];
        save_routing(&store, history, Some(LayoutStamp::of(&v2))).unwrap();
        let booted = boot(&store, me).unwrap();
        assert!(!booted.fresh);
        assert_eq!(booted.layout, Some(v3));
        assert_eq!(booted.older, [v1, v2.clone()]);
        assert_eq!(booted.reading, Some(LayoutStamp::of(&v2)));
        // Said nothing: nothing comes back.
        save_routing(&store, vec![v2], None).unwrap();
        assert_eq!(boot(&store, me).unwrap().reading, None);
        // Removed: for good.
        assert!(!boot(&store, me).unwrap().removed);
        save_removed(&store).unwrap();
        assert!(boot(&store, me).unwrap().removed);
    }
}

//! What a node keeps across restarts besides its data: its id (bound to
//! the data directory) and the layout it last held.

use gyre_ring::Layout;
use gyre_storage::Store;
use gyre_types::NodeId;

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
    /// Whether the store was new (no data of any earlier life): a node id
    /// that is already a layout member on a new store means its data was
    /// lost, and the node must come back under a fresh id.
    pub fresh: bool,
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
            fresh: false,
        }),
        None => {
            store.set_node_id(id)?;
            Ok(Boot {
                layout: None,
                older: Vec::new(),
                fresh: true,
            })
        }
    }
}

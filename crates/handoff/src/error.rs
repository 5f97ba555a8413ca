//! What can go wrong in the handoff core.

use gyre_membership::LayoutStamp;

/// The errors of the handoff core.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The transfer of this layout was replaced by a newer one (an abort,
    /// a stacked change): it records nothing any more.
    #[error("the transfer of layout {0} was superseded by a newer layout")]
    Superseded(LayoutStamp),
    /// Persisted cursors that cannot be read.
    #[error("unreadable transfer cursors: {0}")]
    Cursors(String),
}

use gyre_types::BucketProps;
pub use gyre_types::ConflictMode;
use serde::{Deserialize, Serialize};

/// The versioning settings of a bucket.
///
/// Derived from a bucket's [`BucketProps`] with `Policy::from`; serializable,
/// with missing fields taking their defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// How concurrent writes are resolved.
    pub mode: ConflictMode,
    /// A client write that would leave more siblings than this is refused
    /// with [`Error::TooManySiblings`](crate::Error::TooManySiblings).
    /// Replication ([`DvvSet::sync`](crate::DvvSet::sync)) ignores it.
    pub max_siblings: usize,
}

impl Policy {
    /// The default sibling limit (Riak's).
    pub const DEFAULT_MAX_SIBLINGS: usize = 100;

    /// Causal siblings with the default limit.
    pub const fn siblings() -> Self {
        Self {
            mode: ConflictMode::Siblings,
            max_siblings: Self::DEFAULT_MAX_SIBLINGS,
        }
    }

    /// Last writer wins.
    pub const fn lww() -> Self {
        Self {
            mode: ConflictMode::Lww,
            max_siblings: Self::DEFAULT_MAX_SIBLINGS,
        }
    }

    /// This policy with another sibling limit.
    pub const fn with_max_siblings(self, max_siblings: usize) -> Self {
        Self {
            max_siblings,
            ..self
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::siblings()
    }
}

impl From<&BucketProps> for Policy {
    fn from(props: &BucketProps) -> Self {
        Self {
            mode: props.conflict_mode(),
            max_siblings: usize::try_from(props.max_siblings()).unwrap_or(usize::MAX),
        }
    }
}

use serde::{Deserialize, Serialize};

/// How a bucket resolves concurrent writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictMode {
    /// Causal: concurrent writes are all kept as siblings, returned together
    /// with one context; a put with that context resolves them.
    #[default]
    Siblings,
    /// Last writer wins: a key holds one version, the write with the greatest
    /// `(timestamp, node id, counter)` among every write the replica has seen.
    /// Contexts only serve to mint dots; clock skew can make a later write
    /// lose, as in every LWW store.
    Lww,
}

/// The versioning settings of a bucket.
///
/// Serializable so that bucket properties can store it; missing fields take
/// their defaults.
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

/// Why a value of this crate could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key was empty.
    #[error("key is empty")]
    EmptyKey,
    /// A key was longer than [`crate::Key::MAX_LEN`].
    #[error("key is {len} bytes, the maximum is {max}")]
    KeyTooLong {
        /// Length of the rejected key.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A bucket name broke the naming rules.
    #[error("invalid bucket name {name:?}: {reason}")]
    InvalidBucket {
        /// The rejected name (possibly truncated).
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A zone name broke the naming rules.
    #[error("invalid zone name {name:?}: {reason}")]
    InvalidZone {
        /// The rejected name (possibly truncated).
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A partition count was not a power of two in the supported range.
    #[error("partition count {0} is not a power of two between 64 and 4096")]
    InvalidPartitionCount(u32),
    /// Bucket properties broke a rule.
    #[error("invalid bucket properties: {reason}")]
    InvalidBucketProps {
        /// Which rule, with the offending value.
        reason: String,
    },
    /// A node id could not be parsed.
    #[error("invalid node id {0:?}: expected 16 hexadecimal digits")]
    InvalidNodeId(String),
}

/// Result of this crate's constructors.
pub type Result<T> = std::result::Result<T, Error>;

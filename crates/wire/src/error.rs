/// Why bytes could not become a message, or a message bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A frame is larger than the limit; the stream cannot go on.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// The frame's length (announced or encoded).
        len: u64,
        /// The limit.
        max: u32,
    },
    /// Bytes that are not a valid message.
    #[error("malformed message: {0}")]
    Decode(String),
    /// A message that could not be encoded.
    #[error("message could not be encoded: {0}")]
    Encode(String),
    /// The peer speaks another protocol version.
    #[error("peer speaks protocol version {theirs}, this node speaks {ours}")]
    Version {
        /// Ours.
        ours: u16,
        /// Theirs.
        theirs: u16,
    },
    /// The peer belongs to another cluster.
    #[error("peer belongs to cluster {theirs:?}, this node to {ours:?}")]
    Cluster {
        /// Ours.
        ours: String,
        /// Theirs.
        theirs: String,
    },
    /// The peer refused the connection.
    #[error("peer refused the connection: {0}")]
    Refused(String),
    /// A setting is out of range.
    #[error("invalid wire configuration: {0}")]
    Config(String),
}

/// Result of this crate's functions.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a store operation failed.
///
/// Errors about the caller's input ([`KeyTooLong`](Error::KeyTooLong),
/// [`ValueTooLarge`](Error::ValueTooLarge), …) leave the store unchanged.
/// [`Fatal`](Error::Fatal) means the store can no longer promise durability
/// and refuses every further write: stop the node and restart it (recovery
/// replays the journal), as fjall and PostgreSQL do after a failed fsync.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key is longer than the store accepts.
    #[error("key is {len} bytes, the maximum is {max}")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A value is larger than the store accepts.
    #[error("value is {len} bytes, the limit is {max}")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// An object (all its siblings together) would not fit in one record.
    #[error("object {location} would be {len} bytes, more than one record holds")]
    ObjectTooLarge {
        /// Which object.
        location: String,
        /// Its encoded size.
        len: usize,
    },
    /// A record on disk could not be decoded. The record is left as it is.
    #[error("corrupt record at {location}: {reason}")]
    Corrupt {
        /// Which record: the bucket and key of an object, the target and
        /// sequence of a hint, or the name of a metadata entry.
        location: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The store was opened with settings that contradict the data in it.
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// The storage engine failed (an IO error, for instance).
    #[error("storage engine error: {0}")]
    Engine(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A write could not be made durable (a failed fsync) or the store
    /// already failed that way; nothing more is written until a restart.
    #[error("store failed and refuses writes until restarted: {0}")]
    Fatal(String),
}

/// Result of store operations.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(feature = "fjall")]
impl From<fjall::Error> for Error {
    fn from(e: fjall::Error) -> Self {
        match e {
            fjall::Error::Poisoned => Self::Fatal("the storage engine is poisoned".to_owned()),
            e => Self::Engine(Box::new(e)),
        }
    }
}

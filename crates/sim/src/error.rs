//! What can go wrong in the simulator itself (as opposed to what it finds).

/// A failure of the simulator, not of the system under test.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The cluster could not be built or formed.
    #[error("setup: {0}")]
    Setup(String),
}

/// Result of simulator operations.
pub type Result<T> = std::result::Result<T, Error>;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::node::{check_name, truncate};
use crate::{Error, Result};

/// A namespace for keys, with its own replication and conflict settings.
///
/// 1 to 64 bytes of `[A-Za-z0-9._-]`, so that a bucket name can appear in a
/// URL path, a metric label or a log line without escaping.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BucketName(String);

impl BucketName {
    /// Longest accepted bucket name, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Checks and wraps a bucket name.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        match check_name(&name, Self::MAX_LEN) {
            Ok(()) => Ok(Self(name)),
            Err(reason) => Err(Error::InvalidBucket {
                name: truncate(&name),
                reason,
            }),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for BucketName {
    /// The bucket that protocols without namespaces (plain Redis) use: `default`.
    fn default() -> Self {
        Self("default".to_owned())
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BucketName({:?})", self.0)
    }
}

impl TryFrom<String> for BucketName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<BucketName> for String {
    fn from(b: BucketName) -> Self {
        b.0
    }
}

impl FromStr for BucketName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names_and_rejects_the_rest() {
        assert!(BucketName::new("sessions.v2_eu-1").is_ok());
        assert!(BucketName::new("").is_err());
        assert!(BucketName::new("a/b").is_err());
        assert!(BucketName::new("ü").is_err());
        assert!(BucketName::new("b".repeat(64)).is_ok());
        assert!(BucketName::new("b".repeat(65)).is_err());
    }

    #[test]
    fn deserialising_checks_the_rules_too() {
        let err = BucketName::try_from("no spaces".to_owned()).unwrap_err();
        assert!(matches!(err, Error::InvalidBucket { .. }));
    }
}

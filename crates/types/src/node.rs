use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The identity of a node: 64 random bits, chosen when a node first starts
/// with an empty data directory and kept for as long as that data lives.
///
/// A node whose data was wiped must come back with a *fresh* id: version
/// vectors name nodes, and a reused id could mint a dot that already exists.
///
/// Displayed and parsed as 16 lower-case hexadecimal digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(u64);

impl NodeId {
    /// Wraps a raw id.
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw id.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl FromStr for NodeId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidNodeId(truncate(s)));
        }
        u64::from_str_radix(s, 16)
            .map(Self)
            .map_err(|_| Error::InvalidNodeId(truncate(s)))
    }
}

/// A failure domain: a rack, a data centre room, an availability zone.
///
/// The ring places the replicas of a partition in distinct zones wherever the
/// cluster has enough of them. 1 to 64 bytes of `[A-Za-z0-9._-]`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ZoneName(String);

impl ZoneName {
    /// Longest accepted zone name, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Checks and wraps a zone name.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        match check_name(&name, Self::MAX_LEN) {
            Ok(()) => Ok(Self(name)),
            Err(reason) => Err(Error::InvalidZone {
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

impl Default for ZoneName {
    /// The zone of nodes configured without one: `default`.
    fn default() -> Self {
        Self("default".to_owned())
    }
}

impl fmt::Display for ZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZoneName({:?})", self.0)
    }
}

impl TryFrom<String> for ZoneName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<ZoneName> for String {
    fn from(z: ZoneName) -> Self {
        z.0
    }
}

impl FromStr for ZoneName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

/// The naming rule shared by buckets and zones: 1..=max bytes of `[A-Za-z0-9._-]`.
pub(crate) fn check_name(name: &str, max: usize) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > max {
        return Err("too long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// Shortens untrusted text before it goes into an error message.
pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_round_trips_through_hex() {
        let id = NodeId::new(0x00ab_cdef_0123_4567);
        assert_eq!(id.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse::<NodeId>(), Ok(id));
    }

    #[test]
    fn node_id_rejects_bad_text() {
        for bad in [
            "",
            "abc",
            "00abcdef0123456g",
            "+0abcdef01234567",
            "00abcdef012345678",
        ] {
            assert!(bad.parse::<NodeId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn zone_names_follow_the_rules() {
        assert!(ZoneName::new("eu-west-1a").is_ok());
        assert!(ZoneName::new("").is_err());
        assert!(ZoneName::new("a b").is_err());
        assert!(ZoneName::new("x".repeat(65)).is_err());
        assert_eq!(ZoneName::default().as_str(), "default");
    }
}

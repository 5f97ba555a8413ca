use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A key: 1 to [`Key::MAX_LEN`] (65,463) opaque bytes.
///
/// Keys are compared and hashed as bytes; the store never interprets them.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<u8>", into = "Vec<u8>")]
pub struct Key(Box<[u8]>);

impl Key {
    /// Longest accepted key, in bytes: 65,463, what the store can hold (its
    /// engine's 64 KiB record keys less an 8-byte hash, a length byte and a
    /// bucket name of up to 64 bytes). One limit everywhere: the front ends,
    /// the wire and the store refuse longer keys with the same message. Far
    /// beyond what a primary key should need.
    pub const MAX_LEN: usize = 65_536 - 8 - 1 - crate::BucketName::MAX_LEN;

    /// Checks and wraps a key.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self> {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Err(Error::EmptyKey);
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(Error::KeyTooLong {
                len: bytes.len(),
                max: Self::MAX_LEN,
            });
        }
        Ok(Self(bytes.into_boxed_slice()))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (never zero).
    #[allow(clippy::len_without_is_empty)] // a key is never empty
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<Vec<u8>> for Key {
    type Error = Error;
    fn try_from(v: Vec<u8>) -> Result<Self> {
        Self::new(v)
    }
}

impl TryFrom<&[u8]> for Key {
    type Error = Error;
    fn try_from(v: &[u8]) -> Result<Self> {
        Self::new(v.to_vec())
    }
}

impl TryFrom<&str> for Key {
    type Error = Error;
    fn try_from(v: &str) -> Result<Self> {
        Self::new(v.as_bytes().to_vec())
    }
}

impl From<Key> for Vec<u8> {
    fn from(k: Key) -> Self {
        k.0.into_vec()
    }
}

impl fmt::Debug for Key {
    /// Printable ASCII as text, anything else escaped; long keys are cut.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 64;
        f.write_str("Key(\"")?;
        for &b in self.0.iter().take(SHOWN) {
            write!(f, "{}", std::ascii::escape_default(b))?;
        }
        if self.0.len() > SHOWN {
            write!(f, "…+{}", self.0.len() - SHOWN)?;
        }
        f.write_str("\")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced() {
        assert_eq!(Key::new(Vec::new()), Err(Error::EmptyKey));
        assert!(Key::new(vec![0; Key::MAX_LEN]).is_ok());
        assert_eq!(
            Key::new(vec![0; Key::MAX_LEN + 1]),
            Err(Error::KeyTooLong {
                len: Key::MAX_LEN + 1,
                max: Key::MAX_LEN
            })
        );
    }

    #[test]
    fn debug_escapes_binary() {
        let k = Key::new(b"a\x00b".to_vec()).unwrap();
        assert_eq!(format!("{k:?}"), r#"Key("a\x00b")"#);
    }
}

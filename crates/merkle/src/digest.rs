use std::fmt;

use gyre_types::{BucketName, Key};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The digest of one stored item: which key it is and which version it holds.
///
/// The function is a format (trees are persisted and compared across nodes) and
/// must never change: XXH3-128 (seed 0) over
/// `len(identity) as u32 LE ‖ identity ‖ version_digest as 16 bytes LE`.
/// The length prefix keeps the identity and the version apart. Test vectors in
/// this module, computed with the reference xxHash, pin it.
///
/// `identity` must name the item uniquely *within the tree*. A tree holds the
/// keys of every bucket with the same n_val in one partition, so the bare key
/// bytes are not enough: the same key in two buckets, holding versions with
/// equal digests, would give two equal item digests, and equal digests in one
/// leaf cancel out under XOR. Use [`ItemDigest::of_bucket_key`], which
/// qualifies the key with its bucket, unless the caller's keys are already
/// unique.
///
/// Serialised as 16 bytes (little-endian), so compact encodings spend exactly 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemDigest(u128);

impl ItemDigest {
    /// The digest of the item named `identity` holding the version whose digest is
    /// `version_digest` (computed by the versioning layer from its state).
    pub fn of(identity: &[u8], version_digest: u128) -> Self {
        let mut h = xxhash_rust::xxh3::Xxh3Default::new();
        // Keys are under 64 KiB (gyre_types::Key::MAX_LEN); an identity longer
        // than u32::MAX bytes cannot be stored, so saturating loses nothing real.
        let len = u32::try_from(identity.len()).unwrap_or(u32::MAX);
        h.update(&len.to_le_bytes());
        h.update(identity);
        h.update(&version_digest.to_le_bytes());
        Self(h.digest128())
    }

    /// The digest of `key` in `bucket` holding the version whose digest is `version_digest`.
    ///
    /// The identity is `len(bucket) as u8 ‖ bucket ‖ key`, the same bytes
    /// [`gyre_types::KeyHash::of`] hashes.
    pub fn of_bucket_key(bucket: &BucketName, key: &Key, version_digest: u128) -> Self {
        let b = bucket.as_str().as_bytes();
        let mut identity = Vec::with_capacity(1 + b.len() + key.len());
        // BucketName::MAX_LEN is 64, so the length always fits in one byte.
        identity.push(b.len() as u8);
        identity.extend_from_slice(b);
        identity.extend_from_slice(key.as_bytes());
        Self::of(&identity, version_digest)
    }

    /// Wraps a raw digest (for tests, and for digests read back from storage).
    pub const fn from_u128(raw: u128) -> Self {
        Self(raw)
    }

    /// The raw 128-bit value.
    pub const fn as_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Debug for ItemDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ItemDigest({:032x})", self.0)
    }
}

impl fmt::Display for ItemDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl Serialize for ItemDigest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        one::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for ItemDigest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one::deserialize(d).map(Self)
    }
}

/// `#[serde(with)]` for one `u128` digest: 16 little-endian bytes.
///
/// Serde's own `u128` becomes a varint in compact formats (19 bytes for a
/// random digest); a fixed array of bytes is 16.
pub(crate) mod one {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(d: &u128, s: S) -> Result<S::Ok, S::Error> {
        d.to_le_bytes().serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        <[u8; 16]>::deserialize(d).map(u128::from_le_bytes)
    }
}

/// `#[serde(with)]` for a list of `u128` digests, each as 16 little-endian bytes.
pub(crate) mod many {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(ds: &[u128], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(ds.iter().map(|d| d.to_le_bytes()))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u128>, D::Error> {
        // Vec's Deserialize caps its pre-allocation, so a lying length prefix
        // cannot make this allocate more than the input actually holds.
        let raw = Vec::<[u8; 16]>::deserialize(d)?;
        Ok(raw.into_iter().map(u128::from_le_bytes).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// These values are a format (computed with the reference xxHash through
    /// Python's `xxhash` package, `xxh3_128_intdigest`): if this test fails,
    /// every persisted tree and every peer running the old code disagrees.
    #[test]
    fn test_vectors_are_pinned() {
        let vectors: [(&[u8], u128, u128); 4] = [
            (b"", 0, 0x9098098c9951f3d716773ceb7fe497b1),
            (b"user:42", 1, 0x9338156fd684c71c149ba95a3dc06742),
            (
                b"\x07defaultuser:42",
                0x0123456789abcdef_fedcba9876543210,
                0x11e4b6cb3435193d2f2fcf21f10ae3eb,
            ),
            (&[b'x'; 300], u128::MAX, 0x197536daf3ba1f47dc610c19500e3689),
        ];
        for (identity, version, want) in vectors {
            assert_eq!(
                ItemDigest::of(identity, version).as_u128(),
                want,
                "digest of ({identity:?}, {version:x})"
            );
        }
    }

    #[test]
    fn bucket_key_is_the_length_prefixed_identity() {
        let bucket = BucketName::new("default").unwrap();
        let key = Key::new(b"user:42".to_vec()).unwrap();
        let v = 0x0123456789abcdef_fedcba9876543210;
        assert_eq!(
            ItemDigest::of_bucket_key(&bucket, &key, v).as_u128(),
            0x11e4b6cb3435193d2f2fcf21f10ae3eb
        );
    }

    #[test]
    fn identity_and_version_are_separated() {
        // Same bytes overall, split differently between key and version.
        assert_ne!(ItemDigest::of(b"a", 0), ItemDigest::of(b"a\0", 0));
        assert_ne!(ItemDigest::of(b"k", 1), ItemDigest::of(b"k", 2));
        let b1 = BucketName::new("ab").unwrap();
        let b2 = BucketName::new("a").unwrap();
        assert_ne!(
            ItemDigest::of_bucket_key(&b1, &Key::try_from("c").unwrap(), 0),
            ItemDigest::of_bucket_key(&b2, &Key::try_from("bc").unwrap(), 0)
        );
    }
}

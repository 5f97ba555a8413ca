use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{BucketName, Key};

/// Where a key sits on the ring: a stable 64-bit hash of its bucket and key.
///
/// The function is part of the on-disk and on-wire format and must never
/// change: XXH3-64 (seed 0) over `len(bucket) as u8 ‖ bucket ‖ key`. The
/// length prefix keeps `("ab", "c")` and `("a", "bc")` apart. Test vectors in
/// this module pin it on every platform.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyHash(u64);

impl KeyHash {
    /// The hash of `key` in `bucket`.
    pub fn of(bucket: &BucketName, key: &Key) -> Self {
        let b = bucket.as_str().as_bytes();
        let mut h = xxhash_rust::xxh3::Xxh3Default::new();
        // BucketName::MAX_LEN is 64, so the length always fits in one byte.
        h.update(&[b.len() as u8]);
        h.update(b);
        h.update(key.as_bytes());
        Self(h.digest())
    }

    /// Wraps a raw hash (for tests, and for ranges computed from hashes).
    pub const fn from_u64(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw 64-bit value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({:016x})", self.0)
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(bucket: &str, key: &[u8]) -> u64 {
        KeyHash::of(
            &BucketName::new(bucket).unwrap(),
            &Key::new(key.to_vec()).unwrap(),
        )
        .as_u64()
    }

    /// These values are a format (computed with the reference xxHash through
    /// Python's `xxhash` package): if this test fails, the hash changed and every
    /// existing cluster would route keys to the wrong partitions.
    #[test]
    fn test_vectors_are_pinned() {
        let vectors: [(&str, &[u8], u64); 5] = [
            ("default", b"a", 0x8b5e_ec81_8525_d272),
            ("default", b"user:42", 0x9a0e_64db_584f_3b0c),
            ("carts", b"user:42", 0x6ca2_76c1_6a9a_3e47),
            ("b", &[0, 255, 1, 254], 0xc19c_5edc_dd4c_d2a3),
            ("default", &[b'x'; 300], 0x8dc6_06a0_ea3b_b7af),
        ];
        for (bucket, key, want) in vectors {
            assert_eq!(h(bucket, key), want, "hash of ({bucket:?}, {key:?})");
        }
    }

    #[test]
    fn bucket_and_key_boundary_is_unambiguous() {
        assert_ne!(h("ab", b"c"), h("a", b"bc"));
    }
}

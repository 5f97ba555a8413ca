use std::fmt;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::{Error, KeyHash, Result};

/// Q, the number of equal partitions of the 64-bit hash space: a power of two
/// from 64 to 4096, fixed when a cluster is created.
///
/// Partition `p` holds the hashes whose top `log2(Q)` bits equal `p`, so
/// partitions are contiguous ranges in hash order and partition `p + 1`
/// follows `p` clockwise round the ring.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct PartitionCount(u32);

impl PartitionCount {
    /// Fewest partitions a cluster may have.
    pub const MIN: u32 = 64;
    /// Most partitions a cluster may have.
    pub const MAX: u32 = 4096;
    /// The default: 256 partitions, enough for clusters of up to ~80 nodes at N = 3.
    pub const DEFAULT: Self = Self(256);

    /// Checks and wraps a partition count.
    pub fn new(q: u32) -> Result<Self> {
        if q.is_power_of_two() && (Self::MIN..=Self::MAX).contains(&q) {
            Ok(Self(q))
        } else {
            Err(Error::InvalidPartitionCount(q))
        }
    }

    /// Q as a number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Q as a `usize`, for indexing per-partition tables.
    pub const fn as_usize(self) -> usize {
        self.0 as usize
    }

    /// `log2(Q)`: how many top bits of a hash name its partition.
    pub const fn bits(self) -> u32 {
        self.0.trailing_zeros()
    }

    /// The partition that holds `hash`.
    pub const fn partition_of(self, hash: KeyHash) -> PartitionId {
        // bits() is 6..=12, so the shift is in range and the result fits in u32.
        PartitionId((hash.as_u64() >> (64 - self.bits())) as u32)
    }

    /// The hashes that partition `p` holds. `p` must be below Q.
    pub const fn range(self, p: PartitionId) -> RangeInclusive<u64> {
        let shift = 64 - self.bits();
        let start = (p.0 as u64) << shift;
        let end = start | (u64::MAX >> self.bits());
        start..=end
    }

    /// Whether `p` names a partition of this ring.
    pub const fn contains(self, p: PartitionId) -> bool {
        p.0 < self.0
    }

    /// The partition after `p`, clockwise, wrapping after the last.
    pub const fn next(self, p: PartitionId) -> PartitionId {
        PartitionId((p.0 + 1) % self.0)
    }

    /// All partitions in ring order.
    pub fn iter(self) -> impl ExactSizeIterator<Item = PartitionId> + Clone {
        (0..self.0).map(PartitionId)
    }
}

impl Default for PartitionCount {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<u32> for PartitionCount {
    type Error = Error;
    fn try_from(q: u32) -> Result<Self> {
        Self::new(q)
    }
}

impl From<PartitionCount> for u32 {
    fn from(q: PartitionCount) -> Self {
        q.0
    }
}

impl fmt::Debug for PartitionCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Q={}", self.0)
    }
}

impl fmt::Display for PartitionCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One of the Q partitions of the ring, numbered clockwise from 0.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PartitionId(u32);

impl PartitionId {
    /// Wraps a partition number. Whether it is below Q is checked where a
    /// [`PartitionCount`] is at hand ([`PartitionCount::contains`]).
    pub const fn new(p: u32) -> Self {
        Self(p)
    }

    /// The partition number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The partition number as a `usize`, for indexing per-partition tables.
    pub const fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.0)
    }
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_powers_of_two_in_range() {
        for q in [64, 128, 256, 1024, 4096] {
            assert!(PartitionCount::new(q).is_ok());
        }
        for q in [0, 1, 32, 63, 65, 100, 8192] {
            assert_eq!(PartitionCount::new(q), Err(Error::InvalidPartitionCount(q)));
        }
    }

    #[test]
    fn ranges_tile_the_hash_space() {
        let q = PartitionCount::new(64).unwrap();
        let mut next_start = 0u64;
        for p in q.iter() {
            let r = q.range(p);
            assert_eq!(*r.start(), next_start);
            next_start = r.end().wrapping_add(1);
        }
        assert_eq!(next_start, 0, "the last range ends at u64::MAX");
        assert_eq!(q.next(PartitionId::new(63)), PartitionId::new(0));
    }

    proptest! {
        #[test]
        fn every_hash_is_in_its_partition_range(h: u64, bits in 6u32..=12) {
            let q = PartitionCount::new(1 << bits).unwrap();
            let p = q.partition_of(KeyHash::from_u64(h));
            prop_assert!(q.contains(p));
            prop_assert!(q.range(p).contains(&h));
        }
    }
}

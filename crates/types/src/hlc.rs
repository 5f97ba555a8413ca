use std::fmt;

use serde::{Deserialize, Serialize};

/// A hybrid logical clock reading (Kulkarni et al., 2014): the high 48 bits
/// are wall-clock milliseconds since the Unix epoch, the low 16 bits a logical
/// counter that orders events within one millisecond and events that arrive
/// "from the future" of a node's own clock.
///
/// Readings compare as plain integers, so `(physical, logical)` order is the
/// order of the `u64`. Last-writer-wins buckets order writes by
/// `(Timestamp, NodeId)`.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The earliest reading.
    pub const ZERO: Self = Self(0);
    const LOGICAL_BITS: u32 = 16;
    const LOGICAL_MASK: u64 = (1 << Self::LOGICAL_BITS) - 1;
    /// Largest physical part: 2^48 - 1 ms, about the year 10889.
    pub const MAX_PHYSICAL_MS: u64 = (1 << 48) - 1;

    /// Builds a reading from its parts; `physical_ms` is clamped to
    /// [`Self::MAX_PHYSICAL_MS`].
    pub const fn from_parts(physical_ms: u64, logical: u16) -> Self {
        let p = if physical_ms > Self::MAX_PHYSICAL_MS {
            Self::MAX_PHYSICAL_MS
        } else {
            physical_ms
        };
        Self((p << Self::LOGICAL_BITS) | logical as u64)
    }

    /// Wraps a raw encoded reading.
    pub const fn from_u64(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw encoded reading.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Milliseconds since the Unix epoch.
    pub const fn physical_ms(self) -> u64 {
        self.0 >> Self::LOGICAL_BITS
    }

    /// The logical counter within [`Self::physical_ms`].
    pub const fn logical(self) -> u16 {
        // Masked to 16 bits, so the cast is lossless.
        (self.0 & Self::LOGICAL_MASK) as u16
    }

    /// The next reading after this one.
    const fn tick(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({}.{})", self.physical_ms(), self.logical())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.physical_ms(), self.logical())
    }
}

/// A node's hybrid logical clock. Pure: the caller passes wall-clock time in.
///
/// Every reading it returns is greater than every reading it returned before
/// and every reading it [observed](Self::observe), and never behind the
/// physical time it was given. If the logical counter overflows within one
/// millisecond the physical part advances by one: readings stay unique.
#[derive(Clone, Debug, Default)]
pub struct HybridClock {
    last: Timestamp,
}

impl HybridClock {
    /// A clock that has seen nothing yet.
    pub const fn new() -> Self {
        Self {
            last: Timestamp::ZERO,
        }
    }

    /// A clock resuming after `last` (for example the greatest timestamp found
    /// in storage after a restart).
    pub const fn resume_after(last: Timestamp) -> Self {
        Self { last }
    }

    /// A reading for a local event at wall-clock `physical_ms`.
    pub fn now(&mut self, physical_ms: u64) -> Timestamp {
        let wall = Timestamp::from_parts(physical_ms, 0);
        self.last = if wall > self.last {
            wall
        } else {
            self.last.tick()
        };
        self.last
    }

    /// Takes in a reading from another node (a message, a stored version) and
    /// returns a reading for the receive event, after both.
    pub fn observe(&mut self, remote: Timestamp, physical_ms: u64) -> Timestamp {
        if remote > self.last {
            self.last = remote;
        }
        self.now(physical_ms)
    }

    /// The last reading handed out or observed.
    pub const fn last(&self) -> Timestamp {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parts_round_trip() {
        let t = Timestamp::from_parts(1_700_000_000_123, 7);
        assert_eq!(t.physical_ms(), 1_700_000_000_123);
        assert_eq!(t.logical(), 7);
        assert!(Timestamp::from_parts(5, 0) > Timestamp::from_parts(4, u16::MAX));
    }

    #[test]
    fn logical_overflow_moves_to_the_next_millisecond() {
        let mut c = HybridClock::resume_after(Timestamp::from_parts(10, u16::MAX));
        let t = c.now(3);
        assert_eq!((t.physical_ms(), t.logical()), (11, 0));
    }

    proptest! {
        /// Readings strictly increase, whatever the wall clock does, and are
        /// never behind the wall clock nor behind anything observed.
        #[test]
        fn readings_are_monotonic(events in proptest::collection::vec((0u64..1_000, proptest::option::of(0u64..2_000_000_000)), 1..200)) {
            let mut c = HybridClock::new();
            let mut prev = Timestamp::ZERO;
            for (wall, remote) in events {
                let t = match remote {
                    Some(r) => {
                        let r = Timestamp::from_u64(r);
                        let t = c.observe(r, wall);
                        prop_assert!(t > r);
                        t
                    }
                    None => c.now(wall),
                };
                prop_assert!(t > prev);
                prop_assert!(t.physical_ms() >= wall);
                prev = t;
            }
        }
    }
}

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How a bucket resolves concurrent writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictMode {
    /// Causal: concurrent writes are all kept as siblings, returned together
    /// with one context; a put with that context resolves them.
    #[default]
    Siblings,
    /// Last writer wins: a key holds one version, the write with the greatest
    /// `(timestamp, node id, counter)` among every write the replica has seen.
    /// Contexts only serve to mint dots; clock skew can make a later write
    /// lose, as in every LWW store.
    Lww,
    /// Counters: a key is a PN-counter, changed only by increments and
    /// decrements (`INCR` and its family), read as one number, never as
    /// siblings. Versioning is causal, as with `siblings`: each node that
    /// coordinates increments keeps one sibling holding its own running
    /// totals, and a read sums them.
    Counter,
}

impl ConflictMode {
    /// The mode's name, as bucket properties spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Siblings => "siblings",
            Self::Lww => "lww",
            Self::Counter => "counter",
        }
    }
}

/// The settings of a bucket: how many replicas hold each key, how many must
/// answer a read or acknowledge a write, how conflicts resolve, how large
/// a value may be, and how long a value lives when its write does not say
/// (`default_ttl`, seconds; none by default).
///
/// Always valid: `1 ≤ r, w ≤ n_val ≤ MAX_N_VAL`, at least one sibling, and a
/// value limit in `1..=MAX_VALUE_LEN`. Deserialising checks the same rules;
/// missing fields take their defaults, and a missing `r` or `w` is a majority
/// of `n_val`.
///
/// ```
/// use gyre_types::{BucketProps, ConflictMode};
///
/// let props = BucketProps::new(5, 3, 2)?.with_conflict_mode(ConflictMode::Lww);
/// assert_eq!((props.n_val(), props.r(), props.w()), (5, 3, 2));
/// assert!(BucketProps::new(3, 4, 2).is_err()); // r > n_val
/// # Ok::<(), gyre_types::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawBucketProps")]
pub struct BucketProps {
    n_val: u8,
    r: u8,
    w: u8,
    conflict_mode: ConflictMode,
    max_siblings: u32,
    max_value_len: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_ttl: Option<u32>,
}

impl BucketProps {
    /// The most replicas a bucket may ask for.
    pub const MAX_N_VAL: u8 = 9;
    /// The largest value any bucket may allow: 64 MiB.
    pub const MAX_VALUE_LEN: u32 = 64 << 20;
    /// The default value limit: 8 MiB.
    pub const DEFAULT_MAX_VALUE_LEN: u32 = 8 << 20;
    /// The longest default time to live: ten years, in seconds.
    pub const MAX_DEFAULT_TTL: u32 = 10 * 366 * 86_400;
    /// The default sibling limit (Riak's).
    pub const DEFAULT_MAX_SIBLINGS: u32 = 100;

    /// `n_val` replicas, reads answered by `r` and writes acknowledged by `w`
    /// of them; the other settings at their defaults.
    ///
    /// # Errors
    /// [`Error::InvalidBucketProps`] unless `1 ≤ r, w ≤ n_val ≤ MAX_N_VAL`.
    pub fn new(n_val: u8, r: u8, w: u8) -> Result<Self> {
        Self {
            n_val,
            r,
            w,
            ..Self::default()
        }
        .checked()
    }

    /// These properties with another conflict mode.
    #[must_use]
    pub const fn with_conflict_mode(self, conflict_mode: ConflictMode) -> Self {
        Self {
            conflict_mode,
            ..self
        }
    }

    /// These properties with another sibling limit.
    ///
    /// # Errors
    /// [`Error::InvalidBucketProps`] if `max_siblings` is zero.
    pub fn with_max_siblings(self, max_siblings: u32) -> Result<Self> {
        Self {
            max_siblings,
            ..self
        }
        .checked()
    }

    /// These properties with another value limit, in bytes.
    ///
    /// # Errors
    /// [`Error::InvalidBucketProps`] unless `1 ≤ max_value_len ≤ MAX_VALUE_LEN`.
    pub fn with_max_value_len(self, max_value_len: u32) -> Result<Self> {
        Self {
            max_value_len,
            ..self
        }
        .checked()
    }

    /// These properties with a default time to live (seconds) for values
    /// written without one, or none.
    ///
    /// # Errors
    /// [`Error::InvalidBucketProps`] unless it is in `1..=MAX_DEFAULT_TTL`.
    pub fn with_default_ttl(self, default_ttl: Option<u32>) -> Result<Self> {
        Self {
            default_ttl,
            ..self
        }
        .checked()
    }

    /// How long a value written without a time to live lives, in seconds
    /// (`None`: until it is overwritten or deleted).
    pub const fn default_ttl(&self) -> Option<u32> {
        self.default_ttl
    }

    /// How many replicas hold each key.
    pub const fn n_val(&self) -> u8 {
        self.n_val
    }

    /// How many replicas must answer a read, unless the request says otherwise.
    pub const fn r(&self) -> u8 {
        self.r
    }

    /// How many replicas must acknowledge a write, unless the request says otherwise.
    pub const fn w(&self) -> u8 {
        self.w
    }

    /// How concurrent writes resolve.
    pub const fn conflict_mode(&self) -> ConflictMode {
        self.conflict_mode
    }

    /// A client write that would leave more siblings than this is refused.
    pub const fn max_siblings(&self) -> u32 {
        self.max_siblings
    }

    /// The largest value a client may write, in bytes.
    pub const fn max_value_len(&self) -> u32 {
        self.max_value_len
    }

    /// The majority of `n` replicas: `n / 2 + 1`.
    const fn majority(n: u8) -> u8 {
        n / 2 + 1
    }

    fn checked(self) -> Result<Self> {
        let reason = if self.n_val == 0 || self.n_val > Self::MAX_N_VAL {
            format!("n_val {} is not in 1..={}", self.n_val, Self::MAX_N_VAL)
        } else if self.r == 0 || self.r > self.n_val {
            format!("r {} is not in 1..={} (n_val)", self.r, self.n_val)
        } else if self.w == 0 || self.w > self.n_val {
            format!("w {} is not in 1..={} (n_val)", self.w, self.n_val)
        } else if self.max_siblings == 0 {
            "max_siblings must be at least 1".to_owned()
        } else if self.max_value_len == 0 || self.max_value_len > Self::MAX_VALUE_LEN {
            format!(
                "max_value_len {} is not in 1..={}",
                self.max_value_len,
                Self::MAX_VALUE_LEN
            )
        } else if let Some(ttl) = self.default_ttl
            && !(1..=Self::MAX_DEFAULT_TTL).contains(&ttl)
        {
            format!(
                "default_ttl {ttl} is not in 1..={} seconds",
                Self::MAX_DEFAULT_TTL
            )
        } else {
            return Ok(self);
        };
        Err(Error::InvalidBucketProps { reason })
    }
}

impl Default for BucketProps {
    /// Three replicas, majority reads and writes, siblings, at most 100 of
    /// them, values up to 8 MiB.
    fn default() -> Self {
        Self {
            n_val: 3,
            r: 2,
            w: 2,
            conflict_mode: ConflictMode::Siblings,
            max_siblings: Self::DEFAULT_MAX_SIBLINGS,
            max_value_len: Self::DEFAULT_MAX_VALUE_LEN,
            default_ttl: None,
        }
    }
}

/// The serialised form, checked before it becomes [`BucketProps`].
#[derive(Deserialize)]
#[serde(default)]
struct RawBucketProps {
    n_val: u8,
    r: Option<u8>,
    w: Option<u8>,
    conflict_mode: ConflictMode,
    max_siblings: u32,
    max_value_len: u32,
    default_ttl: Option<u32>,
}

impl Default for RawBucketProps {
    fn default() -> Self {
        let d = BucketProps::default();
        Self {
            n_val: d.n_val,
            r: None,
            w: None,
            conflict_mode: d.conflict_mode,
            max_siblings: d.max_siblings,
            max_value_len: d.max_value_len,
            default_ttl: None,
        }
    }
}

impl TryFrom<RawBucketProps> for BucketProps {
    type Error = Error;

    fn try_from(raw: RawBucketProps) -> Result<Self> {
        let majority = Self::majority(raw.n_val);
        Self {
            n_val: raw.n_val,
            r: raw.r.unwrap_or(majority),
            w: raw.w.unwrap_or(majority),
            conflict_mode: raw.conflict_mode,
            max_siblings: raw.max_siblings,
            max_value_len: raw.max_value_len,
            default_ttl: raw.default_ttl,
        }
        .checked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorums_must_fit_inside_n_val() {
        assert!(BucketProps::new(1, 1, 1).is_ok());
        assert!(BucketProps::new(9, 9, 1).is_ok());
        assert!(BucketProps::new(0, 1, 1).is_err());
        assert!(BucketProps::new(10, 1, 1).is_err());
        assert!(BucketProps::new(3, 0, 1).is_err());
        assert!(BucketProps::new(3, 2, 4).is_err());
        let d = BucketProps::default();
        assert!(d.with_max_siblings(0).is_err());
        assert!(d.with_max_value_len(0).is_err());
        assert!(
            d.with_max_value_len(BucketProps::MAX_VALUE_LEN + 1)
                .is_err()
        );
    }

    #[test]
    fn deserialising_fills_defaults_and_checks_the_rules() {
        let p: BucketProps =
            serde_json::from_str(r#"{"n_val": 5, "conflict_mode": "lww"}"#).expect("valid props");
        assert_eq!((p.n_val(), p.r(), p.w()), (5, 3, 3));
        assert_eq!(p.conflict_mode(), ConflictMode::Lww);
        assert_eq!(p.max_value_len(), BucketProps::DEFAULT_MAX_VALUE_LEN);
        assert!(serde_json::from_str::<BucketProps>(r#"{"n_val": 2, "w": 3}"#).is_err());
        let back: BucketProps =
            serde_json::from_str(&serde_json::to_string(&p).expect("serialise")).expect("parse");
        assert_eq!(back, p);
    }

    #[test]
    fn a_default_ttl_is_optional_checked_and_round_trips() {
        let d = BucketProps::default();
        assert_eq!(d.default_ttl(), None);
        // Absent from JSON when unset, so stored properties read as before.
        assert!(
            !serde_json::to_string(&d)
                .expect("serialise")
                .contains("ttl")
        );
        let p = d.with_default_ttl(Some(1800)).expect("valid ttl");
        assert_eq!(p.default_ttl(), Some(1800));
        let back: BucketProps =
            serde_json::from_str(&serde_json::to_string(&p).expect("serialise")).expect("parse");
        assert_eq!(back, p);
        assert!(d.with_default_ttl(Some(0)).is_err());
        assert!(
            d.with_default_ttl(Some(BucketProps::MAX_DEFAULT_TTL + 1))
                .is_err()
        );
        assert!(serde_json::from_str::<BucketProps>(r#"{"default_ttl": 0}"#).is_err());
    }
}

//! Sequences whose length is limited while they are deserialised, for
//! `#[serde(deserialize_with = "gyre_types::bounded::vec::<_, _, MAX>")]`.
//!
//! A length prefix alone cannot make a decoder allocate much (serde caps
//! what it reserves up front), but an honest sequence of tiny encoded
//! elements can still grow into far more memory than its bytes: a 3-byte
//! element may become a 100-byte struct. Capping the element count of every
//! sequence a peer can send bounds that growth by a constant.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error as _, SeqAccess, Visitor};

/// Deserialises a `Vec<T>` of at most `MAX` elements; a longer one is an
/// error as soon as its length is known or its `MAX + 1`-th element read.
///
/// # Errors
/// The deserialiser's error for an over-long or malformed sequence.
pub fn vec<'de, D, T, const MAX: usize>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_seq(Bounded::<T, MAX>(PhantomData))
}

struct Bounded<T, const MAX: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for Bounded<T, MAX> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a sequence of at most {MAX} elements")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        if let Some(len) = seq.size_hint()
            && len > MAX
        {
            return Err(A::Error::invalid_length(len, &self));
        }
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX).min(4096));
        while let Some(element) = seq.next_element()? {
            if out.len() == MAX {
                return Err(A::Error::invalid_length(MAX + 1, &self));
            }
            out.push(element);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[derive(Debug, serde::Deserialize)]
    struct Three {
        #[serde(deserialize_with = "super::vec::<_, _, 3>")]
        items: Vec<u8>,
    }

    #[test]
    fn sequences_up_to_the_limit_pass_and_longer_ones_fail() {
        let ok: Three = serde_json::from_str(r#"{"items":[1,2,3]}"#).unwrap();
        assert_eq!(ok.items, [1, 2, 3]);
        let err = serde_json::from_str::<Three>(r#"{"items":[1,2,3,4]}"#).unwrap_err();
        assert!(err.to_string().contains("at most 3"), "{err}");
    }
}

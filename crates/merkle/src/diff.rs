use std::cmp::Ordering;

use gyre_types::KeyHash;
use serde::{Deserialize, Serialize};

use crate::{Error, ItemDigest, Result};

/// One item as listed for the final step of an exchange: where it sits, which
/// key it is, and its digest.
///
/// `key` is the item's identity (for Gyre, its bucket and key; any `Ord` type
/// that is unique per item within the tree). Lists are sorted by
/// `(hash, key)`: the hash first, because that is the order storage keeps and
/// the ranges are in, and the key second, because two different keys can share
/// a 64-bit hash. Identity is the pair, so a hash collision never makes two keys
/// look like one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Item<K> {
    /// The key's hash (its place on the ring and in the tree).
    pub hash: KeyHash,
    /// The key (its identity).
    pub key: K,
    /// The digest of the key and its version.
    pub digest: ItemDigest,
}

impl<K> Item<K> {
    /// An item.
    pub fn new(hash: KeyHash, key: K, digest: ItemDigest) -> Self {
        Self { hash, key, digest }
    }
}

/// One difference between two item lists.
#[derive(Debug, PartialEq, Eq)]
pub enum ItemDiff<'a, K> {
    /// The key is only in list A.
    OnlyInA(&'a Item<K>),
    /// The key is only in list B.
    OnlyInB(&'a Item<K>),
    /// The key is in both lists with different digests (different versions).
    Differ {
        /// The item in list A.
        a: &'a Item<K>,
        /// The item in list B.
        b: &'a Item<K>,
    },
}

// Manual impls: a derive would require `K: Clone`/`K: Copy`, but only references are copied.
impl<K> Clone for ItemDiff<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for ItemDiff<'_, K> {}

impl<'a, K> ItemDiff<'a, K> {
    /// The differing key's hash.
    pub fn hash(&self) -> KeyHash {
        self.item().hash
    }

    /// The differing key.
    pub fn key(&self) -> &'a K {
        &self.item().key
    }

    fn item(&self) -> &'a Item<K> {
        match *self {
            Self::OnlyInA(i) | Self::OnlyInB(i) | Self::Differ { a: i, .. } => i,
        }
    }
}

/// The keys that differ between two lists of items, each strictly ascending by
/// `(hash, key)`: keys only in A, only in B, or in both with different digests,
/// in `(hash, key)` order.
///
/// This is the final step of an exchange: both sides list their items in the
/// ranges [`crate::Exchange`] returned, one side sends its list, and the other
/// diffs. Lists come from a peer, so order is checked: a list that is not
/// strictly ascending (or repeats a key) is an [`Error::UnsortedItems`], not a
/// wrong answer.
pub fn diff_items<'a, K: Ord>(a: &'a [Item<K>], b: &'a [Item<K>]) -> Result<Vec<ItemDiff<'a, K>>> {
    check_sorted(a, "a")?;
    check_sorted(b, "b")?;
    let mut out = Vec::new();
    let (mut ia, mut ib) = (a.iter().peekable(), b.iter().peekable());
    loop {
        let order = match (ia.peek(), ib.peek()) {
            (Some(x), Some(y)) => order(x, y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => break,
        };
        match order {
            Ordering::Less => out.extend(ia.next().map(ItemDiff::OnlyInA)),
            Ordering::Greater => out.extend(ib.next().map(ItemDiff::OnlyInB)),
            Ordering::Equal => {
                if let (Some(x), Some(y)) = (ia.next(), ib.next())
                    && x.digest != y.digest
                {
                    out.push(ItemDiff::Differ { a: x, b: y });
                }
            }
        }
    }
    Ok(out)
}

fn order<K: Ord>(x: &Item<K>, y: &Item<K>) -> Ordering {
    x.hash.cmp(&y.hash).then_with(|| x.key.cmp(&y.key))
}

fn check_sorted<K: Ord>(items: &[Item<K>], side: &'static str) -> Result<()> {
    match items
        .windows(2)
        .position(|w| matches!(w, [x, y] if order(x, y) != Ordering::Less))
    {
        Some(i) => Err(Error::UnsortedItems { side, index: i + 1 }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(h: u64, k: &str, d: u128) -> Item<&str> {
        Item::new(KeyHash::from_u64(h), k, ItemDigest::from_u128(d))
    }

    #[test]
    fn finds_each_kind_of_difference() {
        let a = [item(1, "x", 1), item(2, "y", 2), item(5, "z", 5)];
        let b = [item(2, "y", 3), item(4, "w", 4), item(5, "z", 5)];
        let d = diff_items(&a, &b).unwrap();
        assert_eq!(
            d,
            vec![
                ItemDiff::OnlyInA(&a[0]),
                ItemDiff::Differ { a: &a[1], b: &b[0] },
                ItemDiff::OnlyInB(&b[1]),
            ]
        );
        assert_eq!(d[1].key(), &"y");
        assert_eq!(d[2].hash(), KeyHash::from_u64(4));
    }

    #[test]
    fn colliding_hashes_are_told_apart_by_key() {
        let a = [item(7, "p", 1), item(7, "q", 2)];
        let b = [item(7, "q", 2)];
        assert_eq!(diff_items(&a, &b).unwrap(), vec![ItemDiff::OnlyInA(&a[0])]);
    }

    #[test]
    fn unsorted_or_repeated_lists_are_refused() {
        let ok = [item(1, "a", 1)];
        let unsorted = [item(2, "a", 1), item(1, "a", 1)];
        let repeated = [item(1, "a", 1), item(1, "a", 2)];
        assert_eq!(
            diff_items(&unsorted, &ok),
            Err(Error::UnsortedItems {
                side: "a",
                index: 1
            })
        );
        assert_eq!(
            diff_items(&ok, &repeated),
            Err(Error::UnsortedItems {
                side: "b",
                index: 1
            })
        );
    }
}

//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // test helpers; each test file uses a subset

use std::collections::BTreeMap;

use gyre_merkle::{
    Exchange, ExchangeOutcome, Item, ItemDigest, MerkleTree, Request, Result, Step, TreeShape,
};
use gyre_types::{KeyHash, PartitionCount, PartitionId};
use proptest::prelude::*;

/// A replica's items: (hash, key) → version digest, in (hash, key) order.
pub type Replica = BTreeMap<(KeyHash, Vec<u8>), u128>;

pub fn digest(key: &[u8], version: u128) -> ItemDigest {
    ItemDigest::of(key, version)
}

pub fn tree_of(
    q: PartitionCount,
    p: PartitionId,
    shape: TreeShape,
    replica: &Replica,
) -> MerkleTree {
    let items = replica.iter().map(|((h, k), v)| (*h, digest(k, *v)));
    MerkleTree::from_items(q, p, shape, items).unwrap()
}

/// Runs an exchange in-process, showing every request to `inspect`.
pub fn run_exchange(
    initiator: &MerkleTree,
    responder: &MerkleTree,
    mut inspect: impl FnMut(&Request),
) -> Result<ExchangeOutcome> {
    let (mut exchange, mut request) = Exchange::new(initiator);
    loop {
        inspect(&request);
        let response = responder.answer(&request)?;
        match exchange.on_response(initiator, response)? {
            Step::Send(next) => request = next,
            Step::Done(outcome) => return Ok(outcome),
        }
    }
}

/// The replica's items whose hash is in one of the outcome's ranges, as a sorted listing.
pub fn listing(replica: &Replica, outcome: &ExchangeOutcome) -> Vec<Item<Vec<u8>>> {
    replica
        .iter()
        .filter(|((h, _), _)| outcome.ranges.iter().any(|r| r.contains(*h)))
        .map(|((h, k), v)| Item::new(*h, k.clone(), digest(k, *v)))
        .collect()
}

/// A hash inside partition `p` of `q`: the partition bits, then `offset`'s low bits.
pub fn hash_in(q: PartitionCount, p: PartitionId, offset: u64) -> KeyHash {
    let r = q.range(p);
    KeyHash::from_u64(r.start() | (offset & (u64::MAX >> q.bits())))
}

/// Shapes with at most 2^12 leaves, so that cases stay fast.
pub fn shape() -> impl Strategy<Value = TreeShape> {
    prop_oneof![
        Just(TreeShape::DEFAULT),
        (1u8..=8, 1u8..=6)
            .prop_filter("at most 2^12 leaves", |(f, d)| u32::from(*f)
                * u32::from(*d)
                <= 12)
            .prop_map(|(f, d)| TreeShape::new(f, d).unwrap()),
    ]
}

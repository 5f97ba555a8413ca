//! Comparing two 100,000-key replicas that differ in 10 keys costs a small
//! fraction of listing every key.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Replica, hash_in, listing, run_exchange, tree_of};
use gyre_merkle::{TreeShape, diff_items};
use gyre_types::{PartitionCount, PartitionId};

const KEYS: u64 = 100_000;
/// What a full listing costs per key: an 8-byte hash and a 16-byte digest.
const LISTED_ITEM_BYTES: u64 = 8 + 16;

#[test]
fn exchange_costs_under_5_percent_of_a_full_listing() {
    let q = PartitionCount::new(256).unwrap();
    let p = PartitionId::new(200);
    let mut a = Replica::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..KEYS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        a.insert((hash_in(q, p, x), i.to_le_bytes().to_vec()), 1);
    }
    // Ten differences: four newer versions, three keys B lacks, three B alone has.
    let mut b = a.clone();
    let keys: Vec<_> = a.keys().cloned().collect();
    for k in keys.iter().step_by(KEYS as usize / 7).take(7).enumerate() {
        match k {
            (i, key) if i < 4 => *b.get_mut(key).unwrap() = 2,
            (_, key) => {
                b.remove(key);
            }
        }
    }
    for i in 0..3u64 {
        b.insert(
            (
                hash_in(q, p, i * 0x0123_4567_89ab_cdef),
                b"new".repeat(1 + i as usize),
            ),
            1,
        );
    }

    let shape = TreeShape::DEFAULT;
    let (ta, tb) = (tree_of(q, p, shape, &a), tree_of(q, p, shape, &b));
    let outcome = run_exchange(&ta, &tb, |_| {}).unwrap();
    let (la, lb) = (listing(&a, &outcome), listing(&b, &outcome));
    assert_eq!(diff_items(&la, &lb).unwrap().len(), 10);

    let s = outcome.stats;
    let exchange = s.bytes_sent + s.bytes_received;
    // The follow-up: both sides list their items in the differing ranges.
    let follow_up = (la.len() + lb.len()) as u64 * LISTED_ITEM_BYTES;
    let full = KEYS * LISTED_ITEM_BYTES;
    let total = exchange + follow_up;
    println!(
        "100,000 keys, 10 differences, {shape:?}: {} rounds, {} nodes compared, \
         {} differing leaves in {} ranges",
        s.rounds,
        s.nodes_compared,
        s.differing_leaves,
        outcome.ranges.len()
    );
    println!(
        "tree exchange {exchange} B ({} sent, {} received) + range listings {follow_up} B \
         ({} + {} items) = {total} B vs full listing {full} B: {:.3}%",
        s.bytes_sent,
        s.bytes_received,
        la.len(),
        lb.len(),
        100.0 * total as f64 / full as f64
    );
    assert!(total * 20 < full, "{total} B is not below 5% of {full} B");
}

//! Micro-benchmarks of the Merkle trees: a single-item update on a populated
//! tree, a full exchange between two 1,000,000-key trees that differ in 100
//! keys, and a rebuild from 1,000,000 items.
//!
//! Run with `cargo bench -p gyre-merkle --bench merkle -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gyre_merkle::{Exchange, ExchangeOutcome, ItemDigest, MerkleTree, Step, TreeShape};
use gyre_types::{KeyHash, PartitionCount, PartitionId};

const KEYS: usize = 1_000_000;
const DIFFERENCES: usize = 100;

fn q() -> PartitionCount {
    PartitionCount::DEFAULT
}

fn p() -> PartitionId {
    PartitionId::new(42)
}

/// `n` items with pseudo-random hashes inside the partition and random digests.
fn items(n: usize) -> Vec<(KeyHash, ItemDigest)> {
    let start = *q().range(p()).start();
    let mask = u64::MAX >> q().bits();
    let mut x = 0x853c_49e6_748f_ea9bu64;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let h = KeyHash::from_u64(start | (x.rotate_left(17) & mask));
            (h, ItemDigest::of(&x.to_le_bytes(), 1))
        })
        .collect()
}

fn shapes() -> [(&'static str, TreeShape); 2] {
    [
        ("16x3", TreeShape::DEFAULT),
        (
            "16x4",
            TreeShape::new(4, 4).expect("fanout 16, depth 4 is valid"),
        ),
    ]
}

fn run_exchange(a: &MerkleTree, b: &MerkleTree) -> ExchangeOutcome {
    let (mut exchange, mut request) = Exchange::new(a);
    loop {
        let response = b.answer(&request).expect("same tree identity");
        match exchange.on_response(a, response).expect("honest responder") {
            Step::Send(next) => request = next,
            Step::Done(outcome) => return outcome,
        }
    }
}

fn update(c: &mut Criterion) {
    let items = items(KEYS);
    for (name, shape) in shapes() {
        let mut tree =
            MerkleTree::from_items(q(), p(), shape, items.iter().copied()).expect("items fit");
        let mut i = 0usize;
        c.bench_function(&format!("update/{name}/1M-keys"), |b| {
            b.iter(|| {
                let (h, old) = items[i % items.len()];
                let new = ItemDigest::from_u128(old.as_u128() ^ 1);
                tree.update(black_box(h), Some(old), Some(new))
                    .expect("hash in partition");
                i = i.wrapping_add(7919);
            })
        });
    }
}

fn exchange(c: &mut Criterion) {
    let a_items = items(KEYS);
    let mut b_items = a_items.clone();
    for (n, item) in b_items
        .iter_mut()
        .step_by(KEYS / DIFFERENCES)
        .take(DIFFERENCES)
        .enumerate()
    {
        item.1 = ItemDigest::of(&n.to_le_bytes(), 2);
    }
    for (name, shape) in shapes() {
        let a = MerkleTree::from_items(q(), p(), shape, a_items.iter().copied()).expect("fits");
        let b = MerkleTree::from_items(q(), p(), shape, b_items.iter().copied()).expect("fits");
        let o = run_exchange(&a, &b);
        let s = o.stats;
        // What the follow-up costs: each side lists (hash, digest) of its items in the ranges.
        let in_ranges = a_items
            .iter()
            .filter(|(h, _)| {
                let i = o.ranges.partition_point(|r| r.end() < *h);
                o.ranges.get(i).is_some_and(|r| r.contains(*h))
            })
            .count();
        println!(
            "exchange/{name}: 1M keys, {DIFFERENCES} differences: {} rounds, {} nodes compared, \
             {} differing leaves, {} ranges, {} B sent + {} B received = {} B; \
             then {in_ranges} keys per side in the ranges ({} B listed per side)",
            s.rounds,
            s.nodes_compared,
            s.differing_leaves,
            o.ranges.len(),
            s.bytes_sent,
            s.bytes_received,
            s.bytes_sent + s.bytes_received,
            in_ranges * 24,
        );
        c.bench_function(&format!("exchange/{name}/1M-keys-100-diffs"), |bench| {
            bench.iter(|| run_exchange(black_box(&a), black_box(&b)))
        });
    }
}

fn rebuild(c: &mut Criterion) {
    let items = items(KEYS);
    let mut group = c.benchmark_group("rebuild");
    group.sample_size(10);
    group.bench_function("from_items/16x3/1M-keys", |b| {
        b.iter(|| {
            MerkleTree::from_items(
                q(),
                p(),
                TreeShape::DEFAULT,
                black_box(&items).iter().copied(),
            )
            .expect("items fit")
        })
    });
    group.finish();
}

criterion_group!(benches, update, exchange, rebuild);
criterion_main!(benches);

//! Ring benchmarks: key → preference list, and computing layouts.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gyre_ring::{Layout, Member, RingConfig};
use gyre_types::{BucketName, Key, KeyHash, NodeId, PartitionCount, ZoneName};

fn members(n: usize, zones: usize) -> Vec<Member> {
    (0..n)
        .map(|i| {
            let zone = ZoneName::new(format!("z{}", i % zones)).unwrap();
            Member::new(NodeId::new(0x1000 + i as u64), zone, 1 + (i % 3) as u32)
        })
        .collect()
}

fn config(q: u32) -> RingConfig {
    RingConfig {
        partitions: PartitionCount::new(q).unwrap(),
        replication: 3,
    }
}

fn preference_list(c: &mut Criterion) {
    let layout = Layout::initial(config(256), members(16, 3)).unwrap();
    let bucket = BucketName::default();
    let keys: Vec<Key> = (0..1024)
        .map(|i| Key::new(format!("user:{i}").into_bytes()).unwrap())
        .collect();
    let mut g = c.benchmark_group("preference_list");
    g.bench_function("hash_and_lookup/Q=256,16 nodes", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % keys.len();
            let h = KeyHash::of(&bucket, &keys[i]);
            black_box(layout.preference_list(h, 3).unwrap());
        })
    });
    g.bench_function("extended_first_5/Q=256,16 nodes", |b| {
        let mut p = 0u32;
        b.iter(|| {
            p = (p + 1) % 256;
            let ext = layout.extended_preference_list(gyre_types::PartitionId::new(p));
            black_box(ext.take(5).count());
        })
    });
    g.finish();
}

fn layouts(c: &mut Criterion) {
    let mut g = c.benchmark_group("layout");
    g.sample_size(10);
    for (q, n) in [(256u32, 8usize), (1024, 32), (4096, 64)] {
        g.bench_with_input(
            BenchmarkId::new("initial", format!("Q={q},{n} nodes")),
            &(q, n),
            |b, &(q, n)| b.iter(|| Layout::initial(config(q), members(n, 3)).unwrap()),
        );
        let before = Layout::initial(config(q), members(n, 3)).unwrap();
        g.bench_with_input(
            BenchmarkId::new("join_one", format!("Q={q},{n} nodes")),
            &n,
            |b, &n| b.iter(|| before.next(members(n + 1, 3)).unwrap()),
        );
    }
    g.finish();
}

criterion_group!(benches, preference_list, layouts);
criterion_main!(benches);

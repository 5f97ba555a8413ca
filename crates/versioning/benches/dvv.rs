//! DVV set costs on the hot paths: a client update (put with the context of a
//! read that returned n siblings) and a replica merge of states holding n
//! siblings.

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use gyre_types::{NodeId, Timestamp};
use gyre_versioning::{Context, DvvSet, Policy};

const VALUE_LEN: usize = 64;

fn node(i: u64) -> NodeId {
    NodeId::new(0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i + 1))
}

fn ts(ms: u64) -> Timestamp {
    Timestamp::from_parts(1_700_000_000_000 + ms, 0)
}

/// A state with `n` concurrent siblings, one coordinated by each of `n` nodes,
/// after some history (each node has written the key 5 times before).
fn state_with_siblings(n: u64) -> DvvSet<Vec<u8>> {
    let p = Policy::default();
    let mut merged = DvvSet::new();
    for i in 0..n {
        let mut replica = DvvSet::new();
        for round in 0..5 {
            replica
                .put_blind(
                    vec![round as u8; VALUE_LEN],
                    node(i),
                    ts(round * 10 + i),
                    &p,
                )
                .expect("a blind put leaves one sibling");
        }
        merged = merged.merge(replica, &p);
    }
    assert_eq!(merged.sibling_count() as u64, n);
    merged
}

fn bench_put(c: &mut Criterion) {
    let p = Policy::default();
    let mut group = c.benchmark_group("dvv_put");
    for n in [1u64, 3, 10] {
        let state = state_with_siblings(n);
        let ctx = state.context();
        group.bench_with_input(BenchmarkId::new("update", n), &n, |b, _| {
            b.iter_batched(
                || (state.clone(), vec![7u8; VALUE_LEN]),
                |(mut s, value)| {
                    let dot = s
                        .put(black_box(&ctx), value, node(0), ts(1_000), &p)
                        .expect("the context covers every sibling");
                    (s, dot)
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn bench_sync(c: &mut Criterion) {
    let p = Policy::default();
    let mut group = c.benchmark_group("dvv_sync");
    for n in [1u64, 3, 10] {
        // Two replicas that share the n siblings, one of which took a further
        // blind write concurrent with all of them: the merge result has n + 1.
        let base = state_with_siblings(n);
        let mut other = DvvSet::new();
        other
            .put_blind(vec![9u8; VALUE_LEN], node(99), ts(2_000), &p)
            .expect("a blind put leaves one sibling");
        let other = base.clone().merge(other, &p);
        group.bench_with_input(BenchmarkId::new("merge", n), &n, |b, _| {
            b.iter_batched(
                || base.clone(),
                |mut s| {
                    s.sync(black_box(&other), &p);
                    s
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn bench_context_codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("context_codec");
    for n in [1u64, 3, 10] {
        let ctx = Context::from_entries((0..n).map(|i| (node(i), 1_000 + i)));
        let bytes = ctx.to_bytes();
        group.bench_with_input(BenchmarkId::new("encode", n), &ctx, |b, ctx| {
            b.iter(|| black_box(ctx).to_bytes());
        });
        group.bench_with_input(BenchmarkId::new("decode", n), &bytes, |b, bytes| {
            b.iter(|| Context::from_bytes(black_box(bytes)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_put, bench_sync, bench_context_codec);
criterion_main!(benches);

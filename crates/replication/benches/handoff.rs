//! What one chunk of partition handoff costs on one core, without the
//! network or the other processes of a cluster: the source's read of a
//! chunk ([`Replica::chunk`]), its trip through the wire format (encode on
//! the source, decode on the receiver) and the receiver's merge
//! ([`Replica::merge_many`]: DVV sync with what it holds, one store batch
//! with the Merkle leaves, one group commit), for chunks of 500 objects of
//! 100-byte values (the default chunk) taken in order from one partition of
//! 100,000 objects, as a transfer takes them. deploy/bench/HANDOFF.md
//! compares these with the stream rate of a whole cluster.
//!
//! `cargo bench -p gyre-replication --bench handoff`
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gyre_replication::{Config, Replica};
use gyre_storage::{Durability, FjallStore, MemStore, ObjectId, StoreConfig};
use gyre_types::{BucketName, Key, KeyHash, NodeId, PartitionCount, PartitionId};
use gyre_wire::{FrameLimit, Item, Response, frame};

const WALL: u64 = 1_700_000_000_000;
const CHUNK: usize = 500;
const VALUE: usize = 100;
/// Objects in the partition handed off.
const PARTITION: usize = 100_000;
const P0: PartitionId = PartitionId::new(0);

fn config(durability: Durability) -> StoreConfig {
    StoreConfig {
        partitions: PartitionCount::new(64).unwrap(),
        durability,
        ..StoreConfig::default()
    }
}

/// A replica on disk, as a node keeps it.
struct OnDisk {
    replica: Replica<FjallStore>,
    _dir: tempfile::TempDir,
}

fn on_disk(durability: Durability) -> OnDisk {
    let dir = tempfile::tempdir().unwrap();
    let store = FjallStore::open(dir.path(), config(durability)).unwrap();
    OnDisk {
        replica: Replica::new(NodeId::new(1), store, Config::default()).unwrap(),
        _dir: dir,
    }
}

/// A source holding `PARTITION` objects in partition 0 (of 64), written
/// by a coordinator in memory and merged onto disk in batches.
fn source() -> OnDisk {
    let writer = Replica::new(
        NodeId::new(2),
        MemStore::new(config(Durability::None)).unwrap(),
        Config::default(),
    )
    .unwrap();
    let q = config(Durability::None).partitions;
    let bucket = BucketName::default();
    let value = Bytes::from(vec![b'v'; VALUE]);
    let source = on_disk(Durability::None);
    let mut batch = Vec::with_capacity(CHUNK);
    let mut written = 0;
    for i in 0u64.. {
        if written == PARTITION {
            break;
        }
        let key = Key::new(format!("session:{i:012}").into_bytes()).unwrap();
        if q.partition_of(KeyHash::of(&bucket, &key)) != P0 {
            continue;
        }
        let item = writer
            .write(WALL, &bucket, &key, Some(value.clone()), None)
            .unwrap()
            .item;
        batch.push(item);
        written += 1;
        if batch.len() == CHUNK {
            source.replica.merge_many(WALL, &batch).unwrap();
            batch.clear();
        }
    }
    source.replica.merge_many(WALL, &batch).unwrap();
    source
}

/// The partition's chunks, in the order a transfer asks for them.
fn chunks(source: &Replica<FjallStore>) -> Vec<Vec<Item>> {
    let mut out = Vec::new();
    let mut after: Option<ObjectId> = None;
    loop {
        let (items, next) = source.chunk(P0, 3, after, CHUNK, 1 << 20).unwrap();
        out.push(items);
        match next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

/// Times `iters` merges of the chunks in order into replicas that
/// `receiver` makes, a new one each time the chunks run out (its making
/// not timed).
fn merge_in_order(
    chunks: &[Vec<Item>],
    iters: u64,
    mut receiver: impl FnMut() -> OnDisk,
) -> Duration {
    let mut took = Duration::ZERO;
    let mut at = chunks.len();
    let mut into = None;
    for _ in 0..iters {
        if at == chunks.len() {
            into = Some(receiver());
            at = 0;
        }
        let (Some(into), Some(chunk)) = (&into, chunks.get(at)) else {
            break;
        };
        let start = Instant::now();
        into.replica.merge_many(WALL, chunk).unwrap();
        took += start.elapsed();
        at += 1;
    }
    took
}

fn handoff(c: &mut Criterion) {
    let source = source();
    let chunks = chunks(&source.replica);
    assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), PARTITION);
    let middle = chunks.len() / 2;
    let after = chunks[middle - 1]
        .last()
        .map(|i| ObjectId::new(i.bucket.clone(), i.key.clone()));

    let mut g = c.benchmark_group("handoff_chunk_500x100B");
    g.throughput(Throughput::Elements(CHUNK as u64));
    g.bench_function("source_reads", |b| {
        b.iter(|| {
            source
                .replica
                .chunk(P0, 3, after.clone(), CHUNK, 1 << 20)
                .unwrap()
        });
    });
    let answer = Response::Chunk {
        items: chunks[middle].clone(),
        next: None,
    };
    g.bench_function("source_encodes", |b| {
        b.iter(|| frame::encode(&answer, FrameLimit::DEFAULT).unwrap());
    });
    let bytes = frame::encode(&answer, FrameLimit::DEFAULT).unwrap();
    g.bench_function("receiver_decodes", |b| {
        b.iter(|| frame::decode::<Response>(&bytes[4..]).unwrap());
    });
    // Into a new replica, as a transfer fills one.
    g.bench_function("receiver_merges_new", |b| {
        b.iter_custom(|iters| merge_in_order(&chunks, iters, || on_disk(Durability::Group)));
    });
    // The same without waiting for the disk: what the merge costs the CPU.
    g.bench_function("receiver_merges_new_unsynced", |b| {
        b.iter_custom(|iters| merge_in_order(&chunks, iters, || on_disk(Durability::None)));
    });
    // Into a replica that holds them already (a chunk asked again after a
    // restart; a partition mostly in sync).
    let full = on_disk(Durability::Group);
    for chunk in &chunks {
        full.replica.merge_many(WALL, chunk).unwrap();
    }
    g.bench_function("receiver_merges_held", |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            for chunk in chunks.iter().cycle().take(iters as usize) {
                let start = Instant::now();
                full.replica.merge_many(WALL, chunk).unwrap();
                took += start.elapsed();
            }
            took
        });
    });
    g.finish();
}

criterion_group!(benches, handoff);
criterion_main!(benches);

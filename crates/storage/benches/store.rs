//! Storage throughput, latency and memory: [`FjallStore`] beside raw fjall.
//!
//! A plain benchmark binary (`harness = false`) that prints tables; runs of
//! up to a million keys do not fit criterion's sampling model. For each value
//! size (100 B and 10 KiB) it measures, every engine in a fresh directory:
//!
//! 1. **put, one writer, `none`**: [`Store::update`] of [`FjallStore`] with
//!    [`Durability::None`] against raw fjall `Keyspace::insert` +
//!    `Database::persist(Buffer)` per op (what `none` does per write).
//!    Target: store ≥ 0.7 × raw fjall. Raw fjall runs twice: with the plain
//!    key bytes (`key-00000042`, so inserted in key order) and with the
//!    store's own key layout (hash-prefixed, so in random order, as every
//!    store write is). A third raw row makes exactly the engine calls of a
//!    store put (read the object, batch the object and its Merkle leaf,
//!    persist), which splits the gap into fjall work and store logic.
//! 2. **get, one reader**: random reads of the loaded keys, [`Store::get`]
//!    against raw `Keyspace::get` (warm page cache).
//! 3. **put, one writer, `always`**: against `insert` + `persist(SyncData)`
//!    per op (an fsync per op, so fewer keys), with `group` for context.
//!    Target: store ≥ 0.7 × raw fjall.
//! 4. **put, 32 concurrent writers** of distinct keys for a fixed time:
//!    `group` against `always` (target: group ≥ 10 × always), beside raw
//!    fjall `insert` + `persist(SyncData)` per op, `none`, `group` with a
//!    [`group_window`](StoreConfig::group_window), and `group` with one
//!    writer.
//! 5. **resident memory** after loading 100 B keys (1,000,000 in full mode)
//!    and reading them, each engine in a child process of its own so that
//!    nothing else the benchmark allocated counts: VmRSS before, after the
//!    load, after the reads and at peak, the Merkle trees' share, and the
//!    disk space taken.
//!
//! Raw fjall is opened as `FjallStore` opens its engine
//! (`manual_journal_persist`, the same cache size, an `objects` keyspace)
//! and gets the same value bytes (a repeating pattern). Throughput counts
//! whole runs (ops / wall time); latencies are per op, timed with
//! [`Instant`]. Every table is followed by its ratios, and a summary lists
//! them all with PASS or MISS against the targets.
//!
//! # Running
//!
//! ```text
//! # default sizes: 200,000 × 100 B, 50,000 × 10 KiB, 2,000 keys in always (about a minute)
//! cargo bench -p gyre-storage --bench store
//! # full sizes: 1,000,000 × 100 B, 200,000 × 10 KiB, 5,000 keys in always (a few minutes)
//! GYRE_BENCH_FULL=1 cargo bench -p gyre-storage --bench store
//! # smoke run, tiny sizes
//! cargo bench -p gyre-storage --bench store -- --test
//! ```
//!
//! The measured run needs the `--bench` argument, which `cargo bench` passes.
//! Without it (as under `cargo test --all-targets`, which passes nothing) or
//! with `--test`, the binary runs tiny sizes only, to check that it works.
//!
//! Environment variables (numbers may contain `_`):
//!
//! | variable | meaning | default (full) |
//! |----------|---------|----------------|
//! | `GYRE_BENCH_FULL` | `1`: full sizes | off |
//! | `GYRE_BENCH_KEYS` | keys of 100 B loaded in `none` | 200,000 (1,000,000) |
//! | `GYRE_BENCH_KEYS_10K` | keys of 10 KiB loaded in `none` | 50,000 (200,000) |
//! | `GYRE_BENCH_SYNC_KEYS` | keys put one by one in `always` (fsync each) | 2,000 (5,000) |
//! | `GYRE_BENCH_READS` | random reads per get run | 200,000 (1,000,000) |
//! | `GYRE_BENCH_WRITERS` | concurrent writers | 32 |
//! | `GYRE_BENCH_SECS` | seconds per concurrent run | 3 (5) |
//! | `GYRE_BENCH_GROUP_WINDOWS_US` | `group_window`s to try with many writers, µs, comma-separated | `300` |
//! | `GYRE_BENCH_RSS_KEYS` | keys of 100 B loaded for the memory report | `GYRE_BENCH_KEYS` |
//! | `GYRE_BENCH_SIZES` | value sizes in bytes, comma-separated | `100,10240` |
//! | `GYRE_BENCH_ONLY` | sections, comma-separated: `put,get,always,concurrent,rss` | all |
//! | `GYRE_BENCH_DIR` | where the temporary databases go | the system temp dir |
//!
//! 1,000,000 × 10 KiB is 10 GB per engine before compaction: set
//! `GYRE_BENCH_KEYS_10K=1000000` only with the disk space (and time) for it.
//! The fsync-bound results depend on the disk far more than on the code:
//! compare ratios from one run, never absolute numbers across machines.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use gyre_storage::{Change, Durability, FjallStore, ObjectId, Store, StoreConfig};
use gyre_types::{BucketName, Key, KeyHash, NodeId, Timestamp};
use gyre_versioning::Policy;

/// The n_val every benchmark object is filed under.
const N_VAL: u8 = 3;

/// Put throughput of the store must be at least this share of raw fjall's.
const PUT_TARGET: f64 = 0.7;

/// `group` with many writers must be at least this many times `always`.
const GROUP_TARGET: f64 = 10.0;

/// `group_window`s (µs) also measured with many writers, beside the default 0.
const DEFAULT_WINDOWS_US: &[usize] = &[300];

/// The environment variable that turns the binary into a memory-report child.
const CHILD_ENV: &str = "GYRE_BENCH_CHILD";

// ------------------------------------------------------------ configuration

#[derive(Clone, Debug)]
struct Config {
    label: &'static str,
    keys_100: usize,
    keys_10k: usize,
    sync_keys: usize,
    reads: usize,
    writers: usize,
    secs: f64,
    rss_keys: usize,
    windows_us: Vec<usize>,
    sizes: Vec<usize>,
    only: Option<Vec<String>>,
    dir: Option<PathBuf>,
}

impl Config {
    fn from_env(smoke: bool) -> Self {
        let full =
            !smoke && std::env::var("GYRE_BENCH_FULL").is_ok_and(|v| v != "0" && !v.is_empty());
        let (label, keys_100, keys_10k, sync_keys, reads, secs) = if smoke {
            ("smoke (--test or no --bench)", 300, 50, 20, 300, 0.1)
        } else if full {
            (
                "full (GYRE_BENCH_FULL=1)",
                1_000_000,
                200_000,
                5_000,
                1_000_000,
                5.0,
            )
        } else {
            ("default", 200_000, 50_000, 2_000, 200_000, 3.0)
        };
        let num = |name: &str, default: usize| {
            if smoke {
                default
            } else {
                env_num(name, default)
            }
        };
        let keys_100 = num("GYRE_BENCH_KEYS", keys_100);
        let sizes = std::env::var("GYRE_BENCH_SIZES")
            .ok()
            .filter(|_| !smoke)
            .map(|s| s.split(',').filter_map(parse_num).collect())
            .unwrap_or_else(|| vec![100, 10 * 1024]);
        Self {
            label,
            keys_100,
            keys_10k: num("GYRE_BENCH_KEYS_10K", keys_10k),
            sync_keys: num("GYRE_BENCH_SYNC_KEYS", sync_keys),
            reads: num("GYRE_BENCH_READS", reads),
            writers: num("GYRE_BENCH_WRITERS", 32).max(1),
            secs: if smoke {
                secs
            } else {
                std::env::var("GYRE_BENCH_SECS")
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(secs)
            },
            rss_keys: num("GYRE_BENCH_RSS_KEYS", keys_100),
            windows_us: std::env::var("GYRE_BENCH_GROUP_WINDOWS_US")
                .ok()
                .map(|s| s.split(',').filter_map(parse_num).collect())
                .unwrap_or_else(|| DEFAULT_WINDOWS_US.to_vec()),
            sizes,
            only: std::env::var("GYRE_BENCH_ONLY")
                .ok()
                .filter(|s| !s.is_empty())
                .map(|s| s.split(',').map(|p| p.trim().to_owned()).collect()),
            dir: std::env::var_os("GYRE_BENCH_DIR").map(PathBuf::from),
        }
    }

    fn runs(&self, section: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == section))
    }

    /// Keys loaded (in `none`) for a value size.
    fn keys_for(&self, size: usize) -> usize {
        if size >= 1024 {
            self.keys_10k
        } else {
            self.keys_100
        }
    }

    fn tempdir(&self) -> tempfile::TempDir {
        match &self.dir {
            Some(d) => tempfile::Builder::new()
                .prefix("gyre-bench-")
                .tempdir_in(d)
                .unwrap(),
            None => tempfile::Builder::new()
                .prefix("gyre-bench-")
                .tempdir()
                .unwrap(),
        }
    }
}

fn parse_num(s: &str) -> Option<usize> {
    s.trim().replace('_', "").parse().ok()
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| parse_num(&v))
        .unwrap_or(default)
}

// ------------------------------------------------------------ workload

fn bucket() -> BucketName {
    BucketName::new("bench").unwrap()
}

fn key_bytes(i: usize) -> Vec<u8> {
    format!("key-{i:08}").into_bytes()
}

/// Builds the `i`th benchmark key's bytes.
type KeyFn = fn(&BucketName, usize) -> Vec<u8>;

/// The bytes the store files object `key-{i}` of `bucket` under: its ring
/// hash (big-endian), the bucket's length and name, then the key.
fn store_layout_key(bucket: &BucketName, i: usize) -> Vec<u8> {
    let key = Key::new(key_bytes(i)).unwrap();
    let hash = KeyHash::of(bucket, &key);
    let name = bucket.as_str().as_bytes();
    let mut out = Vec::with_capacity(9 + name.len() + key.len());
    out.extend_from_slice(&hash.as_u64().to_be_bytes());
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(key.as_bytes());
    out
}

fn writer_key_bytes(writer: usize, i: usize) -> Vec<u8> {
    format!("w{writer:03}-{i:08}").into_bytes()
}

/// A value of `size` bytes with some variety in it.
fn value(size: usize) -> Bytes {
    (0..size)
        .map(|i| (i.wrapping_mul(31) % 251) as u8)
        .collect::<Vec<_>>()
        .into()
}

/// One coordinator put, as the replication layer makes it.
fn store_put(store: &FjallStore, bucket: &BucketName, key: Vec<u8>, value: &Bytes, ts: u64) {
    let id = ObjectId::new(bucket.clone(), Key::new(key).unwrap());
    let dot = store
        .update(&id, N_VAL, |current| {
            let mut object = current.cloned().unwrap_or_default();
            match object.put_blind(
                value.clone(),
                NodeId::new(1),
                Timestamp::from_u64(ts),
                &Policy::default(),
            ) {
                Ok(dot) => Change::Write(object, Ok(dot)),
                Err(e) => Change::Keep(Err(e)),
            }
        })
        .unwrap()
        .unwrap();
    black_box(dot);
}

fn store_get(store: &FjallStore, bucket: &BucketName, key: Vec<u8>) {
    let id = ObjectId::new(bucket.clone(), Key::new(key).unwrap());
    let object = store.get(&id).unwrap().unwrap();
    black_box(object);
}

fn open_store(dir: &Path, durability: Durability) -> FjallStore {
    open_store_window(dir, durability, Duration::ZERO)
}

fn open_store_window(dir: &Path, durability: Durability, group_window: Duration) -> FjallStore {
    let config = StoreConfig {
        durability,
        group_window,
        ..StoreConfig::default()
    };
    FjallStore::open(dir, config).unwrap()
}

/// Raw fjall, opened the way `FjallStore` opens its engine.
struct Raw {
    db: Database,
    objects: Keyspace,
    /// Opened only to mimic the store's batches (see [`Raw::store_ops`]).
    leaves: Option<Keyspace>,
}

impl Raw {
    fn open(dir: &Path) -> Self {
        let db = Database::builder(dir)
            .cache_size(StoreConfig::default().cache_bytes)
            .manual_journal_persist(true)
            .open()
            .unwrap();
        let objects = db
            .keyspace("objects", KeyspaceCreateOptions::default)
            .unwrap();
        Self {
            db,
            objects,
            leaves: None,
        }
    }

    fn with_leaves(dir: &Path) -> Self {
        let mut raw = Self::open(dir);
        raw.leaves = Some(
            raw.db
                .keyspace("leaves", KeyspaceCreateOptions::default)
                .unwrap(),
        );
        raw
    }

    fn put(&self, key: Vec<u8>, value: &[u8], mode: PersistMode) {
        self.objects.insert(key, value).unwrap();
        self.db.persist(mode).unwrap();
    }

    /// The engine calls of one store put, without the store's logic: read
    /// the object, write it and a Merkle leaf (16 bytes under a 9-byte key,
    /// one of 4,096 per partition) in one batch, hand it to the OS.
    fn store_ops(&self, key: Vec<u8>, value: &[u8]) {
        let leaves = self.leaves.as_ref().unwrap();
        black_box(self.objects.get(&key).unwrap());
        let hash = u64::from_be_bytes(key[..8].try_into().unwrap());
        let mut leaf_key = Vec::with_capacity(9);
        leaf_key.extend_from_slice(&((hash >> 56) as u32).to_be_bytes());
        leaf_key.push(N_VAL);
        leaf_key.extend_from_slice(&(((hash >> 44) & 0xfff) as u32).to_be_bytes());
        let mut batch = self.db.batch();
        batch.insert(&self.objects, key, value);
        batch.insert(leaves, leaf_key, hash.to_le_bytes().repeat(2));
        batch.commit().unwrap();
        self.db.persist(PersistMode::Buffer).unwrap();
    }

    fn get(&self, key: Vec<u8>) {
        let v = self.objects.get(key).unwrap().unwrap();
        black_box(v);
    }
}

/// A small deterministic generator (splitmix64) for read order.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

// ------------------------------------------------------------ measuring

/// One measured run: how many ops, how long, and each op's latency (ns).
struct Run {
    name: String,
    ops: u64,
    elapsed: Duration,
    latencies: Vec<u64>,
    note: String,
}

impl Run {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `op(i)` for `i` in `0..n` on this thread, timing each.
fn sequential(name: impl Into<String>, n: usize, mut op: impl FnMut(usize)) -> Run {
    let mut latencies = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        op(i);
        latencies.push(t.elapsed().as_nanos() as u64);
    }
    Run {
        name: name.into(),
        ops: n as u64,
        elapsed: start.elapsed(),
        latencies,
        note: String::new(),
    }
}

/// Runs `op(writer, i)` on `writers` threads for `secs`, timing each op.
fn concurrent(
    name: impl Into<String>,
    writers: usize,
    secs: f64,
    op: impl Fn(usize, usize) + Sync,
) -> Run {
    let duration = Duration::from_secs_f64(secs);
    let barrier = Barrier::new(writers);
    let per_thread: Vec<(Vec<u64>, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    let mut latencies = Vec::new();
                    barrier.wait();
                    let start = Instant::now();
                    let mut i = 0;
                    while start.elapsed() < duration {
                        let t = Instant::now();
                        op(w, i);
                        latencies.push(t.elapsed().as_nanos() as u64);
                        i += 1;
                    }
                    (latencies, start.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = per_thread.iter().map(|(_, d)| *d).max().unwrap_or_default();
    let latencies: Vec<u64> = per_thread.into_iter().flat_map(|(l, _)| l).collect();
    Run {
        name: name.into(),
        ops: latencies.len() as u64,
        elapsed,
        latencies,
        note: String::new(),
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ------------------------------------------------------------ printing

fn fmt_ns(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn fmt_int(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn fmt_bytes(b: u64) -> String {
    let b = b as f64;
    if b < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    }
}

fn fmt_size(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

fn print_header(title: &str) {
    println!();
    println!("## {title}");
    println!(
        "{:<44} {:>10} {:>12} {:>10} {:>10} {:>10} {:>10}  note",
        "engine", "ops", "ops/s", "p50", "p99", "p99.9", "max"
    );
}

fn print_run(run: &mut Run) {
    run.latencies.sort_unstable();
    let l = &run.latencies;
    println!(
        "{:<44} {:>10} {:>12} {:>10} {:>10} {:>10} {:>10}  {}",
        run.name,
        fmt_int(run.ops),
        fmt_int(run.ops_per_sec().round() as u64),
        fmt_ns(percentile(l, 50.0)),
        fmt_ns(percentile(l, 99.0)),
        fmt_ns(percentile(l, 99.9)),
        fmt_ns(l.last().copied().unwrap_or(0)),
        run.note,
    );
}

/// Target checks, gathered for the summary at the end.
#[derive(Default)]
struct Verdicts(Vec<String>);

impl Verdicts {
    fn ratio(&mut self, what: String, ratio: f64, target: f64) {
        let verdict = if ratio >= target { "PASS" } else { "MISS" };
        let line = format!("{what}: {ratio:.2}× (target ≥ {target:.1}×) {verdict}");
        println!("  -> {line}");
        self.0.push(line);
    }

    fn info(&mut self, what: String, ratio: f64) {
        let line = format!("{what}: {ratio:.2}× (context, no target)");
        println!("  -> {line}");
        self.0.push(line);
    }
}

// ------------------------------------------------------------ sections

/// Single-writer puts in `none` against raw insert + persist(Buffer), then
/// random gets on both data sets.
fn put_and_get(cfg: &Config, size: usize, verdicts: &mut Verdicts) {
    let n = cfg.keys_for(size);
    let reads = cfg.reads;
    let v = value(size);
    let b = bucket();
    let (do_put, do_get) = (cfg.runs("put"), cfg.runs("get"));
    if !do_put && !do_get {
        return;
    }
    let mut puts = Vec::new();
    let mut gets = Vec::new();

    // Raw fjall twice: with the plain key bytes (`key-00000042`, inserted in
    // key order), and with the key layout the store writes (hash-prefixed,
    // so inserted in random order, as every store write is).
    let layouts: [(&str, KeyFn); 2] = [
        ("", |_, i| key_bytes(i)),
        (", hashed keys", store_layout_key),
    ];
    for (suffix, key) in layouts {
        let dir = cfg.tempdir();
        let raw = Raw::open(dir.path());
        let mut run = sequential(
            format!("raw fjall insert + persist(Buffer){suffix}"),
            n,
            |i| {
                raw.put(key(&b, i), &v, PersistMode::Buffer);
            },
        );
        run.note = format!("disk {}", fmt_bytes(dir_size(dir.path())));
        puts.push(run);
        if do_get {
            let mut rng = Rng(7);
            gets.push(sequential(format!("raw fjall get{suffix}"), reads, |_| {
                raw.get(key(&b, rng.below(n)));
            }));
        }
    }
    if do_put {
        let dir = cfg.tempdir();
        let raw = Raw::with_leaves(dir.path());
        let mut run = sequential("raw fjall, a store put's engine calls", n, |i| {
            raw.store_ops(store_layout_key(&b, i), &v);
        });
        run.note = "get + batch(object, leaf) + persist(Buffer)".to_owned();
        puts.push(run);
    }
    {
        let dir = cfg.tempdir();
        let store = open_store(dir.path(), Durability::None);
        let mut run = sequential("FjallStore update, Durability::None", n, |i| {
            store_put(&store, &b, key_bytes(i), &v, i as u64 + 1);
        });
        run.note = format!("disk {}", fmt_bytes(dir_size(dir.path())));
        puts.push(run);
        if do_get {
            let mut rng = Rng(7);
            gets.push(sequential("FjallStore get", reads, |_| {
                store_get(&store, &b, key_bytes(rng.below(n)));
            }));
        }
    }

    if do_put {
        print_header(&format!(
            "put, 1 writer, {} values, {} fresh keys, none / PersistMode::Buffer",
            fmt_size(size),
            fmt_int(n as u64)
        ));
        for r in &mut puts {
            print_run(r);
        }
        // puts: raw, raw with hashed keys, a put's engine calls, the store.
        let ops = |i: usize| puts[i].ops_per_sec();
        let sz = fmt_size(size);
        verdicts.ratio(
            format!("put {sz} none: FjallStore / raw fjall"),
            ops(3) / ops(0),
            PUT_TARGET,
        );
        verdicts.ratio(
            format!("put {sz} none: FjallStore / raw fjall, hashed keys"),
            ops(3) / ops(1),
            PUT_TARGET,
        );
        verdicts.info(
            format!("put {sz} none: a put's engine calls / raw fjall, hashed keys"),
            ops(2) / ops(1),
        );
        verdicts.info(
            format!("put {sz} none: FjallStore / its engine calls"),
            ops(3) / ops(2),
        );
    }
    if do_get {
        print_header(&format!(
            "get, 1 reader, {} values, {} random reads of {} keys (warm page cache)",
            fmt_size(size),
            fmt_int(reads as u64),
            fmt_int(n as u64)
        ));
        for r in &mut gets {
            print_run(r);
        }
        verdicts.info(
            format!("get {}: FjallStore / raw fjall", fmt_size(size)),
            gets[2].ops_per_sec() / gets[0].ops_per_sec(),
        );
        verdicts.info(
            format!(
                "get {}: FjallStore / raw fjall, hashed keys",
                fmt_size(size)
            ),
            gets[2].ops_per_sec() / gets[1].ops_per_sec(),
        );
    }
}

/// Single-writer puts with an fsync each: `always` against raw insert +
/// persist(SyncData), and `group` with one writer for context.
fn put_always(cfg: &Config, size: usize, verdicts: &mut Verdicts) {
    let n = cfg.sync_keys;
    let v = value(size);
    let b = bucket();
    let mut runs = Vec::new();
    {
        let dir = cfg.tempdir();
        let raw = Raw::open(dir.path());
        runs.push(sequential("raw fjall insert + persist(SyncData)", n, |i| {
            raw.put(key_bytes(i), &v, PersistMode::SyncData);
        }));
    }
    for (name, mode) in [
        ("FjallStore update, Durability::Always", Durability::Always),
        ("FjallStore update, Durability::Group", Durability::Group),
    ] {
        let dir = cfg.tempdir();
        let store = open_store(dir.path(), mode);
        runs.push(sequential(name, n, |i| {
            store_put(&store, &b, key_bytes(i), &v, i as u64 + 1);
        }));
    }
    runs[2].note = "1 writer: no one to share fsyncs with".to_owned();
    print_header(&format!(
        "put, 1 writer, {} values, {} fresh keys (fewer: fsync per op), always / PersistMode::SyncData",
        fmt_size(size),
        fmt_int(n as u64)
    ));
    for r in &mut runs {
        print_run(r);
    }
    verdicts.ratio(
        format!("put {} always: FjallStore / raw fjall", fmt_size(size)),
        runs[1].ops_per_sec() / runs[0].ops_per_sec(),
        PUT_TARGET,
    );
}

/// Many writers of distinct keys for a fixed time: `group` against `always`.
fn put_concurrent(cfg: &Config, size: usize, verdicts: &mut Verdicts) {
    let (w, secs) = (cfg.writers, cfg.secs);
    let v = value(size);
    let b = bucket();
    let mut runs = Vec::new();
    {
        let dir = cfg.tempdir();
        let raw = Raw::open(dir.path());
        runs.push(concurrent(
            format!("raw fjall insert + persist(SyncData), {w} thr"),
            w,
            secs,
            |t, i| raw.put(writer_key_bytes(t, i), &v, PersistMode::SyncData),
        ));
    }
    for (name, mode) in [
        ("always", Durability::Always),
        ("group", Durability::Group),
        ("none", Durability::None),
    ] {
        let dir = cfg.tempdir();
        let store = open_store(dir.path(), mode);
        runs.push(concurrent(
            format!("FjallStore update, {name}, {w} threads"),
            w,
            secs,
            |t, i| store_put(&store, &b, writer_key_bytes(t, i), &v, i as u64 + 1),
        ));
    }
    // `group` with a window: the fsync thread waits before each fsync.
    for &us in &cfg.windows_us {
        let dir = cfg.tempdir();
        let window = Duration::from_micros(us as u64);
        let store = open_store_window(dir.path(), Durability::Group, window);
        runs.push(concurrent(
            format!("FjallStore update, group {us} µs window, {w} thr"),
            w,
            secs,
            |t, i| store_put(&store, &b, writer_key_bytes(t, i), &v, i as u64 + 1),
        ));
    }
    // One writer in `group` for context: what the sharing buys.
    {
        let dir = cfg.tempdir();
        let store = open_store(dir.path(), Durability::Group);
        runs.push(concurrent(
            "FjallStore update, group, 1 thread",
            1,
            secs,
            |t, i| {
                store_put(&store, &b, writer_key_bytes(t, i), &v, i as u64 + 1);
            },
        ));
    }
    print_header(&format!(
        "put, {w} concurrent writers of distinct keys, {} values, {secs} s per run",
        fmt_size(size)
    ));
    for r in &mut runs {
        print_run(r);
    }
    let (raw, always, group, group1) = (
        runs[0].ops_per_sec(),
        runs[1].ops_per_sec(),
        runs[2].ops_per_sec(),
        runs[runs.len() - 1].ops_per_sec(),
    );
    verdicts.ratio(
        format!("put {} {w} writers: group / always", fmt_size(size)),
        group / always,
        GROUP_TARGET,
    );
    verdicts.info(
        format!("put {} {w} writers: always / raw SyncData", fmt_size(size)),
        always / raw,
    );
    verdicts.info(
        format!("put {} group: {w} writers / 1 writer", fmt_size(size)),
        group / group1,
    );
}

/// Memory after loading keys, each engine in a child process of its own.
fn memory(cfg: &Config) {
    let n = cfg.rss_keys;
    println!();
    println!(
        "## resident memory after loading {} keys of 100 B (none / Buffer) and {} random reads, one process per engine",
        fmt_int(n as u64),
        fmt_int(cfg.reads.min(n) as u64)
    );
    println!(
        "{:<28} {:>10} {:>12} {:>12} {:>12} {:>10} {:>12} {:>12}",
        "engine", "load s", "RSS before", "after load", "after reads", "peak", "merkle", "disk"
    );
    let exe = std::env::current_exe().unwrap();
    for engine in ["raw", "store"] {
        let out = Command::new(&exe)
            .env(CHILD_ENV, engine)
            .env("GYRE_BENCH_CHILD_KEYS", n.to_string())
            .env("GYRE_BENCH_CHILD_READS", cfg.reads.min(n).to_string())
            .output()
            .unwrap();
        if !out.status.success() {
            println!(
                "{engine}: child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        }
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}

/// VmRSS and VmHWM of this process, in bytes (Linux only).
fn rss() -> (Option<u64>, Option<u64>) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return (None, None);
    };
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn fmt_opt_bytes(b: Option<u64>) -> String {
    b.map_or_else(|| "n/a".to_owned(), fmt_bytes)
}

/// Disk space taken by the files under `dir` (allocated blocks where the
/// platform says, so that preallocated journals count as what they hold).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => file_size(&m),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(unix)]
fn file_size(m: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    m.blocks() * 512
}

#[cfg(not(unix))]
fn file_size(m: &std::fs::Metadata) -> u64 {
    m.len()
}

/// The memory-report child: loads keys into one engine and prints a row.
fn child(engine: &str) {
    let cfg = Config::from_env(false);
    let n = env_num("GYRE_BENCH_CHILD_KEYS", 1000);
    let reads = env_num("GYRE_BENCH_CHILD_READS", n);
    let v = value(100);
    let b = bucket();
    let dir = cfg.tempdir();
    let (before, _) = rss();
    let start = Instant::now();
    let mut rng = Rng(11);
    let (name, load, after_load, after_reads, merkle) = if engine == "store" {
        let store = open_store(dir.path(), Durability::None);
        for i in 0..n {
            store_put(&store, &b, key_bytes(i), &v, i as u64 + 1);
        }
        let load = start.elapsed();
        let (after_load, _) = rss();
        for _ in 0..reads {
            store_get(&store, &b, key_bytes(rng.below(n)));
        }
        let (after_reads, _) = rss();
        let trees = store.merkle_trees().len();
        let merkle = trees * store.config().merkle_shape.memory_bytes();
        (
            "FjallStore",
            load,
            after_load,
            after_reads,
            format!("{} ({trees} trees)", fmt_bytes(merkle as u64)),
        )
    } else {
        let raw = Raw::open(dir.path());
        for i in 0..n {
            raw.put(key_bytes(i), &v, PersistMode::Buffer);
        }
        let load = start.elapsed();
        let (after_load, _) = rss();
        for _ in 0..reads {
            raw.get(key_bytes(rng.below(n)));
        }
        let (after_reads, _) = rss();
        ("raw fjall", load, after_load, after_reads, "-".to_owned())
    };
    let (_, peak) = rss();
    println!(
        "{:<28} {:>10.1} {:>12} {:>12} {:>12} {:>10} {:>12} {:>12}",
        name,
        load.as_secs_f64(),
        fmt_opt_bytes(before),
        fmt_opt_bytes(after_load),
        fmt_opt_bytes(after_reads),
        fmt_opt_bytes(peak),
        merkle,
        fmt_bytes(dir_size(dir.path())),
    );
}

fn main() {
    if let Ok(engine) = std::env::var(CHILD_ENV) {
        child(&engine);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test` passes nothing (or
    // `--test` when asked): then check that everything runs, quickly.
    let smoke = args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench");
    let cfg = Config::from_env(smoke);

    println!(
        "# gyre-storage: FjallStore vs raw fjall ({} sizes)",
        cfg.label
    );
    println!(
        "# keys: {} × 100 B, {} × 10 KiB in none; {} in always; {} reads; {} writers × {} s; memory at {} keys",
        fmt_int(cfg.keys_100 as u64),
        fmt_int(cfg.keys_10k as u64),
        fmt_int(cfg.sync_keys as u64),
        fmt_int(cfg.reads as u64),
        cfg.writers,
        cfg.secs,
        fmt_int(cfg.rss_keys as u64),
    );
    println!(
        "# {} CPUs; databases under {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cfg.dir.clone().unwrap_or_else(std::env::temp_dir).display()
    );
    if smoke {
        println!("# smoke run: checks that every section works; its numbers mean nothing");
    }

    let mut verdicts = Verdicts::default();
    let total = Instant::now();
    for &size in &cfg.sizes {
        put_and_get(&cfg, size, &mut verdicts);
        if cfg.runs("always") {
            put_always(&cfg, size, &mut verdicts);
        }
        if cfg.runs("concurrent") {
            put_concurrent(&cfg, size, &mut verdicts);
        }
    }
    if cfg.runs("rss") {
        memory(&cfg);
    }

    println!();
    println!("## summary ({:.0} s in all)", total.elapsed().as_secs_f64());
    for line in &verdicts.0 {
        println!("{line}");
    }
}

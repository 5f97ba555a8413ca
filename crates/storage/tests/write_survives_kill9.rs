//! Crash test with real processes: every acknowledged write survives `kill -9`.
//!
//! For each [`Durability`] mode (`always`, `group` and `none`, all of which
//! promise to survive the death of the process), the parent test runs
//! several rounds against one store directory. In each round it re-executes
//! this test binary as a child (`current_exe() --exact crash_child
//! --nocapture`, which works under `cargo test` and `cargo nextest` alike;
//! without its environment variables `crash_child` passes at once). The
//! child opens the store and writes from several threads: puts of new keys,
//! rewrites and deletes (and purges) of keys of earlier rounds, hints added
//! and removed. Before each operation it prints `TRY <thread> <op>` and once
//! the store acknowledged it `ACK <thread> <op>`, flushing each line into a
//! pipe. Some values are a few hundred KiB, so that fjall's memtables fill
//! and the journal rotates. The parent SIGKILLs the child at a random moment
//! (sometimes while it is still recovering the store), reopens the store and
//! checks:
//!
//! - every key holds exactly its last acknowledged state (value and n_val,
//!   tombstone, or nothing), or the state of the one operation its thread
//!   had in flight, and no other object exists;
//! - `verify_trees` finds the Merkle trees equal to a rebuild from the data;
//! - every hint queue is its acknowledged list (or that list with the
//!   operation in flight applied), in order, and the backlog counts agree.
//!
//! `first_open_survives_kill9` kills children at moments spread over their
//! very first open of an empty directory, and requires each directory to
//! open again with the same checks.
//!
//! The seed is printed; set `GYRE_CRASH_SEED` to replay a run (thread timing
//! still varies, so a replay exercises the same workload, not the same kill).
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gyre_storage::{
    Change, Durability, FjallStore, Hint, HintId, Object, ObjectId, Store, StoreConfig,
};
use gyre_types::{BucketName, Key, NodeId, Timestamp};
use gyre_versioning::Policy;

/// The test function that is the child process when its variables are set.
const CHILD_TEST: &str = "crash_child";
const ENV_DIR: &str = "GYRE_CRASH_CHILD_DIR";
const ENV_MODE: &str = "GYRE_CRASH_CHILD_MODE";
const ENV_START: &str = "GYRE_CRASH_CHILD_START";
const ENV_ROUND: &str = "GYRE_CRASH_CHILD_ROUND";
const ENV_CHILD_SEED: &str = "GYRE_CRASH_CHILD_SEED";
/// Overrides the random seed of the parents, to replay a failure.
const ENV_SEED: &str = "GYRE_CRASH_SEED";

/// Kill-and-recover rounds per durability mode, all in one directory.
const ROUNDS: u64 = 8;
/// A child stops writing after this long (it is normally killed well before).
const CHILD_LIFETIME: Duration = Duration::from_secs(60);
/// How long the parent waits for the acknowledgements it wants to see.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// The n_val of every hint.
const HINT_N_VAL: u8 = 3;

// ---------------------------------------------------------------------------
// Shared by parent and child: operations, their lines, keys and values.

/// One operation of a child's writer thread, as printed on its lines.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    /// A blind put of `value_bytes(token)` filed under `n_val`.
    Put { key: u64, n_val: u8, token: String },
    /// A blind delete (a tombstone filed under `n_val`).
    Delete { key: u64, n_val: u8 },
    /// Purge of the tombstone the same thread just wrote.
    Purge { key: u64 },
    /// A hint named `name` queued for the thread's target.
    AddHint { name: String },
    /// Removal of the hint named `name` from the thread's target queue.
    RemoveHint { name: String },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Put { key, n_val, token } => write!(f, "put {key} {n_val} {token}"),
            Self::Delete { key, n_val } => write!(f, "del {key} {n_val}"),
            Self::Purge { key } => write!(f, "purge {key}"),
            Self::AddHint { name } => write!(f, "hadd {name}"),
            Self::RemoveHint { name } => write!(f, "hdel {name}"),
        }
    }
}

/// A line of the child: an operation is about to start, or was acknowledged.
#[derive(Debug)]
enum Event {
    Try(u64, Op),
    Ack(u64, Op),
}

/// Parses a child's line; `None` for lines that are not ours (libtest's).
fn parse_line(line: &str) -> Result<Option<Event>, String> {
    let mut words = line.split_whitespace();
    let ack = match words.next() {
        Some("TRY") => false,
        Some("ACK") => true,
        _ => return Ok(None),
    };
    let bad = || format!("unparsable line {line:?}");
    let mut next = || words.next().ok_or_else(bad);
    let thread: u64 = next()?.parse().map_err(|_| bad())?;
    let op = match next()? {
        "put" => Op::Put {
            key: next()?.parse().map_err(|_| bad())?,
            n_val: next()?.parse().map_err(|_| bad())?,
            token: next()?.to_owned(),
        },
        "del" => Op::Delete {
            key: next()?.parse().map_err(|_| bad())?,
            n_val: next()?.parse().map_err(|_| bad())?,
        },
        "purge" => Op::Purge {
            key: next()?.parse().map_err(|_| bad())?,
        },
        "hadd" => Op::AddHint {
            name: next()?.to_owned(),
        },
        "hdel" => Op::RemoveHint {
            name: next()?.to_owned(),
        },
        _ => return Err(bad()),
    };
    if words.next().is_some() {
        return Err(bad());
    }
    Ok(Some(if ack {
        Event::Ack(thread, op)
    } else {
        Event::Try(thread, op)
    }))
}

fn mode_name(mode: Durability) -> &'static str {
    match mode {
        Durability::Always => "always",
        Durability::Group => "group",
        Durability::None => "none",
    }
}

/// Writer threads of the child: enough for group commit to batch fsyncs.
fn writer_threads(mode: Durability) -> u64 {
    match mode {
        Durability::Group => 8,
        Durability::Always | Durability::None => 2,
    }
}

fn store_config(mode: Durability) -> StoreConfig {
    StoreConfig {
        durability: mode,
        cache_bytes: 8 << 20,
        ..StoreConfig::default()
    }
}

/// Key `key` of the test's bucket. Writer thread `t` of `T` owns the keys
/// with `key % T == t`, so the operations on one key are sequential.
fn object_id(key: u64) -> ObjectId {
    ObjectId::new(
        BucketName::new("crash").unwrap(),
        Key::new(format!("k{key:08}")).unwrap(),
    )
}

fn key_index(id: &ObjectId) -> Option<u64> {
    if id.bucket().as_str() != "crash" {
        return None;
    }
    std::str::from_utf8(id.key().as_bytes())
        .ok()?
        .strip_prefix('k')?
        .parse()
        .ok()
}

fn hint_object_id(name: &str) -> ObjectId {
    ObjectId::new(
        BucketName::new("hinted").unwrap(),
        Key::new(name.as_bytes().to_vec()).unwrap(),
    )
}

/// The node that writer thread `t`'s hints wait for.
fn hint_target(t: u64) -> NodeId {
    NodeId::new(100 + t)
}

/// The bytes a put of `token` writes: the token, then as many `#`s as the
/// number after its last `-p` says.
fn value_bytes(token: &str) -> Bytes {
    let mut bytes = token.as_bytes().to_vec();
    bytes.resize(value_len(token), b'#');
    Bytes::from(bytes)
}

fn value_len(token: &str) -> usize {
    let padding: usize = token
        .rsplit_once("-p")
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(1);
    token.len() + padding
}

/// In one put of how many, the child writes a value of 128 to 512 KiB, so
/// that fjall's 64 MiB memtables fill up and the child is also killed while
/// fjall rotates its journal and flushes memtables. (Being all `#`s, they
/// cost the journal little.)
fn big_value_odds(mode: Durability) -> u64 {
    match mode {
        Durability::Always => 6,
        Durability::Group => 12,
        Durability::None => 48,
    }
}

/// The token a value was written from, if it is exactly `value_bytes(token)`.
fn token_of(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == b'#')?;
    let token = std::str::from_utf8(bytes.get(..end)?).ok()?;
    (value_bytes(token).as_ref() == bytes).then(|| token.to_owned())
}

/// A small deterministic generator (splitmix64 seeding, xorshift64*).
struct Rng(u64);

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    fn new(seed: u64) -> Self {
        Self(splitmix(seed) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-enough in `0..n` (`0` if `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next().checked_rem(n).unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------
// The child.

/// The child process: a no-op unless the parent set its variables.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(ENV_DIR) else {
        return;
    };
    // libtest may have printed "test crash_child ... " without a newline.
    emit("");
    let var = |name: &str| std::env::var(name).unwrap();
    let mode: Durability = var(ENV_MODE).parse().unwrap();
    let start: u64 = var(ENV_START).parse().unwrap();
    let round: u64 = var(ENV_ROUND).parse().unwrap();
    let seed: u64 = var(ENV_CHILD_SEED).parse().unwrap();
    let threads = writer_threads(mode);
    let store = FjallStore::open(Path::new(&dir), store_config(mode)).unwrap();
    let deadline = Instant::now() + CHILD_LIFETIME;
    std::thread::scope(|s| {
        for t in 0..threads {
            let mut writer = Writer::new(&store, mode, t, start, round, seed);
            s.spawn(move || {
                while Instant::now() < deadline {
                    writer.step();
                }
            });
        }
    });
}

/// Prints one line to the parent and flushes it; exits if the parent is gone.
fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let line = format!("{line}\n");
    if out
        .write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(2);
    }
}

/// One writer thread of the child.
struct Writer<'a> {
    store: &'a FjallStore,
    t: u64,
    threads: u64,
    round: u64,
    big_odds: u64,
    rng: Rng,
    /// The next new key of this thread.
    next_key: u64,
    /// This thread's target queue, as acknowledged.
    hints: Vec<(HintId, String)>,
    steps: u64,
}

impl<'a> Writer<'a> {
    fn new(
        store: &'a FjallStore,
        mode: Durability,
        t: u64,
        start: u64,
        round: u64,
        seed: u64,
    ) -> Self {
        let threads = writer_threads(mode);
        let hints = store
            .hints(hint_target(t), None, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(id, hint)| {
                let name = String::from_utf8(hint.id.key().as_bytes().to_vec()).unwrap();
                (id, name)
            })
            .collect();
        Self {
            store,
            t,
            threads,
            round,
            big_odds: big_value_odds(mode),
            rng: Rng::new(seed ^ splitmix(t + 1)),
            next_key: start + (t + threads - start % threads) % threads,
            hints,
            steps: 0,
        }
    }

    /// A key of this thread below the next new one (of this or an earlier
    /// round, written or not), if there is one.
    fn earlier_key(&mut self) -> Option<u64> {
        let count = (self.next_key - self.t) / self.threads;
        (count > 0).then(|| self.t + self.threads * self.rng.below(count))
    }

    fn step(&mut self) {
        self.steps += 1;
        let roll = self.rng.below(100);
        let n_val = 1 + self.rng.below(3) as u8;
        let padding = if self.rng.below(self.big_odds) == 0 {
            (128 << 10) + self.rng.below(384 << 10)
        } else {
            1 + self.rng.below(700)
        };
        let token = format!("r{}-t{}-s{}-p{padding}", self.round, self.t, self.steps);
        let earlier = self.earlier_key();
        match (roll, earlier) {
            (55..75, Some(key)) => self.run(Op::Put { key, n_val, token }),
            (75..87, Some(key)) => {
                self.run(Op::Delete { key, n_val });
                if self.rng.below(2) == 0 {
                    self.run(Op::Purge { key });
                }
            }
            (87..96, _) => {
                let name = format!("h-r{}-t{}-s{}", self.round, self.t, self.steps);
                self.run(Op::AddHint { name });
            }
            (96.., _) if !self.hints.is_empty() => {
                let i = self.rng.below(self.hints.len() as u64) as usize;
                let name = self.hints[i].1.clone();
                self.run(Op::RemoveHint { name });
            }
            _ => {
                let key = self.next_key;
                self.next_key += self.threads;
                self.run(Op::Put { key, n_val, token });
            }
        }
    }

    /// Announces `op`, performs it and acknowledges it once the store did.
    fn run(&mut self, op: Op) {
        emit(&format!("TRY {} {op}", self.t));
        let coordinator = NodeId::new(1);
        let ts = Timestamp::from_u64(self.steps);
        let policy = Policy::default();
        match &op {
            Op::Put { key, n_val, token } => {
                let value = value_bytes(token);
                self.store
                    .update(&object_id(*key), *n_val, |current| {
                        let mut object = current.cloned().unwrap_or_default();
                        let dot = object.put_blind(value, coordinator, ts, &policy);
                        Change::Write(object, dot)
                    })
                    .unwrap()
                    .unwrap();
            }
            Op::Delete { key, n_val } => {
                self.store
                    .update(&object_id(*key), *n_val, |current| {
                        let mut object = current.cloned().unwrap_or_default();
                        let dot = object.delete_blind(coordinator, ts, &policy);
                        Change::Write(object, dot)
                    })
                    .unwrap()
                    .unwrap();
            }
            Op::Purge { key } => {
                let id = object_id(*key);
                let object = self.store.get(&id).unwrap().unwrap();
                assert!(object.is_deleted(), "{op}: not a tombstone: {object:?}");
                assert!(
                    self.store.purge(&id, object.version_digest()).unwrap(),
                    "{op}: the tombstone just written was not purged"
                );
            }
            Op::AddHint { name } => {
                let mut object = Object::default();
                object
                    .put_blind(Bytes::from(name.clone()), coordinator, ts, &policy)
                    .unwrap();
                let hint = Hint {
                    id: hint_object_id(name),
                    n_val: HINT_N_VAL,
                    object,
                };
                let id = self.store.add_hint(hint_target(self.t), &hint).unwrap();
                self.hints.push((id, name.clone()));
            }
            Op::RemoveHint { name } => {
                let i = self.hints.iter().position(|(_, n)| n == name).unwrap();
                let (id, _) = self.hints.remove(i);
                assert!(
                    self.store.remove_hint(hint_target(self.t), id).unwrap(),
                    "{op}: hint {id} was not there"
                );
            }
        }
        emit(&format!("ACK {} {op}", self.t));
    }
}

// ---------------------------------------------------------------------------
// The parent.

/// What the store holds for one key of the test's bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Value { n_val: u8, token: String },
    Tombstone { n_val: u8 },
}

/// The state of an object as the test writes them: one sibling, a value
/// written by `value_bytes` or a tombstone.
fn state_of(n_val: u8, object: &Object) -> Result<State, String> {
    let siblings: Vec<_> = object.siblings().collect();
    let [sibling] = siblings.as_slice() else {
        return Err(format!("{} siblings in {object:?}", siblings.len()));
    };
    match &sibling.value {
        None => Ok(State::Tombstone { n_val }),
        Some(bytes) => match token_of(bytes) {
            Some(token) => Ok(State::Value { n_val, token }),
            None => Err(format!("a value the test never wrote: {bytes:?}")),
        },
    }
}

/// What the parent knows is durable: every acknowledged operation applied.
#[derive(Default)]
struct Model {
    keys: BTreeMap<u64, State>,
    /// Per writer thread, the names of its target's hints in queue order.
    hints: BTreeMap<u64, Vec<String>>,
    /// The first key no child has written yet.
    next_key: u64,
}

/// The key `op` changes and its state afterwards (`None`: no record).
fn key_effect(op: &Op) -> Option<(u64, Option<State>)> {
    match op {
        Op::Put { key, n_val, token } => Some((
            *key,
            Some(State::Value {
                n_val: *n_val,
                token: token.clone(),
            }),
        )),
        Op::Delete { key, n_val } => Some((*key, Some(State::Tombstone { n_val: *n_val }))),
        Op::Purge { key } => Some((*key, None)),
        Op::AddHint { .. } | Op::RemoveHint { .. } => None,
    }
}

/// Applies `op` to a hint queue.
fn apply_hint(queue: &mut Vec<String>, op: &Op) {
    match op {
        Op::AddHint { name } => queue.push(name.clone()),
        Op::RemoveHint { name } => queue.retain(|n| n != name),
        Op::Put { .. } | Op::Delete { .. } | Op::Purge { .. } => {}
    }
}

impl Model {
    fn apply(&mut self, t: u64, op: &Op) {
        match key_effect(op) {
            Some((key, Some(state))) => {
                self.keys.insert(key, state);
            }
            Some((key, None)) => {
                self.keys.remove(&key);
            }
            None => apply_hint(self.hints.entry(t).or_default(), op),
        }
    }
}

/// The lines of one child, as they arrive.
#[derive(Default)]
struct Round {
    /// Per writer thread, the operation announced and not yet acknowledged.
    pending: BTreeMap<u64, Op>,
    tries: u64,
    acks: u64,
    /// Bytes of values in acknowledged puts.
    put_bytes: u64,
}

impl Round {
    fn handle(&mut self, model: &mut Model, event: Result<Event, String>, ctx: &str) {
        match event {
            Err(e) => panic!("{ctx}: {e}"),
            Ok(Event::Try(t, op)) => {
                if let Op::Put { key, .. } | Op::Delete { key, .. } = op {
                    model.next_key = model.next_key.max(key + 1);
                }
                self.tries += 1;
                if let Some(previous) = self.pending.insert(t, op) {
                    panic!("{ctx}: thread {t} started an operation while {previous} was in flight");
                }
            }
            Ok(Event::Ack(t, op)) => {
                match self.pending.remove(&t) {
                    Some(p) if p == op => {}
                    other => {
                        panic!("{ctx}: thread {t} acknowledged {op} but had {other:?} in flight")
                    }
                }
                if let Op::Put { token, .. } = &op {
                    self.put_bytes += value_len(token) as u64;
                }
                model.apply(t, &op);
                self.acks += 1;
            }
        }
    }
}

fn parent_seed() -> u64 {
    match std::env::var(ENV_SEED) {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("{ENV_SEED}={s:?} is not a u64")),
        Err(_) => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            splitmix(now.as_secs() ^ u64::from(now.subsec_nanos()) ^ u64::from(std::process::id()))
        }
    }
}

/// Kills and recovers a writing child `ROUNDS` times in one directory.
fn crash_rounds(mode: Durability) {
    let name = mode_name(mode);
    let seed = parent_seed();
    println!("kill -9 test, mode {name}: seed {seed} (replay with {ENV_SEED}={seed})");
    let mut rng = Rng::new(seed ^ splitmix(writer_threads(mode) ^ name.len() as u64));
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::default();
    let (mut total_acks, mut total_bytes) = (0, 0);
    let started = Instant::now();
    for round in 1..=ROUNDS {
        let ctx = format!(
            "mode {name}, round {round}/{ROUNDS}, seed {seed} (replay with {ENV_SEED}={seed})"
        );
        // Mostly after a random number of acknowledgements and a random
        // delay; sometimes a few milliseconds after the start, while the
        // child is probably still recovering the store. (Kills during the
        // very first open are `first_open_survives_kill9`'s business.)
        let plan = if round > 1 && rng.below(6) == 0 {
            KillAfter::Start(Duration::from_millis(rng.below(60)))
        } else {
            KillAfter::Acks {
                acks: 1 + rng.below(300),
                delay: Duration::from_millis(rng.below(250)),
            }
        };
        let log = run_child(dir.path(), mode, round, plan, &mut rng, &mut model, &ctx);
        if let Err(e) = check_store(dir.path(), mode, &mut model, &log.pending, &ctx) {
            panic!("{e}");
        }
        total_acks += log.acks;
        total_bytes += log.put_bytes;
        println!(
            "  {name} round {round}: {} operations started, {} acknowledged, {} in flight at the kill; \
             {} keys, {} hints stored",
            log.tries,
            log.acks,
            log.pending.len(),
            model.keys.len(),
            model.hints.values().map(Vec::len).sum::<usize>(),
        );
    }
    assert!(
        total_acks > 0,
        "mode {name}, seed {seed}: no write was ever acknowledged"
    );
    println!(
        "  mode {name}: {total_acks} acknowledged writes ({} MiB of values) checked in {:.1?}",
        total_bytes >> 20,
        started.elapsed()
    );
}

/// When the parent kills its child: some `delay` after an event.
#[derive(Clone, Copy, Debug)]
enum KillAfter {
    /// `delay` after the child acknowledged `acks` operations.
    Acks { acks: u64, delay: Duration },
    /// `delay` after the child started.
    Start(Duration),
    /// `delay` after the first file appeared in the (empty) store directory.
    FirstFile(Duration),
}

/// Runs one child and kills it as `plan` says; returns its lines.
fn run_child(
    dir: &Path,
    mode: Durability,
    round: u64,
    plan: KillAfter,
    rng: &mut Rng,
    model: &mut Model,
    ctx: &str,
) -> Round {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(ENV_DIR, dir)
        .env(ENV_MODE, mode_name(mode))
        .env(ENV_START, model.next_key.to_string())
        .env(ENV_ROUND, round.to_string())
        .env(ENV_CHILD_SEED, rng.next().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{ctx}: cannot start the child: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let event = match line {
                Ok(line) => match parse_line(&line) {
                    Ok(None) => continue,
                    Ok(Some(event)) => Ok(event),
                    Err(e) => Err(e),
                },
                Err(e) => Err(format!("reading the child's output: {e}")),
            };
            if tx.send(event).is_err() {
                break;
            }
        }
    });

    let mut log = Round::default();
    let deadline = Instant::now() + ACK_TIMEOUT;
    let (min_acks, delay) = match plan {
        KillAfter::Acks { acks, delay } => (acks, delay),
        KillAfter::Start(delay) => (0, delay),
        KillAfter::FirstFile(delay) => {
            while std::fs::read_dir(dir).unwrap().next().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{ctx}: the child created no file in {ACK_TIMEOUT:?}");
                }
                std::thread::sleep(Duration::from_micros(20));
            }
            (0, delay)
        }
    };
    while log.acks < min_acks {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(event) => log.handle(model, event, ctx),
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{ctx}: only {} of {min_acks} writes acknowledged in {ACK_TIMEOUT:?}",
                    log.acks
                );
            }
            Err(RecvTimeoutError::Disconnected) => exited(&mut child, &log, ctx),
        }
    }
    let kill_at = Instant::now() + delay;
    loop {
        let left = kill_at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(left) {
            Ok(event) => log.handle(model, event, ctx),
            Err(RecvTimeoutError::Timeout) => break,
            Err(RecvTimeoutError::Disconnected) => exited(&mut child, &log, ctx),
        }
    }
    child
        .kill()
        .unwrap_or_else(|e| panic!("{ctx}: cannot kill the child: {e}"));
    let status = child.wait().unwrap();
    // Whatever the child wrote into the pipe before it died is still read.
    for event in rx {
        log.handle(model, event, ctx);
    }
    reader.join().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "{ctx}: the child was not killed by SIGKILL but ended with {status}"
    );
    log
}

/// Fails the round: the child ended before it was killed.
fn exited(child: &mut Child, log: &Round, ctx: &str) -> ! {
    let status = child.wait();
    panic!(
        "{ctx}: the child exited by itself ({status:?}) after {} acknowledgements",
        log.acks
    )
}

/// Reopens the store after a kill and checks it against the model, which it
/// then updates to what the store holds (resolving the operations that
/// were in flight).
fn check_store(
    dir: &Path,
    mode: Durability,
    model: &mut Model,
    pending: &BTreeMap<u64, Op>,
    ctx: &str,
) -> Result<(), String> {
    let store = FjallStore::open(dir, store_config(mode)).map_err(|e| {
        format!(
            "{ctx}: reopening after kill -9 failed: {e}\nthe directory holds: {}",
            listing(dir)
        )
    })?;
    let mut problems = Vec::new();

    // Every object, by scanning every partition.
    let mut found: BTreeMap<u64, (State, Object)> = BTreeMap::new();
    for partition in store.config().partitions.iter() {
        let mut after = None;
        loop {
            let page = store
                .scan(partition, after.as_ref(), 512)
                .unwrap_or_else(|e| panic!("{ctx}: scan of {partition:?}: {e}"));
            for stored in page.items {
                let Some(key) = key_index(&stored.id) else {
                    problems.push(format!("an object the test never wrote: {}", stored.id));
                    continue;
                };
                match state_of(stored.n_val, &stored.object) {
                    Ok(state) => {
                        found.insert(key, (state, stored.object));
                    }
                    Err(e) => problems.push(format!("key {key}: {e}")),
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }

    // Each key: its acknowledged state, or the one its thread had in flight.
    let in_flight: BTreeMap<u64, Option<State>> = pending.values().filter_map(key_effect).collect();
    let keys: BTreeSet<u64> = model
        .keys
        .keys()
        .chain(found.keys())
        .chain(in_flight.keys())
        .copied()
        .collect();
    for key in keys {
        let actual = found.get(&key).map(|(s, _)| s);
        let acked = model.keys.get(&key);
        let maybe = in_flight.get(&key);
        if actual != acked && maybe.is_none_or(|m| actual != m.as_ref()) {
            problems.push(format!(
                "key {key}: found {actual:?}, acknowledged {acked:?}, in flight {maybe:?}"
            ));
        }
        let got = store
            .get(&object_id(key))
            .unwrap_or_else(|e| panic!("{ctx}: get of key {key}: {e}"));
        if got.as_ref() != found.get(&key).map(|(_, o)| o) {
            problems.push(format!(
                "key {key}: get returns {got:?}, scan another state"
            ));
        }
    }

    // Each hint queue: its acknowledged list, or that list with the
    // operation in flight applied; the backlog counts agree.
    let backlog = store.hint_backlog();
    let mut hints = BTreeMap::new();
    for t in 0..writer_threads(mode) {
        let target = hint_target(t);
        let queue = store
            .hints(target, None, usize::MAX)
            .unwrap_or_else(|e| panic!("{ctx}: hints of {target}: {e}"));
        let mut names = Vec::new();
        for (id, hint) in &queue {
            let name = String::from_utf8_lossy(hint.id.key().as_bytes()).into_owned();
            let values: Vec<_> = hint.object.values().collect();
            if hint.n_val != HINT_N_VAL || values != [&Bytes::from(name.clone())] {
                problems.push(format!(
                    "hint {id} for {target} is not as written: {hint:?}"
                ));
            }
            names.push(name);
        }
        let acked = model.hints.get(&t).cloned().unwrap_or_default();
        let mut maybe = acked.clone();
        if let Some(op) = pending.get(&t) {
            apply_hint(&mut maybe, op);
        }
        if names != acked && names != maybe {
            problems.push(format!(
                "hints for {target}: found {names:?}, acknowledged {acked:?}, in flight {:?}",
                pending.get(&t)
            ));
        }
        let count = backlog.get(&target).copied().unwrap_or(0);
        if count != names.len() as u64 {
            problems.push(format!(
                "hint backlog of {target} is {count} but {} hints are stored",
                names.len()
            ));
        }
        if !names.is_empty() {
            hints.insert(t, names);
        }
    }
    let targets: BTreeSet<NodeId> = (0..writer_threads(mode)).map(hint_target).collect();
    if let Some(other) = backlog.keys().find(|n| !targets.contains(n)) {
        problems.push(format!(
            "a hint backlog for {other}, which no thread wrote to"
        ));
    }

    assert!(
        problems.is_empty(),
        "{ctx}: the store lost or changed acknowledged writes ({} problems):\n{}",
        problems.len(),
        problems
            .iter()
            .take(30)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mismatches = store
        .verify_trees()
        .unwrap_or_else(|e| panic!("{ctx}: verify_trees: {e}"));
    assert!(
        mismatches.is_empty(),
        "{ctx}: Merkle trees disagree with a rebuild from the data: {mismatches:?}"
    );
    model.keys = found.into_iter().map(|(k, (s, _))| (k, s)).collect();
    model.hints = hints;
    Ok(())
}

/// The files under `dir` with their sizes, for failure messages.
fn listing(dir: &Path) -> String {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.strip_prefix(root).unwrap_or(&path).display();
            match entry.metadata() {
                Ok(m) if m.is_dir() => {
                    out.push(format!("{name}/"));
                    walk(&path, root, out);
                }
                Ok(m) => out.push(format!("{name} ({} bytes)", m.len())),
                Err(e) => out.push(format!("{name} ({e})")),
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out.join(", ")
}

/// Kills the child at moments spread over its very first open of a store
/// (creating the database, its keyspaces and the store's own records) and
/// its first writes; every such directory must open again, holding its
/// acknowledged writes.
#[test]
fn first_open_survives_kill9() {
    const ATTEMPTS: u64 = 16;
    let seed = parent_seed();
    println!("kill -9 during the first open: seed {seed} (replay with {ENV_SEED}={seed})");
    let mut rng = Rng::new(seed ^ 0x1f_0ae0);
    let root = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for attempt in 0..ATTEMPTS {
        let mode =
            [Durability::Always, Durability::Group, Durability::None][(attempt % 3) as usize];
        let dir = root.path().join(attempt.to_string());
        std::fs::create_dir(&dir).unwrap();
        // The first open is a few milliseconds of file creations and
        // fsyncs: delays spread log-uniformly from 0 to 32 ms.
        let scale = 1 << (6 + rng.below(10));
        let delay = match attempt {
            0 => Duration::ZERO,
            _ => Duration::from_micros(rng.below(scale)),
        };
        let ctx = format!(
            "first open, mode {}, attempt {attempt}, kill {delay:?} after the first file, \
             seed {seed} (replay with {ENV_SEED}={seed})",
            mode_name(mode)
        );
        let mut model = Model::default();
        let plan = KillAfter::FirstFile(delay);
        let log = run_child(&dir, mode, 1, plan, &mut rng, &mut model, &ctx);
        if let Err(e) = check_store(&dir, mode, &mut model, &log.pending, &ctx) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ATTEMPTS} stores killed during their first open do not open again:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn always_survives_kill9() {
    crash_rounds(Durability::Always);
}

#[test]
fn group_survives_kill9() {
    crash_rounds(Durability::Group);
}

#[test]
fn none_survives_kill9() {
    crash_rounds(Durability::None);
}

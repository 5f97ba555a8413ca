//! The workload of a real-host run: clients doing causal read-modify-writes
//! (`GYRE.GET`, then `GYRE.PUT` or `GYRE.DEL` with the read's context),
//! blind `SET`s and `DEL`s on a small key set, through a real Redis client
//! library, each operation recorded with its outcome.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redis::{Connection, RedisError, Value};

use crate::Choices;
use crate::history::{Action, Entry, Op, Outcome};

/// How long a client waits for a connection or an answer.
const TIMEOUT: Duration = Duration::from_secs(3);

/// One client of the workload.
pub struct Client {
    id: u32,
    /// Each node's RESP address, as the harness knows it now (a restarted
    /// process may listen elsewhere).
    nodes: Arc<RwLock<Vec<SocketAddr>>>,
    keys: Vec<String>,
    choices: Choices,
    /// One connection per node, made on first use and dropped on an IO
    /// error.
    conns: BTreeMap<usize, Connection>,
    start: Instant,
    seq: u64,
}

/// How an answer ended, for the history.
fn outcome(e: &RedisError) -> Outcome {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
        Outcome::Unknown
    } else {
        Outcome::Failed
    }
}

/// A `GYRE.GET` answer: the context and the siblings.
fn context_and_values(v: Value) -> Result<(Vec<u8>, Vec<String>), String> {
    let text = |v: &Value| match v {
        Value::BulkString(b) => Ok(b.clone()),
        Value::SimpleString(s) => Ok(s.clone().into_bytes()),
        Value::Nil => Ok(Vec::new()),
        other => Err(format!("not a string: {other:?}")),
    };
    match v {
        Value::Array(parts) if parts.len() == 2 => {
            let context = text(&parts[0])?;
            let values = match &parts[1] {
                Value::Array(vs) => vs
                    .iter()
                    .map(|v| text(v).map(|b| String::from_utf8_lossy(&b).into_owned()))
                    .collect::<Result<_, _>>()?,
                other => return Err(format!("siblings are not an array: {other:?}")),
            };
            Ok((context, values))
        }
        other => Err(format!("GYRE.GET answered {other:?}")),
    }
}

impl Client {
    /// Client `id` of a run that started at `start`, sending to `nodes`
    /// (RESP addresses, read again at each new connection) and writing
    /// `keys`, its choices seeded by `seed`.
    pub fn new(
        id: u32,
        nodes: Arc<RwLock<Vec<SocketAddr>>>,
        keys: Vec<String>,
        seed: u64,
        start: Instant,
    ) -> Self {
        Self {
            id,
            nodes,
            keys,
            choices: Choices(seed ^ (u64::from(id) << 32)),
            conns: BTreeMap::new(),
            start,
            seq: 0,
        }
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn call(&mut self, node: usize, cmd: &redis::Cmd) -> Result<Value, RedisError> {
        if !self.conns.contains_key(&node) {
            let addr = self
                .addrs()
                .get(node)
                .copied()
                .ok_or_else(|| RedisError::from((redis::ErrorKind::Client, "no such node")))?;
            let client = redis::Client::open(format!("redis://{addr}/"))?;
            let conn = client.get_connection_with_timeout(TIMEOUT)?;
            conn.set_read_timeout(Some(TIMEOUT))?;
            conn.set_write_timeout(Some(TIMEOUT))?;
            self.conns.insert(node, conn);
        }
        let conn = self
            .conns
            .get_mut(&node)
            .ok_or_else(|| RedisError::from((redis::ErrorKind::Io, "no connection")))?;
        let answer = cmd.query::<Value>(conn);
        if let Err(e) = &answer
            && (e.is_io_error() || e.is_timeout() || e.is_connection_dropped())
        {
            self.conns.remove(&node);
        }
        answer
    }

    /// Runs until `stop`, counting acknowledged operations in `acked`:
    /// every operation, in the order it ran.
    pub fn run(mut self, stop: &AtomicBool, acked: &AtomicU64) -> Vec<Entry> {
        let mut history = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let before = history.len();
            self.step(&mut history);
            let ok = history[before..]
                .iter()
                .filter(|e| matches!(e, Entry::Op(op) if op.outcome == Outcome::Ok))
                .count();
            acked.fetch_add(ok as u64, Ordering::Relaxed);
        }
        history
    }

    fn op(
        &self,
        node: usize,
        key: &str,
        start_us: u64,
        result: Result<(), (Outcome, String)>,
        action: Action,
    ) -> Entry {
        let (outcome, error) = match result {
            Ok(()) => (Outcome::Ok, None),
            Err((outcome, e)) => (outcome, Some(e)),
        };
        Entry::Op(Op {
            client: self.id,
            node,
            key: key.to_owned(),
            start_us,
            end_us: self.now_us(),
            outcome,
            error,
            action,
        })
    }

    /// One operation: a causal read-modify-write (a read and a put or a
    /// delete), a blind `SET` or a blind `DEL`.
    fn step(&mut self, history: &mut Vec<Entry>) {
        let node = self.choices.below(self.addrs().len());
        let key = self.keys[self.choices.below(self.keys.len())].clone();
        self.seq += 1;
        let value = format!("c{}.{}", self.id, self.seq);
        let kind = self.choices.below(20);
        let start_us = self.now_us();
        if kind >= 17 {
            let (cmd, action) = if kind == 19 {
                (
                    redis::cmd("DEL").arg(&key).clone(),
                    Action::Delete {
                        read: vec![],
                        blind: true,
                    },
                )
            } else {
                let action = Action::Put {
                    value: value.clone(),
                    read: vec![],
                    blind: true,
                };
                (redis::cmd("SET").arg(&key).arg(&value).clone(), action)
            };
            let result = self
                .call(node, &cmd)
                .map(drop)
                .map_err(|e| (outcome(&e), e.to_string()));
            history.push(self.op(node, &key, start_us, result, action));
            return;
        }
        let read = self
            .call(node, redis::cmd("GYRE.GET").arg(&key))
            .map_err(|e| (outcome(&e), e.to_string()))
            .and_then(|v| context_and_values(v).map_err(|e| (Outcome::Failed, e)));
        let (context, seen) = match read {
            Ok(read) => read,
            Err(e) => {
                let action = Action::Read { values: vec![] };
                history.push(self.op(node, &key, start_us, Err(e), action));
                return;
            }
        };
        history.push(self.op(
            node,
            &key,
            start_us,
            Ok(()),
            Action::Read {
                values: seen.clone(),
            },
        ));
        let start_us = self.now_us();
        let (cmd, action) = if kind >= 15 {
            let cmd = redis::cmd("GYRE.DEL").arg(&key).arg(&context).clone();
            (
                cmd,
                Action::Delete {
                    read: seen,
                    blind: false,
                },
            )
        } else {
            let cmd = redis::cmd("GYRE.PUT")
                .arg(&key)
                .arg(&context)
                .arg(&value)
                .clone();
            (
                cmd,
                Action::Put {
                    value,
                    read: seen,
                    blind: false,
                },
            )
        };
        let result = self
            .call(node, &cmd)
            .map(drop)
            .map_err(|e| (outcome(&e), e.to_string()));
        history.push(self.op(node, &key, start_us, result, action));
    }
}

/// Every key's siblings read at R = `r` through the node at `addr`: the
/// final state the checker compares the history with.
pub fn final_state(
    addr: SocketAddr,
    keys: &[String],
    r: u8,
) -> Result<BTreeMap<String, Vec<String>>, String> {
    let client = redis::Client::open(format!("redis://{addr}/")).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_connection_with_timeout(TIMEOUT)
        .map_err(|e| e.to_string())?;
    let mut state = BTreeMap::new();
    for key in keys {
        let answer: Value = redis::cmd("GYRE.GET")
            .arg(key)
            .arg("R")
            .arg(r)
            .query(&mut conn)
            .map_err(|e| format!("{key}: {e}"))?;
        let (_, values) = context_and_values(answer)?;
        state.insert(key.clone(), values);
    }
    Ok(state)
}

/// Clients running in threads of their own until stopped.
pub struct Workload {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    start: Instant,
    clients: Vec<std::thread::JoinHandle<Vec<Entry>>>,
}

impl Workload {
    /// Starts `clients` clients (ids 0..) on `keys` through `nodes`, their
    /// choices seeded by `seed`.
    #[must_use]
    pub fn start(
        clients: u32,
        nodes: &Arc<RwLock<Vec<SocketAddr>>>,
        keys: &[String],
        seed: u64,
    ) -> Self {
        let (stop, acked) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let start = Instant::now();
        let clients = (0..clients)
            .map(|id| {
                let client = Client::new(id, Arc::clone(nodes), keys.to_vec(), seed, start);
                let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
                std::thread::spawn(move || client.run(&stop, &acked))
            })
            .collect();
        Self {
            stop,
            acked,
            start,
            clients,
        }
    }

    /// Operations acknowledged so far.
    #[must_use]
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// When the run started (the zero of the history's times).
    #[must_use]
    pub fn started(&self) -> Instant {
        self.start
    }

    /// Stops the clients: every operation of every client, each client's
    /// in the order it ran.
    ///
    /// # Panics
    /// If a client panicked.
    #[must_use]
    pub fn stop(self) -> Vec<Entry> {
        self.stop.store(true, Ordering::Relaxed);
        self.clients
            .into_iter()
            .flat_map(|c| c.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    }
}

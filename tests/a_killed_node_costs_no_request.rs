//! Always writable (issue 23): five nodes (N = 3, R = W = 2), twelve
//! clients doing causal read-modify-writes through every live node, and one
//! node at a time killed with SIGKILL and restarted. A request that a live
//! node answers is never `UNAVAILABLE`: every key keeps two live replicas
//! and three live fallbacks, so a live coordinator can always reach W.
//! Requests sent to the killed node itself are connection errors and do
//! not count. Every acknowledged write reads back afterwards.
//!
//! It prints the clients' p99 latency before the first kill and in the
//! seconds after each kill.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Cluster, Reply, SETTLE, agent, http, wait_for};

/// Nodes in the cluster.
const NODES: usize = 5;
/// Client threads.
const CLIENTS: usize = 12;
/// Keys each client cycles through.
const KEYS_EACH: usize = 4;
/// Kill-and-restart rounds (each a different node).
const ROUNDS: usize = 5;
/// Requests the clients complete while a killed node is down, and again
/// after it is back, before the test moves on (the window in which the
/// others still believe it up is covered: the test also waits until they
/// call it down).
const OPS_PER_PHASE: u64 = 300;

/// One answered request: when it ended (since the start), and how long it
/// took.
#[derive(Clone, Copy, Debug)]
struct Sample {
    end: Duration,
    took: Duration,
}

/// The nodes' URLs as the clients see them, and which node is down (the
/// clients send nothing to it). `epoch` counts kills of each node: a
/// request whose node was killed while it ran does not count.
struct Targets {
    urls: RwLock<Vec<String>>,
    down: Vec<AtomicBool>,
    epoch: Vec<AtomicU64>,
}

struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<(Vec<String>, Vec<Sample>)>>,
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    done: Arc<AtomicU64>,
    start: Instant,
}

impl Load {
    fn start(targets: &Arc<Targets>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let threads = (0..CLIENTS)
            .map(|c| {
                let (stop, acked, done, targets) = (
                    Arc::clone(&stop),
                    Arc::clone(&acked),
                    Arc::clone(&done),
                    Arc::clone(targets),
                );
                std::thread::spawn(move || {
                    let agent = agent();
                    let (mut failures, mut samples) = (Vec::new(), Vec::new());
                    let mut seq = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        seq += 1;
                        let node = (c + seq) % NODES;
                        if targets.down[node].load(Ordering::SeqCst) {
                            continue;
                        }
                        let epoch = targets.epoch[node].load(Ordering::SeqCst);
                        let base = targets.urls.read().unwrap()[node].clone();
                        let k = format!("k-{c}-{}", seq % KEYS_EACH);
                        let url = format!("{base}/v1/kv/default/{k}");
                        // Whether node was killed while the request ran.
                        let killed = || targets.epoch[node].load(Ordering::SeqCst) != epoch;

                        let t0 = Instant::now();
                        let read = http(&agent, "GET", &url, &[], None);
                        let took = t0.elapsed();
                        let read = match read {
                            // 300: siblings (a write that was not
                            // confirmed landed after all); the next write
                            // with this context resolves them.
                            Ok(r) if matches!(r.status, 200 | 300 | 404) => r,
                            Ok(r) => {
                                if !killed() {
                                    failures.push(format!(
                                        "GET {k} through n{node}: {} {}",
                                        r.status,
                                        r.text()
                                    ));
                                }
                                continue;
                            }
                            Err(e) => {
                                if !killed() {
                                    failures.push(format!("GET {k} through n{node}: {e}"));
                                }
                                continue;
                            }
                        };
                        samples.push(Sample {
                            end: start.elapsed(),
                            took,
                        });
                        done.fetch_add(1, Ordering::Relaxed);
                        let context = read.context.clone().unwrap_or_default();
                        let value = format!("c{c}-{seq}");
                        let headers: Vec<(&str, &str)> = if context.is_empty() {
                            Vec::new()
                        } else {
                            vec![("x-gyre-context", context.as_str())]
                        };
                        let t0 = Instant::now();
                        let put = http(&agent, "PUT", &url, &headers, Some(value.as_bytes()));
                        let took = t0.elapsed();
                        match put {
                            Ok(r) if r.status == 200 => {
                                acked.lock().unwrap().insert(k, value);
                                samples.push(Sample {
                                    end: start.elapsed(),
                                    took,
                                });
                                done.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            Ok(r) if !killed() => failures.push(format!(
                                "PUT {k} through n{node}: {} {}",
                                r.status,
                                r.text()
                            )),
                            Err(e) if !killed() => {
                                failures.push(format!("PUT {k} through n{node}: {e}"));
                            }
                            _ => {}
                        }
                        // Not confirmed: the write may exist, so the key's
                        // last value is no longer known.
                        acked.lock().unwrap().remove(&k);
                    }
                    (failures, samples)
                })
            })
            .collect();
        Self {
            stop,
            threads,
            acked,
            done,
            start,
        }
    }

    /// Waits until the clients complete `n` more requests.
    fn wait_ops(&self, n: u64, what: &str) {
        let from = self.done.load(Ordering::Relaxed);
        wait_for(what, SETTLE, || {
            let now = self.done.load(Ordering::Relaxed);
            if now >= from + n {
                Ok(())
            } else {
                Err(format!("{} of {n} requests done", now - from))
            }
        });
    }

    fn stop(self) -> (Vec<String>, Vec<Sample>, BTreeMap<String, String>) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut failures, mut samples) = (Vec::new(), Vec::new());
        for t in self.threads {
            let (f, s) = t.join().unwrap();
            failures.extend(f);
            samples.extend(s);
        }
        let acked = self.acked.lock().unwrap().clone();
        (failures, samples, acked)
    }
}

/// The 99th percentile of the latencies of `samples` that ended in
/// `[from, to)`, and how many there were.
fn p99(samples: &[Sample], from: Duration, to: Duration) -> (Duration, usize) {
    let mut took: Vec<Duration> = samples
        .iter()
        .filter(|s| s.end >= from && s.end < to)
        .map(|s| s.took)
        .collect();
    took.sort_unstable();
    let i = (took.len() * 99 / 100).min(took.len().saturating_sub(1));
    (took.get(i).copied().unwrap_or_default(), took.len())
}

/// The values a read answered: one (200), the siblings (300), or none.
fn values(reply: &Reply) -> Vec<String> {
    match reply.status {
        200 => vec![reply.text()],
        300 => reply.json()["siblings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["value"].as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn killing_one_node_of_five_refuses_no_request_through_live_nodes() {
    let mut cluster = Cluster::start(NODES);
    let targets = Arc::new(Targets {
        urls: RwLock::new((0..NODES).map(|i| cluster.nodes[i].url("")).collect()),
        down: (0..NODES).map(|_| AtomicBool::new(false)).collect(),
        epoch: (0..NODES).map(|_| AtomicU64::new(0)).collect(),
    });
    let load = Load::start(&targets);
    load.wait_ops(
        OPS_PER_PHASE,
        "the clients to make progress before any kill",
    );

    let mut kills = Vec::new();
    for round in 0..ROUNDS {
        let victim = (round * 2 + 1) % NODES;
        let others: Vec<usize> = (0..NODES).filter(|&i| i != victim).collect();
        targets.down[victim].store(true, Ordering::SeqCst);
        targets.epoch[victim].fetch_add(1, Ordering::SeqCst);
        kills.push(load.start.elapsed());
        cluster.nodes[victim].kill9();
        load.wait_ops(OPS_PER_PHASE, "requests while a node is killed");
        let id = cluster.nodes[victim].id().to_owned();
        cluster.wait_seen(&others, &id, false);
        cluster.restart(victim);
        targets.urls.write().unwrap()[victim] = cluster.nodes[victim].url("");
        targets.down[victim].store(false, Ordering::SeqCst);
        load.wait_ops(OPS_PER_PHASE, "requests after a restart");
        cluster.wait_seen(&others, &id, true);
    }
    let end = load.start.elapsed();
    let (failures, samples, acked) = load.stop();

    let (before, n_before) = p99(&samples, Duration::ZERO, kills[0]);
    eprintln!(
        "{} requests answered, {} refused by live nodes; p99 before the first kill {before:?} ({n_before} requests)",
        samples.len(),
        failures.len()
    );
    for (i, &at) in kills.iter().enumerate() {
        let (after, n) = p99(&samples, at, (at + Duration::from_secs(5)).min(end));
        eprintln!("kill {i}: p99 in the 5 s after it {after:?} ({n} requests)");
    }
    assert!(
        failures.is_empty(),
        "{} requests through live nodes failed: {:#?}",
        failures.len(),
        &failures[..failures.len().min(20)]
    );

    // Every key's last acknowledged write reads back through every node,
    // once hints have reached the restarted nodes: as its value, or as a
    // sibling of a later write that was not confirmed but landed.
    for (k, v) in &acked {
        for node in &cluster.nodes {
            wait_for(
                &format!("{k} = {v:?} through {}", node.label()),
                SETTLE,
                || {
                    let reply = node.get_kv(k, None);
                    if values(&reply).contains(v) {
                        Ok(())
                    } else {
                        Err(format!("{} {}", reply.status, reply.text()))
                    }
                },
            );
        }
    }
}

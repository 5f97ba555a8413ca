//! Layout changes on real processes lose nothing: a cluster grown from
//! three nodes to six keeps every key (before the streaming handoff, half of
//! them were stranded on their old owners for good); a join and a leave
//! under a load of 50 clients doing causal read-modify-writes fail no
//! request and lose no acknowledged write; afterwards every partition is
//! held by exactly its new replicas, with equal Merkle roots, still equal
//! once the new nodes restarted.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{Cluster, SETTLE, agent, cli, http, wait_for};

/// How long a change may take to complete on the test machine.
const CHANGE: Duration = Duration::from_secs(90);

fn key(i: usize) -> String {
    format!("grow-{i}")
}

/// The keys of `0..n` that `node` does not answer with their value.
fn unreadable(cluster: &Cluster, node: usize, n: usize) -> Vec<String> {
    (0..n)
        .filter(|&i| {
            let reply = cluster.nodes[node].get_kv(&key(i), None);
            reply.status != 200 || reply.body != format!("value {i}").as_bytes()
        })
        .map(key)
        .collect()
}

#[test]
fn growing_three_nodes_to_six_keeps_every_key() {
    const KEYS: usize = 2000;
    let mut cluster = Cluster::start(3);
    for i in 0..KEYS {
        let put = cluster.nodes[i % 3].put_kv(&key(i), format!("value {i}").as_bytes(), None);
        assert_eq!(put.status, 200, "PUT {}: {}", key(i), put.text());
    }
    let added = cluster.grow(3);
    let admin = cluster.nodes[0].url("");
    for id in cluster.ids(&added) {
        cli(&["cluster", "join", &id, "--node", &admin]);
    }
    let plan = cli(&["cluster", "plan", "--node", &admin]);
    assert!(plan.contains("safe"), "{plan}");
    cli(&["cluster", "commit", "--node", &admin]);
    // Reads find everything throughout: right after the commit…
    let missing = unreadable(&cluster, 3, KEYS);
    assert!(
        missing.is_empty(),
        "{} keys missing through a new node right after the commit, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let all: Vec<usize> = (0..6).collect();
    let took = cluster.wait_change_complete(&all, CHANGE);
    eprintln!("3 → 6 nodes with {KEYS} keys completed in {took:?}");
    // …and after it, through every node.
    for node in 0..6 {
        let missing = unreadable(&cluster, node, KEYS);
        assert!(
            missing.is_empty(),
            "{} of {KEYS} keys missing through n{node} after the change, e.g. {:?}",
            missing.len(),
            missing.first()
        );
    }
    wait_for(
        "every partition on exactly its replicas, with equal roots",
        SETTLE,
        || cluster.try_replicas_agree(&all),
    );
    // The status keeps the change's summary.
    let status = cluster.nodes[3].status();
    assert!(
        status["transfers"]["last"]["keys"].as_u64().unwrap_or(0) > 0,
        "{}",
        status["transfers"]
    );
    // The new nodes restarted read their Merkle trees back from disk: the
    // trees must still be their data's, and every key still readable
    // through every node.
    for &i in &added {
        cluster.nodes[i].stop();
        cluster.restart(i);
    }
    wait_for("equal roots after the new nodes restarted", SETTLE, || {
        cluster.try_replicas_agree(&all)
    });
    for node in 0..6 {
        let missing = unreadable(&cluster, node, KEYS);
        assert!(
            missing.is_empty(),
            "{} of {KEYS} keys missing through n{node} after the restarts, e.g. {:?}",
            missing.len(),
            missing.first()
        );
    }
}

/// A client's record: per key, the value of its last acknowledged write.
type Acked = Arc<Mutex<BTreeMap<String, String>>>;

/// Clients doing causal read-modify-writes on keys of their own (GET for
/// the context, then PUT with it) through every node in turn, until told
/// to stop.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<(u64, Vec<String>)>>,
    acked: Acked,
}

impl Load {
    fn start(prefix: &'static str, urls: Vec<String>, clients: usize, keys_each: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Acked = Arc::default();
        let threads = (0..clients)
            .map(|c| {
                let (stop, acked, urls) = (Arc::clone(&stop), Arc::clone(&acked), urls.clone());
                std::thread::spawn(move || {
                    let agent = agent();
                    let (mut ops, mut failures) = (0u64, Vec::new());
                    let mut seq = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let k = format!("{prefix}-{c}-{}", seq % keys_each);
                        let url = format!("{}/v1/kv/default/{k}", urls[seq % urls.len()]);
                        seq += 1;
                        let read = match http(&agent, "GET", &url, &[], None) {
                            Ok(r) if r.status == 200 || r.status == 404 => r,
                            Ok(r) => {
                                failures.push(format!("GET {k}: {} {}", r.status, r.text()));
                                continue;
                            }
                            Err(e) => {
                                failures.push(format!("GET {k}: {e}"));
                                continue;
                            }
                        };
                        let expected = acked.lock().unwrap().get(&k).cloned();
                        let seen = (read.status == 200).then(|| read.text());
                        if seen != expected {
                            failures.push(format!(
                                "GET {k} read {seen:?}, the last acknowledged write was {expected:?}"
                            ));
                        }
                        let context = read.context.clone().unwrap_or_default();
                        let value = format!("c{c}-{seq}");
                        let headers: Vec<(&str, &str)> = if context.is_empty() {
                            Vec::new()
                        } else {
                            vec![("x-gyre-context", context.as_str())]
                        };
                        match http(&agent, "PUT", &url, &headers, Some(value.as_bytes())) {
                            Ok(r) if r.status == 200 => {
                                acked.lock().unwrap().insert(k, value);
                            }
                            Ok(r) => failures.push(format!("PUT {k}: {} {}", r.status, r.text())),
                            Err(e) => failures.push(format!("PUT {k}: {e}")),
                        }
                        ops += 2;
                    }
                    (ops, failures)
                })
            })
            .collect();
        Self {
            stop,
            threads,
            acked,
        }
    }

    /// Stops the clients; returns the operations made and every failure.
    fn stop(self) -> (u64, Vec<String>, BTreeMap<String, String>) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut ops, mut failures) = (0, Vec::new());
        for t in self.threads {
            let (o, f) = t.join().unwrap();
            ops += o;
            failures.extend(f);
        }
        let acked = self.acked.lock().unwrap().clone();
        (ops, failures, acked)
    }
}

/// Every acknowledged write is what a read of its key returns through
/// every node of `which`.
fn check_acked(cluster: &Cluster, which: &[usize], acked: &BTreeMap<String, String>) {
    for (k, v) in acked {
        for &i in which {
            let reply = cluster.nodes[i].get_kv(k, None);
            assert_eq!(
                (reply.status, reply.text()),
                (200, v.clone()),
                "{k} through {}",
                cluster.nodes[i].label()
            );
        }
    }
}

/// Stages `change` (`gyre cluster` arguments) and commits it while 50
/// clients run through nodes `through`, until the change completed on
/// `all`; no request may fail. Returns the acknowledged writes.
fn change_under_load(
    cluster: &Cluster,
    prefix: &'static str,
    through: &[usize],
    change: &[&str],
    all: &[usize],
) -> BTreeMap<String, String> {
    let admin = cluster.nodes[0].url("");
    let load = Load::start(prefix, urls(cluster, through), 50, 4);
    wait_for("the clients to make progress", SETTLE, || {
        let n = load.acked.lock().unwrap().len();
        if n >= 100 {
            Ok(())
        } else {
            Err(format!("{n} keys written"))
        }
    });
    let mut stage = vec!["cluster"];
    stage.extend_from_slice(change);
    stage.extend_from_slice(&["--node", &admin]);
    cli(&stage);
    cli(&["cluster", "commit", "--node", &admin]);
    let took = cluster.wait_change_complete(all, CHANGE);
    let (ops, failures, acked) = load.stop();
    // What the change moved never exceeds what it promised: writes made
    // meanwhile are counted apart.
    for &i in all {
        let t = &cluster.nodes[i].status()["transfers"];
        let count = |field: &str| t[field].as_u64().unwrap_or(0);
        let (done, total, extra) = (
            count("bytes_done"),
            count("bytes_total"),
            count("bytes_extra"),
        );
        assert!(
            done <= total,
            "{}: {done} B done of {total} B ({extra} B more): {t}",
            cluster.nodes[i].label()
        );
        eprintln!(
            "{prefix}: {} moved {done} B of {total} B, +{extra} B written meanwhile",
            cluster.nodes[i].label()
        );
    }
    eprintln!(
        "{prefix} under load: {ops} requests, {} failed, change took {took:?}",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {ops} requests failed during the {prefix}: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    acked
}

fn urls(cluster: &Cluster, which: &[usize]) -> Vec<String> {
    which.iter().map(|&i| cluster.nodes[i].url("")).collect()
}

#[test]
fn a_join_and_a_leave_under_load_fail_nothing_and_lose_nothing() {
    let mut cluster = Cluster::start(3);
    let added = cluster.grow(1)[0];

    // Join a fourth node under load, then an original one leaves.
    let all = [0, 1, 2, added];
    let id = cluster.ids(&[added])[0].clone();
    let acked = change_under_load(&cluster, "join", &all, &["join", &id], &all);
    check_acked(&cluster, &all, &acked);
    wait_for("equal roots on exactly the new replicas", SETTLE, || {
        cluster.try_replicas_agree(&all)
    });
    let leaver = 1;
    let id = cluster.ids(&[leaver])[0].clone();
    let acked = change_under_load(&cluster, "leave", &[0, 2, added], &["leave", &id], &all);
    let stay = [0, 2, added];
    check_acked(&cluster, &stay, &acked);
    wait_for(
        "equal roots on exactly the new replicas; the leaver holds nothing",
        SETTLE,
        || {
            let left = cluster.nodes[leaver].try_trees()?;
            if !left.is_empty() {
                return Err(format!("the leaver still holds {} trees", left.len()));
            }
            cluster.try_replicas_agree(&stay)
        },
    );
    // Every node shows it as left (it can be stopped), the CLI says so.
    wait_for("every node to show the leaver as left", SETTLE, || {
        for &n in &stay {
            let status = cluster.nodes[n].try_status()?;
            let shown = common::members(&status)
                .into_iter()
                .find(|m| m["id"] == id.as_str())
                .map(|m| m["status"].clone());
            if shown != Some(serde_json::json!("left")) {
                return Err(format!("n{n} shows {shown:?}"));
            }
        }
        Ok(())
    });
    let admin = cluster.nodes[0].url("");
    let printed = common::try_cli(&["cluster", "status", "--node", &admin]).unwrap();
    assert!(
        printed.contains(&format!(
            "{id} left: every partition it held was handed off"
        )),
        "{printed}"
    );
}

//! Partition handoff on real processes, throttled so that it can be caught
//! mid-stream: a joining node killed with SIGKILL while it streams resumes
//! from its cursors (re-asking at most one chunk per stream it had open);
//! an old replica killed while it serves is replaced by another; an abort
//! mid-stream returns to the old layout (ending a pacing wait at once), the
//! new node drops its partial copies, and nothing deleted comes back; a
//! throttle lifted mid-stream takes effect at once; a change stacked on one
//! mid-stream keeps what was already streamed. Every key is read back
//! through every node afterwards.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Cluster, SETTLE, cli, streaming, wait_for};

const KEYS: usize = 1200;
const DELETED: usize = 100;
/// Throttle of the joining node while the test wants to catch it
/// mid-stream, bytes per second.
const SLOW: &str = "150000";
const CHANGE: Duration = Duration::from_secs(120);
/// A throttle so low that one chunk's pacing (a whole partition here,
/// about 30 kB: five minutes) outlasts the test: whatever ends a change or
/// lifts the throttle must end the pacing wait too.
const CRAWL: &str = "100";

fn key(i: usize) -> String {
    format!("handoff-{i}")
}

fn value(i: usize) -> Vec<u8> {
    let mut v = format!("value {i} ").into_bytes();
    v.resize(2048, b'.');
    v
}

/// Three nodes holding `KEYS` keys of 2 KiB, the first `DELETED` of them
/// deleted, and one more node started (not joined), throttled to `SLOW`.
fn setup() -> (Cluster, usize) {
    let mut cluster = Cluster::start(3);
    for i in 0..KEYS {
        let put = cluster.nodes[i % 3].put_kv(&key(i), &value(i), None);
        assert_eq!(put.status, 200, "{}", put.text());
    }
    for i in 0..DELETED {
        let del = cluster.nodes[0].call("DELETE", &format!("/v1/kv/default/{}", key(i)), &[], None);
        assert!(del.status < 300, "{}", del.text());
    }
    let new = cluster.grow(1)[0];
    throttle(&cluster, new, SLOW);
    (cluster, new)
}

/// Sets the byte rate of `node` alone.
fn throttle(cluster: &Cluster, node: usize, rate: &str) {
    let url = cluster.nodes[node].url("");
    cli(&[
        "cluster", "throttle", "--rate", rate, "--only", "--node", &url,
    ]);
}

fn join(cluster: &Cluster, node: usize) {
    let admin = cluster.nodes[0].url("");
    let id = cluster.ids(&[node])[0].clone();
    cli(&["cluster", "join", &id, "--node", &admin]);
    cli(&["cluster", "commit", "--node", &admin]);
}

/// Waits until `node` has received more than `min_bytes` and still streams.
fn wait_mid_stream(cluster: &Cluster, node: usize, min_bytes: u64) -> serde_json::Value {
    wait_for("the new node to be mid-stream", SETTLE, || {
        let t = cluster.nodes[node].try_status()?["transfers"].clone();
        let streaming = streaming(&t);
        let done = t["bytes_done"].as_u64().unwrap_or(0);
        if streaming > 0 && done > min_bytes {
            Ok(t)
        } else {
            Err(format!("{t}"))
        }
    })
}

/// Every live key reads back with its value and every deleted key stays
/// deleted, through each node of `which`.
fn check_keys(cluster: &Cluster, which: &[usize]) {
    for &n in which {
        for i in 0..KEYS {
            let reply = cluster.nodes[n].get_kv(&key(i), None);
            if i < DELETED {
                assert_eq!(reply.status, 404, "{} came back through n{n}", key(i));
            } else {
                assert_eq!(
                    reply.status,
                    200,
                    "{} through n{n}: {}",
                    key(i),
                    reply.text()
                );
                assert_eq!(reply.body, value(i), "{} through n{n}", key(i));
            }
        }
    }
}

#[test]
fn a_target_killed_mid_stream_resumes_from_its_cursors() {
    let (mut cluster, new) = setup();
    join(&cluster, new);
    let before = wait_mid_stream(&cluster, new, 100_000);
    cluster.nodes[new].kill9();
    cluster.restart(new);
    let all = [0, 1, 2, new];
    cluster.wait_change_complete(&all, CHANGE);
    let last = cluster.nodes[new].status()["transfers"]["last"].clone();
    let resent = last["resent_chunks"].as_u64().unwrap();
    let inbound = before["max_inbound"].as_u64().unwrap();
    assert!(
        resent <= inbound,
        "{resent} chunks re-sent for at most {inbound} streams open at the kill: {last}"
    );
    check_keys(&cluster, &all);
    wait_for("equal roots on exactly the new replicas", SETTLE, || {
        cluster.try_replicas_agree(&all)
    });
}

#[test]
fn a_source_killed_mid_stream_is_replaced_by_another_replica() {
    let (mut cluster, new) = setup();
    join(&cluster, new);
    let transfers = wait_mid_stream(&cluster, new, 100_000);
    // The source of a partition being streamed.
    let source = transfers["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["stage"] == "stream")
        .and_then(|p| p["source"].as_str())
        .map(str::to_owned)
        .unwrap();
    let victim = (0..3).find(|&i| cluster.nodes[i].id() == source).unwrap();
    cluster.nodes[victim].kill9();
    // The stream goes on from the other replicas while it is down…
    let others: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    wait_for(
        "the transfer to go on without the killed source",
        SETTLE,
        || {
            let t = cluster.nodes[new].try_status()?["transfers"].clone();
            let done = t["bytes_done"].as_u64().unwrap_or(0);
            if done > transfers["bytes_done"].as_u64().unwrap_or(0) + 100_000 {
                Ok(())
            } else {
                Err(format!("{t}"))
            }
        },
    );
    // …and completes once it is back (every member must say it is filled).
    cluster.restart(victim);
    let all = [0, 1, 2, new];
    cluster.wait_change_complete(&all, CHANGE);
    check_keys(&cluster, &all);
    check_keys(&cluster, &others);
    wait_for("equal roots on exactly the new replicas", SETTLE, || {
        cluster.try_replicas_agree(&all)
    });
}

#[test]
fn an_abort_mid_stream_returns_to_the_old_layout_and_resurrects_nothing() {
    let (cluster, new) = setup();
    // The abort must end the pacing wait, not just the next chunk.
    throttle(&cluster, new, CRAWL);
    join(&cluster, new);
    wait_mid_stream(&cluster, new, 0);
    let admin = cluster.nodes[0].url("");
    // Watching a change that crawls gives up when told to, and says so.
    let watched = common::try_cli(&[
        "cluster",
        "transfers",
        "--watch",
        "--timeout",
        "1",
        "--node",
        &admin,
    ])
    .unwrap_err();
    assert!(watched.contains("still in flight after 1s"), "{watched}");
    cli(&["cluster", "abort", "--node", &admin]);
    let all = [0, 1, 2, new];
    cluster.wait_change_complete(&all, CHANGE);
    let status = cluster.nodes[0].status();
    let new_id = cluster.ids(&[new])[0].clone();
    for m in common::members(&status) {
        assert_eq!(m["in_layout"] == true, m["id"] != new_id.as_str(), "{m}");
    }
    wait_for(
        "the aborted node to drop its partial copies",
        SETTLE,
        || match cluster.nodes[new].try_trees()? {
            t if t.is_empty() => Ok(()),
            t => Err(format!("{} trees left", t.len())),
        },
    );
    check_keys(&cluster, &all);
    wait_for("equal roots on the old replicas", SETTLE, || {
        cluster.try_replicas_agree(&[0, 1, 2])
    });
    // Once a change completed there is nothing to abort: only a reverse
    // change undoes it.
    let again = common::try_cli(&["cluster", "abort", "--node", &admin]).unwrap_err();
    assert!(again.contains("no layout change is in flight"), "{again}");
}

#[test]
fn a_throttle_raised_mid_stream_takes_effect_at_once() {
    let (cluster, new) = setup();
    throttle(&cluster, new, CRAWL);
    join(&cluster, new);
    wait_mid_stream(&cluster, new, 0);
    // Lifted, the streams go on now, not after the pacing booked at CRAWL.
    throttle(&cluster, new, "0");
    let all = [0, 1, 2, new];
    cluster.wait_change_complete(&all, CHANGE);
    check_keys(&cluster, &all);
}

#[test]
fn a_change_stacked_mid_stream_keeps_what_was_streamed() {
    let (mut cluster, new) = setup();
    let later = cluster.grow(1)[0];
    join(&cluster, new);
    let before = wait_mid_stream(&cluster, new, 900_000);
    let streamed = before["keys_done"].as_u64().unwrap();
    // A second join, committed while the first one streams.
    join(&cluster, later);
    let all = [0, 1, 2, new, later];
    cluster.wait_change_complete(&all, CHANGE);
    // What the change on top streamed to the first new node: what it holds
    // now, less what it had streamed and kept. Starting over would stream
    // all it holds again.
    let last = cluster.nodes[new].status()["transfers"]["last"].clone();
    let received = last["keys"].as_u64().unwrap();
    let held = (0..KEYS)
        .filter(|&i| cluster.nodes[new].holds(&key(i)).unwrap())
        .count() as u64;
    assert!(
        received + streamed / 4 <= held,
        "the stacked change streamed {received} objects to a node holding {held}, \
         which had streamed {streamed} before it: {last}"
    );
    check_keys(&cluster, &all);
    wait_for("equal roots on exactly the new replicas", SETTLE, || {
        cluster.try_replicas_agree(&all)
    });
}

//! SIGKILL in the middle of a write load loses no acknowledged write: once
//! the node is back and hints are delivered, every write answered 200 is
//! read back from the cluster, and sits on n_val replicas.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Cluster, SETTLE, http, wait_for};

/// Concurrent writers.
const WRITERS: usize = 3;

/// Acknowledged writes to wait for before the kill, while the node is
/// down, and after it is back.
const PHASE: usize = 150;

/// What the writers share.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    acked: AtomicUsize,
    failed: AtomicUsize,
    /// Every acknowledged key and its value.
    acknowledged: Mutex<BTreeMap<String, String>>,
}

/// Writes unique keys, w=2, through the nodes of `urls` in turn, until
/// told to stop; records what was acknowledged.
fn writer(t: usize, urls: Vec<String>, load: Arc<Load>) {
    let agent = common::agent();
    let mut i = 0;
    while !load.stop.load(Ordering::Relaxed) {
        let key = format!("load-{t}-{i}");
        let value = format!("value {t} {i}");
        let url = format!("{}/v1/kv/default/{key}?w=2", urls[(t + i) % urls.len()]);
        match http(&agent, "PUT", &url, &[], Some(value.as_bytes())) {
            Ok(reply) if reply.status == 200 => {
                load.acknowledged.lock().unwrap().insert(key, value);
                load.acked.fetch_add(1, Ordering::Relaxed);
            }
            // Refused, reset, timed out, 503: not acknowledged, so it may
            // or may not exist; nothing is claimed of it.
            _ => {
                load.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        i += 1;
    }
}

#[test]
fn no_acknowledged_write_is_lost_when_a_node_is_killed_mid_load() {
    let mut cluster = Cluster::start(4);
    let victim = 3;
    let victim_id = cluster.nodes[victim].id().to_owned();
    let others = [0, 1, 2];
    // The writers go through every node, the victim too: its requests in
    // flight die with it, and while it is down its port refuses.
    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.url("")).collect();
    let load = Arc::new(Load::default());
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (urls, load) = (urls.clone(), Arc::clone(&load));
            std::thread::spawn(move || writer(t, urls, load))
        })
        .collect();
    let acked_at_least = |n: usize, what: &str| {
        let load = Arc::clone(&load);
        wait_for(
            &format!("{n} acknowledged writes ({what})"),
            Duration::from_secs(60),
            || {
                let (acked, failed) = (
                    load.acked.load(Ordering::Relaxed),
                    load.failed.load(Ordering::Relaxed),
                );
                if acked >= n {
                    Ok(())
                } else {
                    Err(format!("{acked} acknowledged, {failed} failed"))
                }
            },
        );
    };

    acked_at_least(PHASE, "before the kill");
    cluster.nodes[victim].kill9();
    let at_kill = load.acked.load(Ordering::Relaxed);
    acked_at_least(at_kill + PHASE, "while the victim is down");
    cluster.restart(victim);
    let at_restart = load.acked.load(Ordering::Relaxed);
    acked_at_least(at_restart + PHASE, "after the restart");
    load.stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acknowledged = load.acknowledged.lock().unwrap().clone();
    eprintln!(
        "{} writes acknowledged ({at_kill} before the kill, {} while down), {} not",
        acknowledged.len(),
        at_restart - at_kill,
        load.failed.load(Ordering::Relaxed)
    );

    // Settle: the victim is back in every view and no node holds a hint.
    cluster.wait_seen(&others, &victim_id, true);
    for node in &cluster.nodes {
        wait_for(
            &format!("{} to hold no hints", node.label()),
            SETTLE,
            || match node.try_metric("gyre_hints_pending")? {
                0 => Ok(()),
                n => Err(format!("{n} hints pending")),
            },
        );
    }

    // The victim's share of the writes made while it was down went to
    // fallbacks as hints.
    let fallbacks: u64 = cluster
        .nodes
        .iter()
        .map(|n| n.metric("gyre_sloppy_quorum_fallbacks_total"))
        .sum();
    assert!(
        fallbacks > 0,
        "no write went to a fallback while {victim_id} was down"
    );

    // Every acknowledged write reads back, with every replica answering.
    for (i, (key, value)) in acknowledged.iter().enumerate() {
        let node = &cluster.nodes[i % cluster.nodes.len()];
        let got = node.get_kv(key, Some(3));
        assert_eq!(
            (got.status, got.text()),
            (200, value.clone()),
            "GET {key} r=3 through {}",
            node.label()
        );
    }
    // And each sits on exactly n_val = 3 replicas (hints handed over,
    // anti-entropy done): none missing.
    wait_for(
        "every acknowledged key on exactly 3 nodes' own replicas",
        SETTLE,
        || {
            for key in acknowledged.keys() {
                let mut held = Vec::new();
                for node in &cluster.nodes {
                    if node.holds(key)? {
                        held.push(node.label().to_owned());
                    }
                }
                if held.len() != 3 {
                    return Err(format!("{key} is held by {held:?}"));
                }
            }
            Ok(())
        },
    );
}

//! A node killed with SIGKILL: the others keep taking writes (a fallback
//! holds a hint for it), and once it is back on its data directory the
//! hints reach it, so it holds what was written while it was away.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Cluster, Options, SETTLE, wait_for};

/// Keys written while the victim is down.
const KEYS: usize = 200;

fn key(i: usize) -> String {
    format!("while-down-{i}")
}

fn value(i: usize) -> String {
    format!("value {i}")
}

#[test]
fn a_node_back_from_kill9_gets_the_writes_it_missed_as_hints() {
    // Four nodes, n_val 3: every key has a fallback beyond its primaries,
    // which is where a missed write waits as a hint (with three nodes
    // there is none). Anti-entropy is off (600 s), and nothing is read
    // through the cluster before the victim's own replica is checked
    // (reads repair replicas): hints are the only way the writes reach it.
    let mut cluster = Cluster::start_with(
        4,
        &Options {
            anti_entropy_secs: 600,
            ..Options::default()
        },
    );
    let (victim, live) = (3, [0, 1, 2]);
    let victim_id = cluster.nodes[victim].id().to_owned();
    let before = cluster.nodes[victim].put_kv("before", b"b", Some(3));
    assert_eq!(before.status, 200, "{}", before.text());

    cluster.nodes[victim].kill9();
    // Until the others notice, writes wait for the victim's timeout; once
    // they have, they go straight to a fallback.
    cluster.wait_seen(&live, &victim_id, false);
    for i in 0..KEYS {
        let node = &cluster.nodes[live[i % 3]];
        let put = node.put_kv(&key(i), value(i).as_bytes(), Some(2));
        assert_eq!(
            put.status,
            200,
            "PUT {} w=2 through {} while {victim_id} is down: {}",
            key(i),
            node.label(),
            put.text()
        );
    }
    let pending: u64 = live
        .iter()
        .map(|&i| {
            cluster.nodes[i]
                .member(&victim_id)
                .unwrap()
                .map_or(0, |m| m["hints_pending"].as_u64().unwrap_or(0))
        })
        .sum();
    assert!(
        pending > 0,
        "no node holds a hint for {victim_id} after {KEYS} writes while it was down"
    );

    cluster.restart(victim);
    assert_eq!(
        cluster.nodes[victim].id(),
        victim_id,
        "a restart on the same data directory keeps the node id"
    );
    cluster.wait_seen(&live, &victim_id, true);
    for &i in &live {
        let node = &cluster.nodes[i];
        wait_for(
            &format!("{} to deliver its hints for {victim_id}", node.label()),
            SETTLE,
            || match node.member(&victim_id)? {
                Some(m) if m["hints_pending"] == 0 => Ok(()),
                other => Err(format!("{victim_id} is {other:?}")),
            },
        );
    }
    let delivered: u64 = live
        .iter()
        .map(|&i| cluster.nodes[i].metric("gyre_hints_delivered_total"))
        .sum();
    assert!(
        delivered > 0,
        "{pending} hints were pending, none counted delivered"
    );

    // Each key is on exactly n_val = 3 nodes' own replicas: the victim
    // holds every key it is a primary of (the fallbacks kept their hints
    // apart from their replicas, and handed them over).
    let holders = |k: &str| -> Result<Vec<usize>, String> {
        let mut held = Vec::new();
        for i in 0..4 {
            if cluster.nodes[i].holds(k)? {
                held.push(i);
            }
        }
        Ok(held)
    };
    let on_victim = wait_for(
        "every key written while the victim was down on exactly 3 replicas",
        SETTLE,
        || {
            let mut on_victim = 0;
            for i in 0..KEYS {
                let held = holders(&key(i))?;
                if held.len() != 3 {
                    return Err(format!("{} is held by nodes {held:?}", key(i)));
                }
                on_victim += usize::from(held.contains(&victim));
            }
            Ok(on_victim)
        },
    );
    // A quarter of the keys have no replica on it, the rest do.
    assert!(
        on_victim > KEYS / 2 && on_victim < KEYS,
        "the victim holds {on_victim} of {KEYS} keys; n_val 3 of 4 nodes places about 3/4 on it"
    );
    let restarted = &cluster.nodes[victim];
    for i in 0..KEYS {
        if restarted.holds(&key(i)).unwrap() {
            let local = restarted.try_local(&key(i)).unwrap().unwrap();
            assert_eq!(local, [value(i)], "{} in {victim_id}'s own replica", key(i));
        }
    }

    // It answers reads of them, as do the others.
    for i in 0..KEYS {
        for node in [&cluster.nodes[victim], &cluster.nodes[live[i % 3]]] {
            let got = node.get_kv(&key(i), Some(2));
            assert_eq!(
                (got.status, got.text()),
                (200, value(i)),
                "GET {} r=2 through {}",
                key(i),
                node.label()
            );
        }
    }
    let got = cluster.nodes[victim].get_kv("before", Some(3));
    assert_eq!((got.status, got.text().as_str()), (200, "b"));
}

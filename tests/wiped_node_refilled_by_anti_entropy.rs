//! A node whose data directory is lost comes back under a new id; once
//! `gyre cluster replace` and `commit` put the new id in the old one's
//! place, partition handoff (then anti-entropy) refills it until its Merkle
//! roots equal the others'. The plan is safe: the old replica sets that
//! hold the lost node are not judged, the change being their remedy.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Cluster, SETTLE, cli, wait_for};

const KEYS: usize = 300;

fn key(i: usize) -> String {
    format!("refill-{i}")
}

/// How many of the keys `node` lacks in its own replica.
fn missing(cluster: &Cluster, node: usize) -> Result<Vec<String>, String> {
    let mut missing = Vec::new();
    for i in 0..KEYS {
        if !cluster.nodes[node].holds(&key(i))? {
            missing.push(key(i));
        }
    }
    Ok(missing)
}

#[test]
fn a_wiped_node_replaced_under_a_new_id_is_refilled_by_anti_entropy() {
    let mut cluster = Cluster::start(3);
    let (victim, others) = (2, [0, 1]);
    for i in 0..KEYS {
        let node = &cluster.nodes[i % 3];
        let put = node.put_kv(&key(i), format!("value {i}").as_bytes(), None);
        assert_eq!(put.status, 200, "PUT {}: {}", key(i), put.text());
    }
    // n_val 3 on 3 nodes: every node holds every key.
    for node in 0..3 {
        wait_for(
            &format!("n{node} to hold all {KEYS} keys"),
            SETTLE,
            || match missing(&cluster, node)? {
                m if m.is_empty() => Ok(()),
                m => Err(format!("{} missing, e.g. {}", m.len(), m[0])),
            },
        );
    }
    let old_id = cluster.nodes[victim].id().to_owned();
    let version = cluster.wait_layout_agreed(&[0, 1, 2], 1);

    cluster.nodes[victim].kill9();
    let dir = cluster.nodes[victim].data_dir().to_path_buf();
    std::fs::remove_dir_all(&dir).unwrap();
    cluster.restart(victim);
    let new_id = cluster.nodes[victim].id().to_owned();
    assert_ne!(new_id, old_id, "an empty data directory gets a new node id");
    assert_eq!(
        missing(&cluster, victim).unwrap().len(),
        KEYS,
        "the wiped node starts empty"
    );

    // The others must know the new id through gossip, and the old one as
    // down (a member that is up cannot be removed).
    cluster.wait_seen(&others, &new_id, true);
    cluster.wait_seen(&others, &old_id, false);
    let admin = cluster.nodes[0].url("");
    // Liveness is judged at the time of the request, as the status was.
    cli(&["cluster", "replace", &old_id, &new_id, "--node", &admin]);
    cli(&["cluster", "commit", "--node", &admin]);
    let new_version = cluster.wait_layout_agreed(&[0, 1, 2], version + 1);
    let status = cluster.nodes[0].status();
    assert!(
        common::members(&status)
            .iter()
            .all(|m| m["id"] != old_id || m["in_layout"] == false),
        "layout {new_version} still counts {old_id}: {status}"
    );

    wait_for(
        "anti-entropy to refill the new node and every node's Merkle roots to agree",
        SETTLE,
        || {
            let m = missing(&cluster, victim)?;
            if !m.is_empty() {
                return Err(format!(
                    "the new node lacks {} keys, e.g. {}",
                    m.len(),
                    m[0]
                ));
            }
            let trees: Vec<Vec<String>> = cluster
                .nodes
                .iter()
                .map(|n| n.try_trees())
                .collect::<Result<_, _>>()?;
            if trees[0].is_empty() || trees.iter().any(|t| *t != trees[0]) {
                let differ: Vec<String> = trees[2]
                    .iter()
                    .filter(|t| !trees[0].contains(t))
                    .cloned()
                    .collect();
                return Err(format!(
                    "{}, {}, {} trees; the new node's that n0 lacks: {differ:?}",
                    trees[0].len(),
                    trees[1].len(),
                    trees[2].len()
                ));
            }
            Ok(())
        },
    );
    for i in 0..KEYS {
        let local = cluster.nodes[victim].try_local(&key(i)).unwrap();
        assert_eq!(local, Some(vec![format!("value {i}")]), "{}", key(i));
    }
}

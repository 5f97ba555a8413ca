//! A rolling restart under load: each node of three in turn stopped
//! cleanly (SIGTERM) and started again on its data, under 50 clients doing
//! causal read-modify-writes, blind `SET`s and `DEL`s through every node.
//! No request through a node that was not restarting fails, the history
//! checks out against the state read at R = 3 afterwards, and the error
//! rate through the restarting node is reported.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use common::{Cluster, SETTLE, wait_acked, wait_for};
use gyre_nemesis::check::check;
use gyre_nemesis::history::{Entry, Outcome};
use gyre_nemesis::workload::{Workload, final_state};

const CLIENTS: u32 = 50;

/// Acknowledged operations between two restarts.
const PHASE: u64 = 1_500;

#[test]
fn a_rolling_restart_fails_no_request_through_the_other_nodes() {
    let seed = std::env::var("GYRE_NEMESIS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    eprintln!("workload seed {seed} (GYRE_NEMESIS_SEED={seed} replays its choices)");
    let mut cluster = Cluster::start(3);
    let resp: Vec<SocketAddr> = cluster.nodes.iter().map(|n| n.ep.resp).collect();
    let nodes = Arc::new(RwLock::new(resp));
    let keys: Vec<String> = (0..16).map(|i| format!("k{i}")).collect();
    let workload = Workload::start(CLIENTS, &nodes, &keys, seed);
    let start = workload.started();
    wait_acked(&workload, PHASE, "the workload to get going");
    // Per node: from when it was told to stop until its ready line.
    let mut windows = Vec::new();
    for i in 0..cluster.nodes.len() {
        let from = start.elapsed();
        cluster.nodes[i].stop();
        cluster.restart_for_clients(i, &nodes);
        windows.push((i, from, start.elapsed()));
        let at = workload.acked();
        wait_acked(&workload, at + PHASE, "operations after the restart");
    }
    let history = workload.stop();

    let restarting = |node: usize, start_us: u64, end_us: u64| {
        windows.iter().any(|&(i, from, to)| {
            // A connection made before the stop may fail a little after
            // the node is back (the client finds out on its next use).
            let to = to + Duration::from_secs(3);
            i == node && start_us <= to.as_micros() as u64 && end_us >= from.as_micros() as u64
        })
    };
    let (mut elsewhere, mut through_restarting, mut sent_to_restarting) = (Vec::new(), 0, 0);
    for entry in &history {
        let Entry::Op(op) = entry else { continue };
        let during = restarting(op.node, op.start_us, op.end_us);
        if during {
            sent_to_restarting += 1;
        }
        if op.outcome != Outcome::Ok {
            if during {
                through_restarting += 1;
            } else {
                elsewhere.push(op.clone());
            }
        }
    }
    wait_for("the replicas to agree", SETTLE, || {
        cluster.try_replicas_agree(&[0, 1, 2])
    });
    let fin = final_state(cluster.nodes[0].ep.resp, &keys, 3).unwrap();
    let report = check(&history, &fin);
    eprintln!(
        "{:?}; restarts (node, from, to): {windows:?}; through the restarting node: {through_restarting} of {sent_to_restarting} not ok",
        report.stats
    );
    assert!(
        report.is_ok(),
        "seed {seed}: {report}\nfinal state: {fin:?}"
    );
    assert!(
        elsewhere.is_empty(),
        "{} operations through nodes that were not restarting did not succeed: {:#?}",
        elsewhere.len(),
        &elsewhere[..elsewhere.len().min(10)]
    );
}

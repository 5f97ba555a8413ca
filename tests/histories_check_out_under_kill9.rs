//! The real-host run in small, on loopback: four clients doing causal
//! read-modify-writes, blind `SET`s and `DEL`s on eight keys through three
//! nodes (the `redis` client library), one node killed -9 mid-run and
//! restarted (the clients then use it again). Once the replicas agree, the state read at R = 3 and the
//! recorded history pass every rule of `gyre_nemesis::check`: nothing
//! acknowledged lost, nothing superseded back, no value nobody wrote,
//! siblings only from writes that did not see each other.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use common::{Cluster, SETTLE, wait_acked, wait_for};
use gyre_nemesis::check::check;
use gyre_nemesis::history::write_jsonl;
use gyre_nemesis::workload::{Workload, final_state};

const CLIENTS: u32 = 4;

/// Acknowledged operations to wait for in each phase: before the kill,
/// while the node is down, after it is back.
const PHASE: u64 = 400;

#[test]
fn a_kill9_mid_workload_breaks_no_rule_of_the_checker() {
    let seed = std::env::var("GYRE_NEMESIS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    eprintln!("workload seed {seed} (GYRE_NEMESIS_SEED={seed} replays its choices)");
    let mut cluster = Cluster::start(3);
    let resp: Vec<SocketAddr> = cluster.nodes.iter().map(|n| n.ep.resp).collect();
    let nodes = Arc::new(RwLock::new(resp));
    let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
    let workload = Workload::start(CLIENTS, &nodes, &keys, seed);
    wait_acked(&workload, PHASE, "the workload to get going");
    cluster.nodes[1].kill9();
    let at_kill = workload.acked();
    wait_acked(
        &workload,
        at_kill + PHASE,
        "operations through the live nodes",
    );
    // The restarted process listens on new ports: clients follow.
    cluster.restart_for_clients(1, &nodes);
    let at_restart = workload.acked();
    wait_acked(
        &workload,
        at_restart + PHASE,
        "operations after the restart",
    );
    let history = workload.stop();

    wait_for("the replicas to agree", SETTLE, || {
        cluster.try_replicas_agree(&[0, 1, 2])
    });
    let fin = final_state(cluster.nodes[0].ep.resp, &keys, 3).unwrap();
    let report = check(&history, &fin);
    let saved = cluster.scratch("history.jsonl");
    write_jsonl(&mut std::fs::File::create(&saved).unwrap(), &history).unwrap();
    eprintln!("{:?}; history in {}", report.stats, saved.display());
    assert!(
        report.is_ok(),
        "seed {seed}: {report}\nfinal state: {fin:?}"
    );
    assert!(report.stats.acknowledged_puts > 0, "{:?}", report.stats);
}

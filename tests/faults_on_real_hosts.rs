//! Faults on real hosts: nodes in network namespaces of their own, on a
//! bridge (`gyre_nemesis::hosts`), talking QUIC across it; clients in the
//! root namespace doing causal read-modify-writes, blind `SET`s and `DEL`s
//! through every node; a seeded nemesis (`gyre_nemesis::nemesis`) killing
//! (-9) and pausing (SIGSTOP) nodes, cutting the network (halves, one node
//! alone, overlapping majorities, one way) and losing packets, one fault
//! at a time. After each fault's heal, how long until every node sees
//! every node up again is timed (within the calm before the next fault),
//! and reported per kind of fault. After the last heal: every replica's
//! Merkle roots equal (the time it took is reported), no hint left, and
//! the history (written as JSON
//! lines) checked against the state read at R = N: nothing acknowledged
//! lost, nothing superseded back, no value nobody wrote, siblings only
//! from writes that did not see each other.
//!
//! Needs root, `ip` and `nft`: a system test (`tests/system.sh`).
//!
//! Environment (long runs): `GYRE_NEMESIS_SEEDS` (runs per cluster size,
//! default 1), `GYRE_NEMESIS_SEED` (the first seed, default 1; a failure
//! names the seed that replays it), `GYRE_NEMESIS_SECONDS` (faults per
//! run, default 30), `GYRE_NEMESIS_OUT` (a directory to keep each run's
//! history and summary in).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use common::{Cluster, Options, SETTLE, members, wait_for};
use gyre_nemesis::check::check;
use gyre_nemesis::history::{Entry, FaultEvent, write_jsonl};
use gyre_nemesis::hosts::Hosts;
use gyre_nemesis::nemesis::{Fault, Nemesis};
use gyre_nemesis::workload::{Workload, final_state};

/// Clients per run.
const CLIENTS: u32 = 8;

/// How long the replicas may take to agree after the heal.
const CONVERGE: Duration = Duration::from_secs(30);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn hosts(n: usize) -> Hosts {
    Hosts::create(n)
        .unwrap_or_else(|e| panic!("{e}: run it through tests/system.sh --install, as root"))
}

/// What one run saw.
#[derive(Debug)]
struct Run {
    seed: u64,
    faults: BTreeMap<&'static str, u32>,
    /// Per kind of fault, after each heal: how long until every node saw
    /// every node up (`None`: not within the calm before the next fault).
    recovered: BTreeMap<&'static str, Vec<Option<Duration>>>,
    converged: Duration,
    stats: gyre_nemesis::check::Stats,
}

/// Whether every node answers and sees every node up.
fn all_see_all_up(cluster: &Cluster) -> bool {
    cluster.nodes.iter().all(|n| {
        n.try_status()
            .is_ok_and(|s| members(&s).iter().all(|m| m["up"] == true))
    })
}

/// Waits out `calm` from `healed`, noting when every node first saw every
/// node up.
fn calm_and_time_recovery(cluster: &Cluster, healed: Instant, calm: Duration) -> Option<Duration> {
    let until = healed + calm;
    let mut recovered = None;
    loop {
        if recovered.is_none() && all_see_all_up(cluster) {
            recovered = Some(healed.elapsed());
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return recovered;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// `recovered` summed up: "n healed, m seen all up within the calm, p50
/// / max" per kind.
fn recovery_report(recovered: &BTreeMap<&'static str, Vec<Option<Duration>>>) -> String {
    recovered
        .iter()
        .map(|(kind, times)| {
            let mut within: Vec<Duration> = times.iter().flatten().copied().collect();
            within.sort_unstable();
            let seen = format!(
                "{kind}: {} of {} within the calm",
                within.len(),
                times.len()
            );
            match (within.get(within.len() / 2), within.last()) {
                (Some(p50), Some(max)) => format!(
                    "{seen}, p50 {:.2} s, max {:.2} s",
                    p50.as_secs_f64(),
                    max.as_secs_f64()
                ),
                _ => seen,
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Sums `gyre_hints_pending_by_target` in node `i`'s metrics.
fn hints_pending(cluster: &Cluster, i: usize) -> Result<u64, String> {
    let reply = cluster.nodes[i].try_call("GET", "/metrics", &[], None)?;
    Ok(reply
        .text()
        .lines()
        .filter(|l| l.starts_with("gyre_hints_pending_by_target"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

fn run(nodes: usize, seed: u64, seconds: u64) -> Run {
    eprintln!(
        "{nodes} nodes, seed {seed} (GYRE_NEMESIS_SEED={seed} replays it), {seconds} s of faults"
    );
    let hosts = hosts(nodes);
    let options = Options {
        hosts: hosts.hosts().to_vec(),
        // Clients reach the nodes on a bridge only this test can reach.
        extra_flags: vec!["--insecure-no-auth".to_owned()],
        ..Options::default()
    };
    let mut cluster = Cluster::start_with(nodes, &options);
    let all: Vec<usize> = (0..nodes).collect();
    // The cut is real: a node alone is seen down by the others, and up
    // again once healed.
    let others: Vec<usize> = (1..nodes).collect();
    let first = cluster.nodes[0].id().to_owned();
    hosts.partition(&[vec![0], others.clone()]).unwrap();
    cluster.wait_seen(&others, &first, false);
    hosts.heal().unwrap();
    cluster.wait_seen(&others, &first, true);
    let resp: Vec<SocketAddr> = cluster.nodes.iter().map(|n| n.ep.resp).collect();
    let addrs = Arc::new(RwLock::new(resp));
    let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
    let workload = Workload::start(CLIENTS, &addrs, &keys, seed);
    let start = workload.started();

    let mut nemesis = Nemesis::new(seed, nodes);
    let mut events = Vec::new();
    let mut faults: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut recovered: BTreeMap<&'static str, Vec<Option<Duration>>> = BTreeMap::new();
    let event = |phase: &str, fault: &Fault| {
        Entry::Fault(FaultEvent {
            at_us: start.elapsed().as_micros() as u64,
            phase: phase.to_owned(),
            fault: fault.to_string(),
        })
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut last_heal = Instant::now();
    while Instant::now() < deadline {
        let step = nemesis.step();
        eprintln!("{:>6.1} s  {}", start.elapsed().as_secs_f64(), step.fault);
        events.push(event("start", &step.fault));
        *faults.entry(step.fault.kind()).or_default() += 1;
        match &step.fault {
            Fault::Kill(n) => cluster.nodes[*n].kill9(),
            Fault::Pause(n) => cluster.nodes[*n].signal(true),
            Fault::Partition(a, b) => hosts.partition(&[a.clone(), b.clone()]).unwrap(),
            Fault::Bridge(a, b) => hosts.partition(&[a.clone(), b.clone()]).unwrap(),
            Fault::OneWay(n) => hosts.one_way(*n).unwrap(),
            Fault::Loss(n, percent) => hosts.loss(*n, *percent).unwrap(),
        }
        std::thread::sleep(step.hold);
        match &step.fault {
            Fault::Kill(n) => {
                cluster.restart_for_clients(*n, &addrs);
            }
            Fault::Pause(n) => cluster.nodes[*n].signal(false),
            _ => hosts.heal().unwrap(),
        }
        events.push(event("heal", &step.fault));
        last_heal = Instant::now();
        let took = calm_and_time_recovery(&cluster, last_heal, step.calm);
        recovered.entry(step.fault.kind()).or_default().push(took);
    }
    let mut history = workload.stop();
    history.extend(events);

    wait_for("the replicas to agree after the heal", CONVERGE, || {
        cluster.try_replicas_agree(&all)
    });
    // From the last fault's heal, the workload writing for the first
    // second or two of it.
    let converged = last_heal.elapsed();
    wait_for("every hint delivered", SETTLE, || {
        let pending: Vec<u64> = all
            .iter()
            .map(|&i| hints_pending(&cluster, i))
            .collect::<Result<_, _>>()?;
        if pending.iter().all(|&p| p == 0) {
            Ok(())
        } else {
            Err(format!("hints pending per node: {pending:?}"))
        }
    });
    let n_val = nodes.min(3) as u8;
    // The read at R = N once failed for 2 s after the replicas agreed (3
    // nodes, seed 13; not reproduced, cause unknown: a QUIC link kept
    // through a cut answers at once after it, crates/transport/tests/
    // quic.rs): it is tried again until it succeeds, and how long that
    // took is reported.
    let agreed = Instant::now();
    let fin = wait_for("a read of every key at R = N", SETTLE, || {
        final_state(cluster.nodes[0].ep.resp, &keys, n_val)
    });
    let read_after = agreed.elapsed();
    let report = check(&history, &fin);
    let out = std::env::var("GYRE_NEMESIS_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| cluster.scratch(""));
    std::fs::create_dir_all(&out).unwrap();
    let saved = out.join(format!("history-{nodes}-nodes-seed-{seed}.jsonl"));
    write_jsonl(&mut std::fs::File::create(&saved).unwrap(), &history).unwrap();
    eprintln!(
        "seed {seed}: {:?}; faults {faults:?}; every node saw every node up after each heal: {}; replicas agreed {:.1} s after the last heal, read at R = N {:.1} s later; history in {}",
        report.stats,
        recovery_report(&recovered),
        converged.as_secs_f64(),
        read_after.as_secs_f64(),
        saved.display()
    );
    assert!(
        report.is_ok(),
        "seed {seed} (GYRE_NEMESIS_SEED={seed} replays it): {report}\nfinal state: {fin:?}"
    );
    assert!(report.stats.acknowledged_puts > 0, "{:?}", report.stats);
    drop(cluster);
    drop(hosts);
    Run {
        seed,
        faults,
        recovered,
        converged,
        stats: report.stats,
    }
}

fn runs(nodes: usize) {
    let (seeds, first, seconds) = (
        env("GYRE_NEMESIS_SEEDS", 1),
        env("GYRE_NEMESIS_SEED", 1),
        env("GYRE_NEMESIS_SECONDS", 30),
    );
    let done: Vec<Run> = (first..first + seeds)
        .map(|seed| run(nodes, seed, seconds))
        .collect();
    let longest = done.iter().map(|r| r.converged).max().unwrap_or_default();
    eprintln!(
        "{nodes} nodes, {} runs of {seconds} s: longest time to equal roots after the heal {:.1} s",
        done.len(),
        longest.as_secs_f64()
    );
    let mut recovered: BTreeMap<&'static str, Vec<Option<Duration>>> = BTreeMap::new();
    for r in &done {
        eprintln!("  seed {}: {:?} {:?}", r.seed, r.faults, r.stats);
        for (kind, times) in &r.recovered {
            recovered
                .entry(*kind)
                .or_default()
                .extend(times.iter().copied());
        }
    }
    eprintln!(
        "every node saw every node up after a heal, per fault: {}",
        recovery_report(&recovered)
    );
}

#[test]
fn three_nodes_on_real_hosts_lose_nothing_under_faults() {
    runs(3);
}

#[test]
fn five_nodes_on_real_hosts_lose_nothing_under_faults() {
    runs(5);
}

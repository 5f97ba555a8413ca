//! A node's disk fills up under load: its data directory on a small tmpfs
//! that a filler file takes to the last byte. What it cannot write it
//! refuses (its store fails and says so), so nothing is acknowledged on
//! its word alone; it has the others coordinate its clients' writes, and
//! they take them (W = 2 of 3). Once the
//! filler is gone and the node restarts on its data, it serves again and
//! anti-entropy brings it level, and the history checks out: nothing
//! acknowledged lost, nothing superseded back.
//!
//! Needs root (mount): a system test (`tests/system.sh`).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, RwLock};

use common::{Cluster, SETTLE, wait_acked, wait_for};
use gyre_nemesis::check::check;
use gyre_nemesis::workload::{Workload, final_state};

/// The small filesystem's size.
const SIZE_MB: u32 = 48;

/// Acknowledged operations to wait for in each phase.
const PHASE: u64 = 600;

fn sh(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tmpfs mounted at a path, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let size = format!("size={SIZE_MB}m");
        sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &size,
                "tmpfs",
                &at.display().to_string(),
            ],
        );
        Self(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros to `path` until the filesystem has no byte left.
fn fill(path: &Path) {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 1 << 16];
    while file.write_all(&block).is_ok() {}
    // What is left is smaller than a block.
    while file.write_all(&[0]).is_ok() {}
    let _ = file.sync_all();
}

#[test]
fn a_full_disk_refuses_writes_and_loses_nothing() {
    if let Some(what) = gyre_nemesis::hosts::missing() {
        panic!("this test needs {what}: run it through tests/system.sh --install");
    }
    let seed = std::env::var("GYRE_NEMESIS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut cluster = Cluster::start(3);
    // Node 2's data moves onto a small filesystem.
    cluster.nodes[2].kill9();
    let data = cluster.nodes[2].data_dir().to_path_buf();
    let moved = data.with_extension("before");
    std::fs::rename(&data, &moved).unwrap();
    // Declared after the cluster, so dropped before it: unmounted before
    // the cluster's directory is removed, which a mount point would stop.
    let _tmpfs = Tmpfs::mount(&data);
    sh(
        "cp",
        &[
            "-a",
            &format!("{}/.", moved.display()),
            &data.display().to_string(),
        ],
    );
    cluster.restart(2);

    let resp: Vec<SocketAddr> = cluster.nodes.iter().map(|n| n.ep.resp).collect();
    let nodes = Arc::new(RwLock::new(resp));
    let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
    let workload = Workload::start(4, &nodes, &keys, seed);
    wait_acked(&workload, PHASE, "the workload to get going");

    let filler = data.join("filler");
    fill(&filler);
    let at_full = workload.acked();
    wait_for("node 2 to say its store failed", SETTLE, || {
        let log = cluster.nodes[2].log();
        if log.contains("refuses writes") {
            Ok(())
        } else {
            Err("no word of a failed store in its log".to_owned())
        }
    });
    wait_acked(
        &workload,
        at_full + PHASE,
        "writes through the nodes with room",
    );

    // Space returns; the node restarts on what it has.
    std::fs::remove_file(&filler).unwrap();
    cluster.nodes[2].kill9();
    cluster.restart_for_clients(2, &nodes);
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
    let fin = final_state(cluster.nodes[2].ep.resp, &keys, 3).unwrap();
    let report = check(&history, &fin);
    let log = cluster.nodes[2].log();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("refuses writes") || l.contains("No space"))
        .take(3)
        .collect();
    let mut errors: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
    for entry in &history {
        if let gyre_nemesis::history::Entry::Op(op) = entry
            && let Some(error) = &op.error
        {
            *errors.entry(error.chars().take(90).collect()).or_default() += 1;
        }
    }
    eprintln!(
        "{:?}\nwhat clients saw: {errors:#?}\nwhat node 2 logged: {said:#?}",
        report.stats
    );
    assert!(
        report.is_ok(),
        "seed {seed}: {report}\nfinal state: {fin:?}"
    );
    assert!(report.stats.acknowledged_puts > 0, "{:?}", report.stats);
}

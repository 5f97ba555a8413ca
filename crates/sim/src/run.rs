//! One simulated run from a seed: form the cluster, run the clients under
//! faults, heal, settle, check.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use gyre_types::BucketName;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::availability;
use crate::checker::{self, Check, Violation};
use crate::cluster::{Cluster, Totals};
use crate::config::SimConfig;
use crate::faults::{self, FaultCounts};
use crate::history::{History, Outcome, Recorder};
use crate::rng::SimRng;
use crate::transport::KindTraffic;
use crate::workload::{self, Client};

/// The environment variable that replays one seed.
pub const SEED_VAR: &str = "GYRE_SIM_SEED";
/// The environment variable that sets how many seeds a suite runs.
pub const SEEDS_VAR: &str = "GYRE_SIM_SEEDS";

/// The bucket every workload writes to (default properties: n_val 3,
/// R 2, W 2).
pub fn bucket() -> BucketName {
    // A constant name that `BucketName` accepts.
    BucketName::new("sim").unwrap_or_else(|_| unreachable!("\"sim\" is a valid bucket name"))
}

/// A current-thread tokio runtime on a paused clock: time stands still
/// while any task can run and jumps to the next timer when none can, so a
/// minute of virtual time takes milliseconds, and the same program and seed
/// give the same run.
///
/// # Errors
/// If tokio cannot build the runtime.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
}

/// Counts of client operations by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Reads that answered.
    pub reads: u64,
    /// Writes acknowledged.
    pub acked: u64,
    /// Unavailable (reads or writes).
    pub unavailable: u64,
    /// Timed out or crashed under the client.
    pub timed_out: u64,
    /// Refused or failed otherwise.
    pub other: u64,
}

impl OpCounts {
    /// Counts the operations of `history`.
    pub fn of(history: &History) -> Self {
        let mut c = Self::default();
        for r in &history.ops {
            match &r.outcome {
                Outcome::Read { .. } => c.reads += 1,
                Outcome::Written { .. } | Outcome::Counted { .. } => c.acked += 1,
                Outcome::Unavailable { .. } => c.unavailable += 1,
                Outcome::TimedOut | Outcome::Crashed => c.timed_out += 1,
                Outcome::Refused(_) | Outcome::Failed(_) => c.other += 1,
            }
        }
        c
    }

    /// Every operation.
    pub fn total(&self) -> u64 {
        self.reads + self.acked + self.unavailable + self.timed_out + self.other
    }
}

/// Everything a run produced.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The seed it ran from.
    pub seed: u64,
    /// Every client operation and fault event.
    pub history: History,
    /// The checker's verdict.
    pub check: Check,
    /// How long after the heal the cluster converged (`None`: not within
    /// the bound).
    pub settled_after: Option<Duration>,
    /// Virtual time the run took, from the first node's start.
    pub virtual_time: Duration,
    /// The fault events injected.
    pub faults: FaultCounts,
    /// What replication did, over every node.
    pub totals: Totals,
    /// Requests the nodes sent each other, by kind.
    pub traffic: BTreeMap<&'static str, KindTraffic>,
    /// Set if the simulation itself failed (the cluster did not form).
    pub setup_error: Option<String>,
}

impl RunReport {
    /// Whether the run passed: it ran, and the checker found nothing.
    pub fn is_ok(&self) -> bool {
        self.setup_error.is_none() && self.check.violations.is_empty()
    }

    /// The operations by outcome.
    pub fn ops(&self) -> OpCounts {
        OpCounts::of(&self.history)
    }

    /// How to replay this run: the environment variable and the test that
    /// reads it.
    pub fn replay_command(&self) -> String {
        // The test harness names each test's thread after the test.
        let test = std::thread::current()
            .name()
            .filter(|name| *name != "main")
            .map_or_else(|| "mixed_faults".to_owned(), str::to_owned);
        format!(
            "{SEED_VAR}={} cargo nextest run -p gyre-sim {test}",
            self.seed
        )
    }

    fn failed(seed: u64, error: String) -> Self {
        Self {
            seed,
            history: History::default(),
            check: Check::default(),
            settled_after: None,
            virtual_time: Duration::ZERO,
            faults: FaultCounts::default(),
            totals: Totals::default(),
            traffic: BTreeMap::new(),
            setup_error: Some(error),
        }
    }
}

impl fmt::Display for RunReport {
    /// A summary line; for a failed run also the violations, the replay
    /// command and the history of the keys concerned.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ops = self.ops();
        let settled = self.settled_after.map_or_else(
            || "did not converge".to_owned(),
            |d| format!("converged {:.1}s after the heal", d.as_secs_f64()),
        );
        writeln!(
            f,
            "seed {}: {} — {} ops ({} reads, {} writes acknowledged, {} unavailable, {} timed out), \
             {} fault events, {settled}, {:.1}s virtual; {:?}; {:?}",
            self.seed,
            if self.is_ok() { "ok" } else { "FAILED" },
            ops.total(),
            ops.reads,
            ops.acked,
            ops.unavailable,
            ops.timed_out,
            fault_total(&self.faults),
            self.virtual_time.as_secs_f64(),
            self.check.stats,
            self.totals,
        )?;
        if self.is_ok() {
            return Ok(());
        }
        if let Some(e) = &self.setup_error {
            writeln!(f, "setup failed: {e}")?;
        }
        for v in &self.check.violations {
            writeln!(f, "  violation: {v}")?;
        }
        writeln!(f, "replay: {}", self.replay_command())?;
        let keys: std::collections::BTreeSet<_> = self
            .check
            .violations
            .iter()
            .filter_map(Violation::key)
            .collect();
        for key in keys {
            writeln!(
                f,
                "history of {:?}:",
                String::from_utf8_lossy(key.as_bytes())
            )?;
            for e in &self.history.events {
                writeln!(f, "  [{:.3}s] ** {}", e.at.as_secs_f64(), e.what)?;
            }
            for r in self.history.ops_on(key) {
                writeln!(f, "  {r}")?;
            }
        }
        Ok(())
    }
}

fn fault_total(c: &FaultCounts) -> u32 {
    c.messages
        + c.calm
        + c.partitions
        + c.one_way
        + c.isolations
        + c.heals
        + c.crashes
        + c.restarts
        + c.wipes
        + c.layout_changes
        + c.refused_changes
}

/// Runs seed `seed` with `config` on a fresh paused runtime ([`runtime`]).
pub fn run(seed: u64, config: &SimConfig) -> RunReport {
    match runtime() {
        Ok(rt) => rt.block_on(simulate(seed, config)),
        Err(e) => RunReport::failed(seed, format!("cannot build a runtime: {e}")),
    }
}

/// Runs seed `seed` with `config` on the current runtime, which must be a
/// current-thread runtime on a paused clock for the run to be
/// reproducible.
///
/// 1. Starts and forms the cluster ([`Cluster::start`]).
/// 2. For `config.workload.duration`, runs the clients
///    ([`workload::random_client`]) while injecting faults
///    ([`faults::inject`]).
/// 3. Waits for every client's last operation, then ends every fault
///    ([`Cluster::heal`]) and restarts every crashed node.
/// 4. Settles ([`Cluster::settle`]), snapshots every replica and checks the
///    history against it ([`checker::check`]).
pub async fn simulate(seed: u64, config: &SimConfig) -> RunReport {
    let recorder = Recorder::default();
    let mut rng = SimRng::new(seed);
    let cluster =
        match Cluster::start(config.cluster.clone(), rng.next_u64(), recorder.clone()).await {
            Ok(c) => c,
            Err(e) => return RunReport::failed(seed, e.to_string()),
        };
    let bucket = bucket();
    let keys = workload::workload_keys(config.workload.keys);
    let deadline = Instant::now() + config.workload.duration;
    let mut clients = JoinSet::new();
    for c in 0..config.workload.clients {
        let client = Client::new(
            c as u32,
            cluster.clone(),
            recorder.clone(),
            bucket.clone(),
            config.workload.op_timeout,
        );
        clients.spawn(workload::random_client(
            client,
            rng.fork(),
            config.workload.clone(),
            keys.clone(),
            deadline,
        ));
    }
    let faults = faults::inject(cluster.clone(), rng.fork(), config.faults.clone(), deadline).await;
    while clients.join_next().await.is_some() {}
    cluster.heal();
    if let Err(e) = cluster.restart_all() {
        return RunReport::failed(seed, e.to_string());
    }
    let settled_after = cluster.settle(&config.settle, &bucket, &keys).await;
    let snapshot = cluster.snapshot(&bucket, &keys);
    let history = recorder.history();
    let mut check = checker::check(&history, &snapshot);
    if !config.faults.separates_reads() {
        check.violations.extend(checker::stale_reads(&history));
    }
    check
        .violations
        .extend(availability::refused_while_servable(
            &history,
            &cluster.epochs(),
        ));
    if settled_after.is_none() {
        check.violations.push(Violation::NotConverged(format!(
            "still unconverged {:?} after the heal",
            config.settle.within
        )));
    }
    let virtual_time = cluster.now();
    let totals = cluster.totals();
    let traffic = cluster.traffic().snapshot();
    cluster.shutdown().await;
    RunReport {
        seed,
        history: recorder.history(),
        check,
        settled_after,
        virtual_time,
        faults,
        totals,
        traffic,
        setup_error: None,
    }
}

/// The seed to replay, from `GYRE_SIM_SEED`, if set (a decimal or `0x` hex
/// number).
pub fn seed_from_env() -> Option<u64> {
    let raw = std::env::var(SEED_VAR).ok()?;
    parse_seed(&raw)
}

/// How many seeds to run, from `GYRE_SIM_SEEDS`, else `default`.
pub fn seed_count_from_env(default: u64) -> u64 {
    std::env::var(SEEDS_VAR)
        .ok()
        .and_then(|s| parse_seed(&s))
        .unwrap_or(default)
}

fn parse_seed(raw: &str) -> Option<u64> {
    let raw = raw.trim();
    match raw.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => raw.parse().ok(),
    }
}

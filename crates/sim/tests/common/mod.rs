//! Helpers shared by the scenario tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gyre_sim::{Check, Client, Cluster, ClusterConfig, Outcome, Recorder, SettleConfig, bucket};
use gyre_types::{Key, NodeId};

/// Runs `f` on a fresh paused current-thread runtime.
pub fn block_on<F: Future>(f: F) -> F::Output {
    gyre_sim::runtime().unwrap().block_on(f)
}

/// A formed cluster and the recorder its clients record into.
pub async fn cluster(config: ClusterConfig, seed: u64) -> (Arc<Cluster>, Recorder) {
    let recorder = Recorder::default();
    let cluster = Cluster::start(config, seed, recorder.clone())
        .await
        .unwrap();
    (cluster, recorder)
}

/// Client `id` of `cluster`, with a 5 s timeout per operation.
pub fn client(cluster: &Arc<Cluster>, recorder: &Recorder, id: u32) -> Client {
    Client::new(
        id,
        Arc::clone(cluster),
        recorder.clone(),
        bucket(),
        Duration::from_secs(5),
    )
}

/// `count` keys (`{prefix}{i}`) for which `filter` holds of the primaries.
pub fn keys_where(
    cluster: &Cluster,
    prefix: &str,
    count: usize,
    filter: impl Fn(&[NodeId]) -> bool,
) -> Vec<Key> {
    (0..)
        .map(|i| Key::new(format!("{prefix}{i}").into_bytes()).unwrap())
        .filter(|k| filter(&cluster.primaries(&bucket(), k)))
        .take(count)
        .collect()
}

/// Crashes node `away` and waits until every other node sees it down.
pub async fn crash_and_notice(cluster: &Cluster, away: usize) {
    assert!(cluster.crash(away).await);
    let others: Vec<usize> = (0..cluster.len()).filter(|&i| i != away).collect();
    let noticed = cluster
        .wait_until(Duration::from_secs(10), |c| {
            others.iter().all(|&i| !c.sees_up(i, away))
        })
        .await;
    assert!(noticed, "the others did not notice the crash");
}

/// Puts each of `keys` blind through a primary other than node `away`,
/// each acknowledged; returns the values written.
pub async fn put_avoiding(
    cluster: &Cluster,
    c: &mut Client,
    keys: &[Key],
    away: usize,
) -> Vec<Bytes> {
    let mut values = Vec::new();
    for key in keys {
        let via = cluster
            .primaries(&bucket(), key)
            .iter()
            .map(|&p| cluster.index_of(p).unwrap())
            .find(|&i| i != away)
            .unwrap();
        let (value, outcome) = c.put(via, key, None).await;
        assert!(matches!(outcome, Outcome::Written { .. }), "{outcome:?}");
        values.push(value);
    }
    values
}

/// Settles with the default settle settings; panics if it does not
/// converge.
pub async fn settle(cluster: &Cluster, keys: &[Key]) -> Duration {
    settle_with(cluster, keys, &SettleConfig::default()).await
}

/// Settles with `settle`; panics if it does not converge.
pub async fn settle_with(cluster: &Cluster, keys: &[Key], settle: &SettleConfig) -> Duration {
    cluster
        .settle(settle, &bucket(), keys)
        .await
        .unwrap_or_else(|| panic!("not converged: {:?}", cluster.snapshot(&bucket(), keys)))
}

/// Panics with every violation (and the history) unless `check` is clean.
pub fn assert_clean(check: &Check, recorder: &Recorder) {
    assert!(
        check.violations.is_empty(),
        "violations:\n{}\nhistory:\n{}",
        check
            .violations
            .iter()
            .map(|v| format!("  {v}"))
            .collect::<Vec<_>>()
            .join("\n"),
        recorder.history()
    );
}

/// Runs part `part` of `parts` of a seed suite: seeds `0..GYRE_SIM_SEEDS`
/// (`default` if unset) whose remainder by `parts` is `part`, each with
/// `config(seed)`, and fails with every failing seed's report. With
/// `GYRE_SIM_SEED` set, part 0 replays that seed alone and prints its
/// history; the other parts do nothing. Returns the reports of the seeds
/// run.
pub fn run_seed_part(
    part: u64,
    parts: u64,
    default: u64,
    config: impl Fn(u64) -> gyre_sim::SimConfig,
) -> Vec<gyre_sim::RunReport> {
    if let Some(seed) = gyre_sim::seed_from_env() {
        if part == 0 {
            let report = gyre_sim::run(seed, &config(seed));
            println!("{}", report.history);
            println!("{report}");
            println!("history digest {:016x}", report.history.digest());
            assert!(report.is_ok(), "{report}");
            return vec![report];
        }
        return Vec::new();
    }
    let total = gyre_sim::seed_count_from_env(default);
    let reports: Vec<gyre_sim::RunReport> = (0..total)
        .filter(|s| s % parts == part)
        .map(|seed| gyre_sim::run(seed, &config(seed)))
        .collect();
    let failures: Vec<String> = reports
        .iter()
        .filter(|r| !r.is_ok())
        .map(ToString::to_string)
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed:\n{}",
        failures.len(),
        reports.len(),
        failures.join("\n")
    );
    reports
}

//! How much anti-entropy moves to rebuild a wiped replica, against what it
//! lost. Not part of the test suite: it loads 100,000 keys by default.
//!
//! ```text
//! cargo run --release -p gyre-sim --example wiped_rebuild -- --keys 100000 --value-bytes 100
//! ```
//!
//! A 5-node cluster with the production ring and tree shape (Q = 256,
//! N = 3, 16³-leaf Merkle trees) and no periodic anti-entropy is loaded
//! through the real write path (W = 2) and settled. Node 2 is then wiped
//! (same id, empty store, no layout) and restarted at once, so its peers
//! never see it down. From then on only the node's own anti-entropy runs:
//! when it sees a peer come up it syncs every partition it holds with every
//! other primary. Every anti-entropy request and answer is metered on the
//! wire (keys and value bytes carried, encoded sizes) until every
//! partition's primaries have equal Merkle roots. A second `sync_all()` on
//! every node then shows nothing is left to move.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gyre_sim::{Cluster, ClusterConfig, KindTraffic, Recorder, bucket, runtime};
use gyre_storage::{ObjectId, Store};
use gyre_types::{Key, PartitionCount};
use gyre_wire::{ClientOp, ClientReply};
use tokio::task::JoinSet;

fn arg(name: &str, default: u64) -> Result<u64, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} wants a number")),
    }
}

fn key(i: u64) -> Key {
    // 10-digit decimal keys: always valid.
    Key::new(format!("key-{i:010}").into_bytes()).unwrap_or_else(|_| unreachable!())
}

fn main() -> Result<(), String> {
    let keys = arg("--keys", 100_000)?;
    let value_bytes = arg("--value-bytes", 100)? as usize;
    let writers = arg("--writers", 64)?;
    let rt = runtime().map_err(|e| e.to_string())?;
    rt.block_on(bench(keys, value_bytes, writers))
}

async fn bench(keys: u64, value_bytes: usize, writers: u64) -> Result<(), String> {
    let started = Instant::now();
    let mut config = ClusterConfig {
        partitions: PartitionCount::DEFAULT,
        merkle_shape: gyre_merkle::TreeShape::DEFAULT,
        ..ClusterConfig::default()
    };
    config.node.anti_entropy_interval = Duration::from_secs(24 * 3600);
    let cluster = Cluster::start(config, 1, Recorder::default())
        .await
        .map_err(|e| e.to_string())?;

    // Load through the write path, `writers` at a time.
    let mut tasks = JoinSet::new();
    for w in 0..writers {
        let cluster = Arc::clone(&cluster);
        tasks.spawn(async move {
            let mut failed = 0_u64;
            let mut i = w;
            while i < keys {
                let value = Bytes::from(vec![b'a' + (i % 26) as u8; value_bytes]);
                let op = ClientOp::Put {
                    bucket: bucket(),
                    key: key(i),
                    context: None,
                    value,
                    w: None,
                    expiry: gyre_wire::Expiry::Default,
                };
                let via = (i % cluster.len() as u64) as usize;
                let ok = match cluster.node(via) {
                    Some(node) => matches!(
                        node.replication().client(op).await,
                        Ok(ClientReply::Written { .. })
                    ),
                    None => false,
                };
                failed += u64::from(!ok);
                i += writers;
            }
            failed
        });
    }
    let mut failed = 0;
    while let Some(done) = tasks.join_next().await {
        failed += done.map_err(|e| e.to_string())?;
    }
    if failed > 0 {
        return Err(format!("{failed} writes failed"));
    }
    let converged = cluster
        .wait_until(Duration::from_secs(60), |c| c.root_mismatches().is_empty())
        .await;
    if !converged {
        cluster.sync_all().await;
    }
    let loaded_at = cluster.now();
    let load_real = started.elapsed();

    let wiped = 1;
    let wiped_id = cluster.id(wiped);
    let old = cluster.store(wiped).ok_or("no store")?;
    let (mut missing_keys, mut missing_bytes) = (0_u64, 0_u64);
    for i in 0..keys {
        if let Some(object) = old
            .get(&ObjectId::new(bucket(), key(i)))
            .map_err(|e| e.to_string())?
        {
            missing_keys += 1;
            missing_bytes += object.values().map(|v| v.len() as u64).sum::<u64>();
        }
    }
    drop(old);

    let rebuild_started = Instant::now();
    cluster.traffic().reset();
    cluster.traffic().meter_bytes(true);
    let wiped_at = cluster.now();
    let ae_before = cluster.totals().ae_keys;
    cluster.wipe(wiped).await.map_err(|e| e.to_string())?;
    let others: Vec<usize> = (0..cluster.len()).filter(|&i| i != wiped).collect();
    let ready = cluster
        .wait_until(Duration::from_secs(30), |c| {
            c.node(wiped)
                .is_some_and(|n| n.membership().layout().is_some())
                && others.iter().all(|&j| c.sees_up(wiped, j))
        })
        .await;
    if !ready {
        return Err("the wiped node did not come back".into());
    }
    // From here on only the nodes' own anti-entropy: the wiped node syncs
    // every partition it holds when it sees a peer come up.
    let rebuilt = cluster
        .wait_until(Duration::from_secs(600), |c| c.root_mismatches().is_empty())
        .await;
    if !rebuilt {
        return Err("anti-entropy did not rebuild the wiped node within 600 s".into());
    }
    let rebuilt_at = cluster.now();
    let rebuild_real = rebuild_started.elapsed();
    let ae_keys = cluster.totals().ae_keys - ae_before;
    let traffic = cluster.traffic().snapshot();
    cluster.traffic().meter_bytes(false);

    let second = cluster.sync_all().await;
    let mismatches = cluster.root_mismatches();
    let hints_left: u64 = (0..cluster.len())
        .filter_map(|i| cluster.store(i))
        .map(|s| s.hint_backlog().values().sum::<u64>())
        .sum();

    let get = |k: &str| traffic.get(k).copied().unwrap_or_default();
    let (merkle, list, fetch, push) = (
        get("merkle"),
        get("list_keys"),
        get("fetch"),
        get("deliver_hints"),
    );
    let wire = |t: KindTraffic| t.request_bytes + t.answer_bytes;
    let moved_keys = fetch.items + push.items;
    let moved_value_bytes = fetch.value_bytes + push.value_bytes;
    let total_wire = wire(merkle) + wire(list) + wire(fetch) + wire(push);

    println!(
        "cluster: 5 nodes, Q = 256, N = 3, 16^3-leaf trees; {keys} keys of {value_bytes} bytes loaded in {:.1}s virtual ({load_real:.1?} real)",
        loaded_at.as_secs_f64()
    );
    println!("wiped node {wiped_id}: it held {missing_keys} keys, {missing_bytes} value bytes");
    println!(
        "rebuild: {:.2}s virtual ({rebuild_real:.1?} real) from the wipe to equal Merkle roots",
        (rebuilt_at - wiped_at).as_secs_f64()
    );
    println!(
        "anti-entropy moved {moved_keys} keys ({} fetched by the wiped node, {} pushed to it by peers), {moved_value_bytes} value bytes",
        fetch.items, push.items
    );
    println!(
        "  = {:.4} keys and {:.4} value bytes per missing one",
        moved_keys as f64 / missing_keys.max(1) as f64,
        moved_value_bytes as f64 / missing_bytes.max(1) as f64
    );
    println!(
        "on the wire: {total_wire} bytes in all ({:.2} per missing value byte): tree exchange {} requests / {} bytes, key listings {} / {} bytes, fetches {} / {} bytes, pushes {} / {} bytes",
        total_wire as f64 / missing_bytes.max(1) as f64,
        merkle.requests,
        wire(merkle),
        list.requests,
        wire(list),
        fetch.requests,
        wire(fetch),
        push.requests,
        wire(push)
    );
    println!(
        "keys merged with a change (the nodes' ae_keys counters, SyncStats keys_fetched + keys_pushed): {ae_keys}"
    );
    println!("a second sync_all on every node: {second:?}");
    println!(
        "Merkle roots: {} partitions differ; hints left: {}",
        mismatches.len(),
        hints_left
    );
    println!("real time in all: {:.1?}", started.elapsed());
    cluster.shutdown().await;
    if mismatches.is_empty() && second.keys_differing == 0 {
        Ok(())
    } else {
        Err("the wiped node was not rebuilt".into())
    }
}

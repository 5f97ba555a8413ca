//! Layout changes at 16, 32 and 64 nodes (or any sizes), by simulation:
//! what each change moves against the least it must, how fast every node
//! learns of it, how long it takes to settle, what the cluster sends at
//! rest, and how long the simulator took. Prints a Markdown table (the one
//! in the crate's README).
//!
//! ```text
//! cargo run --release -p gyre-sim --example scale -- --nodes 16,32,64 --partitions 1024 --keys 2000
//! ```
//!
//! Options: `--nodes` (comma-separated sizes), `--zones` (4), `--partitions`
//! (Q, 1024), `--keys` (2000), `--value-bytes` (100), `--changes` (any of
//! `join1,join8,leave,zone`, all by default), `--seed` (1), `--verbose`
//! (messages at rest by kind).

use gyre_sim::runtime;
use gyre_sim::scale::{ScaleConfig, ScaleReport, Scenario, measure};
use gyre_types::PartitionCount;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn number(name: &str, default: u64) -> Result<u64, String> {
    arg(name).map_or(Ok(default), |v| {
        v.parse()
            .map_err(|_| format!("{name} wants a number, not {v:?}"))
    })
}

fn main() -> Result<(), String> {
    let sizes: Vec<usize> = arg("--nodes")
        .unwrap_or_else(|| "16,32,64".to_owned())
        .split(',')
        .map(|s| {
            s.parse()
                .map_err(|_| format!("--nodes: {s:?} is not a number"))
        })
        .collect::<Result<_, _>>()?;
    let scenarios: Vec<Scenario> = arg("--changes")
        .unwrap_or_else(|| "join1,join8,leave,zone".to_owned())
        .split(',')
        .map(|s| match s {
            "join1" => Ok(Scenario::Join { count: 1 }),
            "join8" => Ok(Scenario::Join { count: 8 }),
            "leave" => Ok(Scenario::Leave),
            "zone" => Ok(Scenario::ZoneLost),
            other => Err(format!("--changes: unknown change {other:?}")),
        })
        .collect::<Result<_, _>>()?;
    let partitions = u32::try_from(number("--partitions", 1024)?).map_err(|e| e.to_string())?;
    let partitions = PartitionCount::new(partitions).map_err(|e| e.to_string())?;
    let seed = number("--seed", 1)?;
    println!("{}", ScaleReport::header());
    for &nodes in &sizes {
        for &scenario in &scenarios {
            let config = ScaleConfig {
                zones: number("--zones", 4)? as usize,
                partitions,
                keys: number("--keys", 2000)? as usize,
                value_len: number("--value-bytes", 100)? as usize,
                ..ScaleConfig::new(nodes)
            };
            let rt = runtime().map_err(|e| e.to_string())?;
            let report = rt
                .block_on(measure(&config, scenario, seed))
                .map_err(|e| format!("{nodes} nodes, {}: {e}", scenario.name()))?;
            println!("{}", report.row());
            if std::env::args().any(|a| a == "--verbose") {
                eprintln!("at rest, per node per second: {:?}", report.rest_by_kind);
            }
        }
    }
    Ok(())
}

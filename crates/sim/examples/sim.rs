//! Runs many seeds of the mixed-faults simulation and reports what it
//! found, or replays one seed with its whole history.
//!
//! ```text
//! cargo run --release -p gyre-sim --example sim -- --seeds 10000 --threads 2
//! cargo run --release -p gyre-sim --example sim -- --seed 42 --history
//! ```
//!
//! Each seed runs `SimConfig::varied(seed)`, as the test suite does.
//! Options: `--seeds N` (default 100), `--start S` (first seed, default 0),
//! `--threads T` (default: the machine's parallelism), `--seed S` (one seed;
//! or `GYRE_SIM_SEED`), `--history` (print the history of a single seed),
//! `--fixed` (`SimConfig::default()` for every seed), `--calm` (no faults),
//! `--no-dup` (no duplication), `--raw-duplicates` (let the network
//! duplicate forwarded client operations too), `--wipes` (add same-id wipes
//! to the faults), `--explicit-settle` (the settle phase also calls
//! `deliver_hints()` and `sync_all()` on every node), `--fail-fast`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gyre_sim::{FaultConfig, RunReport, SimConfig, run};

struct Args {
    seeds: u64,
    start: u64,
    threads: usize,
    one: Option<u64>,
    history: bool,
    calm: bool,
    fixed: bool,
    explicit: bool,
    wipes: bool,
    no_dup: bool,
    raw_dup: bool,
    fail_fast: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        seeds: 100,
        start: 0,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        one: None,
        history: false,
        calm: false,
        fixed: false,
        explicit: false,
        wipes: false,
        no_dup: false,
        raw_dup: false,
        fail_fast: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} wants a number"))
        };
        match a.as_str() {
            "--seeds" => args.seeds = num("--seeds")?,
            "--start" => args.start = num("--start")?,
            "--threads" => args.threads = num("--threads")?.max(1) as usize,
            "--seed" => args.one = Some(num("--seed")?),
            "--history" => args.history = true,
            "--calm" => args.calm = true,
            "--fixed" => args.fixed = true,
            "--explicit-settle" => args.explicit = true,
            "--wipes" => args.wipes = true,
            "--no-dup" => args.no_dup = true,
            "--raw-duplicates" => args.raw_dup = true,
            "--fail-fast" => args.fail_fast = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> Result<(), String> {
    let args = parse()?;
    let config_for = |seed: u64| {
        let mut config = if args.fixed {
            SimConfig::default()
        } else {
            SimConfig::varied(seed)
        };
        if args.calm {
            config.faults = FaultConfig::none();
        }
        if args.no_dup {
            config.faults.max_duplicate = 0.0;
        }
        if args.raw_dup {
            config.cluster.duplicate_forwards = true;
        }
        if args.wipes {
            config.faults.weights.wipe = 2;
        }
        if args.explicit {
            config.settle.explicit = true;
        }
        config
    };
    if let Some(seed) = args.one.or_else(gyre_sim::seed_from_env) {
        let started = Instant::now();
        let report = run(seed, &config_for(seed));
        if args.history {
            print!("{}", report.history);
        }
        print!("{report}");
        println!(
            "history digest {:016x}; real time {:.2?}",
            report.history.digest(),
            started.elapsed()
        );
        return if report.is_ok() {
            Ok(())
        } else {
            Err("the run failed".into())
        };
    }

    let started = Instant::now();
    let next = AtomicU64::new(args.start);
    let end = args.start + args.seeds;
    let virtual_ms = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let failures: Mutex<Vec<RunReport>> = Mutex::new(Vec::new());
    let sums: Mutex<Sums> = Mutex::new(Sums::default());
    std::thread::scope(|s| {
        for _ in 0..args.threads {
            s.spawn(|| {
                loop {
                    if args.fail_fast && !failures.lock().map(|f| f.is_empty()).unwrap_or(false) {
                        return;
                    }
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        return;
                    }
                    let report = run(seed, &config_for(seed));
                    virtual_ms.fetch_add(report.virtual_time.as_millis() as u64, Ordering::Relaxed);
                    if let Ok(mut sums) = sums.lock() {
                        sums.add(&report);
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if !report.is_ok() {
                        eprint!("{report}");
                        if let Ok(mut f) = failures.lock() {
                            f.push(report);
                        }
                    }
                    if n.is_multiple_of(500) {
                        eprintln!("{n} seeds, {:.0?}", started.elapsed());
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_default();
    let virtual_time = Duration::from_millis(virtual_ms.load(Ordering::Relaxed));
    println!(
        "{} seeds ({}..{}), {} failed; virtual time {:.1} h ({:.1} s per seed); real time {:.1?} on {} threads",
        done.load(Ordering::Relaxed),
        args.start,
        end,
        failures.len(),
        virtual_time.as_secs_f64() / 3600.0,
        virtual_time.as_secs_f64() / done.load(Ordering::Relaxed).max(1) as f64,
        started.elapsed(),
        args.threads,
    );
    if let Ok(sums) = sums.lock() {
        println!("{sums}");
    }
    for f in &failures {
        println!("failed seed {}: replay with {}", f.seed, f.replay_command());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} seeds failed", failures.len()))
    }
}

/// What all the runs did, summed.
#[derive(Default)]
struct Sums {
    runs: u64,
    ops: u64,
    reads: u64,
    acked: u64,
    unavailable: u64,
    timed_out: u64,
    present: u64,
    superseded: u64,
    excused: u64,
    keys_with_siblings: u64,
    crashes: u64,
    partitions: u64,
    message_faults: u64,
    fallbacks: u64,
    hints_delivered: u64,
    read_repairs: u64,
    ae_keys: u64,
    settle_ms: u64,
    settle_max_ms: u64,
}

impl Sums {
    fn add(&mut self, r: &RunReport) {
        let ops = r.ops();
        self.runs += 1;
        self.ops += ops.total();
        self.reads += ops.reads;
        self.acked += ops.acked;
        self.unavailable += ops.unavailable;
        self.timed_out += ops.timed_out;
        let c = r.check.stats;
        self.present += c.present;
        self.superseded += c.superseded;
        self.excused += c.excused_by_unknown_blind;
        self.keys_with_siblings += c.keys_with_siblings;
        self.crashes += u64::from(r.faults.crashes);
        self.partitions += u64::from(r.faults.partitions + r.faults.one_way + r.faults.isolations);
        self.message_faults += u64::from(r.faults.messages);
        self.fallbacks += r.totals.fallbacks;
        self.hints_delivered += r.totals.hints_delivered;
        self.read_repairs += r.totals.read_repairs;
        self.ae_keys += r.totals.ae_keys;
        let settle = r.settled_after.map_or(0, |d| d.as_millis() as u64);
        self.settle_ms += settle;
        self.settle_max_ms = self.settle_max_ms.max(settle);
    }
}

impl std::fmt::Display for Sums {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "operations: {} ({} reads answered, {} writes acknowledged, {} unavailable, {} timed out or crashed)",
            self.ops, self.reads, self.acked, self.unavailable, self.timed_out
        )?;
        writeln!(
            f,
            "acknowledged writes at the end: {} still siblings, {} superseded by a write that saw them, {} excused by an unknown-outcome blind write; {} keys ended with siblings",
            self.present, self.superseded, self.excused, self.keys_with_siblings
        )?;
        writeln!(
            f,
            "faults: {} crashes, {} partitions / one-way cuts / isolations, {} message-fault changes",
            self.crashes, self.partitions, self.message_faults
        )?;
        write!(
            f,
            "repair: {} writes to fallbacks, {} hints delivered, {} read repairs, {} keys synced by anti-entropy; converged after the heal in {:.1} s on average, {:.1} s at most",
            self.fallbacks,
            self.hints_delivered,
            self.read_repairs,
            self.ae_keys,
            self.settle_ms as f64 / 1000.0 / self.runs.max(1) as f64,
            self.settle_max_ms as f64 / 1000.0
        )
    }
}

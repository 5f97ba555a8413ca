//! Deterministic simulation of a Gyre cluster.
//!
//! The simulator runs the **real node code** — [`gyre_node::Node`] with its
//! membership gossip, failure detector, replication coordinators, sloppy
//! quorum, hinted handoff and Merkle anti-entropy — for K nodes in one
//! thread, over the in-memory network ([`gyre_transport::MemNetwork`]) and
//! in-memory stores ([`gyre_storage::MemStore`]), on tokio's paused clock.
//! One seed drives every random choice, so a run is replayed exactly from
//! its seed.
//!
//! A run ([`run`]):
//! 1. **Forms a cluster** ([`Cluster::start`]): K nodes with node 1 as seed,
//!    a first layout committed once node 1 sees everyone up.
//! 2. **Runs a workload** ([`workload`]): concurrent clients doing gets, puts
//!    with the context they read, blind puts, deletes with and without
//!    context, on a few shared keys through random nodes. Every value is
//!    unique (`c{client}-{seq}`), and every operation is recorded
//!    ([`History`]): client, node asked, operation, key, value, context
//!    sent, virtual start and end, and the outcome (for a write, its dot and
//!    the context it superseded).
//! 3. **Injects faults** meanwhile ([`faults`]): message loss, duplication,
//!    delay and reordering; symmetric and one-way partitions, isolation,
//!    heals; crashes and restarts; optionally wipes.
//! 4. **Heals and settles** ([`Cluster::settle`]): every fault ends, crashed
//!    nodes restart, and the nodes' own background hinted handoff and
//!    anti-entropy must make every replica agree within a bound (60 s of
//!    virtual time; the settle phase only watches, unless
//!    [`SettleConfig::explicit`] asks it to call `deliver_hints()` and
//!    `sync_all()` itself).
//! 5. **Checks** ([`checker`]): no acknowledged write lost, replicas
//!    converged (equal versions, equal Merkle roots), nothing deleted or
//!    overwritten came back, siblings only for concurrent writes, every
//!    hint delivered.
//!
//! A failed run prints its seed and the command that replays it:
//! `GYRE_SIM_SEED=<seed> cargo nextest run -p gyre-sim mixed_faults`.
//! The suite runs each seed with [`SimConfig::varied`] (3 to 6 nodes, 2 to
//! 6 clients, 2 to 10 keys). See the crate's README for the long runs and
//! the anti-entropy measurement.
//!
//! # Example
//!
//! ```
//! use gyre_sim::{SimConfig, run};
//!
//! let report = run(7, &SimConfig::small());
//! assert!(report.is_ok(), "{report}");
//! assert!(report.ops().acked > 0);
//! // The same seed replays the same history.
//! assert_eq!(run(7, &SimConfig::small()).history.digest(), report.history.digest());
//! ```
//!
//! Scenario tests drive a [`Cluster`] step by step with [`Client`]s
//! instead (see `tests/`).
//!
//! # Determinism
//!
//! Everything runs on one current-thread runtime whose clock is paused
//! ([`runtime`]): tasks run in a deterministic order and time advances only
//! when every task waits. The network draws every fault from its own
//! seeded generator; the fault schedule, each client and each membership
//! core get generators forked from the run's seed ([`SimRng`]). Nothing
//! reads the real clock: nodes are given a virtual wall clock. Any
//! `tokio::select!` on the path must be `biased` (tokio seeds its branch
//! choice per runtime from the OS): the node's background loop was not, and
//! runs of one seed differed until it was
//! (`tests/same_seed_same_history.rs` checks it).
//!
//! # The simulated network
//!
//! [`SimTransport`] is the in-memory transport with a traffic meter. It
//! loses, delays, reorders and duplicates every message and request, with
//! one exception: a forwarded client operation (`Request::Coordinate`) is
//! never duplicated, as QUIC never duplicates a request, because the
//! protocol has no request id to recognise a copy by and a duplicated
//! forward is coordinated twice ([`ClusterConfig::duplicate_forwards`]
//! turns it back on, to see the consequences).
//!
//! # Crashes and durability
//!
//! A crash stops the node's tasks and takes it off the network; its store
//! survives and the node restarts over it. The stores acknowledge a write
//! only once it is durable (as `Durability::Always` and `Group` do on
//! disk), so a crash loses what was in flight — requests queued or being
//! served, replication not yet acknowledged — and never a write a replica
//! reported stored. A power loss under `Durability::None` (the last writes
//! lost after being acknowledged) is not simulated.
//!
//! # Wiped nodes
//!
//! A wipe restarts a node with the **same id** and an empty store; it pulls
//! the layout and anti-entropy rebuilds it
//! (`tests/wiped_replica_rebuilt_by_anti_entropy.rs`). The design says a
//! node whose data was lost must come back under a fresh id, because dots
//! are minted per node id: a wiped node that coordinates a write before it
//! has relearned a key mints a dot its previous life already minted for
//! another value, and one of the two acknowledged writes is lost
//! (`tests/wipe_under_same_id_reuses_dots.rs` shows the checker catching
//! it). So the mixed-faults suite does not wipe nodes
//! ([`FaultWeights::wipe`] is 0 there).

pub mod availability;
pub mod checker;
mod cluster;
mod config;
mod error;
pub mod faults;
mod history;
mod rng;
mod run;
pub mod scale;
mod transport;
pub mod workload;

pub use checker::{Check, CheckStats, FinalKey, Snapshot, Violation, check};
pub use cluster::{Cluster, SimNode, SimStore, Totals};
pub use config::{
    ClusterConfig, FaultConfig, FaultWeights, OpMix, SettleConfig, SimConfig, WorkloadConfig,
};
pub use error::{Error, Result};
pub use faults::FaultCounts;
pub use history::{Event, History, OpKind, Outcome, Record, Recorder};
pub use rng::SimRng;
pub use run::{
    OpCounts, RunReport, SEED_VAR, SEEDS_VAR, bucket, run, runtime, seed_count_from_env,
    seed_from_env, simulate,
};
pub use transport::{KindTraffic, SimTransport, Traffic};
pub use workload::{Client, workload_keys};

//! What a simulated run looks like: the cluster, the workload, the faults
//! and how the cluster settles before the checks.

use std::time::Duration;

use gyre_merkle::TreeShape;
use gyre_node::NodeConfig;
use gyre_types::PartitionCount;

/// Everything a run is made of. [`SimConfig::default`] is the mixed-faults
/// run the test suite repeats over many seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// The cluster and the settings of its nodes.
    pub cluster: ClusterConfig,
    /// The clients.
    pub workload: WorkloadConfig,
    /// The faults injected while the clients run.
    pub faults: FaultConfig,
    /// How the cluster is brought to rest before the checks.
    pub settle: SettleConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            cluster: ClusterConfig::default(),
            workload: WorkloadConfig::default(),
            faults: FaultConfig::mixed(),
            settle: SettleConfig::default(),
        }
    }
}

impl SimConfig {
    /// A short run with few clients and the mixed faults, for examples.
    pub fn small() -> Self {
        Self {
            workload: WorkloadConfig {
                clients: 2,
                duration: Duration::from_secs(8),
                ..WorkloadConfig::default()
            },
            ..Self::default()
        }
    }

    /// The mixed-faults run with its shape drawn from `seed`: 3 to 6
    /// nodes, 2 to 6 clients, 2 to 10 keys, 10 to 30 s of workload, at most
    /// 1 or 2 nodes down at once (1 in a 3-node cluster). What the test suite and the `sim` example
    /// run, so that many seeds also cover many cluster shapes.
    pub fn varied(seed: u64) -> Self {
        // Its own stream, apart from the run's (same seed, other draws).
        let mut rng = crate::SimRng::new(seed ^ 0x5348_4150_4553_0000);
        let mut c = Self::default();
        c.cluster.nodes = 3 + rng.index(4);
        c.workload.clients = 2 + rng.index(5);
        c.workload.keys = 2 + rng.index(9);
        c.workload.duration = rng.duration(Duration::from_secs(10), Duration::from_secs(30));
        // Leave W = 2 nodes up, so that writes can still succeed.
        c.faults.max_down = (1 + rng.index(2)).min(c.cluster.nodes - 2);
        c
    }

    /// [`SimConfig::varied`] with one or two spare nodes and layout
    /// changes among the faults ([`FaultConfig::with_layout_changes`]).
    pub fn varied_layouts(seed: u64) -> Self {
        let mut c = Self::varied(seed);
        let mut rng = crate::SimRng::new(seed ^ 0x4c41_594f_5554_0000);
        c.cluster.spares = 1 + rng.index(2);
        c.faults = FaultConfig {
            max_down: c.faults.max_down,
            ..FaultConfig::with_layout_changes()
        };
        c
    }

    /// No fault but layout changes (joins, leaves, capacity changes,
    /// aborts) among two spare nodes: the run where every read must see
    /// every write acknowledged before it started ([`crate::checker::stale_reads`]).
    pub fn calm_layouts(seed: u64) -> Self {
        let mut c = Self::varied_layouts(seed);
        let w = c.faults.weights;
        c.faults.weights = FaultWeights {
            join: w.join,
            leave: w.leave,
            capacity: w.capacity,
            abort: w.abort,
            ..FaultWeights::default()
        };
        c.cluster.spares = 2;
        // No expiring puts: this run checks reads against acknowledged
        // writes across layout changes (the mixed and layout fault runs
        // check expiry), and keeps the histories it had before expiry.
        c.workload.expiring.0 = 0.0;
        c
    }

    /// The default run without any fault.
    pub fn calm() -> Self {
        Self {
            faults: FaultConfig::none(),
            ..Self::default()
        }
    }
}

/// The simulated cluster. The defaults are a LAN cluster sped up about
/// five times (gossip every 200 ms), with background hinted handoff every
/// second and anti-entropy every 5 s, so that a run of a minute of virtual
/// time sees plenty of both.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    /// K, how many nodes form the first layout (ids 1..=K, each in a zone
    /// of its own unless `zones` says otherwise).
    pub nodes: usize,
    /// How many zones the nodes (spares included) are spread over, round
    /// robin: node `i` (from 0) in zone `z{i % zones + 1}`. 0: each node in
    /// a zone of its own.
    pub zones: usize,
    /// Nodes started beside them (ids K+1..) that are not members of the
    /// first layout: what layout changes join.
    pub spares: usize,
    /// Q of the ring (and of the stores).
    pub partitions: PartitionCount,
    /// N of the ring; buckets use the defaults (n_val 3, R 2, W 2).
    pub replication: u8,
    /// The membership cores' settings (`ring` is set from the two above).
    pub membership: gyre_membership::Config,
    /// The replication settings of every node.
    pub replica: gyre_replication::Config,
    /// The node's background work.
    pub node: NodeConfig,
    /// Merkle tree shape of the stores (smaller than the default: the
    /// simulator holds few keys and copies trees often).
    pub merkle_shape: TreeShape,
    /// The delay of every message when no fault is injected (the network
    /// is never instantaneous: messages in flight together may reorder).
    pub base_delay: (Duration, Duration),
    /// How long (virtual) forming the cluster may take before the run is
    /// abandoned as a setup failure.
    pub form_within: Duration,
    /// Whether the network may duplicate forwarded client operations
    /// (`Request::Coordinate`), as it duplicates every other request and
    /// message. Off by default.
    ///
    /// QUIC delivers a request once (a stream is not duplicated), and the
    /// wire protocol has no request id a node could recognise a copy by: a
    /// forwarded write delivered twice is coordinated twice, the same value
    /// under two dots, and a blind write run again a little later
    /// supersedes writes acknowledged in between, which the checker reports
    /// as lost. So by default forwarded operations travel like on QUIC:
    /// lost, delayed and reordered like everything else, never duplicated.
    /// Every other request (merges, hints, reads, Merkle exchanges, layout
    /// pulls) is idempotent and may be duplicated. On, the runs show what a
    /// transport that duplicates requests would do to forwarded writes.
    pub duplicate_forwards: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        let partitions = PartitionCount::new(64).unwrap_or(PartitionCount::DEFAULT);
        Self {
            nodes: 5,
            spares: 0,
            zones: 0,
            partitions,
            replication: 3,
            membership: gyre_membership::Config {
                gossip_interval: Duration::from_millis(200),
                min_std_deviation: Duration::from_millis(100),
                acceptable_heartbeat_pause: Duration::from_millis(600),
                first_heartbeat_estimate: Duration::from_millis(200),
                layout_pull_timeout: Duration::from_secs(1),
                ..gyre_membership::Config::default()
            },
            replica: gyre_replication::Config {
                request_timeout: Duration::from_millis(500),
                // Far longer than any run: hints and anti-entropy finish
                // long before a tombstone could be purged.
                tombstone_grace: Duration::from_secs(3600),
                ..gyre_replication::Config::default()
            },
            node: NodeConfig {
                hint_interval: Duration::from_secs(1),
                anti_entropy_interval: Duration::from_secs(5),
                sweep_interval: Duration::from_secs(3600),
                offload: gyre_node::Offload::InPlace,
                bucket_defaults: gyre_types::BucketProps::default(),
                handoff: gyre_node::HandoffConfig {
                    chunk_items: 50,
                    drop_grace: Some(Duration::from_secs(3)),
                    retry: Duration::from_millis(500),
                    ..gyre_node::HandoffConfig::default()
                },
            },
            merkle_shape: TreeShape::new(4, 2).unwrap_or(TreeShape::DEFAULT),
            base_delay: (Duration::from_millis(1), Duration::from_millis(5)),
            form_within: Duration::from_secs(30),
            duplicate_forwards: false,
        }
    }
}

/// The clients: each loops over random operations on a small key space
/// (so that writes collide), through a node it picks at random among the
/// running ones, until the workload's time is up.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadConfig {
    /// How many clients run concurrently.
    pub clients: usize,
    /// How many distinct keys they share.
    pub keys: usize,
    /// How long (virtual) they run; faults are injected meanwhile.
    pub duration: Duration,
    /// Pause before each operation, drawn uniformly from this range.
    pub think: (Duration, Duration),
    /// Longest an operation may take (virtual) before the client gives up
    /// on it; its outcome is then unknown.
    pub op_timeout: Duration,
    /// Relative weights of the operations: get, put with the context of
    /// the client's last read of the key, blind put, delete with
    /// that context, blind delete. A put or delete with context on a key
    /// the client never read goes blind.
    pub mix: OpMix,
    /// The share of puts that expire (0 to 1), and the range their time to
    /// live is drawn from: sessions written during faults, to check that
    /// nothing expired is read again and that expiries are stored as asked.
    pub expiring: (f64, Duration, Duration),
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            clients: 4,
            keys: 6,
            duration: Duration::from_secs(20),
            think: (Duration::from_millis(10), Duration::from_millis(400)),
            op_timeout: Duration::from_secs(5),
            mix: OpMix::default(),
            expiring: (0.25, Duration::from_millis(200), Duration::from_secs(4)),
        }
    }
}

/// Relative weights of the client operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpMix {
    /// Reads.
    pub get: u32,
    /// Puts with the context of the last read.
    pub put: u32,
    /// Puts without context.
    pub blind_put: u32,
    /// Deletes with the context of the last read.
    pub delete: u32,
    /// Deletes without context.
    pub blind_delete: u32,
}

impl Default for OpMix {
    fn default() -> Self {
        Self {
            get: 35,
            put: 30,
            blind_put: 15,
            delete: 12,
            blind_delete: 8,
        }
    }
}

/// The faults injected while the clients run: every `interval` (drawn
/// uniformly) one fault event, chosen by weight. At the end of the
/// workload every fault stops: links heal, message faults return to the
/// base delay, crashed nodes restart.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// Time between two fault events.
    pub interval: (Duration, Duration),
    /// Highest message loss probability a `messages` event sets.
    pub max_drop: f64,
    /// Highest duplication probability a `messages` event sets.
    pub max_duplicate: f64,
    /// Longest message delay a `messages` event sets (delays are drawn per
    /// message, so messages reorder).
    pub max_delay: Duration,
    /// Most nodes down (crashed, or wiped and not yet restarted) at once.
    pub max_down: usize,
    /// Relative weights of the fault events.
    pub weights: FaultWeights,
}

/// Relative weights of the fault events ([`FaultConfig`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultWeights {
    /// New message faults: loss, duplication, delay (hence reordering).
    pub messages: u32,
    /// Message faults back to the base delay.
    pub calm: u32,
    /// A symmetric partition: the cluster cut in two random groups.
    pub partition: u32,
    /// A one-way cut between two random nodes.
    pub one_way: u32,
    /// One random node cut from all others.
    pub isolate: u32,
    /// Every cut link restored.
    pub heal: u32,
    /// A running node crashes (`Node::shutdown`, off the network).
    pub crash: u32,
    /// A crashed node restarts over its store.
    pub restart: u32,
    /// A node's data is wiped: it restarts with the same id, an empty store
    /// and no layout. Off in [`FaultConfig::mixed`]: see the crate docs
    /// ("Wiped nodes") for why a wipe under the same id can lose writes
    /// that were acknowledged while the node coordinates again.
    pub wipe: u32,
    /// A spare node (running, not a member) joins the layout.
    pub join: u32,
    /// A member leaves the layout (if more than N would stay); it keeps
    /// running, hands its partitions off and drops them.
    pub leave: u32,
    /// A member's capacity changes (partitions move to or from it).
    pub capacity: u32,
    /// A crashed member is removed and a spare joins in its place; the
    /// removed node never comes back.
    pub replace: u32,
    /// The layout change in flight is undone.
    pub abort: u32,
}

impl FaultConfig {
    /// No faults at all (the base delay still applies).
    pub fn none() -> Self {
        Self {
            weights: FaultWeights::default(),
            ..Self::mixed()
        }
    }

    /// Every fault but wipes: message loss, duplication, delay and
    /// reordering; symmetric and one-way partitions, isolation and heals;
    /// crashes and restarts.
    pub fn mixed() -> Self {
        Self {
            interval: (Duration::from_millis(300), Duration::from_secs(3)),
            max_drop: 0.15,
            max_duplicate: 0.15,
            max_delay: Duration::from_millis(80),
            max_down: 2,
            weights: FaultWeights {
                messages: 4,
                calm: 2,
                partition: 2,
                one_way: 2,
                isolate: 2,
                heal: 3,
                crash: 3,
                restart: 3,
                wipe: 0,
                ..FaultWeights::default()
            },
        }
    }

    /// Whether any fault but a layout change can happen: one that can keep
    /// a read from the replicas a write reached.
    pub fn separates_reads(&self) -> bool {
        let w = self.weights;
        [
            w.messages,
            w.partition,
            w.one_way,
            w.isolate,
            w.crash,
            w.restart,
            w.wipe,
            w.replace,
        ]
        .iter()
        .any(|&x| x > 0)
    }

    /// The mixed faults plus layout changes made while they happen: joins,
    /// leaves, capacity changes, replacements of crashed nodes and aborts.
    pub fn with_layout_changes() -> Self {
        let mut f = Self::mixed();
        f.weights.join = 2;
        f.weights.leave = 1;
        f.weights.capacity = 1;
        f.weights.replace = 1;
        f.weights.abort = 1;
        f
    }
}

/// How the cluster comes to rest after the faults stop, before the
/// checks.
///
/// Every node restarted, links healed and message faults gone, the settle
/// phase waits until every node sees every other up with the same layout,
/// then polls: each poll snapshots every replica and checks convergence
/// (equal versions on every primary of every workload key, equal Merkle
/// roots between the primaries of every partition, no hint left, trees
/// that agree with the data). Convergence is the nodes' own doing: their
/// background hinted handoff (every `hint_interval`, and when a peer comes
/// up) and anti-entropy (every `anti_entropy_interval`, and when a peer
/// comes up). Only with `explicit` set does each poll that finds the
/// cluster unconverged also call `deliver_hints()` then `sync_all()` on
/// every node, in node order. The cluster must converge within `within`
/// of the heal and stay converged for `quiet`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettleConfig {
    /// Bound on the time from the heal to convergence (virtual).
    pub within: Duration,
    /// Time between polls.
    pub poll: Duration,
    /// Whether the settle phase drives hinted handoff and anti-entropy
    /// itself (else only the nodes' background tasks do).
    pub explicit: bool,
    /// After convergence, how long the cluster is left alone before the
    /// final snapshot (work still in flight must not undo convergence).
    pub quiet: Duration,
}

impl Default for SettleConfig {
    fn default() -> Self {
        Self {
            within: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            explicit: false,
            quiet: Duration::from_secs(3),
        }
    }
}

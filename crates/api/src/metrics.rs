//! [`Metrics`]: what the front ends count, rendered for Prometheus with the
//! node's replication counters.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::NodeStats;

/// Which front end served a request.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Front {
    /// The Redis protocol.
    Resp,
    /// The HTTP API.
    Http,
}

/// Which key operation.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Op {
    /// A read.
    Get,
    /// A write.
    Put,
    /// A delete.
    Delete,
    /// An increment of a counter.
    Increment,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Outcome {
    Ok,
    BadRequest,
    Unavailable,
    Error,
}

/// Label values in Prometheus's habit: lower-case snake case.
macro_rules! label_values {
    ($ty:ty { $($variant:ident => $text:literal),* $(,)? }) => {
        impl EncodeLabelValue for $ty {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
                let text = match self {
                    $(Self::$variant => $text,)*
                };
                std::fmt::Write::write_str(encoder, text)
            }
        }
    };
}

label_values!(Front { Resp => "resp", Http => "http" });
label_values!(Op { Get => "get", Put => "put", Delete => "delete", Increment => "increment" });
label_values!(Outcome {
    Ok => "ok",
    BadRequest => "bad_request",
    Unavailable => "unavailable",
    Error => "error",
});

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    front: Front,
    op: Op,
    outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FrontLabel {
    front: Front,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    front: Front,
    op: Op,
}

/// Request counts and latency histograms per front end and operation, and
/// siblings returned. Cheap to share (`Arc` it).
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    siblings: Counter,
    auth_failures: Family<FrontLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gyre");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Key operations served, by front end, operation and outcome",
            requests.clone(),
        );
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            // 50 µs .. ~1.6 s, doubling.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.000_05, 2.0, 16,
            ))
        });
        registry.register(
            "request_duration_seconds",
            "Key operation latency, by front end and operation",
            latency.clone(),
        );
        let siblings = Counter::default();
        registry.register(
            "siblings_returned",
            "Values returned by reads beyond the first (concurrent writes shown to clients)",
            siblings.clone(),
        );
        let auth_failures = Family::<FrontLabel, Counter>::default();
        registry.register(
            "auth_failures",
            "Failed authentications (a wrong secret or an unknown user), by front end",
            auth_failures.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            siblings,
            auth_failures,
        }
    }

    /// Adds metrics read on each scrape (a store's, a transport's) to the
    /// exposition. Their names get the `gyre_` prefix.
    pub fn register_collector(
        &mut self,
        collector: Box<dyn prometheus_client::collector::Collector>,
    ) {
        self.registry.register_collector(collector);
    }

    /// Counts one key operation that took `elapsed`. `Err` outcomes are
    /// classified by the error.
    pub fn observe(
        &self,
        front: Front,
        op: Op,
        elapsed: Duration,
        result: Result<(), &crate::KvError>,
    ) {
        let outcome = match result {
            Ok(()) => Outcome::Ok,
            Err(crate::KvError::BadRequest(_) | crate::KvError::UnknownBucket(_)) => {
                Outcome::BadRequest
            }
            Err(crate::KvError::Unavailable { .. }) => Outcome::Unavailable,
            Err(crate::KvError::NotReady(_) | crate::KvError::Internal(_)) => Outcome::Error,
        };
        self.requests
            .get_or_create(&RequestLabels { front, op, outcome })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels { front, op })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a failed authentication on `front`.
    pub fn auth_failed(&self, front: Front) {
        self.auth_failures
            .get_or_create(&FrontLabel { front })
            .inc();
    }

    /// Counts a read that returned `values` siblings.
    pub fn read_values(&self, values: usize) {
        if values > 1 {
            self.siblings.inc_by((values - 1) as u64);
        }
    }

    /// The OpenMetrics text exposition: these metrics and the node's
    /// replication counters `stats`.
    pub fn render(&self, stats: &NodeStats) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        let counters: [(&str, &str, u64); 11] = [
            (
                "gyre_sloppy_quorum_fallbacks",
                "Writes that went to a fallback node as a hint",
                stats.fallbacks,
            ),
            (
                "gyre_hints_delivered",
                "Hints delivered to their owners",
                stats.hints_delivered,
            ),
            (
                "gyre_read_repairs",
                "Replicas repaired by reads",
                stats.read_repairs,
            ),
            (
                "gyre_anti_entropy_keys",
                "Keys exchanged by anti-entropy",
                stats.anti_entropy_keys,
            ),
            (
                "gyre_anti_entropy_sessions",
                "Anti-entropy sessions (one partition's trees compared with one peer) run to the end",
                stats.anti_entropy_sessions,
            ),
            (
                "gyre_anti_entropy_failures",
                "Anti-entropy sessions that failed (the peer failed or answered nonsense)",
                stats.anti_entropy_failures,
            ),
            (
                "gyre_quorum_failures",
                "Operations refused because too few replicas answered",
                stats.quorum_failures,
            ),
            (
                "gyre_hedged_requests",
                "Replica requests slower than their hedge delay, so that a fallback or the next primary was asked beside them",
                stats.hedged,
            ),
            (
                "gyre_tombstones_purged",
                "Tombstones purged after every replica held them",
                stats.purges,
            ),
            (
                "gyre_expired_purged",
                "Expired values purged (storage reclaimed by expiry) after every replica held them",
                stats.expired_purged,
            ),
            (
                "gyre_sweep_reads",
                "Keys the tombstone and expiry sweep read because they looked collectable",
                stats.swept,
            ),
        ];
        for (name, help, value) in counters {
            out.push_str(&format!(
                "# HELP {name} {help}.\n# TYPE {name} counter\n{name}_total {value}\n"
            ));
        }
        out.push_str(&format!(
            "# HELP gyre_hints_pending Hints this node holds for others.\n# TYPE gyre_hints_pending gauge\ngyre_hints_pending {}\n",
            stats.hints_pending
        ));
        let t = &stats.transfers;
        let handoff: [(&str, &str, &str, u64); 6] = [
            (
                "gyre_handoff_bytes",
                "Bytes received by partition handoff (this change)",
                "counter",
                t.bytes_done + t.bytes_extra,
            ),
            (
                "gyre_handoff_keys",
                "Objects received by partition handoff (this change)",
                "counter",
                t.keys_done,
            ),
            (
                "gyre_handoff_bytes_expected",
                "Bytes the old replicas hold of the partitions this node fills",
                "gauge",
                t.bytes_total,
            ),
            (
                "gyre_handoff_rate_bytes",
                "Handoff receive rate, bytes per second",
                "gauge",
                t.rate,
            ),
            (
                "gyre_handoff_partitions_to_drop",
                "Partitions held here that no layout gives this node",
                "gauge",
                t.to_drop as u64,
            ),
            (
                "gyre_layouts_in_use",
                "Layouts in use (more than one while a change moves data)",
                "gauge",
                stats.layouts_in_use,
            ),
        ];
        for (name, help, kind, value) in handoff {
            let suffix = if kind == "counter" { "_total" } else { "" };
            out.push_str(&format!(
                "# HELP {name} {help}.\n# TYPE {name} {kind}\n{name}{suffix} {value}\n"
            ));
        }
        out.push_str("# HELP gyre_handoff_partitions Partition replicas this node fills, by stage.\n# TYPE gyre_handoff_partitions gauge\n");
        for (stage, n) in gyre_handoff::Stage::ALL.iter().zip(t.stage_counts()) {
            out.push_str(&format!(
                "gyre_handoff_partitions{{stage=\"{stage}\"}} {n}\n"
            ));
        }
        render_view(&mut out, stats);
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }
}

/// A label value as the exposition format wants it: `\`, `"` and newlines
/// escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The node's view of its peers and hints, and its process.
fn render_view(out: &mut String, stats: &NodeStats) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    out.push_str("# HELP gyre_hints_pending_by_target Hints this node holds, per node they are for.\n# TYPE gyre_hints_pending_by_target gauge\n");
    for (target, n) in &stats.hints_by_target {
        let _ = writeln!(
            out,
            "gyre_hints_pending_by_target{{target=\"{}\"}} {n}",
            label(target)
        );
    }
    let up = stats.peers.iter().filter(|p| p.up).count();
    let _ = write!(
        out,
        "# HELP gyre_peers Other members, by whether this node's failure detector judges them up.\n# TYPE gyre_peers gauge\ngyre_peers{{state=\"up\"}} {up}\ngyre_peers{{state=\"down\"}} {}\n",
        stats.peers.len() - up
    );
    let mut members: std::collections::BTreeMap<(&str, &str), u64> =
        std::collections::BTreeMap::new();
    *members.entry((stats.status.as_str(), "up")).or_default() += 1;
    for p in &stats.peers {
        let liveness = if p.up { "up" } else { "down" };
        *members.entry((p.status.as_str(), liveness)).or_default() += 1;
    }
    out.push_str("# HELP gyre_members Members of the cluster this node knows of (itself included), by status and by whether it judges them up.\n# TYPE gyre_members gauge\n");
    for ((status, liveness), n) in members {
        let _ = writeln!(
            out,
            "gyre_members{{status=\"{}\",liveness=\"{liveness}\"}} {n}",
            label(status)
        );
    }
    out.push_str("# HELP gyre_peer_up Whether this node judges the peer up (1) or down (0).\n# TYPE gyre_peer_up gauge\n");
    for p in &stats.peers {
        let _ = writeln!(
            out,
            "gyre_peer_up{{peer=\"{}\"}} {}",
            label(&p.id),
            u8::from(p.up)
        );
    }
    out.push_str("# HELP gyre_peer_phi The failure detector's suspicion of the peer (phi; 8 convicts).\n# TYPE gyre_peer_phi gauge\n");
    for p in &stats.peers {
        if let Some(phi) = p.phi {
            let _ = writeln!(out, "gyre_peer_phi{{peer=\"{}\"}} {phi}", label(&p.id));
        }
    }
    if let Some(p) = &stats.process {
        let _ = write!(
            out,
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}\n\
             # HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds {}\n\
             # HELP process_threads Number of OS threads in the process.\n# TYPE process_threads gauge\nprocess_threads {}\n\
             # HELP process_cpu_seconds Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total {}\n",
            p.resident_bytes,
            p.open_fds,
            p.threads,
            p.cpu_ms as f64 / 1000.0,
        );
    }
}

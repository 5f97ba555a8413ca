//! What the QUIC transport tells Prometheus: requests to each peer by kind
//! and outcome, their round trips, connection attempts, and each live
//! connection's own figures (round-trip estimate, bytes, lost packets).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use gyre_types::NodeId;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::Error;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    peer: String,
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PeerLabel {
    peer: String,
}

impl PeerLabel {
    pub(crate) fn new(peer: NodeId) -> Self {
        Self {
            peer: peer.to_string(),
        }
    }
}

/// Counters and histograms the transport fills as it works.
#[derive(Debug)]
pub(crate) struct Meters {
    requests: Family<RequestLabels, Counter>,
    round_trip: Family<PeerLabel, Histogram>,
    connects: Family<PeerLabel, Counter>,
    connect_failures: Family<PeerLabel, Counter>,
}

impl Meters {
    pub(crate) fn new() -> Self {
        Self {
            requests: Family::default(),
            round_trip: Family::new_with_constructor(|| {
                // 50 µs .. ~1.6 s, doubling.
                Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
            }),
            connects: Family::default(),
            connect_failures: Family::default(),
        }
    }

    /// A request of `kind` to `peer` that ended with `result` after
    /// `took`. Only answered requests count in the round-trip histogram.
    pub(crate) fn request<T>(
        &self,
        peer: NodeId,
        kind: &'static str,
        result: &Result<T, Error>,
        took: Duration,
    ) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(Error::Timeout { .. }) => "timeout",
            Err(Error::Unreachable { .. }) => "unreachable",
            Err(Error::Refused { .. }) => "refused",
            Err(Error::Broken { .. }) => "broken",
            Err(_) => "error",
        };
        let labels = RequestLabels {
            peer: peer.to_string(),
            kind,
            outcome,
        };
        self.requests.get_or_create(&labels).inc();
        if result.is_ok() {
            self.round_trip
                .get_or_create(&PeerLabel { peer: labels.peer })
                .observe(took.as_secs_f64());
        }
    }

    /// A connection attempt to `peer` that succeeded or not.
    pub(crate) fn dialled(&self, peer: NodeId, ok: bool) {
        let family = if ok {
            &self.connects
        } else {
            &self.connect_failures
        };
        family.get_or_create(&PeerLabel::new(peer)).inc();
    }
}

/// Reads one figure of a connection.
type Figure = fn(&LinkFigures) -> u64;

/// One live connection's figures, as quinn keeps them.
#[derive(Clone, Debug)]
pub(crate) struct LinkFigures {
    pub(crate) peer: NodeId,
    pub(crate) rtt: Duration,
    pub(crate) sent_bytes: u64,
    pub(crate) received_bytes: u64,
    pub(crate) lost_packets: u64,
}

/// The transport's metrics for a prometheus-client `Registry`
/// (`register_collector`); made by
/// [`QuicTransport::collector`](crate::QuicTransport::collector).
pub struct TransportCollector {
    pub(crate) meters: Arc<Meters>,
    pub(crate) links: Box<dyn Fn() -> Vec<LinkFigures> + Send + Sync>,
}

impl fmt::Debug for TransportCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportCollector").finish_non_exhaustive()
    }
}

impl Collector for TransportCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let m = &self.meters;
        m.requests.encode(encoder.encode_descriptor(
            "peer_requests",
            "Requests sent to each peer, by kind and outcome",
            None,
            m.requests.metric_type(),
        )?)?;
        m.round_trip.encode(encoder.encode_descriptor(
            "peer_request_duration_seconds",
            "Round trips of answered requests to each peer",
            None,
            m.round_trip.metric_type(),
        )?)?;
        m.connects.encode(encoder.encode_descriptor(
            "peer_connects",
            "Connections this node opened to each peer (more than one: reconnects)",
            None,
            m.connects.metric_type(),
        )?)?;
        m.connect_failures.encode(encoder.encode_descriptor(
            "peer_connect_failures",
            "Failed connection attempts to each peer",
            None,
            m.connect_failures.metric_type(),
        )?)?;

        let links = (self.links)();
        let live = ConstGauge::new(i64::try_from(links.len()).unwrap_or(i64::MAX));
        live.encode(encoder.encode_descriptor(
            "peer_connections",
            "Connections this node holds open to peers",
            None,
            live.metric_type(),
        )?)?;
        let mut rtt = encoder.encode_descriptor(
            "peer_rtt_seconds",
            "The connection's smoothed round-trip estimate (QUIC's), per peer",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for l in &links {
            ConstGauge::new(l.rtt.as_secs_f64())
                .encode(rtt.encode_family(&PeerLabel::new(l.peer))?)?;
        }
        let counters: [(&str, &str, Figure); 3] = [
            (
                "peer_sent_bytes",
                "UDP bytes sent to the peer on the current connection (starts again at 0 when the connection is replaced)",
                |l| l.sent_bytes,
            ),
            (
                "peer_received_bytes",
                "UDP bytes received from the peer on the current connection (starts again at 0 when the connection is replaced)",
                |l| l.received_bytes,
            ),
            (
                "peer_lost_packets",
                "Packets to the peer QUIC judged lost on the current connection",
                |l| l.lost_packets,
            ),
        ];
        for (name, help, get) in counters {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for l in &links {
                ConstCounter::new(get(l)).encode(family.encode_family(&PeerLabel::new(l.peer))?)?;
            }
        }
        Ok(())
    }
}

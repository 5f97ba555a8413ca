//! [`SimTransport`]: the in-memory transport with a traffic meter.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use gyre_node::Peers;
use gyre_transport::{Faults, MemTransport, OutStream, Result, Transport};
use gyre_types::NodeId;
use gyre_wire::{FrameLimit, OneWay, Request, Response, StreamOpen};

/// Requests and answers of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindTraffic {
    /// Requests sent (answered or not).
    pub requests: u64,
    /// Requests answered.
    pub answered: u64,
    /// Encoded bytes of the requests (frame header included), when metered.
    pub request_bytes: u64,
    /// Encoded bytes of the answers, when metered.
    pub answer_bytes: u64,
    /// Objects carried (pushed in the request or fetched in the answer).
    pub items: u64,
    /// Value bytes of those objects.
    pub value_bytes: u64,
}

/// What the nodes of a cluster asked each other, by request kind
/// (`Merkle`, `ListKeys`, `Fetch`, `DeliverHints`, `ReplicaPut`…).
///
/// Requests are always counted; encoded sizes only while
/// [`Traffic::meter_bytes`] is on (encoding every message costs time).
#[derive(Debug, Default)]
pub struct Traffic {
    bytes: AtomicBool,
    kinds: Mutex<BTreeMap<&'static str, KindTraffic>>,
}

impl Traffic {
    /// Turns measuring of encoded sizes on or off.
    pub fn meter_bytes(&self, on: bool) {
        self.bytes.store(on, Ordering::Relaxed);
    }

    /// Everything counted so far.
    pub fn snapshot(&self) -> BTreeMap<&'static str, KindTraffic> {
        self.kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets everything counted so far.
    pub fn reset(&self) {
        self.kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn record(&self, kind: &'static str, f: impl FnOnce(&mut KindTraffic)) {
        let mut kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        f(kinds.entry(kind).or_default());
    }
}

/// A message's size on the wire: its postcard frame, header included.
fn encoded_len<T: serde::Serialize>(msg: &T) -> u64 {
    gyre_wire::frame::encode(msg, FrameLimit::default()).map_or(0, |b| b.len() as u64)
}

fn values(items: &[gyre_wire::Item]) -> (u64, u64) {
    let bytes = items
        .iter()
        .flat_map(|i| i.object.values())
        .map(|v| v.len() as u64)
        .sum();
    (items.len() as u64, bytes)
}

/// A node's [`MemTransport`], counting what it sends into the cluster's
/// [`Traffic`].
#[derive(Clone, Debug)]
pub struct SimTransport {
    inner: MemTransport,
    traffic: Arc<Traffic>,
    duplicate_forwards: bool,
}

impl SimTransport {
    /// `inner`, metered into `traffic`. Unless `duplicate_forwards`, a
    /// forwarded client operation (`Request::Coordinate`) is never
    /// duplicated by the network (see
    /// [`ClusterConfig::duplicate_forwards`](crate::ClusterConfig::duplicate_forwards)).
    pub fn new(inner: MemTransport, traffic: Arc<Traffic>, duplicate_forwards: bool) -> Self {
        Self {
            inner,
            traffic,
            duplicate_forwards,
        }
    }

    /// Sends `request` with the network's duplication off for it alone.
    ///
    /// `MemTransport::request` draws the message's fate and posts it when
    /// first polled, before it awaits anything; polling it once with
    /// duplication off, then restoring the faults, all within one poll of
    /// this task on the single-threaded runtime, changes nothing for any
    /// other message.
    async fn request_once(
        &self,
        peer: NodeId,
        request: Request,
        timeout: Duration,
    ) -> Result<Response> {
        let network = self.inner.network();
        let faults = network.faults();
        if faults.duplicate <= 0.0 {
            return self.inner.request(peer, request, timeout).await;
        }
        let mut asked = std::pin::pin!(self.inner.request(peer, request, timeout));
        network.set_faults(Faults {
            duplicate: 0.0,
            ..faults
        });
        let first = std::future::poll_fn(|cx| Poll::Ready(asked.as_mut().poll(cx))).await;
        network.set_faults(faults);
        match first {
            Poll::Ready(answer) => answer,
            Poll::Pending => asked.await,
        }
    }
}

impl Transport for SimTransport {
    fn local(&self) -> NodeId {
        self.inner.local()
    }

    async fn request(&self, peer: NodeId, request: Request, timeout: Duration) -> Result<Response> {
        let kind = request.kind();
        let bytes = self.traffic.bytes.load(Ordering::Relaxed);
        let request_bytes = if bytes { encoded_len(&request) } else { 0 };
        let pushed = match &request {
            Request::DeliverHints { items } => values(items),
            _ => (0, 0),
        };
        let answer = if !self.duplicate_forwards && matches!(request, Request::Coordinate { .. }) {
            self.request_once(peer, request, timeout).await
        } else {
            self.inner.request(peer, request, timeout).await
        };
        let fetched = match &answer {
            Ok(Response::Items(items) | Response::Chunk { items, .. }) => values(items),
            _ => (0, 0),
        };
        let answer_bytes = match (&answer, bytes) {
            (Ok(a), true) => encoded_len(a),
            _ => 0,
        };
        self.traffic.record(kind, |t| {
            t.requests += 1;
            t.answered += u64::from(answer.is_ok());
            t.request_bytes += request_bytes;
            t.answer_bytes += answer_bytes;
            t.items += pushed.0 + fetched.0;
            t.value_bytes += pushed.1 + fetched.1;
        });
        answer
    }

    async fn send(&self, peer: NodeId, message: OneWay) -> Result<()> {
        self.traffic.record("one_way", |t| t.requests += 1);
        self.inner.send(peer, message).await
    }

    async fn open_stream(&self, peer: NodeId, open: StreamOpen) -> Result<OutStream> {
        self.inner.open_stream(peer, open).await
    }
}

impl Peers for SimTransport {
    async fn learn(&self, id: NodeId, addr: &str) {
        self.inner.learn(id, addr).await;
    }

    async fn discover(&self, seed: &str) -> std::result::Result<NodeId, String> {
        self.inner.discover(seed).await
    }
}

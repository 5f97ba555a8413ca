//! One conformance suite for every [`Transport`] implementation.
//!
//! Each check is a generic `async fn` over a [`Harness`], which builds a
//! cluster of connected nodes of one implementation; the `conformance!`
//! macro instantiates every check as a `#[tokio::test]` for one harness.
//! Adding an implementation is a `Harness` impl and one `conformance!` line
//! (see "Implementations" at the end of the generic part).
//!
//! The checks run on the real clock with short deadlines; timeouts only
//! detect that something does not happen (a send that blocks, an answer
//! that never comes) or guard against hangs, never to wait for an event.
//!
//! The `mem_faults` module at the end checks the fault injection of
//! [`MemNetwork`], which only the in-memory transport has.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gyre_membership::{Heartbeat, Message};
use gyre_transport::tls::ClusterCa;
use gyre_transport::{
    Error, Inbound, MemNetwork, MemTransport, QuicConfig, QuicTransport, Transport,
};
use gyre_types::{BucketName, Key, NodeId, PartitionId};
use gyre_wire::{Item, KeyVersion, Object, OneWay, Request, Response, StreamDone, StreamOpen};
use tokio::sync::mpsc::Receiver;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::timeout;

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// An id no harness gives to a node: requests to it must fail.
const UNKNOWN: NodeId = NodeId::new(0x00dd_dead_beef);

/// Safety net: anything that should happen at once must happen within this.
const SOON: Duration = Duration::from_secs(5);

/// A running cluster whose nodes all reach each other.
struct Cluster<T> {
    /// The nodes' transports.
    nodes: Vec<Arc<T>>,
    /// What each node receives, in the order of `nodes`.
    inbound: Vec<Receiver<Inbound>>,
    /// Whatever must live as long as the cluster (a network, endpoints,
    /// certificates, temporary directories…).
    _keep: Box<dyn Any + Send>,
}

impl<T: Transport> Cluster<T> {
    fn new(transports: Vec<T>, inbound: Vec<Receiver<Inbound>>, keep: impl Any + Send) -> Self {
        assert_eq!(transports.len(), inbound.len());
        Self {
            nodes: transports.into_iter().map(Arc::new).collect(),
            inbound,
            _keep: Box::new(keep),
        }
    }

    /// The transport of node `i` and its id.
    fn node(&self, i: usize) -> (Arc<T>, NodeId) {
        (Arc::clone(&self.nodes[i]), self.nodes[i].local())
    }

    /// Takes node `i`'s inbound channel (once).
    fn take_inbound(&mut self, i: usize) -> Receiver<Inbound> {
        let (_, closed) = tokio::sync::mpsc::channel(1);
        std::mem::replace(&mut self.inbound[i], closed)
    }
}

/// Builds clusters of one transport implementation.
trait Harness {
    /// The implementation.
    type T: Transport;

    /// `n` nodes that all reach each other, none with the id [`UNKNOWN`],
    /// each with the receiver of what it is sent.
    async fn cluster(n: usize) -> Cluster<Self::T>;
}

/// Instantiates every check of the suite for one harness, in a module.
macro_rules! conformance {
    ($module:ident, $harness:ty) => {
        mod $module {
            use super::*;

            conformance!(@tests $harness;
                request_is_answered,
                concurrent_requests_match_their_answers,
                requests_and_answers_of_every_size,
                silent_peer_times_out,
                dropped_responder_is_an_error,
                unknown_peer_is_an_error,
                one_way_message_arrives,
                bulk_stream_arrives_in_order,
                bulk_stream_has_backpressure,
                receiver_dropping_stream_breaks_it,
            );
        }
    };
    (@tests $harness:ty; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                super::$check::<$harness>().await;
            }
        )+
    };
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn bucket() -> BucketName {
    BucketName::new("conformance").expect("a valid bucket name")
}

fn key(i: usize) -> Key {
    Key::new(format!("key-{i:06}").into_bytes()).expect("a valid key")
}

/// An 8 KiB key, so that a few hundred items fill any flow-control window.
fn big_key(i: usize) -> Key {
    let mut bytes = format!("key-{i:06}-").into_bytes();
    bytes.resize(8 * 1024, b'x');
    Key::new(bytes).expect("a valid key")
}

fn item(key: Key) -> Item {
    Item {
        bucket: bucket(),
        key,
        n_val: 3,
        object: Object::default(),
    }
}

fn replica_get(i: usize) -> Request {
    Request::ReplicaGet {
        layout: 3,
        bucket: bucket(),
        key: key(i),
    }
}

fn gossip(id: NodeId, heartbeat: u64) -> OneWay {
    OneWay::Gossip(Message::Ack2 {
        states: Vec::new(),
        heartbeats: vec![Heartbeat {
            id,
            generation: 1,
            heartbeat,
        }],
    })
}

/// The heartbeat a [`gossip`] message carries.
fn heartbeat_of(message: &OneWay) -> u64 {
    match message {
        OneWay::Gossip(Message::Ack2 { heartbeats, .. }) => heartbeats[0].heartbeat,
        other => panic!("unexpected {other:?}"),
    }
}

fn handoff() -> StreamOpen {
    StreamOpen::Handoff {
        partition: PartitionId::new(5),
        layout: 3,
    }
}

/// The answer every plain server gives.
fn answer(request: &Request) -> Response {
    match request {
        Request::Ping => Response::Pong,
        Request::ReplicaGet { .. } => Response::Object(None),
        other => panic!("unexpected request {other:?}"),
    }
}

/// Answers every request on `inbound` with [`answer`], reporting who asked
/// on the returned channel.
fn serve(mut inbound: Receiver<Inbound>) -> tokio::sync::mpsc::UnboundedReceiver<NodeId> {
    let (asked, askers) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = inbound.recv().await {
            if let Inbound::Request {
                from,
                request,
                reply,
            } = message
            {
                let _ = asked.send(from);
                reply.respond(answer(&request));
            }
        }
    });
    askers
}

/// The next thing `inbound` receives, failing the test if nothing comes soon.
async fn next(inbound: &mut Receiver<Inbound>) -> Inbound {
    timeout(SOON, inbound.recv())
        .await
        .expect("something arrives in time")
        .expect("the inbound channel is open")
}

// ---------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------

/// Requests get their answers, both ways, and the receiver knows who asked.
async fn request_is_answered<H: Harness>() {
    let mut cluster = H::cluster(2).await;
    let (a, a_id) = cluster.node(0);
    let (b, b_id) = cluster.node(1);
    let mut asked_a = serve(cluster.take_inbound(0));
    let mut asked_b = serve(cluster.take_inbound(1));

    let pong = a.request(b_id, Request::Ping, SOON).await;
    assert_eq!(pong.expect("ping answered"), Response::Pong);
    assert_eq!(asked_b.recv().await, Some(a_id));

    let object = a.request(b_id, replica_get(1), SOON).await;
    assert_eq!(object.expect("get answered"), Response::Object(None));
    assert_eq!(asked_b.recv().await, Some(a_id));

    let pong = b.request(a_id, Request::Ping, SOON).await;
    assert_eq!(pong.expect("ping answered"), Response::Pong);
    assert_eq!(asked_a.recv().await, Some(b_id));
}

/// 1,000 concurrent requests, answered out of order, each get their own
/// answer.
async fn concurrent_requests_match_their_answers<H: Harness>() {
    const REQUESTS: usize = 1000;
    let mut cluster = H::cluster(2).await;
    let (a, _) = cluster.node(0);
    let (_, b_id) = cluster.node(1);
    let mut inbound = cluster.take_inbound(1);
    tokio::spawn(async move {
        let mut order = 0_usize;
        while let Some(message) = inbound.recv().await {
            let Inbound::Request { request, reply, .. } = message else {
                continue;
            };
            let Request::ReplicaGet { bucket, key, .. } = request else {
                panic!("unexpected request {request:?}");
            };
            // Answer out of order: later requests may overtake earlier ones.
            order += 1;
            let delay = order % 7;
            tokio::spawn(async move {
                for _ in 0..delay {
                    tokio::task::yield_now().await;
                }
                let version = u128::from(key.as_bytes()[key.len() - 1]);
                reply.respond(Response::Keys(vec![KeyVersion {
                    bucket,
                    key,
                    version,
                }]));
            });
        }
    });

    let mut requests = JoinSet::new();
    for i in 0..REQUESTS {
        let a = Arc::clone(&a);
        requests.spawn(async move { (i, a.request(b_id, replica_get(i), SOON).await) });
    }
    let mut answered = 0;
    while let Some(joined) = requests.join_next().await {
        let (i, response) = joined.expect("the request task does not panic");
        let key = key(i);
        let expected = Response::Keys(vec![KeyVersion {
            bucket: bucket(),
            version: u128::from(key.as_bytes()[key.len() - 1]),
            key,
        }]);
        assert_eq!(response.expect("answered"), expected, "request {i}");
        answered += 1;
    }
    assert_eq!(answered, REQUESTS);
}

/// Small and large requests and answers, concurrently, each get their own
/// answer (on QUIC: small ones share the lane, large ones take streams,
/// and a large answer may come back on the lane).
async fn requests_and_answers_of_every_size<H: Harness>() {
    let mut cluster = H::cluster(2).await;
    let (a, _) = cluster.node(0);
    let (_, b_id) = cluster.node(1);
    let mut inbound = cluster.take_inbound(1);
    // Echoes every item it is given, and answers a get with `n` big items.
    tokio::spawn(async move {
        while let Some(message) = inbound.recv().await {
            let Inbound::Request { request, reply, .. } = message else {
                continue;
            };
            let items = match request {
                Request::ReplicaPut { item, .. } => vec![item],
                Request::DeliverHints { items } => items,
                Request::ReplicaGet { key, .. } => {
                    let n = usize::from(key.as_bytes()[key.len() - 1] - b'0');
                    (0..n * 64).map(|i| item(big_key(i))).collect()
                }
                other => panic!("unexpected request {other:?}"),
            };
            reply.respond(Response::Items(items));
        }
    });

    let key_of = |len: usize| {
        let mut bytes = format!("k{len}-").into_bytes();
        bytes.resize(len, b'y');
        Key::new(bytes).expect("a valid key")
    };
    let mut requests = JoinSet::new();
    for round in 0..8 {
        // One item: from a few bytes to a 64 KiB key.
        for len in [1, 100, 1000, 60 * 1024, Key::MAX_LEN] {
            let a = Arc::clone(&a);
            let it = item(key_of(len));
            let request = Request::ReplicaPut {
                layout: 3,
                item: it.clone(),
            };
            requests.spawn(async move { (a.request(b_id, request, SOON).await, vec![it]) });
        }
        // Many items: up to 4 MiB in one request.
        let a2 = Arc::clone(&a);
        let items: Vec<Item> = (0..(round + 1) * 64).map(|i| item(big_key(i))).collect();
        let request = Request::DeliverHints {
            items: items.clone(),
        };
        requests.spawn(async move { (a2.request(b_id, request, SOON).await, items) });
        // A small request with a large answer: `round` × 512 KiB.
        let a3 = Arc::clone(&a);
        let request = Request::ReplicaGet {
            layout: 3,
            bucket: bucket(),
            key: Key::new(format!("get-{round}").into_bytes()).expect("a valid key"),
        };
        let expected = (0..round * 64).map(|i| item(big_key(i))).collect();
        requests.spawn(async move { (a3.request(b_id, request, SOON).await, expected) });
    }
    let mut answered = 0;
    while let Some(joined) = requests.join_next().await {
        let (response, expected) = joined.expect("the request task does not panic");
        assert_eq!(response.expect("answered"), Response::Items(expected));
        answered += 1;
    }
    assert_eq!(answered, 8 * 7);
}

/// A peer that keeps the request but never answers: `Timeout` at about the
/// deadline.
async fn silent_peer_times_out<H: Harness>() {
    let mut cluster = H::cluster(2).await;
    let (a, _) = cluster.node(0);
    let (_, b_id) = cluster.node(1);
    let mut inbound = cluster.take_inbound(1);
    let (got, got_it) = oneshot::channel();
    tokio::spawn(async move {
        let kept = next(&mut inbound).await;
        let _ = got.send(());
        // Hold the request (and its responder) until the channel ends.
        let _more = inbound.recv().await;
        drop(kept);
    });

    let deadline = Duration::from_millis(300);
    let started = Instant::now();
    let result = a.request(b_id, Request::Ping, deadline).await;
    let elapsed = started.elapsed();
    match result {
        Err(Error::Timeout { peer, after }) => {
            assert_eq!(peer, b_id);
            assert_eq!(after, deadline);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(elapsed >= deadline, "gave up after {elapsed:?}");
    assert!(
        elapsed < deadline + Duration::from_secs(1),
        "took {elapsed:?}"
    );
    timeout(SOON, got_it)
        .await
        .expect("the peer got the request")
        .expect("the peer task runs");
}

/// A peer that drops the request without answering: an error (`Broken` at
/// once, or `Timeout` at the deadline), not a hang.
async fn dropped_responder_is_an_error<H: Harness>() {
    let mut cluster = H::cluster(2).await;
    let (a, _) = cluster.node(0);
    let (_, b_id) = cluster.node(1);
    let mut inbound = cluster.take_inbound(1);
    tokio::spawn(async move {
        while let Some(message) = inbound.recv().await {
            drop(message);
        }
    });

    let deadline = Duration::from_secs(2);
    let result = timeout(deadline + SOON, a.request(b_id, Request::Ping, deadline))
        .await
        .expect("the request ends");
    assert!(
        matches!(result, Err(Error::Broken { .. } | Error::Timeout { .. })),
        "expected Broken or Timeout, got {result:?}"
    );
}

/// Requests, messages and streams to a node that does not exist fail.
async fn unknown_peer_is_an_error<H: Harness>() {
    let cluster = H::cluster(1).await;
    let (a, _) = cluster.node(0);
    let deadline = Duration::from_secs(1);

    let result = timeout(deadline + SOON, a.request(UNKNOWN, Request::Ping, deadline))
        .await
        .expect("the request ends");
    assert!(result.is_err(), "got {result:?}");

    let result = timeout(SOON, a.send(UNKNOWN, gossip(a.local(), 1)))
        .await
        .expect("the send ends");
    assert!(result.is_err(), "got {result:?}");

    let result = timeout(SOON, a.open_stream(UNKNOWN, handoff()))
        .await
        .expect("the open ends");
    assert!(result.is_err(), "got {result:?}");
}

/// A one-way message arrives whole, with its sender.
async fn one_way_message_arrives<H: Harness>() {
    let mut cluster = H::cluster(2).await;
    let (a, a_id) = cluster.node(0);
    let (_, b_id) = cluster.node(1);
    let mut inbound = cluster.take_inbound(1);

    a.send(b_id, gossip(a_id, 42)).await.expect("sent");
    match next(&mut inbound).await {
        Inbound::Message { from, message } => {
            assert_eq!(from, a_id);
            assert_eq!(message, gossip(a_id, 42));
        }
        other => panic!("expected a message, got {other:?}"),
    }
}

/// 1,000 items arrive in order and the sender gets the receiver's verdict.
async fn bulk_stream_arrives_in_order<H: Harness>() {
    const ITEMS: usize = 1000;
    let mut cluster = H::cluster(2).await;
    let (a, a_id) = cluster.node(0);
    let (_, b_id) = cluster.node(1);
    let mut inbound = cluster.take_inbound(1);
    let receiver = tokio::spawn(async move {
        let Inbound::Stream {
            from,
            open,
            mut stream,
        } = next(&mut inbound).await
        else {
            panic!("expected a stream");
        };
        assert_eq!(from, a_id);
        assert_eq!(open, handoff());
        let mut received = 0_u64;
        while let Some(got) = stream.next().await.expect("the stream holds") {
            assert_eq!(got, item(key(received as usize)), "item {received}");
            received += 1;
        }
        stream.finish(StreamDone::Stored { received });
        received
    });

    let mut out = a.open_stream(b_id, handoff()).await.expect("opened");
    for i in 0..ITEMS {
        out.send(item(key(i))).await.expect("sent");
    }
    let done = timeout(SOON, out.finish())
        .await
        .expect("a verdict in time")
        .expect("a verdict");
    assert_eq!(
        done,
        StreamDone::Stored {
            received: ITEMS as u64
        }
    );
    assert_eq!(receiver.await.expect("the receiver ran"), ITEMS as u64);
}

/// A receiver that does not read makes the sender wait; once it reads, the
/// sender goes on.
async fn bulk_stream_has_backpressure<H: Harness>() {
    /// Far beyond any buffer or window: 16 MiB of items.
    const MAX_UNREAD: usize = 2000;
    const MORE: usize = 10;
    let blocked = Duration::from_millis(200);
    let mut cluster = H::cluster(2).await;
    let (a, _) = cluster.node(0);
    let (_, b_id) = cluster.node(1);
    let mut inbound = cluster.take_inbound(1);

    let mut out = a.open_stream(b_id, handoff()).await.expect("opened");
    out.send(item(big_key(0))).await.expect("sent");
    let Inbound::Stream { mut stream, .. } = next(&mut inbound).await else {
        panic!("expected a stream");
    };

    let mut sent = 1;
    let mut blocked_at = None;
    while sent < MAX_UNREAD {
        match timeout(blocked, out.send(item(big_key(sent)))).await {
            Ok(result) => {
                result.expect("sent");
                sent += 1;
            }
            Err(_) => {
                blocked_at = Some(sent);
                break;
            }
        }
    }
    let blocked_at = blocked_at.expect("the sender waits for a receiver that does not read");
    assert!(blocked_at > 1, "the sender blocked at once");

    let reader = tokio::spawn(async move {
        let mut received = 0;
        while let Some(got) = stream.next().await.expect("the stream holds") {
            assert_eq!(got, item(big_key(received)), "item {received}");
            received += 1;
        }
        stream.finish(StreamDone::Stored {
            received: received as u64,
        });
        received
    });
    for _ in 0..MORE {
        timeout(SOON, out.send(item(big_key(sent))))
            .await
            .expect("the sender resumes")
            .expect("sent");
        sent += 1;
    }
    let done = timeout(SOON, out.finish())
        .await
        .expect("a verdict in time")
        .expect("a verdict");
    assert_eq!(
        done,
        StreamDone::Stored {
            received: sent as u64
        }
    );
    assert_eq!(reader.await.expect("the reader ran"), blocked_at + MORE);
}

/// A receiver that drops the stream half-way: the sender's `send` or
/// `finish` fails rather than hangs.
async fn receiver_dropping_stream_breaks_it<H: Harness>() {
    const READ: usize = 10;
    const AT_MOST: usize = 10_000;
    let mut cluster = H::cluster(2).await;
    let (a, _) = cluster.node(0);
    let (_, b_id) = cluster.node(1);
    let mut inbound = cluster.take_inbound(1);
    let (dropped, dropped_it) = oneshot::channel();
    tokio::spawn(async move {
        let Inbound::Stream { mut stream, .. } = next(&mut inbound).await else {
            panic!("expected a stream");
        };
        for i in 0..READ {
            let got = stream.next().await.expect("the stream holds");
            assert_eq!(got, Some(item(key(i))));
        }
        drop(stream);
        let _ = dropped.send(());
        // Keep the channel open so that only the stream goes away.
        let _more = inbound.recv().await;
    });

    let mut out = a.open_stream(b_id, handoff()).await.expect("opened");
    for i in 0..READ {
        out.send(item(key(i))).await.expect("sent");
    }
    timeout(SOON, dropped_it)
        .await
        .expect("the receiver dropped the stream")
        .expect("the receiver ran");

    let outcome = timeout(SOON, async move {
        for i in READ..AT_MOST {
            out.send(item(key(i))).await?;
        }
        out.finish().await.map(|_| ())
    })
    .await
    .expect("the sender notices rather than hangs");
    assert!(
        matches!(outcome, Err(Error::Broken { .. })),
        "got {outcome:?}"
    );
}

// ---------------------------------------------------------------------------
// Implementations
// ---------------------------------------------------------------------------

/// The in-memory network, without faults.
struct MemHarness;

impl Harness for MemHarness {
    type T = MemTransport;

    async fn cluster(n: usize) -> Cluster<MemTransport> {
        let network = MemNetwork::new(0x5eed);
        let (transports, inbound) = (1..=n as u64)
            .map(|id| network.join(NodeId::new(id)))
            .unzip();
        Cluster::new(transports, inbound, network)
    }
}

conformance!(mem, MemHarness);

/// `n` QUIC endpoints on loopback under one cluster CA, each told the
/// others' addresses.
struct QuicHarness;

impl Harness for QuicHarness {
    type T = QuicTransport;

    async fn cluster(n: usize) -> Cluster<QuicTransport> {
        let ca = ClusterCa::generate("conformance").expect("a CA");
        let any = "127.0.0.1:0".parse().expect("an address");
        let (transports, inbound): (Vec<QuicTransport>, Vec<_>) = (1..=n as u64)
            .map(|id| {
                let identity = ca.identity(NodeId::new(id)).expect("an identity");
                QuicTransport::bind(QuicConfig::new(any, "conformance", identity)).expect("bound")
            })
            .unzip();
        for t in &transports {
            for (i, peer) in transports.iter().enumerate() {
                t.set_peer_addr(
                    NodeId::new(i as u64 + 1),
                    peer.local_addr().expect("an address"),
                );
            }
        }
        Cluster::new(transports, inbound, ca)
    }
}

conformance!(quic, QuicHarness);

// ---------------------------------------------------------------------------
// MemNetwork's faults
// ---------------------------------------------------------------------------

mod mem_faults {
    use gyre_transport::Faults;
    use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

    use super::*;

    /// A short deadline for requests expected to be lost.
    const LOST: Duration = Duration::from_millis(100);

    /// What a node saw.
    #[derive(Debug, PartialEq)]
    enum Seen {
        /// A request (answered with a pong) from this node.
        Request(NodeId),
        /// A gossip message from this node with this heartbeat.
        Message(NodeId, u64),
    }

    /// A node that answers pings and reports whatever it receives.
    struct Node {
        id: NodeId,
        transport: MemTransport,
        seen: UnboundedReceiver<Seen>,
    }

    impl Node {
        fn join(network: &MemNetwork, id: u64) -> Self {
            let (transport, mut inbound) = network.join(NodeId::new(id));
            let (saw, seen) = unbounded_channel();
            tokio::spawn(async move {
                while let Some(message) = inbound.recv().await {
                    let _ = match message {
                        Inbound::Request {
                            from,
                            request,
                            reply,
                        } => {
                            reply.respond(answer(&request));
                            saw.send(Seen::Request(from))
                        }
                        Inbound::Message { from, message } => {
                            saw.send(Seen::Message(from, heartbeat_of(&message)))
                        }
                        Inbound::Stream { .. } => Ok(()),
                    };
                }
            });
            Self {
                id: NodeId::new(id),
                transport,
                seen,
            }
        }

        async fn ping(&self, peer: &Node, deadline: Duration) -> Result<Response, Error> {
            self.transport
                .request(peer.id, Request::Ping, deadline)
                .await
        }

        async fn gossip(&self, peer: &Node, heartbeat: u64) {
            let message = gossip(self.id, heartbeat);
            self.transport.send(peer.id, message).await.expect("sent");
        }

        async fn next_seen(&mut self) -> Seen {
            timeout(SOON, self.seen.recv())
                .await
                .expect("something arrives in time")
                .expect("the node runs")
        }

        /// Sends a marker from `from` over a healthy link and checks that it
        /// is the next thing this node sees: whatever was sent before it was
        /// lost.
        async fn nothing_else_arrived(&mut self, from: &Node) {
            const MARKER: u64 = u64::MAX;
            from.gossip(self, MARKER).await;
            assert_eq!(self.next_seen().await, Seen::Message(from.id, MARKER));
        }
    }

    fn assert_timeout(result: Result<Response, Error>) {
        assert!(
            matches!(result, Err(Error::Timeout { .. })),
            "expected a timeout, got {result:?}"
        );
    }

    #[tokio::test]
    async fn symmetric_partition_then_heal() {
        let network = MemNetwork::new(1);
        let mut a = Node::join(&network, 1);
        let mut b = Node::join(&network, 2);

        network.partition(a.id, b.id);
        assert_timeout(a.ping(&b, LOST).await);
        assert_timeout(b.ping(&a, LOST).await);
        a.gossip(&b, 1).await;
        b.gossip(&a, 2).await;

        network.heal();
        b.nothing_else_arrived(&a).await;
        a.nothing_else_arrived(&b).await;
        assert_eq!(a.ping(&b, SOON).await.expect("answered"), Response::Pong);
        assert_eq!(b.ping(&a, SOON).await.expect("answered"), Response::Pong);
    }

    /// With a→b cut, b's messages and requests still reach a, but a's
    /// answers do not reach b: b's requests time out too.
    #[tokio::test]
    async fn one_way_partition() {
        let network = MemNetwork::new(2);
        let mut a = Node::join(&network, 1);
        let mut b = Node::join(&network, 2);

        network.partition_one_way(a.id, b.id);
        a.gossip(&b, 1).await;
        assert_timeout(a.ping(&b, LOST).await);

        b.gossip(&a, 2).await;
        assert_eq!(a.next_seen().await, Seen::Message(b.id, 2));
        assert_timeout(b.ping(&a, LOST).await);
        assert_eq!(a.next_seen().await, Seen::Request(b.id));

        network.heal();
        b.nothing_else_arrived(&a).await;
        assert_eq!(b.ping(&a, SOON).await.expect("answered"), Response::Pong);
    }

    #[tokio::test]
    async fn isolate_cuts_every_link_of_a_node() {
        let network = MemNetwork::new(3);
        let a = Node::join(&network, 1);
        let b = Node::join(&network, 2);
        let c = Node::join(&network, 3);

        network.isolate(c.id);
        assert_timeout(a.ping(&c, LOST).await);
        assert_timeout(c.ping(&b, LOST).await);
        assert_eq!(a.ping(&b, SOON).await.expect("answered"), Response::Pong);

        network.heal();
        assert_eq!(a.ping(&c, SOON).await.expect("answered"), Response::Pong);
        assert_eq!(c.ping(&b, SOON).await.expect("answered"), Response::Pong);
    }

    #[tokio::test]
    async fn leave_and_rejoin() {
        let network = MemNetwork::new(4);
        let a = Node::join(&network, 1);
        let mut b = Node::join(&network, 2);

        network.leave(b.id);
        let result = a.ping(&b, SOON).await;
        assert!(
            matches!(result, Err(Error::Unreachable { .. })),
            "got {result:?}"
        );
        // The departed node's inbound channel ends, and its transport is dead.
        assert_eq!(timeout(SOON, b.seen.recv()).await.expect("ends"), None);
        let result = b.transport.send(a.id, gossip(b.id, 1)).await;
        assert!(matches!(result, Err(Error::Shutdown)), "got {result:?}");

        // A restart: a new transport and channel under the same id.
        let old = b.transport.clone();
        let b = Node::join(&network, 2);
        assert_eq!(a.ping(&b, SOON).await.expect("answered"), Response::Pong);
        assert_eq!(b.ping(&a, SOON).await.expect("answered"), Response::Pong);
        let result = old.request(a.id, Request::Ping, SOON).await;
        assert!(matches!(result, Err(Error::Shutdown)), "got {result:?}");
    }

    #[tokio::test]
    async fn dropping_everything_delivers_nothing() {
        let network = MemNetwork::new(5);
        let a = Node::join(&network, 1);
        let mut b = Node::join(&network, 2);

        network.set_faults(Faults {
            drop: 1.0,
            ..Faults::default()
        });
        for heartbeat in 0..100 {
            a.gossip(&b, heartbeat).await;
        }
        assert_timeout(a.ping(&b, LOST).await);
        let mut out = a
            .transport
            .open_stream(b.id, handoff())
            .await
            .expect("opened");
        let broke = timeout(SOON, async move {
            for i in 0..1000 {
                out.send(item(key(i))).await?;
            }
            out.finish().await.map(|_| ())
        })
        .await
        .expect("the stream breaks rather than hangs");
        assert!(matches!(broke, Err(Error::Broken { .. })), "got {broke:?}");

        network.set_faults(Faults::default());
        b.nothing_else_arrived(&a).await;
    }

    /// Lost answers: the question arrives, the requester still times out.
    #[tokio::test]
    async fn lost_answers_time_out() {
        let network = MemNetwork::new(6);
        let a = Node::join(&network, 1);
        let mut b = Node::join(&network, 2);

        // The seed decides which message is lost; find a request whose
        // question got through and whose answer did not.
        network.set_faults(Faults {
            drop: 0.5,
            ..Faults::default()
        });
        let mut answered = 0;
        let mut lost_answers = 0;
        for _ in 0..20 {
            let result = a.ping(&b, Duration::from_millis(20)).await;
            let arrived = b.seen.try_recv().is_ok();
            match result {
                Ok(_) => answered += 1,
                Err(Error::Timeout { .. }) if arrived => lost_answers += 1,
                Err(Error::Timeout { .. }) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            answered > 0 && lost_answers > 0,
            "seed {}: {answered} answered, {lost_answers} answers lost",
            network.seed()
        );
    }

    #[tokio::test]
    async fn duplicates_arrive_twice() {
        let network = MemNetwork::new(7);
        let a = Node::join(&network, 1);
        let mut b = Node::join(&network, 2);

        network.set_faults(Faults {
            duplicate: 1.0,
            ..Faults::default()
        });
        a.gossip(&b, 7).await;
        assert_eq!(b.next_seen().await, Seen::Message(a.id, 7));
        assert_eq!(b.next_seen().await, Seen::Message(a.id, 7));
        assert_eq!(a.ping(&b, SOON).await.expect("answered"), Response::Pong);
        assert_eq!(b.next_seen().await, Seen::Request(a.id));
        assert_eq!(b.next_seen().await, Seen::Request(a.id));

        network.set_faults(Faults::default());
        b.nothing_else_arrived(&a).await;
    }

    /// Requests and answers with random delays (and duplicates) are still
    /// matched.
    #[tokio::test]
    async fn delayed_requests_are_answered() {
        let network = MemNetwork::new(8);
        let a = Arc::new(Node::join(&network, 1));
        let b = Node::join(&network, 2);
        network.set_faults(Faults {
            duplicate: 0.3,
            delay: (Duration::from_millis(1), Duration::from_millis(30)),
            ..Faults::default()
        });
        let mut requests = JoinSet::new();
        for i in 0..100 {
            let a = Arc::clone(&a);
            let b = b.id;
            requests.spawn(async move { a.transport.request(b, replica_get(i), SOON).await });
        }
        while let Some(joined) = requests.join_next().await {
            let response = joined.expect("the request task does not panic");
            assert_eq!(response.expect("answered"), Response::Object(None));
        }
    }

    /// The heartbeats of 100 gossip messages sent at once with random
    /// delays, in the order they arrive.
    async fn arrival_order(seed: u64) -> Vec<u64> {
        let network = MemNetwork::new(seed);
        let (a, _a_inbound) = network.join(NodeId::new(1));
        let (_b, mut b_inbound) = network.join(NodeId::new(2));
        network.set_faults(Faults {
            delay: (Duration::ZERO, Duration::from_millis(100)),
            ..Faults::default()
        });
        for heartbeat in 0..100 {
            a.send(NodeId::new(2), gossip(a.local(), heartbeat))
                .await
                .expect("sent");
        }
        let mut order = Vec::new();
        for _ in 0..100 {
            match next(&mut b_inbound).await {
                Inbound::Message { message, .. } => order.push(heartbeat_of(&message)),
                other => panic!("seed {seed}: unexpected {other:?}"),
            }
        }
        order
    }

    /// On tokio's paused clock, as the simulator will run it.
    #[tokio::test(start_paused = true)]
    async fn delays_reorder_reproducibly() {
        let seed = 0x00dd_5eed;
        let first = arrival_order(seed).await;
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>(), "seed {seed}");
        assert_ne!(first, sorted, "seed {seed}: delays did not reorder");
        let second = arrival_order(seed).await;
        assert_eq!(first, second, "seed {seed}: not reproducible");
        let other = arrival_order(seed + 1).await;
        assert_ne!(first, other, "seeds {seed} and {}", seed + 1);
    }

    /// A bulk stream breaks when its link is cut: the receiver reads what
    /// was already through, then an error; the sender gets an error.
    #[tokio::test]
    async fn partition_breaks_stream() {
        let network = MemNetwork::new(9);
        let (a, _a_inbound) = network.join(NodeId::new(1));
        let (b, mut b_inbound) = network.join(NodeId::new(2));

        let mut out = a.open_stream(b.local(), handoff()).await.expect("opened");
        let Inbound::Stream { mut stream, .. } = next(&mut b_inbound).await else {
            panic!("expected a stream");
        };
        out.send(item(key(0))).await.expect("sent");
        let got = timeout(SOON, stream.next()).await.expect("in time");
        assert_eq!(got.expect("the stream holds"), Some(item(key(0))));

        network.partition(a.local(), b.local());
        let got = timeout(SOON, stream.next()).await.expect("in time");
        assert!(matches!(got, Err(Error::Broken { .. })), "got {got:?}");
        let broke = timeout(SOON, async move {
            for i in 1..1000 {
                out.send(item(key(i))).await?;
            }
            out.finish().await.map(|_| ())
        })
        .await
        .expect("the sender notices");
        assert!(matches!(broke, Err(Error::Broken { .. })), "got {broke:?}");
    }
}

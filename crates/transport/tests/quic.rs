//! QuicTransport over real QUIC on loopback: many concurrent requests on
//! one connection, reconnecting to a restarted peer (and the metrics that
//! tell of it), a link kept through a seconds-long cut answering at once
//! after the heal, garbage datagrams and
//! oversized frames shrugged off (on a stream of their own or on the
//! lane), and handshakes refused for the wrong
//! cluster or a claimed id that the certificate does not carry.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gyre_transport::tls::{self, ClusterCa};
use gyre_transport::{Error, Inbound, QuicConfig, QuicTransport, Transport};
use gyre_types::{BucketName, Key, NodeId};
use gyre_wire::{Answer, FrameLimit, Hello, HelloReply, Open, Request, Response, frame};
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(10);

fn node(n: u64) -> NodeId {
    NodeId::new(n)
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn bind(
    ca: &ClusterCa,
    id: u64,
    addr: SocketAddr,
    cluster: &str,
) -> (QuicTransport, mpsc::Receiver<Inbound>) {
    let config = QuicConfig::new(addr, cluster, ca.identity(node(id)).unwrap());
    QuicTransport::bind(config).unwrap()
}

/// Answers every request: Ping with Pong, ReplicaGet with the key echoed
/// back as a list of keys, so that answers can be matched to requests.
fn serve(mut inbound: mpsc::Receiver<Inbound>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(msg) = inbound.recv().await {
            if let Inbound::Request { request, reply, .. } = msg {
                let response = match request {
                    Request::ReplicaGet { bucket, key, .. } => {
                        Response::Keys(vec![gyre_wire::KeyVersion {
                            bucket,
                            key,
                            version: 0,
                        }])
                    }
                    _ => Response::Pong,
                };
                reply.respond(response);
            }
        }
    })
}

fn get(i: usize) -> Request {
    Request::ReplicaGet {
        layout: 1,
        bucket: BucketName::new("b").unwrap(),
        key: Key::new(format!("k{i}").into_bytes()).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_requests_are_all_answered() {
    let ca = ClusterCa::generate("test").unwrap();
    let (a, _a_in) = bind(&ca, 1, loopback(), "test");
    let (b, b_in) = bind(&ca, 2, loopback(), "test");
    a.set_peer_addr(node(2), b.local_addr().unwrap());
    let _server = serve(b_in);

    let a = Arc::new(a);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10_000 {
        let a = Arc::clone(&a);
        tasks.spawn(async move { (i, a.request(node(2), get(i), Duration::from_secs(60)).await) });
    }
    let mut answered = 0;
    while let Some(joined) = tasks.join_next().await {
        let (i, response) = joined.unwrap();
        match response.unwrap() {
            Response::Keys(keys) => assert_eq!(keys[0].key.as_bytes(), format!("k{i}").as_bytes()),
            other => panic!("request {i} got {other:?}"),
        }
        answered += 1;
    }
    assert_eq!(answered, 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_is_reconnected_without_intervention() {
    let ca = ClusterCa::generate("test").unwrap();
    let (a, _a_in) = bind(&ca, 1, loopback(), "test");
    let (b, b_in) = bind(&ca, 2, loopback(), "test");
    let b_addr = b.local_addr().unwrap();
    a.set_peer_addr(node(2), b_addr);
    let server = serve(b_in);
    assert_eq!(
        a.request(node(2), Request::Ping, T).await.unwrap(),
        Response::Pong
    );

    // The peer dies: requests fail (quickly, not after the idle timeout).
    b.shutdown().await;
    drop(b);
    server.abort();
    let err = a
        .request(node(2), Request::Ping, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Broken { .. } | Error::Unreachable { .. } | Error::Timeout { .. }
        ),
        "{err}"
    );

    // It comes back on the same address; the next requests reconnect.
    let (b, b_in) = bind(&ca, 2, b_addr, "test");
    let _server = serve(b_in);
    let deadline = Instant::now() + T;
    loop {
        match a
            .request(node(2), Request::Ping, Duration::from_secs(2))
            .await
        {
            Ok(r) => {
                assert_eq!(r, Response::Pong);
                break;
            }
            Err(e) if Instant::now() < deadline => {
                // Backing off after the failures; the retry is the event.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = e;
            }
            Err(e) => panic!("not reconnected within {T:?}: {e}"),
        }
    }

    // The metrics tell the story: two connections (one a reconnect), pings
    // answered and failed, one live connection with its figures.
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(a.collector()));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let peer = node(2).to_string();
    let series = |s: &str| {
        text.lines()
            .find(|l| l.starts_with(s))
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(
        series(&format!("peer_connects_total{{peer=\"{peer}\"}}")),
        format!("peer_connects_total{{peer=\"{peer}\"}} 2"),
        "{text}"
    );
    assert!(
        series(&format!(
            "peer_requests_total{{peer=\"{peer}\",kind=\"ping\",outcome=\"ok\"}}"
        ))
        .ends_with(" 2"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("peer_requests_total")
            && l.contains("kind=\"ping\"")
            && !l.contains("outcome=\"ok\"")),
        "{text}"
    );
    assert_eq!(series("peer_connections "), "peer_connections 1", "{text}");
    assert!(
        series(&format!(
            "peer_request_duration_seconds_count{{peer=\"{peer}\"}}"
        ))
        .ends_with(" 2"),
        "{text}"
    );
    assert!(
        !series(&format!("peer_sent_bytes_total{{peer=\"{peer}\"}}")).is_empty(),
        "{text}"
    );
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_harm_nothing() {
    let ca = ClusterCa::generate("test").unwrap();
    let (a, _a_in) = bind(&ca, 1, loopback(), "test");
    let (b, b_in) = bind(&ca, 2, loopback(), "test");
    let b_addr = b.local_addr().unwrap();
    a.set_peer_addr(node(2), b_addr);
    let _server = serve(b_in);
    assert_eq!(
        a.request(node(2), Request::Ping, T).await.unwrap(),
        Response::Pong
    );

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..2_000usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = 1 + (x as usize % 1400);
        let datagram: Vec<u8> = (0..len).map(|j| (x >> (j % 56)) as u8 ^ i as u8).collect();
        socket.send_to(&datagram, b_addr).unwrap();
    }
    // Existing and new connections still work.
    for _ in 0..100 {
        assert_eq!(
            a.request(node(2), Request::Ping, T).await.unwrap(),
            Response::Pong
        );
    }
    let (c, _c_in) = bind(&ca, 3, loopback(), "test");
    c.set_peer_addr(node(2), b_addr);
    assert_eq!(
        c.request(node(2), Request::Ping, T).await.unwrap(),
        Response::Pong
    );
}

/// A raw QUIC client with a valid certificate for `id`, that has done the
/// handshake claiming `claimed`.
async fn raw_client(
    ca: &ClusterCa,
    id: u64,
    claimed: u64,
    server: NodeId,
    addr: SocketAddr,
) -> (quinn::Endpoint, quinn::Connection, HelloReply) {
    let identity = ca.identity(node(id)).unwrap();
    let mut endpoint = quinn::Endpoint::client(loopback()).unwrap();
    endpoint.set_default_client_config(tls::quinn_client_config(&identity).unwrap());
    let conn = endpoint
        .connect(addr, &tls::node_dns_name(server))
        .unwrap()
        .await
        .unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let hello = frame::encode(&Hello::new("test", node(claimed)), FrameLimit::DEFAULT).unwrap();
    send.write_all(&hello).await.unwrap();
    send.finish().unwrap();
    let body = recv.read_to_end(1 << 20).await.unwrap();
    let reply: HelloReply = frame::decode(&body[4..]).unwrap();
    (endpoint, conn, reply)
}

/// A served node 2 that takes frames of up to 64 KiB, and a raw client
/// connected to it (handshake done).
async fn served_with_a_64_kib_limit() -> (QuicTransport, quinn::Endpoint, quinn::Connection) {
    let ca = ClusterCa::generate("test").unwrap();
    let mut config = QuicConfig::new(loopback(), "test", ca.identity(node(2)).unwrap());
    config.frame_limit = FrameLimit::new(64 * 1024).unwrap();
    let (b, b_in) = QuicTransport::bind(config).unwrap();
    serve(b_in);
    let addr = b.local_addr().unwrap();
    let (endpoint, conn, reply) = raw_client(&ca, 1, 1, node(2), addr).await;
    assert_eq!(reply.accepted().unwrap(), node(2));
    (b, endpoint, conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_or_garbage_frame_resets_only_its_stream() {
    let (_b, _endpoint, conn) = served_with_a_64_kib_limit().await;

    // A header announcing more than the limit: that stream is reset. The
    // server may stop it before our later writes, which then fail too.
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let header = (64 * 1024 + 1u32).to_le_bytes();
    let _ = send.write_all(&header).await;
    let _ = send.write_all(&[0u8; 100]).await;
    assert!(recv.read_to_end(1 << 20).await.is_err());
    assert_eq!(
        send.stopped().await.unwrap(),
        Some(quinn::VarInt::from_u32(2)),
        "stopped with BAD_FRAME"
    );

    // Garbage that is not a message: reset too.
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let _ = send
        .write_all(&[5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff])
        .await;
    let _ = send.finish();
    assert!(recv.read_to_end(1 << 20).await.is_err());

    // The same connection still serves good requests.
    for _ in 0..10 {
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let ping = frame::encode(&Open::Request(Request::Ping), FrameLimit::DEFAULT).unwrap();
        send.write_all(&ping).await.unwrap();
        send.finish().unwrap();
        let body = recv.read_to_end(1 << 20).await.unwrap();
        assert_eq!(
            frame::decode::<Response>(&body[4..]).unwrap(),
            Response::Pong
        );
    }
    assert!(conn.close_reason().is_none());
}

/// Reads one tagged answer off a lane.
async fn read_answer(recv: &mut quinn::RecvStream) -> (u64, Answer) {
    let mut header = [0; frame::TAGGED_HEADER_LEN];
    recv.read_exact(&mut header).await.unwrap();
    let (tag, len) = frame::tagged_header(header);
    let mut body = vec![0; len as usize];
    recv.read_exact(&mut body).await.unwrap();
    (tag, frame::decode(&body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_or_garbage_frame_on_a_lane_fails_only_its_request() {
    let (_b, _endpoint, conn) = served_with_a_64_kib_limit().await;

    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let limit = FrameLimit::DEFAULT;
    send.write_all(&frame::encode(&Open::Lane, limit).unwrap())
        .await
        .unwrap();
    let ping = |tag| frame::encode_tagged(tag, &Request::Ping, limit).unwrap();
    // Tag 1: a body one byte over the limit (sent whole, and skipped).
    let mut oversized = (64 * 1024 + 1u32).to_le_bytes().to_vec();
    oversized.extend_from_slice(&1u64.to_le_bytes());
    oversized.resize(frame::TAGGED_HEADER_LEN + 64 * 1024 + 1, 0xee);
    // Tag 2: bytes that are no request.
    let mut garbage = 5u32.to_le_bytes().to_vec();
    garbage.extend_from_slice(&2u64.to_le_bytes());
    garbage.extend_from_slice(&[0xff; 5]);
    for bytes in [&ping(0)[..], &oversized, &garbage, &ping(3)] {
        send.write_all(bytes).await.unwrap();
    }

    let mut answers = std::collections::BTreeMap::new();
    for _ in 0..4 {
        let (tag, answer) = read_answer(&mut recv).await;
        answers.insert(tag, answer);
    }
    assert_eq!(answers[&0], Answer::Response(Response::Pong));
    assert!(
        matches!(&answers[&1], Answer::Failed { reason } if reason.contains("limit")),
        "{:?}",
        answers[&1]
    );
    assert!(matches!(answers[&2], Answer::Failed { .. }));
    assert_eq!(answers[&3], Answer::Response(Response::Pong));

    // The lane carries on.
    send.write_all(&ping(4)).await.unwrap();
    assert_eq!(
        read_answer(&mut recv).await,
        (4, Answer::Response(Response::Pong))
    );
    send.finish().unwrap();
    assert!(conn.close_reason().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_id_that_the_certificate_does_not_carry_is_refused() {
    let ca = ClusterCa::generate("test").unwrap();
    let (b, b_in) = bind(&ca, 2, loopback(), "test");
    let _server = serve(b_in);
    let (_endpoint, conn, reply) = raw_client(&ca, 1, 7, node(2), b.local_addr().unwrap()).await;
    assert!(matches!(reply, HelloReply::Refused { .. }), "{reply:?}");
    let reason = tokio::time::timeout(T, conn.closed()).await.unwrap();
    assert!(
        matches!(reason, quinn::ConnectionError::ApplicationClosed(_)),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_cluster_is_refused() {
    let ca = ClusterCa::generate("test").unwrap();
    let (a, _a_in) = bind(&ca, 1, loopback(), "staging");
    let (b, b_in) = bind(&ca, 2, loopback(), "test");
    a.set_peer_addr(node(2), b.local_addr().unwrap());
    let _server = serve(b_in);
    let err = a.request(node(2), Request::Ping, T).await.unwrap_err();
    assert!(
        matches!(&err, Error::Refused { reason, .. } if reason.contains("cluster")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_another_ca_is_refused() {
    let ca = ClusterCa::generate("test").unwrap();
    let rogue = ClusterCa::generate("test").unwrap();
    let (a, _a_in) = bind(&rogue, 1, loopback(), "test");
    let (b, b_in) = bind(&ca, 2, loopback(), "test");
    a.set_peer_addr(node(2), b.local_addr().unwrap());
    let _server = serve(b_in);
    let err = a.request(node(2), Request::Ping, T).await.unwrap_err();
    assert!(
        matches!(err, Error::Unreachable { .. } | Error::Refused { .. }),
        "{err}"
    );
}

/// Unknown is not down: a request to a peer whose address is not known
/// yet waits for it (within its timeout) and goes through once it is
/// learned; a one-way message fails at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_an_unknown_peer_waits_for_its_address() {
    let ca = ClusterCa::generate("test").unwrap();
    let (a, _a_in) = bind(&ca, 1, loopback(), "test");
    let short = Duration::from_millis(200);
    let err = a.request(node(9), Request::Ping, short).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    let err = a
        .send(
            node(9),
            gyre_wire::OneWay::Gossip(gyre_membership::Message::Syn {
                digests: Vec::new(),
                tombstones: Vec::new(),
            }),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");

    let (b, b_in) = bind(&ca, 9, loopback(), "test");
    let _server = serve(b_in);
    let waiting = {
        let a = a.clone();
        tokio::spawn(async move { a.request(node(9), Request::Ping, T).await })
    };
    tokio::task::yield_now().await;
    a.set_peer_addr(node(9), b.local_addr().unwrap());
    assert_eq!(waiting.await.unwrap().unwrap(), Response::Pong);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_address_is_discovered_as_its_node() {
    let ca = ClusterCa::generate("test").unwrap();
    let (a, _a_in) = bind(&ca, 1, loopback(), "test");
    let (b, b_in) = bind(&ca, 0xb0b, loopback(), "test");
    let _server = serve(b_in);
    let found = a.discover(b.local_addr().unwrap()).await.unwrap();
    assert_eq!(found, node(0xb0b));
    // The address is remembered: requests by id need nothing more.
    assert_eq!(
        a.request(found, Request::Ping, T).await.unwrap(),
        Response::Pong
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_of_another_ca_or_cluster_or_nobody_is_an_error() {
    let ca = ClusterCa::generate("test").unwrap();
    let rogue = ClusterCa::generate("test").unwrap();
    let mut config = QuicConfig::new(loopback(), "test", ca.identity(node(1)).unwrap());
    config.connect_timeout = Duration::from_millis(500);
    let (a, _a_in) = QuicTransport::bind(config).unwrap();
    let (other_ca, other_ca_in) = bind(&rogue, 2, loopback(), "test");
    let (other_cluster, other_cluster_in) = bind(&ca, 3, loopback(), "staging");
    let _s1 = serve(other_ca_in);
    let _s2 = serve(other_cluster_in);
    // A port where nothing listens (bound, then released).
    let nobody = UdpSocket::bind(loopback()).unwrap().local_addr().unwrap();

    for (what, addr) in [
        ("another CA", other_ca.local_addr().unwrap()),
        ("another cluster", other_cluster.local_addr().unwrap()),
        ("nobody", nobody),
    ] {
        let err = a.discover(addr).await.unwrap_err();
        assert!(
            matches!(&err, Error::Seed { addr: at, .. } if *at == addr),
            "{what}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_connected_can_be_reached_back_without_its_address() {
    let ca = ClusterCa::generate("test").unwrap();
    let (a, a_in) = bind(&ca, 1, loopback(), "test");
    let (b, b_in) = bind(&ca, 2, loopback(), "test");
    let _sa = serve(a_in);
    let _sb = serve(b_in);
    let err = b
        .request(node(1), Request::Ping, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    // Once a has connected to b, b knows where a listens.
    a.set_peer_addr(node(2), b.local_addr().unwrap());
    assert_eq!(
        a.request(node(2), Request::Ping, T).await.unwrap(),
        Response::Pong
    );
    assert_eq!(
        b.request(node(1), Request::Ping, T).await.unwrap(),
        Response::Pong
    );
}

/// A peer that restarted elsewhere is reached there at once: a dial still
/// waiting on its old address (nothing answers there) is abandoned when the
/// new address is learned, instead of holding every request queued behind
/// it for the whole connect timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_to_an_address_the_peer_left_is_abandoned_when_it_moves() {
    let ca = ClusterCa::generate("test").unwrap();
    let mut config = QuicConfig::new(loopback(), "test", ca.identity(node(1)).unwrap());
    config.connect_timeout = Duration::from_secs(30);
    let (a, _a_in) = QuicTransport::bind(config).unwrap();
    let (b, b_in) = bind(&ca, 2, loopback(), "test");
    let _server = serve(b_in);
    // Where b lived before: nothing answers there.
    let old = UdpSocket::bind(loopback()).unwrap().local_addr().unwrap();
    a.set_peer_addr(node(2), old);
    let waiting = {
        let a = a.clone();
        tokio::spawn(async move {
            a.request(node(2), Request::Ping, Duration::from_secs(10))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.set_peer_addr(node(2), b.local_addr().unwrap());
    assert_eq!(waiting.await.unwrap().unwrap(), Response::Pong);
}

/// A UDP relay from its own address to `to`, for one client, that drops
/// every datagram both ways while `cut` is set.
async fn relay(to: SocketAddr, cut: Arc<std::sync::atomic::AtomicBool>) -> SocketAddr {
    use std::sync::atomic::Ordering;
    let front = tokio::net::UdpSocket::bind(loopback()).await.unwrap();
    let back = tokio::net::UdpSocket::bind(loopback()).await.unwrap();
    back.connect(to).await.unwrap();
    let addr = front.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut up, mut down) = (vec![0u8; 65536], vec![0u8; 65536]);
        let mut client = None;
        loop {
            tokio::select! {
                got = front.recv_from(&mut up) => {
                    let Ok((n, from)) = got else { return };
                    client = Some(from);
                    if !cut.load(Ordering::SeqCst) {
                        let _ = back.send(&up[..n]).await;
                    }
                }
                got = back.recv(&mut down) => {
                    let Ok(n) = got else { return };
                    if let (Some(client), false) = (client, cut.load(Ordering::SeqCst)) {
                        let _ = front.send_to(&down[..n], client).await;
                    }
                }
            }
        }
    });
    addr
}

/// A path that drops everything for seconds, with requests timing out on
/// it all along, leaves QUIC's loss recovery backed off (probes seconds
/// apart by the end). The link is kept through the cut (its idle timeout is
/// longer here), and still the first request after the heal is answered at
/// once (a few milliseconds): new data goes out without waiting for the
/// next probe. This rules out backed-off probes as the cause of a stall
/// seen once after a heal on real hosts (tests/faults_on_real_hosts.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_kept_through_a_cut_answers_at_once_after_the_heal() {
    let ca = ClusterCa::generate("test").unwrap();
    let config = |id: u64| QuicConfig {
        // Longer than the cut: the link outlives it, as through short cuts.
        idle_timeout: Duration::from_secs(60),
        connect_timeout: Duration::from_millis(500),
        backoff_max: Duration::from_millis(200),
        ..QuicConfig::new(loopback(), "test", ca.identity(node(id)).unwrap())
    };
    let (a, _a_in) = QuicTransport::bind(config(1)).unwrap();
    let (b, b_in) = QuicTransport::bind(config(2)).unwrap();
    let _server = serve(b_in);
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    a.set_peer_addr(
        node(2),
        relay(b.local_addr().unwrap(), Arc::clone(&cut)).await,
    );
    let ask = || a.request(node(2), Request::Ping, Duration::from_millis(500));
    assert_eq!(ask().await.unwrap(), Response::Pong);

    cut.store(true, std::sync::atomic::Ordering::SeqCst);
    let healed_at = Instant::now() + Duration::from_secs(4);
    while Instant::now() < healed_at {
        assert!(ask().await.is_err(), "nothing crosses the cut");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cut.store(false, std::sync::atomic::Ordering::SeqCst);
    let healed = Instant::now();
    let took = loop {
        match ask().await {
            Ok(r) => {
                assert_eq!(r, Response::Pong);
                break healed.elapsed();
            }
            Err(e) => {
                assert!(
                    healed.elapsed() < T,
                    "not answered {T:?} after the heal: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert!(
        took < Duration::from_millis(1500),
        "first answer {took:?} after the heal"
    );
}

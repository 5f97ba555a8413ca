//! Transport round trips and bulk throughput over loopback, QUIC beside
//! plain TCP, in one run. A plain binary (`harness = false`) that prints
//! tables and a PASS/MISS summary against two targets:
//!
//! - request/response at 64 in flight: QUIC ops/s ≥ 0.5 × TCP ops/s;
//! - bulk stream throughput: QUIC MiB/s ≥ 0.15 × TCP MiB/s (QUIC encrypts,
//!   TCP does not).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-tbench cargo bench -p gyre-transport --bench transport
//! # longer cases, more bulk data:
//! GYRE_BENCH_SECS=5 GYRE_BENCH_BULK_MB=1024 \
//!   CARGO_TARGET_DIR=/work/target-tbench cargo bench -p gyre-transport --bench transport
//! # smoke run (tiny sizes, < 2 s; what `cargo test --benches` does):
//! CARGO_TARGET_DIR=/work/target-tbench cargo test -p gyre-transport --bench transport
//! ```
//!
//! Environment: `GYRE_BENCH_SECS` (seconds measured per round-trip case,
//! default 3, after a warm-up of a tenth of that), `GYRE_BENCH_BULK_MB`
//! (MiB per bulk case, default 256). Without `--bench` on the command line
//! (`cargo test --benches`), or with `--test`, everything runs tiny.
//!
//! Everything runs in one process on a tokio multi-thread runtime with 2
//! workers: two [`QuicTransport`]s (node 1 asks, node 2 answers) and, for
//! the baseline, a TCP client and server on 127.0.0.1.
//!
//! Round-trip cases, each with Ping → Pong and with ReplicaGet → Object
//! (a ~100 B value); the TCP side sends the very same frames
//! (`frame::encode` of `Open::Request(..)`, `len u32 LE ‖ postcard`) and
//! decodes them, and its server answers inline in the connection's task:
//!
//! - `quic   1`: one task doing `request` after `request`.
//! - `quic  64`: 64 tasks doing so concurrently on the one connection (a
//!   QUIC stream per request).
//! - `tcp    1`: one connection, one request at a time.
//! - `tcp   64 pipe`: ONE connection with 64 requests outstanding
//!   (pipelined: a new request leaves as soon as an answer arrives, answers
//!   come in order); the fair counterpart of QUIC's one connection with
//!   many streams, and the one the target is checked against.
//! - `tcp   64 conn`: 64 connections each doing ping-pong (for reference).
//!
//! Latency is per request, from just before it is sent to its decoded
//! answer; ops/s is answers over the measured time.
//!
//! Bulk: `open_stream` sending `Item`s with 64 KiB values until `finish()`
//! returns the receiver's verdict, beside a TCP connection writing the same
//! number of 64 KiB buffers (`write_all`), the receiver reading to the end
//! and answering one byte. Throughput counts value bytes (MiB/s).
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gyre_transport::tls::ClusterCa;
use gyre_transport::{Inbound, QuicConfig, QuicTransport, Transport};
use gyre_types::{BucketName, Key, NodeId, PartitionId, Timestamp};
use gyre_wire::{
    FrameLimit, FrameReader, Item, Object, Open, Request, Response, StreamDone, StreamOpen, frame,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Target: QUIC ops/s at 64 in flight over TCP's (one pipelined connection).
const RTT_TARGET: f64 = 0.5;
/// Target: QUIC bulk throughput over TCP's.
const BULK_TARGET: f64 = 0.15;
/// Bytes of a bulk item's value.
const BULK_VALUE: usize = 64 * 1024;
/// Bytes of the value in a ReplicaGet's answer.
const SMALL_VALUE: usize = 100;
const LIMIT: FrameLimit = FrameLimit::DEFAULT;
const T: Duration = Duration::from_secs(60);

/// How long and how much.
#[derive(Clone, Copy, Debug)]
struct Settings {
    /// Measured time per round-trip case.
    secs: Duration,
    /// Unmeasured warm-up before it.
    warmup: Duration,
    /// Value bytes per bulk case.
    bulk_bytes: u64,
    quick: bool,
}

impl Settings {
    fn from_env() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench");
        let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
        if quick {
            return Self {
                secs: Duration::from_millis(60),
                warmup: Duration::from_millis(10),
                bulk_bytes: 4 << 20,
                quick,
            };
        }
        let secs = env("GYRE_BENCH_SECS").unwrap_or(3.0).max(0.01);
        let mb = env("GYRE_BENCH_BULK_MB").unwrap_or(256.0).max(1.0);
        Self {
            secs: Duration::from_secs_f64(secs),
            warmup: Duration::from_secs_f64(secs / 10.0),
            bulk_bytes: (mb * f64::from(1u32 << 20)) as u64,
            quick,
        }
    }
}

fn node(n: u64) -> NodeId {
    NodeId::new(n)
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// The two small request kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ping,
    Get,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Get => "get",
        }
    }

    fn request(self) -> Request {
        match self {
            Self::Ping => Request::Ping,
            Self::Get => Request::ReplicaGet {
                layout: 1,
                bucket: BucketName::new("bench").unwrap(),
                key: Key::new(b"some-key-0001".to_vec()).unwrap(),
            },
        }
    }
}

/// A replica state with one sibling holding `value`.
fn object(value: Bytes) -> Object {
    let ts = Timestamp::from_parts(1_700_000_000_000, 0);
    Object::from_parts([(node(2), 1, [(1, ts, Some(value))])]).unwrap()
}

/// What the answering node says to `request`.
fn answer(request: Request, small: &Bytes) -> Response {
    match request {
        Request::ReplicaGet { .. } => Response::Object(Some(object(small.clone()))),
        _ => Response::Pong,
    }
}

fn check(kind: Kind, response: &Response) {
    let ok = match kind {
        Kind::Ping => matches!(response, Response::Pong),
        Kind::Get => matches!(response, Response::Object(Some(_))),
    };
    assert!(ok, "{kind:?} answered with {response:?}");
}

/// Answers requests inline; counts bulk streams' items on a task each.
fn serve_quic(mut inbound: mpsc::Receiver<Inbound>) {
    let small = Bytes::from(vec![7u8; SMALL_VALUE]);
    tokio::spawn(async move {
        while let Some(msg) = inbound.recv().await {
            match msg {
                Inbound::Request { request, reply, .. } => reply.respond(answer(request, &small)),
                Inbound::Stream { mut stream, .. } => {
                    tokio::spawn(async move {
                        let mut received = 0;
                        while let Some(item) = stream.next().await.unwrap() {
                            std::hint::black_box(&item);
                            received += 1;
                        }
                        stream.finish(StreamDone::Stored { received });
                    });
                }
                Inbound::Message { .. } => {}
            }
        }
    });
}

/// Requests, latencies (ns) and the measured time of one case.
#[derive(Debug, Default)]
struct Sample {
    ops: u64,
    latencies: Vec<u64>,
    elapsed: Duration,
}

impl Sample {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&mut self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        Duration::from_nanos(self.latencies[i])
    }
}

/// Times of one case: requests that start before `start` are warm-up and
/// not counted; none starts after `end`.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn new(s: &Settings) -> Self {
        let start = Instant::now() + s.warmup;
        Self {
            start,
            end: start + s.secs,
        }
    }
}

async fn quic_case(a: &Arc<QuicTransport>, kind: Kind, in_flight: usize, s: &Settings) -> Sample {
    let window = Window::new(s);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let a = Arc::clone(a);
        tasks.spawn(async move {
            let mut sample = Sample::default();
            let request = kind.request();
            loop {
                let t0 = Instant::now();
                if t0 >= window.end {
                    break;
                }
                let response = a.request(node(2), request.clone(), T).await.unwrap();
                check(kind, &response);
                if t0 >= window.start {
                    sample.ops += 1;
                    sample.latencies.push(t0.elapsed().as_nanos() as u64);
                }
            }
            sample
        });
    }
    collect(tasks, window).await
}

async fn collect(mut tasks: tokio::task::JoinSet<Sample>, window: Window) -> Sample {
    let mut all = Sample::default();
    while let Some(s) = tasks.join_next().await {
        let s = s.unwrap();
        all.ops += s.ops;
        all.latencies.extend(s.latencies);
    }
    // Requests started up to `end` and finished a little after it.
    all.elapsed = Instant::now().duration_since(window.start);
    all
}

/// A TCP server answering framed requests; answers to every request read
/// in one go leave in one write.
async fn tcp_server() -> SocketAddr {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            sock.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let small = Bytes::from(vec![7u8; SMALL_VALUE]);
                let mut buf = vec![0u8; 64 * 1024];
                let mut reader = FrameReader::new(LIMIT);
                let mut out = Vec::with_capacity(64 * 1024);
                loop {
                    let n = match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    reader.extend(&buf[..n]);
                    while let Some(body) = reader.next_body().unwrap() {
                        let Open::Request(request) = frame::decode::<Open>(&body).unwrap() else {
                            panic!("not a request");
                        };
                        out.extend_from_slice(
                            &frame::encode(&answer(request, &small), LIMIT).unwrap(),
                        );
                    }
                    if !out.is_empty() {
                        if sock.write_all(&out).await.is_err() {
                            return;
                        }
                        out.clear();
                    }
                }
            });
        }
    });
    addr
}

/// One TCP connection keeping `window_size` requests outstanding.
async fn tcp_client(addr: SocketAddr, kind: Kind, outstanding: usize, window: Window) -> Sample {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.set_nodelay(true).unwrap();
    let request = frame::encode(&Open::Request(kind.request()), LIMIT).unwrap();
    let mut sample = Sample::default();
    let mut sent: VecDeque<Instant> = VecDeque::with_capacity(outstanding);
    let mut out = Vec::with_capacity(request.len() * outstanding);
    let mut buf = vec![0u8; 64 * 1024];
    let mut reader = FrameReader::new(LIMIT);
    let now = Instant::now();
    for _ in 0..outstanding {
        out.extend_from_slice(&request);
        sent.push_back(now);
    }
    sock.write_all(&out).await.unwrap();
    out.clear();
    while !sent.is_empty() {
        let n = sock.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server hung up");
        reader.extend(&buf[..n]);
        while let Some(body) = reader.next_body().unwrap() {
            let response: Response = frame::decode(&body).unwrap();
            check(kind, &response);
            let t0 = sent.pop_front().unwrap();
            let now = Instant::now();
            if t0 >= window.start {
                sample.ops += 1;
                sample
                    .latencies
                    .push(now.duration_since(t0).as_nanos() as u64);
            }
            if now < window.end {
                out.extend_from_slice(&request);
                sent.push_back(now);
            }
        }
        if !out.is_empty() {
            sock.write_all(&out).await.unwrap();
            out.clear();
        }
    }
    sample
}

async fn tcp_case(
    addr: SocketAddr,
    kind: Kind,
    connections: usize,
    outstanding: usize,
    s: &Settings,
) -> Sample {
    let window = Window::new(s);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        tasks.spawn(tcp_client(addr, kind, outstanding, window));
    }
    collect(tasks, window).await
}

/// Sends `bytes` of 64 KiB values on one bulk stream; the time until the
/// receiver's verdict.
async fn quic_bulk(a: &QuicTransport, bytes: u64) -> Duration {
    let items = bytes.div_ceil(BULK_VALUE as u64);
    let value = Bytes::from(vec![0x5au8; BULK_VALUE]);
    let bucket = BucketName::new("bench").unwrap();
    let t0 = Instant::now();
    let open = StreamOpen::Handoff {
        partition: PartitionId::new(7),
        layout: 1,
    };
    let mut out = a.open_stream(node(2), open).await.unwrap();
    for i in 0..items {
        let item = Item {
            bucket: bucket.clone(),
            key: Key::new(format!("key-{i:010}").into_bytes()).unwrap(),
            n_val: 3,
            object: object(value.clone()),
        };
        out.send(item).await.unwrap();
    }
    let done = out.finish().await.unwrap();
    let elapsed = t0.elapsed();
    assert_eq!(done, StreamDone::Stored { received: items });
    elapsed
}

/// Writes `bytes` in 64 KiB buffers on a fresh connection; the time until
/// the receiver, having read to the end, answers.
async fn tcp_bulk(bytes: u64) -> Duration {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; BULK_VALUE];
        let mut total = 0u64;
        loop {
            let n = sock.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        sock.write_all(&[1]).await.unwrap();
        total
    });
    let buffers = bytes.div_ceil(BULK_VALUE as u64);
    let value = vec![0x5au8; BULK_VALUE];
    let t0 = Instant::now();
    let mut sock = TcpStream::connect(addr).await.unwrap();
    for _ in 0..buffers {
        sock.write_all(&value).await.unwrap();
    }
    sock.shutdown().await.unwrap();
    let mut ack = [0u8; 1];
    sock.read_exact(&mut ack).await.unwrap();
    let elapsed = t0.elapsed();
    assert_eq!(server.await.unwrap(), buffers * BULK_VALUE as u64);
    elapsed
}

fn mib_per_sec(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / f64::from(1u32 << 20) / d.as_secs_f64()
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn verdict(ratio: f64, target: f64) -> &'static str {
    if ratio >= target { "PASS" } else { "MISS" }
}

async fn run(s: Settings) {
    let ca = ClusterCa::generate("bench").unwrap();
    let config = |id| QuicConfig::new(loopback(), "bench", ca.identity(node(id)).unwrap());
    let (a, _a_in) = QuicTransport::bind(config(1)).unwrap();
    let (b, b_in) = QuicTransport::bind(config(2)).unwrap();
    a.set_peer_addr(node(2), b.local_addr().unwrap());
    serve_quic(b_in);
    let a = Arc::new(a);
    // Connect (and handshake) before anything is timed.
    assert_eq!(
        a.request(node(2), Request::Ping, T).await.unwrap(),
        Response::Pong
    );
    let tcp = tcp_server().await;

    let frame_len = |m: &Open| frame::encode(m, LIMIT).unwrap().len();
    let small = Bytes::from(vec![7u8; SMALL_VALUE]);
    println!(
        "gyre-transport bench: loopback, tokio multi-thread (2 workers), {:?} per case after {:?} warm-up{}",
        s.secs,
        s.warmup,
        if s.quick { " [quick smoke run]" } else { "" }
    );
    for kind in [Kind::Ping, Kind::Get] {
        let req = frame_len(&Open::Request(kind.request()));
        let resp = frame::encode(&answer(kind.request(), &small), LIMIT)
            .unwrap()
            .len();
        println!(
            "  {:<4} frames: request {req} B, response {resp} B (header included)",
            kind.name()
        );
    }
    println!();
    println!("Round trips");
    println!(
        "{:<5} {:<16} {:>12} {:>10} {:>10}",
        "msg", "case", "ops/s", "p50 µs", "p99 µs"
    );
    let mut ratios = Vec::new();
    for kind in [Kind::Ping, Kind::Get] {
        let mut rows: Vec<(&str, Sample)> = Vec::new();
        rows.push(("quic   1", quic_case(&a, kind, 1, &s).await));
        rows.push(("quic  64", quic_case(&a, kind, 64, &s).await));
        rows.push(("tcp    1", tcp_case(tcp, kind, 1, 1, &s).await));
        rows.push(("tcp   64 pipe", tcp_case(tcp, kind, 1, 64, &s).await));
        rows.push(("tcp   64 conn", tcp_case(tcp, kind, 64, 1, &s).await));
        for (name, sample) in &mut rows {
            let (p50, p99) = (sample.percentile(0.50), sample.percentile(0.99));
            println!(
                "{:<5} {:<16} {:>12.0} {:>10} {:>10}",
                kind.name(),
                name,
                sample.ops_per_sec(),
                us(p50),
                us(p99)
            );
        }
        let r1 = rows[0].1.ops_per_sec() / rows[2].1.ops_per_sec();
        let r64 = rows[1].1.ops_per_sec() / rows[3].1.ops_per_sec();
        let r64c = rows[1].1.ops_per_sec() / rows[4].1.ops_per_sec();
        println!(
            "{:<5} ratio quic/tcp: 1 in flight {r1:.2}, 64 in flight {r64:.2} (vs 64 conns {r64c:.2})",
            kind.name()
        );
        ratios.push((kind, r64));
    }

    println!();
    println!(
        "Bulk ({} MiB of {} KiB values per case)",
        s.bulk_bytes >> 20,
        BULK_VALUE >> 10
    );
    println!("{:<10} {:>10} {:>10}", "case", "secs", "MiB/s");
    // A short unmeasured run of each first, then the measured one.
    let warm = (s.bulk_bytes / 16).max(BULK_VALUE as u64);
    quic_bulk(&a, warm).await;
    tcp_bulk(warm).await;
    let q = quic_bulk(&a, s.bulk_bytes).await;
    let t = tcp_bulk(s.bulk_bytes).await;
    let (qm, tm) = (mib_per_sec(s.bulk_bytes, q), mib_per_sec(s.bulk_bytes, t));
    println!("{:<10} {:>10.3} {:>10.1}", "quic", q.as_secs_f64(), qm);
    println!("{:<10} {:>10.3} {:>10.1}", "tcp", t.as_secs_f64(), tm);
    let bulk_ratio = qm / tm;
    println!("ratio quic/tcp: {bulk_ratio:.3}");

    println!();
    println!("Summary");
    for (kind, r) in ratios {
        println!(
            "  {} 64 in flight: quic/tcp(pipelined) = {r:.2} (target ≥ {RTT_TARGET}) {}",
            kind.name(),
            verdict(r, RTT_TARGET)
        );
    }
    println!(
        "  bulk stream:      quic/tcp            = {bulk_ratio:.3} (target ≥ {BULK_TARGET}) {}",
        verdict(bulk_ratio, BULK_TARGET)
    );
    a.shutdown().await;
    b.shutdown().await;
}

fn main() {
    let settings = Settings::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t0 = Instant::now();
    rt.block_on(run(settings));
    println!("total {:.2} s", t0.elapsed().as_secs_f64());
}

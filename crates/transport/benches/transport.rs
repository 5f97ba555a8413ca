//! Transport round trips and bulk throughput over loopback, QUIC beside
//! plain TCP, in one run. A plain binary (`harness = false`) that prints
//! tables and a PASS/MISS summary against two targets:
//!
//! - request/response at 64 in flight: QUIC ops/s ≥ 0.5 × TCP ops/s;
//! - bulk stream throughput: QUIC MiB/s ≥ 0.15 × TCP MiB/s (QUIC encrypts,
//!   TCP does not).
//!
//! ```text
//! cargo bench -p gyre-transport --bench transport
//! # longer cases, more bulk data:
//! GYRE_BENCH_SECS=5 GYRE_BENCH_BULK_MB=1024 \
//!   cargo bench -p gyre-transport --bench transport
//! # smoke run (tiny sizes, < 2 s; what `cargo test --benches` does):
//! CARGO_TARGET_DIR=/work/target-tbench cargo test -p gyre-transport --bench transport
//! ```
//!
//! Environment:
//!
//! - `GYRE_BENCH_SECS`: seconds measured per round-trip case (default 3),
//!   after a warm-up of a tenth of that;
//! - `GYRE_BENCH_BULK_MB`: MiB per bulk case (default 256);
//! - `GYRE_BENCH_DIAG=1`: also run the raw quinn diagnostics (below);
//! - `GYRE_BENCH_ONLY=text`: only the cases whose name (`ping quic 64`,
//!   `get tcp 64 pipe`, `bulk quic`, …) contains `text`, for profiling;
//! - `GYRE_BENCH_WORKERS`: runtime workers (default 2).
//!
//! Without `--bench` on the command line (`cargo test --benches`), or with
//! `--test`, everything runs tiny (60 ms per case, 4 MiB bulk) and the
//! environment is ignored.
//!
//! Everything runs in one process on a tokio multi-thread runtime with 2
//! workers: two [`QuicTransport`]s (node 1 asks, node 2 answers) and, for
//! the baseline, a TCP client and server on 127.0.0.1 (`TCP_NODELAY`).
//!
//! Round-trip cases, each with Ping → Pong and with ReplicaGet → Object
//! (a ~100 B value); the TCP side sends the very same frames
//! (`frame::encode` of `Open::Request(..)`, `len u32 LE ‖ postcard`) and
//! decodes them, and its server answers inline in the connection's task,
//! answering everything one read brought in one write:
//!
//! - `quic   1`: one task doing `request` after `request`.
//! - `quic  64`: 64 tasks doing so concurrently on the one connection
//!   (small requests share the connection's lane; see `src/lane.rs`).
//! - `tcp    1`: one connection, one request at a time.
//! - `tcp   64 pipe`: ONE connection with 64 requests outstanding, kept by
//!   one task (pipelined: a new request leaves as soon as an answer
//!   arrives, answers come in order). Being one task batching 64 frames
//!   per syscall with no task switch per request, it is the best case for
//!   TCP, and no API where callers wait for their own answers can have
//!   it; shown as the stricter reference.
//! - `tcp   64 mux`: ONE connection shared by 64 independent caller tasks,
//!   each doing ping-pong (frames carry `(id, message)`; a writer task
//!   batches what callers queued, a reader task hands answers back by id
//!   through oneshots): the shape a transport API like
//!   [`Transport::request`] has over TCP, and the reference the target is
//!   checked against.
//! - `tcp   64 conn`: 64 connections each doing ping-pong.
//!
//! Latency is per request, from just before it is sent to its decoded
//! answer; ops/s is answers over the measured time.
//!
//! Bulk: `open_stream` sending `Item`s with 64 KiB values until `finish()`
//! returns the receiver's verdict, beside a TCP connection writing the same
//! number of 64 KiB buffers (`write_all`), the receiver reading to the end
//! and answering one byte. Throughput counts value bytes (MiB/s).
//!
//! Diagnostics (`GYRE_BENCH_DIAG=1`): raw quinn connections with the same
//! certificates and transport config, to tell quinn's costs from the
//! transport's: a stream per request (with a few transport-config
//! variations), 64 long-lived streams, one stream multiplexing 64 callers,
//! one stream pipelined; `dgrams/req` counts the UDP datagrams both sides
//! sent per request. And raw bulk on one stream with default and larger
//! windows, and without GSO.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gyre_transport::tls::{self, ClusterCa};
use gyre_transport::{Inbound, QuicConfig, QuicTransport, Transport};
use gyre_types::{BucketName, Key, NodeId, PartitionId, Timestamp};
use gyre_wire::{
    FrameLimit, FrameReader, Item, Object, Open, Request, Response, StreamDone, StreamOpen, frame,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// Target: QUIC ops/s at 64 in flight over TCP's (64 ping-pong callers
/// multiplexed on one connection).
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
#[derive(Clone, Debug)]
struct Settings {
    /// Measured time per round-trip case.
    secs: Duration,
    /// Unmeasured warm-up before it.
    warmup: Duration,
    /// Value bytes per bulk case.
    bulk_bytes: u64,
    quick: bool,
    /// Also run the raw quinn diagnostics (`GYRE_BENCH_DIAG=1`).
    diag: bool,
    /// Only the cases whose name contains this (`GYRE_BENCH_ONLY`).
    only: Option<String>,
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
                diag: false,
                only: None,
            };
        }
        let secs = env("GYRE_BENCH_SECS").unwrap_or(3.0).max(0.01);
        let mb = env("GYRE_BENCH_BULK_MB").unwrap_or(256.0).max(1.0);
        Self {
            secs: Duration::from_secs_f64(secs),
            warmup: Duration::from_secs_f64(secs / 10.0),
            bulk_bytes: (mb * f64::from(1u32 << 20)) as u64,
            quick,
            diag: std::env::var("GYRE_BENCH_DIAG").is_ok_and(|v| v == "1"),
            only: std::env::var("GYRE_BENCH_ONLY").ok(),
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
    Object::from_parts([(node(2), 1, [(1, ts, Some(value), None)])]).unwrap()
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
    /// Requests answered in the measured window.
    ops: u64,
    /// Requests answered, warm-up included.
    all: u64,
    /// UDP datagrams both sides sent (raw quinn cases only).
    datagrams: u64,
    latencies: Vec<u64>,
    elapsed: Duration,
}

impl Sample {
    fn ops_per_sec(&self) -> f64 {
        if self.ops == 0 {
            return f64::NAN;
        }
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
                sample.all += 1;
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
        all.all += s.all;
        all.latencies.extend(s.latencies);
    }
    // Requests started up to `end` and finished a little after it.
    all.elapsed = Instant::now().duration_since(window.start);
    all
}

/// A TCP server answering framed requests.
async fn tcp_server() -> SocketAddr {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            sock.set_nodelay(true).unwrap();
            let (r, w) = sock.into_split();
            tokio::spawn(serve_pipelined(r, w));
        }
    });
    addr
}

/// Answers framed requests on one byte stream, in order; the answers to
/// every request read in one go leave in one write.
async fn serve_pipelined<R, W>(mut r: R, mut w: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let small = Bytes::from(vec![7u8; SMALL_VALUE]);
    let mut buf = vec![0u8; 64 * 1024];
    let mut reader = FrameReader::new(LIMIT);
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        reader.extend(&buf[..n]);
        while let Some(body) = reader.next_body().unwrap() {
            let Open::Request(request) = frame::decode::<Open>(&body).unwrap() else {
                panic!("not a request");
            };
            out.extend_from_slice(&frame::encode(&answer(request, &small), LIMIT).unwrap());
        }
        if !out.is_empty() {
            if w.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// One TCP connection keeping `outstanding` requests in flight.
async fn tcp_client(addr: SocketAddr, kind: Kind, outstanding: usize, window: Window) -> Sample {
    let sock = TcpStream::connect(addr).await.unwrap();
    sock.set_nodelay(true).unwrap();
    let (r, w) = sock.into_split();
    pipelined_client(r, w, kind, outstanding, window).await
}

/// Keeps `outstanding` framed requests in flight on one byte stream: a new
/// one leaves as soon as an answer arrives (answers come in order).
async fn pipelined_client<R, W>(
    mut r: R,
    mut w: W,
    kind: Kind,
    outstanding: usize,
    window: Window,
) -> Sample
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
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
    w.write_all(&out).await.unwrap();
    out.clear();
    while !sent.is_empty() {
        let n = r.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server hung up");
        reader.extend(&buf[..n]);
        while let Some(body) = reader.next_body().unwrap() {
            let response: Response = frame::decode(&body).unwrap();
            check(kind, &response);
            let t0 = sent.pop_front().unwrap();
            let now = Instant::now();
            sample.all += 1;
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
            w.write_all(&out).await.unwrap();
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

/// Requests awaiting their answer on a multiplexed byte stream, by id.
type Pending = Arc<std::sync::Mutex<std::collections::HashMap<u32, oneshot::Sender<Response>>>>;

/// `callers` independent tasks sharing one byte stream, each doing request
/// after request: a frame carries `(id, Open)` / `(id, Response)`, a writer
/// task batches whatever callers queued, a reader task hands answers back
/// through oneshots. The shape a transport multiplexing requests over one
/// long-lived stream would have.
async fn mux_case<R, W>(r: R, mut w: W, kind: Kind, callers: usize, window: Window) -> Sample
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let pending: Pending = Arc::default();
    let (tx, mut rx) = mpsc::channel::<Bytes>(callers * 2);
    let writer = tokio::spawn(async move {
        let mut out = Vec::with_capacity(64 * 1024);
        while let Some(first) = rx.recv().await {
            out.extend_from_slice(&first);
            while let Ok(more) = rx.try_recv() {
                out.extend_from_slice(&more);
            }
            w.write_all(&out).await.unwrap();
            out.clear();
        }
    });
    let reading = Arc::clone(&pending);
    let reader = tokio::spawn(async move {
        let mut r = r;
        let mut buf = vec![0u8; 64 * 1024];
        let mut frames = FrameReader::new(LIMIT);
        loop {
            let n = match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            frames.extend(&buf[..n]);
            while let Some(body) = frames.next_body().unwrap() {
                let (id, response): (u32, Response) = frame::decode(&body).unwrap();
                let waiter = reading.lock().unwrap().remove(&id);
                if let Some(w) = waiter {
                    let _ = w.send(response);
                }
            }
        }
    });
    let next_id = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (pending, tx, next_id) = (Arc::clone(&pending), tx.clone(), Arc::clone(&next_id));
        tasks.spawn(async move {
            let mut sample = Sample::default();
            let request = Open::Request(kind.request());
            loop {
                let t0 = Instant::now();
                if t0 >= window.end {
                    break;
                }
                let id = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (done, answer) = oneshot::channel();
                pending.lock().unwrap().insert(id, done);
                tx.send(frame::encode(&(id, &request), LIMIT).unwrap())
                    .await
                    .unwrap();
                let response = answer.await.unwrap();
                check(kind, &response);
                sample.all += 1;
                if t0 >= window.start {
                    sample.ops += 1;
                    sample.latencies.push(t0.elapsed().as_nanos() as u64);
                }
            }
            sample
        });
    }
    drop(tx);
    let sample = collect(tasks, window).await;
    writer.abort();
    reader.abort();
    sample
}

/// Answers `(id, Open)` frames with `(id, Response)` frames, batched per
/// read like [`serve_pipelined`].
async fn serve_mux<R, W>(mut r: R, mut w: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let small = Bytes::from(vec![7u8; SMALL_VALUE]);
    let mut buf = vec![0u8; 64 * 1024];
    let mut reader = FrameReader::new(LIMIT);
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        reader.extend(&buf[..n]);
        while let Some(body) = reader.next_body().unwrap() {
            let (id, open): (u32, Open) = frame::decode(&body).unwrap();
            let Open::Request(request) = open else {
                panic!("not a request");
            };
            out.extend_from_slice(&frame::encode(&(id, answer(request, &small)), LIMIT).unwrap());
        }
        if !out.is_empty() {
            if w.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// [`mux_case`] over one TCP connection.
async fn tcp_mux_case(kind: Kind, callers: usize, s: &Settings) -> Sample {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        sock.set_nodelay(true).unwrap();
        let (r, w) = sock.into_split();
        serve_mux(r, w).await;
    });
    let sock = TcpStream::connect(addr).await.unwrap();
    sock.set_nodelay(true).unwrap();
    let (r, w) = sock.into_split();
    let sample = mux_case(r, w, kind, callers, Window::new(s)).await;
    server.abort();
    sample
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

/// NaN for a skipped case (`Duration::MAX`).
fn mib_per_sec(bytes: u64, d: Duration) -> f64 {
    if d == Duration::MAX {
        return f64::NAN;
    }
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
        "gyre-transport bench: loopback, tokio multi-thread ({} workers), {:?} per case after {:?} warm-up{}",
        tokio::runtime::Handle::current().metrics().num_workers(),
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
        let on = |case: &str| {
            s.only
                .as_ref()
                .is_none_or(|o| format!("{} {case}", kind.name()).contains(o.as_str()))
        };
        rows.push((
            "quic   1",
            if on("quic 1") {
                quic_case(&a, kind, 1, &s).await
            } else {
                Sample::default()
            },
        ));
        rows.push((
            "quic  64",
            if on("quic 64") {
                quic_case(&a, kind, 64, &s).await
            } else {
                Sample::default()
            },
        ));
        rows.push((
            "tcp    1",
            if on("tcp 1") {
                tcp_case(tcp, kind, 1, 1, &s).await
            } else {
                Sample::default()
            },
        ));
        rows.push((
            "tcp   64 pipe",
            if on("tcp 64 pipe") {
                tcp_case(tcp, kind, 1, 64, &s).await
            } else {
                Sample::default()
            },
        ));
        rows.push((
            "tcp   64 mux",
            if on("tcp 64 mux") {
                tcp_mux_case(kind, 64, &s).await
            } else {
                Sample::default()
            },
        ));
        rows.push((
            "tcp   64 conn",
            if on("tcp 64 conn") {
                tcp_case(tcp, kind, 64, 1, &s).await
            } else {
                Sample::default()
            },
        ));
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
        let r64m = rows[1].1.ops_per_sec() / rows[4].1.ops_per_sec();
        let r64c = rows[1].1.ops_per_sec() / rows[5].1.ops_per_sec();
        println!(
            "{:<5} ratio quic/tcp: 1 in flight {r1:.2}; 64 in flight {r64:.2} vs pipe, {r64m:.2} vs mux, {r64c:.2} vs 64 conns",
            kind.name()
        );
        ratios.push((kind, r64, r64m));
    }

    println!();
    println!(
        "Bulk ({} MiB of {} KiB values per case)",
        s.bulk_bytes >> 20,
        BULK_VALUE >> 10
    );
    println!("{:<10} {:>10} {:>10}", "case", "secs", "MiB/s");
    // A short unmeasured run of each first, then the measured one.
    let bulk_on = |case: &str| {
        s.only
            .as_ref()
            .is_none_or(|o| format!("bulk {case}").contains(o.as_str()))
    };
    let warm = (s.bulk_bytes / 16).max(BULK_VALUE as u64);
    let mut q = Duration::MAX;
    if bulk_on("quic") {
        quic_bulk(&a, warm).await;
        q = quic_bulk(&a, s.bulk_bytes).await;
    }
    let mut t = Duration::MAX;
    if bulk_on("tcp") {
        tcp_bulk(warm).await;
        t = tcp_bulk(s.bulk_bytes).await;
    }
    let (qm, tm) = (mib_per_sec(s.bulk_bytes, q), mib_per_sec(s.bulk_bytes, t));
    println!("{:<10} {:>10.3} {:>10.1}", "quic", q.as_secs_f64(), qm);
    println!("{:<10} {:>10.3} {:>10.1}", "tcp", t.as_secs_f64(), tm);
    let bulk_ratio = qm / tm;
    println!("ratio quic/tcp: {bulk_ratio:.3}");

    println!();
    println!("Summary");
    for (kind, r, rm) in ratios {
        println!(
            "  {:<4} 64 in flight: quic/tcp(mux) = {rm:.2} (target ≥ {RTT_TARGET}) {}   [vs tcp pipelined: {r:.2}]",
            kind.name(),
            verdict(rm, RTT_TARGET)
        );
    }
    println!(
        "  bulk stream:       quic/tcp      = {bulk_ratio:.2} (target ≥ {BULK_TARGET}) {}",
        verdict(bulk_ratio, BULK_TARGET)
    );
    if s.quick {
        println!("  (smoke run: cases too short for these verdicts to mean anything)");
    }
    a.shutdown().await;
    b.shutdown().await;
    if s.diag {
        diagnostics(&ca, &s).await;
    }
}

/// Knobs for the raw quinn diagnostics (what `QuicTransport` sets, plus
/// what it could).
#[derive(Clone, Copy, Debug)]
struct Tune {
    name: &'static str,
    /// `TransportConfig::stream_receive_window` (None: quinn's default).
    stream_window: Option<u32>,
    /// `TransportConfig::receive_window` (connection).
    conn_window: Option<u32>,
    /// `TransportConfig::send_window`.
    send_window: Option<u64>,
    /// Generic segmentation offload.
    gso: bool,
    /// Ask the peer to acknowledge less often (ACK frequency extension).
    ack_frequency: bool,
    /// Round-robin between streams with data to send (quinn's default).
    fairness: bool,
}

const DEFAULT_TUNE: Tune = Tune {
    name: "as QuicTransport",
    stream_window: None,
    conn_window: None,
    send_window: None,
    gso: true,
    ack_frequency: false,
    fairness: true,
};

fn transport_config(t: Tune) -> Arc<quinn::TransportConfig> {
    let mut c = quinn::TransportConfig::default();
    c.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(Duration::from_secs(5)).unwrap(),
    ))
    .keep_alive_interval(Some(Duration::from_secs(1)))
    .max_concurrent_bidi_streams(quinn::VarInt::from_u32(1024))
    .max_concurrent_uni_streams(quinn::VarInt::from_u32(1024))
    .enable_segmentation_offload(t.gso)
    .send_fairness(t.fairness);
    if let Some(w) = t.stream_window {
        c.stream_receive_window(quinn::VarInt::from_u32(w));
    }
    if let Some(w) = t.conn_window {
        c.receive_window(quinn::VarInt::from_u32(w));
    }
    if let Some(w) = t.send_window {
        c.send_window(w);
    }
    if t.ack_frequency {
        let mut ack = quinn::AckFrequencyConfig::default();
        ack.ack_eliciting_threshold(quinn::VarInt::from_u32(16))
            .max_ack_delay(Some(Duration::from_millis(5)));
        c.ack_frequency_config(Some(ack));
    }
    Arc::new(c)
}

/// A raw quinn connection (same certificates and TLS as `QuicTransport`)
/// from node 1 to node 2: (client side, server side, endpoints to keep).
async fn raw_pair(
    ca: &ClusterCa,
    t: Tune,
) -> (quinn::Connection, quinn::Connection, [quinn::Endpoint; 2]) {
    let config = transport_config(t);
    let mut server = tls::quinn_server_config(&ca.identity(node(2)).unwrap()).unwrap();
    server.transport_config(Arc::clone(&config));
    let mut client = tls::quinn_client_config(&ca.identity(node(1)).unwrap()).unwrap();
    client.transport_config(config);
    let server = quinn::Endpoint::server(server, loopback()).unwrap();
    let mut client_ep = quinn::Endpoint::client(loopback()).unwrap();
    client_ep.set_default_client_config(client);
    let addr = server.local_addr().unwrap();
    let connecting = client_ep
        .connect(addr, &tls::node_dns_name(node(2)))
        .unwrap();
    let accepting = server.clone();
    let accepted = tokio::spawn(async move { accepting.accept().await.unwrap().await.unwrap() });
    let c = connecting.await.unwrap();
    let s = accepted.await.unwrap();
    (c, s, [server, client_ep])
}

/// Raw quinn, a bidirectional stream per request, as `QuicTransport` does
/// it minus its layers (no inbound channel, responder, timeout, two-step
/// frame reads): the floor of that design.
async fn raw_stream_per_request(
    ca: &ClusterCa,
    t: Tune,
    kind: Kind,
    in_flight: usize,
    s: &Settings,
) -> Sample {
    let (client, server, _endpoints) = raw_pair(ca, t).await;
    let server_side = server.clone();
    let serving = tokio::spawn(async move {
        let small = Bytes::from(vec![7u8; SMALL_VALUE]);
        while let Ok((mut send, mut recv)) = server.accept_bi().await {
            let small = small.clone();
            tokio::spawn(async move {
                let Ok(body) = recv.read_to_end(1 << 20).await else {
                    return;
                };
                let Open::Request(request) =
                    frame::decode::<Open>(&body[frame::HEADER_LEN..]).unwrap()
                else {
                    panic!("not a request");
                };
                let answer = frame::encode(&answer(request, &small), LIMIT).unwrap();
                let _ = send.write_chunk(answer).await;
                let _ = send.finish();
            });
        }
    });
    let window = Window::new(s);
    let mut tasks = tokio::task::JoinSet::new();
    let request = frame::encode(&Open::Request(kind.request()), LIMIT).unwrap();
    for _ in 0..in_flight {
        let (client, request) = (client.clone(), request.clone());
        tasks.spawn(async move {
            let mut sample = Sample::default();
            loop {
                let t0 = Instant::now();
                if t0 >= window.end {
                    break;
                }
                let (mut send, mut recv) = client.open_bi().await.unwrap();
                send.write_chunk(request.clone()).await.unwrap();
                send.finish().unwrap();
                let body = recv.read_to_end(1 << 20).await.unwrap();
                let response: Response = frame::decode(&body[frame::HEADER_LEN..]).unwrap();
                check(kind, &response);
                sample.all += 1;
                if t0 >= window.start {
                    sample.ops += 1;
                    sample.latencies.push(t0.elapsed().as_nanos() as u64);
                }
            }
            sample
        });
    }
    let sample = collect(tasks, window).await;
    let datagrams = client.stats().udp_tx.datagrams + server_side.stats().udp_tx.datagrams;
    client.close(quinn::VarInt::from_u32(0), b"done");
    serving.abort();
    Sample {
        datagrams,
        ..sample
    }
}

/// Raw quinn, ONE bidirectional stream carrying pipelined requests, as the
/// TCP baseline does: what multiplexing requests on long-lived streams
/// would give.
async fn raw_one_stream_pipelined(
    ca: &ClusterCa,
    t: Tune,
    kind: Kind,
    in_flight: usize,
    s: &Settings,
) -> Sample {
    let (client, server, _endpoints) = raw_pair(ca, t).await;
    let server_side = server.clone();
    let serving = tokio::spawn(async move {
        if let Ok((send, recv)) = server.accept_bi().await {
            serve_pipelined(recv, send).await;
        }
    });
    let window = Window::new(s);
    let (send, recv) = client.open_bi().await.unwrap();
    let sample = pipelined_client(recv, send, kind, in_flight, window).await;
    let sample = Sample {
        elapsed: Instant::now().duration_since(window.start),
        ..sample
    };
    let datagrams = client.stats().udp_tx.datagrams + server_side.stats().udp_tx.datagrams;
    client.close(quinn::VarInt::from_u32(0), b"done");
    serving.abort();
    Sample {
        datagrams,
        ..sample
    }
}

/// Raw quinn, `streams` long-lived bidirectional streams, each carrying one
/// request at a time (a pool of reusable streams instead of a new stream
/// per request; no request ids needed).
async fn raw_stream_pool(
    ca: &ClusterCa,
    t: Tune,
    kind: Kind,
    streams: usize,
    s: &Settings,
) -> Sample {
    let (client, server, _endpoints) = raw_pair(ca, t).await;
    let server_side = server.clone();
    let serving = tokio::spawn(async move {
        while let Ok((send, recv)) = server.accept_bi().await {
            tokio::spawn(serve_pipelined(recv, send));
        }
    });
    let window = Window::new(s);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..streams {
        let (send, recv) = client.open_bi().await.unwrap();
        tasks.spawn(pipelined_client(recv, send, kind, 1, window));
    }
    let sample = collect(tasks, window).await;
    let datagrams = client.stats().udp_tx.datagrams + server_side.stats().udp_tx.datagrams;
    client.close(quinn::VarInt::from_u32(0), b"done");
    serving.abort();
    Sample {
        datagrams,
        ..sample
    }
}

/// [`mux_case`] over one raw quinn bidirectional stream.
async fn raw_one_stream_mux(
    ca: &ClusterCa,
    t: Tune,
    kind: Kind,
    callers: usize,
    s: &Settings,
) -> Sample {
    let (client, server, _endpoints) = raw_pair(ca, t).await;
    let server_side = server.clone();
    let serving = tokio::spawn(async move {
        if let Ok((send, recv)) = server.accept_bi().await {
            serve_mux(recv, send).await;
        }
    });
    let (send, recv) = client.open_bi().await.unwrap();
    let sample = mux_case(recv, send, kind, callers, Window::new(s)).await;
    let datagrams = client.stats().udp_tx.datagrams + server_side.stats().udp_tx.datagrams;
    client.close(quinn::VarInt::from_u32(0), b"done");
    serving.abort();
    Sample {
        datagrams,
        ..sample
    }
}

/// Raw quinn bulk: one unidirectional stream of 64 KiB chunks (no framing,
/// no items), read to the end; the ceiling for `open_stream`.
async fn raw_bulk(ca: &ClusterCa, t: Tune, bytes: u64) -> Duration {
    let (client, server, _endpoints) = raw_pair(ca, t).await;
    let receiving = tokio::spawn(async move {
        let mut recv = server.accept_uni().await.unwrap();
        let mut total = 0u64;
        while let Some(chunk) = recv.read_chunk(usize::MAX, true).await.unwrap() {
            total += chunk.bytes.len() as u64;
        }
        total
    });
    let chunk = Bytes::from(vec![0x5au8; BULK_VALUE]);
    let chunks = bytes.div_ceil(BULK_VALUE as u64);
    let t0 = Instant::now();
    let mut send = client.open_uni().await.unwrap();
    for _ in 0..chunks {
        send.write_chunk(chunk.clone()).await.unwrap();
    }
    send.finish().unwrap();
    let total = receiving.await.unwrap();
    let elapsed = t0.elapsed();
    assert_eq!(total, chunks * BULK_VALUE as u64);
    client.close(quinn::VarInt::from_u32(0), b"done");
    elapsed
}

/// What the QUIC numbers are made of: raw quinn beside `QuicTransport`.
async fn diagnostics(ca: &ClusterCa, s: &Settings) {
    println!();
    println!("Diagnostics: raw quinn (same certificates, TLS and transport config unless named)");
    println!(
        "{:<5} {:<46} {:>10} {:>9} {:>9} {:>10}",
        "msg", "case (64 in flight)", "ops/s", "p50 µs", "p99 µs", "dgrams/req"
    );
    let row = |kind: Kind, name: &str, mut x: Sample| {
        println!(
            "{:<5} {:<46} {:>10.0} {:>9} {:>9} {:>10.2}",
            kind.name(),
            name,
            x.ops_per_sec(),
            us(x.percentile(0.5)),
            us(x.percentile(0.99)),
            x.datagrams as f64 / x.all.max(1) as f64
        );
    };
    let tunes = [
        DEFAULT_TUNE,
        Tune {
            name: "no GSO",
            gso: false,
            ..DEFAULT_TUNE
        },
        Tune {
            name: "ack frequency 16/5ms",
            ack_frequency: true,
            ..DEFAULT_TUNE
        },
        Tune {
            name: "send fairness off",
            fairness: false,
            ..DEFAULT_TUNE
        },
    ];
    for kind in [Kind::Ping, Kind::Get] {
        for t in tunes {
            let x = raw_stream_per_request(ca, t, kind, 64, s).await;
            row(kind, &format!("stream per request [{}]", t.name), x);
        }
        let x = raw_stream_pool(ca, DEFAULT_TUNE, kind, 64, s).await;
        row(kind, "64 reused streams, 1 request each", x);
        let x = raw_one_stream_mux(ca, DEFAULT_TUNE, kind, 64, s).await;
        row(kind, "one stream, 64 callers multiplexed (ids)", x);
        let x = raw_one_stream_pipelined(ca, DEFAULT_TUNE, kind, 64, s).await;
        row(kind, "one stream, 64 pipelined (as tcp 64 pipe)", x);
    }
    println!("{:<50} {:>10} {:>10}", "bulk case", "secs", "MiB/s");
    let big = 16 << 20;
    let bulk_tunes = [
        DEFAULT_TUNE,
        Tune {
            name: "stream/conn window 16 MiB, send 16 MiB",
            stream_window: Some(big),
            conn_window: Some(big),
            send_window: Some(u64::from(big)),
            ..DEFAULT_TUNE
        },
        Tune {
            name: "no GSO",
            gso: false,
            ..DEFAULT_TUNE
        },
    ];
    for t in bulk_tunes {
        raw_bulk(ca, t, s.bulk_bytes / 16).await;
        let d = raw_bulk(ca, t, s.bulk_bytes).await;
        println!(
            "{:<50} {:>10.3} {:>10.1}",
            format!("raw uni stream [{}]", t.name),
            d.as_secs_f64(),
            mib_per_sec(s.bulk_bytes, d)
        );
    }
}

fn main() {
    let settings = Settings::from_env();
    let workers = std::env::var("GYRE_BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    let t0 = Instant::now();
    rt.block_on(run(settings));
    println!("total {:.2} s", t0.elapsed().as_secs_f64());
}

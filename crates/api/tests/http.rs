//! The HTTP API end to end: `serve` on a loopback port over the model
//! backend, driven by a small hand-written HTTP/1.1 client.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use common::ModelBackend;
use gyre_api::auth::{Gate, Role, UserEntry, Users, hash_secret};
use gyre_api::http::HttpConfig;
use gyre_api::{
    AdminCommand, AdminError, AdminReply, Backend, BucketSet, ClusterStatus, KeyPage, KvError,
    Metrics, NodeStats,
};
use gyre_types::{BucketName, BucketProps};
use gyre_wire::{ClientOp, ClientReply};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

// ---------------------------------------------------------------- client

/// One HTTP response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        serde_json::from_slice(&self.body).unwrap()
    }

    fn context(&self) -> String {
        self.header("x-gyre-context").unwrap().to_owned()
    }

    /// Asserts a JSON error of `status` and `kind`; returns the body.
    fn error(&self, status: u16, kind: &str) -> Value {
        assert_eq!(self.status, status, "{self:?}");
        let body = self.json();
        assert_eq!(body["error"], kind, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        body
    }
}

/// A request: method, path (already percent-encoded), headers, body.
struct Req<'a> {
    method: &'a str,
    path: &'a str,
    headers: Vec<(&'a str, String)>,
    body: Vec<u8>,
}

fn req<'a>(method: &'a str, path: &'a str) -> Req<'a> {
    Req {
        method,
        path,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

impl<'a> Req<'a> {
    fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The request's bytes, with a Content-Length body.
    fn encode(&self, close: bool) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\nHost: gyre\r\n", self.method, self.path);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.headers.iter().any(|(n, _)| {
            n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding")
        }) {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// Sends it on a new connection and reads the answer.
    async fn send(self, addr: SocketAddr) -> Reply {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut conn = BufReader::new(stream);
        conn.get_mut().write_all(&self.encode(true)).await.unwrap();
        read_reply(&mut conn, self.method == "HEAD").await
    }
}

/// Reads one response (Content-Length or chunked body; none for `HEAD`).
async fn read_reply(conn: &mut BufReader<TcpStream>, head: bool) -> Reply {
    let mut line = String::new();
    conn.read_line(&mut line).await.unwrap();
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if head {
        return reply;
    }
    if let Some(len) = reply.header("content-length") {
        let mut body = vec![0; len.parse().unwrap()];
        conn.read_exact(&mut body).await.unwrap();
        reply.body = body;
    } else if reply.header("transfer-encoding") == Some("chunked") {
        loop {
            let mut size = String::new();
            conn.read_line(&mut size).await.unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            conn.read_exact(&mut chunk).await.unwrap();
            chunk.truncate(size);
            if size == 0 {
                break;
            }
            reply.body.extend(chunk);
        }
    }
    reply
}

// ---------------------------------------------------------------- server

struct Server<B> {
    addr: SocketAddr,
    backend: Arc<B>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start_with<B: Backend>(backend: B) -> Server<B> {
    start_guarded(backend, Gate::open()).await
}

async fn start_guarded<B: Backend>(backend: B, gate: Gate) -> Server<B> {
    start_configured(
        backend,
        HttpConfig {
            gate: Arc::new(gate),
            ..HttpConfig::default()
        },
    )
    .await
}

async fn start_configured<B: Backend>(backend: B, config: HttpConfig) -> Server<B> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let backend = Arc::new(backend);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(gyre_api::http::serve(
        listener,
        backend.clone(),
        Arc::new(Metrics::new()),
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        backend,
        stop: Some(stop),
        task,
    }
}

async fn start() -> Server<ModelBackend> {
    start_with(ModelBackend::new()).await
}

impl<B> Server<B> {
    async fn send(&self, r: Req<'_>) -> Reply {
        r.send(self.addr).await
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

impl Server<ModelBackend> {
    fn calls(&self) -> u64 {
        self.backend.calls.load(Ordering::SeqCst)
    }

    async fn put(&self, path: &str, value: &str, context: Option<&str>) -> Reply {
        let mut r = req("PUT", path).body(value);
        if let Some(c) = context {
            r = r.header("X-Gyre-Context", c);
        }
        let reply = self.send(r).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply
    }

    async fn make_bucket(&self, name: &str, props: Value) {
        let path = format!("/v1/buckets/{name}");
        let reply = self.send(req("PUT", &path).body(props.to_string())).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
}

/// The base64 context of an empty key: what a first read returns.
fn empty_context() -> String {
    STANDARD.encode(gyre_versioning::Context::empty().to_bytes())
}

// ---------------------------------------------------------------- keys

#[tokio::test]
async fn a_bucket_s_keys_are_listed_page_by_page() {
    let s = start().await;
    for i in 0..25 {
        s.put(&format!("/v1/kv/default/user:{i}"), "v", None).await;
    }
    s.put("/v1/kv/default/cart:1", "v", None).await;
    s.put("/v1/kv/default/%00%FF", "v", None).await;
    let mut seen = Vec::new();
    let mut path = "/v1/kv/default?limit=4".to_owned();
    let mut pages = 0;
    loop {
        let page = s.send(req("GET", &path)).await;
        assert_eq!(page.status, 200, "{page:?}");
        let page = page.json();
        for k in page["keys"].as_array().unwrap() {
            seen.push(STANDARD.decode(k["key_base64"].as_str().unwrap()).unwrap());
        }
        pages += 1;
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/kv/default?limit=4&after={next}"),
            None => break,
        }
    }
    assert!(pages >= 7, "{pages} pages");
    seen.sort();
    let mut want: Vec<Vec<u8>> = (0..25).map(|i| format!("user:{i}").into_bytes()).collect();
    want.push(b"cart:1".to_vec());
    want.push(vec![0, 0xff]);
    want.sort();
    assert_eq!(seen, want);
    // A prefix, and text keys shown as text.
    let page = s
        .send(req("GET", "/v1/kv/default?prefix=cart%3A"))
        .await
        .json();
    assert_eq!(
        page["keys"],
        json!([{"key": "cart:1", "key_base64": "Y2FydDox"}])
    );
    assert_eq!(page["next"], Value::Null);
    // Bad input is a 400 before the backend; unknown buckets a 404.
    let calls = s.calls();
    for bad in [
        "limit=0",
        "limit=10001",
        "after=x",
        "after=0",
        "prefix=%zz",
        "r=2",
    ] {
        s.send(req("GET", &format!("/v1/kv/default?{bad}")))
            .await
            .error(400, "bad_query");
    }
    assert_eq!(s.calls(), calls);
    s.send(req("GET", "/v1/kv/nope"))
        .await
        .error(404, "unknown_bucket");
    s.shutdown().await;
}

#[tokio::test]
async fn counters_are_incremented_with_post_and_read_as_numbers() {
    let s = start().await;
    s.make_bucket("counters", json!({"conflict_mode": "counter"}))
        .await;
    let props = s.send(req("GET", "/v1/buckets/counters")).await.json();
    assert_eq!(props["conflict_mode"], "counter");
    let reply = s.send(req("POST", "/v1/kv/counters/likes?incr=5")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["value"], 5);
    let reply = s
        .send(req("POST", "/v1/kv/counters/likes?incr=-2&w=1"))
        .await;
    assert_eq!(reply.json()["value"], 3);
    let got = s.send(req("GET", "/v1/kv/counters/likes")).await;
    assert_eq!((got.status, got.body.as_slice()), (200, &b"3"[..]));
    // A plain PUT is refused in a counter bucket; POST elsewhere says why.
    s.send(req("PUT", "/v1/kv/counters/likes").body("9"))
        .await
        .error(400, "bad_request");
    let calls = s.calls();
    s.send(req("POST", "/v1/kv/default/likes?incr=1"))
        .await
        .error(400, "not_a_counter");
    for bad in ["", "?incr=x", "?incr=1&w=9", "?incr=1&other=2"] {
        let path = format!("/v1/kv/counters/likes{bad}");
        let reply = s.send(req("POST", &path)).await;
        assert_eq!(reply.status, 400, "{path}: {reply:?}");
    }
    assert_eq!(s.calls(), calls);
    s.shutdown().await;
}

#[tokio::test]
async fn a_ttl_header_makes_a_value_expire_and_reads_say_when() {
    let s = start().await;
    let put = s
        .send(
            req("PUT", "/v1/kv/default/session")
                .header("X-Gyre-TTL", "100")
                .body("alice"),
        )
        .await;
    assert_eq!(put.status, 200, "{put:?}");
    let got = s.send(req("GET", "/v1/kv/default/session")).await;
    assert_eq!(got.status, 200);
    let expires: u64 = got.header("x-gyre-expires").unwrap().parse().unwrap();
    let want = common::wall_ms() + 100_000;
    assert!(
        (want - 2_000..=want).contains(&expires),
        "{expires} vs {want}"
    );
    let json = s
        .send(req("GET", "/v1/kv/default/session").header("Accept", "application/json"))
        .await
        .json();
    assert_eq!(json["siblings"][0]["expires_unix_ms"], expires);
    // `never` overrides a default; a value that never expires says nothing.
    s.send(
        req("PUT", "/v1/kv/default/session")
            .header("X-Gyre-TTL", "never")
            .body("alice"),
    )
    .await;
    let got = s.send(req("GET", "/v1/kv/default/session")).await;
    assert_eq!(got.header("x-gyre-expires"), None);
    // Bad values are refused before the backend.
    let calls = s.calls();
    for bad in ["0", "-1", "soon", ""] {
        s.send(
            req("PUT", "/v1/kv/default/k")
                .header("X-Gyre-TTL", bad)
                .body("v"),
        )
        .await
        .error(400, "bad_ttl");
    }
    assert_eq!(s.calls(), calls);
    // A bucket's default, and its removal with 0.
    s.make_bucket("sessions", json!({"default_ttl": 1800}))
        .await;
    let props = s.send(req("GET", "/v1/buckets/sessions")).await.json();
    assert_eq!(props["default_ttl"], 1800);
    s.put("/v1/kv/sessions/a", "v", None).await;
    let got = s.send(req("GET", "/v1/kv/sessions/a")).await;
    let expires: u64 = got.header("x-gyre-expires").unwrap().parse().unwrap();
    assert!(expires >= common::wall_ms() + 1_790_000, "{expires}");
    s.make_bucket("sessions", json!({"default_ttl": 0})).await;
    let props = s.send(req("GET", "/v1/buckets/sessions")).await.json();
    assert_eq!(props.get("default_ttl"), None, "{props}");
    s.shutdown().await;
}

#[tokio::test]
async fn put_get_delete_round_trip() {
    let s = start().await;
    let put = s.put("/v1/kv/default/user:1", "alice", None).await;
    let written = put.json();
    assert_eq!(written["context"].as_str(), Some(put.context().as_str()));
    assert!(
        written["dot"].as_str().unwrap().ends_with(":1"),
        "{written}"
    );

    let got = s.send(req("GET", "/v1/kv/default/user:1")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"alice");
    assert_eq!(got.header("content-type"), Some("application/octet-stream"));
    assert!(!got.context().is_empty());

    let deleted = s
        .send(req("DELETE", "/v1/kv/default/user:1").header("X-Gyre-Context", got.context()))
        .await;
    assert_eq!(deleted.status, 200, "{deleted:?}");
    assert!(deleted.json()["dot"].as_str().is_some());
    assert_eq!(
        deleted.json()["context"].as_str(),
        Some(deleted.context().as_str())
    );

    let gone = s.send(req("GET", "/v1/kv/default/user:1")).await;
    gone.error(404, "not_found");
    assert!(s.backend.values("default", b"user:1").is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn a_write_with_the_context_of_a_read_replaces_it() {
    let s = start().await;
    s.put("/v1/kv/default/k", "v1", None).await;
    let read = s.send(req("GET", "/v1/kv/default/k")).await;
    let put = s.put("/v1/kv/default/k", "v2", Some(&read.context())).await;
    assert_ne!(put.context(), read.context());
    assert_eq!(s.backend.values("default", b"k"), [Bytes::from("v2")]);

    // Writing again with the old context makes a sibling of v2.
    s.put("/v1/kv/default/k", "v3", Some(&read.context())).await;
    assert_eq!(s.backend.values("default", b"k").len(), 2);

    // The context a put returns covers both: writing with it resolves them.
    let latest = s.send(req("GET", "/v1/kv/default/k")).await;
    s.put("/v1/kv/default/k", "v4", Some(&latest.context()))
        .await;
    assert_eq!(s.backend.values("default", b"k"), [Bytes::from("v4")]);
    s.shutdown().await;
}

#[tokio::test]
async fn siblings_are_a_300_and_a_put_with_its_context_resolves_them() {
    let s = start().await;
    let first = s.send(req("GET", "/v1/kv/default/cart")).await;
    first.error(404, "not_found");
    s.put("/v1/kv/default/cart", "apples", Some(&first.context()))
        .await;
    s.put("/v1/kv/default/cart", "pears", Some(&first.context()))
        .await;

    let read = s.send(req("GET", "/v1/kv/default/cart")).await;
    assert_eq!(read.status, 300, "{read:?}");
    let body = read.json();
    assert_eq!(body["context"].as_str(), Some(read.context().as_str()));
    let siblings = body["siblings"].as_array().unwrap();
    let mut values: Vec<&str> = siblings
        .iter()
        .map(|s| s["value"].as_str().unwrap())
        .collect();
    values.sort_unstable();
    assert_eq!(values, ["apples", "pears"]);
    for sibling in siblings {
        let raw = STANDARD
            .decode(sibling["value_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(raw, sibling["value"].as_str().unwrap().as_bytes());
    }
    let latest = body["latest"].as_u64().unwrap() as usize;
    assert_eq!(siblings[latest]["value"], "pears");

    let resolved = s
        .put("/v1/kv/default/cart", "apples,pears", Some(&read.context()))
        .await;
    let again = s.send(req("GET", "/v1/kv/default/cart")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, b"apples,pears");
    assert_eq!(again.context(), resolved.context());
    s.shutdown().await;
}

#[tokio::test]
async fn accept_json_always_answers_json() {
    let s = start().await;
    let missing = s
        .send(req("GET", "/v1/kv/default/j").header("Accept", "application/json"))
        .await;
    let body = missing.error(404, "not_found");
    assert_eq!(body["siblings"], json!([]));
    assert_eq!(body["context"].as_str(), Some(missing.context().as_str()));

    // One value, not UTF-8: JSON with a null text.
    let put = req("PUT", "/v1/kv/default/j").body(vec![0xff, 0x00, 0x01]);
    assert_eq!(s.send(put).await.status, 200);
    let one = s
        .send(req("GET", "/v1/kv/default/j").header("Accept", "application/json"))
        .await;
    assert_eq!(one.status, 200);
    let body = one.json();
    assert_eq!(body["siblings"].as_array().unwrap().len(), 1);
    assert_eq!(body["siblings"][0]["value"], Value::Null);
    assert_eq!(
        body["siblings"][0]["value_base64"],
        STANDARD.encode([0xff, 0, 1])
    );
    assert_eq!(body["latest"], 0);
    assert_eq!(body["context"].as_str(), Some(one.context().as_str()));
    s.shutdown().await;
}

#[tokio::test]
async fn a_read_after_a_delete_is_a_404_whose_context_a_put_can_use() {
    let s = start().await;
    s.put("/v1/kv/default/k", "v", None).await;
    let read = s.send(req("GET", "/v1/kv/default/k")).await;
    s.send(req("DELETE", "/v1/kv/default/k").header("X-Gyre-Context", read.context()))
        .await;
    let gone = s.send(req("GET", "/v1/kv/default/k")).await;
    let body = gone.error(404, "not_found");
    assert_eq!(body["context"].as_str(), Some(gone.context().as_str()));
    assert_ne!(gone.context(), empty_context());

    s.put("/v1/kv/default/k", "again", Some(&gone.context()))
        .await;
    let back = s.send(req("GET", "/v1/kv/default/k")).await;
    assert_eq!((back.status, back.body.as_slice()), (200, &b"again"[..]));
    s.shutdown().await;
}

#[tokio::test]
async fn keys_are_the_percent_decoded_rest_of_the_path() {
    let s = start().await;
    s.put("/v1/kv/default/a/b%2Fc", "slashes", None).await;
    assert_eq!(
        s.backend.values("default", b"a/b/c"),
        [Bytes::from("slashes")]
    );
    s.put("/v1/kv/default/%00%FF+x", "binary", None).await;
    assert_eq!(
        s.backend.values("default", b"\x00\xff+x"),
        [Bytes::from("binary")]
    );
    let got = s.send(req("GET", "/v1/kv/default/%00%ff+x")).await;
    assert_eq!(got.body, b"binary");
    let head = s.send(req("HEAD", "/v1/kv/default/%00%ff+x")).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("6"));
    assert_eq!(head.context(), got.context());

    // Keys as long as a URI allows.
    let long = "k".repeat(65_000);
    s.put(&format!("/v1/kv/default/{long}"), "long", None).await;
    assert_eq!(
        s.backend.values("default", long.as_bytes()),
        [Bytes::from("long")]
    );
    s.shutdown().await;
}

#[tokio::test]
async fn quorum_overrides_within_n_val_are_accepted() {
    let s = start().await;
    assert_eq!(
        s.send(req("PUT", "/v1/kv/default/q?w=3").body("x"))
            .await
            .status,
        200
    );
    assert_eq!(
        s.send(req("PUT", "/v1/kv/default/q?w=1").body("y"))
            .await
            .status,
        200
    );
    assert_eq!(s.send(req("GET", "/v1/kv/default/q?r=1")).await.status, 200);
    assert_eq!(s.send(req("GET", "/v1/kv/default/q?r=3")).await.status, 200);
    assert_eq!(
        s.send(req("DELETE", "/v1/kv/default/q?w=2")).await.status,
        200
    );
    s.shutdown().await;
}

#[tokio::test]
async fn bad_input_is_a_json_4xx_and_reaches_nothing() {
    let s = start().await;
    s.make_bucket("tiny", json!({"n_val": 1, "max_value_len": 16}))
        .await;
    s.put("/v1/kv/default/k", "kept", None).await;
    let calls = s.calls();

    // A key over Key::MAX_LEN cannot even fit in a URI (65 534 bytes at
    // most): hyper refuses the request line itself, before any route.
    let long_key = format!("/v1/kv/default/{}", "a".repeat(64 * 1024 + 1));
    assert_eq!(s.send(req("PUT", &long_key).body("v")).await.status, 414);

    let cases: Vec<(Req<'_>, u16, &str)> = vec![
        (req("PUT", "/v1/kv/default/"), 400, "bad_key"),
        (req("GET", "/v1/kv/default/a%zz"), 400, "bad_key"),
        (req("PUT", "/v1/kv/bad!name/k").body("v"), 400, "bad_bucket"),
        (req("GET", "/v1/kv/nope/k"), 404, "unknown_bucket"),
        (req("PUT", "/v1/kv/nope/k").body("v"), 404, "unknown_bucket"),
        (req("DELETE", "/v1/kv/nope/k"), 404, "unknown_bucket"),
        (req("GET", "/v1/kv/default/k?r=abc"), 400, "bad_query"),
        (req("GET", "/v1/kv/default/k?r=300"), 400, "bad_query"),
        (req("GET", "/v1/kv/default/k?r=-1"), 400, "bad_query"),
        (req("GET", "/v1/kv/default/k?w=2"), 400, "bad_query"),
        (
            req("PUT", "/v1/kv/default/k?r=2").body("v"),
            400,
            "bad_query",
        ),
        (req("GET", "/v1/kv/default/k?r=0"), 400, "bad_quorum"),
        (req("GET", "/v1/kv/default/k?r=4"), 400, "bad_quorum"),
        (
            req("PUT", "/v1/kv/default/k?w=0").body("v"),
            400,
            "bad_quorum",
        ),
        (
            req("PUT", "/v1/kv/default/k?w=4").body("v"),
            400,
            "bad_quorum",
        ),
        (req("PUT", "/v1/kv/tiny/k?w=2").body("v"), 400, "bad_quorum"),
        (req("DELETE", "/v1/kv/default/k?w=9"), 400, "bad_quorum"),
        (
            req("PUT", "/v1/kv/default/k")
                .header("X-Gyre-Context", "not base64!")
                .body("v"),
            400,
            "bad_context",
        ),
        (
            req("DELETE", "/v1/kv/default/k").header("X-Gyre-Context", "@@@@"),
            400,
            "bad_context",
        ),
        (
            req("PUT", "/v1/kv/default/k")
                .header("X-Gyre-Context", empty_context())
                .header("X-Gyre-Context", empty_context())
                .body("v"),
            400,
            "bad_context",
        ),
        (
            req("PUT", "/v1/kv/tiny/k").body("x".repeat(17)),
            413,
            "value_too_large",
        ),
        (
            // Refused from the header alone: no body is ever sent.
            req("PUT", "/v1/kv/tiny/k").header("Content-Length", "50000000"),
            413,
            "value_too_large",
        ),
        (
            req("PUT", "/v1/kv/tiny/k")
                .header("Transfer-Encoding", "chunked")
                .body("a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n"),
            413,
            "value_too_large",
        ),
    ];
    for (r, status, kind) in cases {
        let what = format!("{} {}", r.method, &r.path[..r.path.len().min(60)]);
        let reply = s.send(r).await;
        assert_eq!(reply.status, status, "{what}: {reply:?}");
        reply.error(status, kind);
    }
    assert_eq!(s.calls(), calls, "bad input reached the backend");

    // A context that is base64 but no context: the backend refuses it.
    let garbage = STANDARD.encode(b"\xffgarbage");
    let reply = s
        .send(
            req("PUT", "/v1/kv/default/k")
                .header("X-Gyre-Context", garbage)
                .body("v"),
        )
        .await;
    reply.error(400, "bad_request");
    assert_eq!(s.backend.values("default", b"k"), [Bytes::from("kept")]);

    // Up to the limit is fine, chunked too.
    assert_eq!(
        s.send(req("PUT", "/v1/kv/tiny/k").body("x".repeat(16)))
            .await
            .status,
        200
    );
    let chunked = req("PUT", "/v1/kv/tiny/c")
        .header("Transfer-Encoding", "chunked")
        .body("5\r\nhello\r\n0\r\n\r\n");
    assert_eq!(s.send(chunked).await.status, 200);
    assert_eq!(s.backend.values("tiny", b"c"), [Bytes::from("hello")]);
    s.shutdown().await;
}

#[tokio::test]
async fn too_few_replicas_is_a_503_with_the_counts() {
    let s = start().await;
    s.put("/v1/kv/default/k", "v", None).await;
    s.backend.unavailable.store(true, Ordering::SeqCst);
    for r in [
        req("GET", "/v1/kv/default/k"),
        req("PUT", "/v1/kv/default/k").body("w"),
        req("DELETE", "/v1/kv/default/k"),
    ] {
        let reply = s.send(r).await;
        let body = reply.error(503, "unavailable");
        assert_eq!(body["answered"], 1);
        assert_eq!(body["required"], 2);
        assert_eq!(
            body["message"],
            "1 of 2 required replicas answered (asked 2 other primaries, waited 2000 ms)"
        );
        assert_eq!(body["detail"], "asked 2 other primaries, waited 2000 ms");
    }
    s.backend.unavailable.store(false, Ordering::SeqCst);
    assert_eq!(s.backend.values("default", b"k"), [Bytes::from("v")]);
    s.shutdown().await;
}

/// A node before its first layout, or one that fails inside.
struct Broken {
    model: ModelBackend,
    error: KvError,
}

impl Backend for Broken {
    async fn kv(&self, _: ClientOp) -> Result<ClientReply, KvError> {
        Err(self.error.clone())
    }
    fn bucket(&self, bucket: &BucketName) -> Option<BucketProps> {
        self.model.bucket(bucket)
    }
    fn buckets(&self) -> Vec<(BucketName, BucketProps)> {
        self.model.buckets()
    }
    async fn set_bucket(&self, _: BucketName, _: BucketProps) -> Result<BucketSet, AdminError> {
        Err(AdminError::Internal("catalogue on fire".into()))
    }
    fn status(&self) -> ClusterStatus {
        ClusterStatus {
            layout_version: None,
            partitions: None,
            replication: None,
            ..self.model.status()
        }
    }
    async fn admin(&self, command: AdminCommand) -> Result<AdminReply, AdminError> {
        self.model.admin(command).await
    }
    fn stats(&self) -> NodeStats {
        NodeStats {
            hints_pending: 7,
            ..NodeStats::default()
        }
    }
    fn local_trees(&self) -> Vec<gyre_api::TreeRoot> {
        self.model.local_trees()
    }
    fn local_get(
        &self,
        bucket: &BucketName,
        key: &gyre_types::Key,
    ) -> Result<Option<Vec<Bytes>>, KvError> {
        self.model.local_get(bucket, key)
    }
    async fn list_keys(&self, _: &BucketName, _: u64, _: usize) -> Result<KeyPage, KvError> {
        Err(self.error.clone())
    }
    async fn key_count(&self) -> Result<u64, KvError> {
        Err(self.error.clone())
    }
}

#[tokio::test]
async fn a_node_without_layout_is_not_ready_and_unhealthy() {
    let s = start_with(Broken {
        model: ModelBackend::new(),
        error: KvError::NotReady("no layout committed".into()),
    })
    .await;
    s.send(req("GET", "/v1/kv/default/k"))
        .await
        .error(503, "not_ready");
    s.send(req("PUT", "/v1/kv/default/k").body("v"))
        .await
        .error(503, "not_ready");
    let health = s.send(req("GET", "/health")).await;
    assert_eq!(health.status, 503);
    assert_eq!(
        health.json(),
        json!({"status": "no_layout", "node": common::NODE.to_string(), "layout_version": null})
    );
    // Not ready, but alive: a liveness probe must not restart a node that
    // waits for its first layout.
    let live = s.send(req("GET", "/health/live")).await;
    assert_eq!(live.status, 200);
    assert_eq!(
        live.json(),
        json!({"status": "alive", "node": common::NODE.to_string(), "layout_version": null})
    );
    let metrics = s.send(req("GET", "/metrics")).await;
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(text.contains("gyre_hints_pending 7"), "{text}");
    s.shutdown().await;
}

#[tokio::test]
async fn failures_inside_the_node_are_500s() {
    let s = start_with(Broken {
        model: ModelBackend::new(),
        error: KvError::Internal("disk on fire".into()),
    })
    .await;
    s.send(req("DELETE", "/v1/kv/default/k"))
        .await
        .error(500, "internal");
    s.send(req("PUT", "/v1/buckets/b").body("{}"))
        .await
        .error(500, "internal");
    s.shutdown().await;
}

// ---------------------------------------------------------------- buckets

#[tokio::test]
async fn buckets_are_read_created_and_changed() {
    let s = start().await;
    let default = s.send(req("GET", "/v1/buckets/default")).await;
    assert_eq!(default.status, 200);
    assert_eq!(
        default.json(),
        json!({"n_val": 3, "r": 2, "w": 2, "conflict_mode": "siblings",
               "max_siblings": 100, "max_value_len": 8 << 20})
    );
    s.send(req("GET", "/v1/buckets/sessions"))
        .await
        .error(404, "unknown_bucket");
    s.send(req("GET", "/v1/buckets/bad!name"))
        .await
        .error(400, "bad_bucket");

    let created = s
        .send(req("PUT", "/v1/buckets/sessions").body(r#"{"n_val": 5, "conflict_mode": "lww"}"#))
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    assert_eq!(
        created.json(),
        json!({"bucket": "sessions", "acknowledged": 1, "members": 1,
               "props": {"n_val": 5, "r": 3, "w": 3, "conflict_mode": "lww",
                         "max_siblings": 100, "max_value_len": 8 << 20}})
    );
    // A partial change keeps the rest.
    let changed = s
        .send(req("PUT", "/v1/buckets/sessions").body(r#"{"w": 1, "max_value_len": 1024}"#))
        .await;
    assert_eq!(
        changed.json()["props"],
        json!({"n_val": 5, "r": 3, "w": 1, "conflict_mode": "lww",
               "max_siblings": 100, "max_value_len": 1024})
    );
    // An empty body creates a bucket with the defaults.
    let plain = s.send(req("PUT", "/v1/buckets/plain")).await;
    assert_eq!(plain.json()["props"], default.json());

    let list = s.send(req("GET", "/v1/buckets")).await.json();
    let names: Vec<&str> = list["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["bucket"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "plain", "sessions"]);
    assert_eq!(list["buckets"][2]["props"]["w"], 1);

    // The new bucket takes keys, with its own quorum range.
    assert_eq!(
        s.send(req("PUT", "/v1/kv/sessions/s?w=5").body("x"))
            .await
            .status,
        200
    );

    for (body, kind) in [
        (r#"{"n_val": 3, "r": 4}"#, "bad_props"),
        (r#"{"n_val": 0}"#, "bad_props"),
        (r#"{"max_siblings": 0}"#, "bad_props"),
        (r#"{"max_value_len": 67108865}"#, "bad_props"),
        (r#"{"n_val": 300}"#, "bad_json"),
        (r#"{"conflict_mode": "newest"}"#, "bad_json"),
        (r#"{"nval": 3}"#, "bad_json"),
        (r#"{"n_val": 3"#, "bad_json"),
        ("[]", "bad_json"),
    ] {
        s.send(req("PUT", "/v1/buckets/sessions").body(body))
            .await
            .error(400, kind);
    }
    s.send(req("PUT", "/v1/buckets/bad!name").body("{}"))
        .await
        .error(400, "bad_bucket");
    // Refused from the header alone: no body is ever sent.
    let big = req("PUT", "/v1/buckets/sessions").header("Content-Length", "2097152");
    s.send(big).await.error(413, "body_too_large");
    assert_eq!(
        s.send(req("GET", "/v1/buckets/sessions")).await.json()["w"],
        1,
        "a refused change changed nothing"
    );
    s.shutdown().await;
}

// ---------------------------------------------------------------- cluster

#[tokio::test]
async fn cluster_status_and_administration() {
    let s = start().await;
    let status = s.send(req("GET", "/v1/cluster")).await;
    assert_eq!(status.status, 200);
    let status: ClusterStatus = serde_json::from_value(status.json()).unwrap();
    assert_eq!(status, s.backend.status());

    let plan = s
        .send(req("POST", "/v1/cluster/admin").body(r#"{"command": "plan"}"#))
        .await;
    assert_eq!(plan.status, 200);
    let plan: AdminReply = serde_json::from_value(plan.json()).unwrap();
    assert!(matches!(plan, AdminReply::Plan(p) if p.version == 1));
    let clear = s
        .send(req("POST", "/v1/cluster/admin").body(r#"{"command": "clear"}"#))
        .await;
    assert_eq!(clear.json(), json!({"staged": []}));

    let refused = s
        .send(
            req("POST", "/v1/cluster/admin")
                .header("Content-Type", "application/json")
                .body(r#"{"command": "join", "node": "0000000000000001"}"#),
        )
        .await;
    let body = refused.error(400, "bad_request");
    assert_eq!(body["message"], "unknown node 0000000000000001");
    for body in [
        r#"{"command": "explode"}"#,
        r#"{"command": "join"}"#,
        "not json",
        "",
    ] {
        s.send(req("POST", "/v1/cluster/admin").body(body))
            .await
            .error(400, "bad_json");
    }

    let health = s.send(req("GET", "/health")).await;
    assert_eq!(health.status, 200);
    assert_eq!(
        health.json(),
        json!({"status": "ok", "node": common::NODE.to_string(), "layout_version": 1})
    );
    s.shutdown().await;
}

// ---------------------------------------------------------------- the rest

#[tokio::test]
async fn metrics_count_key_operations_in_prometheus_text() {
    let s = start().await;
    s.put("/v1/kv/default/m", "v", None).await;
    s.send(req("GET", "/v1/kv/default/m")).await;
    s.send(req("GET", "/v1/kv/default/m?r=0")).await;
    s.send(req("GET", "/v1/kv/default/none")).await;

    let reply = s.send(req("GET", "/metrics")).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text; version=1.0.0"),
        "{reply:?}"
    );
    let text = String::from_utf8(reply.body).unwrap();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "value of {line:?}");
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "name of {line:?}"
        );
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line:?}");
        }
    }
    assert!(text.ends_with("# EOF\n"));
    let requests = |op: &str, outcome: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("gyre_requests_total{")
                    && l.contains("front=\"http\"")
                    && l.contains(&format!("op=\"{op}\""))
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .and_then(|l| l.rsplit_once(' '))
            .map(|(_, v)| v.to_owned())
    };
    assert_eq!(requests("get", "ok").as_deref(), Some("2"), "{text}");
    assert_eq!(
        requests("get", "bad_request").as_deref(),
        Some("1"),
        "{text}"
    );
    assert_eq!(requests("put", "ok").as_deref(), Some("1"), "{text}");
    assert!(text.contains("gyre_request_duration_seconds_count{front=\"http\",op=\"get\"} 3"));
    s.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json() {
    let s = start().await;
    let body = s
        .send(req("GET", "/v2/nothing"))
        .await
        .error(404, "no_route");
    assert_eq!(body["message"], "no route for GET /v2/nothing");
    s.send(req("GET", "/v1/kv")).await.error(404, "no_route");
    let wrong = s.send(req("PATCH", "/v1/kv/default/k").body("v")).await;
    wrong.error(405, "method_not_allowed");
    let allow = wrong.header("allow").unwrap();
    assert!(
        allow.contains("PUT") && allow.contains("GET") && allow.contains("POST"),
        "{allow}"
    );
    s.send(req("DELETE", "/metrics"))
        .await
        .error(405, "method_not_allowed");
    s.send(req("GET", "/v1/cluster/admin"))
        .await
        .error(405, "method_not_allowed");
    s.shutdown().await;
}

#[tokio::test]
async fn keep_alive_serves_many_requests_and_shutdown_still_returns() {
    let s = start().await;
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let mut conn = BufReader::new(stream);
    for i in 0..3 {
        let put = req("PUT", "/v1/kv/default/ka").body(format!("v{i}"));
        conn.get_mut().write_all(&put.encode(false)).await.unwrap();
        assert_eq!(read_reply(&mut conn, false).await.status, 200);
        conn.get_mut()
            .write_all(&req("GET", "/v1/kv/default/ka").encode(false))
            .await
            .unwrap();
        let got = read_reply(&mut conn, false).await;
        assert_eq!(got.body, format!("v{i}").as_bytes());
    }
    // The connection is idle and open: shutdown closes it and returns.
    s.shutdown().await;
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest))
        .await
        .expect("the server closed the idle connection")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

// --------------------------------------------------------------- openapi

/// `crates/api/openapi.json` is the document the code generates.
/// `GYRE_UPDATE_OPENAPI=1 cargo test -p gyre-api --test http openapi`
/// rewrites it.
#[test]
fn the_checked_in_openapi_document_is_the_generated_one() {
    let generated = gyre_api::http::openapi_json();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    if std::env::var_os("GYRE_UPDATE_OPENAPI").is_some() {
        std::fs::write(path, generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{path} is not what the code generates: run `GYRE_UPDATE_OPENAPI=1 cargo test -p \
         gyre-api --test http openapi` and commit the file"
    );
}

/// The document is served, and every operation it describes is routed
/// (none answers `no_route` or `method_not_allowed`).
#[tokio::test]
async fn the_openapi_document_is_served_and_describes_routed_operations() {
    let s = start().await;
    let served = s.send(req("GET", "/v1/openapi.json")).await;
    assert_eq!(served.status, 200);
    let doc = served.json();
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(gyre_api::http::openapi_json()).unwrap()
    );
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 12, "{:?}", paths.keys());
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path.replace("{bucket}", "default").replace("{key}", "k");
        for method in item.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let mut request = req(&method, &concrete);
            if method == "POST" && concrete == "/v1/cluster/admin" {
                request = request.body(r#"{"command": "plan"}"#);
            }
            let reply = s.send(request).await;
            let kind = serde_json::from_slice::<Value>(&reply.body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned));
            assert!(
                !matches!(kind.as_deref(), Some("no_route" | "method_not_allowed")),
                "{method} {path} is documented but not routed: {reply:?}"
            );
            operations += 1;
        }
    }
    assert!(operations >= 16, "{operations} operations");
    s.shutdown().await;
}

/// Changing `n_val` or `conflict_mode` of a bucket that holds data is
/// refused unless forced, with why; an empty bucket, or a safe change,
/// goes through.
#[tokio::test]
async fn risky_changes_to_a_bucket_with_data_need_force() {
    let s = start().await;
    s.make_bucket("carts", json!({"n_val": 3})).await;
    // Empty: any change goes.
    s.make_bucket("carts", json!({"n_val": 2})).await;
    s.make_bucket("carts", json!({"n_val": 3, "conflict_mode": "lww"}))
        .await;
    s.make_bucket("carts", json!({"conflict_mode": "siblings"}))
        .await;
    let put = s.send(req("PUT", "/v1/kv/carts/k").body("v")).await;
    assert_eq!(put.status, 200, "{put:?}");
    for (body, why) in [
        (r#"{"n_val": 5}"#, "changing n_val from 3 to 5"),
        (
            r#"{"conflict_mode": "lww"}"#,
            "switching conflict_mode from siblings to lww",
        ),
        (
            r#"{"conflict_mode": "counter"}"#,
            "switching conflict_mode from siblings to counter",
        ),
    ] {
        let refused = s.send(req("PUT", "/v1/buckets/carts").body(body)).await;
        let e = refused.error(409, "risky_change");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains(why) && message.contains("?force=true"),
            "{message}"
        );
    }
    let props = s.send(req("GET", "/v1/buckets/carts")).await.json();
    assert_eq!(
        (props["n_val"].clone(), props["conflict_mode"].clone()),
        (json!(3), json!("siblings"))
    );
    // A safe change needs nothing; a forced one goes through.
    s.make_bucket("carts", json!({"w": 1, "max_siblings": 10}))
        .await;
    let forced = s
        .send(req("PUT", "/v1/buckets/carts?force=true").body(r#"{"n_val": 5}"#))
        .await;
    assert_eq!(forced.status, 200, "{forced:?}");
    assert_eq!(forced.json()["props"]["n_val"], json!(5));
    s.shutdown().await;
}

// ------------------------------------------------------------------ auth

/// Every route × every role × {no credential, a wrong one, the right one
/// as Bearer or Basic}: the status the role table says, and nothing run on
/// refusal (the backend's calls are counted).
#[tokio::test]
async fn each_route_answers_each_role_as_the_table_says() {
    let entry = |name: &str, role: Role, buckets: Option<Vec<String>>| UserEntry {
        name: name.into(),
        role,
        buckets,
        secret_hash: hash_secret(&format!("{name}.secret")).unwrap(),
    };
    let users = Users::new(vec![
        entry("root", Role::Admin, None),
        entry("app", Role::ReadWrite, Some(vec!["default".into()])),
        entry("viewer", Role::ReadOnly, None),
    ])
    .unwrap();
    let s = start_guarded(ModelBackend::new(), Gate::new(users, false)).await;
    // (method, path, body, the least role: 0 none, 1 any user, 2 readonly
    // on default, 3 readwrite on default, 4 admin).
    let routes: [(&str, &str, &str, u8); 14] = [
        ("GET", "/health", "", 0),
        ("GET", "/health/live", "", 0),
        ("GET", "/v1/openapi.json", "", 0),
        ("GET", "/metrics", "", 1),
        ("GET", "/v1/cluster", "", 1),
        ("GET", "/v1/buckets", "", 1),
        ("GET", "/v1/buckets/default", "", 1),
        ("GET", "/v1/kv/default/k", "", 2),
        ("GET", "/v1/kv/default", "", 2),
        ("PUT", "/v1/kv/default/k", "v", 3),
        ("DELETE", "/v1/kv/default/k", "", 3),
        ("PUT", "/v1/buckets/other", "{}", 4),
        ("POST", "/v1/cluster/admin", r#"{"command": "plan"}"#, 4),
        ("GET", "/v1/local/trees", "", 4),
    ];
    let basic =
        |user: &str, secret: &str| format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")));
    // (credential, the level it reaches: 0 refused with 401).
    let credentials: [(Option<String>, u8); 8] = [
        (None, 0),
        (Some("Bearer root.wrong".into()), 0),
        (Some(basic("root", "nope")), 0),
        (Some("Bearer nobody.secret".into()), 0),
        (Some("Bearer root.secret".into()), 4),
        (Some(basic("app", "app.secret")), 3),
        (Some("Bearer app.secret".into()), 3),
        (Some("Bearer viewer.secret".into()), 2),
    ];
    for (method, path, body, needs) in routes {
        for (credential, level) in &credentials {
            let mut request = req(method, path).body(body);
            if let Some(c) = credential {
                request = request.header("Authorization", c.clone());
            }
            let calls_before = s.backend.calls.load(Ordering::Relaxed);
            let reply = s.send(request).await;
            let want = if needs == 0 || *level >= needs {
                None
            } else if *level == 0 {
                Some(401)
            } else {
                Some(403)
            };
            match want {
                None => assert!(
                    reply.status != 401 && reply.status != 403,
                    "{method} {path} with {credential:?}: {reply:?}"
                ),
                Some(status) => {
                    let kind = if status == 401 {
                        "unauthorized"
                    } else {
                        "forbidden"
                    };
                    reply.error(status, kind);
                    if status == 401 {
                        assert!(reply.header("www-authenticate").is_some(), "{reply:?}");
                    }
                    assert_eq!(
                        s.backend.calls.load(Ordering::Relaxed),
                        calls_before,
                        "{method} {path} with {credential:?} reached the backend"
                    );
                }
            }
        }
    }
    // A scoped user stays in its buckets.
    s.backend
        .set_bucket(BucketName::new("other").unwrap(), BucketProps::default())
        .await
        .unwrap();
    let put = s
        .send(
            req("PUT", "/v1/kv/other/k")
                .header("Authorization", "Bearer app.secret")
                .body("v"),
        )
        .await;
    put.error(403, "forbidden");
    let viewer = s
        .send(req("GET", "/v1/kv/other/k").header("Authorization", "Bearer viewer.secret"))
        .await;
    viewer.error(404, "not_found");
    s.shutdown().await;
}

// ---------------------------------------------------------------- limits

/// Reads until the server closes the connection (at most 5 s).
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut all))
        .await
        .expect("the server did not close the connection")
        .ok();
    all
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_and_the_others_served() {
    let s = start_configured(
        ModelBackend::new(),
        HttpConfig {
            max_connections: 2,
            ..HttpConfig::default()
        },
    )
    .await;
    let mut a = TcpStream::connect(s.addr).await.unwrap();
    let mut b = TcpStream::connect(s.addr).await.unwrap();
    // Both are served (a keep-alive request each).
    for conn in [&mut a, &mut b] {
        conn.write_all(b"GET /health/live HTTP/1.1\r\nHost: gyre\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        conn.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
    }
    // The third is refused with a JSON 503, and closed.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let refused = String::from_utf8(until_closed(&mut c).await).unwrap();
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    let body = refused.split("\r\n\r\n").nth(1).unwrap();
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"], "too_many_connections");
    // Once one leaves, a new client is served again.
    drop(a);
    let mut served = false;
    for _ in 0..100 {
        let reply = s.send(req("GET", "/health/live")).await;
        if reply.status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "no client served after one left");
    drop(b);
    s.shutdown().await;
}

#[tokio::test]
async fn a_client_slow_with_its_headers_or_its_body_is_cut_off() {
    let s = start_configured(
        ModelBackend::new(),
        HttpConfig {
            header_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_millis(300),
            ..HttpConfig::default()
        },
    )
    .await;
    // Headers that never finish: disconnected, with nothing answered.
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHo").await.unwrap();
    let started = std::time::Instant::now();
    let got = until_closed(&mut slow).await;
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    // An idle keep-alive connection is closed the same way.
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: gyre\r\n\r\n")
        .await
        .unwrap();
    let got = until_closed(&mut idle).await;
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // A body that trickles: 408, and nothing written.
    let calls = s.backend.calls.load(Ordering::Relaxed);
    let mut trickle = TcpStream::connect(s.addr).await.unwrap();
    trickle
        .write_all(
            b"PUT /v1/kv/default/k HTTP/1.1\r\nHost: gyre\r\nContent-Length: 100\r\n\r\n0123456789",
        )
        .await
        .unwrap();
    let got = String::from_utf8(until_closed(&mut trickle).await).unwrap();
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("request_timeout"), "{got}");
    assert_eq!(s.backend.calls.load(Ordering::Relaxed), calls);
    s.shutdown().await;
}

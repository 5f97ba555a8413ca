//! Bad input over both front ends of a real node is refused with an error,
//! leaves the connection (or a new one) working, and writes nothing; too
//! few replicas is an "unavailable" answer, not a success.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Cluster, Node, Resp, RespConn, SETTLE, wait_for};

/// Asserts `reply` is an error starting with `prefix`.
#[track_caller]
fn assert_error(reply: Resp, prefix: &str, what: &str) {
    match reply {
        Resp::Error(e) if e.starts_with(prefix) => {}
        other => panic!("{what}: expected -{prefix}…, got {other:?}"),
    }
}

/// The connection still answers.
#[track_caller]
fn assert_alive(conn: &mut RespConn, what: &str) {
    assert_eq!(
        conn.cmd(&["PING"]),
        Resp::Simple("PONG".to_owned()),
        "the connection after {what}"
    );
}

/// Asserts an HTTP answer's status and JSON `error`.
#[track_caller]
fn assert_http(reply: &common::Reply, status: u16, error: &str, what: &str) {
    assert_eq!(
        (reply.status, reply.json()["error"].as_str().unwrap_or("")),
        (status, error),
        "{what}: {}",
        reply.text()
    );
}

/// The key reads as not found, through `node`, over HTTP.
#[track_caller]
fn assert_absent(node: &Node, key: &str, what: &str) {
    let got = node.get_kv(key, Some(3));
    assert_eq!(got.status, 404, "{key} after {what}: {}", got.text());
    let health = node.get("/health");
    assert_eq!(health.status, 200, "the node after {what}");
}

#[test]
fn bad_input_over_redis_and_http_is_refused_and_writes_nothing() {
    let mut cluster = Cluster::start(3);
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let mut conn = RespConn::connect(a.ep.resp);

    // Keys: over 64 KiB or empty.
    let huge = "k".repeat(70_000);
    assert_error(
        conn.cmd(&["SET", &huge, "v"]),
        "ERR",
        "SET of a 70 000-byte key",
    );
    assert_error(conn.cmd(&["GET", &huge]), "ERR", "GET of a 70 000-byte key");
    assert_error(
        conn.cmd(&["GYRE.PUT", &huge, "-", "v"]),
        "ERR",
        "GYRE.PUT of a 70 000-byte key",
    );
    assert_error(conn.cmd(&["SET", "", "v"]), "ERR", "SET of an empty key");
    assert_alive(&mut conn, "oversized and empty keys");
    let put = a.call("PUT", "/v1/kv/default/", &[], Some(b"v"));
    assert_http(&put, 400, "bad_key", "PUT of an empty key");

    // Contexts that are not base64, or are base64 of garbage.
    for context in ["!!!", "Z2FyYmFnZQ=="] {
        assert_error(
            conn.cmd(&["GYRE.PUT", "ctx", context, "v"]),
            "ERR",
            &format!("GYRE.PUT with context {context:?}"),
        );
        assert_alive(&mut conn, "a bad context");
    }
    assert_eq!(conn.cmd(&["GET", "ctx"]), Resp::Bulk(None));
    let put = a.call(
        "PUT",
        "/v1/kv/default/ctx",
        &[("x-gyre-context", "!!!")],
        Some(b"v"),
    );
    assert_http(&put, 400, "bad_context", "X-Gyre-Context: !!!");
    let put = a.call(
        "PUT",
        "/v1/kv/default/ctx",
        &[("x-gyre-context", "Z2FyYmFnZQ==")],
        Some(b"v"),
    );
    assert_http(&put, 400, "bad_request", "X-Gyre-Context of base64 garbage");
    assert_absent(b, "ctx", "bad contexts");

    // An unknown bucket.
    assert_error(
        conn.cmd(&["GYRE.BUCKET", "nope"]),
        "ERR",
        "GYRE.BUCKET nope",
    );
    assert_eq!(
        conn.cmd(&["GYRE.BUCKET"]),
        Resp::Bulk(Some(b"default".to_vec())),
        "the connection's bucket after a refused GYRE.BUCKET"
    );
    assert_error(
        conn.cmd(&["GYRE.GET", "bkt", "BUCKET", "nope"]),
        "ERR",
        "GYRE.GET k BUCKET nope",
    );
    assert_error(
        conn.cmd(&["GYRE.PUT", "bkt", "-", "v", "BUCKET", "nope"]),
        "ERR",
        "GYRE.PUT k - v BUCKET nope",
    );
    assert_alive(&mut conn, "an unknown bucket");
    let got = a.get("/v1/kv/nope/bkt");
    assert_http(&got, 404, "unknown_bucket", "GET /v1/kv/nope/k");
    let put = a.call("PUT", "/v1/kv/nope/bkt", &[], Some(b"v"));
    assert_http(&put, 404, "unknown_bucket", "PUT /v1/kv/nope/k");
    assert_absent(b, "bkt", "an unknown bucket");

    // Quorums beyond n_val (3), or zero.
    assert_error(
        conn.cmd(&["GYRE.GET", "q", "R", "4"]),
        "ERR",
        "GYRE.GET k R 4",
    );
    assert_error(
        conn.cmd(&["GYRE.PUT", "q", "-", "v", "W", "4"]),
        "ERR",
        "GYRE.PUT k - v W 4",
    );
    assert_error(
        conn.cmd(&["GYRE.PUT", "q", "-", "v", "W", "0"]),
        "ERR",
        "GYRE.PUT k - v W 0",
    );
    assert_alive(&mut conn, "impossible quorums");
    assert_http(&a.get_kv("q", Some(4)), 400, "bad_quorum", "GET ?r=4");
    assert_http(&a.put_kv("q", b"v", Some(4)), 400, "bad_quorum", "PUT ?w=4");
    assert_http(&a.put_kv("q", b"v", Some(0)), 400, "bad_quorum", "PUT ?w=0");
    let put = a.call("PUT", "/v1/kv/default/q?x=1", &[], Some(b"v"));
    assert_http(&put, 400, "bad_query", "PUT ?x=1");
    assert_absent(b, "q", "impossible quorums");

    // Input that is not RESP: an error, then the node hangs up (the
    // framing is lost); the next connection works, as does the first.
    let mut broken = RespConn::connect(a.ep.resp);
    broken.send_raw(b"*1\r\n$abc\r\n");
    assert_error(
        broken.read().unwrap(),
        "ERR Protocol error",
        "a non-numeric bulk length",
    );
    assert!(
        broken.is_closed(),
        "the node kept a connection whose framing is lost"
    );
    assert_alive(&mut RespConn::connect(a.ep.resp), "a protocol error");
    assert_alive(&mut conn, "another connection's protocol error");

    // JSON that does not parse, or breaks the rules.
    let put = a.call("PUT", "/v1/buckets/x", &[], Some(b"{"));
    assert_http(&put, 400, "bad_json", "PUT /v1/buckets/x {");
    let put = a.call("PUT", "/v1/buckets/x", &[], Some(br#"{"n_val": 0}"#));
    assert_http(&put, 400, "bad_props", "PUT /v1/buckets/x n_val 0");
    let got = b.get("/v1/buckets/x");
    assert_http(&got, 404, "unknown_bucket", "the bucket after bad JSON");
    assert_error(
        conn.cmd(&["GYRE.BUCKET", "x"]),
        "ERR",
        "GYRE.BUCKET x after bad JSON",
    );

    // Nothing was written, anywhere: no node holds any data.
    for node in &cluster.nodes {
        assert_eq!(
            node.try_trees().unwrap(),
            Vec::<String>::new(),
            "{} holds data after bad input only",
            node.label()
        );
    }

    // Good input works (and shows in the trees: the check above can fail).
    let long = "l".repeat(2000);
    let put = a.put_kv(&long, b"a 2000-byte key", None);
    assert_eq!(put.status, 200, "PUT of a 2000-byte key: {}", put.text());
    let got = b.get_kv(&long, None);
    assert_eq!((got.status, got.text().as_str()), (200, "a 2000-byte key"));
    assert_eq!(
        conn.cmd(&["SET", "fine", "v"]),
        Resp::Simple("OK".to_owned())
    );
    assert_eq!(conn.cmd(&["GET", "fine"]), Resp::Bulk(Some(b"v".to_vec())));
    for node in &cluster.nodes {
        wait_for(
            &format!("{} to hold the good writes", node.label()),
            SETTLE,
            || match node.try_trees()? {
                t if t.is_empty() => Err("no trees".to_owned()),
                _ => Ok(()),
            },
        );
    }

    // Two of three nodes gone: a write with W=2 cannot be confirmed.
    cluster.nodes[1].kill9();
    cluster.nodes[2].kill9();
    let survivor = &cluster.nodes[0];
    let put = survivor.put_kv("lonely", b"v", Some(2));
    assert_http(&put, 503, "unavailable", "PUT w=2 with one node of three");
    let body = put.json();
    assert_eq!(
        (body["answered"].as_u64(), body["required"].as_u64()),
        (Some(1), Some(2)),
        "{body}"
    );
    assert_http(
        &survivor.get_kv("lonely", Some(2)),
        503,
        "unavailable",
        "GET r=2 with one node of three",
    );
    let mut conn = RespConn::connect(survivor.ep.resp);
    assert_error(
        conn.cmd(&["SET", "lonely", "v"]),
        "UNAVAILABLE 1 of 2",
        "SET (W=2) with one node of three",
    );
    assert_error(
        conn.cmd(&["GYRE.PUT", "lonely", "-", "v", "W", "2"]),
        "UNAVAILABLE 1 of 2",
        "GYRE.PUT … W 2 with one node of three",
    );
    // The survivor itself works: W=1 is its own write.
    let put = survivor.put_kv("lonely", b"v", Some(1));
    assert_eq!(put.status, 200, "PUT w=1 on the survivor: {}", put.text());
}

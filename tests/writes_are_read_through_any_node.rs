//! Three nodes: what one node takes, over HTTP or the Redis protocol, the
//! others serve, and a real Redis client library (the `redis` crate) works
//! unmodified: plain commands, pipelines, MSET/MGET.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use common::Cluster;

/// A `redis` crate connection to a node's RESP port.
fn client(addr: SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/"))
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
}

/// Runs `cmd` on `conn`; it must succeed.
fn run<T: redis::FromRedisValue>(conn: &mut redis::Connection, cmd: &redis::Cmd) -> T {
    cmd.query(conn)
        .unwrap_or_else(|e| panic!("{} failed: {e}", describe(cmd)))
}

/// A command's arguments, for a failure message.
fn describe(cmd: &redis::Cmd) -> String {
    cmd.args_iter()
        .map(|arg| match arg {
            redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            _ => "<cursor>".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn writes_through_one_node_are_read_through_another_over_http_and_redis() {
    let cluster = Cluster::start(3);
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];

    let (mut at_a, mut at_c) = (client(a.ep.resp), client(c.ep.resp));

    // HTTP in, HTTP and Redis out.
    let put = a.put_kv("greeting", b"hello over http", None);
    assert_eq!(put.status, 200, "PUT through {}: {}", a.label(), put.text());
    let got = b.get_kv("greeting", None);
    assert_eq!(
        (got.status, got.text().as_str()),
        (200, "hello over http"),
        "GET through {}",
        b.label()
    );
    let got: String = run(&mut at_c, redis::cmd("GET").arg("greeting"));
    assert_eq!(got, "hello over http");

    // Redis in, HTTP and Redis out.
    let ok: String = run(
        &mut at_a,
        redis::cmd("SET").arg("from-redis").arg("hello over resp"),
    );
    assert_eq!(ok, "OK");
    let got = b.get_kv("from-redis", None);
    assert_eq!(
        (got.status, got.text().as_str()),
        (200, "hello over resp"),
        "GET through {}",
        b.label()
    );
    let got: String = run(&mut at_c, redis::cmd("GET").arg("from-redis"));
    assert_eq!(got, "hello over resp");
    // A key nobody wrote is nil, not an error.
    let exists: i64 = run(&mut at_c, redis::cmd("EXISTS").arg("never-written"));
    assert_eq!(exists, 0);
    let missing: Option<String> = run(&mut at_c, redis::cmd("GET").arg("never-written"));
    assert_eq!(missing, None);

    // A pipeline of 200 SETs through one node, then MGET of all of them
    // and a pipeline of GETs through another: every value, in order.
    let keys: Vec<String> = (0..200).map(|i| format!("piped:{i}")).collect();
    let mut pipe = redis::pipe();
    for (i, key) in keys.iter().enumerate() {
        pipe.cmd("SET").arg(key).arg(format!("value {i}")).ignore();
    }
    let () = pipe.query(&mut at_a).unwrap();
    let want: Vec<String> = (0..200).map(|i| format!("value {i}")).collect();
    let got: Vec<String> = run(&mut at_c, redis::cmd("MGET").arg(&keys));
    assert_eq!(got, want, "MGET through {}", c.label());
    let mut pipe = redis::pipe();
    for key in &keys {
        pipe.cmd("GET").arg(key);
    }
    let got: Vec<String> = pipe.query(&mut client(b.ep.resp)).unwrap();
    assert_eq!(got, want, "pipelined GETs through {}", b.label());

    // MSET through one node, the same values through the others and HTTP.
    let ok: String = run(
        &mut at_c,
        redis::cmd("MSET")
            .arg("m:1")
            .arg("one")
            .arg("m:2")
            .arg("two"),
    );
    assert_eq!(ok, "OK");
    let got: Vec<Option<String>> = run(
        &mut at_a,
        redis::cmd("MGET").arg("m:1").arg("m:2").arg("m:3"),
    );
    assert_eq!(got, [Some("one".to_owned()), Some("two".to_owned()), None]);
    let got = b.get_kv("m:2", Some(3));
    assert_eq!((got.status, got.text().as_str()), (200, "two"));

    // DEL through one node is seen through the others.
    let deleted: i64 = run(&mut at_a, redis::cmd("DEL").arg("m:1").arg("m:3"));
    assert_eq!(deleted, 1, "DEL counts the keys that existed");
    let got: Option<String> = run(&mut at_c, redis::cmd("GET").arg("m:1"));
    assert_eq!(got, None);

    // SCAN through the client library's iterator walks the whole cluster:
    // every piped key, once, through any node; DBSIZE counts at least them.
    let scanned: Result<Vec<String>, _> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg("piped:*")
        .arg("COUNT")
        .arg(50)
        .clone()
        .iter(&mut at_c)
        .unwrap()
        .collect();
    let scanned = scanned.unwrap();
    let mut scanned_sorted = scanned.clone();
    scanned_sorted.sort();
    scanned_sorted.dedup();
    assert_eq!(scanned_sorted.len(), scanned.len(), "a key came twice");
    let mut want_keys = keys.clone();
    want_keys.sort();
    assert_eq!(scanned_sorted, want_keys);
    let size: i64 = run(&mut client(b.ep.resp), &redis::cmd("DBSIZE"));
    assert!(size >= 200, "DBSIZE {size}");

    // `gyre get` exits 0 for a value, 1 for a Gyre "no value", 2 for an
    // error (a 404 from a route that is not Gyre's key route included).
    let exit = |args: &[&str]| {
        std::process::Command::new(common::GYRE)
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
    };
    let url = a.url("");
    assert_eq!(exit(&["get", "greeting", "--node", &url]), Some(0));
    assert_eq!(exit(&["get", "never-written", "--node", &url]), Some(1));
    let elsewhere = format!("{url}/nothing-here");
    assert_eq!(exit(&["get", "greeting", "--node", &elsewhere]), Some(2));

    // An unknown command is an error reply, and the connection goes on.
    let err = redis::cmd("NO.SUCH.COMMAND")
        .query::<String>(&mut at_a)
        .unwrap_err();
    assert_eq!(err.code(), Some("ERR"), "{err}");
    let pong: String = run(&mut at_a, &redis::cmd("PING"));
    assert_eq!(pong, "PONG");
}

//! Three nodes driven by Debian's `redis-tools`, unmodified: `redis-cli`
//! reads and writes through every node, and `redis-benchmark` runs its
//! PING, SET, GET and MSET tests, and INCR in a counter bucket picked by
//! database number (`--dbnum`), without an error: every test of its
//! default list whose data type Gyre has.
//!
//! One of the system tests (`tests/system.sh`): it needs `redis-cli` and
//! `redis-benchmark` on the PATH, so it is built only with the `gyre`
//! package's `system-tests` feature.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};

use common::Cluster;

/// Runs a tool of redis-tools against `addr`; panics if it is missing.
fn redis_tool(tool: &str, addr: SocketAddr, args: &[&str]) -> Output {
    Command::new(tool)
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {tool} ({e}): this test needs redis-tools (apt-get install redis-tools)"
            )
        })
}

/// `redis-cli … args` and its output, which must be a success.
fn redis_cli(addr: SocketAddr, args: &[&str]) -> String {
    let out = redis_tool("redis-cli", addr, args);
    let stdout = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    assert!(
        out.status.success(),
        "redis-cli {args:?} against {addr} failed ({}): {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs `redis-benchmark -q` with `args` against `addr`: it must succeed
/// and report a rate for each of `tests`.
fn benchmark(addr: SocketAddr, args: &[&str], tests: &[&str]) {
    let mut all = args.to_vec();
    all.push("-q");
    let out = redis_tool("redis-benchmark", addr, &all);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "redis-benchmark {all:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // -q rewrites a progress line with \r; a result ends each test.
    let results: Vec<&str> = stdout
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| l.contains("requests per second"))
        .collect();
    for test in tests {
        assert!(
            results.iter().any(|l| l.starts_with(test)),
            "redis-benchmark {all:?} reported no rate for {test:?}:\n{stdout}\n{stderr}"
        );
    }
    assert!(
        !stdout.contains("ERR") && !stderr.contains("ERR"),
        "redis-benchmark {all:?} saw errors:\n{stdout}\n{stderr}"
    );
    eprintln!("redis-benchmark {all:?}: {results:?}");
}

#[test]
fn redis_cli_and_redis_benchmark_work_unmodified() {
    let cluster = Cluster::start(3);
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];

    // redis-cli in, redis-cli and HTTP out.
    assert_eq!(
        redis_cli(a.ep.resp, &["SET", "from-redis-cli", "hello"]),
        "OK"
    );
    assert_eq!(redis_cli(c.ep.resp, &["GET", "from-redis-cli"]), "hello");
    let got = b.get_kv("from-redis-cli", None);
    assert_eq!(
        (got.status, got.text().as_str()),
        (200, "hello"),
        "GET through {}",
        b.label()
    );
    // A key nobody wrote is nil, not an error.
    assert_eq!(redis_cli(c.ep.resp, &["EXISTS", "never-written"]), "0");

    // redis-cli --scan walks the cluster; a session expires.
    for i in 0..30 {
        redis_cli(a.ep.resp, &["SET", &format!("scan:{i}"), "v"]);
    }
    let listed = redis_cli(b.ep.resp, &["--scan", "--pattern", "scan:*"]);
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort_unstable();
    let mut want: Vec<String> = (0..30).map(|i| format!("scan:{i}")).collect();
    want.sort();
    assert_eq!(listed, want);
    assert_eq!(
        redis_cli(a.ep.resp, &["SET", "session", "v", "EX", "100"]),
        "OK"
    );
    let ttl: i64 = redis_cli(c.ep.resp, &["TTL", "session"]).parse().unwrap();
    assert!((99..=100).contains(&ttl), "{ttl}");

    // redis-benchmark, unmodified. Without -r it writes the key
    // `key:__rand_int__` literally (a 3-byte value: -d 3). MSET writes 10
    // keys a request, so it gets a tenth of the requests: the same number
    // of writes as SET.
    benchmark(
        a.ep.resp,
        &["-t", "set,get", "-n", "20000"],
        &["SET: ", "GET: "],
    );
    benchmark(
        a.ep.resp,
        &["-t", "mset", "-n", "2000"],
        &["MSET (10 keys): "],
    );
    // Its last write of the key, the same through every node.
    let at_a = redis_cli(a.ep.resp, &["GET", "key:__rand_int__"]);
    assert_eq!(
        at_a.len(),
        3,
        "the benchmark's key through {}: {at_a:?}",
        a.label()
    );
    let got = b.get_kv("key:__rand_int__", Some(3));
    assert_eq!(
        (got.status, got.text()),
        (200, at_a.clone()),
        "the benchmark's key through {}",
        b.label()
    );
    assert_eq!(redis_cli(c.ep.resp, &["GET", "key:__rand_int__"]), at_a);

    // The rest of its default list that Gyre has: PING, and INCR in a
    // counter bucket chosen by database number (SELECT 1: bucket db1).
    benchmark(
        a.ep.resp,
        &["-t", "ping", "-n", "20000"],
        &["PING_INLINE: ", "PING_MBULK: "],
    );
    let made = a.call(
        "PUT",
        "/v1/buckets/db1",
        &[],
        Some(br#"{"conflict_mode": "counter"}"#),
    );
    assert_eq!(made.status, 200, "{}", made.text());
    benchmark(
        a.ep.resp,
        &["-t", "incr", "-n", "5000", "--dbnum", "1"],
        &["INCR: "],
    );
    // Every increment counted once, whichever node reads it.
    for node in [a, b, c] {
        assert_eq!(
            redis_cli(node.ep.resp, &["-n", "1", "GET", "counter:__rand_int__"]),
            "5000",
            "through {}",
            node.label()
        );
    }
}

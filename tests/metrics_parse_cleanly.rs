//! A node's `/metrics` read as a Prometheus server reads it: the
//! OpenMetrics parser of the Prometheus Python client (the format its
//! content type announces) takes every line, and finds each family once.
//!
//! One of the system tests (`tests/system.sh`, which sets `GYRE_PYTHON` to
//! a virtualenv's interpreter with `prometheus-client` installed).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::Cluster;

/// Parses `text` with `prometheus_client.openmetrics.parser`; the family
/// names, one a line, or the parser's error.
fn parse_openmetrics(text: &str) -> Result<Vec<String>, String> {
    let python = std::env::var("GYRE_PYTHON")
        .map_err(|_| "GYRE_PYTHON is not set: run tests/system.sh".to_owned())?;
    let script = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        for f in text_string_to_metric_families(sys.stdin.read()):\n    print(f.name)\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

#[test]
fn metrics_parse_as_openmetrics() {
    let cluster = Cluster::start(3);
    let node = &cluster.nodes[0];
    // Some traffic, so that labelled series exist.
    node.put_kv("k", b"v", None);
    node.get_kv("k", None);
    let reply = node.get("/metrics");
    assert_eq!(reply.status, 200);
    let text = reply.text();
    let families = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut unique = families.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), families.len(), "a family twice: {families:?}");
    for want in [
        "gyre_requests",
        "gyre_request_duration_seconds",
        "gyre_tombstones_purged",
        "gyre_expired_purged",
        "gyre_hints_pending",
        "gyre_hints_pending_by_target",
        "gyre_peers",
        "gyre_peer_up",
        "gyre_peer_phi",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_threads",
        "process_cpu_seconds",
    ] {
        assert!(
            families.iter().any(|f| f == want),
            "{want} not in {families:?}"
        );
    }
}

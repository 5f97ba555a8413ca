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
use std::time::Duration;

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
    // Once gossip told this node that the others adopted the layout, all
    // three are members.
    let text = common::wait_for("every member up", Duration::from_secs(10), || {
        let reply = node.get("/metrics");
        assert_eq!(reply.status, 200);
        let text = reply.text();
        if text.contains("gyre_members{status=\"member\",liveness=\"up\"} 3\n") {
            Ok(text)
        } else {
            Err(text
                .lines()
                .filter(|l| l.starts_with("gyre_members"))
                .collect::<Vec<_>>()
                .join("; "))
        }
    });
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
        "gyre_members",
        "gyre_anti_entropy_sessions",
        "gyre_anti_entropy_failures",
        "gyre_store_objects",
        "gyre_store_disk_bytes",
        "gyre_store_journal_bytes",
        "gyre_store_memtable_bytes",
        "gyre_store_tables",
        "gyre_store_compactions",
        "gyre_store_compactions_running",
        "gyre_store_compaction_seconds",
        "gyre_store_sync_duration_seconds",
        "gyre_store_sync_batches",
        "gyre_peer_requests",
        "gyre_peer_request_duration_seconds",
        "gyre_peer_connects",
        "gyre_peer_connect_failures",
        "gyre_peer_connections",
        "gyre_peer_rtt_seconds",
        "gyre_peer_sent_bytes",
        "gyre_peer_received_bytes",
        "gyre_peer_lost_packets",
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
    // The families tell what happened: the write is stored and was
    // fsynced, replicas were asked over live connections, all three
    // members are up.
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert!(value("gyre_store_objects") >= 1.0);
    assert!(value("gyre_store_disk_bytes") > 0.0);
    assert!(value("gyre_store_sync_duration_seconds_count") >= 1.0);
    assert_eq!(value("gyre_peer_connections"), 2.0);
    assert!(
        text.lines()
            .any(|l| l.starts_with("gyre_peer_requests_total{")
                && l.contains("kind=\"replica_put\",outcome=\"ok\"")),
        "no answered replica_put in\n{text}"
    );
    dashboard_uses_only_these(&families);
}

/// Every series deploy/grafana/gyre.json queries is a family the node
/// serves: a renamed metric cannot leave a dashboard panel empty.
fn dashboard_uses_only_these(families: &[String]) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/gyre.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() > 20, "only {} queries in {path}", exprs.len());
    for expr in exprs {
        let names = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("gyre_") || w.starts_with("process_"));
        for name in names {
            let family = ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            assert!(
                families.iter().any(|f| f == family),
                "the dashboard queries {name}, which no family serves: {expr}"
            );
        }
    }
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

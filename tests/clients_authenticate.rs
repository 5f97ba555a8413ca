//! Client authentication on three real nodes, with users made by `gyre
//! user add`: without a credential (or with a wrong one) nobody can change
//! a bucket or the layout, read or write keys; a readonly user reads and is
//! refused writes; an admin does everything; the CLI carries `--token`.
//! And protected mode: a node that would serve clients beyond loopback
//! with no users refuses to start, and starts once it has one.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use common::{Cluster, GYRE, Options, add_user, try_cli};

fn redis(addr: std::net::SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/"))
        .and_then(|c| c.get_connection())
        .unwrap()
}

#[test]
fn only_users_reach_keys_and_only_admins_change_the_cluster() {
    let (root_lines, root) = add_user("root", "admin");
    let (viewer_lines, viewer) = add_user("viewer", "readonly");
    let users_dir = tempfile::tempdir().unwrap();
    let users = users_dir.path().join("users.toml");
    std::fs::write(&users, format!("{root_lines}\n{viewer_lines}")).unwrap();
    let cluster = Cluster::start_with(
        3,
        &Options {
            extra_flags: vec!["--users-file".into(), users.display().to_string()],
            admin_token: Some(root.clone()),
            ..Options::default()
        },
    );
    let node = &cluster.nodes[0];
    let other = cluster.nodes[2].ep.id.clone();
    let no = [("authorization", "Bearer root.wrong")];
    let anyone: [&[(&str, &str)]; 2] = [&[("authorization", "")], &no];
    let viewer_auth = format!("Bearer {viewer}");
    let as_viewer = [("authorization", viewer_auth.as_str())];

    // Nobody without a credential: no bucket, no layout change, no keys.
    let leave = format!(r#"{{"command": "leave", "node": "{other}"}}"#);
    for headers in anyone {
        for (method, path, body) in [
            ("PUT", "/v1/buckets/evil", Some(&br#"{"n_val": 1}"#[..])),
            ("POST", "/v1/cluster/admin", Some(leave.as_bytes())),
            ("PUT", "/v1/kv/default/k", Some(&b"v"[..])),
            ("GET", "/v1/kv/default/k", None),
            ("GET", "/v1/cluster", None),
        ] {
            let reply = node.call(method, path, headers, body);
            assert_eq!(
                reply.status, 401,
                "{method} {path} with {headers:?}: {reply:?}"
            );
        }
    }
    // A readonly user reads, and may not change anything.
    assert_eq!(
        node.call("GET", "/v1/cluster", &as_viewer, None).status,
        200
    );
    for (method, path, body) in [
        ("PUT", "/v1/buckets/evil", Some(&br#"{"n_val": 1}"#[..])),
        ("POST", "/v1/cluster/admin", Some(leave.as_bytes())),
        ("PUT", "/v1/kv/default/k", Some(&b"v"[..])),
    ] {
        let reply = node.call(method, path, &as_viewer, body);
        assert_eq!(reply.status, 403, "{method} {path} as viewer: {reply:?}");
    }
    // Nothing changed: no bucket, nothing staged, no key.
    assert_eq!(node.get("/v1/buckets/evil").status, 404);
    let status = node.status();
    assert_eq!(status["staged"], serde_json::json!([]), "{status}");
    assert_eq!(node.get_kv("k", None).status, 404);
    // Open without a credential: health, metrics, the API document.
    for path in ["/health", "/health/live", "/metrics", "/v1/openapi.json"] {
        assert_eq!(
            node.call("GET", path, &[("authorization", "")], None)
                .status,
            200,
            "{path}"
        );
    }
    let metrics = node.get("/metrics").text();
    assert!(
        metrics.contains("gyre_auth_failures_total{front=\"http\"}"),
        "{metrics}"
    );

    // The admin (the harness's own token) does everything.
    assert_eq!(
        node.call("PUT", "/v1/buckets/mine", &[], Some(br#"{"n_val": 3}"#))
            .status,
        200
    );
    assert_eq!(node.put_kv("k", b"v", None).status, 200);
    let set = format!(r#"{{"command": "set", "node": "{other}", "capacity": 50}}"#);
    let staged = node.call("POST", "/v1/cluster/admin", &[], Some(set.as_bytes()));
    assert_eq!(staged.status, 200, "{staged:?}");
    let cleared = node.call(
        "POST",
        "/v1/cluster/admin",
        &[],
        Some(br#"{"command": "clear"}"#),
    );
    assert_eq!(cleared.status, 200, "{cleared:?}");

    // The CLI: refused without a token, served with one.
    let url = node.url("");
    let refused = try_cli(&["cluster", "status", "--node", &url]).unwrap_err();
    assert!(
        refused.contains("401") || refused.contains("unauthorized"),
        "{refused}"
    );
    let got = try_cli(&["get", "k", "--node", &url, "--token", &viewer]).unwrap();
    assert!(got.contains('v'), "{got}");
    // Health needs no credential (a container's health check runs it).
    for live in [&["--live"][..], &[]] {
        let args = [&["health", "--node", &url][..], live].concat();
        let said = try_cli(&args).unwrap();
        assert!(said.contains("\"node\""), "{said}");
    }
    let gone = try_cli(&["health", "--node", "http://127.0.0.1:1"]).unwrap_err();
    assert!(gone.contains("exit status: 2"), "{gone}");

    // Redis: NOAUTH before AUTH, WRONGPASS for a wrong secret, the role
    // after.
    let mut c = redis(node.ep.resp);
    let e = redis::cmd("GET")
        .arg("k")
        .query::<Option<String>>(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("NOAUTH"), "{e}");
    let e = redis::cmd("AUTH")
        .arg("viewer")
        .arg("viewer.wrong")
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("WRONGPASS"), "{e}");
    let _: String = redis::cmd("AUTH")
        .arg("viewer")
        .arg(&viewer)
        .query(&mut c)
        .unwrap();
    let v: Option<String> = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    let e = redis::cmd("SET")
        .arg("k")
        .arg("w")
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(e.to_string().to_lowercase().contains("noperm"), "{e}");
    let mut admin = redis(cluster.nodes[1].ep.resp);
    let _: String = redis::cmd("AUTH")
        .arg("root")
        .arg(&root)
        .query(&mut admin)
        .unwrap();
    let _: String = redis::cmd("SET")
        .arg("k")
        .arg("w")
        .query(&mut admin)
        .unwrap();
}

/// Starts `gyre node` with `flags` on a fresh directory; the first line it
/// prints on stdout (its ready line), or its exit status and stderr.
fn start_node(flags: &[&str]) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    common::make_ca(&dir.path().join("ca"));
    let data = dir.path().join("data");
    let ca_cert = dir.path().join("ca/ca.pem");
    let ca_key = dir.path().join("ca/ca.key");
    let mut child = Command::new(GYRE)
        .args(["node", "--cluster", "gyre", "--peer-listen", "127.0.0.1:0"])
        .args(["--http-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&data)
        .arg("--ca-cert")
        .arg(&ca_cert)
        .arg("--ca-key")
        .arg(&ca_key)
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    if line.is_empty() {
        Err(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    } else {
        Ok(line)
    }
}

#[test]
fn protected_mode_refuses_an_open_node_beyond_loopback() {
    let refused = start_node(&["--resp-listen", "0.0.0.0:0"]).unwrap_err();
    assert!(
        refused.contains("protected mode") && refused.contains("gyre user add"),
        "{refused}"
    );
    assert!(!refused.starts_with("exit status: 0"), "{refused}");
    // With a user, or told to, it serves.
    let (lines, _) = add_user("app", "readwrite");
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    std::fs::write(&users, lines).unwrap();
    let users = users.display().to_string();
    let ready = start_node(&["--resp-listen", "0.0.0.0:0", "--users-file", &users]).unwrap();
    assert!(ready.contains("ready"), "{ready}");
    let ready = start_node(&["--resp-listen", "0.0.0.0:0", "--insecure-no-auth"]).unwrap();
    assert!(ready.contains("ready"), "{ready}");
    // On loopback it needs nothing (as `gyre demo`).
    let ready = start_node(&["--resp-listen", "127.0.0.1:0"]).unwrap();
    assert!(ready.contains("ready"), "{ready}");
}

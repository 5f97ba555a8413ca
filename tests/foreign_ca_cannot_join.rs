//! A node whose certificate comes from another CA, seeded with a cluster
//! node, is refused at the TLS handshake: it never appears in the
//! cluster's membership, holds no layout, and writes nothing to it. A node
//! given its own certificate of the cluster's CA (`gyre cert node`), and no
//! CA key, is a peer with the id in it.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Cluster, Options, Resp, RespConn, SETTLE, cli, make_ca, members, try_cli, wait_for};

#[test]
fn a_node_with_its_own_certificate_needs_no_ca_key() {
    let mut cluster = Cluster::start(2);
    let own = cluster.scratch("own");
    let ca_dir = cluster.ca_dir().display().to_string();
    let issued = cli(&[
        "cert",
        "node",
        "--ca-dir",
        &ca_dir,
        "--out",
        &own.display().to_string(),
    ]);
    let id = issued.trim().to_owned();
    // Everything a node needs, and no CA key.
    let mut files: Vec<String> = std::fs::read_dir(&own)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["ca.pem", "node.key", "node.pem"]);

    let seed = cluster.nodes[0].ep.peer.to_string();
    let n = cluster.add_node(Some(&own), &[seed]);
    assert_eq!(cluster.nodes[n].id(), id, "the id in its certificate");
    wait_for("n0 to see the new node up", SETTLE, || {
        let status = cluster.nodes[0].status();
        members(&status)
            .iter()
            .any(|m| m["id"] == id.as_str() && m["up"] == true)
            .then_some(())
            .ok_or_else(|| status.to_string())
    });

    // Issuing beside another CA's certificate is refused, and writes nothing.
    let other = make_ca(&cluster.scratch("other-ca"));
    let refused = try_cli(&[
        "cert",
        "node",
        "--ca-dir",
        &ca_dir,
        "--out",
        &other.display().to_string(),
    ])
    .unwrap_err();
    assert!(refused.contains("another CA"), "{refused}");
    assert!(!other.join("node.pem").exists());
}

/// How often the log must say so before the test believes it.
const REFUSALS: usize = 3;

#[test]
fn a_node_of_another_ca_cannot_join_or_write() {
    // The transport's debug log shows refused handshakes.
    let mut cluster = Cluster::start_with(
        3,
        &Options {
            log_level: "info,gyre_transport=debug".to_owned(),
            ..Options::default()
        },
    );
    let ids = cluster.ids(&[0, 1, 2]);
    // Same cluster name, another CA.
    let other_ca = make_ca(&cluster.scratch("other-ca"));
    let seed = cluster.nodes[0].ep.peer.to_string();
    let stranger = cluster.add_node(Some(&other_ca), &[seed]);
    let stranger_id = cluster.nodes[stranger].id().to_owned();

    // Its seed refuses it, again and again (it retries with backoff), and
    // the seed's log shows the failed handshakes.
    wait_for(
        &format!("{REFUSALS} refused attempts to reach the seed in the stranger's log"),
        SETTLE,
        || {
            let log = cluster.nodes[stranger].log();
            // rustls's words for a certificate of another CA.
            let seen = log
                .lines()
                .filter(|l| {
                    l.contains("seed unreachable") && l.contains("invalid peer certificate")
                })
                .count();
            if seen >= REFUSALS {
                Ok(())
            } else {
                let last = log.lines().rfind(|l| l.contains("seed"));
                Err(format!("{seen} so far; last: {last:?}"))
            }
        },
    );
    wait_for(
        "the seed (n0) to log a failed TLS handshake",
        SETTLE,
        || {
            let seen = cluster.nodes[0]
                .log()
                .matches("incoming connection failed its TLS handshake")
                .count();
            if seen >= REFUSALS {
                Ok(())
            } else {
                Err(format!("{seen} in n0's log"))
            }
        },
    );
    assert!(
        !cluster.nodes[stranger].log().contains("seed reached"),
        "the stranger reached its seed:\n{}",
        cluster.nodes[stranger].log()
    );

    // It knows only itself, and has no layout.
    let own = cluster.nodes[stranger].status();
    let known: Vec<String> = members(&own)
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(known, [stranger_id], "the stranger's view: {own}");
    assert!(own["layout_version"].is_null(), "{own}");
    let health = cluster.nodes[stranger].get("/health");
    assert_eq!(health.status, 503, "{}", health.text());

    // The cluster never heard of it, and still holds its three.
    for i in 0..3 {
        let status = cluster.nodes[i].status();
        let mut known: Vec<String> = members(&status)
            .iter()
            .map(|m| m["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        known.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(known, expected, "n{i}'s members: {status}");
    }
    cluster.wait_layout_agreed(&[0, 1, 2], 1);

    // Writes to it are refused, over HTTP and Redis alike.
    let put = cluster.nodes[stranger].put_kv("smuggled", b"x", None);
    assert_eq!(put.status, 503, "{}", put.text());
    assert_eq!(put.json()["error"], "not_ready", "{}", put.text());
    let mut conn = RespConn::connect(cluster.nodes[stranger].ep.resp);
    match conn.cmd(&["SET", "smuggled-resp", "x"]) {
        Resp::Error(e) if e.starts_with("CLUSTERDOWN") => {}
        other => panic!("SET on the stranger: {other:?}"),
    }
    // Nothing of it reached the cluster.
    for key in ["smuggled", "smuggled-resp"] {
        let got = cluster.nodes[1].get_kv(key, Some(3));
        assert_eq!(got.status, 404, "{key}: {}", got.text());
    }
    for i in 0..3 {
        assert_eq!(
            cluster.nodes[i].try_trees().unwrap(),
            Vec::<String>::new(),
            "n{i} holds data"
        );
    }
}

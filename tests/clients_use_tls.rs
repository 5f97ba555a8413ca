//! TLS for clients with the tools people use: a node whose Redis and HTTP
//! listeners speak TLS (a certificate from `gyre cert client-tls`) answers
//! `redis-cli --tls --cacert` and `curl --cacert`; curl without the CA
//! refuses the node, and plaintext clients get no answer.
//!
//! One of the system tests (`tests/system.sh`): it needs Debian's
//! redis-tools and curl, so it is built only with the `gyre` package's
//! `system-tests` feature.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Output, Stdio};

use common::{GYRE, cli};

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

#[test]
fn redis_cli_and_curl_speak_tls_to_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let tls = dir.path().join("tls");
    let (ca_s, tls_s) = (ca.display().to_string(), tls.display().to_string());
    cli(&["cert", "ca", "--cluster", "gyre", "--out", &ca_s]);
    cli(&[
        "cert",
        "client-tls",
        "--ca-dir",
        &ca_s,
        "--name",
        "127.0.0.1",
        "--name",
        "localhost",
        "--out",
        &tls_s,
    ]);
    let mut node = Command::new(GYRE)
        .args(["node", "--cluster", "gyre", "--peer-listen", "127.0.0.1:0"])
        .args([
            "--resp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--ca-cert")
        .arg(ca.join("ca.pem"))
        .arg("--ca-key")
        .arg(ca.join("ca.key"))
        .arg("--client-tls-cert")
        .arg(tls.join("client-tls.pem"))
        .arg("--client-tls-key")
        .arg(tls.join("client-tls.key"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(node.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    let resp = ready["node"]["resp"].as_str().unwrap().to_owned();
    let http = ready["node"]["http"].as_str().unwrap().to_owned();
    let port = resp.rsplit(':').next().unwrap().to_owned();
    let cacert = ca.join("ca.pem").display().to_string();

    let pong = run(
        "redis-cli",
        &[
            "--tls",
            "--cacert",
            &cacert,
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "PING",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&pong.stdout).trim(),
        "PONG",
        "{pong:?}"
    );
    let plain = run("redis-cli", &["-h", "127.0.0.1", "-p", &port, "PING"]);
    assert_ne!(
        String::from_utf8_lossy(&plain.stdout).trim(),
        "PONG",
        "{plain:?}"
    );

    let url = format!("https://{http}/health/live");
    let alive = run("curl", &["-sS", "--cacert", &cacert, &url]);
    assert!(alive.status.success(), "{alive:?}");
    assert!(
        String::from_utf8_lossy(&alive.stdout).contains("\"alive\""),
        "{alive:?}"
    );
    let untrusted = run("curl", &["-sS", &url]);
    assert!(!untrusted.status.success(), "{untrusted:?}");
    let plaintext = run("curl", &["-sS", &format!("http://{http}/health/live")]);
    assert!(
        !plaintext.status.success()
            || !String::from_utf8_lossy(&plaintext.stdout).contains("alive"),
        "{plaintext:?}"
    );

    let _ = node.kill();
    let _ = node.wait();
}

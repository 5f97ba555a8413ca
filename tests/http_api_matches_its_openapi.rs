//! The HTTP API fuzzed from its own OpenAPI document: schemathesis (PyPI)
//! reads `/v1/openapi.json` from a node of a real three-node cluster and
//! sends it generated requests, valid and invalid, one operation at a time
//! and in stateful sequences, authenticated as an admin of the nodes' users. No answer may be a 5xx, and every answer must
//! match the document (status code, content type, headers, body schema).
//!
//! One of the system tests (`tests/system.sh`, which sets
//! `GYRE_SCHEMATHESIS` to the `schemathesis` of a virtualenv). A failure
//! prints the seed; `GYRE_SCHEMATHESIS_SEED=<seed>` replays it.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{Cluster, Options, add_user};

#[test]
fn every_answer_matches_the_openapi_document() {
    let schemathesis = std::env::var("GYRE_SCHEMATHESIS")
        .expect("GYRE_SCHEMATHESIS is not set: run tests/system.sh");
    let seed: u64 = std::env::var("GYRE_SCHEMATHESIS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                % 1_000_000
        });
    eprintln!("schemathesis seed {seed} (GYRE_SCHEMATHESIS_SEED={seed} replays it)");
    // Users configured: every operation that needs one gets the admin's
    // secret (and the document says so).
    let (lines, admin) = add_user("admin", "admin");
    let users_dir = tempfile::tempdir().unwrap();
    let users = users_dir.path().join("users.toml");
    std::fs::write(&users, lines).unwrap();
    let cluster = Cluster::start_with(
        3,
        &Options {
            extra_flags: vec!["--users-file".into(), users.display().to_string()],
            admin_token: Some(admin.clone()),
            ..Options::default()
        },
    );
    let node = &cluster.nodes[0];
    node.put_kv("existing", b"value", None);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(schemathesis)
        .current_dir(dir.path())
        .args([
            "run",
            &node.url("/v1/openapi.json"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
            "--max-examples",
            "100",
            "--seed",
            &seed.to_string(),
            // One worker: with two, CPython 3.11's `ast.parse` (which
            // hypothesis calls to describe its filters) sometimes fails
            // from two threads at once with "AST constructor recursion
            // depth mismatch", a crash of the tool and no finding about
            // the API.
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--no-color",
            "--header",
            &format!("Authorization: Bearer {admin}"),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found answers that break the document (seed {seed}):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("passed"), "{stdout}\n{stderr}");
    eprintln!("{stdout}");
}

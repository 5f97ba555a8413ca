//! `gyre demo --dir D`: a local cluster in one command; stopped with
//! Ctrl-C (SIGINT) and run again on the same directory, it is the same
//! cluster (same node ids) with the same data. `--add` joins one more node
//! and prints the change's progress with no log line in between.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use common::{GYRE, agent, http};

/// A running demo and the nodes it printed: (name, id, http address).
struct Demo {
    child: Child,
    nodes: Vec<(String, String, String)>,
}

impl Demo {
    fn start(dir: &std::path::Path) -> Self {
        let mut child = Command::new(GYRE)
            .args(["demo", "--nodes", "3", "--dir"])
            .arg(dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut nodes = Vec::new();
        let mut seen = Vec::new();
        // The demo prints its table, then this line, once the cluster is
        // formed; if it fails, its stdout closes first.
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            seen.push(line.clone());
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [name, id, _resp, http, _peer] = words[..]
                && name.starts_with("node")
                && let Some(http) = http.strip_prefix("http://")
            {
                nodes.push((name.to_owned(), id.to_owned(), http.to_owned()));
            }
            if line.starts_with("Ctrl-C stops the cluster") {
                return Self { child, nodes };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the demo stopped before it was ready; it printed:\n{}",
            seen.join("\n")
        );
    }

    /// Ctrl-C, and the clean exit that follows.
    fn interrupt(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "the demo exited with {status} after Ctrl-C"
        );
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_demo_run_again_on_its_directory_is_the_same_cluster_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent();

    let first = Demo::start(dir.path());
    assert_eq!(first.nodes.len(), 3, "nodes printed: {:?}", first.nodes);
    let (_, _, via) = &first.nodes[0];
    let put = http(
        &agent,
        "PUT",
        &format!("http://{via}/v1/kv/default/greeting"),
        &[],
        Some(b"hello"),
    )
    .unwrap();
    assert_eq!(put.status, 200, "{}", put.text());
    let (_, _, other) = &first.nodes[2];
    let get = http(
        &agent,
        "GET",
        &format!("http://{other}/v1/kv/default/greeting"),
        &[],
        None,
    )
    .unwrap();
    assert_eq!((get.status, get.text()), (200, "hello".to_owned()));
    let ids: Vec<String> = first.nodes.iter().map(|n| n.1.clone()).collect();
    first.interrupt();

    let second = Demo::start(dir.path());
    let again: Vec<String> = second.nodes.iter().map(|n| n.1.clone()).collect();
    assert_eq!(again, ids, "the restarted demo has other node ids");
    let (_, _, via) = &second.nodes[1];
    let get = http(
        &agent,
        "GET",
        &format!("http://{via}/v1/kv/default/greeting"),
        &[],
        None,
    )
    .unwrap();
    assert_eq!((get.status, get.text()), (200, "hello".to_owned()));
    adding_a_node_prints_its_progress_without_log_lines(dir.path());
    second.interrupt();
}

/// `gyre demo --dir DIR --add` on the demo running there: its output holds
/// the change's progress and no log line. (Run inside the test above: two
/// demos at once would want the same ports.)
fn adding_a_node_prints_its_progress_without_log_lines(dir: &std::path::Path) {
    let mut add = Command::new(GYRE)
        .args(["demo", "--add", "--dir"])
        .arg(dir)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = add.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let mut printed = Vec::new();
    for line in BufReader::new(add.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.starts_with("Ctrl-C stops this node");
        printed.push(line);
        if done {
            break;
        }
    }
    let pid = add.id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let _ = add.wait();
    let logs = logs.join().unwrap();
    let printed = printed.join("\n");
    assert!(printed.contains("Ctrl-C stops this node"), "{printed}");
    assert!(
        printed.contains("cluster:"),
        "no progress printed:\n{printed}"
    );
    let info: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains(" INFO ") || l.contains("\"level\":\"INFO\""))
        .collect();
    assert!(info.is_empty(), "log lines among the progress: {info:?}");
}

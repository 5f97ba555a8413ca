//! The harness of the real-process tests: `gyre` processes on 127.0.0.1, in
//! a temporary directory, started on port 0 (the real ports come from each
//! node's ready line; a restart gets new ports too).
//!
//! - [`Cluster`] makes a CA with `gyre cert ca`, starts N nodes, joins them
//!   (`gyre cluster join`) and commits the layout (`gyre cluster commit`), and on a
//!   failing test prints every node's id, addresses and the tail of its
//!   log.
//! - [`Node`] is one process: kill -9, restart on the same data directory,
//!   and the HTTP calls the tests make. Its child is killed when it drops.
//! - [`wait_for`] is the only way a test waits: it polls a condition with
//!   a deadline and, on timeout, panics with what it awaited and the state
//!   it saw last.
//! - [`RespConn`] speaks RESP over a plain `TcpStream`.

// Each test file uses a part of the harness.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub(crate) const GYRE: &str = env!("CARGO_BIN_EXE_gyre");

/// How long a node may take to print its ready line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The usual deadline of a wait: generous, as 2 cores run several nodes.
pub(crate) const SETTLE: Duration = Duration::from_secs(30);

/// How often [`wait_for`] looks again.
const POLL: Duration = Duration::from_millis(50);

/// How many partition replicas a node's transfers (`/v1/cluster`'s
/// `transfers`) stream now.
pub(crate) fn streaming(transfers: &Value) -> usize {
    transfers["partitions"]
        .as_array()
        .map_or(0, |ps| ps.iter().filter(|p| p["stage"] == "stream").count())
}

/// Lines of each node's log printed when a test fails.
const LOG_TAIL: usize = 40;

/// Waits until `probe` answers `Ok`, polling every 50 ms. `probe` answers
/// `Err` with a description of what it saw; on timeout the panic names
/// `what` and that last description.
pub(crate) fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(v) => return v,
            Err(seen) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last observed: {seen}")
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Waits until `workload` has `n` operations acknowledged in all.
pub(crate) fn wait_acked(workload: &gyre_nemesis::workload::Workload, n: u64, what: &str) {
    wait_for(what, SETTLE, || {
        let now = workload.acked();
        if now >= n {
            Ok(())
        } else {
            Err(format!("{now} of {n} acknowledged"))
        }
    });
}

/// Runs the `gyre` command line (`gyre cert …`, `gyre cluster …`): its
/// stdout if it succeeds, else a description of the failure.
pub(crate) fn try_cli(args: &[&str]) -> Result<String, String> {
    let out = Command::new(GYRE)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {GYRE}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "`gyre {}` failed ({}):\nstdout: {stdout}\nstderr: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// [`try_cli`], which must succeed.
pub(crate) fn cli(args: &[&str]) -> String {
    try_cli(args).unwrap_or_else(|e| panic!("{e}"))
}

/// `gyre user add` for `name`: the `[[users]]` lines, and the secret.
pub(crate) fn add_user(name: &str, role: &str) -> (String, String) {
    let out = Command::new(GYRE)
        .args(["user", "add", name, "--role", role])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let secret = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("{name}.")))
        .unwrap_or_else(|| panic!("no secret in {stderr}"))
        .to_owned();
    (String::from_utf8(out.stdout).unwrap(), secret)
}

/// Makes a cluster CA (`ca.pem`, `ca.key`) in `dir` with `gyre cert ca`.
pub(crate) fn make_ca(dir: &Path) -> PathBuf {
    cli(&[
        "cert",
        "ca",
        "--cluster",
        "gyre",
        "--out",
        &dir.display().to_string(),
    ]);
    dir.to_path_buf()
}

/// Where a node listens, from its ready line.
#[derive(Clone, Debug)]
pub(crate) struct Endpoints {
    /// Its node id (16 hex digits).
    pub(crate) id: String,
    /// Its QUIC address.
    pub(crate) peer: SocketAddr,
    /// Its Redis protocol address.
    pub(crate) resp: SocketAddr,
    /// Its HTTP address.
    pub(crate) http: SocketAddr,
}

impl Endpoints {
    fn parse(line: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(line).ok()?;
        if v["event"] != "ready" {
            return None;
        }
        let node = &v["node"];
        let addr = |k: &str| node[k].as_str()?.parse().ok();
        Some(Self {
            id: node["id"].as_str()?.to_owned(),
            peer: addr("peer")?,
            resp: addr("resp")?,
            http: addr("http")?,
        })
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// The body.
    pub(crate) body: Vec<u8>,
    /// `X-Gyre-Context`, if set.
    pub(crate) context: Option<String>,
}

impl Reply {
    /// The body as JSON (`Null` if it is not JSON).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The HTTP client of the tests: statuses are answers, not errors.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            // 300 Multiple Choices is siblings, not a redirect.
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(20)))
            .build(),
    )
}

/// One HTTP request; `Err` if no answer came (refused, reset, timeout).
pub(crate) fn http(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Reply, String> {
    let result = match method {
        "GET" | "DELETE" => {
            let mut req = if method == "GET" {
                agent.get(url)
            } else {
                agent.delete(url)
            };
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.call()
        }
        "PUT" | "POST" => {
            let mut req = if method == "PUT" {
                agent.put(url)
            } else {
                agent.post(url)
            };
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            match body {
                Some(b) => req.send(b),
                None => req.send_empty(),
            }
        }
        other => panic!("the harness does not send {other}"),
    };
    let mut response = result.map_err(|e| format!("{method} {url}: {e}"))?;
    let context = response
        .headers()
        .get("x-gyre-context")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .body_mut()
        .read_to_vec()
        .map_err(|e| format!("{method} {url}: reading the body: {e}"))?;
    Ok(Reply {
        status: response.status().as_u16(),
        body,
        context,
    })
}

/// Kills the child (SIGKILL) and reaps it.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// What a node is started with.
#[derive(Clone, Debug)]
struct Spec {
    label: String,
    /// `--peer-listen`.
    peer_listen: String,
    data_dir: PathBuf,
    log: PathBuf,
    ca: PathBuf,
    flags: Vec<String>,
    /// The secret the harness's own requests carry (nodes with users).
    token: Option<String>,
    /// The network namespace it runs in, and its address there; `None`:
    /// loopback.
    host: Option<gyre_nemesis::hosts::Host>,
}

/// One `gyre node` process (or, after [`Node::kill9`], its data directory
/// waiting for a restart).
pub(crate) struct Node {
    /// Where it listens now (the last start's ready line).
    pub(crate) ep: Endpoints,
    spec: Spec,
    child: Option<Child>,
    agent: ureq::Agent,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            kill(child);
        }
    }
}

impl Node {
    /// Starts a node and waits for its ready line.
    fn start(spec: Spec, seeds: &[String]) -> Self {
        let (child, ep) = spawn(&spec, seeds);
        Self {
            ep,
            spec,
            child: Some(child),
            agent: agent(),
        }
    }

    /// Its label in the harness (`n0`, `n1`…).
    pub(crate) fn label(&self) -> &str {
        &self.spec.label
    }

    /// Its node id.
    pub(crate) fn id(&self) -> &str {
        &self.ep.id
    }

    /// Its data directory.
    pub(crate) fn data_dir(&self) -> &Path {
        &self.spec.data_dir
    }

    /// Whether its process runs (it was not killed, and did not exit).
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Pauses it (SIGSTOP) or lets it go on (SIGCONT).
    pub(crate) fn signal(&mut self, stop: bool) {
        let child = self
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not running", self.spec.label));
        let status = Command::new("kill")
            .arg(if stop { "-STOP" } else { "-CONT" })
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill failed: {status}");
    }

    /// Stops it cleanly (SIGTERM) and waits until it exited.
    pub(crate) fn stop(&mut self) {
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("{} is not running", self.spec.label));
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed: {status}");
        let exited = child.wait().unwrap();
        assert!(exited.success(), "{} exited with {exited}", self.spec.label);
    }

    /// Crashes it: SIGKILL, no clean shutdown.
    pub(crate) fn kill9(&mut self) {
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("{} is not running", self.spec.label));
        kill(&mut child);
    }

    /// Starts it again on its data directory, seeded with `seeds`, on new
    /// ports (port 0 again): the others learn its new peer address from
    /// its new life's gossip.
    pub(crate) fn restart(&mut self, seeds: &[String]) {
        assert!(self.child.is_none(), "{} still runs", self.spec.label);
        let (child, ep) = spawn(&self.spec, seeds);
        self.child = Some(child);
        self.ep = ep;
    }

    /// `http://<its HTTP address><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.ep.http)
    }

    /// One HTTP request to it; `Err` if it did not answer.
    pub(crate) fn try_call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Reply, String> {
        let bearer = self.spec.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers = headers.to_vec();
        if let Some(bearer) = &bearer
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            headers.push(("authorization", bearer.as_str()));
        }
        http(&self.agent, method, &self.url(path), &headers, body)
            .map_err(|e| format!("{} ({}): {e}", self.spec.label, self.ep.id))
    }

    /// One HTTP request to it; panics if it did not answer.
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        self.try_call(method, path, headers, body)
            .unwrap_or_else(|e| panic!("no answer: {e}"))
    }

    /// `GET path`.
    pub(crate) fn get(&self, path: &str) -> Reply {
        self.call("GET", path, &[], None)
    }

    /// `PUT /v1/kv/default/{key}[?w=]` with `value`.
    pub(crate) fn put_kv(&self, key: &str, value: &[u8], w: Option<u8>) -> Reply {
        let query = w.map(|w| format!("?w={w}")).unwrap_or_default();
        self.call(
            "PUT",
            &format!("/v1/kv/default/{key}{query}"),
            &[],
            Some(value),
        )
    }

    /// `GET /v1/kv/default/{key}[?r=]`.
    pub(crate) fn get_kv(&self, key: &str, r: Option<u8>) -> Reply {
        let query = r.map(|r| format!("?r={r}")).unwrap_or_default();
        self.get(&format!("/v1/kv/default/{key}{query}"))
    }

    /// The values of this node's own replica of `default/{key}` (none for
    /// a tombstone), `None` if it holds no record of it.
    pub(crate) fn try_local(&self, key: &str) -> Result<Option<Vec<String>>, String> {
        use base64::Engine as _;
        let reply = self.try_call("GET", &format!("/v1/local/kv/default/{key}"), &[], None)?;
        let values = match reply.status {
            200 => reply.json()["values_base64"].as_array().cloned(),
            404 => return Ok(None),
            _ => None,
        };
        let decoded = values.and_then(|values| {
            values
                .iter()
                .map(|v| {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str()?)
                        .ok()?;
                    Some(String::from_utf8_lossy(&bytes).into_owned())
                })
                .collect::<Option<Vec<String>>>()
        });
        decoded.map(Some).ok_or_else(|| {
            format!(
                "{}: /v1/local/kv/default/{key} answered {}: {}",
                self.spec.label,
                reply.status,
                reply.text()
            )
        })
    }

    /// Whether this node's own replica holds a record of `default/{key}`.
    pub(crate) fn holds(&self, key: &str) -> Result<bool, String> {
        self.try_local(key).map(|v| v.is_some())
    }

    /// Its `GET /v1/cluster`.
    pub(crate) fn try_status(&self) -> Result<Value, String> {
        let reply = self.try_call("GET", "/v1/cluster", &[], None)?;
        match reply.status {
            200 => Ok(reply.json()),
            s => Err(format!("{}: /v1/cluster answered {s}", self.spec.label)),
        }
    }

    /// Its `GET /v1/cluster`; panics if it does not answer.
    pub(crate) fn status(&self) -> Value {
        self.try_status().unwrap_or_else(|e| panic!("{e}"))
    }

    /// What it says of member `id` in `/v1/cluster`, if it knows it.
    pub(crate) fn member(&self, id: &str) -> Result<Option<Value>, String> {
        Ok(members(&self.try_status()?)
            .into_iter()
            .find(|m| m["id"] == id))
    }

    /// The value of a metric without labels in its `/metrics`.
    pub(crate) fn try_metric(&self, name: &str) -> Result<u64, String> {
        let reply = self.try_call("GET", "/metrics", &[], None)?;
        let text = reply.text();
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
            .ok_or_else(|| format!("{}: no metric {name} in /metrics", self.spec.label))
    }

    /// The value of a metric; panics if it cannot be read.
    pub(crate) fn metric(&self, name: &str) -> u64 {
        self.try_metric(name).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Its `/v1/local/trees`, as sorted `(partition, n_val, root)` lines.
    pub(crate) fn try_trees(&self) -> Result<Vec<String>, String> {
        let reply = self.try_call("GET", "/v1/local/trees", &[], None)?;
        if reply.status != 200 {
            return Err(format!(
                "{}: /v1/local/trees answered {}",
                self.spec.label, reply.status
            ));
        }
        let mut trees: Vec<String> = reply.json()["trees"]
            .as_array()
            .ok_or_else(|| format!("{}: no trees in {}", self.spec.label, reply.text()))?
            .iter()
            .map(|t| format!("{}/{}={}", t["partition"], t["n_val"], t["root"]))
            .collect();
        trees.sort();
        Ok(trees)
    }

    /// Its log so far (stderr of every start).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.spec.log).unwrap_or_default()
    }

    fn describe(&mut self) -> String {
        let state = if self.is_running() {
            "running"
        } else {
            "not running"
        };
        format!(
            "{} id={} peer={} resp={} http={} data={} ({state})",
            self.spec.label,
            self.ep.id,
            self.ep.peer,
            self.ep.resp,
            self.ep.http,
            self.spec.data_dir.display()
        )
    }
}

/// The `members` of a `/v1/cluster` answer.
pub(crate) fn members(status: &Value) -> Vec<Value> {
    status["members"].as_array().cloned().unwrap_or_default()
}

/// Starts `gyre node` for `spec` and waits for its ready line.
fn spawn(spec: &Spec, seeds: &[String]) -> (Child, Endpoints) {
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", spec.log.display()));
    let _ = writeln!(log, "==== harness: starting {} ====", spec.label);
    let listen = spec
        .host
        .as_ref()
        .map_or_else(|| "127.0.0.1:0".to_owned(), |h| format!("{}:0", h.addr));
    let mut command = match &spec.host {
        Some(host) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &host.ns, GYRE]);
            c
        }
        None => Command::new(GYRE),
    };
    command
        .arg("node")
        .arg("--data-dir")
        .arg(&spec.data_dir)
        .arg("--ca-cert")
        .arg(spec.ca.join("ca.pem"));
    // A directory `gyre cert node` issued into: the node's own
    // certificate, and no CA key. Otherwise the node issues itself one.
    if spec.ca.join("node.pem").exists() {
        command
            .arg("--node-cert")
            .arg(spec.ca.join("node.pem"))
            .arg("--node-key")
            .arg(spec.ca.join("node.key"));
    } else {
        command.arg("--ca-key").arg(spec.ca.join("ca.key"));
    }
    command
        .args(["--name", &spec.label])
        .args([
            "--peer-listen",
            &spec.peer_listen,
            "--resp-listen",
            &listen,
            "--http-listen",
            &listen,
        ])
        .args(&spec.flags);
    for seed in seeds {
        command.args(["--seed", seed]);
    }
    // Nothing from the environment of the test run may reach the node.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GYRE_") {
            command.env_remove(k);
        }
    }
    let mut child = command
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {GYRE}: {e}"));
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        // Reads to the end, so the node never writes into a closed pipe.
        while let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + START_TIMEOUT;
    let mut printed = Vec::new();
    let failed = |child: &mut Child, why: String| -> ! {
        kill(child);
        let tail = tail(&std::fs::read_to_string(&spec.log).unwrap_or_default());
        panic!(
            "{} ({}) did not get ready: {why}\n--- its log ---\n{tail}",
            spec.label,
            spec.data_dir.display()
        );
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => match Endpoints::parse(&line) {
                Some(ep) => return (child, ep),
                None => printed.push(line),
            },
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                failed(
                    &mut child,
                    format!("it exited ({status}); stdout: {printed:?}"),
                )
            }
            Err(mpsc::RecvTimeoutError::Timeout) => failed(
                &mut child,
                format!("no ready line within {START_TIMEOUT:?}; stdout: {printed:?}"),
            ),
        }
    }
}

/// The last lines of a log.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
}

/// How a test's nodes run.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// `--anti-entropy-interval-secs`.
    pub(crate) anti_entropy_secs: u64,
    /// `--log-level`.
    pub(crate) log_level: String,
    /// More flags for every node.
    pub(crate) extra_flags: Vec<String>,
    /// An admin's secret, for nodes that authenticate clients: the
    /// harness's own requests and commands carry it.
    pub(crate) admin_token: Option<String>,
    /// Hosts to run the nodes on, node `i` on host `i` (listening on its
    /// address); loopback for nodes past the end.
    pub(crate) hosts: Vec<gyre_nemesis::hosts::Host>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            anti_entropy_secs: 2,
            log_level: "info".to_owned(),
            extra_flags: Vec::new(),
            admin_token: None,
            hosts: Vec::new(),
        }
    }
}

/// The nodes of one test, in a temporary directory of their own.
pub(crate) struct Cluster {
    /// Every node the harness started, in order (`n0`, `n1`…).
    pub(crate) nodes: Vec<Node>,
    ca: PathBuf,
    flags: Vec<String>,
    /// [`Options::admin_token`].
    token: Option<String>,
    /// [`Options::hosts`].
    hosts: Vec<gyre_nemesis::hosts::Host>,
    // Last: removed after the nodes are killed.
    dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut report = String::from("\n==== cluster at the failure ====\n");
            for node in &mut self.nodes {
                let _ = writeln!(report, "{}", node.describe());
            }
            for node in &self.nodes {
                let _ = writeln!(
                    report,
                    "---- {} ({}): last lines of its log ----\n{}",
                    node.spec.label,
                    node.ep.id,
                    tail(&node.log())
                );
            }
            eprintln!("{report}");
        }
    }
}

impl Cluster {
    /// `n` nodes with the default [`Options`], formed into one cluster.
    pub(crate) fn start(n: usize) -> Self {
        Self::start_with(n, &Options::default())
    }

    /// `n` nodes formed into one cluster: a CA, the first node, the others
    /// seeded with it; once gossip shows everyone up, each is joined, the
    /// layout committed with `gyre cluster commit`, and every node holds
    /// it.
    pub(crate) fn start_with(n: usize, options: &Options) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca = make_ca(&dir.path().join("ca"));
        let flags = [
            "--log-level",
            &options.log_level,
            "--fsync",
            "group",
            "--partitions",
            "64",
            "--gossip-interval-ms",
            "100",
            "--hint-interval-ms",
            "200",
            "--anti-entropy-interval-secs",
            &options.anti_entropy_secs.to_string(),
            "--handoff-drop-grace-secs",
            "1",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain(options.extra_flags.iter().cloned())
        .collect();
        let mut cluster = Self {
            nodes: Vec::new(),
            ca,
            flags,
            token: options.admin_token.clone(),
            hosts: options.hosts.clone(),
            dir,
        };
        for _ in 0..n {
            let seeds: Vec<String> = cluster
                .nodes
                .first()
                .map(|n| vec![n.ep.peer.to_string()])
                .unwrap_or_default();
            cluster.add_node(None, &seeds);
        }
        let all: Vec<usize> = (0..n).collect();
        let ids = cluster.ids(&all);
        for &i in &all {
            let node = &cluster.nodes[i];
            wait_for(
                &format!("{} to see every node up through gossip", node.label()),
                SETTLE,
                || {
                    let status = node.try_status()?;
                    let up: Vec<String> = members(&status)
                        .iter()
                        .filter(|m| m["up"] == true)
                        .filter_map(|m| m["id"].as_str().map(str::to_owned))
                        .collect();
                    if ids.iter().all(|id| up.contains(id)) {
                        Ok(())
                    } else {
                        Err(format!("up: {up:?}, expected {ids:?}"))
                    }
                },
            );
        }
        // What an operator (or the Kubernetes Job) runs: join every node
        // seen up, commit; run again, it finds the layout and does nothing.
        let admin = cluster.nodes[0].url("");
        let expect = n.to_string();
        let mut form = vec!["cluster", "form", "--expect", &expect, "--node", &admin];
        if let Some(token) = &cluster.token {
            form.extend(["--token", token]);
        }
        cli(&form);
        cluster.wait_layout_agreed(&all, 1);
        let again = cli(&form);
        assert!(again.contains("nothing to form"), "{again}");
        cluster
    }

    /// Starts one more node with this cluster's flags, under the cluster's
    /// CA or `ca` (a CA's directory, or one `gyre cert node` issued into),
    /// seeded with `seeds`; returns its index. It joins no layout.
    pub(crate) fn add_node(&mut self, ca: Option<&Path>, seeds: &[String]) -> usize {
        let i = self.nodes.len();
        let label = format!("n{i}");
        let spec = Spec {
            data_dir: self.dir.path().join(&label),
            log: self.dir.path().join(format!("{label}.log")),
            ca: ca.unwrap_or(&self.ca).to_path_buf(),
            peer_listen: self
                .hosts
                .get(i)
                .map_or_else(|| "127.0.0.1:0".to_owned(), |h| format!("{}:0", h.addr)),
            flags: self.flags.clone(),
            token: self.token.clone(),
            host: self.hosts.get(i).cloned(),
            label,
        };
        self.nodes.push(Node::start(spec, seeds));
        i
    }

    /// The directory of the cluster's CA (`ca.pem`, `ca.key`).
    pub(crate) fn ca_dir(&self) -> &Path {
        &self.ca
    }

    /// A fresh directory in the cluster's temporary directory.
    pub(crate) fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The ids of nodes `which`.
    pub(crate) fn ids(&self, which: &[usize]) -> Vec<String> {
        which.iter().map(|&i| self.nodes[i].ep.id.clone()).collect()
    }

    /// The peer addresses of the running nodes other than `i`.
    pub(crate) fn seeds_for(&mut self, i: usize) -> Vec<String> {
        let mut seeds = Vec::new();
        for (j, node) in self.nodes.iter_mut().enumerate() {
            if j != i && node.is_running() {
                seeds.push(node.ep.peer.to_string());
            }
        }
        seeds
    }

    /// Restarts node `i` on its data directory, seeded with the others.
    pub(crate) fn restart(&mut self, i: usize) {
        let seeds = self.seeds_for(i);
        self.nodes[i].restart(&seeds);
    }

    /// [`restart`](Self::restart), and tells a workload's clients
    /// (`resp`: each node's RESP address) where node `i` listens now.
    pub(crate) fn restart_for_clients(
        &mut self,
        i: usize,
        resp: &std::sync::RwLock<Vec<SocketAddr>>,
    ) {
        self.restart(i);
        resp.write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)[i] = self.nodes[i].ep.resp;
    }

    /// Waits until every node of `which` answers `/health` 200 with one
    /// layout version, at least `min_version`, and sees each of `which` up
    /// and in the layout. Returns the version.
    pub(crate) fn wait_layout_agreed(&self, which: &[usize], min_version: u64) -> u64 {
        let ids = self.ids(which);
        wait_for(
            &format!(
                "nodes {ids:?} to hold one layout (version ≥ {min_version}) with each other up in it"
            ),
            SETTLE,
            || {
                let mut versions = Vec::new();
                for &i in which {
                    let node = &self.nodes[i];
                    let health = node.try_call("GET", "/health", &[], None)?;
                    if health.status != 200 {
                        return Err(format!(
                            "{} /health {}: {}",
                            node.label(),
                            health.status,
                            health.text()
                        ));
                    }
                    versions.push(health.json()["layout_version"].as_u64().unwrap_or(0));
                    let status = node.try_status()?;
                    for id in &ids {
                        let m = members(&status).into_iter().find(|m| m["id"] == *id);
                        match m {
                            Some(m) if m["up"] == true && m["in_layout"] == true => {}
                            other => {
                                return Err(format!("{} sees {id} as {other:?}", node.label()));
                            }
                        }
                    }
                }
                let v = versions[0];
                if v >= min_version && versions.iter().all(|x| *x == v) {
                    Ok(v)
                } else {
                    Err(format!("layout versions {versions:?}"))
                }
            },
        )
    }

    /// Starts `k` more nodes seeded with `n0` and waits until `n0` sees
    /// them up; returns their indices. They join no layout.
    pub(crate) fn grow(&mut self, k: usize) -> Vec<usize> {
        let seeds = vec![self.nodes[0].ep.peer.to_string()];
        let added: Vec<usize> = (0..k).map(|_| self.add_node(None, &seeds)).collect();
        for id in self.ids(&added) {
            self.wait_seen(&[0], &id, true);
        }
        added
    }

    /// Waits until every node of `which` reports no layout change in
    /// flight and no partition waiting to be dropped: the change moved
    /// everything and the old copies are gone. Returns how long it took.
    pub(crate) fn wait_change_complete(&self, which: &[usize], timeout: Duration) -> Duration {
        let start = Instant::now();
        wait_for(
            "the layout change to complete on every node",
            timeout,
            || {
                for &i in which {
                    let status = self.nodes[i].try_status()?;
                    if !status["change"].is_null() {
                        return Err(format!(
                            "{}: change {} ; transfers {}",
                            self.nodes[i].label(),
                            status["change"],
                            status["transfers"]["partitions"]
                        ));
                    }
                    let to_drop = status["transfers"]["to_drop"].as_u64().unwrap_or(0);
                    if to_drop > 0 {
                        return Err(format!(
                            "{}: {to_drop} partitions to drop",
                            self.nodes[i].label()
                        ));
                    }
                }
                Ok(())
            },
        );
        start.elapsed()
    }

    /// Checks that the Merkle roots of every (partition, n_val) are equal
    /// on every node of `which` that holds it, and that each is held by
    /// exactly `n_val` of them (no old copy left, none missing).
    pub(crate) fn try_replicas_agree(&self, which: &[usize]) -> Result<(), String> {
        let mut holders: std::collections::BTreeMap<String, Vec<(String, String)>> =
            std::collections::BTreeMap::new();
        for &i in which {
            for tree in self.nodes[i].try_trees()? {
                let (at, root) = tree.split_once('=').unwrap_or((&tree, ""));
                holders
                    .entry(at.to_owned())
                    .or_default()
                    .push((self.nodes[i].label().to_owned(), root.to_owned()));
            }
        }
        for (at, roots) in &holders {
            let n_val: usize = at
                .split('/')
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(3);
            if roots.len() != n_val.min(which.len()) {
                return Err(format!("{at} is held by {roots:?}"));
            }
            if roots.windows(2).any(|w| w[0].1 != w[1].1) {
                return Err(format!("{at} has different roots: {roots:?}"));
            }
        }
        Ok(())
    }

    /// Waits until every node of `observers` sees `id` up (or down).
    pub(crate) fn wait_seen(&self, observers: &[usize], id: &str, up: bool) {
        let word = if up { "up" } else { "down" };
        for &i in observers {
            let node = &self.nodes[i];
            wait_for(
                &format!("{} to see {id} {word}", node.label()),
                SETTLE,
                || match node.member(id)? {
                    Some(m) if m["up"] == up => Ok(()),
                    other => Err(format!("{id} is {other:?}")),
                },
            );
        }
    }
}

/// A RESP reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resp {
    /// `+…`
    Simple(String),
    /// `-…`
    Error(String),
    /// `:…`
    Int(i64),
    /// `$…` (`None`: nil).
    Bulk(Option<Vec<u8>>),
    /// `*…` (`None`: nil).
    Array(Option<Vec<Resp>>),
}

/// A Redis protocol connection over a plain `TcpStream`.
pub(crate) struct RespConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RespConn {
    /// Connects to `addr`.
    pub(crate) fn connect(addr: SocketAddr) -> Self {
        let stream =
            TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("a read timeout");
        let writer = stream.try_clone().expect("a second handle");
        Self {
            reader: BufReader::new(stream),
            writer,
        }
    }

    /// Sends bytes as they are.
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("sending to the node");
    }

    /// Sends a command (a multibulk of `args`) and reads its reply.
    pub(crate) fn command(&mut self, args: &[&[u8]]) -> Resp {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.send_raw(&out);
        self.read()
            .unwrap_or_else(|e| panic!("no reply to {:?}: {e}", short(args)))
    }

    /// [`RespConn::command`] with text arguments.
    pub(crate) fn cmd(&mut self, args: &[&str]) -> Resp {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.command(&args)
    }

    /// Reads one reply.
    pub(crate) fn read(&mut self) -> std::io::Result<Resp> {
        let line = self.line()?;
        let (kind, rest) = line.split_at(1.min(line.len()));
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        let number = || {
            rest.parse::<i64>()
                .map_err(|_| bad(&format!("bad number {line:?}")))
        };
        match kind {
            "+" => Ok(Resp::Simple(rest.to_owned())),
            "-" => Ok(Resp::Error(rest.to_owned())),
            ":" => Ok(Resp::Int(number()?)),
            "$" => {
                let Ok(len) = usize::try_from(number()?) else {
                    return Ok(Resp::Bulk(None));
                };
                let mut buf = vec![0; len + 2];
                self.reader.read_exact(&mut buf)?;
                buf.truncate(len);
                Ok(Resp::Bulk(Some(buf)))
            }
            "*" => {
                let Ok(len) = usize::try_from(number()?) else {
                    return Ok(Resp::Array(None));
                };
                let items = (0..len)
                    .map(|_| self.read())
                    .collect::<std::io::Result<_>>()?;
                Ok(Resp::Array(Some(items)))
            }
            _ => Err(bad(&format!("not a RESP2 reply: {line:?}"))),
        }
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    /// Whether the node closed the connection: the next read finds its end
    /// (or a reset) rather than a reply or a timeout.
    pub(crate) fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ),
        }
    }
}

/// Arguments for a message: long ones shortened.
fn short(args: &[&[u8]]) -> Vec<String> {
    args.iter()
        .map(|a| {
            let s = String::from_utf8_lossy(a);
            if s.chars().count() > 40 {
                format!(
                    "{}… ({} bytes)",
                    s.chars().take(40).collect::<String>(),
                    a.len()
                )
            } else {
                s.into_owned()
            }
        })
        .collect()
}

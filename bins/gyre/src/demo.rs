//! `gyre demo`: a local cluster on loopback in one process.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use gyre_membership::Change;
use serde::{Deserialize, Serialize};

use crate::config::{Credentials, Settings};
use crate::run::{self, Running};

/// `gyre demo` options.
#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// How many nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u8,
    /// Where the cluster keeps its certificates and data; a second run on
    /// the same directory restarts the same cluster [default: a temporary
    /// directory, removed at exit].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Add one node to the demo already running on `--dir` (from another
    /// terminal): it is started here, joined and committed, and the
    /// handoff of its partitions is shown until it completes. The
    /// directory remembers it, so the next run starts it too.
    #[arg(long, requires = "dir")]
    add: bool,
}

/// What a demo directory remembers between runs.
#[derive(Debug, Serialize, Deserialize)]
struct DemoFile {
    cluster: String,
    nodes: Vec<DemoNode>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DemoNode {
    name: String,
    peer: SocketAddr,
    resp: SocketAddr,
    http: SocketAddr,
}

/// `port` on loopback if it is free for `udp`/TCP, else any free port.
fn pick(port: u16, udp: bool) -> anyhow::Result<SocketAddr> {
    let want = SocketAddr::from(([127, 0, 0, 1], port));
    let free = if udp {
        UdpSocket::bind(want).is_ok()
    } else {
        TcpListener::bind(want).is_ok()
    };
    if free {
        return Ok(want);
    }
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    Ok(if udp {
        UdpSocket::bind(any)?.local_addr()?
    } else {
        TcpListener::bind(any)?.local_addr()?
    })
}

fn plan_nodes(dir: &Path, nodes: u8) -> anyhow::Result<DemoFile> {
    let path = dir.join("demo.toml");
    if path.exists() {
        let text = std::fs::read_to_string(&path)?;
        let file: DemoFile =
            toml::from_str(&text).with_context(|| format!("bad {}", path.display()))?;
        if file.nodes.len() != usize::from(nodes) {
            tracing::warn!(
                "{} describes {} nodes; restarting those",
                path.display(),
                file.nodes.len()
            );
        }
        return Ok(file);
    }
    if nodes == 0 || nodes > 16 {
        bail!("a demo has 1 to 16 nodes");
    }
    crate::cert::make_ca("gyre-demo", &dir.join("ca"))?;
    let mut list = Vec::new();
    for i in 1..=u16::from(nodes) {
        list.push(DemoNode {
            name: format!("node{i}"),
            peer: pick(7000 + i, true)?,
            resp: pick(6379 + i, false)?,
            http: pick(8080 + i, false)?,
        });
    }
    let file = DemoFile {
        cluster: "gyre-demo".to_owned(),
        nodes: list,
    };
    std::fs::write(&path, toml::to_string(&file)?)?;
    Ok(file)
}

/// Runs the demo until Ctrl-C.
pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let temp;
    let dir = match args.dir {
        Some(d) => d,
        None => {
            temp = TempDir::new()?;
            temp.0.clone()
        }
    };
    std::fs::create_dir_all(&dir)?;
    if args.add {
        return add(&dir).await;
    }
    let file = plan_nodes(&dir, args.nodes)?;
    let mut running: Vec<Running> = Vec::new();
    for node in &file.nodes {
        running.push(run::start(&settings(&dir, &file, node)?).await?);
    }
    form_cluster(&running).await?;
    print_nodes(&dir, &running);
    if let (Some(a), Some(b)) = (running.first(), running.get(1)) {
        out!();
        out!("Try:");
        out!(
            "  redis-cli -p {} SET greeting hello",
            a.endpoints.resp.port()
        );
        out!("  redis-cli -p {} GET greeting", b.endpoints.resp.port());
        out!(
            "  curl -s http://{}/v1/kv/default/greeting",
            b.endpoints.http
        );
        out!("  gyre cluster status --node http://{}", a.endpoints.http);
        out!(
            "  gyre demo --dir {} --add      # in another terminal: a node joins, its partitions stream to it",
            dir.display()
        );
    }
    out!();
    out!("Ctrl-C stops the cluster.");
    run::shutdown_signal().await;
    out!("stopping…");
    for r in running {
        r.stop().await;
    }
    Ok(())
}

/// `gyre demo --dir DIR --add`: one more node for the demo running there.
async fn add(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join("demo.toml");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no demo in {}: start one with `gyre demo --dir {}`",
            dir.display(),
            dir.display()
        )
    })?;
    let mut file: DemoFile =
        toml::from_str(&text).with_context(|| format!("bad {}", path.display()))?;
    let first = file
        .nodes
        .first()
        .map(|n| n.http)
        .context("the demo has no nodes")?;
    let i = u16::try_from(file.nodes.len() + 1).unwrap_or(u16::MAX);
    let node = DemoNode {
        name: format!("node{i}"),
        peer: pick(7000 + i, true)?,
        resp: pick(6379 + i, false)?,
        http: pick(8080 + i, false)?,
    };
    file.nodes.push(node);
    std::fs::write(&path, toml::to_string(&file)?)?;
    let Some(node) = file.nodes.last() else {
        bail!("the demo has no nodes");
    };
    let running = run::start(&settings(dir, &file, node)?).await?;
    let id = running.node.membership().id().to_string();
    print_nodes(dir, std::slice::from_ref(&running));
    out!();
    out!("joining {id} through http://{first} …");
    let target = crate::client::Target {
        node: format!("http://{first}"),
        token: None,
        token_file: None,
    };
    let joined = tokio::task::spawn_blocking(move || {
        // Until gossip has brought the new node to the first one.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let join = crate::client::ClusterCommand::Join { member: id.clone() };
            match crate::client::cluster(&target, join) {
                Ok(()) => break,
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "not joined yet");
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => return Err(e),
            }
        }
        let commit = crate::client::ClusterCommand::Commit {
            force: false,
            wait: true,
            timeout: None,
        };
        crate::client::cluster(&target, commit)
    })
    .await?;
    joined?;
    out!();
    out!("Ctrl-C stops this node (the others run on).");
    run::shutdown_signal().await;
    running.stop().await;
    Ok(())
}

/// The settings of demo node `node`.
fn settings(dir: &Path, file: &DemoFile, node: &DemoNode) -> anyhow::Result<Settings> {
    let n_val = u8::try_from(file.nodes.len().min(3)).unwrap_or(3);
    let defaults = gyre_types::BucketProps::new(n_val, n_val / 2 + 1, n_val / 2 + 1)?;
    Ok(Settings {
        name: node.name.clone(),
        data_dir: dir.join(&node.name),
        cluster: file.cluster.clone(),
        peer_listen: node.peer,
        peer_advertise: None,
        resp_listen: node.resp,
        http_listen: node.http,
        seeds: file
            .nodes
            .iter()
            .filter(|o| o.name != node.name)
            .map(|o| o.peer.to_string())
            .collect(),
        zone: "demo".to_owned(),
        capacity: 100,
        fsync: gyre_storage::Durability::Group,
        credentials: Credentials::CaKey {
            ca_cert: dir.join("ca/ca.pem"),
            ca_key: dir.join("ca/ca.key"),
        },
        bucket_defaults: defaults,
        partitions: gyre_types::PartitionCount::new(64)?,
        users: Vec::new(),
        protect_metrics: false,
        max_clients: 10_000,
        resp_idle_timeout: None,
        client_tls: None,
        hint_interval: Duration::from_secs(2),
        anti_entropy_interval: Duration::from_secs(60),
        tombstone_grace: Duration::from_secs(3600),
        sweep_interval: Duration::from_secs(3600),
        gossip_interval: Duration::from_millis(500),
        handoff: gyre_node::HandoffConfig::default(),
        handoff_nice: gyre_node::DEFAULT_BACKGROUND_NICE,
    })
}

/// Prints the endpoints of `running`.
fn print_nodes(dir: &Path, running: &[Running]) {
    out!(
        "Gyre demo: {} node(s) here, data in {}",
        running.len(),
        dir.display()
    );
    out!();
    out!(
        "  {:<7} {:<16}  {:<16} {:<22} peer (QUIC)",
        "name",
        "id",
        "redis",
        "http"
    );
    for r in running {
        let e = &r.endpoints;
        out!(
            "  {:<7} {:<16}  {:<16} http://{:<15} {}",
            e.name,
            e.id,
            e.resp,
            e.http,
            e.peer
        );
    }
}

/// On a first run, once every node sees every other, the first commits a
/// layout with all of them. A restarted cluster keeps its layout.
async fn form_cluster(running: &[Running]) -> anyhow::Result<()> {
    let Some(first) = running.first() else {
        return Ok(());
    };
    let membership = first.node.membership();
    let ids: Vec<_> = running.iter().map(|r| r.node.membership().id()).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !ids.iter().all(|id| membership.is_up(*id)) {
        if tokio::time::Instant::now() > deadline {
            bail!("the demo nodes did not see each other within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let missing: Vec<_> = ids
        .iter()
        .copied()
        .filter(|id| membership.layout().is_none_or(|l| l.member(*id).is_none()))
        .collect();
    if !missing.is_empty() {
        membership.with(|core, _| {
            for id in &missing {
                core.stage(Change::Join(*id))?;
            }
            Ok::<_, gyre_membership::Error>(())
        })?;
        let plan = membership.with(|core, _| core.plan())?;
        membership.commit(plan)?;
    }
    let stamp = membership.layout().map(|l| l.version());
    while running
        .iter()
        .any(|r| r.node.membership().layout().map(|l| l.version()) != stamp)
    {
        if tokio::time::Instant::now() > deadline {
            bail!("the demo nodes did not all adopt the layout within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<Self> {
        let name = format!(
            "gyre-demo-{}-{:x}",
            std::process::id(),
            getrandom::u64().unwrap_or(0)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

//! Starting and stopping one node: store, identity, transport, services,
//! front ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use gyre_api::Metrics;
use gyre_api::auth::{Gate, Users};
use gyre_api::tls::ClientTls;
use gyre_membership::{Membership, NodeInfo};
use gyre_node::{Node, NodeConfig, boot};
use gyre_replication::Replica;
use gyre_ring::RingConfig;
use gyre_storage::{FjallStore, Store, StoreConfig};
use gyre_transport::tls::{ClusterCa, NodeIdentity};
use gyre_transport::{QuicConfig, QuicTransport, Transport as _};
use gyre_types::{NodeId, ZoneName};
use gyre_wire::{Request, Response};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::backend::NodeBackend;
use crate::config::{Credentials, Settings};

/// The node type the binary runs.
pub(crate) type GyreNode = Node<QuicTransport, Arc<FjallStore>>;

/// Where a running node listens.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Endpoints {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) peer: SocketAddr,
    pub(crate) resp: SocketAddr,
    pub(crate) http: SocketAddr,
}

/// A running node.
pub(crate) struct Running {
    pub(crate) node: Arc<GyreNode>,
    pub(crate) endpoints: Endpoints,
    store: Arc<FjallStore>,
    transport: QuicTransport,
    stop_front: watch::Sender<bool>,
    fronts: JoinSet<()>,
}

/// Wall-clock milliseconds since the epoch.
pub(crate) fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A fresh random node id.
fn fresh_id() -> anyhow::Result<NodeId> {
    let raw = getrandom::u64().context("no randomness for a node id")?;
    Ok(NodeId::new(raw))
}

/// The identity of the node this data directory is bound to (with an
/// operator's certificate, the certificate's; [`boot`] refuses a directory
/// of another node).
fn identity(settings: &Settings, store: &FjallStore) -> anyhow::Result<NodeIdentity> {
    match &settings.credentials {
        Credentials::CaKey { ca_cert, ca_key } => {
            let ca = ClusterCa::from_pem(&read(ca_cert)?, &read(ca_key)?)
                .context("cannot load the cluster CA")?;
            // A new data directory always gets a new id: a node whose data
            // was lost must not mint versions under its old id again.
            let id = match store.node_id()? {
                Some(id) => id,
                None => fresh_id()?,
            };
            Ok(ca.identity(id)?)
        }
        Credentials::NodeCert { ca_cert, cert, key } => {
            let cert_pem = read(cert)?;
            let id = gyre_transport::tls::pem_node_id(&cert_pem)
                .context("cannot read the node id from the node certificate")?;
            let identity = NodeIdentity::from_pem(id, &cert_pem, &read(key)?, &read(ca_cert)?)
                .context("cannot load the node certificate")?;
            identity
                .verify_chain(SystemTime::now())
                .context("the node certificate is not valid for this cluster CA")?;
            Ok(identity)
        }
    }
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Starts a node with `settings`; returns once it serves clients.
pub(crate) async fn start(settings: &Settings) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    let store = Arc::new(
        FjallStore::open(
            &settings.data_dir,
            StoreConfig {
                partitions: settings.partitions,
                durability: settings.fsync,
                ..StoreConfig::default()
            },
        )
        .with_context(|| format!("cannot open the store in {}", settings.data_dir.display()))?,
    );
    match store.cluster_id()? {
        Some(c) if c != settings.cluster => bail!(
            "the data directory belongs to cluster {c:?}, not {:?}",
            settings.cluster
        ),
        Some(_) => {}
        None => store.set_cluster_id(&settings.cluster)?,
    }
    let identity = identity(settings, &store)?;
    let id = identity.node;
    let booted = boot(&store, id)?;
    let fresh = booted.fresh;

    let (transport, inbound) = QuicTransport::bind(QuicConfig::new(
        settings.peer_listen,
        settings.cluster.clone(),
        identity,
    ))
    .context("cannot listen for peers")?;
    let peer = transport.local_addr()?;
    if fresh && matches!(settings.credentials, Credentials::NodeCert { .. }) {
        refuse_lost_identity(&transport, id, &settings.seeds).await?;
    }

    let resp_listener = tokio::net::TcpListener::bind(settings.resp_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen for Redis clients on {}",
                settings.resp_listen
            )
        })?;
    let http_listener = tokio::net::TcpListener::bind(settings.http_listen)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", settings.http_listen))?;
    let resp = resp_listener.local_addr()?;
    let http = http_listener.local_addr()?;

    let peer_addr = match &settings.peer_advertise {
        Some(a) => a.clone(),
        None if peer.ip().is_unspecified() => {
            bail!(
                "listening for peers on {peer}: give --peer-advertise, the address peers reach this node at"
            )
        }
        None => peer.to_string(),
    };
    let advertise = |a: SocketAddr| {
        if a.ip().is_unspecified() {
            // Reachable where peers reach us.
            let host = peer_addr
                .rsplit_once(':')
                .map_or(peer_addr.as_str(), |(h, _)| h);
            format!("{host}:{}", a.port())
        } else {
            a.to_string()
        }
    };
    let info = NodeInfo {
        id,
        peer_addr: peer_addr.clone(),
        client_addrs: vec![
            format!("name={}", settings.name),
            format!("resp={}", advertise(resp)),
            format!("http={}", advertise(http)),
        ],
        zone: ZoneName::new(settings.zone.clone()).context("bad zone")?,
        capacity: settings.capacity,
    };
    let core = Membership::new(
        info,
        wall_ms(),
        booted.layout,
        gyre_membership::Config {
            ring: RingConfig {
                partitions: settings.partitions,
                replication: settings.bucket_defaults.n_val(),
            },
            gossip_interval: settings.gossip_interval,
            ..gyre_membership::Config::default()
        },
        id.as_u64(),
    )?
    .with_older(booted.older)
    .with_reading(booted.reading)
    .with_self_removed(booted.removed);
    if booted.removed {
        tracing::error!(node = %id, "{}", gyre_node::REMOVED_ADVICE);
    }
    let replica = Replica::new(
        id,
        Arc::clone(&store),
        gyre_replication::Config {
            tombstone_grace: settings.tombstone_grace,
            ..gyre_replication::Config::default()
        },
    )?;
    let node = Node::start(
        core,
        replica,
        transport.clone(),
        inbound,
        settings.seeds.clone(),
        wall_ms(),
        NodeConfig {
            offload: gyre_node::Offload::Threads {
                background_nice: settings.handoff_nice,
            },
            bucket_defaults: settings.bucket_defaults,
            hint_interval: settings.hint_interval,
            anti_entropy_interval: settings.anti_entropy_interval,
            sweep_interval: settings.sweep_interval,
            handoff: settings.handoff.clone(),
        },
    );

    let backend = Arc::new(NodeBackend::new(Arc::clone(&node)));
    let mut metrics = Metrics::new();
    metrics.register_collector(Box::new(store.collector()));
    metrics.register_collector(Box::new(transport.collector()));
    let metrics = Arc::new(metrics);
    let (stop_front, stopped) = watch::channel(false);
    let stop = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let users = Users::new(settings.users.clone()).context("bad users")?;
    let gate = Arc::new(if users.is_empty() {
        tracing::warn!("no users configured: every client is served without authentication");
        Gate::open()
    } else {
        tracing::info!(users = users.len(), "clients authenticate");
        Gate::new(users, !settings.protect_metrics)
    });
    let tls = match &settings.client_tls {
        None => None,
        Some((cert, key)) => Some(Arc::new(
            // Client certificates of users (`gyre cert client`) chain to
            // the cluster CA.
            ClientTls::from_pem(&read(cert)?, &read(key)?, Some(&read(settings.ca_cert())?))
                .context("cannot set up client TLS")?,
        )),
    };
    let mut fronts = JoinSet::new();
    {
        let (backend, metrics, stopped) =
            (Arc::clone(&backend), Arc::clone(&metrics), stopped.clone());
        let config = gyre_api::resp::RespConfig {
            gate: Arc::clone(&gate),
            max_clients: settings.max_clients,
            idle_timeout: settings.resp_idle_timeout,
            tls: tls.clone(),
            ..gyre_api::resp::RespConfig::default()
        };
        fronts.spawn(async move {
            if let Err(e) =
                gyre_api::resp::serve(resp_listener, backend, metrics, config, stop(stopped)).await
            {
                tracing::error!(error = %e, "the Redis front end failed");
            }
        });
    }
    let config = gyre_api::http::HttpConfig {
        gate,
        max_connections: settings.max_clients,
        tls,
        ..gyre_api::http::HttpConfig::default()
    };
    fronts.spawn(async move {
        if let Err(e) =
            gyre_api::http::serve(http_listener, backend, metrics, config, stop(stopped)).await
        {
            tracing::error!(error = %e, "the HTTP front end failed");
        }
    });
    let endpoints = Endpoints {
        id: id.to_string(),
        name: settings.name.clone(),
        peer,
        resp,
        http,
    };
    tracing::info!(node = %id, name = %settings.name, %peer, %resp, %http, fresh, "node started");
    Ok(Running {
        node,
        endpoints,
        store,
        transport,
        stop_front,
        fronts,
    })
}

/// A node with an operator-issued certificate starting on an empty data
/// directory: if the cluster's layout already counts its id, its data was
/// lost, and reusing the id could mint versions that already exist.
async fn refuse_lost_identity(
    transport: &QuicTransport,
    id: NodeId,
    seeds: &[String],
) -> anyhow::Result<()> {
    for seed in seeds {
        let Ok(Some(addr)) = tokio::net::lookup_host(seed.as_str())
            .await
            .map(|mut a| a.next())
        else {
            continue;
        };
        let Ok(peer) = transport.discover(addr).await else {
            continue;
        };
        let pulled = transport
            .request(
                peer,
                Request::PullLayout { have: None },
                Duration::from_secs(3),
            )
            .await;
        if let Ok(Response::Layout(history)) = pulled
            && history.iter().any(|layout| layout.member(id).is_some())
        {
            bail!(
                "node {id} is a member of the cluster's layout, but its data directory is empty: \
                 its data was lost. Issue a new certificate (`gyre cert node`), start with it, \
                 and replace the old id: `gyre cluster replace {id} <new id>` then `gyre cluster commit`"
            );
        }
        return Ok(());
    }
    Ok(())
}

impl Running {
    /// Stops cleanly: front ends stop taking requests and finish those in
    /// flight, hints are offered once more, then the node stops and the
    /// store is flushed to disk.
    pub(crate) async fn stop(mut self) {
        let _ = self.stop_front.send(true);
        while self.fronts.join_next().await.is_some() {}
        let delivered = tokio::time::timeout(
            Duration::from_secs(5),
            self.node.replication().deliver_hints(),
        )
        .await;
        if let Ok(n) = delivered
            && n > 0
        {
            tracing::info!(hints = n, "hints delivered before stopping");
        }
        self.node.shutdown().await;
        self.transport.shutdown().await;
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "cannot flush the store");
        }
        tracing::info!(node = %self.endpoints.id, "node stopped");
    }
}

/// Runs `gyre node` until SIGTERM or Ctrl-C.
pub(crate) async fn node(settings: Settings) -> anyhow::Result<()> {
    let running = start(&settings).await?;
    // One line on stdout for scripts: where the node listens.
    out!(
        "{}",
        serde_json::json!({ "event": "ready", "node": running.endpoints })
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}

/// Resolves at SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

//! [`QuicTransport`]: QUIC between nodes, mutual TLS under the cluster CA.
//!
//! - One outgoing connection per peer, reused by every request. Small
//!   requests ride the connection's lane ([`crate::lane`]); large requests
//!   and bulk streams get a bidirectional stream each, one-way messages a
//!   unidirectional one. Each stream starts with a [`gyre_wire::Open`]
//!   frame.
//! - A new connection starts with the handshake on its first stream: the
//!   connecting node sends [`Hello`] (protocol version, cluster, its node
//!   id) and the acceptor answers [`HelloReply`]. The acceptor checks that
//!   the claimed id is the one in the client certificate; the connecting
//!   node checked the server's certificate against the id it dialled (the
//!   TLS server name).
//! - Keep-alives every `keep_alive` and an idle timeout of `idle_timeout`
//!   close the connection to a dead peer within seconds; the next request
//!   reconnects, with exponential backoff after failures.
//! - Every frame is bounded by the [`FrameLimit`]: a stream that announces
//!   a larger frame, or sends bytes that do not decode, is reset on its own
//!   (on the lane, only that frame's request fails); the connection and its
//!   other streams carry on.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gyre_types::NodeId;
use gyre_wire::{
    FrameLimit, Hello, HelloReply, OneWay, Open, Request, Response, StreamDone, StreamItem,
    StreamOpen, frame,
};
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use crate::lane::{self, Lane};
use crate::metrics::{LinkFigures, Meters, TransportCollector};
use crate::tls::{self, NodeIdentity};
use crate::{Error, InStream, Inbound, OutStream, Responder, Result, Transport};

/// Application error codes on QUIC streams and connections.
mod code {
    use quinn::VarInt;
    /// A normal close.
    pub(super) const DONE: VarInt = VarInt::from_u32(0);
    /// The handshake was refused.
    pub(super) const REFUSED: VarInt = VarInt::from_u32(1);
    /// A frame was too large or did not decode.
    pub(super) const BAD_FRAME: VarInt = VarInt::from_u32(2);
    /// The node could not take the message (shutting down).
    pub(super) const UNAVAILABLE: VarInt = VarInt::from_u32(3);
}

/// How a [`QuicTransport`] is set up.
#[derive(Debug)]
pub struct QuicConfig {
    /// The UDP address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// The cluster's name; peers of other clusters are refused.
    pub cluster: String,
    /// This node's certificate and key, and the cluster CA.
    pub identity: NodeIdentity,
    /// The largest frame accepted or sent.
    pub frame_limit: FrameLimit,
    /// A connection silent this long is closed (a dead peer is noticed
    /// within this time).
    pub idle_timeout: Duration,
    /// Keep-alive interval, well below `idle_timeout`.
    pub keep_alive: Duration,
    /// How long connecting to a peer may take.
    pub connect_timeout: Duration,
    /// Streams a peer may have open at once on one connection, and
    /// requests it may have unanswered on its lane (bounds the concurrency
    /// a peer can impose; senders beyond it wait).
    pub max_streams_per_peer: u32,
    /// First wait after a failed connection attempt; doubles per failure.
    pub backoff_min: Duration,
    /// Longest wait between connection attempts.
    pub backoff_max: Duration,
    /// Inbound messages buffered for the node before the transport stops
    /// reading from peers.
    pub inbound_buffer: usize,
}

impl QuicConfig {
    /// Defaults for `identity` in `cluster`, listening on `listen`.
    pub fn new(listen: SocketAddr, cluster: impl Into<String>, identity: NodeIdentity) -> Self {
        Self {
            listen,
            cluster: cluster.into(),
            identity,
            frame_limit: FrameLimit::DEFAULT,
            idle_timeout: Duration::from_secs(5),
            keep_alive: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(3),
            max_streams_per_peer: 1024,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            inbound_buffer: 4096,
        }
    }
}

/// The QUIC transport of one node.
#[derive(Clone, Debug)]
pub struct QuicTransport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    local: NodeId,
    cluster: String,
    limit: FrameLimit,
    endpoint: Endpoint,
    client: quinn::ClientConfig,
    /// For dialling an address whose node is not known yet.
    seed_client: quinn::ClientConfig,
    connect_timeout: Duration,
    backoff: (Duration, Duration),
    max_in_flight: usize,
    peers: Mutex<HashMap<NodeId, Peer>>,
    /// Woken whenever a peer's address is learned or confirmed.
    addr_learned: tokio::sync::Notify,
    inbound: mpsc::Sender<Inbound>,
    meters: Arc<Meters>,
}

/// A live connection to a peer and its lane.
#[derive(Clone, Debug)]
struct Link {
    conn: Connection,
    lane: Arc<Lane>,
}

impl Link {
    fn is_open(&self) -> bool {
        self.conn.close_reason().is_none() && self.lane.is_open()
    }
}

/// What this node knows of a peer it sends to.
#[derive(Debug, Default)]
struct Peer {
    addr: Option<SocketAddr>,
    link: Option<Link>,
    failures: u32,
    retry_at: Option<Instant>,
    /// Held while connecting, so that concurrent requests share one attempt.
    connecting: Arc<tokio::sync::Mutex<()>>,
}

impl QuicTransport {
    /// Binds the endpoint and starts accepting peers. Must run inside a
    /// tokio runtime.
    ///
    /// # Errors
    /// [`Error::Tls`] for unusable certificates, [`Error::Setup`] if the
    /// socket cannot be bound.
    pub fn bind(config: QuicConfig) -> Result<(Self, mpsc::Receiver<Inbound>)> {
        let mut transport = quinn::TransportConfig::default();
        let idle = quinn::IdleTimeout::try_from(config.idle_timeout)
            .map_err(|e| Error::Setup(format!("idle timeout: {e}")))?;
        transport
            .max_idle_timeout(Some(idle))
            .keep_alive_interval(Some(config.keep_alive))
            .max_concurrent_bidi_streams(VarInt::from_u32(config.max_streams_per_peer))
            .max_concurrent_uni_streams(VarInt::from_u32(config.max_streams_per_peer));
        let transport = Arc::new(transport);

        let mut server = tls::quinn_server_config(&config.identity)?;
        server.transport_config(Arc::clone(&transport));
        let mut client = tls::quinn_client_config(&config.identity)?;
        client.transport_config(Arc::clone(&transport));
        let mut seed_client = tls::quinn_seed_client_config(&config.identity)?;
        seed_client.transport_config(transport);

        let endpoint = Endpoint::server(server, config.listen)
            .map_err(|e| Error::Setup(format!("binding {}: {e}", config.listen)))?;
        let (tx, rx) = mpsc::channel(config.inbound_buffer.max(1));
        let inner = Arc::new(Inner {
            local: config.identity.node,
            cluster: config.cluster,
            limit: config.frame_limit,
            endpoint,
            client,
            seed_client,
            connect_timeout: config.connect_timeout,
            backoff: (config.backoff_min, config.backoff_max),
            max_in_flight: config.max_streams_per_peer as usize,
            peers: Mutex::new(HashMap::new()),
            addr_learned: tokio::sync::Notify::new(),
            inbound: tx,
            meters: Arc::new(Meters::new()),
        });
        tokio::spawn(accept_loop(Arc::clone(&inner)));
        Ok((Self { inner }, rx))
    }

    /// The address the endpoint listens on.
    ///
    /// # Errors
    /// [`Error::Setup`] if the socket is gone.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.inner
            .endpoint
            .local_addr()
            .map_err(|e| Error::Setup(e.to_string()))
    }

    /// Records (or changes) where `peer` listens. A changed address drops
    /// the current connection to it. A peer that connects to this node is
    /// also moved to where it connected from (a node dials from the socket
    /// it listens on), whatever was set before.
    pub fn set_peer_addr(&self, peer: NodeId, addr: SocketAddr) {
        let mut peers = self.inner.peers();
        let p = peers.entry(peer).or_default();
        if p.addr != Some(addr) {
            p.addr = Some(addr);
            if let Some(link) = p.link.take() {
                link.conn.close(code::DONE, b"peer moved");
            }
            p.failures = 0;
            p.retry_at = None;
        }
        drop(peers);
        self.inner.addr_learned.notify_waiters();
    }

    /// The transport's metrics, for a prometheus-client registry: requests
    /// per peer by kind and outcome with their round trips, connection
    /// attempts, and each open connection's round-trip estimate, bytes and
    /// lost packets.
    pub fn collector(&self) -> TransportCollector {
        let inner = Arc::downgrade(&self.inner);
        TransportCollector {
            meters: Arc::clone(&self.inner.meters),
            links: Box::new(move || {
                let Some(inner) = inner.upgrade() else {
                    return Vec::new();
                };
                let peers = inner.peers();
                let mut links: Vec<LinkFigures> = peers
                    .iter()
                    .filter_map(|(id, p)| {
                        let link = p.link.as_ref().filter(|l| l.is_open())?;
                        let stats = link.conn.stats();
                        Some(LinkFigures {
                            peer: *id,
                            rtt: link.conn.rtt(),
                            sent_bytes: stats.udp_tx.bytes,
                            received_bytes: stats.udp_rx.bytes,
                            lost_packets: stats.path.lost_packets,
                        })
                    })
                    .collect();
                links.sort_by_key(|l| l.peer);
                links
            }),
        }
    }

    /// Closes every connection and stops accepting; waits until peers were
    /// told.
    pub async fn shutdown(&self) {
        self.inner.endpoint.close(code::DONE, b"shutdown");
        self.inner.endpoint.wait_idle().await;
    }

    /// The link to `peer`, connecting if there is none. A peer whose
    /// address is not known yet fails at once, or, `wait_for_addr`, is
    /// waited for until its address is learned (the caller bounds the
    /// wait).
    async fn connection(&self, peer: NodeId, wait_for_addr: bool) -> Result<Link> {
        let inner = &self.inner;
        let lock = {
            let mut peers = inner.peers();
            let p = peers.entry(peer).or_default();
            if let Some(link) = p.link.as_ref().filter(|l| l.is_open()) {
                return Ok(link.clone());
            }
            Arc::clone(&p.connecting)
        };
        let _attempt = lock.lock().await;
        let current = |peers: &HashMap<NodeId, Peer>| peers.get(&peer).and_then(|p| p.addr);
        loop {
            // A request to a peer whose address is not known yet (a node
            // that just started has heard of it from nobody) waits for it:
            // gossip or a seed tells its address within moments, and the
            // request's timeout bounds the wait. Unknown is not down.
            let addr = loop {
                let learned = inner.addr_learned.notified();
                tokio::pin!(learned);
                learned.as_mut().enable();
                {
                    let mut peers = inner.peers();
                    let p = peers.entry(peer).or_default();
                    if let Some(link) = p.link.as_ref().filter(|l| l.is_open()) {
                        return Ok(link.clone());
                    }
                    if let Some(old) = p.link.take() {
                        old.conn.close(code::DONE, b"lane closed; reconnecting");
                    }
                    if let Some(at) = p.retry_at.filter(|at| *at > Instant::now()) {
                        return Err(Error::Unreachable {
                            peer,
                            reason: format!(
                                "{} failed connection attempts; next in {:?}",
                                p.failures,
                                at - Instant::now()
                            ),
                        });
                    }
                    match p.addr {
                        Some(addr) => break addr,
                        None if !wait_for_addr => {
                            return Err(Error::Unreachable {
                                peer,
                                reason: "no known address".to_owned(),
                            });
                        }
                        None => {}
                    }
                }
                learned.await;
            };
            // A dial to an address the peer has left (it restarted
            // elsewhere and told us, by gossip or by connecting) is
            // abandoned at once: waiting out its connect timeout would hold
            // up every request queued behind it, and its failure says
            // nothing of the peer.
            let connect = self.connect(peer, addr);
            tokio::pin!(connect);
            let result = loop {
                let learned = inner.addr_learned.notified();
                tokio::pin!(learned);
                learned.as_mut().enable();
                if current(&inner.peers()) != Some(addr) {
                    break None;
                }
                tokio::select! {
                    biased;
                    result = &mut connect => break Some(result),
                    () = learned => {}
                }
            };
            let mut peers = inner.peers();
            // Moved meanwhile: dial where it is now (the lock is ours).
            let Some(result) = result.filter(|_| current(&peers) == Some(addr)) else {
                continue;
            };
            inner.meters.dialled(peer, result.is_ok());
            let p = peers.entry(peer).or_default();
            match &result {
                Ok(link) => {
                    p.link = Some(link.clone());
                    p.failures = 0;
                    p.retry_at = None;
                }
                Err(e) => {
                    p.failures = p.failures.saturating_add(1);
                    let (min, max) = inner.backoff;
                    let wait = min
                        .saturating_mul(1 << p.failures.min(16).saturating_sub(1))
                        .min(max);
                    p.retry_at = Some(Instant::now() + wait);
                    tracing::debug!(%peer, %addr, error = %e, ?wait, "connection attempt failed");
                }
            }
            return result;
        }
    }

    async fn connect(&self, peer: NodeId, addr: SocketAddr) -> Result<Link> {
        let (_, link) = self.dial(addr, Some(peer)).await.map_err(|e| e.at(peer))?;
        Ok(link)
    }

    /// Connects to whatever node of the cluster listens at `addr` (a seed,
    /// say), learns its id from its certificate, and keeps the connection
    /// for what is sent to that node later.
    ///
    /// # Errors
    /// [`Error::Seed`] if nothing answers there, or it is refused (another
    /// cluster or CA, a certificate that names no single node).
    pub async fn discover(&self, addr: SocketAddr) -> Result<NodeId> {
        let (peer, link) = self.dial(addr, None).await.map_err(|e| Error::Seed {
            addr,
            reason: e.reason,
        })?;
        let mut peers = self.inner.peers();
        let p = peers.entry(peer).or_default();
        p.addr = Some(addr);
        p.failures = 0;
        p.retry_at = None;
        if let Some(old) = p.link.replace(link) {
            old.conn.close(code::DONE, b"replaced");
        }
        drop(peers);
        self.inner.addr_learned.notify_waiters();
        Ok(peer)
    }

    /// Connects to `addr`, expecting node `expected` (or, with `None`, any
    /// node of the cluster), runs the handshake and opens the lane.
    async fn dial(
        &self,
        addr: SocketAddr,
        expected: Option<NodeId>,
    ) -> std::result::Result<(NodeId, Link), DialError> {
        let inner = &self.inner;
        let (config, name) = match expected {
            Some(peer) => (inner.client.clone(), tls::node_dns_name(peer)),
            None => (inner.seed_client.clone(), "seed.node.gyre".to_owned()),
        };
        let connecting = inner
            .endpoint
            .connect_with(config, addr, &name)
            .map_err(DialError::unreachable)?;
        let handshake = async {
            let conn = connecting.await.map_err(DialError::unreachable)?;
            let peer = match expected {
                Some(peer) => peer,
                None => tls::peer_node_id(&conn).map_err(DialError::refused)?,
            };
            let (mut send, mut recv) = conn.open_bi().await.map_err(DialError::unreachable)?;
            let hello = Hello::new(inner.cluster.clone(), inner.local);
            write_frame(&mut send, &hello, inner.limit)
                .await
                .map_err(DialError::refused)?;
            let _ = send.finish();
            let reply: HelloReply = read_frame(&mut recv, inner.limit)
                .await
                .map_err(DialError::refused)?;
            let node = reply.accepted().map_err(DialError::refused)?;
            if node != peer {
                return Err(DialError::refused(format!("reached node {node} instead")));
            }
            let (mut send, recv) = conn.open_bi().await.map_err(DialError::unreachable)?;
            write_frame(&mut send, &Open::Lane, inner.limit)
                .await
                .map_err(DialError::unreachable)?;
            let lane = Arc::new(Lane::start(peer, inner.limit, send, recv));
            Ok((peer, Link { conn, lane }))
        };
        match tokio::time::timeout(inner.connect_timeout, handshake).await {
            Ok(r) => r,
            Err(_) => Err(DialError::unreachable(format!(
                "no handshake within {:?}",
                inner.connect_timeout
            ))),
        }
    }

    async fn exchange(&self, peer: NodeId, request: Request) -> Result<Response> {
        let limit = self.inner.limit;
        let link = self.connection(peer, true).await?;
        if let Some(answer) = link.lane.call(&request).await {
            return answer;
        }
        let frame = frame::encode(&Open::Request(request), limit)?;
        let conn = link.conn;
        let broken = |reason: String| Error::Broken { peer, reason };
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| broken(e.to_string()))?;
        send.write_all(&frame)
            .await
            .map_err(|e| broken(e.to_string()))?;
        let _ = send.finish();
        read_frame(&mut recv, limit).await.map_err(|e| e.at(peer))
    }
}

/// Why a connection attempt failed.
#[derive(Debug)]
struct DialError {
    /// The peer answered and refused us (or is not who we expected).
    refused: bool,
    reason: String,
}

impl DialError {
    fn unreachable(e: impl std::fmt::Display) -> Self {
        Self {
            refused: false,
            reason: e.to_string(),
        }
    }

    fn refused(e: impl std::fmt::Display) -> Self {
        Self {
            refused: true,
            reason: e.to_string(),
        }
    }

    fn at(self, peer: NodeId) -> Error {
        let reason = self.reason;
        if self.refused {
            Error::Refused { peer, reason }
        } else {
            Error::Unreachable { peer, reason }
        }
    }
}

impl Inner {
    fn peers(&self) -> MutexGuard<'_, HashMap<NodeId, Peer>> {
        // Peer records are replaced field by field; a panic elsewhere
        // cannot leave one half-written in a way that matters.
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Transport for QuicTransport {
    fn local(&self) -> NodeId {
        self.inner.local
    }

    async fn request(&self, peer: NodeId, request: Request, timeout: Duration) -> Result<Response> {
        let (kind, started) = (request.kind(), Instant::now());
        let result = match tokio::time::timeout(timeout, self.exchange(peer, request)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                peer,
                after: timeout,
            }),
        };
        self.inner
            .meters
            .request(peer, kind, &result, started.elapsed());
        result
    }

    async fn send(&self, peer: NodeId, message: OneWay) -> Result<()> {
        let frame = frame::encode(&Open::Message(message), self.inner.limit)?;
        let conn = self.connection(peer, false).await?.conn;
        let broken = |e: &dyn std::fmt::Display| Error::Broken {
            peer,
            reason: e.to_string(),
        };
        let mut send = conn.open_uni().await.map_err(|e| broken(&e))?;
        send.write_all(&frame).await.map_err(|e| broken(&e))?;
        let _ = send.finish();
        Ok(())
    }

    async fn open_stream(&self, peer: NodeId, open: StreamOpen) -> Result<OutStream> {
        let limit = self.inner.limit;
        let first = frame::encode(&Open::Stream(open), limit)?;
        let conn = self.connection(peer, false).await?.conn;
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| Error::Broken {
            peer,
            reason: e.to_string(),
        })?;
        send.write_all(&first).await.map_err(|e| Error::Broken {
            peer,
            reason: e.to_string(),
        })?;
        let (out, input) = OutStream::pair(self.inner.local, peer);
        let InStream {
            mut items, done, ..
        } = input;
        tokio::spawn(async move {
            let result = async {
                while let Some(item) = items.recv().await {
                    let end = matches!(item, StreamItem::End { .. });
                    write_frame(&mut send, &item, limit).await?;
                    if end {
                        break;
                    }
                }
                let _ = send.finish();
                read_frame::<StreamDone>(&mut recv, limit).await
            }
            .await;
            if let Some(done) = done {
                let _ = done.send(result.map_err(|e| e.at(peer)));
            }
        });
        Ok(out)
    }
}

async fn accept_loop(inner: Arc<Inner>) {
    while let Some(incoming) = inner.endpoint.accept().await {
        tokio::spawn(serve_connection(Arc::clone(&inner), incoming));
    }
}

/// Runs the handshake on a new connection, then serves its streams.
async fn serve_connection(inner: Arc<Inner>, incoming: quinn::Incoming) {
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "incoming connection failed its TLS handshake");
            return;
        }
    };
    let Some(from) = handshake(&inner, &conn).await else {
        return;
    };
    // A node dials from the socket it listens on: that is where to reach
    // it. A verified connection from a new address means the node moved
    // (restarted elsewhere): the old address, and a link to it, are stale.
    {
        let remote = conn.remote_address();
        let mut peers = inner.peers();
        let p = peers.entry(from).or_default();
        if p.addr != Some(remote) {
            if let Some(old) = p.addr.replace(remote) {
                tracing::debug!(peer = %from, %old, new = %remote, "peer connected from a new address");
            }
            if let Some(link) = p.link.take() {
                link.conn.close(code::DONE, b"peer moved");
            }
        }
        // It is alive and reachable there: no backoff from earlier
        // failed attempts (it was down, and is back at the same address).
        p.failures = 0;
        p.retry_at = None;
        drop(peers);
        inner.addr_learned.notify_waiters();
    }
    loop {
        tokio::select! {
            bi = conn.accept_bi() => match bi {
                Ok((send, recv)) => {
                    tokio::spawn(serve_bi(Arc::clone(&inner), from, send, recv));
                }
                Err(_) => return,
            },
            uni = conn.accept_uni() => match uni {
                Ok(recv) => {
                    tokio::spawn(serve_uni(Arc::clone(&inner), from, recv));
                }
                Err(_) => return,
            },
        }
    }
}

/// The acceptor's side of the handshake; the peer's verified id.
async fn handshake(inner: &Inner, conn: &Connection) -> Option<NodeId> {
    let remote = conn.remote_address();
    let steps = async {
        let (mut send, mut recv) = conn.accept_bi().await.ok()?;
        let hello: Hello = match read_frame(&mut recv, inner.limit).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(%remote, error = %e, "peer sent no valid hello");
                conn.close(code::BAD_FRAME, b"expected a hello");
                return None;
            }
        };
        let verdict = hello
            .answer(&inner.cluster, inner.local)
            .map_err(|(reply, e)| (reply, e.to_string()))
            .and_then(|welcome| match tls::verify_peer_is(conn, hello.node) {
                Ok(()) => Ok(welcome),
                Err(e) => {
                    let reason = format!("certificate does not name node {}: {e}", hello.node);
                    Err((
                        HelloReply::Refused {
                            reason: reason.clone(),
                        },
                        reason,
                    ))
                }
            });
        match verdict {
            Ok(welcome) => {
                write_frame(&mut send, &welcome, inner.limit).await.ok()?;
                let _ = send.finish();
                Some(hello.node)
            }
            Err((refusal, reason)) => {
                tracing::warn!(%remote, claimed = %hello.node, %reason, "refused a peer");
                let _ = write_frame(&mut send, &refusal, inner.limit).await;
                let _ = send.finish();
                // Give the refusal a moment to leave before closing.
                let _ = tokio::time::timeout(Duration::from_millis(200), send.stopped()).await;
                conn.close(code::REFUSED, reason.as_bytes());
                None
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), steps)
        .await
        .ok()
        .flatten()
}

/// Serves one bidirectional stream: a request or a bulk stream.
async fn serve_bi(inner: Arc<Inner>, from: NodeId, mut send: SendStream, mut recv: RecvStream) {
    let open: Open = match read_frame(&mut recv, inner.limit).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(peer = %from, error = %e, "bad frame; resetting the stream");
            let _ = recv.stop(code::BAD_FRAME);
            let _ = send.reset(code::BAD_FRAME);
            return;
        }
    };
    match open {
        Open::Request(request) => {
            let (tx, rx) = oneshot::channel();
            let delivered = inner
                .inbound
                .send(Inbound::Request {
                    from,
                    request,
                    reply: Responder::once(tx),
                })
                .await;
            match (delivered, rx.await) {
                (Ok(()), Ok(response)) => {
                    if let Err(e) = write_frame(&mut send, &response, inner.limit).await {
                        tracing::warn!(peer = %from, error = %e, "could not send a response");
                        let _ = send.reset(code::BAD_FRAME);
                        return;
                    }
                    let _ = send.finish();
                }
                _ => {
                    let _ = send.reset(code::UNAVAILABLE);
                }
            }
        }
        Open::Message(message) => {
            let _ = inner.inbound.send(Inbound::Message { from, message }).await;
            let _ = send.finish();
        }
        Open::Stream(open) => serve_bulk(&inner, from, open, send, recv).await,
        Open::Lane => {
            let inbound = inner.inbound.clone();
            lane::serve(from, inner.limit, inner.max_in_flight, inbound, send, recv).await;
        }
    }
}

/// Receives a bulk stream: items into the node's [`InStream`] (waiting when
/// the node is behind, which stops reading and so applies QUIC flow
/// control), then the node's verdict back to the sender.
async fn serve_bulk(
    inner: &Inner,
    from: NodeId,
    open: StreamOpen,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    let (out, stream) = OutStream::pair(from, inner.local);
    if inner
        .inbound
        .send(Inbound::Stream { from, open, stream })
        .await
        .is_err()
    {
        let _ = send.reset(code::UNAVAILABLE);
        return;
    }
    let OutStream { items, done, .. } = out;
    loop {
        let item: StreamItem = match read_frame(&mut recv, inner.limit).await {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(peer = %from, error = %e, "bulk stream broke");
                let _ = recv.stop(code::BAD_FRAME);
                let _ = send.reset(code::BAD_FRAME);
                return;
            }
        };
        let end = matches!(item, StreamItem::End { .. });
        if items.send(item).await.is_err() {
            let _ = recv.stop(code::UNAVAILABLE);
            let _ = send.reset(code::UNAVAILABLE);
            return;
        }
        if end {
            break;
        }
    }
    drop(items);
    match done.await {
        Ok(Ok(verdict)) => {
            if write_frame(&mut send, &verdict, inner.limit).await.is_ok() {
                let _ = send.finish();
            }
        }
        _ => {
            let _ = send.reset(code::UNAVAILABLE);
        }
    }
}

/// Serves one unidirectional stream: a one-way message.
async fn serve_uni(inner: Arc<Inner>, from: NodeId, mut recv: RecvStream) {
    match read_frame::<Open>(&mut recv, inner.limit).await {
        Ok(Open::Message(message)) => {
            let _ = inner.inbound.send(Inbound::Message { from, message }).await;
        }
        Ok(_) => {
            tracing::warn!(peer = %from, "a request on a one-way stream; ignored");
            let _ = recv.stop(code::BAD_FRAME);
        }
        Err(e) => {
            tracing::warn!(peer = %from, error = %e, "bad frame; stopping the stream");
            let _ = recv.stop(code::BAD_FRAME);
        }
    }
}

/// A frame that could not be sent or received on a stream.
#[derive(Debug)]
enum FrameError {
    /// The stream or connection failed.
    Stream(String),
    /// The frame was too large or did not decode.
    Wire(gyre_wire::Error),
}

impl FrameError {
    /// The transport error, for a stream to `peer`.
    fn at(self, peer: NodeId) -> Error {
        match self {
            Self::Stream(reason) => Error::Broken { peer, reason },
            Self::Wire(e) => Error::Wire(e),
        }
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stream(reason) => f.write_str(reason),
            Self::Wire(e) => e.fmt(f),
        }
    }
}

async fn write_frame<T: Serialize>(
    send: &mut SendStream,
    msg: &T,
    limit: FrameLimit,
) -> std::result::Result<(), FrameError> {
    let bytes = frame::encode(msg, limit).map_err(FrameError::Wire)?;
    send.write_all(&bytes)
        .await
        .map_err(|e| FrameError::Stream(e.to_string()))
}

/// Reads one frame; the body is allocated only once its header passed the
/// limit.
async fn read_frame<T: DeserializeOwned>(
    recv: &mut RecvStream,
    limit: FrameLimit,
) -> std::result::Result<T, FrameError> {
    let stream = |e: quinn::ReadExactError| FrameError::Stream(e.to_string());
    let mut header = [0; frame::HEADER_LEN];
    recv.read_exact(&mut header).await.map_err(stream)?;
    let len = limit.body_len(header).map_err(FrameError::Wire)?;
    let mut body = vec![0; len];
    recv.read_exact(&mut body).await.map_err(stream)?;
    frame::decode(&body).map_err(FrameError::Wire)
}

//! Mutual TLS over real QUIC on loopback, with plain quinn endpoints built
//! from `gyre_transport::tls` configs.
//!
//! A properly certified node gets through and can tell who its peer is;
//! every kind of bad peer (certificate from another CA, expired certificate,
//! no certificate, the wrong node) is refused, and each refusal is observed
//! as the failure event itself, with the TLS alert that explains it, on both
//! sides. Timeouts are only a safety net against hangs.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gyre_transport::tls::{
    self, ClusterCa, NodeIdentity, TlsError, node_dns_name, peer_node_id, verify_peer_is,
};
use gyre_types::NodeId;
use quinn::{Connection, ConnectionError, Endpoint};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Only a guard against hangs: every wait below ends on an event.
const SAFETY: Duration = Duration::from_secs(10);

const A: NodeId = NodeId::new(0xaaaa_0000_0000_0001);
const B: NodeId = NodeId::new(0xbbbb_0000_0000_0002);
const C: NodeId = NodeId::new(0xcccc_0000_0000_0003);

/// TLS alerts (RFC 8446 §6), as carried in QUIC CRYPTO_ERROR codes.
const BAD_CERTIFICATE: u8 = 42;
const CERTIFICATE_EXPIRED: u8 = 45;
const UNKNOWN_CA: u8 = 48;
const CERTIFICATE_REQUIRED: u8 = 116;

/// Which side of a connection gave up.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// This side's TLS stack refused, with this alert.
    Local(u8),
    /// The peer refused and told us so, with this alert.
    ByPeer(u8),
}

/// Classifies a connection failure as a TLS refusal, panicking on anything
/// else (a timeout, an application close, ...).
fn refusal(err: &ConnectionError) -> Refusal {
    let (code, local) = match err {
        ConnectionError::TransportError(e) => (u64::from(e.code), true),
        ConnectionError::ConnectionClosed(close) => (u64::from(close.error_code), false),
        other => panic!("expected a TLS refusal, got {other:?}"),
    };
    // CRYPTO_ERROR is 0x0100 + the TLS alert.
    assert!(
        (0x100..0x200).contains(&code),
        "not a crypto error: {err:?}"
    );
    let alert = u8::try_from(code - 0x100).unwrap();
    if local {
        Refusal::Local(alert)
    } else {
        Refusal::ByPeer(alert)
    }
}

fn cluster() -> ClusterCa {
    ClusterCa::generate("refusals").unwrap()
}

/// An identity whose certificate expired yesterday, issued by `ca`.
fn expired_identity(ca: &ClusterCa, node: NodeId) -> NodeIdentity {
    let now = SystemTime::now();
    let day = Duration::from_secs(24 * 60 * 60);
    ca.issue_node_with_validity(node, now - 2 * day, now - day)
        .unwrap()
        .to_identity(ca.cert_pem())
        .unwrap()
}

/// A server endpoint on an ephemeral loopback port, and a task accepting one
/// connection and reporting how its handshake ended. The endpoint is handed
/// back so the caller keeps it alive (to send its CONNECTION_CLOSE) until
/// both sides have been observed.
fn serve_one(
    identity: &NodeIdentity,
) -> (
    Endpoint,
    SocketAddr,
    JoinHandle<Result<Connection, ConnectionError>>,
) {
    let endpoint = Endpoint::server(
        tls::quinn_server_config(identity).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let addr = endpoint.local_addr().unwrap();
    let accepting = endpoint.clone();
    let task = tokio::spawn(async move {
        let incoming = accepting.accept().await.expect("endpoint closed");
        incoming.await
    });
    (endpoint, addr, task)
}

fn client_endpoint() -> Endpoint {
    Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap()
}

/// The server's view of its one connection attempt.
async fn server_outcome(
    task: JoinHandle<Result<Connection, ConnectionError>>,
) -> Result<Connection, ConnectionError> {
    timeout(SAFETY, task)
        .await
        .expect("server handshake hung")
        .unwrap()
}

/// Dials `addr` as `server_name` and drives the connection until it fails,
/// returning the client's view of the failure.
///
/// With TLS 1.3 the client finishes its handshake before the server has
/// checked the client's certificate, so a refusal by the server may only
/// arrive after `connect` succeeded: the client then tries to use the
/// connection, which must fail, and reports why the connection closed.
async fn client_failure(
    endpoint: &Endpoint,
    config: quinn::ClientConfig,
    addr: SocketAddr,
    server_name: &str,
) -> ConnectionError {
    let connecting = endpoint.connect_with(config, addr, server_name).unwrap();
    let conn = match timeout(SAFETY, connecting).await.expect("handshake hung") {
        Err(err) => return err,
        Ok(conn) => conn,
    };
    let used = timeout(SAFETY, async {
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_all(b"ping").await?;
        send.finish()?;
        recv.read_to_end(64).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    })
    .await
    .expect("using a refused connection hung");
    assert!(used.is_err(), "a refused client could use its connection");
    conn.close_reason()
        .expect("the stream failed but the connection is not closed")
}

#[tokio::test]
async fn certified_nodes_connect_and_know_each_other() {
    let ca = cluster();
    let (server_endpoint, addr, accepted) = serve_one(&ca.identity(B).unwrap());
    let server = tokio::spawn(async move {
        let conn = server_outcome(accepted).await.unwrap();
        // The client claims to be A: true. Claiming C would be a lie.
        verify_peer_is(&conn, A).unwrap();
        let err = verify_peer_is(&conn, C).unwrap_err();
        assert!(
            matches!(err, TlsError::WrongNode { expected, .. } if expected == C),
            "{err}"
        );
        assert_eq!(peer_node_id(&conn).unwrap(), A);

        let (mut send, mut recv) = conn.accept_bi().await.unwrap();
        assert_eq!(recv.read_to_end(64).await.unwrap(), b"ping");
        send.write_all(b"pong").await.unwrap();
        send.finish().unwrap();
        // Stay up until the client has read the reply and hung up.
        let closed = conn.closed().await;
        assert!(
            matches!(closed, ConnectionError::ApplicationClosed(_)),
            "{closed:?}"
        );
    });

    let client_endpoint = client_endpoint();
    let config = tls::quinn_client_config(&ca.identity(A).unwrap()).unwrap();
    let connecting = client_endpoint
        .connect_with(config, addr, &node_dns_name(B))
        .unwrap();
    let conn = timeout(SAFETY, connecting).await.unwrap().unwrap();

    let handshake = conn
        .handshake_data()
        .unwrap()
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .unwrap();
    assert_eq!(handshake.protocol.as_deref(), Some(tls::ALPN));
    assert_eq!(peer_node_id(&conn).unwrap(), B);
    verify_peer_is(&conn, B).unwrap();

    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(b"ping").await.unwrap();
    send.finish().unwrap();
    let reply = timeout(SAFETY, recv.read_to_end(64))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, b"pong");
    conn.close(0_u32.into(), b"done");

    timeout(SAFETY, server).await.unwrap().unwrap();
    drop(server_endpoint);
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused() {
    let ca = cluster();
    let rogue_ca = ClusterCa::generate("rogue").unwrap();
    let (_server_endpoint, addr, accepted) = serve_one(&ca.identity(B).unwrap());

    // Trusts the real cluster CA (so it accepts the server), but presents a
    // certificate for A signed by another CA.
    let rogue = rogue_ca
        .issue_node(A)
        .unwrap()
        .to_identity(ca.cert_pem())
        .unwrap();
    let client_endpoint = client_endpoint();
    let client_err = client_failure(
        &client_endpoint,
        tls::quinn_client_config(&rogue).unwrap(),
        addr,
        &node_dns_name(B),
    )
    .await;
    let server_err = server_outcome(accepted).await.unwrap_err();

    assert_eq!(refusal(&server_err), Refusal::Local(UNKNOWN_CA));
    assert_eq!(refusal(&client_err), Refusal::ByPeer(UNKNOWN_CA));
}

#[tokio::test]
async fn server_certificate_from_another_ca_is_refused() {
    let ca = cluster();
    let rogue_ca = ClusterCa::generate("rogue").unwrap();
    let rogue_server = rogue_ca
        .issue_node(B)
        .unwrap()
        .to_identity(ca.cert_pem())
        .unwrap();
    let (_server_endpoint, addr, accepted) = serve_one(&rogue_server);

    let client_endpoint = client_endpoint();
    let client_err = client_failure(
        &client_endpoint,
        tls::quinn_client_config(&ca.identity(A).unwrap()).unwrap(),
        addr,
        &node_dns_name(B),
    )
    .await;
    let server_err = server_outcome(accepted).await.unwrap_err();

    assert_eq!(refusal(&client_err), Refusal::Local(UNKNOWN_CA));
    assert_eq!(refusal(&server_err), Refusal::ByPeer(UNKNOWN_CA));
}

#[tokio::test]
async fn expired_client_certificate_is_refused() {
    let ca = cluster();
    let (_server_endpoint, addr, accepted) = serve_one(&ca.identity(B).unwrap());

    let client_endpoint = client_endpoint();
    let client_err = client_failure(
        &client_endpoint,
        tls::quinn_client_config(&expired_identity(&ca, A)).unwrap(),
        addr,
        &node_dns_name(B),
    )
    .await;
    let server_err = server_outcome(accepted).await.unwrap_err();

    assert_eq!(refusal(&server_err), Refusal::Local(CERTIFICATE_EXPIRED));
    assert_eq!(refusal(&client_err), Refusal::ByPeer(CERTIFICATE_EXPIRED));
}

#[tokio::test]
async fn expired_server_certificate_is_refused() {
    let ca = cluster();
    let (_server_endpoint, addr, accepted) = serve_one(&expired_identity(&ca, B));

    let client_endpoint = client_endpoint();
    let client_err = client_failure(
        &client_endpoint,
        tls::quinn_client_config(&ca.identity(A).unwrap()).unwrap(),
        addr,
        &node_dns_name(B),
    )
    .await;
    let server_err = server_outcome(accepted).await.unwrap_err();

    assert_eq!(refusal(&client_err), Refusal::Local(CERTIFICATE_EXPIRED));
    assert_eq!(refusal(&server_err), Refusal::ByPeer(CERTIFICATE_EXPIRED));
}

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let ca = cluster();
    let (_server_endpoint, addr, accepted) = serve_one(&ca.identity(B).unwrap());

    // Trusts the cluster CA and speaks the right ALPN, but has no certificate.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    let mut crypto = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    crypto.alpn_protocols = vec![tls::ALPN.to_vec()];
    let config = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(crypto).unwrap(),
    ));

    let client_endpoint = client_endpoint();
    let client_err = client_failure(&client_endpoint, config, addr, &node_dns_name(B)).await;
    let server_err = server_outcome(accepted).await.unwrap_err();

    assert_eq!(refusal(&server_err), Refusal::Local(CERTIFICATE_REQUIRED));
    assert_eq!(refusal(&client_err), Refusal::ByPeer(CERTIFICATE_REQUIRED));
}

#[tokio::test]
async fn server_that_is_not_the_expected_node_is_refused() {
    let ca = cluster();
    // The server is a genuine, valid node C...
    let (_server_endpoint, addr, accepted) = serve_one(&ca.identity(C).unwrap());

    // ...but the client dialled expecting B.
    let client_endpoint = client_endpoint();
    let client_err = client_failure(
        &client_endpoint,
        tls::quinn_client_config(&ca.identity(A).unwrap()).unwrap(),
        addr,
        &node_dns_name(B),
    )
    .await;
    let server_err = server_outcome(accepted).await.unwrap_err();

    assert_eq!(refusal(&client_err), Refusal::Local(BAD_CERTIFICATE));
    assert_eq!(refusal(&server_err), Refusal::ByPeer(BAD_CERTIFICATE));
}

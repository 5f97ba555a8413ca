//! TLS for clients, end to end on loopback: an HTTPS request and a Redis
//! PING over TLS, with a certificate issued under a cluster CA; a client
//! that does not trust the CA is refused at the handshake, and plaintext to
//! a TLS listener gets no answer in its own protocol, only a closed
//! connection.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::ModelBackend;
use gyre_api::Metrics;
use gyre_api::auth::{Gate, Role, UserEntry, Users, hash_secret};
use gyre_api::http::HttpConfig;
use gyre_api::resp::RespConfig;
use gyre_api::tls::ClientTls;
use gyre_transport::tls::{ClusterCa, IssuedCert};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

/// A connector trusting `roots` (none: trusts nothing), presenting
/// `client` (certificate and key, PEM) if given.
fn connector_with(roots: &[CertificateDer<'static>], client: Option<&IssuedCert>) -> TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(c) => {
            let chain = CertificateDer::pem_slice_iter(c.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    TlsConnector::from(Arc::new(config))
}

/// A connector trusting `roots`, with no client certificate.
fn connector(roots: &[CertificateDer<'static>]) -> TlsConnector {
    connector_with(roots, None)
}

/// Both front ends on loopback over `tls`, serving the clients `gate` lets
/// in, until [`Fronts::stop`].
struct Fronts {
    http: SocketAddr,
    resp: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Fronts {
    async fn start(gate: Arc<Gate>, tls: Arc<ClientTls>) -> Self {
        let backend = Arc::new(ModelBackend::new());
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let resp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (http_addr, resp_addr) = (http.local_addr().unwrap(), resp.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let tasks = vec![
            tokio::spawn(gyre_api::http::serve(
                http,
                backend.clone(),
                Arc::new(Metrics::new()),
                HttpConfig {
                    gate: gate.clone(),
                    tls: Some(tls.clone()),
                    ..HttpConfig::default()
                },
                until(stopped.clone()),
            )),
            tokio::spawn(gyre_api::resp::serve(
                resp,
                backend,
                Arc::new(Metrics::new()),
                RespConfig {
                    gate,
                    tls: Some(tls),
                    ..RespConfig::default()
                },
                until(stopped),
            )),
        ];
        Self {
            http: http_addr,
            resp: resp_addr,
            stop,
            tasks,
        }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        for task in self.tasks {
            task.await.unwrap().unwrap();
        }
    }
}

/// Reads what the server sends until it closes (at most 5 s).
async fn rest<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut all)).await;
    all
}

#[tokio::test]
async fn clients_speak_tls_and_others_are_refused() {
    let ca = ClusterCa::generate("test").unwrap();
    let cert = ca
        .issue_server(&["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap();
    let tls = Arc::new(ClientTls::from_pem(&cert.cert_pem, &cert.key_pem, None).unwrap());
    let ca_cert = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let fronts = Fronts::start(Arc::new(Gate::open()), tls).await;
    let (http_addr, resp_addr) = (fronts.http, fronts.resp);

    // HTTPS, trusting the CA.
    let trusting = connector(std::slice::from_ref(&ca_cert));
    let mut https = trusting
        .connect(name.clone(), TcpStream::connect(http_addr).await.unwrap())
        .await
        .unwrap();
    https
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: gyre\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8(rest(&mut https).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"status\":\"alive\""), "{answer}");

    // Redis over TLS.
    let mut redis = trusting
        .connect(name.clone(), TcpStream::connect(resp_addr).await.unwrap())
        .await
        .unwrap();
    redis.write_all(b"*1\r\n$4\r\nPING\r\n").await.unwrap();
    let mut pong = [0u8; 7];
    redis.read_exact(&mut pong).await.unwrap();
    assert_eq!(&pong, b"+PONG\r\n");

    // A client that does not trust the CA: refused at the handshake.
    for addr in [http_addr, resp_addr] {
        let refused = connector(&[])
            .connect(name.clone(), TcpStream::connect(addr).await.unwrap())
            .await;
        assert!(refused.is_err(), "{addr}: an untrusting client got through");
    }

    // Plaintext to a TLS listener: no HTTP or RESP answer, a closed
    // connection (at most a TLS alert).
    let mut plain = TcpStream::connect(http_addr).await.unwrap();
    plain
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: gyre\r\n\r\n")
        .await
        .unwrap();
    let got = rest(&mut plain).await;
    assert!(
        !got.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let mut plain = TcpStream::connect(resp_addr).await.unwrap();
    plain.write_all(b"*1\r\n$4\r\nPING\r\n").await.unwrap();
    let got = rest(&mut plain).await;
    assert!(
        !got.starts_with(b"+PONG"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    fronts.stop().await;
}

/// One HTTP request over `stream`; the status line.
async fn status_of<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = String::from_utf8(rest(&mut stream).await).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_client_certificate_authenticates_its_user() {
    let ca = ClusterCa::generate("test").unwrap();
    let server = ca.issue_server(&["127.0.0.1".to_owned()]).unwrap();
    let tls = Arc::new(
        ClientTls::from_pem(&server.cert_pem, &server.key_pem, Some(ca.cert_pem())).unwrap(),
    );
    let users = Users::new(vec![UserEntry {
        name: "viewer".into(),
        role: Role::ReadOnly,
        buckets: None,
        secret_hash: hash_secret("viewer.secret").unwrap(),
    }])
    .unwrap();
    let gate = Arc::new(Gate::new(users, true));
    let ca_cert = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let fronts = Fronts::start(gate, tls).await;
    let (http_addr, resp_addr) = (fronts.http, fronts.resp);
    let viewer = ca.issue_user("viewer").unwrap();
    let as_viewer = connector_with(std::slice::from_ref(&ca_cert), Some(&viewer));
    let ghost = ca.issue_user("ghost").unwrap();
    let as_ghost = connector_with(std::slice::from_ref(&ca_cert), Some(&ghost));
    let stranger_ca = ClusterCa::generate("other").unwrap();
    let stranger = stranger_ca.issue_user("viewer").unwrap();
    let as_stranger = connector_with(std::slice::from_ref(&ca_cert), Some(&stranger));
    let get = "GET /v1/cluster HTTP/1.1\r\nHost: gyre\r\nConnection: close\r\n\r\n";
    let put = "PUT /v1/buckets/b HTTP/1.1\r\nHost: gyre\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    let dial = |connector: TlsConnector| {
        let name = name.clone();
        async move {
            connector
                .connect(name, TcpStream::connect(http_addr).await.unwrap())
                .await
        }
    };

    // The viewer's certificate: its reads, no admin change, no header needed.
    let status = status_of(dial(as_viewer.clone()).await.unwrap(), get).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let status = status_of(dial(as_viewer.clone()).await.unwrap(), put).await;
    assert!(status.starts_with("HTTP/1.1 403"), "{status}");
    // No certificate, or one of a user the node does not have: 401.
    let status = status_of(
        dial(connector(std::slice::from_ref(&ca_cert)))
            .await
            .unwrap(),
        get,
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    let status = status_of(dial(as_ghost).await.unwrap(), get).await;
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    // A certificate of another CA: refused at the handshake (or right
    // after it, as TLS 1.3 checks the client's certificate late).
    if let Ok(stream) = dial(as_stranger).await {
        let status = status_of(stream, get).await;
        assert!(!status.starts_with("HTTP/1.1 200"), "{status}");
    }

    // Redis: authenticated by the certificate, with the viewer's role.
    let mut redis = as_viewer
        .connect(name.clone(), TcpStream::connect(resp_addr).await.unwrap())
        .await
        .unwrap();
    redis
        .write_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
        .await
        .unwrap();
    let mut nil = [0u8; 5];
    redis.read_exact(&mut nil).await.unwrap();
    assert_eq!(&nil, b"$-1\r\n");
    redis
        .write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        .await
        .unwrap();
    let mut noperm = [0u8; 7];
    redis.read_exact(&mut noperm).await.unwrap();
    assert_eq!(&noperm, b"-NOPERM");

    fronts.stop().await;
}

//! Serving the router on a listener, with the limits that protect the
//! node: at most `max_connections` clients at once (the next one gets a
//! `503` and is closed), a client that does not send a request's headers
//! within `header_timeout` (a keep-alive connection waiting for its next
//! request included) is disconnected, and a request not answered within
//! `request_timeout` (a body that trickles in, say) is a `408`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use super::error::ApiError;
use crate::auth::Gate;
use crate::tls::ClientTls;

/// How the HTTP front end treats its clients.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Who may call what (shared with the Redis front end).
    pub gate: Arc<Gate>,
    /// Clients connected at most; one more is answered `503` and closed.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, counted
    /// from when the connection waits for them (so also an idle
    /// keep-alive connection's limit).
    pub header_timeout: Duration,
    /// How long a request may take, body included, before it is answered
    /// `408`.
    pub request_timeout: Duration,
    /// HTTPS on the listener; `None`: plain HTTP.
    pub tls: Option<Arc<ClientTls>>,
}

impl Default for HttpConfig {
    /// Everyone served (no users), 10,000 connections, 30 s for headers,
    /// 60 s per request.
    fn default() -> Self {
        Self {
            gate: Arc::new(Gate::open()),
            max_connections: 10_000,
            header_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            tls: None,
        }
    }
}

/// The answer to a connection over the limit.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
Connection: close\r\nContent-Length: 74\r\n\r\n\
{\"error\":\"too_many_connections\",\"message\":\"max number of clients reached\"}";

/// Serves `router` on `listener` until `shutdown`, then lets requests in
/// flight finish (a few seconds at most) and returns.
pub(crate) async fn run(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (mut stream, addr) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, retry.
                    tracing::warn!(error = %e, "http: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(client = %addr, "http: too many connections; refusing one");
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    let _ = stream.write_all(TOO_MANY).await;
                    let _ = stream.shutdown().await;
                })
                .await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let (watcher, tls, gate, header_timeout) = (
            graceful.watcher(),
            config.tls.clone(),
            Arc::clone(&config.gate),
            config.header_timeout,
        );
        tokio::spawn(async move {
            // Each request knows its client's address and, over TLS with
            // a verified user certificate, its user.
            let service = |certified: Option<Certified>| {
                TowerToHyperService::new(router.map_request(
                    move |mut request: Request<Incoming>| {
                        request.extensions_mut().insert(ConnectInfo(addr));
                        if let Some(user) = &certified {
                            request.extensions_mut().insert(user.clone());
                        }
                        request
                    },
                ))
            };
            let mut http1 = hyper::server::conn::http1::Builder::new();
            http1
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let ended = match tls {
                None => {
                    let connection = http1.serve_connection(TokioIo::new(stream), service(None));
                    watcher.watch(connection).await
                }
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => {
                        let certified = crate::tls::peer_user(&stream)
                            .and_then(|name| gate.certified(&name))
                            .map(Certified);
                        let connection =
                            http1.serve_connection(TokioIo::new(stream), service(certified));
                        watcher.watch(connection).await
                    }
                    Err(e) => {
                        tracing::debug!(client = %addr, error = %e, "http: TLS handshake failed");
                        Ok(())
                    }
                },
            };
            if let Err(e) = ended {
                tracing::debug!(client = %addr, error = %e, "http: connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

/// A request's user, proved by its connection's client certificate.
#[derive(Clone, Debug)]
pub(crate) struct Certified(pub(crate) crate::auth::User);

/// The layer that answers `408` to a request not done within `limit`.
pub(crate) async fn deadline(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request took more than {limit:?}"),
        )
        .into_response(),
    }
}

//! Who may call what: a layer in front of every route. With users
//! configured, a request names its user with `Authorization: Bearer
//! <secret>` or `Basic` (user and secret), and the route needs a role:
//!
//! | route | needs |
//! |---|---|
//! | `GET /health`, `GET /health/live`, `GET /v1/openapi.json` | nothing |
//! | `GET /metrics` | nothing, unless the node protects it (then any user) |
//! | `GET /v1/kv/{bucket}[/{key}]` | reading `bucket` (`readonly` and up) |
//! | `PUT`, `DELETE`, `POST /v1/kv/{bucket}/{key}` | writing `bucket` (`readwrite` and up) |
//! | `GET /v1/buckets[/{bucket}]`, `GET /v1/cluster` | any user |
//! | `PUT /v1/buckets/{bucket}`, `POST /v1/cluster/admin`, `/v1/local/…` | `admin` |
//!
//! No credential, or a wrong one: `401 unauthorized` (with
//! `WWW-Authenticate`); a user whose role does not allow it: `403
//! forbidden`. Both are the usual JSON error body, and nothing runs. Every
//! admin change is logged with who made it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gyre_types::BucketName;

use super::error::ApiError;
use super::extract::percent_decode;
use crate::Front;
use crate::auth::{Access, Gate};

/// What a route needs, before the bucket is known to be a valid name.
enum Needs {
    Nothing,
    Known,
    Read(String),
    Write(String),
    Admin,
}

/// What `method path` needs.
fn needs(method: &Method, path: &str, open_metrics: bool) -> Needs {
    let reads = method == Method::GET || method == Method::HEAD;
    match path {
        "/health" | "/health/live" | "/v1/openapi.json" => Needs::Nothing,
        "/metrics" if open_metrics => Needs::Nothing,
        "/metrics" | "/v1/buckets" | "/v1/cluster" => Needs::Known,
        "/v1/cluster/admin" => Needs::Admin,
        _ if path.starts_with("/v1/local/") => Needs::Admin,
        _ => {
            if let Some(rest) = path.strip_prefix("/v1/kv/") {
                let bucket = rest.split('/').next().unwrap_or_default().to_owned();
                match *method {
                    _ if reads => Needs::Read(bucket),
                    Method::PUT | Method::DELETE | Method::POST => Needs::Write(bucket),
                    _ => Needs::Known,
                }
            } else if path.starts_with("/v1/buckets/") {
                if reads { Needs::Known } else { Needs::Admin }
            } else {
                Needs::Known
            }
        }
    }
}

/// The layer: checks the credential and the role, then runs the route.
pub(crate) async fn guard(
    State((gate, metrics)): State<(Arc<Gate>, Arc<crate::Metrics>)>,
    request: Request,
    next: Next,
) -> Response {
    if gate.is_open() {
        log_admin(&request, "anonymous (no users configured)");
        return next.run(request).await;
    }
    let path = request.uri().path().to_owned();
    let needs = needs(request.method(), &path, gate.open_metrics());
    if matches!(needs, Needs::Nothing) {
        return next.run(request).await;
    }
    let from = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let certified = request
        .extensions()
        .get::<super::serve::Certified>()
        .map(|c| c.0.clone());
    let user = match (credential(&request), certified) {
        (Some((name, secret)), _) => {
            let Some(user) = gate.login(from, name.as_deref(), &secret).await else {
                metrics.auth_failed(Front::Http);
                return unauthorized("unknown user or wrong secret");
            };
            user
        }
        // No header, but the connection's client certificate names a user.
        (None, Some(user)) => user,
        (None, None) => {
            return unauthorized(
                "authentication required: send Authorization: Bearer <secret>, or Basic with \
                 user and secret",
            );
        }
    };
    let bucket = |raw: &str| {
        percent_decode(raw)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|b| BucketName::new(b).ok())
    };
    let allowed = match &needs {
        Needs::Nothing | Needs::Known => true,
        Needs::Admin => user.allows(Access::Admin),
        // A bucket that is no bucket name: the route answers 400.
        Needs::Read(raw) => bucket(raw).is_none_or(|b| user.allows(Access::Read(&b))),
        Needs::Write(raw) => bucket(raw).is_none_or(|b| user.allows(Access::Write(&b))),
    };
    if !allowed {
        let what = match &needs {
            Needs::Read(b) => format!("reading bucket '{b}'"),
            Needs::Write(b) => format!("writing bucket '{b}'"),
            _ => "the admin role".to_owned(),
        };
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "user '{}' ({}) may not {} {path}: it needs {what}",
                user.name(),
                user.role(),
                request.method()
            ),
        )
        .into_response();
    }
    log_admin(&request, user.name());
    next.run(request).await
}

/// Logs a request that changes buckets or the layout, with who sent it.
fn log_admin(request: &Request, who: &str) {
    let path = request.uri().path();
    let admin_change = (path == "/v1/cluster/admin" && request.method() == Method::POST)
        || (path.starts_with("/v1/buckets/") && request.method() == Method::PUT);
    if admin_change {
        tracing::info!(user = who, method = %request.method(), path, "admin change");
    }
}

/// The user (if the credential names one) and secret of the request's
/// `Authorization` header.
fn credential(request: &Request) -> Option<(Option<String>, Vec<u8>)> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some((None, rest.as_bytes().to_vec()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(rest).ok()?;
        let colon = decoded.iter().position(|&b| b == b':')?;
        let name = String::from_utf8(decoded[..colon].to_vec()).ok()?;
        return Some((Some(name), decoded[colon + 1..].to_vec()));
    }
    None
}

/// A 401 that says how to authenticate.
fn unauthorized(message: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"gyre\", charset=\"UTF-8\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_needs_what_the_table_says() {
        let cases = [
            ("GET", "/health", "nothing"),
            ("GET", "/health/live", "nothing"),
            ("GET", "/v1/openapi.json", "nothing"),
            ("GET", "/metrics", "known"),
            ("GET", "/v1/kv/b", "read b"),
            ("GET", "/v1/kv/b/k/x", "read b"),
            ("PUT", "/v1/kv/b/k", "write b"),
            ("DELETE", "/v1/kv/b/k", "write b"),
            ("POST", "/v1/kv/b/k", "write b"),
            ("PATCH", "/v1/kv/b/k", "known"),
            ("GET", "/v1/buckets", "known"),
            ("GET", "/v1/buckets/b", "known"),
            ("PUT", "/v1/buckets/b", "admin"),
            ("GET", "/v1/cluster", "known"),
            ("POST", "/v1/cluster/admin", "admin"),
            ("GET", "/v1/local/trees", "admin"),
            ("GET", "/v1/local/kv/b/k", "admin"),
            ("GET", "/nowhere", "known"),
        ];
        for (method, path, want) in cases {
            let got = match needs(&method.parse().unwrap_or(Method::GET), path, false) {
                Needs::Nothing => "nothing".to_owned(),
                Needs::Known => "known".to_owned(),
                Needs::Read(b) => format!("read {b}"),
                Needs::Write(b) => format!("write {b}"),
                Needs::Admin => "admin".to_owned(),
            };
            assert_eq!(got, want, "{method} {path}");
        }
        assert!(matches!(
            needs(&Method::GET, "/metrics", true),
            Needs::Nothing
        ));
    }
}

//! The HTTP/JSON front end: keys, bucket properties, cluster status and
//! administration, health and Prometheus metrics, over any [`Backend`].
//!
//! [`router`] builds the axum [`Router`]; [`serve`] runs it on a listener
//! until a shutdown future completes. HTTP/1.1 only, keep-alive supported.
//!
//! # Keys
//!
//! `{bucket}` is a bucket name (`[A-Za-z0-9._-]`, 1 to 64 bytes). `{key}` is
//! everything after the bucket's `/`, slashes included, percent-decoded
//! into bytes: `/v1/kv/default/a/b` is the key `a/b`, and `%XX` reaches any
//! byte (`%00`, `%FF`, `%2F`, `%3F`…), so binary keys are written
//! percent-encoded. `+` is a plus sign, not a space. Keys are at least
//! one byte; their length is bounded by the URI, which may not exceed
//! 65 534 bytes (the request is refused with `414 URI Too Long` and an empty
//! body by the HTTP layer, before any route: the one answer that is not
//! JSON), so keys close to [`Key::MAX_LEN`](gyre_types::Key::MAX_LEN)
//! (64 KiB) are reachable only over the Redis protocol.
//!
//! A context travels base64-encoded (standard alphabet, with padding) in the
//! `X-Gyre-Context` header: every read returns one and every write returns
//! the new one. Write with the context of the read you are replacing;
//! without one a write is *blind* and supersedes every version the
//! coordinating node knows of.
//!
//! ## `GET /v1/kv/{bucket}/{key}[?r=N]`
//!
//! - `200 OK`, `Content-Type: application/octet-stream`: the value is the
//!   body; `X-Gyre-Context` is set, and `X-Gyre-Expires` (milliseconds
//!   since the Unix epoch) if the value expires.
//! - `300 Multiple Choices`, `Content-Type: application/json`: concurrent
//!   writes left siblings. `X-Gyre-Context` is set, and the body is
//!   `{"context": "<base64>", "siblings": [{"value_base64": "...",
//!   "value": "<the value if it is UTF-8, else null>", "expires_unix_ms": t},
//!   ...], "latest": i}` (`expires_unix_ms` only for a value that expires)
//!   where `latest` is the index of the sibling written last by the hybrid
//!   clock. A `PUT` with this context replaces them all.
//! - `404 Not Found`: no value (never written, or deleted).
//!   `{"error": "not_found", "message": ..., "context": "<base64>"}`, and the
//!   context in `X-Gyre-Context` too: a write after a delete should carry
//!   it.
//!
//! With `Accept: application/json` every found read is `200 OK` with the
//! JSON body of the 300 above, even for a single value (for scripts and the
//! CLI); a 404 then also carries `"siblings": []`. `HEAD` answers as `GET`
//! without the body.
//!
//! ## `PUT /v1/kv/{bucket}/{key}[?w=N]`
//!
//! The body is the value (any bytes, up to the bucket's `max_value_len`;
//! `Content-Length` or chunked). Optional `X-Gyre-Context`. `200 OK` with
//! `{"context": "<base64>", "dot": "<node>:<counter>"}` (the new version's
//! dot) and the new context also in `X-Gyre-Context`. Optional
//! `X-Gyre-TTL`: seconds the value lives (a positive integer), or `never`;
//! without it the bucket's `default_ttl` applies (none unless set). An
//! expired value reads as `404`, as a deleted one; expiry is explained in
//! [`gyre_wire::Expiry`] and the README.
//!
//! ## `POST /v1/kv/{bucket}/{key}?incr=N[&w=N]`
//!
//! Adds `N` (negative: subtracts) to a counter, a key of a bucket whose
//! `conflict_mode` is `counter`: `200 {"value": v, "context": "..."}`, `v`
//! being the counter as the coordinator holds it after the increment. A
//! `GET` of a counter answers its value as decimal text; a `PUT` is refused
//! (`400 bad_request`), a `DELETE` removes the increments it saw. In a
//! bucket of another mode: `400 not_a_counter`.
//!
//! ## `DELETE /v1/kv/{bucket}/{key}[?w=N]`
//!
//! Optional `X-Gyre-Context`; the body is ignored. Writes a tombstone:
//! `200 OK` with the same body and header as a `PUT` (the tombstone's dot
//! and the context to write after it).
//!
//! `r` and `w` override the bucket's quorums for one request, and must be
//! in `1..=n_val`. No other query parameter is accepted.
//!
//! ## `GET /v1/kv/{bucket}[?prefix=P][&limit=N][&after=T]`
//!
//! The bucket's keys, a page at a time: `200` `{"keys": [{"key": "<text, or
//! null if not UTF-8>", "key_base64": "..."}, ...], "next": "<token>" |
//! null}`. `prefix` (percent-encoded bytes) keeps the keys that start with
//! it, `limit` is 1 to 10,000 (default 1,000), and `after` takes the `next`
//! token of the previous page; `next` is null once every key was listed.
//! Keys come in ring order (key hash), not sorted, and a page may hold fewer
//! keys than the limit with a `next` still to follow. Every key that has a
//! value for the whole listing is listed at least once (each page is the
//! union of a read quorum of replicas; see [`Backend::list_keys`]).
//!
//! # Buckets
//!
//! Properties are `{"n_val": 3, "r": 2, "w": 2, "conflict_mode":
//! "siblings" | "lww", "max_siblings": 100, "max_value_len": 8388608,
//! "default_ttl": 1800}` (`default_ttl`, in seconds, only when the bucket
//! has one: values written without a time to live expire after it; `0` in
//! a `PUT` removes it).
//!
//! - `GET /v1/buckets`: `200` `{"buckets": [{"bucket": "default", "props":
//!   {...}}, ...]}`.
//! - `GET /v1/buckets/{bucket}`: `200` with the properties, or `404`
//!   `unknown_bucket`.
//! - `PUT /v1/buckets/{bucket}`: creates the bucket or changes it,
//!   cluster-wide. The JSON body holds any subset of the properties (an
//!   empty body is `{}`); the others keep the bucket's current values (the
//!   defaults above for a new bucket), except that a missing `r` or `w`
//!   becomes a majority of `n_val` when `n_val` changes. `200` with
//!   `{"bucket": ..., "acknowledged": <members that stored it>, "members":
//!   ..., "props": {...}}`; `400` `bad_props` if the result breaks a rule
//!   (`1 ≤ r, w ≤ n_val ≤ 9`, `max_siblings ≥ 1`, `1 ≤ max_value_len ≤
//!   64 MiB`, `default_ttl` at most ten years); `409` `risky_change` if
//!   the bucket holds data and the change is to its `n_val` or
//!   `conflict_mode`, unless the request says `?force=true` (a forced
//!   change is logged).
//!
//! # Cluster
//!
//! - `GET /v1/cluster`: `200` with [`ClusterStatus`] as JSON.
//! - `POST /v1/cluster/admin`: the body is an [`AdminCommand`], e.g.
//!   `{"command": "join", "node": "00abcdef01234567"}`, `{"command": "set",
//!   "node": "...", "capacity": 200, "zone": "z2"}`, `{"command": "plan"}`,
//!   `{"command": "commit"}`, `{"command": "clear"}`. `200` with the
//!   [`AdminReply`]: `{"staged": [...]}`, `{"plan": {...}}` or
//!   `{"committed": {...}}`; a refused command is `400` `bad_request`.
//! - `GET /health`: `200` `{"status": "ok", "node": "<id>",
//!   "layout_version": 7}` once the node holds a layout; before,
//!   `503` `{"status": "no_layout", "node": "<id>", "layout_version":
//!   null}`. A readiness probe.
//! - `GET /health/live`: `200` `{"status": "alive", ...}` whenever the node
//!   answers, layout or not. A liveness probe: a node waiting for its first
//!   layout is alive.
//! - `GET /metrics`: `200`, `application/openmetrics-text;
//!   version=1.0.0`: the OpenMetrics text of [`Metrics::render`] (request counts and latency
//!   per front end, operation and outcome, siblings returned, and the
//!   node's replication counters).
//! - `GET /v1/openapi.json`: the OpenAPI 3.1 document of this API,
//!   generated from the handlers' `#[utoipa::path]` attributes
//!   ([`openapi_json`]), also checked in as `crates/api/openapi.json`.
//!
//! # This node's own replica
//!
//! For operators and tests checking repair: what this node stores, not
//! what the cluster answers.
//!
//! - `GET /v1/local/trees`: `200` `{"trees": [{"partition": 3, "n_val": 3,
//!   "root": "<32 hex digits>"}, ...]}`, one per (partition, n_val) it holds
//!   data of. Two replicas of a partition hold the same data exactly when
//!   their roots are equal.
//! - `GET /v1/local/kv/{bucket}/{key}`: `200` `{"values_base64": [...]}`,
//!   the live values of the local record (empty if it is a tombstone), or
//!   `404` `not_found` if there is no record.
//!
//! # Authentication
//!
//! With users configured ([`crate::auth`]), a request names its user with
//! `Authorization: Bearer <secret>` or `Basic` (user and secret), and each
//! route needs a role: the table is in `http/auth.rs`. In short: keys need
//! `readonly` (reads) or `readwrite` (writes) on their bucket, bucket and
//! layout changes and `/v1/local/…` need `admin`, and `/health`,
//! `/health/live`, `/v1/openapi.json` and (unless protected) `/metrics` are
//! open. Without a valid credential: `401 unauthorized`; a role that does
//! not allow the route: `403 forbidden`.
//!
//! # Errors
//!
//! Every failure is JSON: `{"error": "<kind>", "message": "<for humans>"}`,
//! with extra fields where said. Bad input never reaches the backend, so it
//! writes nothing.
//!
//! | status | `error` | when |
//! |---|---|---|
//! | 401 | `unauthorized` | users are configured and the request has no valid credential |
//! | 403 | `forbidden` | the user's role does not allow the route (or the bucket) |
//! | 409 | `risky_change` | `n_val` or `conflict_mode` of a bucket that holds data, without `?force=true` |
//! | 400 | `bad_bucket` | the bucket name breaks the naming rules |
//! | 400 | `bad_key` | the key is empty or has a broken `%` escape |
//! | 400 | `bad_query` | an unknown query parameter, or `r`/`w` not a number in `0..=255` |
//! | 400 | `bad_quorum` | `r` or `w` is 0 or above the bucket's `n_val` |
//! | 400 | `bad_context` | `X-Gyre-Context` is not base64, or given twice |
//! | 400 | `bad_request` | the backend refused the request (a context that does not decode, too many siblings…) or the admin command |
//! | 400 | `bad_json` | a bucket or admin body is not the expected JSON |
//! | 400 | `bad_props` | bucket properties that break a rule |
//! | 400 | `bad_path` / `bad_body` | a path or body that cannot be read |
//! | 404 | `unknown_bucket` | the bucket does not exist |
//! | 404 | `not_found` | a read found no value (with `context`) |
//! | 404 | `no_route` | no such route |
//! | 405 | `method_not_allowed` | the route exists, the method does not (`Allow` lists those that do) |
//! | 413 | `value_too_large` | the value is over the bucket's `max_value_len` (refused from `Content-Length` before the body is read) |
//! | 413 | `body_too_large` | a JSON body over 1 MiB |
//! | 414 | (empty body) | a URI over 65 534 bytes, refused by the HTTP layer before any route |
//! | 503 | `unavailable` | too few replicas answered; also `"answered": n, "required": m` and `"detail"` (what fell short, whom the coordinator asked, how long it waited). A write may exist on some replicas: not confirmed, not "not written" |
//! | 503 | `not_ready` | the node has no layout yet |
//! | 500 | `internal` | the node failed |
//!
//! Key operations are counted in [`Metrics`] as front `http`, bad input
//! included (outcome `bad_request`); a read that finds nothing is `ok`.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use gyre_api::{Backend, Metrics};
//!
//! /// Serves `backend` on an ephemeral port until `stop` fires.
//! async fn run<B: Backend>(
//!     backend: Arc<B>,
//!     stop: tokio::sync::oneshot::Receiver<()>,
//! ) -> std::io::Result<()> {
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//!     println!("HTTP API on {}", listener.local_addr()?);
//!     let metrics = Arc::new(Metrics::new());
//!     // Everyone served (no users; see `gyre_api::auth`), default limits.
//!     let config = gyre_api::http::HttpConfig::default();
//!     gyre_api::http::serve(listener, backend, metrics, config, async {
//!         let _ = stop.await;
//!     })
//!     .await
//! }
//! # let _ = run::<Never>;
//! # struct Never;
//! # impl Backend for Never {
//! #     async fn kv(&self, _: gyre_wire::ClientOp) -> Result<gyre_wire::ClientReply, gyre_api::KvError> { Err(gyre_api::KvError::NotReady("no node".into())) }
//! #     fn bucket(&self, _: &gyre_types::BucketName) -> Option<gyre_types::BucketProps> { None }
//! #     fn buckets(&self) -> Vec<(gyre_types::BucketName, gyre_types::BucketProps)> { Vec::new() }
//! #     async fn set_bucket(&self, _: gyre_types::BucketName, _: gyre_types::BucketProps) -> Result<gyre_api::BucketSet, gyre_api::AdminError> { Err(gyre_api::AdminError::Internal("no node".into())) }
//! #     fn status(&self) -> gyre_api::ClusterStatus { gyre_api::ClusterStatus { node: String::new(), layout_version: None, partitions: None, replication: None, members: Vec::new(), staged: Vec::new(), change: None, transfers: Default::default() } }
//! #     async fn admin(&self, _: gyre_api::AdminCommand) -> Result<gyre_api::AdminReply, gyre_api::AdminError> { Err(gyre_api::AdminError::Internal("no node".into())) }
//! #     fn stats(&self) -> gyre_api::NodeStats { gyre_api::NodeStats::default() }
//! #     fn local_trees(&self) -> Vec<gyre_api::TreeRoot> { Vec::new() }
//! #     fn local_get(&self, _: &gyre_types::BucketName, _: &gyre_types::Key) -> Result<Option<Vec<bytes::Bytes>>, gyre_api::KvError> { Ok(None) }
//! #     async fn list_keys(&self, _: &gyre_types::BucketName, _: u64, _: usize) -> Result<gyre_api::KeyPage, gyre_api::KvError> { Err(gyre_api::KvError::NotReady("no node".into())) }
//! #     async fn key_count(&self) -> Result<u64, gyre_api::KvError> { Ok(0) }
//! # }
//! ```
//!
//! [`AdminCommand`]: crate::AdminCommand
//! [`AdminReply`]: crate::AdminReply
//! [`ClusterStatus`]: crate::ClusterStatus

mod admin;
mod auth;
mod error;
mod extract;
mod kv;
mod listing;
mod openapi;
mod serve;

pub use openapi::document_json as openapi_json;
pub use serve::HttpConfig;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::{Backend, Metrics};

/// The header that carries a context, base64 (standard alphabet).
pub const CONTEXT_HEADER: &str = "x-gyre-context";

/// The header of a `PUT` that says how long the value lives: seconds, or
/// `never`.
pub const TTL_HEADER: &str = "x-gyre-ttl";

/// The header of a read that says when its value expires: milliseconds
/// since the Unix epoch.
pub const EXPIRES_HEADER: &str = "x-gyre-expires";

/// The largest JSON body (bucket properties, admin commands) accepted, in
/// bytes. Values are limited by their bucket's `max_value_len` instead.
pub const MAX_JSON_BODY: usize = 1 << 20;

/// What every handler shares.
struct Shared<B> {
    backend: Arc<B>,
    metrics: Arc<Metrics>,
}

/// The HTTP API over `backend`, counting key operations in `metrics`,
/// serving the clients `config`'s gate lets in (see the module
/// documentation), each request within `config.request_timeout`.
pub fn router<B: Backend>(backend: Arc<B>, metrics: Arc<Metrics>, config: &HttpConfig) -> Router {
    let key = get(kv::get::<B>)
        .put(kv::put::<B>)
        .delete(kv::delete::<B>)
        .post(kv::increment::<B>);
    Router::new()
        .route("/v1/kv/{bucket}", get(listing::list::<B>))
        .route("/v1/kv/{bucket}/{*key}", key.clone())
        // An empty key, so that it is a 400 `bad_key` rather than no route.
        .route("/v1/kv/{bucket}/", key)
        .route("/v1/buckets", get(admin::list_buckets::<B>))
        .route(
            "/v1/buckets/{bucket}",
            get(admin::get_bucket::<B>).put(admin::put_bucket::<B>),
        )
        .route("/v1/cluster", get(admin::cluster::<B>))
        .route("/v1/cluster/admin", post(admin::admin::<B>))
        .route("/v1/local/trees", get(admin::local_trees::<B>))
        .route("/v1/local/kv/{bucket}/{*key}", get(kv::local_get::<B>))
        .route("/health", get(admin::health::<B>))
        .route("/health/live", get(admin::live::<B>))
        .route("/metrics", get(admin::metrics::<B>))
        .route("/v1/openapi.json", get(openapi::document))
        // After the routes: it applies to those already added.
        .method_not_allowed_fallback(admin::method_not_allowed)
        .fallback(admin::no_route)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::from_fn_with_state(
            config.request_timeout,
            serve::deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            (Arc::clone(&config.gate), Arc::clone(&metrics)),
            auth::guard,
        ))
        .with_state(Arc::new(Shared { backend, metrics }))
}

/// Serves [`router`] on `listener` until `shutdown` completes, then stops
/// accepting, lets requests in flight finish (a few seconds at most) and
/// returns. Clients beyond `config.max_connections` are answered `503` and
/// closed; one that does not send its request headers within
/// `config.header_timeout` is disconnected.
///
/// # Errors
/// None so far: failures to accept a connection are logged and retried.
pub async fn serve<B: Backend>(
    listener: TcpListener,
    backend: Arc<B>,
    metrics: Arc<Metrics>,
    config: HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(backend, metrics, &config);
    serve::run(listener, app, &config, shutdown).await
}

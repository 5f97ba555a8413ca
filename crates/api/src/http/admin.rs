//! The routes around the keys: bucket properties, cluster status and
//! administration, health, Prometheus metrics, and the JSON answers to
//! unknown routes and methods.

// utoipa's `path` attributes qualify the parameter types they expand.
#![allow(unused_qualifications)]

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use gyre_types::{BucketName, BucketProps, ConflictMode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Shared;
use super::error::ApiError;
use super::extract::{JsonBody, PathParam, query};
use super::openapi::{BucketPropsSchema, ErrorBody};
use crate::{AdminCommand, AdminReply, Backend, BucketSet, ClusterStatus, TreeRoot};

/// A bucket name from the path, or 400 `bad_bucket`.
fn bucket_name(name: String) -> Result<BucketName, ApiError> {
    BucketName::new(name).map_err(|e| ApiError::bad("bad_bucket", e.to_string()))
}

/// One bucket in `GET /v1/buckets`.
#[derive(Debug, Serialize, ToSchema)]
struct BucketJson {
    /// Its name.
    bucket: String,
    /// Its properties.
    #[schema(value_type = BucketPropsSchema)]
    props: BucketProps,
}

/// The answer to `GET /v1/buckets`.
#[derive(Debug, Serialize, ToSchema)]
struct BucketsJson {
    /// Every bucket with properties set.
    buckets: Vec<BucketJson>,
}

/// The answer to `PUT /v1/buckets/{bucket}`.
#[derive(Debug, Serialize, ToSchema)]
struct BucketSetJson {
    #[serde(flatten)]
    set: BucketSet,
    /// The properties now.
    #[schema(value_type = BucketPropsSchema)]
    props: BucketProps,
}

/// The body of `PUT /v1/buckets/{bucket}`: any subset of the properties.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PropsPatch {
    /// Replicas of each key, `1..=8`.
    n_val: Option<u8>,
    /// Replicas a read waits for, `1..=n_val` [default: a majority of a
    /// changed `n_val`, else unchanged].
    r: Option<u8>,
    /// Replicas a write waits for, `1..=n_val` [as `r`].
    w: Option<u8>,
    /// How concurrent writes are resolved.
    #[schema(value_type = Option<super::openapi::ConflictModeSchema>)]
    conflict_mode: Option<ConflictMode>,
    /// Siblings kept at most.
    max_siblings: Option<u32>,
    /// Largest value, bytes.
    max_value_len: Option<u32>,
    /// Seconds a value written without a time to live lives; 0 removes the
    /// default (as Cassandra's `default_time_to_live`).
    default_ttl: Option<u32>,
}

impl PropsPatch {
    /// `base` with this patch applied. A missing `r` or `w` keeps `base`'s,
    /// unless `n_val` changes: then it is a majority of the new `n_val`.
    fn apply(self, base: BucketProps) -> gyre_types::Result<BucketProps> {
        let n = self.n_val.unwrap_or(base.n_val());
        let (r, w) = if n == base.n_val() {
            (base.r(), base.w())
        } else {
            (n / 2 + 1, n / 2 + 1)
        };
        BucketProps::new(n, self.r.unwrap_or(r), self.w.unwrap_or(w))?
            .with_conflict_mode(self.conflict_mode.unwrap_or(base.conflict_mode()))
            .with_max_siblings(self.max_siblings.unwrap_or(base.max_siblings()))?
            .with_max_value_len(self.max_value_len.unwrap_or(base.max_value_len()))?
            .with_default_ttl(match self.default_ttl {
                None => base.default_ttl(),
                Some(0) => None,
                Some(secs) => Some(secs),
            })
    }
}

/// `GET /v1/buckets`.
#[utoipa::path(
    get,
    path = "/v1/buckets",
    tag = "buckets",
    responses((status = 200, description = "Every bucket with properties set", body = BucketsJson)),
)]
pub(crate) async fn list_buckets<B: Backend>(State(shared): State<Arc<Shared<B>>>) -> Response {
    let buckets: Vec<BucketJson> = shared
        .backend
        .buckets()
        .into_iter()
        .map(|(bucket, props)| BucketJson {
            bucket: bucket.to_string(),
            props,
        })
        .collect();
    Json(BucketsJson { buckets }).into_response()
}

/// `GET /v1/buckets/{bucket}`.
#[utoipa::path(
    get,
    path = "/v1/buckets/{bucket}",
    tag = "buckets",
    params(("bucket" = String, Path, description = "The bucket")),
    responses(
        (status = 200, description = "Its properties", body = BucketPropsSchema),
        (status = 400, description = "`bad_bucket`", body = ErrorBody),
        (status = 404, description = "`unknown_bucket`", body = ErrorBody),
    ),
)]
pub(crate) async fn get_bucket<B: Backend>(
    State(shared): State<Arc<Shared<B>>>,
    PathParam(name): PathParam<String>,
) -> Result<Json<BucketProps>, ApiError> {
    let bucket = bucket_name(name)?;
    shared
        .backend
        .bucket(&bucket)
        .map(Json)
        .ok_or_else(|| ApiError::unknown_bucket(bucket.as_str()))
}

/// `PUT /v1/buckets/{bucket}`.
#[utoipa::path(
    put,
    path = "/v1/buckets/{bucket}",
    tag = "buckets",
    description = "Creates the bucket or changes it: the properties not named keep their values. The \
                   change reaches every member through the bucket catalogue.",
    params(("bucket" = String, Path, description = "The bucket"), PutBucketParams),
    request_body = PropsPatch,
    responses(
        (status = 200, description = "Set; how many members stored it", body = BucketSetJson),
        (status = 400, description = "`bad_bucket`, `bad_json`, `bad_props`", body = ErrorBody),
        (status = 409, description = "`risky_change`: the bucket holds data and the change (n_val, conflict_mode) needs ?force=true", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
    ),
)]
pub(crate) async fn put_bucket<B: Backend>(
    State(shared): State<Arc<Shared<B>>>,
    PathParam(name): PathParam<String>,
    uri: Uri,
    JsonBody(patch): JsonBody<PropsPatch>,
) -> Result<Response, ApiError> {
    let bucket = bucket_name(name)?;
    let PutBucketParams { force } = query(&uri)?;
    let existing = shared.backend.bucket(&bucket);
    let base = existing.unwrap_or_default();
    let props = patch
        .apply(base)
        .map_err(|e| ApiError::bad("bad_props", e.to_string()))?;
    if let Some(why) = existing.and_then(|old| risky(&old, &props)) {
        if force.unwrap_or(false) {
            tracing::warn!(bucket = %bucket, why, "a risky bucket change was forced");
        } else if holds_data(&*shared.backend, &bucket).await? {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "risky_change",
                format!(
                    "bucket '{bucket}' holds data, and {why}; send the change again with \
                     ?force=true to make it anyway"
                ),
            ));
        }
    }
    let set = shared.backend.set_bucket(bucket, props).await?;
    Ok(Json(BucketSetJson { set, props }).into_response())
}

/// `?force=true`: make a risky change to a bucket that holds data.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PutBucketParams {
    /// Change `n_val` or `conflict_mode` of a bucket that holds data.
    force: Option<bool>,
}

/// Why changing `old` to `new` is risky once the bucket holds data, if it
/// is (Riak warns of the same changes).
fn risky(old: &BucketProps, new: &BucketProps) -> Option<String> {
    if new.n_val() != old.n_val() {
        return Some(format!(
            "changing n_val from {} to {} changes which nodes hold each key: reads may miss \
             values written before until read repair and anti-entropy copy them, and copies \
             beyond a lower n_val stay",
            old.n_val(),
            new.n_val()
        ));
    }
    if new.conflict_mode() != old.conflict_mode() {
        return Some(format!(
            "switching conflict_mode from {} to {} changes what the stored versions mean: \
             siblings become last-writer-wins (concurrent values are dropped by timestamp) or \
             the reverse, and a counter's totals are not a value",
            old.conflict_mode().name(),
            new.conflict_mode().name()
        ));
    }
    None
}

/// Whether any key of `bucket` has a value (a walk of the bucket's keys
/// until one is found).
async fn holds_data<B: Backend>(backend: &B, bucket: &BucketName) -> Result<bool, ApiError> {
    let mut cursor = 0;
    loop {
        let page = backend.list_keys(bucket, cursor, 1).await?;
        if !page.keys.is_empty() {
            return Ok(true);
        }
        if page.cursor == 0 {
            return Ok(false);
        }
        cursor = page.cursor;
    }
}

/// `GET /v1/cluster`.
#[utoipa::path(
    get,
    path = "/v1/cluster",
    tag = "cluster",
    responses((status = 200, description = "The cluster as this node sees it: members, layout, the change in flight", body = ClusterStatus)),
)]
pub(crate) async fn cluster<B: Backend>(State(shared): State<Arc<Shared<B>>>) -> Response {
    Json(shared.backend.status()).into_response()
}

/// `POST /v1/cluster/admin`.
#[utoipa::path(
    post,
    path = "/v1/cluster/admin",
    tag = "cluster",
    description = "Stages a layout change, shows the plan, commits, aborts, or sets this node's \
                   handoff throttle.",
    request_body = AdminCommand,
    responses(
        (status = 200, description = "Done", body = AdminReply),
        (status = 400, description = "Refused (`bad_request`, with why), or a bad body", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
    ),
)]
pub(crate) async fn admin<B: Backend>(
    State(shared): State<Arc<Shared<B>>>,
    JsonBody(command): JsonBody<AdminCommand>,
) -> Result<Response, ApiError> {
    let reply = shared.backend.admin(command).await?;
    Ok(Json(reply).into_response())
}

/// The answer of `GET /v1/local/trees`.
#[derive(Debug, Serialize, ToSchema)]
struct TreesJson {
    /// One root per (partition, n_val) this node holds a tree of.
    trees: Vec<TreeRoot>,
}

/// `GET /v1/local/trees`: the roots of this node's Merkle trees.
#[utoipa::path(
    get,
    path = "/v1/local/trees",
    tag = "node",
    responses((status = 200, description = "The roots of this node's Merkle trees (equal roots: equal replicas)", body = TreesJson)),
)]
pub(crate) async fn local_trees<B: Backend>(State(shared): State<Arc<Shared<B>>>) -> Response {
    Json(TreesJson {
        trees: shared.backend.local_trees(),
    })
    .into_response()
}

/// The answer of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
struct Health {
    /// `ok`, `no_layout`, `removed` (an operator removed this node from the
    /// cluster: it serves nothing) or `alive`.
    status: &'static str,
    /// This node's id.
    node: String,
    /// The layout it holds, if any.
    layout_version: Option<u64>,
}

/// `GET /health`.
#[utoipa::path(
    get,
    path = "/health",
    tag = "node",
    responses(
        (status = 200, description = "Ready: the node holds a layout", body = Health),
        (status = 503, description = "Not ready: no layout committed yet, or this node was removed from the cluster", body = Health),
    ),
)]
pub(crate) async fn health<B: Backend>(State(shared): State<Arc<Shared<B>>>) -> Response {
    let status = shared.backend.status();
    let removed = status
        .members
        .iter()
        .any(|m| m.id == status.node && m.status == "removed");
    let (code, word) = match status.layout_version {
        _ if removed => (StatusCode::SERVICE_UNAVAILABLE, "removed"),
        Some(_) => (StatusCode::OK, "ok"),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no_layout"),
    };
    let body = Health {
        status: word,
        node: status.node,
        layout_version: status.layout_version,
    };
    (code, Json(body)).into_response()
}

/// `GET /health/live`: 200 whenever the node answers.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "node",
    responses((status = 200, description = "Alive (layout or not)", body = Health)),
)]
pub(crate) async fn live<B: Backend>(State(shared): State<Arc<Shared<B>>>) -> Response {
    let status = shared.backend.status();
    let body = Health {
        status: "alive",
        node: status.node,
        layout_version: status.layout_version,
    };
    (StatusCode::OK, Json(body)).into_response()
}

/// The media type of what `/metrics` serves: OpenMetrics text (counter
/// families with `_total` samples, ending in `# EOF`), which Prometheus
/// parses as such when told so.
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "node",
    responses((status = 200, description = "OpenMetrics text: every family README.md lists", body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")),
)]
pub(crate) async fn metrics<B: Backend>(State(shared): State<Arc<Shared<B>>>) -> Response {
    let text = shared.metrics.render(&shared.backend.stats());
    ([(header::CONTENT_TYPE, OPENMETRICS_TEXT)], text).into_response()
}

/// Any path no route matches: 404 `no_route`.
pub(crate) async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!("no route for {method} {}", uri.path()),
    )
}

/// A route asked with a method it does not serve: 405
/// `method_not_allowed` (axum adds the `Allow` header).
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not accept {method}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_keeps_what_it_does_not_name() {
        let base = BucketProps::new(5, 2, 4)
            .and_then(|p| p.with_max_value_len(1024))
            .expect("valid");
        let same = PropsPatch::default().apply(base).expect("valid");
        assert_eq!(same, base);
        let lww = PropsPatch {
            conflict_mode: Some(ConflictMode::Lww),
            ..PropsPatch::default()
        }
        .apply(base)
        .expect("valid");
        assert_eq!((lww.r(), lww.w(), lww.max_value_len()), (2, 4, 1024));
        assert_eq!(lww.conflict_mode(), ConflictMode::Lww);
    }

    #[test]
    fn a_new_n_val_brings_majority_quorums_unless_named() {
        let base = BucketProps::default();
        let five = PropsPatch {
            n_val: Some(5),
            ..PropsPatch::default()
        }
        .apply(base)
        .expect("valid");
        assert_eq!((five.n_val(), five.r(), five.w()), (5, 3, 3));
        let one = PropsPatch {
            n_val: Some(1),
            w: Some(1),
            ..PropsPatch::default()
        }
        .apply(base)
        .expect("valid");
        assert_eq!((one.r(), one.w()), (1, 1));
        let bad = PropsPatch {
            n_val: Some(2),
            r: Some(3),
            ..PropsPatch::default()
        };
        assert!(bad.apply(base).is_err());
    }
}

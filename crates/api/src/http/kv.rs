//! The key routes: `GET`, `PUT` and `DELETE /v1/kv/{bucket}/{key}`.
//!
//! Every request is checked in full (bucket, key, quorum, context, value
//! size) before the backend sees it, so bad input writes nothing; each one
//! is counted in [`crate::Metrics`], bad input included.

// utoipa's `path` attributes qualify the parameter types they expand.
#![allow(unused_qualifications)]

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use gyre_types::{BucketName, BucketProps, Key};
use gyre_wire::{ClientOp, ClientReply, Expiry};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::{percent_decode, query, read_value, wants_json};
use super::openapi::{Binary, ErrorBody};
use super::{CONTEXT_HEADER, EXPIRES_HEADER, Shared, TTL_HEADER};
use crate::{Backend, Front, Op};

/// Where the key routes start; the rest of the path is `{bucket}/{key}`.
const PREFIX: &str = "/v1/kv/";

/// `?r=N`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ReadParams {
    /// Replicas to wait for, `1..=n_val` [default: the bucket's `r`].
    r: Option<u8>,
}

/// `?w=N`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct WriteParams {
    /// Replicas to wait for, `1..=n_val` [default: the bucket's `w`].
    w: Option<u8>,
}

/// One sibling of a read, in JSON.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SiblingJson {
    /// The value, base64.
    value_base64: String,
    /// The value as text when it is valid UTF-8.
    value: Option<String>,
    /// When it expires, milliseconds since the Unix epoch (absent: never).
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_unix_ms: Option<u64>,
}

/// A read in JSON (300, or 200 when the client asked for JSON).
#[derive(Debug, Serialize, ToSchema)]
struct ReadJson {
    /// The context (base64) to write the key with.
    context: String,
    /// The values, concurrent writes each.
    siblings: Vec<SiblingJson>,
    /// Index of the sibling written last by the hybrid clock.
    latest: Option<u32>,
}

/// A write's answer.
#[derive(Debug, Serialize, ToSchema)]
struct WrittenJson {
    /// The context (base64) after the write: a later write with it
    /// supersedes this one.
    context: String,
    /// The write's version, `node:counter`.
    dot: String,
}

/// An increment's answer.
#[derive(Debug, Serialize, ToSchema)]
struct CountedJson {
    /// The counter as its coordinator holds it after the increment
    /// (increments still on their way to it are not in it).
    value: i64,
    /// The context (base64) after the increment.
    context: String,
}

/// A local replica's values.
#[derive(Debug, Serialize, ToSchema)]
struct LocalJson {
    /// The values this node's replica holds, base64.
    values_base64: Vec<String>,
}

/// The path of a key route (a schema: the handlers parse the raw path, so
/// that a key may hold any byte).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct KeyPath {
    /// The bucket.
    bucket: String,
    /// The key: any bytes, percent-encoded (`/` may stand as it is).
    key: String,
}

/// The key a request names, in a bucket that exists.
struct Target {
    bucket: BucketName,
    props: BucketProps,
    key: Key,
}

/// Finds bucket and key in the raw (still percent-encoded) path, so that
/// any byte of a key can be written as `%XX`.
fn target<B: Backend>(backend: &B, uri: &Uri) -> Result<Target, ApiError> {
    target_under(backend, uri, PREFIX)
}

/// [`target`] for a route whose keys follow `prefix`.
fn target_under<B: Backend>(backend: &B, uri: &Uri, prefix: &str) -> Result<Target, ApiError> {
    let rest = uri
        .path()
        .strip_prefix(prefix)
        .ok_or_else(|| ApiError::internal("key route without its prefix"))?;
    let (raw_bucket, raw_key) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket = percent_decode(raw_bucket)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad("bad_bucket", "the bucket name is not valid UTF-8"))?;
    let bucket = BucketName::new(bucket).map_err(|e| ApiError::bad("bad_bucket", e.to_string()))?;
    let key = percent_decode(raw_key)
        .ok_or_else(|| ApiError::bad("bad_key", "the key has a broken %-escape"))?;
    let key = Key::new(key).map_err(|e| ApiError::bad("bad_key", e.to_string()))?;
    let props = backend
        .bucket(&bucket)
        .ok_or_else(|| ApiError::unknown_bucket(bucket.as_str()))?;
    Ok(Target { bucket, props, key })
}

/// Where the local replica's keys are read.
const LOCAL_PREFIX: &str = "/v1/local/kv/";

/// `GET /v1/local/kv/{bucket}/{key}`: the values this node's own replica
/// holds (no quorum, no forwarding, no repair). `200 {"values_base64":
/// [...]}`, or 404 `not_found` if it holds no record.
#[utoipa::path(
    get,
    path = "/v1/local/kv/{bucket}/{key}",
    tag = "node",
    params(KeyPath),
    responses(
        (status = 200, description = "The values this node's own replica holds (no quorum, forwarding or repair)", body = LocalJson),
        (status = 400, description = "A bad bucket name or key", body = ErrorBody),
        (status = 404, description = "`unknown_bucket`, or `not_found`: this replica holds no record of the key", body = ErrorBody),
    ),
)]
pub(crate) async fn local_get<B: Backend>(
    State(shared): State<Arc<Shared<B>>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let t = target_under(&*shared.backend, &uri, LOCAL_PREFIX)?;
    match shared.backend.local_get(&t.bucket, &t.key)? {
        Some(values) => {
            let values_base64 = values.iter().map(|v| STANDARD.encode(v)).collect();
            Ok(Json(LocalJson { values_base64 }).into_response())
        }
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this node's replica holds no record of the key",
        )),
    }
}

/// A quorum override, if it fits the bucket: `1..=n_val`.
fn quorum(name: &str, q: Option<u8>, props: &BucketProps) -> Result<Option<u8>, ApiError> {
    match q {
        Some(q) if q == 0 || q > props.n_val() => Err(ApiError::bad(
            "bad_quorum",
            format!("{name}={q} is not in 1..={} (n_val)", props.n_val()),
        )),
        _ => Ok(q),
    }
}

/// The `X-Gyre-Context` header's bytes, `None` if absent.
fn context(headers: &HeaderMap) -> Result<Option<Bytes>, ApiError> {
    let mut values = headers.get_all(CONTEXT_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad(
            "bad_context",
            "more than one X-Gyre-Context header",
        ));
    }
    STANDARD
        .decode(value.as_bytes())
        .map(|b| Some(Bytes::from(b)))
        .map_err(|e| ApiError::bad("bad_context", format!("X-Gyre-Context is not base64: {e}")))
}

/// The `X-Gyre-TTL` header: seconds to live (a positive integer), or
/// `never` (even in a bucket with a default); absent: the bucket's default.
fn ttl(headers: &HeaderMap) -> Result<Expiry, ApiError> {
    let mut values = headers.get_all(TTL_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(Expiry::Default);
    };
    let bad = || {
        ApiError::bad(
            "bad_ttl",
            "X-Gyre-TTL must appear once, as seconds to live (a positive integer) or `never`",
        )
    };
    if values.next().is_some() {
        return Err(bad());
    }
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text.eq_ignore_ascii_case("never") {
        return Ok(Expiry::Never);
    }
    match text.parse::<u64>() {
        Ok(secs) if secs > 0 => Ok(Expiry::After {
            ms: secs.saturating_mul(1000),
        }),
        _ => Err(bad()),
    }
}

/// Runs `work` and counts it in the metrics.
async fn counted<B: Backend>(
    shared: &Shared<B>,
    op: Op,
    work: impl Future<Output = Result<Response, ApiError>>,
) -> Response {
    let start = Instant::now();
    let result = work.await;
    let class = result.as_ref().err().map(ApiError::metrics_class);
    shared.metrics.observe(
        Front::Http,
        op,
        start.elapsed(),
        class.as_ref().map_or(Ok(()), Err),
    );
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Sets `X-Gyre-Context` on a response.
fn with_context_header(mut response: Response, context: &str) -> Response {
    if let Ok(value) = HeaderValue::try_from(context) {
        response.headers_mut().insert(CONTEXT_HEADER, value);
    }
    response
}

/// `GET /v1/kv/{bucket}/{key}`.
#[utoipa::path(
    get,
    path = "/v1/kv/{bucket}/{key}",
    tag = "keys",
    description = "Reads a key at the read quorum. One value is the body (`application/octet-stream`); \
                   concurrent values (siblings) are a `300` with JSON. With `Accept: application/json` \
                   the answer is always JSON, `200`.",
    params(KeyPath, ReadParams),
    responses(
        (status = 200, description = "The value", headers(
            ("x-gyre-context" = String, description = "The context (base64) to write the key with"),
            ("x-gyre-expires" = u64, description = "When the value expires, milliseconds since the Unix epoch (absent: never)"),
        ), content(
            (inline(Binary) = "application/octet-stream"),
            (ReadJson = "application/json"),
        )),
        (status = 300, description = "Concurrent values (siblings); write with the context to resolve them", body = ReadJson,
            headers(("x-gyre-context" = String, description = "The context (base64)"))),
        (status = 400, description = "A bad bucket name, key or quorum", body = ErrorBody),
        (status = 404, description = "`not_found` (no value; the body has the context to write with) or `unknown_bucket`", body = ErrorBody),
        (status = 503, description = "`unavailable`: fewer than R replicas answered; `not_ready`: no layout yet", body = ErrorBody),
    ),
)]
pub(crate) async fn get<B: Backend>(
    State(shared): State<Arc<Shared<B>>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    counted(&shared, Op::Get, async {
        let t = target(&*shared.backend, &uri)?;
        let ReadParams { r } = query(&uri)?;
        let r = quorum("r", r, &t.props)?;
        let reply = shared
            .backend
            .kv(ClientOp::Get {
                bucket: t.bucket,
                key: t.key,
                r,
            })
            .await?;
        let (values, latest, context, expires) = match reply {
            ClientReply::Values {
                values,
                latest,
                context,
                expires,
            } => (values, latest, STANDARD.encode(context), expires),
            other => return Err(unexpected(other)),
        };
        shared.metrics.read_values(values.len());
        if values.is_empty() {
            let error = ApiError::new(StatusCode::NOT_FOUND, "not_found", "the key has no value")
                .with_context(context);
            let error = if wants_json(&headers) {
                error.with_field("siblings", Vec::<serde_json::Value>::new())
            } else {
                error
            };
            // A read that finds nothing succeeded: answered, not failed.
            return Ok(error.into_response());
        }
        let json = wants_json(&headers);
        if values.len() == 1 && !json {
            // One value: the iterator yields it.
            let value = values.into_iter().next().unwrap_or_default();
            let mut response =
                ([(header::CONTENT_TYPE, "application/octet-stream")], value).into_response();
            if let Some(Some(at)) = expires.first() {
                response
                    .headers_mut()
                    .insert(EXPIRES_HEADER, HeaderValue::from(*at));
            }
            return Ok(with_context_header(response, &context));
        }
        let status = if json {
            StatusCode::OK
        } else {
            StatusCode::MULTIPLE_CHOICES
        };
        let siblings = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| SiblingJson {
                value_base64: STANDARD.encode(&v),
                value: std::str::from_utf8(&v).ok().map(str::to_owned),
                expires_unix_ms: expires.get(i).copied().flatten(),
            })
            .collect();
        let body = ReadJson {
            context: context.clone(),
            siblings,
            latest,
        };
        Ok(with_context_header(
            (status, Json(body)).into_response(),
            &context,
        ))
    })
    .await
}

/// `PUT /v1/kv/{bucket}/{key}`.
#[utoipa::path(
    put,
    path = "/v1/kv/{bucket}/{key}",
    tag = "keys",
    description = "Writes the body as the key's value at the write quorum. With the context of a read, \
                   the write supersedes what that read saw; without one, it is concurrent with every \
                   value stored (a sibling, in a `siblings` bucket).",
    params(KeyPath, WriteParams,
        ("x-gyre-context" = Option<String>, Header, description = "The context (base64) of the read this write follows"),
        ("x-gyre-ttl" = Option<String>, Header, description = "Seconds the value lives (a positive integer), or `never`; absent: the bucket's `default_ttl`"),
    ),
    request_body(content = inline(Binary), description = "The value", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Written", body = WrittenJson,
            headers(("x-gyre-context" = String, description = "The context after the write (base64)"))),
        (status = 400, description = "A bad bucket name, key, quorum, context or TTL; a plain write to a counter bucket", body = ErrorBody),
        (status = 404, description = "`unknown_bucket`", body = ErrorBody),
        (status = 413, description = "`value_too_large`: over the bucket's `max_value_len`", body = ErrorBody),
        (status = 503, description = "`unavailable`: fewer than W replicas stored it; `not_ready`", body = ErrorBody),
    ),
)]
pub(crate) async fn put<B: Backend>(
    State(shared): State<Arc<Shared<B>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    counted(&shared, Op::Put, async {
        let t = target(&*shared.backend, &uri)?;
        let WriteParams { w } = query(&uri)?;
        let w = quorum("w", w, &t.props)?;
        let context = context(&headers)?;
        let expiry = ttl(&headers)?;
        let value = read_value(&headers, body, t.props.max_value_len() as usize).await?;
        let reply = shared
            .backend
            .kv(ClientOp::Put {
                bucket: t.bucket,
                key: t.key,
                context,
                value,
                w,
                expiry,
            })
            .await?;
        written(reply)
    })
    .await
}

/// `?incr=N[&w=N]`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct IncrementParams {
    /// What to add (negative: subtract).
    incr: i64,
    /// Replicas to wait for, `1..=n_val` [default: the bucket's `w`].
    w: Option<u8>,
}

/// `POST /v1/kv/{bucket}/{key}?incr=N`: adds N (negative: subtracts) to a
/// counter of a `counter` bucket; `200 {"value": <the counter as its
/// coordinator holds it after the increment>, "context": ...}`.
#[utoipa::path(
    post,
    path = "/v1/kv/{bucket}/{key}",
    tag = "keys",
    description = "Adds `incr` to a counter of a `counter` bucket (PN-counters: every acknowledged \
                   increment counts exactly once).",
    params(KeyPath, IncrementParams),
    responses(
        (status = 200, description = "Counted", body = CountedJson,
            headers(("x-gyre-context" = String, description = "The context after the increment (base64)"))),
        (status = 400, description = "A bad bucket name, key, quorum or query; `not_a_counter`: the bucket does not hold counters", body = ErrorBody),
        (status = 404, description = "`unknown_bucket`", body = ErrorBody),
        (status = 503, description = "`unavailable`; `not_ready`", body = ErrorBody),
    ),
)]
pub(crate) async fn increment<B: Backend>(
    State(shared): State<Arc<Shared<B>>>,
    uri: Uri,
) -> Response {
    counted(&shared, Op::Increment, async {
        let t = target(&*shared.backend, &uri)?;
        let IncrementParams { incr, w } = query(&uri)?;
        let w = quorum("w", w, &t.props)?;
        if t.props.conflict_mode() != gyre_types::ConflictMode::Counter {
            return Err(ApiError::bad(
                "not_a_counter",
                format!(
                    "bucket '{}' does not hold counters (its conflict_mode is {}): create a \
                     bucket with {{\"conflict_mode\": \"counter\"}} for them",
                    t.bucket,
                    t.props.conflict_mode().name()
                ),
            ));
        }
        let reply = shared
            .backend
            .kv(ClientOp::Increment {
                bucket: t.bucket,
                key: t.key,
                delta: incr,
                w,
            })
            .await?;
        match reply {
            ClientReply::Counted { value, context } => {
                let context = STANDARD.encode(context);
                let body = CountedJson {
                    value,
                    context: context.clone(),
                };
                Ok(with_context_header(Json(body).into_response(), &context))
            }
            other => Err(unexpected(other)),
        }
    })
    .await
}

/// `DELETE /v1/kv/{bucket}/{key}`.
#[utoipa::path(
    delete,
    path = "/v1/kv/{bucket}/{key}",
    tag = "keys",
    description = "Deletes the key at the write quorum: a tombstone that supersedes what the context \
                   saw (without a context: every value stored).",
    params(KeyPath, WriteParams,
        ("x-gyre-context" = Option<String>, Header, description = "The context (base64) of the read this delete follows"),
    ),
    responses(
        (status = 200, description = "Deleted", body = WrittenJson,
            headers(("x-gyre-context" = String, description = "The context after the delete (base64)"))),
        (status = 400, description = "A bad bucket name, key, quorum or context", body = ErrorBody),
        (status = 404, description = "`unknown_bucket`", body = ErrorBody),
        (status = 503, description = "`unavailable`; `not_ready`", body = ErrorBody),
    ),
)]
pub(crate) async fn delete<B: Backend>(
    State(shared): State<Arc<Shared<B>>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    counted(&shared, Op::Delete, async {
        let t = target(&*shared.backend, &uri)?;
        let WriteParams { w } = query(&uri)?;
        let w = quorum("w", w, &t.props)?;
        let context = context(&headers)?;
        let reply = shared
            .backend
            .kv(ClientOp::Delete {
                bucket: t.bucket,
                key: t.key,
                context,
                w,
            })
            .await?;
        written(reply)
    })
    .await
}

/// The 200 answer to a write.
fn written(reply: ClientReply) -> Result<Response, ApiError> {
    match reply {
        ClientReply::Written { dot, context, .. } => {
            let context = STANDARD.encode(context);
            let body = WrittenJson {
                context: context.clone(),
                dot: dot.to_string(),
            };
            Ok(with_context_header(Json(body).into_response(), &context))
        }
        other => Err(unexpected(other)),
    }
}

/// A reply of the wrong kind for its operation.
fn unexpected(reply: ClientReply) -> ApiError {
    match reply {
        // The trait promises a KvError instead, but the meaning is clear.
        ClientReply::Unavailable {
            answered,
            required,
            detail,
        } => ApiError::from(crate::KvError::Unavailable {
            answered,
            required,
            detail,
        }),
        ClientReply::Values { .. } => {
            ApiError::internal("the backend answered a write with values")
        }
        ClientReply::Written { .. } => {
            ApiError::internal("the backend answered a read with a write")
        }
        ClientReply::Counted { .. } => ApiError::internal("the backend answered with a counter"),
    }
}

//! `GET /v1/kv/{bucket}`: the bucket's keys, a page at a time.
//!
//! `?prefix=` (percent-encoded bytes) keeps the keys that start with it,
//! `?limit=` (1 to 10,000, default 1,000) bounds the page, and `?after=`
//! takes the `next` token of the previous page. The answer is `200`
//! `{"keys": [{"key": "<text, or null if not UTF-8>", "key_base64":
//! "..."}, ...], "next": "<token>" | null}`; `next` is null once every key
//! was listed. Keys come in ring order (key hash), not sorted: a listing
//! walks the partitions (see [`crate::Backend::list_keys`] for what it
//! promises), so a page may hold fewer keys than the limit with a `next`
//! still to follow.

// utoipa's `path` attributes qualify the parameter types they expand.
#![allow(unused_qualifications)]

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gyre_types::BucketName;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Shared;
use super::error::ApiError;
use super::extract::{percent_decode, query};
use super::openapi::ErrorBody;
use crate::Backend;

/// The default page size.
const DEFAULT_LIMIT: usize = 1_000;
/// The largest page.
const MAX_LIMIT: usize = 10_000;
/// Pages of the walk one request reads at most, looking for keys with the
/// prefix, before it answers with what it has and a `next` token.
const MAX_WALK_PAGES: usize = 8;

/// The query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Only keys that start with these bytes (percent-encoded).
    prefix: Option<String>,
    /// The `next` token of the previous page.
    after: Option<String>,
    /// Keys a page holds at most, `1..=10000` [default: 1000].
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
}

/// One key of a page.
#[derive(Debug, Serialize, ToSchema)]
struct KeyJson {
    /// The key as text (null if it is not UTF-8).
    key: Option<String>,
    /// The key's bytes, base64.
    key_base64: String,
}

/// A page of keys.
#[derive(Debug, Serialize, ToSchema)]
struct ListJson {
    /// Keys, in ring order.
    keys: Vec<KeyJson>,
    /// The token of the next page (`?after=`); null once every key was
    /// listed.
    next: Option<String>,
}

/// `GET /v1/kv/{bucket}`.
#[utoipa::path(
    get,
    path = "/v1/kv/{bucket}",
    tag = "keys",
    description = "The bucket's keys, a page at a time, in ring order. Each key stored before the walk \
                   began and not deleted is listed at least once across the pages, even while \
                   partitions move; a page may hold fewer keys than the limit with more to follow.",
    params(("bucket" = String, Path, description = "The bucket"), ListParams),
    responses(
        (status = 200, description = "A page of keys", body = ListJson),
        (status = 400, description = "A bad bucket name or query", body = ErrorBody),
        (status = 404, description = "`unknown_bucket`", body = ErrorBody),
        (status = 503, description = "`unavailable`: a partition had too few replicas up; `not_ready`", body = ErrorBody),
    ),
)]
pub(crate) async fn list<B: Backend>(
    State(shared): State<Arc<Shared<B>>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let raw_bucket = uri
        .path()
        .strip_prefix("/v1/kv/")
        .ok_or_else(|| ApiError::internal("listing route without its prefix"))?;
    let bucket = percent_decode(raw_bucket)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad("bad_bucket", "the bucket name is not valid UTF-8"))?;
    let bucket = BucketName::new(bucket).map_err(|e| ApiError::bad("bad_bucket", e.to_string()))?;
    if shared.backend.bucket(&bucket).is_none() {
        return Err(ApiError::unknown_bucket(bucket.as_str()));
    }
    let params: ListParams = query(&uri)?;
    let limit = match params.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::bad(
                "bad_query",
                format!("limit={n} is not in 1..={MAX_LIMIT}"),
            ));
        }
    };
    let prefix = match &params.prefix {
        None => Vec::new(),
        Some(p) => percent_decode(p)
            .ok_or_else(|| ApiError::bad("bad_query", "the prefix has a broken %-escape"))?,
    };
    let mut cursor = match &params.after {
        None => 0,
        Some(token) => token
            .parse::<u64>()
            .ok()
            .filter(|&c| c != 0)
            .ok_or_else(|| {
                ApiError::bad(
                    "bad_query",
                    "after= takes the `next` token of a previous page",
                )
            })?,
    };
    let mut keys = Vec::new();
    for _ in 0..MAX_WALK_PAGES {
        let page = shared
            .backend
            .list_keys(&bucket, cursor, limit - keys.len())
            .await?;
        keys.extend(
            page.keys
                .into_iter()
                .filter(|k| k.as_bytes().starts_with(&prefix)),
        );
        cursor = page.cursor;
        if cursor == 0 || keys.len() >= limit {
            break;
        }
    }
    let keys = keys
        .into_iter()
        .map(|k| KeyJson {
            key: std::str::from_utf8(k.as_bytes()).ok().map(str::to_owned),
            key_base64: STANDARD.encode(k.as_bytes()),
        })
        .collect();
    let next = (cursor != 0).then(|| cursor.to_string());
    Ok(Json(ListJson { keys, next }).into_response())
}

//! Extractors and request parsing that answer bad input with an
//! [`ApiError`] instead of axum's plain-text rejections.
//!
//! - [`PathParam`] wraps axum's `Path` (400 `bad_path`).
//! - [`JsonBody`] reads a JSON body whatever its `Content-Type` (400
//!   `bad_json`, 413 `body_too_large` past the router's
//!   [`DefaultBodyLimit`](axum::extract::DefaultBodyLimit)); an empty body
//!   reads as `{}`.
//! - [`query`] parses the query string into a struct (400 `bad_query`).
//! - [`read_value`] reads a value body up to a bucket's limit without
//!   buffering more (413 `value_too_large`).
//! - [`percent_decode`] turns a raw path segment into bytes, so binary keys
//!   can be written as `%XX`.

use std::pin::Pin;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use bytes::BytesMut;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A path parameter, or 400 `bad_path`.
#[derive(Debug)]
pub(crate) struct PathParam<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for PathParam<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(e) if e.status().is_client_error() => Err(ApiError::bad("bad_path", e.body_text())),
            Err(e) => Err(ApiError::internal(e.body_text())),
        }
    }
}

/// A JSON body, or 400 `bad_json` / 413 `body_too_large`.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the JSON body is over {} bytes", super::MAX_JSON_BODY),
            )
        };
        // Refuse from the header without reading; the router's
        // DefaultBodyLimit stops a chunked body at the same size.
        if content_length(req.headers()).is_some_and(|len| len > super::MAX_JSON_BODY as u64) {
            return Err(too_large());
        }
        let bytes = match Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => return Err(ApiError::bad("bad_body", e.body_text())),
        };
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text)
            .map(Self)
            .map_err(|e| ApiError::bad("bad_json", format!("malformed JSON body: {e}")))
    }
}

/// The query string of `uri` as a `T`, or 400 `bad_query`.
pub(crate) fn query<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    Query::<T>::try_from_uri(uri)
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad("bad_query", e.body_text()))
}

/// The body as a value of at most `limit` bytes, or 413
/// `value_too_large`. A `Content-Length` over the limit is refused before
/// any of the body is read; a chunked body is read only up to the limit.
pub(crate) async fn read_value(
    headers: &HeaderMap,
    mut body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = |len: Option<u64>| {
        let message = match len {
            Some(len) => format!("the value is {len} bytes, the bucket allows {limit}"),
            None => format!("the value is over the {limit} bytes the bucket allows"),
        };
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "value_too_large", message)
    };
    let declared = content_length(headers);
    if let Some(len) = declared
        && len > limit as u64
    {
        return Err(too_large(Some(len)));
    }
    let capacity = declared.map_or(0, |len| len.min(limit as u64) as usize);
    let mut value = BytesMut::with_capacity(capacity);
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame =
            frame.map_err(|e| ApiError::bad("bad_body", format!("reading the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if value.len() + data.len() > limit {
                return Err(too_large(None));
            }
            value.extend_from_slice(&data);
        }
    }
    Ok(value.freeze())
}

/// The `Content-Length` a request declares, if any.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Decodes `%XX` escapes of a raw path segment into bytes; `None` if an
/// escape is not two hexadecimal digits. Every other byte stands for
/// itself (`+` included: this is a path, not a form).
pub(crate) fn percent_decode(raw: &str) -> Option<Vec<u8>> {
    fn hex(digit: u8) -> Option<u8> {
        (digit as char).to_digit(16).map(|d| d as u8)
    }
    let mut bytes = raw.bytes();
    let mut out = Vec::with_capacity(raw.len());
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = hex(bytes.next()?)?;
            let lo = hex(bytes.next()?)?;
            out.push(hi << 4 | lo);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// Whether the client asked for JSON (`Accept: application/json` among
/// its media ranges).
pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|range| range.split(';').next())
        .any(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_reaches_every_byte_and_refuses_broken_escapes() {
        assert_eq!(percent_decode("a%2Fb+c").as_deref(), Some(&b"a/b+c"[..]));
        assert_eq!(
            percent_decode("%00%ff%FF").as_deref(),
            Some(&[0, 255, 255][..])
        );
        assert_eq!(
            percent_decode("caf%C3%A9").as_deref(),
            Some("café".as_bytes())
        );
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
    }

    #[test]
    fn json_is_wanted_only_when_asked_for() {
        let mut headers = HeaderMap::new();
        assert!(!wants_json(&headers));
        headers.insert(header::ACCEPT, "*/*".parse().expect("header"));
        assert!(!wants_json(&headers));
        headers.insert(
            header::ACCEPT,
            "text/html, Application/JSON;q=0.9".parse().expect("header"),
        );
        assert!(wants_json(&headers));
    }
}
